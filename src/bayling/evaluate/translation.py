"""Translation evaluation: generate with an engine, score with sacreBLEU, save per-sentence outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bayling.data.io import write_json, write_jsonl
from bayling.data.parallel import ParallelRecord
from bayling.data.templates import translation_prompt
from bayling.engines import GenerationParams
from bayling.evaluate.metrics import corpus_scores, sentence_chrf
from bayling.languages import get_language


def parse_direction(d: str) -> tuple[str, str]:
    """``"eng_Latn-zho_Hans"`` or ``"en-zh"`` -> FLORES codes; rejects a malformed pair."""
    from bayling.errors import ConfigError

    parts = d.split("-") if d.count("-") == 1 else d.split("->")
    if len(parts) != 2:
        raise ConfigError(f"direction {d!r} must look like eng_Latn-zho_Hans or en-zh")
    return get_language(parts[0].strip()).code, get_language(parts[1].strip()).code


def translate_and_score(
    engine: Any,
    records: list[ParallelRecord],
    directions: list[tuple[str, str]],
    out_dir: str | Path,
    max_new_tokens: int = 96,
    metrics: list[str] | tuple[str, ...] = ("bleu", "chrf"),
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Translate ``records`` in every direction with ``engine`` and score them.

    All directions are sent to the engine as one batch list so it can group by length.

    Returns:
        ``{"eng_Latn-zho_Hans": {"bleu": {...}, "chrf": {...}, "n": 40}, ...}``; hypotheses and per-sentence
        chrF++ are written to ``out_dir/<direction>.jsonl``.
    """
    out = Path(out_dir)
    convs, index = [], []
    for src, tgt in directions:
        for r in records:
            convs.append([{"role": "user", "content": translation_prompt(r.texts[src], src, tgt)}])
            index.append((src, tgt, r))
    hyps = engine.generate(convs, GenerationParams(max_new_tokens=max_new_tokens), progress=progress)
    results: dict[str, Any] = {}
    for src, tgt in directions:
        rows = [(r, h) for (s, t, r), h in zip(index, hyps, strict=True) if (s, t) == (src, tgt)]
        hs = [h for _, h in rows]
        refs = [r.texts[tgt] for r, _ in rows]
        key = f"{src}-{tgt}"
        results[key] = {**corpus_scores(hs, refs, tgt, metrics), "n": len(rows)}
        chrf = sentence_chrf(hs, refs)
        write_jsonl(
            out / f"{key}.jsonl",
            ({"id": r.id, "src": r.texts[src], "ref": ref, "hyp": h, "chrf": c}
             for (r, h), ref, c in zip(rows, refs, chrf, strict=True)),
        )
    write_json(out / "scores.json", results)
    return results
