"""Corpus metrics through sacreBLEU objects, always stored with their signatures.

chrF++ (``CHRF(word_order=2)``) is computed for every target. BLEU's tokenizer is chosen per target
language by :func:`bleu_tokenizer`, under one of two policies (``eval.translation.bleu_tokenize``):

* ``auto`` (the FLORES-200 protocol, default of ``bayling eval``): sacreBLEU's language tokenizer where
  it has one (``zh``, ``ja-mecab``, ``ko-mecab``); else spBLEU, i.e. sacreBLEU's ``flores200``
  SentencePiece tokenizer, whenever its model is available; else ``13a``;
* ``wmt`` (WMT convention, default of ``bayling eval score``, what ALMA and BayLing's WMT22 numbers use):
  the same language tokenizers, ``13a`` for every other spaced script.

Under both, a target written without spaces between words (Thai, Lao, Khmer, Burmese, Tibetan, and
Chinese or Japanese where sacreBLEU has no tokenizer for the variety, e.g. ``yue_Hant``) gets spBLEU
when the model is available and otherwise **no BLEU**: ``{"score": None, "reason": ...}``, because
``13a`` would count whole phrases as words there. Any sacreBLEU tokenizer name forces that tokenizer
for every target. The SentencePiece model is read from ``eval.translation.spm_model`` or from where sacreBLEU
itself keeps it (``$SACREBLEU/models/flores200sacrebleuspm``, default ``~/.sacrebleu``);
``bayling eval download flores200-spm`` fetches it from the URL sacreBLEU uses.

COMET and CometKiwi are neural metrics from ``unbabel-comet`` (the ``comet`` extra); they are computed
only when the user gives a local checkpoint path, since bayling never downloads model weights itself.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bayling.errors import ConfigError, DataError, MissingDependencyError
from bayling.languages import get_language

METRICS = ("bleu", "chrf", "ter")

BLEU_POLICIES = ("auto", "wmt")
"""``eval.translation.bleu_tokenize`` values besides a sacreBLEU tokenizer name (see the module docstring)."""

UNSPACED_SCRIPTS = frozenset({"Hans", "Hant", "Jpan", "Thai", "Laoo", "Khmr", "Mymr", "Tibt"})
"""ISO 15924 scripts of the FLORES-200 languages written without spaces between words."""


def _trg_lang(tgt: str) -> str:
    lang = get_language(tgt)
    return lang.iso639_1 or lang.iso639_3


# ----------------------------------------------------------------------------- BLEU tokenizer policy


def sacrebleu_spm_path() -> Path:
    """Where sacreBLEU itself looks for the FLORES-200 SentencePiece model (and downloads it to)."""
    from sacrebleu.tokenizers import tokenizer_spm

    url = tokenizer_spm.SPM_MODELS["flores200"]["url"]
    return Path(tokenizer_spm.SACREBLEU_DIR) / "models" / url.rsplit("/", 1)[-1]


def spm_model_path(explicit: str | None = None) -> Path | None:
    """The FLORES-200 SentencePiece model: ``explicit`` (must exist), else sacreBLEU's copy if present."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise ConfigError(
                f"eval.translation.spm_model: {p} not found (get it with: bayling eval download flores200-spm)"
            )
        return p
    p = sacrebleu_spm_path()
    return p if p.is_file() and p.stat().st_size > 0 else None


def check_bleu_tokenize(value: str) -> None:
    """Reject an ``eval.translation.bleu_tokenize`` that is neither a policy nor a sacreBLEU tokenizer."""
    import sacrebleu

    allowed = (*BLEU_POLICIES, *sacrebleu.BLEU.TOKENIZERS)
    if value not in allowed:
        raise ConfigError(f"eval.translation.bleu_tokenize: unknown {value!r}; choose from {', '.join(allowed)}")


def bleu_tokenizer(tgt: str, policy: str = "auto", spm: Path | None = None) -> tuple[str | None, str]:
    """The sacreBLEU tokenizer for BLEU into ``tgt``, or ``None`` and the reason BLEU does not apply.

    Args:
        tgt: target language (any alias).
        policy: ``auto``, ``wmt`` or a sacreBLEU tokenizer name (forced for every target).
        spm: the FLORES-200 SentencePiece model (see :func:`spm_model_path`), None when absent.
    """
    import sacrebleu

    check_bleu_tokenize(policy)
    if policy not in BLEU_POLICIES:
        if policy == "flores200" and spm is None:
            raise ConfigError(
                "eval.translation.bleu_tokenize=flores200 needs the FLORES-200 SentencePiece model: "
                "bayling eval download flores200-spm, or set eval.translation.spm_model"
            )
        return policy, ""
    lang = get_language(tgt)
    own = sacrebleu.BLEU._TOKENIZER_MAP.get(_trg_lang(tgt))  # sacreBLEU's own table: zh, ja-mecab, ko-mecab
    if own:
        return own, ""
    if spm is not None and (policy == "auto" or lang.script in UNSPACED_SCRIPTS):
        return "flores200", ""
    if lang.script in UNSPACED_SCRIPTS:
        return None, (
            f"{lang.code} is written without spaces between words, so 13a BLEU is meaningless there, and spBLEU "
            "needs the FLORES-200 SentencePiece model (bayling eval download flores200-spm): see chrF++"
        )
    return "13a", ""


@functools.lru_cache(maxsize=4)
def _local_spm(path: str, mtime_ns: int) -> Any:
    """sacreBLEU's flores200 tokenizer reading the model from ``path`` instead of sacreBLEU's cache (one load per
    file version)."""
    from sacrebleu.tokenizers.tokenizer_spm import TokenizerSPM

    class LocalFlores200(TokenizerSPM):
        def __init__(self, model: str) -> None:  # TokenizerSPM.__init__ would download to its cache
            import sentencepiece

            self.name = "flores200"
            self.sp = sentencepiece.SentencePieceProcessor()
            self.sp.Load(model)

    return LocalFlores200(path)


def bleu_object(tokenize: str, spm: Path | None = None, **kwargs: Any) -> Any:
    """``sacrebleu.BLEU(tokenize=...)``; ``flores200`` reads ``spm`` when it is not sacreBLEU's own copy."""
    import sacrebleu

    try:
        if tokenize == "flores200" and spm is not None and Path(spm) != sacrebleu_spm_path():
            bleu = sacrebleu.BLEU(tokenize="none", **kwargs)
            bleu.tokenizer = _local_spm(str(spm), Path(spm).stat().st_mtime_ns)
            bleu.tokenizer_signature = bleu.tokenizer.signature()
            return bleu
        return sacrebleu.BLEU(tokenize=tokenize, **kwargs)
    except (ImportError, RuntimeError) as e:  # ja-mecab / ko-mecab need an extra
        raise MissingDependencyError(
            f"BLEU tokenizer {tokenize} needs its extra: pip install 'sacrebleu[ja,ko]' ({e})"
        ) from None


def _not_applicable(reason: str) -> dict[str, Any]:
    return {"score": None, "reason": reason}


# ----------------------------------------------------------------------------- corpus and sentence scores


def metric_object(name: str, tgt: str, bleu_tokenize: str = "auto", spm: Path | None = None) -> Any:
    """The sacreBLEU metric object for ``name`` (``bleu``, ``chrf`` = chrF++, ``ter``) and target language.

    Returns None for BLEU where it does not apply (see :func:`bleu_tokenizer`).
    """
    import sacrebleu

    trg = _trg_lang(tgt)
    if name == "bleu":
        tok, _ = bleu_tokenizer(tgt, bleu_tokenize, spm)
        return None if tok is None else bleu_object(tok, spm)
    if name == "chrf":
        return sacrebleu.CHRF(word_order=2)
    if name == "ter":
        asian = trg in ("zh", "ja", "ko")
        return sacrebleu.TER(normalized=asian, asian_support=asian)
    raise ConfigError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")


def corpus_scores(
    hyps: Sequence[str],
    refs: Sequence[str],
    tgt: str,
    metrics: Sequence[str] = ("bleu", "chrf"),
    bleu_tokenize: str = "auto",
    spm: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Score a system output against one reference per segment.

    Returns:
        ``{metric: {"score": float, "signature": str}}`` (BLEU also has ``"bp"``; where BLEU does not apply,
        ``{"score": None, "reason": str}``).
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    out: dict[str, dict[str, Any]] = {}
    for name in metrics:
        m = metric_object(name, tgt, bleu_tokenize, spm)
        if m is None:
            out[name] = _not_applicable(bleu_tokenizer(tgt, bleu_tokenize, spm)[1])
            continue
        s = m.corpus_score(list(hyps), [list(refs)])
        out[name] = {"score": round(float(s.score), 2), "signature": str(m.get_signature())}
        if name == "bleu":
            out[name]["bp"] = round(float(s.bp), 4)
    return out


# ----------------------------------------------------------------------------- paired bootstrap resampling

BOOTSTRAP_SAMPLES = 1000
"""Resamples of the paired bootstrap: sacreBLEU's default for ``--paired-bs``."""

BOOTSTRAP_SEED = 12345
"""Seed of the resampling indices: sacreBLEU's default ``SACREBLEU_SEED``, so its ``--paired-bs`` draws the same
resamples."""

LOWER_IS_BETTER = frozenset({"ter"})


def bootstrap_indices(n: int, n_samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> Any:
    """The resamples of ``n`` segments, ``(n_samples, n)`` indices drawn with replacement, exactly as sacreBLEU's
    paired bootstrap draws them (``numpy.random.default_rng(seed).choice``)."""
    import numpy as np

    return np.random.default_rng(seed).choice(n, size=(n_samples, n), replace=True)


def resampled_scores(metric: Any, hyps: Sequence[str], refs: Sequence[str], idxs: Any) -> tuple[float, Any]:
    """The corpus score of ``hyps`` and its score on every resample ``idxs`` (one row per resample).

    Sufficient statistics per segment, summed per resample and turned into a score by the sacreBLEU metric
    object itself (``_extract_corpus_statistics`` / ``_compute_score_from_stats``, in float32 as sacreBLEU
    does): the computation of ``sacrebleu.significance._paired_bs_test``, for any metric object bayling scores
    with (spBLEU from a local model included).
    """
    import numpy as np

    stats = metric._extract_corpus_statistics(list(hyps), [list(refs)])
    score = float(metric._aggregate_and_compute(stats).score)
    arr = np.array(stats, dtype="float32")
    return score, np.array([metric._compute_score_from_stats(s.sum(0)).score for s in arr[idxs]])


def delta_interval(real: float, samples: Any, lower_is_better: bool = False) -> dict[str, Any]:
    """Δ with its 95 % interval from the per-resample Δ ``samples``.

    The bounds are the resampled Δ at the positions sacreBLEU's ``estimate_ci`` uses for its 95 % interval
    (the ``n // 40``-th from each end of the sorted resamples); ``p`` is sacreBLEU's paired-bootstrap p-value
    (resampled ``|Δ|`` centred on its mean, counted above the real ``|Δ|``, plus one). ``significant`` is
    ``win`` or ``loss`` when the interval excludes 0 (a lower TER is a win), else None.
    """
    import numpy as np

    srt = np.sort(samples)
    lo = len(srt) // 40
    low, high = float(srt[lo]), float(srt[len(srt) - lo - 1])
    diffs = np.abs(samples)
    p = (int(np.sum(diffs - diffs.mean() > abs(real))) + 1) / (len(samples) + 1)
    sig = None
    if low > 0 or high < 0:
        sig = "win" if (low > 0) != lower_is_better else "loss"
    return {  # + 0.0: never a "-0.0"
        "delta": round(real, 2) + 0.0,
        "low": round(low, 2) + 0.0,
        "high": round(high, 2) + 0.0,
        "p": round(p, 4),
        "significant": sig,
    }


def paired_bootstrap(
    metric: Any,
    draws: Sequence[Sequence[str]],
    baselines: Sequence[Sequence[str]],
    refs: Sequence[str],
    n_samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, Any]:
    """Paired bootstrap of a system against a baseline, each given as one or more draws (e.g. a few-shot system's
    demonstration seeds), all aligned with ``refs``.

    Every resample picks the same segments for every output (sacreBLEU's resamples: :func:`bootstrap_indices`);
    its Δ is the **mean over the system's draws** of their corpus scores on that resample minus the mean over the
    baseline's draws. With one draw each this is sacreBLEU's paired bootstrap.

    Returns:
        The real Δ (mean of the system's draws' scores - mean of the baseline's) and the ``n_samples`` resampled Δ
        (see :func:`delta_interval`).
    """
    import numpy as np

    n = len(refs)
    if not draws or not baselines or any(len(h) != n for h in (*draws, *baselines)):
        raise ValueError(f"paired bootstrap needs outputs aligned with the {n} references")
    idxs = bootstrap_indices(n, n_samples, seed)

    def mean(outputs: Sequence[Sequence[str]]) -> tuple[float, Any]:
        scored = [resampled_scores(metric, h, refs, idxs) for h in outputs]
        return sum(s for s, _ in scored) / len(scored), np.mean([x for _, x in scored], axis=0)

    (score, samples), (base_score, base_samples) = mean(draws), mean(baselines)
    return score - base_score, samples - base_samples


def sentence_bleu(
    hyps: Sequence[str], refs: Sequence[str], tgt: str, bleu_tokenize: str = "auto", spm: Path | None = None
) -> list[float | None]:
    """Per-segment BLEU with the corpus tokenizer (``effective_order`` so short lines score); None where BLEU
    does not apply."""
    tok, _ = bleu_tokenizer(tgt, bleu_tokenize, spm)
    if tok is None:
        return [None] * len(hyps)
    m = bleu_object(tok, spm, effective_order=True)
    return [round(m.sentence_score(h, [r]).score, 2) for h, r in zip(hyps, refs, strict=True)]


class CometModels:
    """COMET / CometKiwi checkpoints, each loaded on first use and then kept for the whole evaluation.

    :func:`bayling.evaluate.stage.evaluate` makes one and hands it to every system and direction, so a
    checkpoint (~2 GB, tens of seconds to load) is loaded once per run, not once per direction.
    """

    def __init__(self) -> None:
        self.models: dict[str, Any] = {}
        self.loads = 0
        """How many checkpoints were actually loaded (one per distinct path)."""

    def get(self, model_path: str) -> Any:
        """The loaded model for ``model_path`` (a ``checkpoints/model.ckpt`` already on disk)."""
        if model_path not in self.models:
            from bayling.errors import require

            comet = require("comet", "comet")
            if not Path(model_path).is_file():
                raise ConfigError(
                    f"COMET checkpoint not found: {model_path} (give the path of checkpoints/model.ckpt)"
                )
            self.models[model_path] = comet.load_from_checkpoint(model_path)
            self.loads += 1
        return self.models[model_path]


def comet_scores(
    sources: Sequence[str],
    hyps: Sequence[str],
    refs: Sequence[str] | None,
    model_path: str,
    batch_size: int = 16,
    models: CometModels | None = None,
) -> dict[str, Any]:
    """COMET (with references) or CometKiwi (``refs=None``) from a local checkpoint.

    Args:
        sources: source segments.
        hyps: system outputs.
        refs: references, or None for a reference-free (QE) model.
        model_path: a ``checkpoints/model.ckpt`` of an unbabel-comet model already on disk.
        batch_size: segments per forward pass.
        models: the run's loaded checkpoints (a fresh load when None).

    Returns:
        ``{"score": system score x100, "signature": ..., "segments": [per-segment x100]}``.
    """
    import importlib

    model = (models or CometModels()).get(model_path)
    comet = importlib.import_module("comet")
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
    bleu_tokenize: str = "wmt",
    spm_model: str | None = None,
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
        src_lang: source language (not needed any more: language ID decides on the target alone).
        off_target: also report the off-target and unknown rates (:data:`bayling.lid.OFF_TARGET`) and, with
            ``src``, the copy rate (:func:`bayling.lid.is_copy`).
        comet_model: local COMET checkpoint.
        bleu_tokenize: BLEU tokenizer policy (``wmt``: sacreBLEU's own choice, as its CLI; ``auto``: spBLEU
            whenever the FLORES-200 model is available) or a sacreBLEU tokenizer name.
        spm_model: the FLORES-200 SentencePiece model (default: sacreBLEU's copy, when present).
        encoding: text encoding of the files.
        errors: undecodable bytes: ``strict`` (fail naming line and byte), ``replace``, ``ignore``…

    Returns:
        ``{"n": segments, metric: {"score", "signature"}, "off_target"?: %, "unknown"?: %, "copy"?: %,
        "comet"?: {...}}``; BLEU is ``{"score": None, "reason"}`` where it does not apply.
    """
    from bayling.validate import read_lines

    hyps = read_lines(hyp, encoding, errors)
    if not hyps:
        raise DataError(f"{hyp}: empty file; expected one hypothesis per line")
    ref_lines = [read_lines(r, encoding, errors) for r in refs]
    src_lines = read_lines(src, encoding, errors) if src is not None else None
    for r, lines in zip(refs, ref_lines, strict=True):
        if len(lines) != len(hyps):
            raise DataError(
                f"{r}:{min(len(lines), len(hyps)) + 1}: {len(lines)} reference lines but {len(hyps)} "
                f"hypothesis lines in {hyp}"
            )
    out: dict[str, Any] = {"n": len(hyps)}
    spm = spm_model_path(spm_model)
    for name in metrics:
        m = metric_object(name, tgt, bleu_tokenize, spm)
        if m is None:
            out[name] = _not_applicable(bleu_tokenizer(tgt, bleu_tokenize, spm)[1])
            continue
        s = m.corpus_score(hyps, ref_lines)
        out[name] = {"score": round(float(s.score), 2), "signature": str(m.get_signature())}
    if off_target:
        from bayling.lid import copy_flags, off_target_rates

        out |= off_target_rates(hyps, tgt)[0]
        if src_lines is not None:
            if len(src_lines) != len(hyps):
                raise DataError(f"{src}: {len(src_lines)} source lines but {len(hyps)} hypothesis lines in {hyp}")
            copies = copy_flags(hyps, src_lines)
            out["copy"] = round(100.0 * sum(copies) / max(len(copies), 1), 2)
    if comet_model:
        if src_lines is None:
            raise ConfigError("COMET needs the source file (--src)")
        res = comet_scores(src_lines, hyps, ref_lines[0], comet_model)
        out["comet"] = {"score": res["score"], "signature": res["signature"]}
    return out
