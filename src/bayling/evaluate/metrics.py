"""Corpus metrics through sacreBLEU objects, always stored with their signatures.

``BLEU(trg_lang=...)`` picks the tokenizer sacreBLEU's authors chose for the target language
(``zh`` for Chinese, ``ja-mecab`` for Japanese, ``ko-mecab`` for Korean, ``13a`` otherwise), so
scores are comparable with published ones (ALMA, BayLing's WMT22 outputs). chrF++ is
``CHRF(word_order=2)``.

COMET and CometKiwi are neural metrics from ``unbabel-comet`` (the ``comet`` extra); they are computed
only when the user gives a local checkpoint path, since bayling never downloads model weights itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bayling.errors import ConfigError, DataError, MissingDependencyError
from bayling.languages import get_language

METRICS = ("bleu", "chrf", "ter")


def _trg_lang(tgt: str) -> str:
    lang = get_language(tgt)
    return lang.iso639_1 or lang.iso639_3


def metric_object(name: str, tgt: str) -> Any:
    """The sacreBLEU metric object for ``name`` (``bleu``, ``chrf`` = chrF++, ``ter``) and target language."""
    import sacrebleu

    trg = _trg_lang(tgt)
    if name == "bleu":
        try:
            return sacrebleu.BLEU(trg_lang=trg)
        except (ImportError, RuntimeError) as e:  # ja-mecab / ko-mecab need an extra
            raise MissingDependencyError(
                f"BLEU for {tgt} needs the MeCab tokenizer: pip install 'sacrebleu[ja,ko]' ({e})"
            ) from None
    if name == "chrf":
        return sacrebleu.CHRF(word_order=2)
    if name == "ter":
        asian = trg in ("zh", "ja", "ko")
        return sacrebleu.TER(normalized=asian, asian_support=asian)
    raise ConfigError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")


def corpus_scores(
    hyps: Sequence[str], refs: Sequence[str], tgt: str, metrics: Sequence[str] = ("bleu", "chrf")
) -> dict[str, dict[str, Any]]:
    """Score a system output against one reference per segment.

    Returns:
        ``{metric: {"score": float, "signature": str}}`` (BLEU also has ``"bp"``).
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    out: dict[str, dict[str, Any]] = {}
    for name in metrics:
        m = metric_object(name, tgt)
        s = m.corpus_score(list(hyps), [list(refs)])
        out[name] = {"score": round(float(s.score), 2), "signature": str(m.get_signature())}
        if name == "bleu":
            out[name]["bp"] = round(float(s.bp), 4)
    return out


def sentence_bleu(hyps: Sequence[str], refs: Sequence[str], tgt: str) -> list[float]:
    """Per-segment BLEU with the target language's tokenizer (``effective_order`` so short lines score)."""
    metric_object("bleu", tgt)  # fails early, naming the extra, when MeCab is missing
    import sacrebleu

    m = sacrebleu.BLEU(trg_lang=_trg_lang(tgt), effective_order=True)
    return [round(m.sentence_score(h, [r]).score, 2) for h, r in zip(hyps, refs, strict=True)]


def comet_scores(
    sources: Sequence[str],
    hyps: Sequence[str],
    refs: Sequence[str] | None,
    model_path: str,
    batch_size: int = 16,
) -> dict[str, Any]:
    """COMET (with references) or CometKiwi (``refs=None``) from a local checkpoint.

    Args:
        sources: source segments.
        hyps: system outputs.
        refs: references, or None for a reference-free (QE) model.
        model_path: a ``checkpoints/model.ckpt`` of an unbabel-comet model already on disk.
        batch_size: segments per forward pass.

    Returns:
        ``{"score": system score x100, "signature": ..., "segments": [per-segment x100]}``.
    """
    from pathlib import Path

    from bayling.errors import require

    comet = require("comet", "comet")
    if not Path(model_path).is_file():
        raise ConfigError(f"COMET checkpoint not found: {model_path} (give the path of checkpoints/model.ckpt)")
    model = comet.load_from_checkpoint(model_path)
    rows = [{"src": s, "mt": h} for s, h in zip(sources, hyps, strict=True)]
    if refs is not None:
        for row, r in zip(rows, refs, strict=True):
            row["ref"] = r
    import torch

    out = model.predict(rows, batch_size=batch_size, gpus=1 if torch.cuda.is_available() else 0, progress_bar=False)
    version = getattr(comet, "__version__", "?")
    name = Path(model_path).parent.parent.name or Path(model_path).stem
    return {
        "score": round(100 * float(out.system_score), 2),
        "signature": f"model:{name}|refs:{0 if refs is None else 1}|comet:{version}",
        "segments": [round(100 * float(x), 2) for x in out.scores],
    }


def sentence_chrf(hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
    """Per-segment chrF++ (saved beside corpus scores for error analysis)."""
    import sacrebleu

    m = sacrebleu.CHRF(word_order=2)
    return [round(m.sentence_score(h, [r]).score, 2) for h, r in zip(hyps, refs, strict=True)]


def score_files(
    hyp: str,
    refs: Sequence[str],
    tgt: str,
    metrics: Sequence[str] = ("bleu", "chrf"),
    src: str | None = None,
    src_lang: str | None = None,
    off_target: bool = False,
    comet_model: str | None = None,
    encoding: str = "utf-8",
    errors: str = "strict",
) -> dict[str, Any]:
    """Score a hypothesis file against one or more reference files (``bayling eval score``).

    Args:
        hyp: system output, one segment per line.
        refs: reference files, line-aligned with ``hyp`` (several refs = multi-reference BLEU/chrF/TER).
        tgt: target language (sacreBLEU picks the BLEU tokenizer from it).
        metrics: sacreBLEU metrics.
        src: source file (needed for COMET).
        src_lang: source language (helps the off-target check for languages langid does not know).
        off_target: also report the off-target rate.
        comet_model: local COMET checkpoint.
        encoding: text encoding of the files.
        errors: undecodable bytes: ``strict`` (fail naming line and byte), ``replace``, ``ignore``…

    Returns:
        ``{"n": segments, metric: {"score", "signature"}, "off_target"?: %, "comet"?: {...}}``.
    """
    from bayling.evaluate.testsets import read_lines

    hyps = read_lines(hyp, encoding, errors)
    if not hyps:
        raise DataError(f"{hyp}: empty file; expected one hypothesis per line")
    ref_lines = [read_lines(r, encoding, errors) for r in refs]
    for r, lines in zip(refs, ref_lines, strict=True):
        if len(lines) != len(hyps):
            raise DataError(
                f"{r}:{min(len(lines), len(hyps)) + 1}: {len(lines)} reference lines but {len(hyps)} "
                f"hypothesis lines in {hyp}"
            )
    out: dict[str, Any] = {"n": len(hyps)}
    for name in metrics:
        m = metric_object(name, tgt)
        s = m.corpus_score(hyps, ref_lines)
        out[name] = {"score": round(float(s.score), 2), "signature": str(m.get_signature())}
    if off_target:
        from bayling.evaluate.lid import off_target_rate

        out["off_target"] = off_target_rate(hyps, tgt, src_lang)
    if comet_model:
        if src is None:
            raise ConfigError("COMET needs the source file (--src)")
        res = comet_scores(read_lines(src, encoding, errors), hyps, ref_lines[0], comet_model)
        out["comet"] = {"score": res["score"], "signature": res["signature"]}
    return out
