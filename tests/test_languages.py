"""Tests for the shared language table (bayling.languages)."""

from __future__ import annotations

import dataclasses
import re
import tarfile
from pathlib import Path

import pytest

from bayling.errors import BaylingError, ConfigError, UnknownLanguageError
from bayling.languages import (
    DEFAULT_ALIASES,
    HIGH_RESOURCE,
    LANGUAGES,
    TIERS,
    Language,
    get_language,
    language_name,
    languages,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FLORES200_DEVTEST = SHARED_DATA / "flores200" / "devtest"
FLORES200_EXTRA_TAR = SHARED_DATA / "flores200" / "devtest_extra_102langs.tar.xz"
FLORES101_MAP = SHARED_DATA / "flores101" / "flores101_to_flores200.tsv"


def _plain_devtest_codes() -> set[str]:
    if not FLORES200_DEVTEST.is_dir():
        pytest.skip(f"shared FLORES-200 data not found at {FLORES200_DEVTEST}")
    return {p.name.removesuffix(".devtest") for p in FLORES200_DEVTEST.glob("*.devtest")}


def _extra_devtest_codes() -> set[str]:
    if not FLORES200_EXTRA_TAR.is_file():
        pytest.skip(f"shared FLORES-200 archive not found at {FLORES200_EXTRA_TAR}")
    with tarfile.open(FLORES200_EXTRA_TAR) as tar:
        names = tar.getnames()
    return {Path(n).name.removesuffix(".devtest") for n in names if n.endswith(".devtest")}


# --- the table itself ---------------------------------------------------------------------------


def test_exactly_204_codes():
    assert len(LANGUAGES) == 204
    assert len(languages()) == 204
    assert len({lang.code for lang in LANGUAGES.values()}) == 204


def test_code_format_and_columns_consistent():
    for code, lang in LANGUAGES.items():
        assert re.fullmatch(r"^[a-z]{3}_[A-Z][a-z]{3}$", code), code
        assert lang.code == code
        assert code == f"{lang.iso639_3}_{lang.script}"
        assert lang.iso639_1 is None or re.fullmatch(r"[a-z]{2}", lang.iso639_1), lang
        assert str(lang) == code


def test_codes_match_flores200_devtest_files():
    plain = _plain_devtest_codes()
    extra = _extra_devtest_codes()
    assert len(plain) == 102
    assert len(extra) == 102
    assert not plain & extra
    assert set(LANGUAGES) == plain | extra


def test_flores101_flag_matches_plain_devtest_files():
    plain = _plain_devtest_codes()
    flagged = {lang.code for lang in LANGUAGES.values() if lang.flores101}
    assert flagged == plain
    assert len(languages(flores101_only=True)) == 102


def test_flores101_flag_matches_flores101_mapping():
    if not FLORES101_MAP.is_file():
        pytest.skip(f"FLORES-101 mapping not found at {FLORES101_MAP}")
    rows = FLORES101_MAP.read_text(encoding="utf-8").splitlines()[1:]
    mapped = {line.split("\t")[1] for line in rows if line.strip()}
    assert mapped == {lang.code for lang in languages(flores101_only=True)}


def test_tiers():
    assert {lang.tier for lang in LANGUAGES.values()} == set(TIERS) == {"high", "medium", "low"}
    for code in HIGH_RESOURCE:
        assert LANGUAGES[code].tier == "high"
    high = {lang.code for lang in languages(tier="high")}
    assert 15 <= len(high) <= 25
    assert {"deu_Latn", "fra_Latn", "spa_Latn", "jpn_Jpan", "rus_Cyrl", "arb_Arab", "pes_Arab"} <= high
    assert LANGUAGES["acm_Arab"].tier == "low"
    assert LANGUAGES["dzo_Tibt"].tier == "low"
    assert LANGUAGES["hin_Deva"].tier == "medium"
    by_tier = sum(len(languages(tier=t)) for t in TIERS)
    assert by_tier == 204


def test_high_resource_pair():
    assert HIGH_RESOURCE == ("eng_Latn", "zho_Hans")
    assert all(code in LANGUAGES for code in HIGH_RESOURCE)


def test_native_names():
    for lang in LANGUAGES.values():
        assert lang.native.strip() == lang.native and lang.native, lang
        assert lang.name.strip() == lang.name and lang.name, lang
    non_latin = [lang for lang in LANGUAGES.values() if lang.script != "Latn"]
    assert len(non_latin) > 50
    for lang in non_latin:
        assert lang.native != lang.name, lang
        assert not lang.native.isascii(), lang
    assert LANGUAGES["zho_Hans"].native == "中文（简体）"
    assert LANGUAGES["deu_Latn"].native == "Deutsch"
    assert LANGUAGES["swh_Latn"].native == "Kiswahili"
    assert LANGUAGES["hin_Deva"].native == "हिन्दी"


def test_iso639_1_examples():
    assert LANGUAGES["eng_Latn"].iso639_1 == "en"
    assert LANGUAGES["zho_Hans"].iso639_1 == "zh"
    assert LANGUAGES["pes_Arab"].iso639_1 == "fa"
    assert LANGUAGES["prs_Arab"].iso639_1 is None
    assert LANGUAGES["ace_Latn"].iso639_1 is None


def test_bcp47():
    assert LANGUAGES["zho_Hans"].bcp47 == "zh-Hans"
    assert LANGUAGES["zho_Hant"].bcp47 == "zh-Hant"
    assert LANGUAGES["eng_Latn"].bcp47 == "en"
    assert LANGUAGES["deu_Latn"].bcp47 == "de"
    assert LANGUAGES["srp_Cyrl"].bcp47 == "sr"
    assert LANGUAGES["kas_Deva"].bcp47 == "ks-Deva"
    assert LANGUAGES["yue_Hant"].bcp47 == "yue"


# --- the API ------------------------------------------------------------------------------------


def test_languages_mapping_is_read_only():
    with pytest.raises(TypeError):
        LANGUAGES["xxx_Latn"] = LANGUAGES["eng_Latn"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        LANGUAGES["eng_Latn"].tier = "low"  # type: ignore[misc]
    assert isinstance(LANGUAGES["eng_Latn"], Language)


def test_languages_sorted_and_filtered():
    codes = [lang.code for lang in languages()]
    assert codes == sorted(codes)
    low101 = languages(tier="low", flores101_only=True)
    assert low101 and all(lang.tier == "low" and lang.flores101 for lang in low101)
    assert [lang.code for lang in low101] == sorted(lang.code for lang in low101)
    with pytest.raises(ConfigError, match="tier"):
        languages(tier="huge")


@pytest.mark.parametrize(
    ("alias", "code"),
    [
        # FLORES-200 codes, any case, '-' or '_'
        ("zho_Hans", "zho_Hans"),
        ("zho-Hans", "zho_Hans"),
        ("ZHO_HANS", "zho_Hans"),
        ("deu_latn", "deu_Latn"),
        ("  eng_Latn ", "eng_Latn"),
        # ISO 639-1
        ("zh", "zho_Hans"),
        ("de", "deu_Latn"),
        ("EN", "eng_Latn"),
        ("ja", "jpn_Jpan"),
        # ISO 639-3
        ("deu", "deu_Latn"),
        ("zho", "zho_Hans"),
        ("yue", "yue_Hant"),
        ("fuv", "fuv_Latn"),
        # BCP-47 / locale tags
        ("zh-CN", "zho_Hans"),
        ("zh_CN", "zho_Hans"),
        ("zh-SG", "zho_Hans"),
        ("zh-TW", "zho_Hant"),
        ("zh_tw", "zho_Hant"),
        ("zh-HK", "zho_Hant"),
        ("zh-Hant", "zho_Hant"),
        ("zh-Hans", "zho_Hans"),
        ("zh-Hant-HK", "zho_Hant"),
        ("pt-BR", "por_Latn"),
        ("en-US", "eng_Latn"),
        ("de-DE", "deu_Latn"),
        ("es-419", "spa_Latn"),
        ("ar-Latn", "arb_Latn"),
        ("ks-Deva", "kas_Deva"),
        ("sr-Cyrl-RS", "srp_Cyrl"),
        # English names, case-insensitive
        ("german", "deu_Latn"),
        ("German", "deu_Latn"),
        ("Chinese", "zho_Hans"),
        ("Simplified Chinese", "zho_Hans"),
        ("traditional chinese", "zho_Hant"),
        ("Chinese (Traditional)", "zho_Hant"),
        ("Norwegian Bokmål", "nob_Latn"),
        ("norwegian bokmal", "nob_Latn"),
        ("Persian", "pes_Arab"),
        ("Cantonese", "yue_Hant"),
        # autonyms
        ("Deutsch", "deu_Latn"),
        ("español", "spa_Latn"),
        ("中文（简体）", "zho_Hans"),
        ("Kiswahili", "swh_Latn"),
    ],
)
def test_get_language_aliases(alias, code):
    assert get_language(alias).code == code


@pytest.mark.parametrize(
    ("alias", "code"),
    [
        ("zh", "zho_Hans"),
        ("zho", "zho_Hans"),
        ("chinese", "zho_Hans"),
        ("zh-TW", "zho_Hant"),
        ("zh-HK", "zho_Hant"),
        ("zh-Hant", "zho_Hant"),
        ("ar", "arb_Arab"),
        ("ara", "arb_Arab"),
        ("fa", "pes_Arab"),
        ("fas", "pes_Arab"),
        ("ms", "zsm_Latn"),
        ("msa", "zsm_Latn"),
        ("et", "est_Latn"),
        ("est", "est_Latn"),
        ("lv", "lvs_Latn"),
        ("lav", "lvs_Latn"),
        ("uz", "uzn_Latn"),
        ("uzb", "uzn_Latn"),
        ("sw", "swh_Latn"),
        ("swa", "swh_Latn"),
        ("no", "nob_Latn"),
        ("nor", "nob_Latn"),
        ("nb", "nob_Latn"),
        ("ku", "kmr_Latn"),
        ("az", "azj_Latn"),
        ("mn", "khk_Cyrl"),
        ("ps", "pbt_Arab"),
        ("sq", "als_Latn"),
        ("ks", "kas_Arab"),
    ],
)
def test_macrolanguage_defaults(alias, code):
    assert DEFAULT_ALIASES.get(alias, code) == code
    assert get_language(alias).code == code


def test_default_aliases_target_existing_codes():
    for alias, code in DEFAULT_ALIASES.items():
        assert code in LANGUAGES, (alias, code)
        assert get_language(alias).code == code


def test_every_row_reachable_by_each_alias_kind():
    for lang in LANGUAGES.values():
        assert get_language(lang) is lang
        assert get_language(lang.code) is lang
        assert get_language(lang.code.upper().replace("_", "-")) is lang
        assert get_language(lang.name) is lang
        assert get_language(lang.name.upper()) is lang
        assert get_language(lang.bcp47) is lang
        # ISO codes reach this row or the documented default for the shared code
        assert get_language(lang.iso639_3).iso639_3 == lang.iso639_3
        if lang.iso639_1:
            assert get_language(lang.iso639_1).iso639_1 == lang.iso639_1


def test_language_name():
    assert language_name("de") == "German"
    assert language_name("zh-TW") == "Chinese (Traditional)"
    assert language_name(LANGUAGES["fra_Latn"]) == "French"


def test_unknown_language_suggests_close_code():
    with pytest.raises(UnknownLanguageError) as info:
        get_language("deu_Latm")
    message = str(info.value)
    assert "'deu_Latm'" in message
    assert "did you mean: deu_Latn" in message
    assert "eng_Latn" in message and "'de'" in message
    assert isinstance(info.value, BaylingError) and isinstance(info.value, KeyError)


def test_unknown_language_suggests_name_and_limits_suggestions():
    with pytest.raises(UnknownLanguageError, match="German"):
        get_language("germna")
    with pytest.raises(UnknownLanguageError) as info:
        get_language("sr-Latn")  # Serbian exists, but only in Cyrillic
    assert "srp_Cyrl" in str(info.value)
    hints = re.search(r"did you mean: (.*)\?\)", str(info.value))
    assert hints and len(hints.group(1).split(", ")) <= 3


@pytest.mark.parametrize(
    "alias", ["", "   ", "xx", "klingon_Latn", "zh-Latn", "en-Cyrl", "zz-DE", "Chinese (Klingon)"]
)
def test_unknown_language_raises(alias):
    with pytest.raises(UnknownLanguageError, match="unknown language"):
        get_language(alias)


def test_non_string_alias_raises():
    with pytest.raises(UnknownLanguageError):
        get_language(42)  # type: ignore[arg-type]


def test_expand_languages_takes_every_set_name_once():
    """One expansion for every language list (data.languages, eval.translation.languages, data check --languages): the
    data stage's ``flores101``/``all``/``flores200`` and evaluation's ``tier:`` sets in one vocabulary."""
    from bayling.languages import expand_languages, languages

    assert expand_languages(["de", "German", "deu_Latn", "zh"]) == ["deu_Latn", "zho_Hans"]
    assert len(expand_languages(["all"])) == len(expand_languages(["flores200"])) == 204
    assert len(expand_languages(["flores101"])) == 102
    high = expand_languages(["tier:high"])
    assert len(high) == len(languages(tier="high")) and "eng_Latn" in high
    assert expand_languages(["en", "tier:high"])[0] == "eng_Latn" and len(
        expand_languages(["en", "tier:high"])
    ) == len(high)
    with pytest.raises(ConfigError, match="unknown language tier 'huge'"):
        expand_languages(["tier:huge"])
    with pytest.raises(UnknownLanguageError):
        expand_languages(["klingon"])


# ----------------------------------------------------------------------------- the languages the Hub sets name

WMT24PP_LOCALES = {
    "ar_EG": "arb_Arab", "ar_SA": "arb_Arab", "bg_BG": "bul_Cyrl", "bn_IN": "ben_Beng", "ca_ES": "cat_Latn",
    "cs_CZ": "ces_Latn", "da_DK": "dan_Latn", "de_DE": "deu_Latn", "el_GR": "ell_Grek", "es_MX": "spa_Latn",
    "et_EE": "est_Latn", "fa_IR": "pes_Arab", "fi_FI": "fin_Latn", "fil_PH": "tgl_Latn", "fr_CA": "fra_Latn",
    "fr_FR": "fra_Latn", "gu_IN": "guj_Gujr", "he_IL": "heb_Hebr", "hi_IN": "hin_Deva", "hr_HR": "hrv_Latn",
    "hu_HU": "hun_Latn", "id_ID": "ind_Latn", "is_IS": "isl_Latn", "it_IT": "ita_Latn", "ja_JP": "jpn_Jpan",
    "kn_IN": "kan_Knda", "ko_KR": "kor_Hang", "lt_LT": "lit_Latn", "lv_LV": "lvs_Latn", "ml_IN": "mal_Mlym",
    "mr_IN": "mar_Deva", "nl_NL": "nld_Latn", "no_NO": "nob_Latn", "pa_IN": "pan_Guru", "pl_PL": "pol_Latn",
    "pt_BR": "por_Latn", "pt_PT": "por_Latn", "ro_RO": "ron_Latn", "ru_RU": "rus_Cyrl", "sk_SK": "slk_Latn",
    "sl_SI": "slv_Latn", "sr_RS": "srp_Cyrl", "sv_SE": "swe_Latn", "sw_KE": "swh_Latn", "sw_TZ": "swh_Latn",
    "ta_IN": "tam_Taml", "te_IN": "tel_Telu", "th_TH": "tha_Thai", "tr_TR": "tur_Latn", "uk_UA": "ukr_Cyrl",
    "ur_PK": "urd_Arab", "vi_VN": "vie_Latn", "zh_CN": "zho_Hans", "zh_TW": "zho_Hant", "zu_ZA": "zul_Latn",
}  # fmt: skip
"""The 55 WMT24++ target locales (its card's LANGUAGE_PAIRS) and the FLORES code each resolves to."""
INCLUDE_NAMES = (
    "Albanian Arabic Armenian Azerbaijani Basque Belarusian Bengali Bulgarian Chinese Croatian Dutch Estonian "
    "Finnish French Georgian German Greek Hebrew Hindi Hungarian Indonesian Italian Japanese Kazakh Korean "
    "Lithuanian Malay Malayalam Nepali Persian Polish Portuguese Russian Serbian Spanish Tagalog Tamil Telugu "
    "Turkish Ukrainian Urdu Uzbek Vietnamese"
).split() + ["North Macedonian"]
"""INCLUDE-base-44's config names (lm-eval's ``dataset_name`` values)."""
ISO_CONFIGS = (
    "am ar bn cs de el en es fa fil fr ha he hi id ig it ja ky ko lt mg ms ne nl ny pl pt ro ru si sn so sr sv sw te "
    "tr uk vi yo zh af hu mr th ur wo zu"
).split()
"""Global-MMLU(-Lite) and MMLU-ProX(-Lite) config names (ISO 639-1 codes, ``fil``)."""


def test_the_hub_sets_languages_resolve():
    assert {loc: get_language(loc).code for loc in WMT24PP_LOCALES} == WMT24PP_LOCALES
    assert len(WMT24PP_LOCALES) == 55 and len(INCLUDE_NAMES) == 44
    for name in INCLUDE_NAMES + ISO_CONFIGS + ["Farsi", "Mandarin", "Filipino", "Slovenian"]:  # WMT24++ names too
        get_language(name)
    assert get_language("North Macedonian").code == "mkd_Cyrl" and get_language("fil").code == "tgl_Latn"


def test_a_misspelt_set_language_gets_a_did_you_mean():
    with pytest.raises(UnknownLanguageError, match=r"unknown language 'North Macedonain' \(did you mean: .*mac"):
        get_language("North Macedonain")
    with pytest.raises(UnknownLanguageError, match=r"did you mean: .*Tagalog"):
        get_language("Tagalgo")
