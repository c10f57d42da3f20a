"""Corpus metrics through sacreBLEU objects, always stored with their signatures.

``BLEU(trg_lang=...)`` picks the tokenizer sacreBLEU's authors chose for the target language
(``zh`` for Chinese, ``ja-mecab`` for Japanese, ``ko-mecab`` for Korean, ``13a`` otherwise), so
scores are comparable with published ones (ALMA, BayLing's WMT22 outputs). chrF++ is
``CHRF(word_order=2)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bayling.errors import ConfigError, MissingDependencyError
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


def sentence_chrf(hyps: Sequence[str], refs: Sequence[str]) -> list[float]:
    """Per-segment chrF++ (saved beside corpus scores for error analysis)."""
    import sacrebleu

    m = sacrebleu.CHRF(word_order=2)
    return [round(m.sentence_score(h, [r]).score, 2) for h, r in zip(hyps, refs, strict=True)]
