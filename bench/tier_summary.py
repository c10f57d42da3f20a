"""A translation evaluation read by resource tier: what a reward stage can game, per system and tier.

Reward stages get hacked: a policy paid in chrF++ can learn to pad, to copy the source or to answer in a language
the gate lets through. So next to chrF++ this reports, for every system of an evaluation (``runs/NAME/eval``) and
every (direction kind, target tier): the off-target, LID-unknown, copy and looping rates (:func:`looping`), and the
length ratio (characters of the hypotheses over characters of the references, summed). A few-shot base drawn with several demonstration
seeds counts every draw. Tiers are ``bayling.languages``' (``high``, ``medium``, ``low``) of the target language
for en→X and of the source language for X→en.

Run as::

    python bench/tier_summary.py runs/alignment_reward_draft --out bench/results/alignment_reward_draft_tiers.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from bayling.lid import is_loop

REPO = Path(__file__).resolve().parents[1]


looping = is_loop
"""Whether a hypothesis is a loop: :func:`bayling.lid.is_loop`, the rule the reward's loop gate uses."""


def system_files(sys_dir: Path, direction: str) -> list[Path]:
    """The per-sentence files of one direction: one, or one per demonstration draw (``seed-<s>/``)."""
    one = sys_dir / f"{direction}.jsonl"
    return [one] if one.is_file() else sorted(sys_dir.glob(f"seed-*/{direction}.jsonl"))


def summarize(eval_dir: Path, pivot: str = "eng_Latn") -> dict[str, Any]:
    """``{system: {"en->X high": {...}, ...}}`` and per-direction rows, from ``eval_dir``'s files."""
    from bayling.languages import get_language

    metrics = json.loads((eval_dir / "metrics.json").read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for system, per_dir in metrics["systems"].items():
        groups: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for direction in metrics["directions"]:
            src, tgt = direction.split("-")
            out_of = src == pivot
            key = f"{'en->X' if out_of else 'X->en'} {get_language(tgt if out_of else src).tier}"
            g = groups[key]
            chrf = (per_dir.get(direction) or {}).get("chrf", {}).get("score")
            if chrf is not None:
                g["chrf_sum"] += chrf
                g["directions"] += 1
            for path in system_files(eval_dir / system, direction):
                for line in path.read_text(encoding="utf-8").splitlines():
                    row = json.loads(line)
                    g["n"] += 1
                    g["off_target"] += bool(row.get("off_target"))
                    g["unknown"] += row.get("lid") == "unknown"
                    g["copy"] += bool(row.get("copy"))
                    g["looping"] += looping(row["hyp"])
                    g["hyp_chars"] += len(row["hyp"])
                    g["ref_chars"] += len(row["ref"])
        out[system] = {
            key: {
                "directions": int(g["directions"]),
                "chrf": round(g["chrf_sum"] / g["directions"], 2) if g["directions"] else None,
                "outputs": int(g["n"]),
                "off_target_pct": round(100 * g["off_target"] / g["n"], 1) if g["n"] else None,
                "unknown_pct": round(100 * g["unknown"] / g["n"], 1) if g["n"] else None,
                "copy_pct": round(100 * g["copy"] / g["n"], 1) if g["n"] else None,
                "looping_pct": round(100 * g["looping"] / g["n"], 1) if g["n"] else None,
                "length_ratio": round(g["hyp_chars"] / g["ref_chars"], 3) if g["ref_chars"] else None,
            }
            for key, g in sorted(groups.items())
        }
    return {"testset": metrics["testset"], "sentences_per_direction": metrics["sentences_per_direction"], **out}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="a run directory (its eval/) or an eval output directory")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    sys.path.insert(0, str(REPO / "bench"))
    from provenance import provenance

    eval_dir = a.run_dir / "eval" if (a.run_dir / "eval" / "metrics.json").is_file() else a.run_dir
    report = {"benchmark": "tier_summary", "eval_dir": str(eval_dir), **provenance(), "tiers": summarize(eval_dir)}
    for system, rows in report["tiers"].items():
        if not isinstance(rows, dict):
            continue
        for key, r in rows.items():
            print(
                f"{system:14s} {key:14s} chrF++ {r['chrf']!s:>6}  off-target {r['off_target_pct']!s:>5} %  "
                f"unknown {r['unknown_pct']!s:>5} %  copy {r['copy_pct']!s:>5} %  loops {r['looping_pct']!s:>5} %  "
                f"length {r['length_ratio']}"
            )
    if a.out:
        a.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
