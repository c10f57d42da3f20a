"""Record a finished run in ``bench/results/``: the numbers a table quotes, with what makes them comparable and how
to make them again.

A run directory (``runs/NAME``) holds its metrics and its stages' timings, but it is not committed; a table in the
README or ``docs/`` quotes a run through this file instead: the run's ``eval/metrics.json`` (scores with their
signatures, prompts, significance), each stage's wall seconds (``STAGE/_stage.json``), the resolved config, and the
provenance (the command that made the run, as given, and this script's commit and machine).

Run as::

    python bench/record_run.py runs/quickstart --run-command "bayling run configs/quickstart.yaml" \
        --out bench/results/quickstart.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from provenance import provenance  # noqa: E402


def eval_parts(run_dir: Path, reused: dict[str, str] | None = None) -> dict:
    """How the evaluation's time went, part by part: each part marks its directory with a ``fingerprint`` file when
    it is done, so the minutes between consecutive marks (the first from the end of the stage before the
    evaluation) are each part's wall time, model loading included. A translation part also counts its hypotheses;
    a part copied from an earlier run (``reused``: ``metrics.json``'s, part -> where from) has no time of its own."""
    eval_dir = run_dir / "eval"
    before = [run_dir / s / "_stage.json" for s in ("train", "data")]
    start = next((f.stat().st_mtime for f in before if f.is_file()), None)
    marks = sorted(eval_dir.rglob("fingerprint"), key=lambda f: f.stat().st_mtime)
    if start is None or not marks:
        return {}
    reused = reused or {}
    parts: list[dict] = []
    for mark in marks:
        name = str(mark.parent.relative_to(eval_dir))
        if name in reused:  # copied from an earlier run (eval.reuse_from): its mark is that run's
            parts.append({"part": name, "minutes": None, "hypotheses": None, "reused_from": reused[name]})
            continue
        scores = mark.parent / "scores.json"
        n = None
        if scores.is_file():
            n = sum(
                v.get("n", 0) for v in json.loads(scores.read_text(encoding="utf-8")).values() if isinstance(v, dict)
            )
        t = mark.stat().st_mtime
        parts.append({"part": name, "minutes": round((t - start) / 60, 1), "hypotheses": n})
        start = t
    return {
        "how": "minutes between the fingerprint marks (mtimes) of consecutive eval parts, the first from the end of the stage before",
        "parts": parts,
    }


def record(run_dir: Path, run_command: str, note: str = "") -> dict:
    """What ``bench/results/`` keeps of ``run_dir``."""
    import yaml

    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text(encoding="utf-8"))
    stages = {}
    for stage in ("data", "train", "eval", "chat"):
        marker = run_dir / stage / "_stage.json"
        if marker.is_file():
            stages[stage] = json.loads(marker.read_text(encoding="utf-8")).get("seconds")
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    train = {}  # each training stage's scalars (steps, seconds, tokens, first/last reward and off-target...)
    summary = run_dir / "train" / "summary.json"
    if summary.is_file():
        for name, stage in json.loads(summary.read_text(encoding="utf-8")).get("stages", {}).items():
            train[name] = {k: v for k, v in stage.items() if isinstance(v, (int, float, str, bool)) or v is None}
    return {
        "benchmark": "run",
        "run": str(run_dir),
        "run_command": run_command,
        "note": note,
        "stage_seconds": stages,
        "total_minutes": round(sum(v for v in stages.values() if v) / 60, 1),
        **provenance(tuple(os.getloadavg())),
        "config": config,
        "train_stages": train,
        "metrics": metrics,
        "eval_parts": eval_parts(run_dir, metrics.get("reused")),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--run-command", required=True, help="the command that made the run (recorded as given)")
    p.add_argument("--note", default="", help="how the machine was while the run ran (idle cores, shared...)")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    out = record(a.run_dir, a.run_command, a.note)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {a.out} ({out['total_minutes']} min: {out['stage_seconds']})")


if __name__ == "__main__":
    main()
