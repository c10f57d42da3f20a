"""Translation evaluation: generate with an engine, score with sacreBLEU, save per-sentence outputs.

Every direction's requests go to the engine as one list so it can batch by length. A system is
prompted in one of two ways (``eval.translation.prompt``): ``chat``, the canonical request
:func:`bayling.prompts.translation_prompt` (what the data stage trains on) rendered by the
engine through :mod:`bayling.chat`; or ``fewshot``, a raw completion prompt with k demonstrations
(:func:`bayling.prompts.fewshot_prompt`, demonstrations from :mod:`bayling.evaluate.fewshot`) continued by :meth:`~bayling.engines.Engine.complete` and cut at the
newline, which is how a base model is evaluated. Greedy decoding makes scores repeatable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bayling.digest import digest
from bayling.engines import Engine, GenerationParams
from bayling.evaluate.metrics import CometModels, comet_scores, corpus_scores, sentence_bleu, sentence_chrf
from bayling.io import write_json, write_jsonl
from bayling.languages import expand_languages, get_language
from bayling.prompts import fewshot_prompt, translation_prompt
from bayling.resume import Journal
from bayling.testsets import Bitext


def parse_direction(d: str) -> tuple[str, str]:
    """``"eng_Latn-zho_Hans"`` or ``"en-zh"`` -> FLORES codes; rejects a malformed pair."""
    from bayling.errors import ConfigError

    parts = d.split("-") if d.count("-") == 1 else d.split("->")
    if len(parts) != 2:
        raise ConfigError(f"direction {d!r} must look like eng_Latn-zho_Hans or en-zh")
    return get_language(parts[0].strip()).code, get_language(parts[1].strip()).code


def grid_directions(grid: Sequence[str], pivot: str = "eng_Latn") -> list[tuple[str, str]]:
    """``pivot``->X for every X, then X->``pivot`` (the en->X and X->en FLORES grids)."""
    p = get_language(pivot).code
    others = [c for c in expand_languages(grid) if c != p]
    return [(p, c) for c in others] + [(c, p) for c in others]


LengthRule = tuple[float, int]
"""``(per_source_token, offset)``: a translation may run to ``per_source_token x source tokens + offset`` new
tokens (capped by ``max_new_tokens``); ``(0, 0)`` keeps the cap alone."""


def token_limits(engine: Engine, sources: Sequence[str], cap: int, rule: LengthRule | None) -> list[int]:
    """Each source's generation limit: ``min(cap, per_source_token x tokens(source) + offset)``, counted with
    ``engine``'s tokenizer (so systems sharing a tokenizer get the same limits). A translation runs to about the
    source's length; a row still going at three times that is rambling or looping, and its tail is never scored
    well, yet it costs the most time (every step is paid by the whole batch on CPU)."""
    if rule is None or rule[0] <= 0:
        return [cap] * len(sources)
    scale, offset = rule
    return [max(1, min(cap, int(scale * engine.count_tokens(s)) + offset)) for s in sources]


def translate(
    engine: Engine,
    bitexts: Sequence[Bitext],
    max_new_tokens: int = 96,
    progress: Callable[[int], None] | None = None,
    seed: int = 0,
    fewshot: dict[str, list[tuple[str, str]]] | None = None,
    length_rule: LengthRule | None = None,
    loop_span: int = 0,
) -> dict[str, list[str]]:
    """Translate every direction's sources with ``engine`` in one call; returns ``{direction: hypotheses}``.

    Args:
        fewshot: ``{direction: [(source, target) demonstrations]}`` to prompt few-shot (raw completion, cut
            at the newline); None for the chat prompt.
        length_rule: scales each request's limit with its source (:func:`token_limits`); None: ``max_new_tokens``.
        loop_span: a greedy row that has looped over this many tokens is written out by repeating its loop
            (:attr:`~bayling.engines.GenerationParams.loop_span`); 0: every token is computed.
    """
    requests, index, sources = [], [], []
    for b in bitexts:
        for i, text in enumerate(b.sources):
            if fewshot is not None:
                requests.append(fewshot_prompt(text, b.src, b.tgt, fewshot[b.key]))
            else:
                requests.append([{"role": "user", "content": translation_prompt(text, b.src, b.tgt)}])
            index.append((b.key, i))
            sources.append(text)
    limits = token_limits(engine, sources, max_new_tokens, length_rule)
    params = GenerationParams(
        max_new_tokens=max_new_tokens, seed=seed, max_new_tokens_each=tuple(limits), loop_span=loop_span
    )
    if not requests:
        hyps = []
    elif fewshot is not None:
        hyps = engine.complete(requests, params, stop=("\n",), progress=progress)
    else:
        hyps = engine.generate(requests, params, progress=progress)
    out: dict[str, list[str]] = {b.key: [""] * len(b.sources) for b in bitexts}
    for (key, i), h in zip(index, hyps, strict=True):
        out[key][i] = h
    return out


def score_direction(
    b: Bitext,
    hyps: Sequence[str],
    metrics: Sequence[str] = ("bleu", "chrf"),
    off_target: bool = True,
    comet_model: str | None = None,
    cometkiwi_model: str | None = None,
    bleu_tokenize: str = "auto",
    spm: Path | None = None,
    comet: CometModels | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Corpus scores (with signatures) and per-sentence rows for one direction.

    ``bleu_tokenize`` and ``spm`` choose BLEU's tokenizer (:func:`bayling.evaluate.metrics.bleu_tokenizer`);
    ``comet`` holds the run's loaded COMET checkpoints.

    Returns:
        ``({"bleu": {...}, "chrf": {...}, "off_target": 2.5, "unknown": 5.0, "copy": 0.0, "n": 40}, rows)``
        where each row holds ``id, src, ref, hyp`` and the per-sentence ``chrf``, ``bleu`` (and ``off_target``,
        ``lid`` (on/off/unknown), ``copy``, ``comet``). Off-target and unknown follow
        :data:`bayling.lid.OFF_TARGET`, copies :func:`bayling.lid.is_copy`.
    """
    scores: dict[str, Any] = {**corpus_scores(hyps, b.refs, b.tgt, metrics, bleu_tokenize, spm), "n": len(hyps)}
    rows = [{"id": i, "src": s, "ref": r, "hyp": h} for i, s, r, h in zip(b.ids, b.sources, b.refs, hyps, strict=True)]
    sent_bleu = sentence_bleu(hyps, b.refs, b.tgt, bleu_tokenize, spm)
    for row, c, bl in zip(rows, sentence_chrf(hyps, b.refs), sent_bleu, strict=True):
        row["chrf"], row["bleu"] = c, bl
    if off_target:
        from bayling.lid import translation_rates, translation_verdicts

        verdicts = translation_verdicts(hyps, b.sources, b.tgt)
        scores |= translation_rates(verdicts)
        for row, v in zip(rows, verdicts, strict=True):
            row["off_target"], row["lid"], row["copy"] = v.off_target, v.lid.status, v.copy
    for name, path, refs in (("comet", comet_model, b.refs), ("cometkiwi", cometkiwi_model, None)):
        if path:
            res = comet_scores(b.sources, hyps, refs, path, models=comet)
            scores[name] = {"score": res["score"], "signature": res["signature"]}
            for row, v in zip(rows, res["segments"], strict=True):
                row[name] = v
    return scores, rows


def translate_and_score(
    engine: Engine | Callable[[], Engine],
    bitexts: Sequence[Bitext],
    out_dir: str | Path,
    max_new_tokens: int = 96,
    metrics: Sequence[str] = ("bleu", "chrf"),
    progress: Callable[[int], None] | None = None,
    off_target: bool = True,
    comet_model: str | None = None,
    cometkiwi_model: str | None = None,
    seed: int = 0,
    journal_tag: str = "",
    group_size: int = 64,
    fewshot: dict[str, list[tuple[str, str]]] | None = None,
    bleu_tokenize: str = "auto",
    spm: Path | None = None,
    comet: CometModels | None = None,
    length_rule: LengthRule | None = None,
    loop_span: int = 0,
) -> dict[str, Any]:
    """Translate ``bitexts`` with ``engine`` and score each direction, resuming after a crash.

    Directions are translated in groups of at least ``group_size`` requests (so the engine still batches
    across short directions), and each finished group is appended to ``out_dir/hypotheses.journal.jsonl``
    with ``journal_tag`` (a fingerprint of the model and settings): an interrupted FLORES grid restarts at
    the first unfinished group instead of from zero.

    Args:
        engine: the engine, or a zero-argument callable returning it (called only if something is left to do).
        fewshot: demonstrations per direction for a few-shot prompt (see :func:`translate`); None for chat.
        bleu_tokenize: BLEU tokenizer policy; ``spm`` the FLORES-200 SentencePiece model (or None).
        comet: the run's loaded COMET checkpoints (loaded once per run, not per direction).
        length_rule: each request's generation limit scales with its source (:func:`token_limits`).
        loop_span: loops of this many tokens are written out, not computed (see :func:`translate`).

    Returns:
        ``{"eng_Latn-zho_Hans": {"bleu": {...}, "chrf": {...}, "off_target": ..., "n": 40}, ...}``;
        per-sentence rows go to ``out_dir/<direction>.jsonl`` and the scores to ``out_dir/scores.json``.
    """
    out = Path(out_dir)
    journal = Journal(out / "hypotheses.journal.jsonl", key="key")
    keys = {b.key for b in bitexts}
    fresh = {
        k: d
        for k, d in journal.entries.items()
        if k in keys and d.get("tag") == journal_tag and d.get("sources") == _src_digest(bitexts, k)
    }
    if len(fresh) != len(journal):  # drop lines of other settings, so the journal never grows stale
        journal.keep(fresh.values())
    done = {k: d["hyps"] for k, d in fresh.items()}
    if progress is not None and done:
        progress(sum(len(b.sources) for b in bitexts if b.key in done))
    todo = [b for b in bitexts if b.key not in done]
    group: list[Bitext] = []
    for i, b in enumerate(todo):
        group.append(b)
        if sum(len(x.sources) for x in group) >= group_size or i == len(todo) - 1:
            eng = engine() if callable(engine) and not hasattr(engine, "generate") else engine
            hyps = translate(eng, group, max_new_tokens, progress, seed, fewshot, length_rule, loop_span)
            rows = [
                {"key": x.key, "tag": journal_tag, "sources": _src_digest(bitexts, x.key), "hyps": hyps[x.key]}
                for x in group
            ]
            journal.add(*rows)
            done.update(hyps)
            group = []
    results: dict[str, Any] = {}
    for b in bitexts:
        results[b.key], rows = score_direction(
            b, done[b.key], metrics, off_target, comet_model, cometkiwi_model, bleu_tokenize, spm, comet
        )
        write_jsonl(out / f"{b.key}.jsonl", rows)
    write_json(out / "scores.json", results)
    return results


def _src_digest(bitexts: Sequence[Bitext], key: str) -> str:
    b = next(x for x in bitexts if x.key == key)
    return digest([b.ids, b.sources], ensure_ascii=False)
