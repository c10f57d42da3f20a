"""Language identification for off-target rates and the judge's wrong-language penalty.

Two checks, because no offline identifier covers all 204 FLORES-200 languages:

1. **Script**: the majority Unicode script of the letters must be one the target language is written
   in (Chinese in Han, Russian in Cyrillic…). This alone catches most off-target output of an
   English-centric model (English instead of Chinese, Hindi or Amharic).
2. **py3langid** (langid.py's model, 97 languages plus a few, shipped inside the package, no download):
   for a target it knows, the prediction must be the same language (compared on ISO 639-3, so
   ``sr`` covers Serbian in either script). For a target it does not know, output is flagged only
   when the identifier is confident (p >= 0.9) that it is English or the source language, i.e. the
   model copied or answered in the wrong language.

An empty output is counted as off-target: it is not text in the target language.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Any

from bayling.errors import require
from bayling.languages import get_language

# ISO 15924 code -> first word(s) of the Unicode character names of that script.
_SCRIPT_NAMES = {
    "Latn": ("LATIN",), "Cyrl": ("CYRILLIC",), "Arab": ("ARABIC",), "Hans": ("CJK",), "Hant": ("CJK",),
    "Jpan": ("CJK", "HIRAGANA", "KATAKANA"), "Hang": ("HANGUL", "CJK"), "Kore": ("HANGUL", "CJK"),
    "Deva": ("DEVANAGARI",), "Beng": ("BENGALI",), "Grek": ("GREEK",), "Hebr": ("HEBREW",), "Thai": ("THAI",),
    "Ethi": ("ETHIOPIC",), "Geor": ("GEORGIAN",), "Armn": ("ARMENIAN",), "Taml": ("TAMIL",), "Telu": ("TELUGU",),
    "Knda": ("KANNADA",), "Mlym": ("MALAYALAM",), "Gujr": ("GUJARATI",), "Guru": ("GURMUKHI",), "Orya": ("ORIYA",),
    "Sinh": ("SINHALA",), "Khmr": ("KHMER",), "Laoo": ("LAO",), "Mymr": ("MYANMAR",), "Tibt": ("TIBETAN",),
    "Tfng": ("TIFINAGH",), "Olck": ("OL",), "Mtei": ("MEETEI",),
}  # fmt: skip


def char_script(ch: str) -> str:
    """First word of the character's Unicode name (``LATIN``, ``CJK``, ``CYRILLIC``…), ``""`` if unnamed."""
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


def majority_script(text: str) -> str | None:
    """The most frequent script among the letters of ``text`` (None when it has no letters)."""
    counts = Counter(char_script(c) for c in text if c.isalpha())
    counts.pop("", None)
    return counts.most_common(1)[0][0] if counts else None


@lru_cache(maxsize=1)
def _identifier() -> Any:
    require("py3langid", "eval")
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=1)
def _known() -> dict[str, tuple[str, str]]:
    """py3langid label -> (ISO 639-3, FLORES code) of the row it means (labels our table lacks are dropped)."""
    out = {}
    for label in dict.fromkeys(_identifier().nb_classes):
        try:
            lang = get_language(label)
        except Exception:  # noqa: BLE001 - e.g. 'zxx' (no linguistic content), 'la', 'eo'
            continue
        out[label] = (lang.iso639_3, lang.code)
    return out


@lru_cache(maxsize=1)
def _known_codes() -> frozenset[str]:
    """FLORES codes py3langid can recognise (the script-specific row its label means: ace is ace_Latn)."""
    codes = {code for _, code in _known().values()}
    return frozenset(codes | ({"zho_Hant"} if "zho_Hans" in codes else set()))


def identify(text: str) -> tuple[str | None, float]:
    """``(ISO 639-3, probability)`` of ``text`` by py3langid; ``(None, 0)`` for text without letters."""
    if not any(c.isalpha() for c in text):
        return None, 0.0
    label, prob = _identifier().classify(text)
    known = _known().get(label)
    return (known[0] if known else None), float(prob)


def is_target_language(text: str, tgt: str, src: str | None = None) -> bool:
    """Whether ``text`` is in language ``tgt`` (see the module docstring for the rules).

    Args:
        text: model output.
        tgt: expected language (code or alias).
        src: source language, to catch copies of the input into a target py3langid does not know.
    """
    if not text.strip():
        return False
    lang = get_language(tgt)
    script = majority_script(text)
    expected = _SCRIPT_NAMES.get(lang.script)
    if script is not None and expected is not None and script not in expected:
        return False
    if script is None:  # digits/punctuation only (e.g. a number): nothing contradicts the target
        return True
    iso, prob = identify(text)
    if lang.code in _known_codes():
        return iso is None or iso == lang.iso639_3 or _same_macro(iso, lang.iso639_3)
    suspicious = {"eng"} | ({get_language(src).iso639_3} if src else set())
    return not (iso in suspicious and prob >= 0.9)


def _same_macro(a: str, b: str) -> bool:
    """py3langid labels macrolanguages (``ar``, ``fa``, ``ms``); FLORES splits some (arb/ars, pes/prs)."""
    groups = (
        {"arb", "ars", "apc", "ajp", "acm", "acq", "aeb", "ary", "arz"},
        {"pes", "prs"},
        {"zsm", "ind"},
        {"zho", "yue"},
        {"nob", "nno"},
        {"uzn", "uzs"},
        {"bos", "hrv", "srp"},
    )
    return any(a in g and b in g for g in groups)


def off_target_flags(hyps: list[str], tgt: str, src: str | None = None) -> list[bool]:
    """Per-output True where the output is not in ``tgt``."""
    return [not is_target_language(h, tgt, src) for h in hyps]


def off_target_rate(hyps: list[str], tgt: str, src: str | None = None) -> float:
    """Share (0-100) of outputs not in the target language."""
    if not hyps:
        return 0.0
    flags = off_target_flags(hyps, tgt, src)
    return round(100.0 * sum(flags) / len(flags), 2)
