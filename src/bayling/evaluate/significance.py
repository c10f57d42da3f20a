"""Is tuned ahead of the base, or is it noise? Paired bootstrap intervals of every Δ, and the win counts.

At 20-50 sentences per direction a Δ of a few chrF++ points can be chance. Each Δ (tuned - baseline) gets the
95 % interval of sacreBLEU's paired bootstrap resampling (``sacrebleu --paired-bs``: 1000 resamples of the
segments with replacement, seed 12345; :func:`bayling.evaluate.metrics.paired_bootstrap`): every resample
rescores both systems on the same segments, and the interval is the spread of the resampled Δ. A Δ is a
**significant** win or loss when its interval excludes 0.

A few-shot baseline drawn with several demonstration seeds (:func:`bayling.evaluate.fewshot.mean_over_seeds`)
counts as the mean of its draws: on each resample, Δ = tuned's corpus score minus the mean over the draws of
their corpus scores on the same segments. So the interval covers the sentence sample; the draws' spread is
shown beside it (min–max), not folded in.

The average over directions gets an interval too: the mean of the directions' resampled Δ. Every direction is
resampled with the same seed, so on a multi-parallel test set (the same sentence ids in every direction, as
FLORES and the held-out split) a resample draws whole records across directions.

The hypotheses are read back from the per-sentence files the translation part writes
(``OUT/<system>/<direction>.jsonl``, ``OUT/<system>/seed-<s>/<direction>.jsonl`` per draw), so the numbers can be
recomputed from a finished run (``bench/ablation_table.py`` compares runs this way).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bayling.errors import DataError
from bayling.evaluate.metrics import (
    BOOTSTRAP_SAMPLES,
    BOOTSTRAP_SEED,
    LOWER_IS_BETTER,
    delta_interval,
    metric_object,
    paired_bootstrap,
)

METHOD = (
    "paired bootstrap resampling (sacreBLEU --paired-bs: {n} resamples, seed {seed}); 95 % interval of "
    "Δ = tuned - baseline (the mean over its demonstration draws); significant when the interval excludes 0"
)

BOOTSTRAPPED = ("bleu", "chrf", "ter")
"""Metrics with sacreBLEU sufficient statistics (COMET has none: no interval)."""


def hypothesis_files(sys_dir: str | Path, direction: str, entry: dict[str, Any]) -> list[Path]:
    """The per-sentence files of ``direction`` for a system's ``metrics.json`` entry: one, or one per draw."""
    d = Path(sys_dir)
    seeds = entry.get("seeds")
    if seeds:
        return [d / f"seed-{s}" / f"{direction}.jsonl" for s in seeds]
    return [d / f"{direction}.jsonl"]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The per-sentence rows of one direction (``id, src, ref, hyp`` and scores)."""
    from bayling.io import read_jsonl

    if not path.is_file():
        raise DataError(f"{path} not found: the per-sentence outputs of this direction are needed for its interval")
    return list(read_jsonl(path))


def direction_outputs(
    sys_dir: str | Path, direction: str, entry: dict[str, Any]
) -> tuple[list[str], list[str], list[list[str]]]:
    """``(ids, references, [hypotheses of each draw])`` of one system and direction.

    Raises:
        DataError: a file is missing, or the draws do not hold the same sentences.
    """
    files = hypothesis_files(sys_dir, direction, entry)
    runs = [read_rows(f) for f in files]
    ids = [r["id"] for r in runs[0]]
    for f, rows in zip(files[1:], runs[1:], strict=True):
        if [r["id"] for r in rows] != ids:
            raise DataError(f"{f}: other sentence ids than {files[0]}")
    return ids, [r["ref"] for r in runs[0]], [[r["hyp"] for r in rows] for rows in runs]


def compare_direction(
    tuned_dir: str | Path,
    tuned: dict[str, Any],
    base_dir: str | Path,
    base: dict[str, Any],
    direction: str,
    metrics: Sequence[str] = ("chrf",),
    bleu_tokenize: str = "auto",
    spm: Path | None = None,
) -> dict[str, tuple[float, Any]]:
    """``{metric: (real Δ, resampled Δ)}`` of tuned against the base in one direction (each the mean over its
    demonstration draws when it has several: a tuned model prompted few-shot is drawn like the base).

    ``tuned`` and ``base`` are the systems' ``metrics.json`` entries of the direction. A metric the direction has
    no score for (BLEU into an unspaced script without spBLEU) is left out.

    Raises:
        DataError: the two systems scored different sentences.
    """
    ids, refs, hyps = direction_outputs(tuned_dir, direction, tuned)
    base_ids, _, draws = direction_outputs(base_dir, direction, base)
    if base_ids != ids:
        raise DataError(f"{direction}: {tuned_dir} and {base_dir} scored different sentences (ids differ)")
    out = {}
    tgt = direction.split("-", 1)[1]
    for name in metrics:
        if name not in BOOTSTRAPPED or tuned.get(name, {}).get("score") is None:
            continue
        if base.get(name, {}).get("score") is None:
            continue
        metric = metric_object(name, tgt, bleu_tokenize, spm)
        out[name] = paired_bootstrap(metric, hyps, draws, refs)
    return out


def summarize(per_direction: dict[str, dict[str, tuple[float, Any]]], metrics: Sequence[str]) -> dict[str, Any]:
    """Intervals per direction, of the average over directions, and the counts of (significant) wins and losses.

    Returns:
        ``{"directions": {direction: {metric: interval}}, "average": {metric: interval}, "counts": {metric:
        {"directions", "wins", "losses", "significant_wins", "significant_losses"}}}`` (intervals as
        :func:`~bayling.evaluate.metrics.delta_interval`).
    """
    import numpy as np

    out: dict[str, Any] = {"directions": {}, "average": {}, "counts": {}}
    for d, per in per_direction.items():
        out["directions"][d] = {m: delta_interval(r, s, m in LOWER_IS_BETTER) for m, (r, s) in per.items()}
    for m in metrics:
        pairs = [per[m] for per in per_direction.values() if m in per]
        if not pairs:
            continue
        out["average"][m] = delta_interval(
            float(np.mean([r for r, _ in pairs])), np.mean([s for _, s in pairs], axis=0), m in LOWER_IS_BETTER
        )
        ivs = [iv[m] for iv in out["directions"].values() if m in iv]
        better = [(iv["delta"] < 0) if m in LOWER_IS_BETTER else (iv["delta"] > 0) for iv in ivs]
        worse = [(iv["delta"] > 0) if m in LOWER_IS_BETTER else (iv["delta"] < 0) for iv in ivs]
        out["counts"][m] = {
            "directions": len(ivs),
            "wins": sum(better),
            "losses": sum(worse),
            "significant_wins": sum(iv["significant"] == "win" for iv in ivs),
            "significant_losses": sum(iv["significant"] == "loss" for iv in ivs),
        }
    return out


def significance(
    out_dir: str | Path,
    metrics: dict[str, Any],
    baseline: str,
    metric_names: Sequence[str],
    bleu_tokenize: str = "auto",
    spm: Path | None = None,
    system: str = "tuned",
) -> dict[str, Any]:
    """``metrics.json``'s ``significance``: ``system`` against ``baseline`` in every direction of an evaluation
    written to ``out_dir`` (see :func:`summarize`), with the method, the baseline's draws and the resampling."""
    systems = metrics["systems"]
    per = {
        d: compare_direction(
            Path(out_dir) / system,
            systems[system][d],
            Path(out_dir) / baseline,
            systems[baseline][d],
            d,
            metric_names,
            bleu_tokenize,
            spm,
        )
        for d in metrics["directions"]
    }
    seeds = next((v["seeds"] for v in systems[baseline].values() if isinstance(v, dict) and v.get("seeds")), None)
    return {
        "system": system,
        "baseline": baseline,
        "baseline_seeds": [int(s) for s in seeds] if seeds else None,
        "method": METHOD.format(n=BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED),
        "n_samples": BOOTSTRAP_SAMPLES,
        "seed": BOOTSTRAP_SEED,
        **summarize(per, metric_names),
    }


def interval_text(iv: dict[str, Any] | None, delta: float | None = None) -> str:
    """``+2.1 [+0.3, +4.0] *`` (``*``: the interval excludes 0); the bare Δ when there is no interval."""
    if iv is None:
        return "n/a" if delta is None else f"{delta:+.1f}"
    mark = " *" if iv["significant"] else ""
    d = iv["delta"] if delta is None else delta
    return f"{d:+.1f} [{iv['low']:+.1f}, {iv['high']:+.1f}]{mark}"


def counts_text(counts: dict[str, Any], label: str, baseline: str) -> str:
    """``chrF++: tuned ahead of base-fewshot in 17 of 24 directions (9 significantly), behind in 7 (2 significantly)``."""
    return (
        f"{label}: tuned ahead of {baseline} in {counts['wins']} of {counts['directions']} directions "
        f"({counts['significant_wins']} significantly), behind in {counts['losses']} "
        f"({counts['significant_losses']} significantly)"
    )
