"""bench/ablation_table.py: the README's ablation table is recomputed from runs, so its grouping, means, intervals
and the refusal of arms that are not comparable must hold."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from sacrebleu.metrics import CHRF

from bayling.evaluate.fewshot import mean_over_seeds

REPO = Path(__file__).resolve().parents[1]
SIG = "nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0"
REFS = [
    "The cat sat on the mat near the door.",
    "A storm is expected to reach the coast tonight.",
    "The museum opens at nine in the morning.",
    "She bought three apples and a loaf of bread.",
    "The committee approved the new budget on Friday.",
    "Rain fell all day over the mountain villages.",
    "He has lived in this town for twenty years.",
    "The train to the capital was delayed by an hour.",
    "Children played football in the park after school.",
    "The bridge will be closed for repairs next week.",
]
IDS = [f"h{i}" for i in range(len(REFS))]


def good(refs):  # close to the reference
    return [r.rsplit(" ", 1)[0] + "." for r in refs]


def half(refs):  # the first half of each reference
    return [" ".join(r.split()[: len(r.split()) // 2]) for r in refs]


def scrambled(refs):  # the words reversed
    return [" ".join(reversed(r.split())) for r in refs]


def _script():
    spec = importlib.util.spec_from_file_location("ablation_table", REPO / "bench" / "ablation_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _scores(hyps: list[str], rates: tuple[float, float, float], sig: str = SIG) -> dict:
    chrf = round(CHRF(word_order=2).corpus_score(hyps, [REFS]).score, 2)
    off, unk, cp = rates
    return {"chrf": {"score": chrf, "signature": sig}, "off_target": off, "unknown": unk, "copy": cp, "n": len(hyps)}


def _rows(sys_dir: Path, d: str, hyps: list[str], ids: list[str]) -> None:
    sys_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"id": i, "src": "x", "ref": r, "hyp": h} for i, r, h in zip(ids, REFS, hyps, strict=True)]
    (sys_dir / f"{d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _run(root: Path, name: str, system: str, outputs: dict, rates=(0.0, 0.0, 0.0), ids=IDS, sig=SIG) -> Path:
    """A run directory as `bayling run` leaves it: eval/metrics.json and the per-sentence files of ``system``;
    ``outputs`` maps a direction to one list of hypotheses per demonstration draw (one list: a single draw)."""
    run = root / name
    sys_dir = run / "eval" / system
    draws = {d: hs for d, hs in outputs.items()}
    n_draws = len(next(iter(draws.values())))
    if n_draws == 1:
        entries = {}
        for d, (hyps,) in draws.items():
            _rows(sys_dir, d, hyps, ids)
            entries[d] = _scores(hyps, rates, sig)
        prompts = {}
    else:
        per_seed = {s: {} for s in range(n_draws)}
        for d, hs in draws.items():
            for s, hyps in enumerate(hs):
                _rows(sys_dir / f"seed-{s}", d, hyps, ids)
                per_seed[s][d] = _scores(hyps, rates, sig)
        entries = mean_over_seeds(per_seed)
        prompts = {system: {"prompt": "fewshot", "seeds": list(range(n_draws))}}
    metrics = {
        "name": name,
        "sentences_per_direction": len(REFS),
        "directions": list(outputs),
        "systems": {system: {**entries, "average": {}}},
        "prompts": prompts,
    }
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return run


def _base(tmp_path: Path) -> Path:
    return _run(
        tmp_path,
        "flores_alignment",
        "base-fewshot",
        {
            "eng_Latn-deu_Latn": [half(REFS), scrambled(REFS), half(REFS)],
            "deu_Latn-eng_Latn": [good(REFS), good(REFS), half(REFS)],
            "eng_Latn-yor_Latn": [half(REFS), half(REFS), half(REFS)],
        },
    )


def test_groups_by_tier_and_side_with_intervals_and_run_names(tmp_path, capsys):
    base = _base(tmp_path)
    arm = _run(
        tmp_path,
        "ablation_a",
        "tuned",
        {
            "eng_Latn-deu_Latn": [good(REFS)],  # far ahead of every draw
            "deu_Latn-eng_Latn": [half(REFS)],  # behind the mean
            "eng_Latn-yor_Latn": [good(REFS)[:1] + half(REFS)[1:]],  # ahead in one sentence: within noise
        },
        rates=(10.0, 20.0, 5.0),
    )
    out = tmp_path / "table.json"
    argv = ["--base", str(base), "--arm", f"a={arm}", "--arm", f"b={tmp_path / 'missing'}", "--json", str(out)]
    assert _script().main(argv) == 0
    table = json.loads(out.read_text(encoding="utf-8"))
    rows = {r["group"]: r for r in table["rows"]}
    assert list(rows) == ["en→X, high", "X→en, high", "en→X, low", "all 3"]

    def chrf(h):
        return CHRF(word_order=2).corpus_score(h, [REFS]).score

    de = [chrf(half(REFS)), chrf(scrambled(REFS)), chrf(half(REFS))]
    assert rows["en→X, high"]["base-fewshot"]["chrf"] == pytest.approx(sum(de) / 3, abs=0.01)
    assert rows["en→X, high"]["base-fewshot"]["min"] == pytest.approx(min(de), abs=0.01)
    assert rows["en→X, low"]["a"] | {"delta": None} == {
        "chrf": round(chrf(good(REFS)[:1] + half(REFS)[1:]), 2),
        "off_target": 10.0,
        "unknown": 20.0,
        "copy": 5.0,
        "delta": None,
    }
    assert rows["en→X, high"]["a"]["delta"]["significant"] == "win"
    assert rows["X→en, high"]["a"]["delta"]["significant"] == "loss"
    assert table["wins_vs_fewshot"] == {"a": 2} and table["significant_wins_vs_fewshot"] == {"a": 1}
    assert table["significant_losses_vs_fewshot"] == {"a": 1}
    assert table["base"] == {
        "name": "flores_alignment",
        "run": str(base),
        "system": "base-fewshot",
        "seeds": [0, 1, 2],
    }
    assert table["arms"]["a"]["name"] == "ablation_a" and table["arms"]["a"]["run"] == str(arm)
    printed = capsys.readouterr()
    assert "| en→X, low | 1 | " in printed.out and " | 10.0 % | 20.0 % | 5.0 % |" in printed.out
    assert "chrF++ (a): tuned ahead of base-fewshot in 2 of 3 directions (1 significantly), behind in 1" in printed.out
    assert "mean over demonstration seeds 0, 1, 2" in printed.out
    assert "arm b" in printed.err  # a missing arm is named, not silently dropped


def test_per_direction_table_shows_intervals_and_marks_losses(tmp_path, capsys):
    base = _base(tmp_path)
    arm = _run(
        tmp_path,
        "c",
        "tuned",
        {
            "eng_Latn-deu_Latn": [good(REFS)],
            "deu_Latn-eng_Latn": [half(REFS)],
            "eng_Latn-yor_Latn": [good(REFS)[:1] + half(REFS)[1:]],
        },
        rates=(5.0, 2.5, 0.0),
    )
    assert _script().main(["--base", str(base), "--arm", f"c={arm}", "--per-direction"]) == 0
    out = capsys.readouterr().out
    lines = {line.split(" | ")[0].lstrip("| "): line for line in out.splitlines() if line.startswith("| ")}
    assert lines["eng_Latn-deu_Latn"].endswith("] * | 5.0 % / 2.5 % / 0.0 % |")  # a significant win
    assert "| **−25.2** [-28.4, -22.2] * |" in lines["deu_Latn-eng_Latn"]  # a loss is bold
    de = lines["eng_Latn-deu_Latn"].split(" | ")
    assert de[1] == "high" and "–" in de[2]  # base-fewshot: mean (min–max of the draws)
    assert lines["average (3)"].count("–") == 1
    assert "tuned ahead of base-fewshot in 2 of 3 directions (1 significantly), behind in 1 (1 significantly)" in out


def test_refuses_an_arm_that_scored_other_sentences(tmp_path):
    base = _base(tmp_path)
    outputs = {d: [half(REFS)] for d in ("eng_Latn-deu_Latn", "deu_Latn-eng_Latn", "eng_Latn-yor_Latn")}
    arm = _run(tmp_path, "a", "tuned", outputs, ids=[f"x{i}" for i in range(len(REFS))])
    with pytest.raises(SystemExit, match=r"^arm a: sentence ids differ from the base run's in eng_Latn-deu_Latn"):
        _script().main(["--base", str(base), "--arm", f"a={arm}"])


def test_refuses_an_arm_with_another_chrf_signature(tmp_path):
    base = _base(tmp_path)
    outputs = {d: [half(REFS)] for d in ("eng_Latn-deu_Latn", "deu_Latn-eng_Latn", "eng_Latn-yor_Latn")}
    arm = _run(tmp_path, "a", "tuned", outputs, sig=SIG.replace("nw:2", "nw:0"))
    with pytest.raises(SystemExit, match=r"^arm a: chrF signature differs from the base run's in eng_Latn-deu_Latn"):
        _script().main(["--base", str(base), "--arm", f"a={arm}"])


def test_an_arm_can_name_the_system_it_reads(tmp_path):
    """``NAME=RUN:tuned-sft`` reads a run's SFT (a run whose ``tuned`` is a later stage), its outputs and perplexity;
    the same run without the suffix reads ``tuned``; a system the run lacks is named."""
    base = _base(tmp_path)
    sft = {d: [good(REFS)] for d in ("eng_Latn-deu_Latn", "deu_Latn-eng_Latn", "eng_Latn-yor_Latn")}
    arm = _run(tmp_path, "rec", "tuned-sft", sft)
    later = _run(tmp_path / "later", "rec", "tuned", {d: [half(REFS)] for d in sft})
    metrics = json.loads((arm / "eval" / "metrics.json").read_text(encoding="utf-8"))
    metrics["systems"]["tuned"] = json.loads((later / "eval" / "metrics.json").read_text())["systems"]["tuned"]
    metrics["perplexity"] = {"tuned-sft": {"eng_Latn": {"perplexity": 30.0}}}
    (arm / "eval" / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    for d in sft:  # the later stage's outputs beside the SFT's
        _rows(arm / "eval" / "tuned", d, half(REFS), IDS)
    out = tmp_path / "t.json"
    argv = ["--base", str(base), "--arm", f"sft={arm}:tuned-sft", "--arm", f"later={arm}", "--json", str(out)]
    assert _script().main(argv) == 0
    table = json.loads(out.read_text(encoding="utf-8"))
    assert table["arms"]["sft"]["system"] == "tuned-sft" and table["arms"]["later"]["system"] == "tuned"
    assert table["arms"]["sft"]["perplexity"] == {"eng_Latn": {"perplexity": 30.0}}
    assert table["wins_vs_fewshot"] == {"sft": 3, "later": 0}
    with pytest.raises(SystemExit, match="no system 'base-chat'"):
        _script().main(["--base", str(base), "--arm", f"x={arm}:base-chat"])
