"""Filters on generated examples: length and length ratio, language ID, exact and near duplicates, and
contamination with evaluation sets.

Language ID follows :data:`bayling.lid.DATA_FILTER`: an answer is dropped only when it is confidently in
another language than its example says and its question does not ask for that language instead ("Translate
this into Spanish" excuses Spanish); too little evidence (``unknown``) keeps it and counts it as ``lid_unchecked``.

Per-example checks (:class:`ExampleFilter`) are stateless, so shards can run them in parallel; duplicate
removal (:class:`Dedup`) keeps state and runs once, in the final merge, in a fixed order, so the kept
example of a duplicate pair never depends on the number of processes. Every drop is counted by reason.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bayling.data.config import ContaminationConfig, FilterConfig
from bayling.digest import stable_hash
from bayling.errors import ConfigError, DataError, UnknownLanguageError
from bayling.languages import get_language

# Word tokens, keeping Indic/SE-Asian combining marks inside words; unspaced scripts are split into characters.
_TOKEN = re.compile(r"[\w\u0300-\u036f\u0900-\u0dff\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff]+")
_SEASIAN = re.compile(r"[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff]")  # Thai, Lao, Tibetan, Burmese, Khmer
_WIDE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")  # Han/kana: ~3 Latin characters of meaning
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_SPACE = re.compile(r"\s+")
_SEGMENT = re.compile(r"\n|: |：")  # a quoted sentence usually follows a newline or a colon


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens for n-gram matching.

    Chinese and Japanese runs are split per character (a character is about a word). Thai, Lao, Khmer, Burmese
    and Tibetan runs are cut into 4-character pieces from the start of each run: one of their code points is a
    fraction of a word (13 of them are 2-3 words, which matched unrelated FLORES sentences), and cutting from
    the run start keeps a sentence's pieces identical wherever it is quoted.
    """
    out: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        if _WIDE.search(tok):
            out.extend(tok)
        elif _SEASIAN.search(tok):
            out.extend(tok[i : i + 4] for i in range(0, len(tok), 4))
        else:
            out.append(tok)
    return out


def effective_length(text: str) -> float:
    """Characters, with Han/kana counted as 3 and Hangul syllables as 2, so length ratios compare scripts."""
    wide = len(_WIDE.findall(text))
    hangul = len(_HANGUL.findall(text))
    return len(text) + 2 * wide + hangul


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text.lower()).strip()


class ExampleFilter:
    """Stateless per-example checks; :meth:`reason` returns why an example is dropped, or None."""

    def __init__(
        self, cfg: FilterConfig, contamination: ContaminationIndex | None = None, action: str = "drop"
    ) -> None:
        self.cfg = cfg
        self.contamination = contamination
        self.action = action
        self.lid = None
        if cfg.lid:
            from bayling.lid import LanguageID

            self.lid = LanguageID(cfg.lid_backend, cfg.lid_min_chars)
        self.counts: Counter[str] = Counter()
        """``lid_checked``/``lid_unchecked`` turns, ``contaminated_reported``."""

    def reason(self, example: dict[str, Any], replies: list[dict[str, Any]]) -> str | None:
        """Why ``example`` must go (``too_short``, ``too_long``, ``length_ratio``, ``wrong_language``,
        ``contaminated``), or None to keep it."""
        answers = [m["content"] for m in example["messages"] if m["role"] == "assistant"]
        if any(len(a.strip()) < self.cfg.min_chars for a in answers):
            return "too_short"
        if any(len(m["content"]) > self.cfg.max_chars for m in example["messages"]):
            return "too_long"
        r = self.cfg.max_length_ratio
        if r > 0:
            for a, rep in zip(answers, replies, strict=False):
                if rep.get("source"):
                    ratio = effective_length(a) / max(1.0, effective_length(rep["source"]))
                    if not (1 / r <= ratio <= r):
                        return "length_ratio"
        if self.lid is not None:
            from bayling.lid import UNKNOWN, excused

            msgs = example["messages"]
            questions = [
                next((q["content"] for q in reversed(msgs[:i]) if q["role"] == "user"), "")
                for i, m in enumerate(msgs)
                if m["role"] == "assistant"
            ]
            todo = [
                (a, rep["lang"], q) for a, rep, q in zip(answers, replies, questions, strict=False) if rep.get("lang")
            ]
            verdicts = [self.lid.decide(a, c, self.lid.data_policy) for a, c, _ in todo]
            self.counts["lid_checked"] += sum(v.status != UNKNOWN for v in verdicts)
            self.counts["lid_unchecked"] += sum(v.status == UNKNOWN for v in verdicts) + len(answers) - len(todo)
            if any(v.off and not excused(v, q, c) for v, (_, c, q) in zip(verdicts, todo, strict=True)):
                return "wrong_language"
        if self.contamination is not None and self.contamination.hit(m["content"] for m in example["messages"]):
            if self.action == "fail":
                raise DataError(f"example {example.get('id')} overlaps an evaluation set (contamination.action=fail)")
            if self.action == "drop":
                return "contaminated"
            self.counts["contaminated_reported"] += 1
        return None


class Dedup:
    """Exact duplicates (normalised conversation hash) and, optionally, near duplicates (MinHash LSH).

    Memory grows by 8 bytes per kept example for exact dedup and ``4 * num_perm`` bytes for near dedup; texts
    themselves are never kept.
    """

    def __init__(self, exact: bool = True, near: float = 0.0, num_perm: int = 64, shingle: int = 5) -> None:
        self.exact = exact
        self.seen: set[int] = set()
        self.near = near
        if near > 0:
            import numpy as np

            self._np = np
            rng = np.random.default_rng(12345)
            self.num_perm, self.shingle = num_perm, shingle
            self._a = rng.integers(1, (1 << 31) - 1, size=(num_perm, 1), dtype=np.uint64)
            self._b = rng.integers(0, (1 << 31) - 1, size=(num_perm, 1), dtype=np.uint64)
            # b bands of r rows: pairs with Jaccard >= ~(1/b)^(1/r) become candidates, then the signature decides.
            self.rows = 8 if near >= 0.7 else 4
            self.bands = num_perm // self.rows
            self._buckets: list[dict[int, list[int]]] = [{} for _ in range(self.bands)]
            self._sigs: list[Any] = []

    def _signature(self, text: str) -> Any:
        np = self._np
        t = normalise(text)
        n = self.shingle
        grams = {t[i : i + n] for i in range(max(1, len(t) - n + 1))}
        h = np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams), dtype=np.uint64, count=len(grams))
        return ((self._a * h[None, :] + self._b) % np.uint64((1 << 31) - 1)).min(axis=1).astype(np.uint32)

    def reason(self, example: dict[str, Any]) -> str | None:
        """``duplicate``/``near_duplicate`` when an earlier example was (nearly) the same, else None (and remember it)."""
        text = "\n".join(f"{m['role']}: {m['content']}" for m in example["messages"])
        if self.exact:
            key = stable_hash(normalise(text))
            if key in self.seen:
                return "duplicate"
        if self.near > 0:
            sig = self._signature(text)
            cands: set[int] = set()
            keys = [hash(sig[b * self.rows : (b + 1) * self.rows].tobytes()) for b in range(self.bands)]
            for b, k in enumerate(keys):
                cands.update(self._buckets[b].get(k, ()))
            if any(float((self._sigs[c] == sig).mean()) >= self.near for c in cands):
                return "near_duplicate"
            idx = len(self._sigs)
            self._sigs.append(sig)
            for b, k in enumerate(keys):
                self._buckets[b].setdefault(k, []).append(idx)
        if self.exact:
            self.seen.add(key)
        return None


class ContaminationIndex:
    """N-gram and exact-sentence index of evaluation text; :meth:`hit` says whether training text overlaps it.

    A training text is contaminated when it contains any ``n``-token window of an evaluation sentence, or
    (for evaluation sentences shorter than ``n`` tokens) one of its lines, or the text after a colon, equals one.
    """

    def __init__(self, n: int = 13) -> None:
        self.n = n
        self.ngrams: set[int] = set()
        self.short: set[int] = set()
        self.sentences = 0
        self.sources: list[str] = []

    def add(self, sentences: Iterable[str], source: str) -> None:
        for s in sentences:
            toks = tokens(s)
            if not toks:
                continue
            self.sentences += 1
            if len(toks) < self.n:
                self.short.add(hash(tuple(toks)))
            else:
                self.ngrams.update(hash(tuple(toks[i : i + self.n])) for i in range(len(toks) - self.n + 1))
        self.sources.append(source)

    def hit(self, texts: Iterable[str]) -> bool:
        for text in texts:
            toks = tokens(text)
            n = self.n
            if self.ngrams and any(hash(tuple(toks[i : i + n])) in self.ngrams for i in range(len(toks) - n + 1)):
                return True
            if self.short:
                for segment in [text, *_SEGMENT.split(text)]:
                    if hash(tuple(tokens(segment))) in self.short:
                        return True
        return False


def _lang_suffix(path: Path) -> str | None:
    try:
        return get_language(path.name.rsplit(".", 1)[-1]).code if "." in path.name else None
    except UnknownLanguageError:
        return None


def build_contamination_index(
    cfg: ContaminationConfig, languages: list[str], heldout: Iterable[dict[str, str]], skip_flores: bool
) -> ContaminationIndex:
    """Index the held-out records plus the configured evaluation sets.

    Args:
        cfg: contamination settings.
        languages: the build's language codes (FLORES files of other languages are not read).
        heldout: held-out records' ``{code: text}``.
        skip_flores: True when the build's own source is the FLORES split (its held-out part is the eval set).
    """
    if cfg.action not in ("drop", "report", "fail"):
        raise ConfigError(f"contamination.action must be drop, report or fail, got {cfg.action!r}")
    from bayling.records import iter_aligned

    index = ContaminationIndex(cfg.ngram)
    index.add((t for rec in heldout for t in rec.values()), "heldout")
    if cfg.flores_dir and not skip_flores:
        root = Path(cfg.flores_dir).expanduser()
        index.add((t for r in iter_aligned(root, languages, "devtest") for t in r.texts.values()), f"flores200:{root}")
    files: list[Path] = [Path(f).expanduser() for f in cfg.extra_files]
    if cfg.wmt_dir:
        root = Path(cfg.wmt_dir).expanduser()
        if not root.is_dir():
            raise DataError(f"contamination.wmt_dir not found: {root}")
        files += sorted(p for p in root.rglob("*") if p.is_file() and _lang_suffix(p))
    for f in files:
        if not f.is_file():
            raise DataError(f"contamination file not found: {f}")
        if f.suffix == ".jsonl":
            from bayling.records import iter_jsonl_parallel

            index.add((t for r in iter_jsonl_parallel(f) for t in r.texts.values()), str(f))
        else:
            from bayling.validate import iter_lines

            index.add((line.strip() for _, line in iter_lines(f)), str(f))
    return index
