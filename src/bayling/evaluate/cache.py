"""Result caching of the evaluation parts, keyed on the whole ``eval`` section.

Each part of a system's evaluation (translation, benchmarks, open-ended answers, interactive) is
stored with a fingerprint of **every** ``eval`` field, minus the fields listed here as unable to
change that part's results, plus the model weights and the test data. A field added to
:class:`~bayling.evaluate.config.EvalConfig` later is therefore in every key until someone lists it:
a new setting can cost a recomputation, never a stale result.

Fields that cannot change a part's results:

* :data:`NO_EFFECT`: what no cached part reads (``report``; ``compare_base`` and the prompt
  choices, which pick systems and prompts: the resolved prompt of a system is keyed instead;
  ``judge``, whose verdicts are computed after the cached answers and cached by prompt);
* :data:`READ_BY`: fields read by some parts only (``benchmark_limit`` never changes a translation);
* ``batch_size`` where the engine ignores it (llama.cpp decodes one sequence at a time, vLLM schedules
  its own batches). The transformers engine keeps it in the key: a batch pads its prompts to one
  length, and padded rows can round differently, so greedy outputs may change with the batch size.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bayling.digest import fingerprint
from bayling.progress import console
from bayling.resume import cached as resume_cached
from bayling.resume import marked

PARTS = ("translation", "benchmarks", "open_ended", "interactive", "perplexity")

NO_EFFECT = frozenset({"report", "compare_base", "prompt", "prompts", "base_prompts", "judge"})

READ_BY: dict[str, tuple[str, ...]] = {
    "directions": ("translation",),
    "grid_languages": ("translation",),
    "grid_pivot": ("translation",),
    "max_sentences": ("translation",),
    "metrics": ("translation",),
    "off_target": ("translation",),
    "comet_model": ("translation",),
    "cometkiwi_model": ("translation",),
    "bleu_tokenize": ("translation",),
    "spm_model": ("translation",),
    "fewshot_k": ("translation",),
    "fewshot_pool": ("translation",),
    "testset": ("translation", "interactive"),
    "flores_dir": ("translation", "interactive"),
    "max_new_tokens": ("translation", "interactive"),
    "benchmarks": ("benchmarks",),
    "benchmark_languages": ("benchmarks",),
    "benchmark_limit": ("benchmarks",),
    "mgsm_max_new_tokens": ("benchmarks",),
    "open_ended": ("open_ended",),
    "open_ended_limit": ("open_ended",),
    "open_ended_max_new_tokens": ("open_ended",),
    "interactive": ("interactive",),
    "interactive_limit": ("interactive",),
    "interactive_turns": ("interactive",),
    "interactive_directions": ("interactive",),
    "interactive_third": ("interactive",),
    "perplexity_languages": ("perplexity",),
}
"""Fields only some parts read; a field missing here (``seed``, ``engine``, ``data_dir``…, or a new one) is in
every part's key."""

BATCHLESS_ENGINES = ("llamacpp", "vllm")
"""Engines whose outputs do not depend on ``eval.batch_size`` (they ignore it)."""


def no_effect(cfg: Any, part: str) -> frozenset[str]:
    """The ``eval`` fields that cannot change ``part``'s results (left out of its fingerprint)."""
    if part not in PARTS:
        raise ValueError(f"unknown evaluation part {part!r}")
    out = set(NO_EFFECT) | {name for name, parts in READ_BY.items() if part not in parts}
    if cfg.engine in BATCHLESS_ENGINES:
        out.add("batch_size")
    return frozenset(out)


SELECTION_AND_SCORING = frozenset(
    {
        "directions",
        "grid_languages",
        "grid_pivot",
        "max_sentences",
        "testset",
        "data_dir",
        "flores_dir",
        "fewshot_k",
        "fewshot_pool",
        "metrics",
        "off_target",
        "comet_model",
        "cometkiwi_model",
        "bleu_tokenize",
        "spm_model",
    }
)
"""Translation fields that choose sentences (and demonstrations) or score hypotheses, but do not change the
hypothesis for a given source and prompt: left out of the key of the resumable hypothesis journal, which checks
each direction's sources itself and is given the demonstrations directly."""


def hypotheses_key(cfg: Any, **context: Any) -> str:
    """Key of translated hypotheses (the resumable journal): every generation-relevant field plus ``context``."""
    return fingerprint(cfg, no_effect(cfg, "translation") | SELECTION_AND_SCORING, name="hypotheses", **context)


def part_fingerprint(cfg: Any, part: str, **context: Any) -> str:
    """Fingerprint of one part: its ``eval`` fields plus ``context`` (weights digest, test data, prompt)."""
    return fingerprint(cfg, no_effect(cfg, part), name="eval", part=part, **context)


def cached_part(
    part_dir: Path, fp: str, label: str, compute: Callable[[], Any], memo: dict[str, Path] | None = None
) -> Any:
    """``part_dir/result.json`` when its marker ``part_dir/fingerprint`` records ``fp``, else compute and store it
    (:func:`bayling.resume.cached`).

    ``memo`` maps fingerprints computed earlier in this run to their directories: a part whose key another
    system already had (``base-fewshot`` and ``base-chat`` share weights, and only translation depends on the
    prompt) is copied instead of computed twice.
    """
    res, marker = part_dir / "result.json", part_dir / "fingerprint"

    def unchanged() -> None:
        console.print(f"[dim]eval: {label} unchanged, using cached results[/dim]")

    copy = marked(marker, fp) is None and memo is not None and fp in memo and memo[fp] != part_dir
    if copy:
        console.print(f"[dim]eval: {label} is the same as {memo[fp].parent.name}'s, copied[/dim]")
        shutil.copytree(memo[fp], part_dir, dirs_exist_ok=True)
    out = resume_cached(res, marker, fp, compute, None if copy else unchanged)
    if memo is not None:
        memo.setdefault(fp, part_dir)
    return out
