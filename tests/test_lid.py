"""Language ID (bayling.lid): genuine text is not off-target, wrong-language and copied output is caught.

FLORES-200 numbers are measured on the *test half* of devtest (the documents the calibration never saw);
``bench/lid_report.py`` runs the same check on every sentence of all 204 languages.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bayling.errors import ConfigError
from bayling.evaluate.translation import score_direction
from bayling.languages import LANGUAGES, get_language
from bayling.lid import (
    DATA_FILTER,
    JUDGE,
    OFF,
    ON,
    UNKNOWN,
    LanguageID,
    calibration,
    copy_flags,
    decide,
    flores_halves,
    is_copy,
    off_target_rates,
    strip_non_language,
    wrong_language,
)
from bayling.records import read_columns
from bayling.testsets import Bitext

MIXED = Path(__file__).parent / "assets" / "lid_mixed.jsonl"
CODES = sorted(LANGUAGES)


@pytest.fixture(scope="module")
def flores(shared_data_dir):
    """All 204 languages (102 plain files + 102 from the .tar.xz) and the test-half line indices."""
    root = shared_data_dir / "flores200"
    cols = read_columns(root, CODES)
    calib, test = flores_halves(root)
    return cols, test


def _off(texts, code):
    return [t for t in texts if decide(t, code).status == OFF]


def test_flores_references_sample_is_never_off_target(flores):
    cols, test = flores
    assert len(cols) == 204 and all(len(v) == 1012 for v in cols.values())
    sample = test[:20]  # 20 test-half sentences x 204 languages; <= 0.5 % of 20 means none
    flagged = {c: _off([cols[c][i] for i in sample], c) for c in CODES}
    assert {c: v for c, v in flagged.items() if v} == {}


@pytest.mark.slow
def test_flores_references_test_half_at_most_half_a_percent(flores):
    cols, test = flores
    rates = {c: 100 * len(_off([cols[c][i] for i in test], c)) / len(test) for c in CODES}
    assert max(rates.values()) <= 0.5, {c: r for c, r in rates.items() if r > 0.5}


def test_copied_and_wrong_language_output_is_caught(flores):
    cols, test = flores
    s = test[:40]

    def caught(src, tgt):
        return 100 * len(_off([cols[src][i] for i in s], tgt)) / len(s)

    assert caught("eng_Latn", "deu_Latn") >= 95  # English source copied for a German target
    assert caught("deu_Latn", "zho_Hans") == 100  # German source copied for a Chinese target
    assert caught("eng_Latn", "jpn_Jpan") == 100  # an English answer for Japanese
    assert caught("zho_Hans", "jpn_Jpan") == 100  # Chinese is not Japanese (no kana)
    assert caught("rus_Cyrl", "ukr_Cyrl") >= 90
    assert caught("spa_Latn", "por_Latn") >= 90
    # English output is caught for every target except the two whose genuine text py3langid often calls
    # English (Mizo and Pangasinan quote English terms a lot; bench/results/lid_flores200.json)
    english = [cols["eng_Latn"][i] for i in test[:10]]
    missed = {c for c in CODES if LANGUAGES[c].group != "eng" and len(_off(english, c)) < 9}
    assert missed == {c for c, cal in calibration().items() if "eng" in cal.accepted and c != "eng_Latn"}
    assert missed <= {"lus_Latn", "pag_Latn"}


def test_mixed_content_is_never_off_target():
    items = [json.loads(line) for line in MIXED.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(items) >= 40
    verdicts = [decide(it["text"], it["lang"]) for it in items]
    assert [(it["lang"], it["text"]) for it, v in zip(items, verdicts, strict=True) if v.status == OFF] == []
    assert sum(v.status == ON for v in verdicts) >= len(items) - 2  # the rest: too short to tell ("答案是 42。")
    # the same holds for the judge's and the data filter's policies
    assert not any(decide(it["text"], it["lang"], JUDGE).status == OFF for it in items)
    assert not any(decide(it["text"], it["lang"], DATA_FILTER).status == OFF for it in items)


@pytest.mark.parametrize(
    ("text", "lang", "status", "detected"),
    [
        ("", "deu_Latn", OFF, None),  # an empty output is off-target
        ("   \n", "zho_Hans", OFF, None),
        ("42", "zho_Hans", UNKNOWN, None),  # nothing to tell
        ("OK!", "zho_Hans", UNKNOWN, None),
        ("他在 Google 工作，负责 Android 系统的性能优化。", "zho_Hans", ON, "zho_Hans"),
        ("The train to Berlin leaves at nine o'clock tomorrow morning.", "zho_Hans", OFF, "eng_Latn"),
        ("Der Zug nach Berlin fährt morgen früh um neun Uhr ab.", "fra_Latn", OFF, "deu_Latn"),
        ("今天天气很好，我们下午一起去公园散步吧。", "jpn_Jpan", OFF, "zho_Hans"),
        ("今日はとても良い天気なので、午後は公園を散歩しましょう。", "zho_Hans", OFF, "jpn_Jpan"),
        ("오늘은 날씨가 좋아서 오후에 공원에서 산책합시다.", "jpn_Jpan", OFF, "kor_Hang"),
        ("I would recommend visiting Kyoto in the autumn, when the leaves turn red.", "jpn_Jpan", OFF, "eng_Latn"),
        ("Я думаю, що завтра піде дощ, тому візьми парасольку.", "ukr_Cyrl", ON, "ukr_Cyrl"),
        ("Я думаю, что завтра пойдёт дождь, поэтому возьми с собой зонтик.", "ukr_Cyrl", OFF, "rus_Cyrl"),
        ("Eu acho que amanhã vai chover, então leve o seu guarda-chuva.", "por_Latn", ON, "por_Latn"),
        ("Creo que mañana va a llover, así que llévate el paraguas contigo.", "por_Latn", OFF, "spa_Latn"),
        ("Saya rasa esok hari akan hujan, jadi bawalah payung bersama anda.", "ind_Latn", ON, "ind_Latn"),  # Malay
        ("Mislim da će sutra padati kiša, pa ponesi kišobran sa sobom.", "bos_Latn", ON, "bos_Latn"),  # Croatian
        ("वह हर सुबह सात बजे दफ़्तर के लिए निकलता है।", "tha_Thai", OFF, "hin_Deva"),
        ("เขาออกจากบ้านไปทำงานทุกเช้าเวลาเจ็ดโมง", "tha_Thai", ON, "tha_Thai"),
    ],
)
def test_decisions(text, lang, status, detected):
    v = decide(text, lang)
    assert (v.status, v.detected) == (status, detected), v


def test_stripping_and_policies():
    stripped = strip_non_language(
        "see https://x.org/a?b=1 or mail a.b@c.de, `x = f(y)` 12.5% jama3 &amp; getElementById"
    )
    assert stripped.split() == ["see", "or", "mail", ",", ".", "%", "jama", "&"]  # Arabizi keeps its letters
    code = "Use this:\n\n```python\ndef f(x):\n    return x + 1\n```\nand `f(2)` gives 3."
    assert strip_non_language(code).split() == ["Use", "this:", "and", "gives", "."]
    short_en = "Yes, that is right."  # 15 letters: enough for the off-target rate, not for the judge
    assert decide(short_en, "zho_Hans").status == OFF and decide(short_en, "zho_Hans", JUDGE).status == UNKNOWN
    assert decide("", "deu_Latn", DATA_FILTER).status == UNKNOWN  # empty text is the length filter's business
    # macrolanguages come from the language table, not from code
    assert LANGUAGES["acm_Arab"].macro == "ara" and get_language("nno").group == get_language("nob").group == "nor"
    assert LANGUAGES["deu_Latn"].macro is None and LANGUAGES["deu_Latn"].group == "deu"
    with pytest.raises(ConfigError, match="not calibrated"):
        LanguageID("heliport")


def test_rates_report_unknown_separately():
    hyps = ["", "42", "Der Hund schläft den ganzen Tag in der Sonne.", "The dog sleeps in the sun all day."]
    rates, verdicts = off_target_rates(hyps, "deu_Latn")
    assert [v.status for v in verdicts] == [OFF, UNKNOWN, ON, OFF]
    assert rates == {"off_target": 50.0, "unknown": 25.0}


def test_judge_policy_allows_the_language_the_question_asks_for():
    email = "Dear Mr. Smith, I am writing to propose a joint venture between our two companies next year."
    # BayLing-80 zh question 71, turn 2: "the partner is from the US, please use English"
    assert wrong_language(email, "zho_Hans", "这个商业伙伴来自美国，请使用英语。") is None
    assert wrong_language(email, "zho_Hans", "你能帮我写一封正式的电子邮件吗？").detected == "eng_Latn"
    spanish = "No hay ningún lugar como el hogar, por muy humilde que sea."
    assert wrong_language(spanish, "eng_Latn", "Translate 'There is no place like home' into Spanish.") is None
    # a translation request names both languages: copying the source is still the wrong language
    assert wrong_language(email, "deu_Latn", "Translate this English text into German: ...") is not None


def test_calibration_halves_are_disjoint_documents(shared_data_dir):
    calib, test = flores_halves(shared_data_dir / "flores200")
    assert len(calib) + len(test) == 1012 and not set(calib) & set(test)
    urls = (shared_data_dir / "flores200" / "metadata_devtest.tsv").read_text(encoding="utf-8").splitlines()[1:]
    assert not {urls[i].split("\t")[0] for i in calib} & {urls[i].split("\t")[0] for i in test}


# ----------------------------------------------------------------------------- copies


def test_is_copy_on_real_cases(flores):
    cols, test = flores
    s = test[:60]
    # genuine translations are never copies, not even between close languages or for name-heavy sentences
    for src, tgt in [("eng_Latn", "deu_Latn"), ("eng_Latn", "lus_Latn"), ("ces_Latn", "slk_Latn")]:
        assert not any(copy_flags([cols[tgt][i] for i in s], [cols[src][i] for i in s])), (src, tgt)
    en = cols["eng_Latn"][test[0]]
    assert is_copy(en, en) and is_copy(en.upper() + "  ", en)
    assert is_copy(en.replace("the", "a", 1), en)  # a near copy
    assert is_copy(en + "\nGerman: " + cols["deu_Latn"][test[0]], en)  # repeats the source, then translates
    assert is_copy(en[: int(len(en) * 0.6)], en)  # a copy cut short by the token limit
    assert is_copy(f"Translate the following sentence into German:\n{en}\nGerman:", en)  # echoes the prompt
    assert not is_copy(en[:10], en) and not is_copy("", en)


def test_score_direction_reports_off_target_unknown_and_copy():
    src = [
        "The dog sleeps in the sun all day long.",
        "We will meet at the station at noon.",
        "Thanks!",
        "The museum opens at nine in the morning.",
    ]
    ref = [
        "Der Hund schläft den ganzen Tag in der Sonne.",
        "Wir treffen uns mittags am Bahnhof.",
        "Danke!",
        "Das Museum öffnet um neun Uhr morgens.",
    ]
    hyps = [ref[0], src[1], "Danke!", ""]
    b = Bitext("t", "eng_Latn", "deu_Latn", src, ref, ["1", "2", "3", "4"])
    scores, rows = score_direction(b, hyps)
    assert (scores["off_target"], scores["unknown"], scores["copy"]) == (50.0, 25.0, 25.0)
    assert [(r["lid"], r["off_target"], r["copy"]) for r in rows] == [
        ("on", False, False),
        ("off", True, True),
        ("unknown", False, False),
        ("off", True, False),
    ]
