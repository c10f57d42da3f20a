"""What tuning cost in each language: log-likelihood (perplexity) of held-out text, base vs tuned.

Instruction tuning on translation dialogues can make a model worse at plain English or Chinese;
the per-token negative log-likelihood of held-out monolingual text shows it without any prompt or
judge. ``eval.perplexity.languages: [eng_Latn, zho_Hans]`` scores, per system and language, the
texts of that language the translation evaluation uses (the data stage's ``heldout.jsonl`` with
``eval.testset: heldout``, the records of a ``.jsonl``/``.tsv`` test set, else FLORES-200 devtest; the
first ``eval.max_sentences``).

Each text is scored as raw text, no chat template, with the machinery of the multiple-choice scorer
(:mod:`bayling.evaluate.mc`): an empty context, so the text is conditioned on BOS (EOS without
one), as lm-eval's ``loglikelihood_rolling`` does; texts longer than the model are scored in
disjoint windows, each with the preceding tokens as context. Reported per language:

* ``nll_per_token`` (mean negative log-likelihood, nats) and ``perplexity`` = exp of it, with
  ``tokens``: comparable between base and tuned (same tokenizer), not across tokenizers;
* ``nll_per_char``, ``nll_per_byte`` and ``bits_per_byte`` (lm-eval's definition: NLL / bytes / ln 2):
  tokenizer-independent, comparable across models;
* ``n`` texts, ``chars``, ``bytes``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bayling.engines import Engine
from bayling.errors import DataError
from bayling.evaluate.config import BATCH_SIZE, EvalConfig
from bayling.evaluate.mc import _hf_parts, encode_request, max_length, score_tokens


def perplexity_texts(cfg: EvalConfig, lang: str, heldout_file: str | Path | None = None) -> list[str]:
    """The held-out texts of ``lang`` the evaluation uses, first ``cfg.max_sentences`` (0 = all).

    Args:
        cfg: the :class:`~bayling.evaluate.config.EvalConfig`.
        lang: FLORES code or alias.
        heldout_file: the data stage's ``heldout.jsonl`` (``testset: heldout``).
    """
    from bayling.languages import get_language
    from bayling.records import dataset_dir, load_parallel, read_columns, read_jsonl_parallel

    code = get_language(lang).code
    if cfg.testset == "heldout":
        if heldout_file is None or not Path(heldout_file).is_file():
            raise DataError("eval.perplexity.languages with eval.testset=heldout needs the data stage's heldout.jsonl")
        texts = [r.texts[code] for r in read_jsonl_parallel(heldout_file) if code in r.texts]
    elif Path(cfg.testset).suffix in (".jsonl", ".json", ".tsv"):
        texts = [r.texts[code] for r in load_parallel(cfg.testset, [code])]
    else:
        root = Path(cfg.testset).expanduser()
        if not root.is_dir():
            root = dataset_dir("flores200", cfg.data_dir, cfg.flores_dir)
        texts = read_columns(root, [code])[code]
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise DataError(f"eval.perplexity.languages: no {code} text in test set {cfg.testset!r}")
    return texts[: cfg.max_sentences] if cfg.max_sentences > 0 else texts


def texts_by_language(cfg: EvalConfig, heldout_file: str | Path | None = None) -> dict[str, list[str]]:
    """``{FLORES code: texts}`` for every language of ``cfg.perplexity.languages``."""
    from bayling.languages import get_language

    return {get_language(c).code: perplexity_texts(cfg, c, heldout_file) for c in cfg.perplexity.languages}


def _windows(ids: list[int], prefix: int, limit: int) -> list[tuple[list[int], list[int]]]:
    """``(context, continuation)`` token windows covering ``ids``, each predicting at most ``limit`` tokens."""
    full = [prefix, *ids]
    out = []
    for a in range(0, len(ids), limit):
        b = min(a + limit, len(ids))
        out.append((full[max(0, b - limit) : a + 1], full[a + 1 : b + 1]))
    return out


def text_loglikelihoods(
    engine: Engine, texts: Sequence[str], batch_size: int = BATCH_SIZE, progress: Callable[[int], None] | None = None
) -> list[tuple[float, int]]:
    """``(summed log-likelihood, number of tokens scored)`` of each text, as raw text after BOS."""
    model, tok, _ = _hf_parts(engine)
    limit = max_length(model, tok)
    reqs, owner = [], []
    for i, text in enumerate(texts):
        (prefix,), ids = encode_request(tok, "", text)  # empty context: [BOS or EOS], the text's tokens
        for w in _windows(ids, prefix, limit):
            reqs.append(w)
            owner.append(i)
    lls = score_tokens(engine, reqs, batch_size)
    out = [[0.0, 0] for _ in texts]
    for i, ll, (_, cont) in zip(owner, lls, reqs, strict=True):
        out[i][0] += ll
        out[i][1] += len(cont)
    if progress is not None:
        progress(len(texts))
    return [(float(a), int(b)) for a, b in out]


def perplexity_summary(texts: Sequence[str], scored: Sequence[tuple[float, int]]) -> dict[str, Any]:
    """Per-token and per-character/byte negative log-likelihoods of a language's texts."""
    nll = -sum(ll for ll, _ in scored)
    tokens = sum(n for _, n in scored)
    chars = sum(len(t) for t in texts)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    per_token = nll / max(tokens, 1)
    return {
        "nll_per_token": round(per_token, 4),
        "perplexity": round(math.exp(per_token), 3),
        "nll_per_char": round(nll / max(chars, 1), 4),
        "nll_per_byte": round(nll / max(nbytes, 1), 4),
        "bits_per_byte": round(nll / max(nbytes, 1) / math.log(2), 4),
        "tokens": tokens,
        "chars": chars,
        "bytes": nbytes,
        "n": len(texts),
    }


def score_perplexity(
    engine: Engine, texts: Sequence[str], batch_size: int = BATCH_SIZE, progress: Callable[[int], None] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Summary (:func:`perplexity_summary`) and per-text rows (``loglik``, ``tokens``) for one language."""
    scored = text_loglikelihoods(engine, texts, batch_size, progress)
    rows = [{"i": i, "loglik": round(ll, 6), "tokens": n} for i, (ll, n) in enumerate(scored)]
    return perplexity_summary(texts, scored), rows
