"""bench/ablation_table.py: the README's ablation table is recomputed from runs, so its grouping and means must hold."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("ablation_table", REPO / "bench" / "ablation_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(root: Path, name: str, system: str, scores: dict[str, tuple[float, float, float]]) -> Path:
    """A run directory whose eval/metrics.json holds ``system`` with (chrF++, off-target %, copy %) per direction."""
    run = root / name
    (run / "eval").mkdir(parents=True)
    sig = "nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0"
    directions = {
        d: {"chrf": {"score": c, "signature": sig}, "off_target": o, "copy": p} for d, (c, o, p) in scores.items()
    }
    metrics = {"sentences_per_direction": 20, "systems": {system: {**directions, "average": {}}}}
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return run


def test_groups_by_tier_and_side_and_averages(tmp_path, capsys):
    base = _run(
        tmp_path,
        "base",
        "base-fewshot",
        {
            "eng_Latn-deu_Latn": (30.0, 10.0, 0.0),
            "deu_Latn-eng_Latn": (40.0, 0.0, 0.0),
            "eng_Latn-yor_Latn": (4.0, 50.0, 0.0),
        },
    )
    arm = _run(
        tmp_path,
        "a",
        "tuned",
        {
            "eng_Latn-deu_Latn": (33.0, 0.0, 0.0),
            "deu_Latn-eng_Latn": (38.0, 0.0, 0.0),
            "eng_Latn-yor_Latn": (8.0, 90.0, 30.0),
        },
    )
    out = tmp_path / "table.json"
    assert (
        _script().main(
            ["--base", str(base), "--arm", f"a={arm}", "--arm", f"b={tmp_path / 'missing'}", "--json", str(out)]
        )
        == 0
    )
    table = json.loads(out.read_text(encoding="utf-8"))
    rows = {r["group"]: r for r in table["rows"]}
    assert list(rows) == ["en→X, high", "X→en, high", "en→X, low", "all 3"]
    assert rows["en→X, low"]["a"] == {"chrf": 8.0, "off_target": 90.0, "copy": 30.0}
    assert rows["all 3"]["a"]["chrf"] == round((33 + 38 + 8) / 3, 2)
    assert rows["all 3"]["base-fewshot"]["chrf"] == round((30 + 40 + 4) / 3, 2)
    assert table["wins_vs_fewshot"] == {"a": 2}
    printed = capsys.readouterr()
    assert "| all 3 | 3 | 24.7 | 26.3 |" in printed.out
    assert "arm b" in printed.err  # a missing arm is named, not silently dropped


def test_per_direction_table_marks_losses_and_averages(tmp_path, capsys):
    base = _run(
        tmp_path, "base", "base-fewshot", {"eng_Latn-deu_Latn": (30.0, 0, 0), "eng_Latn-yor_Latn": (4.0, 0, 0)}
    )
    arm = _run(tmp_path, "c", "tuned", {"eng_Latn-deu_Latn": (27.5, 5.0, 0.0), "eng_Latn-yor_Latn": (6.0, 40.0, 10.0)})
    assert _script().main(["--base", str(base), "--arm", f"c={arm}", "--per-direction"]) == 0
    out = capsys.readouterr().out
    assert "| eng_Latn-deu_Latn | high | 30.0 | 27.5 | **−2.5** | 5 % / 0 % |" in out  # a loss is bold
    assert "| eng_Latn-yor_Latn | low | 4.0 | 6.0 | +2.0 | 40 % / 10 % |" in out
    assert "| average (2) | | 17.0 | 16.8 | -0.2 | 22.5 % / 5.0 % |" in out
    assert "ahead of base-fewshot in 1 of 2 directions" in out
