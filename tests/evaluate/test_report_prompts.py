"""The report and the before/after table say how each system was prompted, show a languages x systems
heatmap, compare ``tuned`` with the few-shot base, and print BLEU "n/a" where it does not apply."""

from __future__ import annotations

import json

from bayling.evaluate.fewshot import chat_record, fewshot_record
from bayling.evaluate.report import deltas, heatmap_data, write_report
from bayling.evaluate.stage import comparison_table

SIG = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
CHRF_SIG = "nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0"


def _scores(chrf: float, bleu: float | None) -> dict:
    b = {"score": bleu, "signature": SIG} if bleu is not None else {"score": None, "reason": "unspaced"}
    return {"chrf": {"score": chrf, "signature": CHRF_SIG}, "bleu": b, "n": 3}


def _metrics() -> dict:
    dirs = ["eng_Latn-deu_Latn", "deu_Latn-eng_Latn", "eng_Latn-tha_Thai", "tha_Thai-eng_Latn"]
    chrf = {"base-fewshot": [40, 50, 20, 30], "base-chat": [10, 12, 5, 6], "tuned": [45, 52, 18, 33]}
    bleu = {"base-fewshot": [10, 20, None, 8], "base-chat": [1, 2, None, 1], "tuned": [12, 21, None, 9]}
    demos = {d: ["a", "b", "c", "d", "e"] for d in dirs}
    return {
        "name": "t",
        "testset": "heldout",
        "sentences_per_direction": 3,
        "directions": dirs,
        "systems": {s: {d: _scores(c, b) for d, c, b in zip(dirs, chrf[s], bleu[s], strict=True)} for s in chrf},
        "prompts": {
            "base-fewshot": fewshot_record(5, "the data stage's fewshot.jsonl", demos),
            "base-chat": chat_record("auto"),
            "tuned": chat_record("auto"),
        },
    }


def test_heatmap_is_languages_by_systems_labelled_with_prompts():
    hm = heatmap_data(_metrics())
    assert hm["by"] == "language" and hm["rows"] == ["deu_Latn (high)", "tha_Thai (medium)"]
    assert hm["columns"][:2] == ["eng→X\nbase-fewshot\n(5-shot)", "X→eng\nbase-fewshot\n(5-shot)"]
    assert hm["columns"][-1] == "X→eng\ntuned\n(chat)" and len(hm["columns"]) == 6
    assert hm["values"] == [[40, 50, 10, 12, 45, 52], [20, 30, 5, 6, 18, 33]]
    # directions without a shared pivot: one row per direction
    m = _metrics()
    m["directions"] = ["eng_Latn-deu_Latn"]
    assert heatmap_data(m)["by"] == "direction" and heatmap_data(m)["rows"] == ["eng_Latn-deu_Latn"]


def test_tuned_is_compared_with_the_fewshot_base():
    assert deltas(_metrics(), "chrf") == {
        "eng_Latn-deu_Latn": 5,
        "deu_Latn-eng_Latn": 2,
        "eng_Latn-tha_Thai": -2,
        "tha_Thai-eng_Latn": 3,
    }
    assert "eng_Latn-tha_Thai" not in deltas(_metrics(), "bleu")  # no BLEU, no BLEU delta
    _, md = comparison_table(_metrics(), ["bleu", "chrf"])
    assert "| eng_Latn-tha_Thai | n/a | n/a | n/a | n/a | 20.0 | 5.0 | 18.0 | -2.0 |" in md
    assert "| average | 12.7 | 1.3 | 14.0 | +1.3 | 35.0 | 8.2 | 37.0 | +2.0 |" in md  # BLEU mean over 3 directions
    assert "- base-fewshot: 5-shot completion" in md and "(demos: the data stage's fewshot.jsonl)" in md
    assert '- tuned: chat (auto format): "Translate the following {src} text into {tgt}.⏎{text}"' in md
    assert "- Δ = tuned - base-fewshot" in md


def test_report_page_shows_prompts_and_na(tmp_path):
    _, page_path = write_report(tmp_path, _metrics(), name="t")
    page = page_path.read_text(encoding="utf-8")
    assert page.count("<svg") == 3 and "<h3>Prompts</h3>" in page
    assert "English: &lt;demo source&gt;<br>German: &lt;demo target&gt;" in page and "(5 demonstrations)" in page
    assert "the data stage&#x27;s fewshot.jsonl" in page and "chat (auto format)" in page
    assert "<td>n/a</td>" in page
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["translation"]["prompts"]["base-fewshot"]["k"] == 5 and report["heatmap"]["values"][0][0] == 40
