"""Result caching of the evaluation parts, keyed on the whole ``eval`` section.

Each part of a system's evaluation (translation, benchmarks, open-ended answers, interactive, perplexity) is
stored with a fingerprint of **every** ``eval`` field, minus the fields listed here as unable to change that
part's results, plus the model weights and the test data. Each part has a section of its own
(``eval.translation``, ``eval.benchmarks.tasks``…), read by that part only; the top-level fields are in every part's
key unless listed. A field added to :class:`~bayling.evaluate.config.EvalConfig` later is therefore in a key
until someone lists it: a new setting can cost a recomputation, never a stale result.

Fields that cannot change a part's results (dotted paths inside ``eval``):

* :data:`NO_EFFECT`: what no cached part reads (``report``, ``reuse_from``; ``compare_base``, ``base_prompts``, the
  translation prompt choices and the few-shot seeds, which pick systems, prompts and demonstrations: the
  resolved prompt and the demonstrations of each draw are keyed instead; ``open_ended.judge``, whose verdicts are computed after the cached answers and cached by prompt);
* :data:`READ_BY`: fields and sections read by some parts only (``benchmarks`` never changes a translation);
* ``batch_size`` where the engine ignores it (llama.cpp decodes one sequence at a time, vLLM schedules
  its own batches). The transformers engine keeps it in the key: a batch pads its prompts to one
  length, and padded rows can round differently, so greedy outputs may change with the batch size.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bayling.config import to_dict
from bayling.digest import fingerprint
from bayling.evaluate.config import EvalConfig
from bayling.progress import console
from bayling.resume import cached as resume_cached
from bayling.resume import marked

PARTS = ("translation", "benchmarks", "open_ended", "interactive", "perplexity")

NO_EFFECT = frozenset(
    {
        "report",
        "reuse_from",
        "compare_base",
        "base_prompts",
        "translation.prompt",
        "translation.prompts",
        "translation.fewshot_seeds",
        "open_ended.judge",
    }
)

READ_BY: dict[str, tuple[str, ...]] = {
    "testset": ("translation", "interactive"),
    "flores_dir": ("translation", "interactive"),
    "max_sentences": ("translation",),
    "max_new_tokens": ("translation", "interactive"),
    "translation": ("translation",),
    "benchmarks": ("benchmarks",),
    "open_ended": ("open_ended",),
    "interactive": ("interactive",),
    "perplexity": ("perplexity",),
}
"""Top-level fields and sections only some parts read; a field missing here (``seed``, ``engine``,
``data_dir``…, or a new one) is in every part's key. Perplexity is keyed by the digest of its texts instead of
the test-set fields that chose them."""


def no_effect(cfg: EvalConfig, part: str) -> frozenset[str]:
    """The ``eval`` fields (dotted paths) that cannot change ``part``'s results (left out of its fingerprint)."""
    if part not in PARTS:
        raise ValueError(f"unknown evaluation part {part!r}")
    out = set(NO_EFFECT) | {name for name, parts in READ_BY.items() if part not in parts}
    from bayling.engines.factory import engine_class

    if not engine_class(cfg.engine).batched:  # llama.cpp decodes one sequence at a time, vLLM its own batches
        out.add("batch_size")
    return frozenset(out)


def _without(cfg: EvalConfig, paths: Iterable[str]) -> dict[str, Any]:
    """``cfg`` as a nested dict without the fields at the dotted ``paths``."""
    fields = to_dict(cfg)
    for path in paths:
        *parents, last = path.split(".")
        node = fields
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return fields


SELECTION_AND_SCORING = frozenset(
    {
        "translation.directions",
        "translation.languages",
        "translation.pivot",
        "max_sentences",
        "testset",
        "data_dir",
        "flores_dir",
        "translation.fewshot_k",
        "translation.fewshot_pool",
        "translation.metrics",
        "translation.off_target",
        "translation.comet_model",
        "translation.cometkiwi_model",
        "translation.bleu_tokenize",
        "translation.spm_model",
    }
)
"""Translation fields that choose sentences (and demonstrations) or score hypotheses, but do not change the
hypothesis for a given source and prompt: left out of the key of the resumable hypothesis journal, which checks
each direction's sources itself and is given the demonstrations directly."""


def hypotheses_key(cfg: EvalConfig, **context: Any) -> str:
    """Key of translated hypotheses (the resumable journal): every generation-relevant field plus ``context``."""
    return fingerprint(
        _without(cfg, no_effect(cfg, "translation") | SELECTION_AND_SCORING), name="hypotheses", **context
    )


def part_fingerprint(cfg: EvalConfig, part: str, **context: Any) -> str:
    """Fingerprint of one part: its ``eval`` fields plus ``context`` (weights digest, test data, prompt)."""
    return fingerprint(_without(cfg, no_effect(cfg, part)), name="eval", part=part, **context)


def reuse_memo(dirs: Iterable[str | Path]) -> dict[str, Path]:
    """``eval.reuse_from``: the fingerprint of every finished part under ``dirs``, mapped to its directory.

    A part is finished when its directory holds its result (``result.json``, or a translation pass's
    ``scores.json``) beside a ``fingerprint`` marker, which is written after the result; a marker that cannot be
    read is skipped (the part is then computed). The first directory listed wins a fingerprint found twice.

    Raises:
        ConfigError: a listed directory does not exist.
    """
    from bayling.errors import ConfigError

    memo: dict[str, Path] = {}
    for d in dirs:
        root = Path(d).expanduser()
        if (root / "eval").is_dir():
            root = root / "eval"
        if not root.is_dir():
            raise ConfigError(f"eval.reuse_from: {d} is not a directory (a run directory or its eval/ folder)")
        for marker in sorted(root.rglob("fingerprint")):
            if not any((marker.parent / f).is_file() for f in ("result.json", "scores.json")):
                continue
            try:
                fp = marker.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                continue
            if fp:
                memo.setdefault(fp, marker.parent)
    return memo


def copy_from_memo(
    part_dir: Path,
    fp: str,
    label: str,
    memo: dict[str, Path] | None,
    reused: dict[str, str] | None = None,
    subfolders: bool = True,
) -> bool:
    """Copy the part of fingerprint ``fp`` that ``memo`` holds elsewhere into ``part_dir``, unless ``part_dir``
    already records ``fp``; True when it copied (``reused`` then gets ``{part_dir: source}``).

    ``subfolders=False`` copies the files only, the marker last: a single-draw translation pass shares its folder
    with the system's other parts, each reused or not by its own key.
    """
    source = None if memo is None else memo.get(fp)
    if source is None or source == part_dir or marked(part_dir / "fingerprint", fp) is not None:
        return False
    console.print(f"[dim]eval: {label} is the same as in {source}, copied[/dim]")
    if subfolders:
        shutil.copytree(source, part_dir, dirs_exist_ok=True)
    else:
        part_dir.mkdir(parents=True, exist_ok=True)
        files = sorted(f for f in source.iterdir() if f.is_file())
        for f in sorted(files, key=lambda f: f.name == "fingerprint"):
            shutil.copy2(f, part_dir / f.name)
    if reused is not None:
        reused[str(part_dir)] = str(source)
    return True


def cached_part(
    part_dir: Path,
    fp: str,
    label: str,
    compute: Callable[[], Any],
    memo: dict[str, Path] | None = None,
    reused: dict[str, str] | None = None,
) -> Any:
    """``part_dir/result.json`` when its marker ``part_dir/fingerprint`` records ``fp``, else compute and store it
    (:func:`bayling.resume.cached`).

    ``memo`` maps fingerprints computed earlier in this run to their directories: a part whose key another
    system already had (``base-fewshot`` and ``base-chat`` share weights, and only translation depends on the
    prompt), or that an earlier run holds (:func:`reuse_memo`), is copied instead of computed twice; ``reused``
    then records ``{part_dir: source}``.
    """
    res, marker = part_dir / "result.json", part_dir / "fingerprint"

    def unchanged() -> None:
        console.print(f"[dim]eval: {label} unchanged, using cached results[/dim]")

    copy = copy_from_memo(part_dir, fp, label, memo, reused)
    out = resume_cached(res, marker, fp, compute, None if copy else unchanged)
    if memo is not None:
        memo.setdefault(fp, part_dir)
    return out
