"""An ablation table: tuned arms against the few-shot base, by resource tier and side of the pivot.

Every arm is a run scored on the same held-out sentences as the base run (``base-fewshot``, the mean over its
demonstration draws). Each cell is a mean over the directions of a group (en→X / X→en per tier, then all), and
each arm's Δ chrF++ gets the 95 % paired bootstrap interval of :mod:`bayling.evaluate.significance`,
recomputed from the runs' per-sentence outputs, with raw and significant wins counted. An arm that scored other
sentences, or with another chrF signature, is refused: its Δ would compare different things.

Used by ``bayling run``'s ``ablation`` stage (:mod:`bayling.ablation`) and by ``bench/ablation_table.py``, which
compares runs made apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayling.errors import DataError
from bayling.evaluate.significance import (
    compare_direction,
    counts_text,
    direction_outputs,
    interval_text,
    summarize,
)
from bayling.languages import get_language

BASE = "base-fewshot"
RATES = ("off_target", "unknown", "copy")


@dataclass
class Arm:
    """One column of the table: ``system`` (default ``tuned``; ``tuned-sft`` is a run's SFT when a later stage
    followed it) of the run in ``run_dir``."""

    name: str
    run_dir: Path
    system: str = "tuned"


def load_system(run: Path, system: str) -> tuple[dict, dict]:
    """``systems.<system>`` of ``run/eval/metrics.json`` (``{direction: {chrf, off_target, copy, ...}}``, the
    ``average`` row left out), and the whole metrics for the run-level fields.

    Raises:
        DataError: the file is missing or has no such system.
    """
    f = run / "eval" / "metrics.json"
    if not f.is_file():
        raise DataError(f"{f} not found: the run has not been evaluated")
    metrics = json.loads(f.read_text(encoding="utf-8"))
    if system not in metrics.get("systems", {}):
        raise DataError(f"{f}: no system {system!r} (has {', '.join(metrics.get('systems', {})) or 'none'})")
    return {d: v for d, v in metrics["systems"][system].items() if "-" in d}, metrics


def groups(directions: list[str], pivot: str) -> list[tuple[str, list[str]]]:
    """(name, directions) per tier and side of the pivot, then all directions: the README's rows."""
    rows = []
    for tier in ("high", "medium", "low"):
        for side in ("out", "in"):
            ks = []
            for d in directions:
                src, tgt = d.split("-")
                other = tgt if src == pivot else src
                if get_language(other).tier == tier and (src == pivot) == (side == "out"):
                    ks.append(d)
            if ks:
                arrow = "en→X" if side == "out" else "X→en"
                rows.append((f"{arrow}, {tier}", ks))
    rows.append((f"all {len(directions)}", directions))
    return rows


def mean(system: dict, ks: list[str], key: str) -> float | None:
    """Mean of chrF++ or a rate over ``ks``; None when a run did not record ``key`` (e.g. ``unknown``)."""
    vals = [system[k]["chrf"]["score"] if key == "chrf" else system[k].get(key) for k in ks]
    return None if any(v is None for v in vals) else sum(vals) / len(vals)


def draw_means(system: dict, ks: list[str]) -> list[float]:
    """chrF++ over ``ks`` of each demonstration draw (empty for a single draw)."""
    seeds = system[ks[0]].get("seeds") or {}
    return [sum(system[k]["seeds"][s]["chrf"]["score"] for k in ks) / len(ks) for s in seeds]


def check_arm(arm: Arm, scores: dict, base_dir: Path, base: dict, directions: list[str]) -> None:
    """Refuse an arm that scored other sentences, or with another chrF signature, than the base run.

    Raises:
        DataError: ``arm grpo: sentence ids differ from the base run's in eng_Latn-jav_Latn (50 vs 20)``.
    """
    for d in directions:
        a, b = scores[d]["chrf"].get("signature"), base[d]["chrf"].get("signature")
        if a != b:
            raise DataError(f"arm {arm.name}: chrF signature differs from the base run's in {d} ({a} vs {b})")
        try:
            ids = direction_outputs(arm.run_dir / "eval" / arm.system, d, scores[d])[0]
            base_ids = direction_outputs(base_dir / "eval" / BASE, d, base[d])[0]
        except DataError as e:
            raise DataError(f"arm {arm.name}: sentence ids cannot be checked: {e}") from None
        if ids != base_ids:
            raise DataError(
                f"arm {arm.name}: sentence ids differ from the base run's in {d} ({len(ids)} vs {len(base_ids)})"
            )


def intervals(arm: Arm, scores: dict, base_dir: Path, base: dict, directions: list[str]) -> dict:
    """chrF++ Δ of the arm against the base (mean over its draws) per direction: ``{direction: (Δ, resampled Δ)}``."""
    return {
        d: compare_direction(arm.run_dir / "eval" / arm.system, scores[d], base_dir / "eval" / BASE, base[d], d)[
            "chrf"
        ]
        for d in directions
    }


def fmt(v: float | None, unit: str = "") -> str:
    return "n/a" if v is None else f"{v:.1f}{unit}"


@dataclass
class Table:
    """The compared runs, loaded and checked: what :func:`render` and :func:`to_json` print."""

    base_dir: Path
    base: dict
    base_metrics: dict
    arms: dict[str, dict]
    info: dict[str, dict]
    directions: list[str]
    deltas: dict[str, dict]
    pivot: str


def compare(base_dir: Path, arms: list[Arm], pivot: str = "eng_Latn") -> Table:
    """Load the base run and every arm, check they scored the same sentences, and bootstrap each arm's Δ.

    Raises:
        DataError: a run without metrics or the system, no common direction, or an arm on other sentences.
    """
    base, base_metrics = load_system(base_dir, BASE)
    scores: dict[str, dict] = {}
    info: dict[str, dict] = {}
    for arm in arms:
        scores[arm.name], m = load_system(arm.run_dir, arm.system)
        info[arm.name] = {
            "name": m.get("name"),
            "run": str(arm.run_dir),
            "system": arm.system,
            "perplexity": m.get("perplexity", {}).get(arm.system, {}),
        }
    directions = [d for d in base if all(d in a for a in scores.values())]
    if not directions:
        raise DataError("no direction scored by the base and every arm")
    deltas = {}
    for arm in arms:
        check_arm(arm, scores[arm.name], base_dir, base, directions)
        deltas[arm.name] = intervals(arm, scores[arm.name], base_dir, base, directions)
    return Table(base_dir, base, base_metrics, scores, info, directions, deltas, pivot)


def rows(t: Table) -> list[dict[str, Any]]:
    """One row per group: the base's chrF++ (with its draws' min–max), each arm's chrF++, rates and Δ."""
    out = []
    for gname, ks in groups(t.directions, t.pivot):
        row: dict[str, Any] = {
            "group": gname,
            "directions": len(ks),
            BASE: {"chrf": round(mean(t.base, ks, "chrf"), 2)},
        }
        draws = draw_means(t.base, ks)
        if draws:
            row[BASE] |= {"min": round(min(draws), 2), "max": round(max(draws), 2)}
        for a, per in t.arms.items():
            vals = {k: mean(per, ks, k) for k in ("chrf", *RATES)}
            row[a] = {k: None if v is None else round(v, 2) for k, v in vals.items()}
            row[a]["delta"] = summarize({d: {"chrf": t.deltas[a][d]} for d in ks}, ["chrf"])["average"]["chrf"]
        out.append(row)
    return out


def counts(t: Table) -> dict[str, dict]:
    """Per arm: raw and significant wins and losses against the base over all directions."""
    return {
        a: summarize({d: {"chrf": t.deltas[a][d]} for d in t.directions}, ["chrf"])["counts"]["chrf"] for a in t.arms
    }


def render(t: Table) -> str:
    """The Markdown table and the lines that make it comparable (sentences, signature, draws, counts, perplexity)."""
    names = list(t.arms)
    head = ["group", "directions", f"chrF++ {BASE}"] + [f"chrF++ ({a})" for a in names]
    head += [f"Δ ({a}) [95 % CI]" for a in names]
    head += [f"{k} " + " / ".join(f"({a})" for a in names) for k in ("off-target", "LID unknown", "copy")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows(t):
        base = row[BASE]
        cells = [row["group"], str(row["directions"]), f"{base['chrf']:.1f}"]
        if "min" in base:
            cells[-1] += f" ({base['min']:.1f}–{base['max']:.1f})"
        cells += [f"{row[a]['chrf']:.1f}" for a in names]
        cells += [interval_text(row[a]["delta"]) for a in names]
        cells += [" / ".join(fmt(row[a][k], " %") for a in names) for k in RATES]
        lines.append("| " + " | ".join(cells) + " |")
    n = t.base_metrics.get("sentences_per_direction")
    seeds = t.base_metrics.get("prompts", {}).get(BASE, {}).get("seeds")
    lines += ["", f"{n} sentences per direction; chrF++ signature {t.base[t.directions[0]]['chrf']['signature']}"]
    if seeds:
        lines.append(
            f"{BASE}: mean over demonstration seeds {', '.join(map(str, seeds))} (min–max of the draws in brackets)"
        )
    lines.append("Δ: 95 % paired bootstrap interval (sacreBLEU's resamples, 1000, seed 12345); *: excludes 0")
    c = counts(t)
    lines += [counts_text(c[a], f"chrF++ ({a})", BASE) for a in names]
    for a in names:
        ppl = {lang: v.get("perplexity") for lang, v in t.info[a]["perplexity"].items()}
        if ppl:
            lines.append(
                f"perplexity after ({a}): " + ", ".join(f"{k} {v:.1f}" for k, v in ppl.items() if v is not None)
            )
    return "\n".join(lines)


def to_json(t: Table) -> dict[str, Any]:
    """The table as data: rows, counts, every arm's run and the base run."""
    c = counts(t)
    return {
        "sentences_per_direction": t.base_metrics.get("sentences_per_direction"),
        "directions": t.directions,
        "base": {
            "name": t.base_metrics.get("name"),
            "run": str(t.base_dir),
            "system": BASE,
            "seeds": t.base_metrics.get("prompts", {}).get(BASE, {}).get("seeds"),
        },
        "rows": rows(t),
        "wins_vs_fewshot": {a: v["wins"] for a, v in c.items()},
        "significant_wins_vs_fewshot": {a: v["significant_wins"] for a, v in c.items()},
        "significant_losses_vs_fewshot": {a: v["significant_losses"] for a, v in c.items()},
        "arms": t.info,
    }
