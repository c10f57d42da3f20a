"""Language identification for every stage: one decision procedure, one documented policy per use.

The data filter (drop a generated answer in the wrong language), the off-target rate of translation
scores, the constraint hit-rate and the judge's wrong-language penalty all call :func:`decide` here, so
they never disagree about a sentence. A verdict is ``on`` (in the expected language as far as the evidence
goes), ``off`` (confidently another language) or ``unknown`` (too little evidence either way). ``unknown``
is never counted as off-target; rates report its share beside the off-target share.

How a text is decided, for an expected FLORES-200 language ``L``:

1. **Strip what carries no language**: fenced code blocks, unfenced code lines (``def f(x):``, ``x = 1``,
   ASCII lines ending in ``{``/``;``/``):``, JSON ``"key": value`` lines), inline code, URLs, e-mail
   addresses, HTML tags (entities decoded), digits, and code-like tokens (``snake_case``, ``f(x)``,
   ``a.b``, ``x=1``, regexes, ``camelCaseNames``, ALL-CAPS acronyms and SQL keywords). When ``L``'s script
   is not Latin and the text holds letters of it, capitalised Latin words are names (``他在 Google 工作``)
   and go too. Empty output is ``off`` (it is not text in ``L``).
2. **Script**: letters are counted per Unicode script, a Han character weighing 3 and a kana or Hangul
   syllable 2 (about the Latin letters each stands for). If ``L``'s script holds under 25 % of that weight
   and the other scripts have enough letters, the text is ``off``; from 25 % to 50 % it is ``unknown`` (an
   answer quoting much foreign text); otherwise only ``L``'s script is kept. Within CJK, Hangul settles
   Korean and kana Japanese (every FLORES-200 Japanese sentence has >= 26 % kana, no Chinese one has any);
   Han-only text is Chinese (Simplified and Traditional are not told apart). A script that only ``L``'s
   language group uses in the language table settles the matter: Thai, Greek, Georgian, Tamil...
3. **py3langid** (langid.py's model, 142 labels, bundled) decides within a shared script (Latin,
   Cyrillic, Arabic, Devanagari...). Its probabilities are summed per language group (``ar`` + ``ary`` +
   ``arz`` = Arabic), groups being macrolanguages (the ``macro`` column of ``languages.tsv``) or single
   languages. The best group is ``on`` when it is ``L``'s or one of ``L``'s *accepted* groups, ``off`` when
   it is not and its probability is at least the policy's ``min_prob``, else ``unknown``
   (:func:`langid_verdict`). Accepted groups (``lid_labels.tsv``, written by ``bench/data_lid_calibrate.py``)
   are few and each stands on confusion counts: py3langid gives the group, with probability >= ``min_prob``
   (so it would otherwise be a false ``off``), to at least 2 and at least 2 % of ``L``'s calibration
   sentences; at most 3 groups. English and Chinese, the pivots of bayling's translation prompts, are never
   accepted for another language (:data:`NEVER_ACCEPTED`; :func:`calibration` refuses a table that does).
   A confused group that is a high- or medium-resource language, one a model may answer in instead of
   ``L`` (Swahili for Chichewa, Tagalog for Cebuano, Hindi for Awadhi), is *ambiguous* rather than
   accepted: text given it is ``unknown`` for ``L``, neither on- nor off-target, and shows in the unknown
   share. ``bench/results/lid_calibration.json`` lists the counts behind every accepted and ambiguous
   group. The calibration sentences are the FLORES-200 devtest *training articles*: the lines no FLORES
   preset of ``configs/`` puts in its held-out or few-shot part (FLORES ``dev`` is not redistributed), so
   the held-out articles the experiments score never tuned language ID; false off-target rates are
   measured on them (``bench/lid_report.py``, ``tests/test_lid.py``). ``min_prob`` (0.8) and the
   thresholds were chosen on an inner split of the calibration sentences
   (``bench/data_lid_calibrate.py --mode tune``, ``bench/results/lid_tuning.json``).

Text with fewer letters than the policy's ``min_letters`` left after stripping is ``unknown``.
``heliport`` (HeLI-OTS, 220 labels, ``pip install 'bayling[heliport]'``) can replace py3langid in step 3
once ``bench/data_lid_calibrate.py --backend heliport`` has calibrated it (its rows are not shipped); its
own per-language confidence thresholds then replace ``min_prob`` (``und`` = ``unknown``).

Policies (:class:`Policy`), one per use:

* :data:`OFF_TARGET`: translation off-target rate (``evaluate.translation``, ``bayling eval score``),
  refinement turns and the constraint hit-rate. ``min_letters`` 10, empty output ``off``.
  :func:`off_target_rates` gives the off-target and the unknown percentages separately.
* :data:`JUDGE`: the LLM judge's wrong-language penalty. ``min_letters`` 20, and an ``off`` answer is
  excused when its question names the answer's language and not its own ("请使用英语" asks for English;
  a translation request naming both languages excuses nothing), see :func:`wrong_language`. Anything
  short of a penalty goes to the judge.
* :data:`DATA_FILTER`: generated training data. ``min_letters`` = ``data.filters.lid_min_chars`` (20), empty
  text is ``unknown`` (the length filter's business); only an unexcused ``off`` answer is dropped.

Copies: :func:`is_copy` says whether an output is (nearly) its source; see there for the rule
(``COPY_CHRF`` is measured by ``bench/data_lid_calibrate.py --mode copy``).

Translations: :func:`translation_verdicts` gives, per output, whether it is off-target and whether it copies
its source, by the rules above; the evaluation's off-target, unknown and copy rates
(:func:`translation_rates`, ``evaluate.translation.score_direction``) and a reward gate read the same verdicts.

Run as::

    python -c "from bayling.lid import decide; print(decide('他在 Google 工作，负责 Android 系统。', 'zho_Hans'))"
"""

from __future__ import annotations

import csv
import html
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from bayling.errors import ConfigError, DataError, UnknownLanguageError, require
from bayling.languages import LANGUAGES, Language, get_language

ON, OFF, UNKNOWN = "on", "off", "unknown"
BACKENDS = ("py3langid", "heliport")
NEVER_ACCEPTED = frozenset({"eng", "zho"})
"""Language groups never accepted for another language: English and Chinese are the pivots of bayling's
translation prompts (``data.pivot_languages``, ``eval.translation.pivot``), the language a model falls back
to, so an answer in them must always count as off-target."""

# ----------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Policy:
    """How much evidence one use needs; see the module docstring for the three shipped policies."""

    name: str
    min_letters: int = 10
    """Fewer letters than this (Han 3, kana/Hangul 2) left after stripping: ``unknown``."""
    min_prob: float = 0.8
    """Probability (summed over a language's labels) that a language outside the accepted set needs to make
    the text ``off``."""
    empty: str = OFF
    """Verdict for empty or whitespace-only text."""
    off_share: float = 0.25
    """Below this share of letters (by weight) in the expected script: ``off``."""
    on_share: float = 0.5
    """From this share on, the expected script is the text's script; in between: ``unknown``."""


OFF_TARGET = Policy("off_target")
JUDGE = Policy("judge", min_letters=20)
DATA_FILTER = Policy("data_filter", min_letters=20, empty=UNKNOWN)


@dataclass(frozen=True)
class Verdict:
    """One decision.

    Attributes:
        status: ``on``, ``off`` or ``unknown``.
        detected: what the text looks like: a FLORES-200 code when the language is known (``eng_Latn``),
            an ISO 15924 script code when only the script is (``Latn``), else None.
        reason: ``empty``, ``no_letters``, ``too_short``, ``script``, ``mixed_script``, ``cjk``,
            ``unique_script``, ``langid``, ``ambiguous`` or ``low_confidence``.
    """

    status: str
    detected: str | None
    reason: str

    @property
    def off(self) -> bool:
        return self.status == OFF


# ----------------------------------------------------------------------------- stripping

_FENCE = re.compile(r"(?ms)^[ \t]*(```|~~~).*?(?:^[ \t]*\1[ \t]*$|\Z)")
_INLINE = re.compile(r"`(?=\S)[^`\n]*(?<=\S)`")  # not Armenian's backtick comma: "սկսած` քվեատուփերը"
_CODE_LINE = re.compile(
    r"^[ \t]*(?:(?:def|class|import|from|return|if|elif|else|for|while|try|except|with|raise|print|const|let|var"
    r"|function|public|private|static|void|#include|#define|using|package|func)\b[^\n]*[=(){}\[\]:;][^\n]*"
    r"|(?:return|import|pass|break|continue)\b[^\n]*|[A-Za-z_][\w.\[\]]*[ \t]*[-+*/%|&]?=[ \t]*\S[^\n]*"
    r"|[ -~]*(?:[{};]|\):)|\"[^\"\n]*\"[ \t]*:[^\n]*|[})\]]+[;,]?)[ \t]*$",
    re.MULTILINE,
)
_URL = re.compile(r"(?:\b(?:https?|ftp)://|\bwww\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_TAG = re.compile(r"</?[A-Za-z][^<>\n]*>")
_RUN = re.compile(r"[!-~\u00a1-\u024f\u1e00-\u1eff]+")  # a run of ASCII/Latin characters without spaces
_CODE = re.compile(r"[_=<>{}\[\]\\|^~$/@;]|\w\(|[A-Za-z]\.[A-Za-z]|[a-z][A-Z].*[a-z][A-Z]")
"""Code-like token: code punctuation, a call, a dotted name, camelCase with two humps (one hump is also a
Bantu noun prefix: ``laseVatican``)."""
_DIGITS = re.compile(r"\d+")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff][A-Za-z\u00c0-\u024f\u1e00-\u1eff'’-]*")
_EDGE = ".,;:!?\"'()«»„“”‘’*-"


def _drop_code_token(m: re.Match[str]) -> str:
    core = m.group(0).strip(_EDGE)
    return " " if _CODE.search(core) or (len(core) > 1 and core.isupper()) else m.group(0)


def strip_non_language(text: str) -> str:
    """``text`` without code blocks and lines, inline code, URLs, e-mails, tags, numbers (digits; Arabizi's
    ``jama3`` keeps its letters) and code-like tokens; HTML entities are decoded first."""
    text = html.unescape(text)
    for pattern in (_FENCE, _CODE_LINE, _INLINE, _URL, _EMAIL, _TAG):
        text = pattern.sub(" ", text)
    return _DIGITS.sub(" ", _RUN.sub(_drop_code_token, text))


def drop_latin_names(text: str) -> str:
    """Capitalised Latin words out of (non-Latin) text: in Chinese or Thai text they are names."""
    return _LATIN_WORD.sub(lambda m: " " if m.group(0)[0].isupper() else m.group(0), text)


# ----------------------------------------------------------------------------- scripts

_SCRIPT_WORDS = {
    "LATIN": "Latn", "CYRILLIC": "Cyrl", "ARABIC": "Arab", "CJK": "Hani", "IDEOGRAPHIC": "Hani",
    "HIRAGANA": "Kana", "KATAKANA": "Kana", "KATAKANA-HIRAGANA": "Kana", "HANGUL": "Hang", "DEVANAGARI": "Deva",
    "BENGALI": "Beng", "GREEK": "Grek", "HEBREW": "Hebr", "THAI": "Thai", "LAO": "Laoo", "KHMER": "Khmr",
    "MYANMAR": "Mymr", "TIBETAN": "Tibt", "ETHIOPIC": "Ethi", "GEORGIAN": "Geor", "ARMENIAN": "Armn",
    "TAMIL": "Taml", "TELUGU": "Telu", "KANNADA": "Knda", "MALAYALAM": "Mlym", "GUJARATI": "Gujr",
    "GURMUKHI": "Guru", "ORIYA": "Orya", "SINHALA": "Sinh", "TIFINAGH": "Tfng", "OL": "Olck",
}  # fmt: skip
"""First word of a letter's Unicode name -> ISO 15924 code (Han and kana as ``Hani``/``Kana``)."""

_CJK = frozenset({"Hani", "Kana", "Hang"})
_WEIGHT = {"Hani": 3, "Kana": 2, "Hang": 2}


@lru_cache(maxsize=1 << 16)
def char_script(ch: str) -> str | None:
    """ISO 15924 code of a letter (``Latn``, ``Cyrl``, ``Hani``, ``Kana``...), None for a non-letter."""
    if not ch.isalpha():
        return None
    words = unicodedata.name(ch, "").split()
    if len(words) > 1 and words[0] in ("FULLWIDTH", "HALFWIDTH"):
        words = words[1:]
    if not words or words[0] in ("MODIFIER", "COMBINING"):
        return None
    return _SCRIPT_WORDS.get(words[0], words[0])


def script_letters(text: str) -> Counter[str]:
    """Letters per script."""
    out: Counter[str] = Counter()
    for ch in text:
        s = char_script(ch)
        if s:
            out[s] += 1
    return out


def _family(script: str) -> frozenset[str]:
    """The letter scripts text of a table script (``Hans``, ``Jpan``, ``Latn``...) is written in."""
    return _CJK if script in ("Hans", "Hant", "Jpan", "Hang", "Kore") else frozenset({script})


def _weight(counts: Counter[str], scripts: frozenset[str] | None = None) -> int:
    return sum(n * _WEIGHT.get(s, 1) for s, n in counts.items() if scripts is None or s in scripts)


def _keep(text: str, scripts: frozenset[str]) -> str:
    return "".join(" " if ch.isalpha() and char_script(ch) not in scripts else ch for ch in text)


@lru_cache(maxsize=1)
def _script_owners() -> dict[str, frozenset[str]]:
    """Table script -> the language groups (macrolanguage or ISO 639-3) written in it."""
    out: dict[str, set[str]] = {}
    for lang in LANGUAGES.values():
        out.setdefault(lang.script, set()).add(lang.group)
    return {k: frozenset(v) for k, v in out.items()}


_CJK_LANG = {"kor": "kor_Hang", "jpn": "jpn_Jpan", "zho": "zho_Hans"}


def _cjk_language(counts: Counter[str]) -> str | None:
    """``kor``, ``jpn`` or ``zho`` from the mix of Hangul, kana and Han; None when it is ambiguous."""
    hani, kana, hang = counts["Hani"], counts["Kana"], counts["Hang"]
    if hang * 2 >= hani + kana + hang:
        return "kor"
    if hang:
        return None
    if kana >= 0.1 * (hani + kana):
        return "jpn"
    return "zho" if kana == 0 else None


def _cjk_group(lang: Language) -> str | None:
    return {"Hang": "kor", "Kore": "kor", "Jpan": "jpn", "Hans": "zho", "Hant": "zho"}.get(lang.script)


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """What ``lid_labels.tsv`` says about one language for one backend (from the calibration sentences).

    Attributes:
        code: FLORES-200 code.
        accepted: language groups (:func:`label_group`) that count as this language: its own and the few the
            backend confidently confuses it with (module docstring, step 3), never :data:`NEVER_ACCEPTED`.
        status: ``script`` (the script alone decides, step 2), ``own`` (>= 90 % of the calibration sentences
            got the language's own group), ``shared`` (>= 90 % got an accepted group, e.g. Cebuano and
            Tagalog) or ``unchecked`` (the backend does not know it: ``on`` then only means that nothing
            contradicts it; English and other confidently identified languages are still ``off``).
        own_share: share of the calibration sentences given the language's own group.
        ambiguous: groups the backend confidently confuses the language with that are also languages a model
            answers in instead (high- and medium-resource: Swahili for Chichewa, Tagalog for Cebuano): text
            given one of them is ``unknown``, neither counted as this language nor as off-target.
    """

    code: str
    accepted: frozenset[str]
    status: str
    own_share: float
    ambiguous: frozenset[str] = frozenset()


_TABLE = "lid_labels.tsv"


@lru_cache(maxsize=4)
def calibration(backend: str = "py3langid") -> dict[str, Calibration]:
    """FLORES code -> :class:`Calibration` for ``backend`` (empty when the backend was never calibrated)."""
    return read_calibration(Path(str(resources.files("bayling") / _TABLE)), backend)


def read_calibration(path: Path, backend: str) -> dict[str, Calibration]:
    """``backend``'s rows of a ``lid_labels.tsv``-style table at ``path``.

    Raises:
        DataError: a row accepts a group of :data:`NEVER_ACCEPTED` for another language (``file:line``).
    """
    out = {}
    with path.open(encoding="utf-8", newline="") as f:
        lines = [(n, line) for n, line in enumerate(f, 1) if not line.startswith("#")]
    rows = csv.DictReader((line for _, line in lines), delimiter="\t")
    for (n, _), row in zip(lines[1:], rows, strict=True):
        if row["backend"] != backend:
            continue
        accepted = frozenset(x for x in row["accepted"].split(",") if x)
        ambiguous = frozenset(x for x in (row.get("ambiguous") or "").split(",") if x)
        banned = sorted((accepted | ambiguous) & NEVER_ACCEPTED - {get_language(row["code"]).group})
        if banned:
            raise DataError(
                f"{path}:{n}: {row['code']} accepts {','.join(banned)}; English and Chinese (the pivots) are never "
                "accepted (nor ambiguous) for another language"
            )
        out[row["code"]] = Calibration(row["code"], accepted, row["status"], float(row["own_share"]), ambiguous)
    return out


@lru_cache(maxsize=512)
def label_language(label: str) -> Language | None:
    """The table row a backend label means (``de`` -> deu_Latn, ``ara`` -> arb_Arab), None if none."""
    try:
        return get_language(label.split("_")[0] if "_" in label and len(label) == 8 else label)
    except UnknownLanguageError:
        return None


# ----------------------------------------------------------------------------- backends


def label_group(label: str) -> str:
    """The language group (:attr:`Language.group`) a backend label means, or the label itself when the
    table has no such language (``eo``, ``la``, ``zxx``)."""
    lang = label_language(label)
    return lang.group if lang is not None else label


class _Py3langid:
    def __init__(self) -> None:
        langid = require("py3langid.langid", "data")
        self._ident = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)

    def masses(self, text: str) -> tuple[dict[str, float], dict[str, str]]:
        """Probability per language group (``ar`` 0.87 + ``ary`` 0.13 = ``ara`` 1.0, so a backend that splits
        a language into varieties is still sure of the language), and each group's best label."""
        mass: dict[str, float] = {}
        best: dict[str, str] = {}
        for label, prob in self._ident.rank(text):
            g = label_group(label)
            mass[g] = mass.get(g, 0.0) + prob
            best.setdefault(g, label)
        return mass, best

    def top(self, text: str) -> tuple[str, float, str]:
        """(most probable language group, its probability, its best label)."""
        mass, best = self.masses(text)
        g = max(mass, key=mass.__getitem__)
        return g, mass[g], best[g]


class _Heliport:
    def __init__(self) -> None:
        heliport = require("heliport", "heliport")
        self._ident = heliport.Identifier()

    def masses(self, text: str) -> tuple[dict[str, float], dict[str, str]]:
        label = str(self._ident.identify(text))  # 'und' under heliport's own per-language confidence threshold
        return {label_group(label): 0.0 if label == "und" else 1.0}, {label_group(label): label}

    def top(self, text: str) -> tuple[str, float, str]:
        mass, best = self.masses(text)
        ((g, p),) = mass.items()
        return g, p, best[g]


@lru_cache(maxsize=2)
def _backend(name: str) -> _Py3langid | _Heliport:
    if name == "py3langid":
        return _Py3langid()
    if name == "heliport":
        return _Heliport()
    raise ConfigError(f"unknown LID backend {name!r}; choose one of {', '.join(BACKENDS)}")


# ----------------------------------------------------------------------------- deciding

Top = tuple[str, float, str]
"""The backend's best language group for a text, its probability and its best label."""


def langid_verdict(
    top: Top, lang: Language, accepted: frozenset[str], min_prob: float, ambiguous: frozenset[str] = frozenset()
) -> Verdict:
    """Step 3 of the module docstring: ``on`` for ``lang``'s group or an ``accepted`` one, ``unknown`` for an
    ``ambiguous`` one, ``off`` for another group with probability >= ``min_prob``, else ``unknown``."""
    group, prob, label = top
    if group == lang.group or group in accepted:
        return Verdict(ON, lang.code, "langid")
    hit = label_language(label)
    detected = hit.code if hit is not None else label
    if group in ambiguous:
        return Verdict(UNKNOWN, detected, "ambiguous")
    if group in ("zxx", "und") or prob < min_prob:
        return Verdict(UNKNOWN, detected, "low_confidence")
    return Verdict(OFF, detected, "langid")


def prepare(text: str, lang: str | Language) -> tuple[str, Counter[str]]:
    """Step 1 of the module docstring: the text that carries language, and its letters per script."""
    lang = get_language(lang)
    clean = strip_non_language(text)
    counts = script_letters(clean)
    if lang.script != "Latn" and _weight(counts, _family(lang.script)) > 0:  # names inside text of L's script
        clean = drop_latin_names(clean)
        counts = script_letters(clean)
    return clean, counts


def langid_input(text: str, lang: str | Language) -> str:
    """What step 3 gives the backend: the prepared text with letters of other scripts blanked out."""
    lang = get_language(lang)
    return _keep(prepare(text, lang)[0], _family(lang.script))


def script_decides(lang: str | Language) -> bool:
    """Whether the script alone settles ``lang`` (CJK, or a script only its macrolanguage uses)."""
    lang = get_language(lang)
    return _family(lang.script) == _CJK or _script_owners().get(lang.script) == {lang.group}


class LanguageID:
    """Decide whether texts are in their expected languages (see the module docstring).

    Args:
        backend: ``py3langid`` or ``heliport``.
        min_chars: ``min_letters`` of the :data:`DATA_FILTER` policy used by :meth:`check_many`/:meth:`check`
            (the data stage's interface; ``data.filters.lid_min_chars``).
        table: the calibration to use instead of the shipped ``lid_labels.tsv`` (the calibration script
            passes ``{}``: it only reads :meth:`evidence`).
    """

    def __init__(
        self,
        backend: str = "py3langid",
        min_chars: int = DATA_FILTER.min_letters,
        table: dict[str, Calibration] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"unknown LID backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.data_policy = replace(DATA_FILTER, min_letters=min_chars)
        self.table = calibration(backend) if table is None else table
        if table is None and not self.table:
            raise ConfigError(
                f"LID backend {backend!r} is not calibrated; run: python bench/data_lid_calibrate.py --backend {backend}"
            )
        self._impl = _backend(backend)

    def evidence(self, text: str, lang: str | Language, policy: Policy = OFF_TARGET) -> Verdict | Top:
        """Steps 1-2 of the module docstring: their :class:`Verdict` when they settle ``text``, else the
        backend's :data:`Top` for the kept text, which :func:`langid_verdict` turns into a verdict (the
        calibration script caches it to try thresholds without rerunning the backend)."""
        lang = get_language(lang)
        if not text.strip():
            return Verdict(policy.empty, None, "empty")
        clean, counts = prepare(text, lang)
        total = _weight(counts)
        if total == 0:
            return Verdict(UNKNOWN, None, "no_letters")
        family = _family(lang.script)
        share = _weight(counts, family) / total
        if share < policy.off_share:
            foreign = frozenset(s for s in counts if s not in family)
            if _weight(counts, foreign) < policy.min_letters:
                return Verdict(UNKNOWN, None, "too_short")
            return Verdict(OFF, self._name(_keep(clean, foreign), policy), "script")
        if share < policy.on_share:
            return Verdict(UNKNOWN, None, "mixed_script")
        kept = _keep(clean, family)
        letters = _weight(counts, family)
        if family == _CJK:
            found = _cjk_language(counts)
            if found is None or letters < policy.min_letters:
                return Verdict(UNKNOWN, None, "too_short" if found else "cjk")
            if found == _cjk_group(lang):
                return Verdict(ON, lang.code, "cjk")
            return Verdict(OFF, _CJK_LANG[found], "cjk")
        if letters < policy.min_letters:
            return Verdict(UNKNOWN, None, "too_short")
        if script_decides(lang):
            return Verdict(ON, lang.code, "unique_script")
        return self._impl.top(kept)

    def decide(self, text: str, lang: str | Language, policy: Policy = OFF_TARGET) -> Verdict:
        """The :class:`Verdict` for ``text`` expected in ``lang`` under ``policy``."""
        lang = get_language(lang)
        step = self.evidence(text, lang, policy)
        if isinstance(step, Verdict):
            return step
        cal = self.table.get(lang.code) or Calibration(lang.code, frozenset(), "unchecked", 0.0)
        return langid_verdict(step, lang, cal.accepted, policy.min_prob, cal.ambiguous)

    def _name(self, text: str, policy: Policy) -> str | None:
        """What off-script text is: a FLORES code when the backend is sure, else the dominant script."""
        counts = script_letters(text)
        script = max(counts, key=lambda s: counts[s] * _WEIGHT.get(s, 1))
        if script in _CJK:
            found = _cjk_language(counts)
            return _CJK_LANG[found] if found else "Hani"
        owners = [c for c, lang in LANGUAGES.items() if lang.script == script]
        if len(owners) == 1:
            return owners[0]
        _, prob, label = self._impl.top(text)
        hit = label_language(label)
        return hit.code if hit is not None and prob >= policy.min_prob else script

    def decide_many(self, texts: Sequence[str], langs: Sequence[str], policy: Policy = OFF_TARGET) -> list[Verdict]:
        return [self.decide(t, c, policy) for t, c in zip(texts, langs, strict=True)]

    # -- the data stage's interface (check/detect)

    def checkable(self, code: str) -> bool:
        """Whether an ``on`` verdict for ``code`` identifies the language (calibration status not unchecked)."""
        cal = self.table.get(get_language(code).code)
        return cal is not None and cal.status != "unchecked"

    def check_many(self, texts: Sequence[str], codes: Sequence[str]) -> list[bool | None]:
        """:data:`DATA_FILTER` verdicts (``min_letters`` = ``min_chars``): True on, False off, None unknown."""
        return [{ON: True, OFF: False}.get(v.status) for v in self.decide_many(texts, codes, self.data_policy)]

    def check(self, text: str, code: str) -> bool | None:
        return self.check_many([text], [code])[0]

    def detect(self, text: str, candidates: Sequence[str] | None = None, min_prob: float = 0.5) -> str | None:
        """The FLORES code ``text`` is in, judged by its script and the backend; None when unsure.

        With ``candidates``, the candidate written in the text's script that the backend finds most probable
        (a short English instruction is English among English and Chinese even when the backend alone
        would guess Romanian); without, the backend's language if its probability is >= ``min_prob``.
        """
        clean = strip_non_language(text)
        counts = script_letters(clean)
        if not counts:
            return None
        script = max(counts, key=lambda s: counts[s] * _WEIGHT.get(s, 1))
        pool = [get_language(c) for c in candidates] if candidates else None
        code: str | None = None
        if script in _CJK:
            found = _cjk_language(counts)
            code = _CJK_LANG[found] if found else None
        elif len(owners := [c for c, lang in LANGUAGES.items() if lang.script == script]) == 1:
            code = owners[0]
        elif pool is None:
            group, prob, label = self._impl.top(_keep(clean, frozenset({script})))
            hit = label_language(label)
            code = hit.code if hit is not None and hit.script == script and prob >= min_prob else None
        else:
            mass, _ = self._impl.masses(_keep(clean, frozenset({script})))
            fits = [lang for lang in pool if script in _family(lang.script)]
            best = max(fits, key=lambda lang: mass.get(lang.group, 0.0), default=None)
            return best.code if best is not None and mass.get(best.group, 0.0) > 0 else None
        if pool is None or code is None:
            return code
        group = LANGUAGES[code].group
        return next((lang.code for lang in pool if lang.group == group), None)


@lru_cache(maxsize=2)
def language_id(backend: str = "py3langid") -> LanguageID:
    """A shared :class:`LanguageID` (the backend's model is loaded once)."""
    return LanguageID(backend)


def decide(text: str, lang: str | Language, policy: Policy = OFF_TARGET) -> Verdict:
    """:meth:`LanguageID.decide` with the default backend."""
    return language_id().decide(text, lang, policy)


# ----------------------------------------------------------------------------- uses


def off_target_flags(hyps: Sequence[str], tgt: str) -> list[bool]:
    """Per output, True where it is ``off`` under :data:`OFF_TARGET` (``unknown`` is not off-target)."""
    return [decide(h, tgt).off for h in hyps]


def _percent(flags: Sequence[bool]) -> float:
    return round(100.0 * sum(flags) / max(len(flags), 1), 2)


def off_target_rates(hyps: Sequence[str], tgt: str) -> tuple[dict[str, float], list[Verdict]]:
    """``({"off_target": %, "unknown": %}, verdicts)`` of outputs expected in ``tgt`` (0-100, 2 decimals);
    with sources at hand, :func:`translation_verdicts` and :func:`translation_rates` add the copy rate."""
    verdicts = [decide(h, tgt) for h in hyps]
    return _lid_rates(verdicts), verdicts


def _lid_rates(verdicts: Sequence[Verdict]) -> dict[str, float]:
    return {
        "off_target": _percent([v.status == OFF for v in verdicts]),
        "unknown": _percent([v.status == UNKNOWN for v in verdicts]),
    }


_ZH_NAMES = {
    "eng": ("英语", "英文"), "zho": ("中文", "汉语", "普通话"), "jpn": ("日语", "日文"), "kor": ("韩语", "韩文", "朝鲜语"),
    "fra": ("法语", "法文"), "deu": ("德语", "德文"), "spa": ("西班牙语", "西语"), "rus": ("俄语", "俄文"),
    "por": ("葡萄牙语",), "ita": ("意大利语",), "ara": ("阿拉伯语",),
}  # fmt: skip
"""Chinese names of the languages a BayLing-80 (zh) question may ask for."""


def names_language(text: str, code: str) -> bool:
    """Whether ``text`` names language ``code`` (English name, autonym, or a Chinese name)."""
    lang = get_language(code)
    names = {lang.name.split(" (")[0], lang.native.split("（")[0].split(" (")[0], *_ZH_NAMES.get(lang.group, ())}
    low = text.casefold()
    # spaced scripts: the name must start a word ("English", not "Tenglish"); CJK names sit inside words
    return any(
        re.search((r"(?<!\w)" if char_script(n[0]) not in _CJK else "") + re.escape(n.casefold()), low)
        for n in names
        if len(n) > 1
    )


def excused(verdict: Verdict, question: str, lang: str) -> bool:
    """Whether an ``off`` answer is in a language its ``question`` asks for: the question names the answer's
    language and not ``lang`` (a translation request naming both languages excuses nothing)."""
    return (
        verdict.detected in LANGUAGES
        and names_language(question, verdict.detected)
        and not names_language(question, lang)
    )


def wrong_language(answer: str, lang: str, question: str = "", policy: Policy = JUDGE) -> Verdict | None:
    """The verdict when ``answer`` is in the wrong language for a question in ``lang``, else None.

    An answer is wrong when it is ``off`` and not :func:`excused` (a Chinese question asking for an English
    e-mail, an English one asking for a Spanish translation). The judge penalises such answers
    (:data:`JUDGE`); the data filter drops them (:data:`DATA_FILTER`).
    """
    v = decide(answer, lang, policy)
    return v if v.off and not excused(v, question, lang) else None


# ----------------------------------------------------------------------------- copies

COPY_CHRF = 90.0
""":func:`copy_score` at or above which an output counts as a copy of its source. Genuine FLORES-200
references of different languages stay below it and real near-copies above it
(``bench/data_lid_calibrate.py --mode copy``, ``bench/results/lid_copy_chrf.json``)."""

_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def copy_score(output: str, source: str) -> float:
    """How much ``output`` copies ``source``, 0-100: 100 when normalised equal or when it repeats the whole
    source (>= 20 characters) somewhere; else the chrF of its start against the source's start over the
    shorter of the two lengths, which must cover at least half of the source (so a copy cut short by the
    token limit still scores high), and 0 when it does not. Normalisation: NFKC, case-folded, whitespace
    collapsed."""
    import sacrebleu

    o, s = _norm(output), _norm(source)
    if not o or not s:
        return 0.0
    if o == s or (len(s) >= 20 and s in o):
        return 100.0
    m = min(len(o), len(s))
    if m < len(s) / 2:
        return 0.0
    return float(sacrebleu.sentence_chrf(o[:m], [s[:m]]).score)


def is_copy(output: str, source: str, threshold: float = COPY_CHRF) -> bool:
    """Whether ``output`` is (nearly) ``source``: :func:`copy_score` >= ``threshold``."""
    return copy_score(output, source) >= threshold


def is_loop(output: str, min_units: int = 12, max_distinct: float = 0.3) -> bool:
    """Whether ``output`` is a loop: at least ``min_units`` words (character trigrams for text written without
    spaces) of which at most ``max_distinct`` are distinct. A sentence repeats few words (its distinct share is
    ~0.7-0.9); "àwọn àwọn àwọn ..." passes language ID as Yoruba and earns chrF++ while saying nothing, which a
    reward stage learns to exploit (measured: DPO on gated pairs raised loops into low-resource targets from
    26.7 to 40.7 % of outputs, ``bench/results/rec_offline_e3_tiers.json``)."""
    units = output.split()
    if len(units) < min_units:
        units = [output[i : i + 3] for i in range(0, max(len(output) - 2, 0), 3)]
    return len(units) >= min_units and len(set(units)) <= max_distinct * len(units)


def copy_flags(hyps: Sequence[str], sources: Sequence[str], threshold: float = COPY_CHRF) -> list[bool]:
    """:func:`is_copy` per (output, source) pair."""
    return [is_copy(h, s, threshold) for h, s in zip(hyps, sources, strict=True)]


# ----------------------------------------------------------------------------- translations


@dataclass(frozen=True)
class TranslationVerdict:
    """What the evaluation says about one translation output.

    Attributes:
        lid: the :data:`OFF_TARGET` language-ID verdict for the target language.
        copy: whether the output (nearly) copies its source (:func:`is_copy`).
    """

    lid: Verdict
    copy: bool

    @property
    def off_target(self) -> bool:
        """Confidently in another language (counted in the off-target rate)."""
        return self.lid.status == OFF

    @property
    def unknown(self) -> bool:
        """Too short, mixed script or too little confidence to tell (counted in the unknown rate)."""
        return self.lid.status == UNKNOWN

    @property
    def valid(self) -> bool:
        """Neither off-target nor a copy: what a reward gate lets through (``unknown`` passes)."""
        return not self.off_target and not self.copy


def translation_verdicts(hyps: Sequence[str], sources: Sequence[str], tgt: str) -> list[TranslationVerdict]:
    """Per output: its :data:`OFF_TARGET` verdict for ``tgt`` and whether it copies its source.

    The one rule for every use: the evaluation's off-target, unknown and copy rates
    (:func:`translation_rates`, ``evaluate.translation.score_direction``) and the reward gate of a
    preference or RL stage, so a gated output is exactly one the evaluation counts as off-target or copied.
    """
    return [TranslationVerdict(decide(h, tgt), is_copy(h, s)) for h, s in zip(hyps, sources, strict=True)]


def translation_rates(verdicts: Sequence[TranslationVerdict]) -> dict[str, float]:
    """``{"off_target": %, "unknown": %, "copy": %}`` of :func:`translation_verdicts` (0-100, 2 decimals)."""
    return {**_lid_rates([v.lid for v in verdicts]), "copy": _percent([v.copy for v in verdicts])}
