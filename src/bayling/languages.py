"""The one language table that every stage of bayling shares.

Every stage imports this module and nothing else for language facts: data building (which
FLORES files to read, how to name a language in a prompt), training (which directions to
sample), evaluation (which FLORES-200 devtest files exist, which subset is FLORES-101) and
serving (turning ``zh-TW`` or ``"German"`` from a request into a code). One table keeps the
stages in step: a language the server accepts is a language the evaluator can score.

The table lives in ``languages.tsv`` next to this module: one row for each of the 204
FLORES-200 languages, keyed by its FLORES-200 code (``eng_Latn``, ``zho_Hans``). Columns:

* ``code``: FLORES-200 code, ``<ISO 639-3>_<ISO 15924 script>``.
* ``iso639_3`` / ``iso639_1``: ISO 639 codes. ``iso639_1`` is empty where none exists. Where
  the two-letter code names a macrolanguage with several members in FLORES-200 (``ar``,
  ``fa``, ``az``, ...), only the member we treat as the default carries it (see
  :data:`DEFAULT_ALIASES`).
* ``script``: ISO 15924 script code.
* ``name``: English name as spelled in the FLORES-200 README.
* ``native``: the autonym, in the language's own script.
* ``tier``: ``high``, ``medium`` or ``low`` (below).
* ``flores101``: 1 for the 102 languages that match FLORES-101 (the BayLing 2 "100+
  languages" evaluation set, with Chinese split into zho_Hans and zho_Hant), else 0.
* ``macro``: the ISO 639-3 macrolanguage (or, for ``hbs``, the former macrolanguage) that the
  language belongs to, filled in only where FLORES-200 holds two or more of its members: ``ara``
  (the Arabic varieties), ``fas`` (pes, prs), ``msa`` (zsm, ind, min, bjn), ``zho`` (zho, yue), ``nor``
  (nob, nno), ``hbs`` (bos, hrv, srp), ``aka`` (aka, twi), ``lav`` (lvs, ltg), ``kur`` (kmr, ckb) and
  ``aze`` (azj, azb). Language ID (:mod:`bayling.lid`) treats members of one macrolanguage as the
  same language: Malay output for an Indonesian target is not off-target. Edit the TSV to change a
  group; no code holds the list.

Resource tiers. The tiers say how much text a language has, to pick sampling weights and to
break down scores; they are a hand-made, documented approximation, not corpus counts shipped
with the project. To re-tier a language, edit the TSV, not the code.

* ``high`` (21): the ~20 languages with the most web text, i.e. the head of Common Crawl's
  language distribution as reflected in CC-100 and mC4 sizes: English, Chinese, German,
  French, Spanish, Japanese, Russian, Portuguese, Italian, Dutch, Polish, Korean, Arabic
  (arb), Turkish, Vietnamese, Indonesian, Swedish, Czech, Persian (pes), Ukrainian; plus
  Traditional Chinese, which shares Chinese's resources. A base LLM is already fluent in these.
* ``low`` (126): low-resource in the sense of NLLB (NLLB Team, 2022): fewer than about one
  million publicly available sentence pairs with any other language. This covers the Arabic
  dialects, most African languages, regional European languages and most languages in a
  second script.
* ``medium`` (57): the rest. These are languages NLLB would call high-resource but that are
  outside the web head: most EU official languages, the major Indic languages, Thai, Swahili,
  Hebrew, Malay, ...

:data:`HIGH_RESOURCE` is a different thing: the English-Chinese pair that BayLing 2 aligns all
other languages to.

Lookups. :func:`get_language` accepts FLORES-200 codes, ISO 639-1/639-2/639-3 codes, BCP-47 or
locale tags and English names, case-insensitively. Codes and names that stand for several
table rows (macrolanguages, languages written in two scripts) resolve through
:data:`DEFAULT_ALIASES`, which is the single documented list of those choices.

Language lists in configs (``data.languages``, ``eval.translation.languages``, ``bayling data check
--languages``) go through :func:`expand_languages`, which also takes the named sets ``all`` /
``flores200`` (204), ``flores101`` (102) and ``tier:high|medium|low``.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

from bayling.errors import ConfigError, DataError, UnknownLanguageError

__all__ = [
    "DEFAULT_ALIASES",
    "HIGH_RESOURCE",
    "LANGUAGES",
    "TIERS",
    "Language",
    "get_language",
    "language_name",
    "languages",
]

TIERS: tuple[str, ...] = ("high", "medium", "low")
"""The resource tiers, richest first; see the module docstring for what each means."""

HIGH_RESOURCE: tuple[str, str] = ("eng_Latn", "zho_Hans")
"""The BayLing 2 high-resource pair: English and (Simplified) Chinese."""

_TSV = "languages.tsv"
_COLUMNS = ("code", "iso639_3", "iso639_1", "script", "name", "native", "tier", "flores101", "macro")
_CODE_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")

# Aliases that stand for more than one row of the table, or for no row directly (macrolanguage
# codes, ISO 639-2/B codes, legacy codes, common English names), and the row each one means.
# Keys are matched like any alias: case-insensitively, with "-" and "_" equivalent.
DEFAULT_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        # Chinese: Simplified unless a Traditional script or region is named.
        "zh": "zho_Hans",
        "zho": "zho_Hans",
        "chi": "zho_Hans",
        "cmn": "zho_Hans",
        "chinese": "zho_Hans",
        "mandarin": "zho_Hans",
        "simplified chinese": "zho_Hans",
        "zh-Hans": "zho_Hans",
        "zh-CN": "zho_Hans",
        "zh-SG": "zho_Hans",
        "zh-MY": "zho_Hans",
        "traditional chinese": "zho_Hant",
        "zh-Hant": "zho_Hant",
        "zh-TW": "zho_Hant",
        "zh-HK": "zho_Hant",
        "zh-MO": "zho_Hant",
        "cantonese": "yue_Hant",
        # Arabic: Modern Standard Arabic in Arabic script, not a dialect nor the romanization.
        "ar": "arb_Arab",
        "ara": "arb_Arab",
        "arb": "arb_Arab",
        "arabic": "arb_Arab",
        "modern standard arabic": "arb_Arab",
        # Persian: Iranian (Western) Persian rather than Dari (prs_Arab).
        "fa": "pes_Arab",
        "fas": "pes_Arab",
        "per": "pes_Arab",
        "persian": "pes_Arab",
        "farsi": "pes_Arab",
        # Malay: Standard Malay.
        "ms": "zsm_Latn",
        "msa": "zsm_Latn",
        "may": "zsm_Latn",
        "malay": "zsm_Latn",
        # Estonian: FLORES-200 uses the macrolanguage code est for Standard Estonian.
        "et": "est_Latn",
        "est": "est_Latn",
        "ekk": "est_Latn",
        # Latvian: Standard Latvian, not Latgalian (ltg_Latn).
        "lv": "lvs_Latn",
        "lav": "lvs_Latn",
        "latvian": "lvs_Latn",
        # Uzbek: Northern Uzbek in Latin script.
        "uz": "uzn_Latn",
        "uzb": "uzn_Latn",
        "uzbek": "uzn_Latn",
        # Swahili: Kiswahili (swh).
        "sw": "swh_Latn",
        "swa": "swh_Latn",
        # Norwegian: Bokmål, not Nynorsk (nno_Latn).
        "no": "nob_Latn",
        "nor": "nob_Latn",
        "nb": "nob_Latn",
        "norwegian": "nob_Latn",
        # Kurdish: Kurmanji (Northern, Latin script), not Sorani (ckb_Arab).
        "ku": "kmr_Latn",
        "kur": "kmr_Latn",
        "kurdish": "kmr_Latn",
        "sorani": "ckb_Arab",
        # Azerbaijani: North Azerbaijani (Latin), not South Azerbaijani (azb_Arab).
        "az": "azj_Latn",
        "aze": "azj_Latn",
        "azerbaijani": "azj_Latn",
        # Other macrolanguages with exactly one member in FLORES-200.
        "mn": "khk_Cyrl",
        "mon": "khk_Cyrl",
        "mongolian": "khk_Cyrl",
        "om": "gaz_Latn",
        "orm": "gaz_Latn",
        "oromo": "gaz_Latn",
        "ff": "fuv_Latn",
        "ful": "fuv_Latn",
        "fula": "fuv_Latn",
        "fulah": "fuv_Latn",
        "fulani": "fuv_Latn",
        "ps": "pbt_Arab",
        "pus": "pbt_Arab",
        "pashto": "pbt_Arab",
        "sq": "als_Latn",
        "sqi": "als_Latn",
        "alb": "als_Latn",
        "albanian": "als_Latn",
        "mg": "plt_Latn",
        "mlg": "plt_Latn",
        "malagasy": "plt_Latn",
        "qu": "quy_Latn",
        "que": "quy_Latn",
        "quechua": "quy_Latn",
        "ay": "ayr_Latn",
        "aym": "ayr_Latn",
        "aymara": "ayr_Latn",
        "ne": "npi_Deva",
        "nep": "npi_Deva",
        "yi": "ydd_Hebr",
        "yid": "ydd_Hebr",
        "yiddish": "ydd_Hebr",
        "din": "dik_Latn",
        "dinka": "dik_Latn",
        "tmh": "taq_Latn",
        "kau": "knc_Latn",
        "kanuri": "knc_Latn",
        # Languages written in two scripts in FLORES-200: the script most of their text uses.
        "kr": "knc_Latn",
        "knc": "knc_Latn",
        "ks": "kas_Arab",
        "kas": "kas_Arab",
        "kashmiri": "kas_Arab",
        "ace": "ace_Latn",
        "acehnese": "ace_Latn",
        "bjn": "bjn_Latn",
        "banjar": "bjn_Latn",
        "min": "min_Latn",
        "minangkabau": "min_Latn",
        "taq": "taq_Latn",
        "tamasheq": "taq_Latn",
        # ISO 639-2/B bibliographic codes.
        "ger": "deu_Latn",
        "fre": "fra_Latn",
        "dut": "nld_Latn",
        "gre": "ell_Grek",
        "cze": "ces_Latn",
        "slo": "slk_Latn",
        "rum": "ron_Latn",
        "arm": "hye_Armn",
        "geo": "kat_Geor",
        "ice": "isl_Latn",
        "mac": "mkd_Cyrl",
        "baq": "eus_Latn",
        "wel": "cym_Latn",
        "bur": "mya_Mymr",
        "tib": "bod_Tibt",
        # Deprecated ISO 639-1 codes still emitted by old locale databases.
        "iw": "heb_Hebr",
        "in": "ind_Latn",
        "ji": "ydd_Hebr",
        "jw": "jav_Latn",
        # Common English names that differ from the FLORES-200 name.
        "filipino": "tgl_Latn",
        "fil": "tgl_Latn",
        "punjabi": "pan_Guru",
        "panjabi": "pan_Guru",
        "tibetan": "bod_Tibt",
        "oriya": "ory_Orya",
        "myanmar": "mya_Mymr",
        "sinhalese": "sin_Sinh",
        "kirghiz": "kir_Cyrl",
        "slovene": "slv_Latn",
        "haitian": "hat_Latn",
        "gaelic": "gla_Latn",
        "luganda": "lug_Latn",
        "chichewa": "nya_Latn",
        "chewa": "nya_Latn",
        "sesotho": "sot_Latn",
        "swazi": "ssw_Latn",
        "kirundi": "run_Latn",
        "manipuri": "mni_Beng",
        "kachin": "kac_Latn",
        "tshiluba": "lua_Latn",
        "kongo": "kon_Latn",
        "uighur": "uig_Arab",
        "bangla": "ben_Beng",
        "flemish": "nld_Latn",
        "valencian": "cat_Latn",
        "cape verdean creole": "kea_Latn",
        "north macedonian": "mkd_Cyrl",  # INCLUDE's config name
    }
)

# Regions whose Chinese locale tag (zh-XX) means Traditional script; any other region means Simplified.
_HANT_REGIONS = frozenset({"tw", "hk", "mo"})


@dataclass(frozen=True)
class Language:
    """One row of the language table.

    Attributes:
        code: FLORES-200 code, e.g. ``"zho_Hans"``.
        iso639_3: ISO 639-3 code, e.g. ``"zho"``.
        iso639_1: ISO 639-1 code such as ``"zh"``, or ``None`` where the language has none.
        script: ISO 15924 script code, e.g. ``"Hans"``.
        name: English name, e.g. ``"Chinese (Simplified)"``.
        native: autonym in the language's own script, e.g. ``"中文（简体）"``.
        tier: resource tier, one of :data:`TIERS`.
        flores101: whether the language is in the FLORES-101 (BayLing 2 "100+ languages") set.
        macro: ISO 639-3 code of its macrolanguage where the table holds several members, else ``None``.
    """

    code: str
    iso639_3: str
    iso639_1: str | None
    script: str
    name: str
    native: str
    tier: str
    flores101: bool
    macro: str | None = None

    @property
    def group(self) -> str:
        """The macrolanguage code where there is one, else the ISO 639-3 code: two rows with the same
        ``group`` are one language for language ID (``acm_Arab`` and ``arb_Arab`` are both ``ara``)."""
        return self.macro or self.iso639_3

    @property
    def bcp47(self) -> str:
        """The BCP-47 tag, e.g. ``"en"``, ``"de"``, ``"zh-Hans"``, ``"ks-Deva"``.

        The language subtag is the ISO 639-1 code where there is one, else the ISO 639-3 code.
        A script subtag is added only when the table holds the language in more than one
        script, so ``zh-Hans``/``zh-Hant`` and ``ar-Arab``/``ar-Latn`` but plain ``sr``.
        """
        tag = self.iso639_1 or self.iso639_3
        if self.iso639_3 in _MULTI_SCRIPT:
            tag = f"{tag}-{self.script}"
        return tag

    def __str__(self) -> str:
        return self.code


def _load() -> dict[str, Language]:
    """Read and validate ``languages.tsv`` from the package."""
    text = resources.files("bayling").joinpath(_TSV).read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or tuple(lines[0].split("\t")) != _COLUMNS:
        raise DataError(f"{_TSV}:1: expected header {' '.join(_COLUMNS)!r}")
    table: dict[str, Language] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(_COLUMNS):
            raise DataError(f"{_TSV}:{lineno}: expected {len(_COLUMNS)} tab-separated fields, got {len(fields)}")
        code, iso3, iso1, script, name, native, tier, f101, macro = fields
        if not _CODE_RE.match(code) or code != f"{iso3}_{script}":
            raise DataError(f"{_TSV}:{lineno}: bad code {code!r} (expected <iso639_3>_<Script>)")
        if tier not in TIERS:
            raise DataError(f"{_TSV}:{lineno}: tier {tier!r} is not one of {', '.join(TIERS)}")
        if f101 not in ("0", "1"):
            raise DataError(f"{_TSV}:{lineno}: flores101 must be 0 or 1, got {f101!r}")
        if not name or not native:
            raise DataError(f"{_TSV}:{lineno}: empty name or native name for {code}")
        if code in table:
            raise DataError(f"{_TSV}:{lineno}: duplicate code {code}")
        if macro and not re.fullmatch(r"[a-z]{3}", macro):
            raise DataError(f"{_TSV}:{lineno}: macro must be an ISO 639-3 code or empty, got {macro!r}")
        table[code] = Language(code, iso3, iso1 or None, script, name, native, tier, f101 == "1", macro or None)
    return table


LANGUAGES: Mapping[str, Language] = MappingProxyType(_load())
"""Every FLORES-200 language, keyed by FLORES-200 code; read-only."""


_MULTI_SCRIPT: frozenset[str] = frozenset(
    iso3 for iso3, n in Counter(lang.iso639_3 for lang in LANGUAGES.values()).items() if n > 1
)
"""ISO 639-3 codes the table holds in more than one script (zho, arb, kas, ...)."""


def _norm(alias: str) -> str:
    """Lookup key: case-folded, ``-`` as ``_``, runs of whitespace as one space."""
    return " ".join(alias.casefold().replace("-", "_").split())


def _fold(key: str) -> str:
    """``key`` without diacritics (``bokmål`` -> ``bokmal``)."""
    decomposed = unicodedata.normalize("NFKD", key)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _build_index() -> tuple[dict[str, str], dict[str, str]]:
    """Map every accepted alias key to a code; also return a display form for each key."""
    index: dict[str, str] = {}
    display: dict[str, str] = {}

    def add(alias: str, code: str, *, override: bool = False) -> None:
        for key in dict.fromkeys((_norm(alias), _fold(_norm(alias)))):
            if override or key not in index:
                index[key] = code
                display[key] = alias

    def unique(values: dict[str, list[str]]) -> Iterator[tuple[str, str]]:
        for value, codes in values.items():
            if len(codes) == 1:
                yield value, codes[0]

    by_iso1: dict[str, list[str]] = {}
    by_iso3: dict[str, list[str]] = {}
    by_base_name: dict[str, list[str]] = {}
    for lang in LANGUAGES.values():
        if lang.iso639_1:
            by_iso1.setdefault(lang.iso639_1, []).append(lang.code)
        by_iso3.setdefault(lang.iso639_3, []).append(lang.code)
        base = lang.name.split(" (")[0]
        if base != lang.name:
            by_base_name.setdefault(base, []).append(lang.code)

    # Most specific first: codes, then ISO codes and names that name exactly one row, then the
    # documented defaults (which also settle every ambiguous ISO code and name), then autonyms.
    for lang in LANGUAGES.values():
        add(lang.code, lang.code, override=True)
    for value, code in (*unique(by_iso3), *unique(by_iso1)):
        add(value, code)
    for lang in LANGUAGES.values():
        add(lang.name, lang.code)
    for value, code in unique(by_base_name):
        add(value, code)
    for alias, code in DEFAULT_ALIASES.items():
        if code not in LANGUAGES:  # pragma: no cover - guarded by tests
            raise DataError(f"DEFAULT_ALIASES maps {alias!r} to {code!r}, which is not in {_TSV}")
        add(alias, code, override=True)
    natives: dict[str, list[str]] = {}
    for lang in LANGUAGES.values():
        natives.setdefault(_norm(lang.native), []).append(lang.code)
    for lang in LANGUAGES.values():
        if len(natives[_norm(lang.native)]) == 1:
            add(lang.native, lang.code)
    return index, display


_INDEX, _DISPLAY = _build_index()
_SUBTAG_RE = re.compile(r"^[a-z0-9]{1,8}$")


def _from_tag(key: str) -> Language | None:
    """Resolve a BCP-47 / locale tag such as ``zh_tw``, ``pt_br`` or ``zh_hant_hk`` (normalized)."""
    parts = key.split("_")
    if len(parts) < 2 or not re.fullmatch(r"[a-z]{2,3}", parts[0]) or not all(map(_SUBTAG_RE.match, parts[1:])):
        return None
    base_code = _INDEX.get(parts[0])
    if base_code is None:
        return None
    base = LANGUAGES[base_code]
    script = next((p for p in parts[1:] if len(p) == 4 and p.isalpha()), None)
    if script is not None:
        script = script.title()
        if base.script == script:
            return base
        return LANGUAGES.get(f"{base.iso639_3}_{script}")  # None: no such script in the table
    region = next((p for p in parts[1:] if (len(p) == 2 and p.isalpha()) or (len(p) == 3 and p.isdigit())), None)
    if base.iso639_3 == "zho" and region is not None:
        return LANGUAGES["zho_Hant" if region in _HANT_REGIONS else "zho_Hans"]
    return base


def _suggestions(key: str, first: str | None = None) -> list[str]:
    """Up to 3 close aliases for ``key`` (one per language), best first.

    Args:
        key: the normalized input.
        first: a FLORES-200 code to put first (the language of a tag whose script is unknown).

    Returns:
        Display forms: FLORES-200 codes for code-like input, names for name-like input.
    """
    out: list[str] = [first] if first else []
    seen = set(out)
    scored = [(difflib.SequenceMatcher(None, key, cand).ratio(), cand) for cand in _INDEX]
    scored = sorted((s for s in scored if s[0] >= 0.6), key=lambda s: (-s[0], s[1]))
    if scored:
        best = scored[0][0]
        for score, cand in scored:
            if score < best - 0.1 or len(out) >= 3:
                break
            if _INDEX[cand] not in seen:
                seen.add(_INDEX[cand])
                out.append(_DISPLAY[cand])
    return out


def get_language(alias: str | Language) -> Language:
    """Resolve any supported spelling of a language to its table row.

    Accepted, case-insensitively and with ``-`` and ``_`` interchangeable: FLORES-200 codes
    (``zho_Hans``, ``zho-Hans``), ISO 639-1 (``zh``, ``de``), ISO 639-3 (``zho``, ``deu``) and
    ISO 639-2/B (``ger``) codes, BCP-47 and locale tags (``zh-CN``, ``zh_TW``, ``zh-Hant``,
    ``pt-BR``, ``en-US``), English names (``german``, ``Simplified Chinese``) and autonyms
    (``Deutsch``, ``español``). Aliases that cover several rows resolve through
    :data:`DEFAULT_ALIASES`.

    Args:
        alias: the code, tag or name, or a :class:`Language` (returned unchanged).

    Returns:
        The matching :class:`Language`.

    Raises:
        UnknownLanguageError: nothing in the table matches; the message names the input and up
            to 3 close suggestions.
    """
    if isinstance(alias, Language):
        return alias
    if not isinstance(alias, str):
        raise UnknownLanguageError(f"language must be a string code or name, got {type(alias).__name__}")
    key = _norm(alias)
    code = _INDEX.get(key) or _INDEX.get(_fold(key))
    if code is not None:
        return LANGUAGES[code]
    lang = _from_tag(key)
    if lang is not None:
        return lang
    # A tag whose language exists but whose script does not (sr-Latn): suggest the language itself.
    head = key.split("_")[0]
    first = _INDEX[head] if head != key and head in _INDEX else None
    hints = _suggestions(key, first)
    hint = f" (did you mean: {', '.join(hints)}?)" if hints else ""
    raise UnknownLanguageError(
        f"unknown language {alias!r}{hint}; use a FLORES-200 code such as eng_Latn or an ISO code such as 'de'"
    )


def languages(tier: str | None = None, flores101_only: bool = False) -> list[Language]:
    """List table rows, sorted by FLORES-200 code.

    Args:
        tier: keep only this resource tier (``"high"``, ``"medium"`` or ``"low"``); ``None`` keeps all.
        flores101_only: keep only the 102 FLORES-101 (BayLing 2 "100+ languages") languages.

    Returns:
        The matching languages, sorted by code.

    Raises:
        ConfigError: ``tier`` is not one of :data:`TIERS`.
    """
    if tier is not None and tier not in TIERS:
        raise ConfigError(f"unknown language tier {tier!r}; expected one of: {', '.join(TIERS)}")
    return sorted(
        (
            lang
            for lang in LANGUAGES.values()
            if (tier is None or lang.tier == tier) and (not flores101_only or lang.flores101)
        ),
        key=lambda lang: lang.code,
    )


def language_name(alias: str | Language) -> str:
    """English name of a language given any alias :func:`get_language` accepts.

    Args:
        alias: code, tag, name or :class:`Language`.

    Returns:
        The English name, e.g. ``"German"`` for ``"de"``.

    Raises:
        UnknownLanguageError: the alias is not in the table.
    """
    return get_language(alias).name


LANGUAGE_SETS = ("all", "flores200", "flores101", "tier:high", "tier:medium", "tier:low")
"""Named sets a language list may hold besides codes and aliases."""


def expand_languages(specs: Sequence[str]) -> list[str]:
    """A config's language list -> FLORES-200 codes, in order and without repeats.

    Args:
        specs: codes or aliases (anything :func:`get_language` accepts), or the named sets ``all`` /
            ``flores200`` (every row), ``flores101`` (the 102 FLORES-101 languages) and ``tier:high``,
            ``tier:medium``, ``tier:low``.

    Raises:
        UnknownLanguageError: an unknown language.
        ConfigError: an unknown tier.
    """
    out: list[str] = []
    for spec in specs:
        if spec in ("all", "flores200"):
            out += [lang.code for lang in languages()]
        elif spec == "flores101":
            out += [lang.code for lang in languages(flores101_only=True)]
        elif isinstance(spec, str) and spec.startswith("tier:"):
            out += [lang.code for lang in languages(tier=spec.split(":", 1)[1])]
        else:
            out.append(get_language(spec).code)
    return list(dict.fromkeys(out))
