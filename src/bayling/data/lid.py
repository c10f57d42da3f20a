"""Language identification, calibrated on FLORES-200 so every language's check is honest.

Two offline backends with bundled models: ``py3langid`` (default; langid.py's naive Bayes model, 140 labels,
~25 µs a sentence, BSD, installed with bayling) and ``heliport`` (HeLI-OTS in Rust, 220 labels, ~1 GB of
RAM, GPL-3; ``pip install 'bayling[heliport]'``). Neither speaks FLORES-200 codes, and both confuse close
languages, so ``lid_labels.tsv`` (made by ``bench/data_lid_calibrate.py`` from FLORES-200 devtest) says, for
each backend and FLORES code, which labels count as that language and how often that held on devtest:

* ``own``: the accepted labels are the language itself (e.g. ``de`` for deu_Latn);
* ``shared``: the backend lumps it with neighbours (acm_Arab -> ``ar``, like every Arabic variety);
  the check still catches an answer in the wrong language family, e.g. English;
* ``unchecked``: the backend cannot identify it (no label set covers 90% of devtest, or the best one is
  English's or Chinese's label). Such text is never dropped: the check is skipped and counted.

Run as::

    python -c "from bayling.data.lid import LanguageID; print(LanguageID().check('Guten Morgen, wie geht es dir?', 'deu_Latn'))"
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from bayling.errors import ConfigError, require
from bayling.languages import get_language

BACKENDS = ("py3langid", "heliport")


@dataclass(frozen=True)
class Calibration:
    """What the calibration table says about one language for one backend."""

    code: str
    labels: frozenset[str]
    status: str  # own | shared | unchecked
    accuracy: float  # share of devtest sentences whose label is in ``labels``


@lru_cache(maxsize=4)
def calibration(backend: str) -> dict[str, Calibration]:
    """FLORES code -> :class:`Calibration` for ``backend`` (from ``lid_labels.tsv``)."""
    path = Path(str(resources.files("bayling.data") / "lid_labels.tsv"))
    out = {}
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["backend"] == backend:
                labels = frozenset(x for x in row["labels"].split(",") if x)
                out[row["code"]] = Calibration(row["code"], labels, row["status"], float(row["accuracy"]))
    return out


class _Py3langid:
    MIN_PROB = 0.01
    """A text passes when its expected labels get at least this posterior mass. On the shipped sample (2,079
    texts of 20+ characters, register variants included) this rejects 1 correct text; it accepted none of 200
    FLORES sentences checked against a different language (``bench/data_lid_calibrate.py`` has the setup)."""

    def __init__(self) -> None:
        langid = require("py3langid.langid", "data")
        self._ident = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)

    def identify(self, texts: list[str]) -> list[str]:
        return [self._ident.classify(t)[0] for t in texts]

    def accepts(self, texts: list[str], labels: list[frozenset[str]]) -> list[bool]:
        out = []
        for t, ok in zip(texts, labels, strict=True):
            probs = dict(self._ident.rank(t))
            out.append(sum(probs.get(x, 0.0) for x in ok) >= self.MIN_PROB)
        return out


class _Heliport:
    TOP_K = 3

    def __init__(self) -> None:
        heliport = require("heliport", "heliport")
        self._ident = heliport.Identifier()

    def identify(self, texts: list[str]) -> list[str]:
        return list(self._ident.par_identify(texts, ignore_confidence=True))

    def accepts(self, texts: list[str], labels: list[frozenset[str]]) -> list[bool]:
        return [bool(set(self._ident.identify_topk(t, self.TOP_K)) & ok) for t, ok in zip(texts, labels, strict=True)]


@lru_cache(maxsize=2)
def _backend(name: str) -> _Py3langid | _Heliport:
    if name == "py3langid":
        return _Py3langid()
    if name == "heliport":
        return _Heliport()
    raise ConfigError(f"unknown LID backend {name!r}; choose one of {', '.join(BACKENDS)}")


class LanguageID:
    """Identify text and check it against an expected FLORES-200 language.

    Args:
        backend: ``py3langid`` or ``heliport``.
        min_chars: texts shorter than this are not checked (``None`` result).
    """

    def __init__(self, backend: str = "py3langid", min_chars: int = 20) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"unknown LID backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.min_chars = min_chars
        self.table = calibration(backend)
        self._impl = _backend(backend)

    def identify(self, texts: list[str]) -> list[str]:
        """The backend's raw labels (ISO 639 codes of its own vocabulary)."""
        return self._impl.identify(texts)

    def checkable(self, code: str) -> bool:
        """Whether this backend can verify text claimed to be in ``code``."""
        cal = self.table.get(get_language(code).code)
        return cal is not None and cal.status != "unchecked"

    def check_many(self, texts: list[str], codes: list[str]) -> list[bool | None]:
        """For each text, True/False = is/is not in its expected language; None = not checked (short or
        a language this backend cannot identify). Only a confident miss is False: py3langid must give the
        expected labels under 1% posterior mass, heliport must leave them out of its top 3."""
        out: list[bool | None] = [None] * len(texts)
        todo = [
            i
            for i, (t, c) in enumerate(zip(texts, codes, strict=True))
            if len(t) >= self.min_chars and self.checkable(c)
        ]
        if not todo:
            return out
        ok = self._impl.accepts(
            [texts[i] for i in todo], [self.table[get_language(codes[i]).code].labels for i in todo]
        )
        for i, verdict in zip(todo, ok, strict=True):
            out[i] = verdict
        return out

    def check(self, text: str, code: str) -> bool | None:
        """Single-text :meth:`check_many`."""
        return self.check_many([text], [code])[0]

    def detect(self, text: str, candidates: list[str] | None = None) -> str | None:
        """The FLORES code whose accepted labels contain the backend's label (first of ``candidates`` when
        given, else the language whose ``own`` labels match); None when nothing matches."""
        label = self.identify([text])[0]
        pool = [get_language(c).code for c in candidates] if candidates else sorted(self.table)
        for code in pool:
            cal = self.table.get(code)
            if cal and label in cal.labels and (candidates or cal.status == "own"):
                return code
        return None
