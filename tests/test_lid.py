"""Language ID (bayling.lid): genuine text is not off-target, wrong-language and copied output is caught.

FLORES-200 numbers are measured on the *held-out* lines of devtest (those some FLORES preset holds out or
keeps for few-shot prompts; the calibration never saw them); ``bench/lid_report.py`` runs the same check on
all of them for all 204 languages.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from bayling.errors import ConfigError, DataError
from bayling.evaluate.translation import score_direction
from bayling.languages import LANGUAGES, get_language
from bayling.lid import (
    DATA_FILTER,
    JUDGE,
    NEVER_ACCEPTED,
    OFF,
    ON,
    UNKNOWN,
    LanguageID,
    calibration,
    copy_flags,
    decide,
    is_copy,
    off_target_rates,
    read_calibration,
    strip_non_language,
    translation_rates,
    translation_verdicts,
    wrong_language,
)
from bayling.records import read_columns
from bayling.testsets import Bitext

REPO = Path(__file__).resolve().parents[1]
MIXED = Path(__file__).parent / "assets" / "lid_mixed.jsonl"
CALIBRATION = REPO / "bench" / "results" / "lid_calibration.json"
CODES = sorted(LANGUAGES)


def _bench():
    spec = importlib.util.spec_from_file_location("data_lid_calibrate", REPO / "bench" / "data_lid_calibrate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def flores(shared_data_dir):
    """All 204 languages (102 plain files + 102 from the .tar.xz) and the held-out line indices (never
    calibrated on)."""
    root = shared_data_dir / "flores200"
    cols = read_columns(root, CODES)
    lines, _ = _bench().calibration_lines(root)
    return cols, sorted(set(range(1012)) - set(lines))


def _off(texts, code):
    return [t for t in texts if decide(t, code).status == OFF]


def _identified(code):
    """Whether py3langid (or the script) identifies the language, i.e. its calibration status is not unchecked."""
    return calibration()[code].status != "unchecked"


def test_flores_references_sample_is_rarely_off_target(flores):
    cols, test = flores
    assert len(cols) == 204 and all(len(v) == 1012 for v in cols.values())
    sample = test[:20]  # 20 held-out sentences x 204 languages
    flagged = {c: _off([cols[c][i] for i in sample], c) for c in CODES}
    # languages py3langid identifies: none; the ones it cannot (no accepted stand-in any more): a few
    assert {c: v for c, v in flagged.items() if v and _identified(c)} == {}
    assert sum(map(len, flagged.values())) <= 0.01 * 20 * 204, {c: v for c, v in flagged.items() if v}  # 21


@pytest.mark.slow
def test_flores_references_heldout_false_off_target(flores):
    cols, test = flores
    rates = {c: 100 * len(_off([cols[c][i] for i in test], c)) / len(test) for c in CODES}
    # bench/results/lid_flores200.json: 0.32 % on average, 4.67 % at most (Umbundu), 1.25 % at most where
    # py3langid identifies the language
    assert max(rates.values()) <= 5.0 and sum(rates.values()) / len(rates) <= 0.5
    assert max(r for c, r in rates.items() if _identified(c)) <= 1.5


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
    # English output is caught for every other target, Mizo and Pangasinan included (they used to accept it)
    english = [cols["eng_Latn"][i] for i in test[:10]]
    missed = {c for c in CODES if LANGUAGES[c].group != "eng" and len(_off(english, c)) < 9}
    assert missed == set()
    # what a model answers instead of a low-resource target of the FLORES experiment is caught too
    assert caught("ind_Latn", "jav_Latn") >= 90  # Indonesian for Javanese
    assert caught("zsm_Latn", "jav_Latn") >= 90
    assert caught("fra_Latn", "wol_Latn") >= 90
    assert caught("zul_Latn", "nya_Latn") >= 75  # Zulu for Chichewa (accepted before); the rest is unknown
    # ... or, where py3langid gives the stand-in to genuine text too, never counted as on-target (accepted
    # before): Swahili for Chichewa, Tagalog for Cebuano are ambiguous, so unknown
    for src, tgt in [("swh_Latn", "nya_Latn"), ("tgl_Latn", "ceb_Latn"), ("spa_Latn", "ast_Latn")]:
        verdicts = [decide(cols[src][i], tgt) for i in s]
        assert not any(v.status == ON for v in verdicts) and sum(v.reason == "ambiguous" for v in verdicts) >= 36


def test_accepted_sets_are_small_justified_and_never_english():
    cal = calibration()
    assert len(cal) == 204
    extras = {c: v.accepted - {LANGUAGES[c].group} for c, v in cal.items()}
    assert not {c for c, e in extras.items() if e & NEVER_ACCEPTED}  # English/Chinese never stand for another
    assert max(len(e) for e in extras.values()) <= 3
    # every accepted group stands on confusion counts recorded beside the table: py3langid gave it, with
    # probability >= min_prob, to >= 2 and >= 2 % of the language's calibration sentences
    rec = json.loads(CALIBRATION.read_text(encoding="utf-8"))
    rule = rec["rule"]
    for code, e in extras.items():
        row = rec["languages"][code]
        assert sorted(row["accepted"]) == sorted(cal[code].accepted)
        for g in e:
            k = row["accepted_extra"][g]
            assert k >= rule["min_count"] and k >= rule["min_share"] * row["sentences"], (code, g, k)
    # the cases of issue 24: English for Mizo/Pangasinan, Swahili/Zulu/Xhosa for Chichewa, Tagalog for
    # Cebuano, 8-10 groups for Wolof, Bambara, Akan and Maori
    assert cal["lus_Latn"].accepted == {"lus"} and cal["pag_Latn"].accepted == {"pag", "bcl"}
    assert cal["nya_Latn"].accepted == {"nya", "sna"} and cal["nya_Latn"].ambiguous == {"swh"}
    assert cal["ceb_Latn"].accepted == {"ceb"} and cal["ceb_Latn"].ambiguous == {"tgl"}
    assert all(len(extras[c]) <= 2 for c in ("wol_Latn", "bam_Latn", "aka_Latn", "mri_Latn"))
    assert cal["jav_Latn"].accepted == {"jav"} and cal["ind_Latn"].accepted == {"msa"}
    # ambiguous groups are languages a model writes (high or medium resource), with their counts recorded
    written = {lang.group for lang in LANGUAGES.values() if lang.tier in ("high", "medium")}
    for code, c in cal.items():
        assert c.ambiguous <= written and not c.ambiguous & NEVER_ACCEPTED
        for g in c.ambiguous:
            assert (
                rec["languages"][code]["ambiguous_counts"][g]
                >= rule["min_share"] * rec["languages"][code]["sentences"]
            )


def test_a_table_accepting_english_for_another_language_is_refused(tmp_path):
    table = tmp_path / "lid_labels.tsv"
    table.write_text(
        "# comment\nbackend\tcode\taccepted\tstatus\town_share\n"
        "py3langid\tdeu_Latn\tdeu\town\t1.0\npy3langid\tlus_Latn\teng,lus\tunchecked\t0.0\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"lid_labels.tsv:4: lus_Latn accepts eng; English and Chinese"):
        read_calibration(table, "py3langid")
    assert read_calibration(table, "heliport") == {}


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


def test_calibration_text_never_overlaps_the_evaluated_heldout(shared_data_dir, tmp_path):
    """The calibration script's input lines share no article with what the FLORES experiment's data stage
    holds out (built here by the data stage itself), and are the lines the shipped table was made from."""
    from bayling.data.builder import prepare
    from bayling.pipeline import load_data_config

    root = shared_data_dir / "flores200"
    bench = _bench()
    lines, excluded = bench.calibration_lines(root)
    presets = {str(p.relative_to(REPO)) for p in bench.flores_presets()}
    assert {"configs/experiments/flores_alignment.yaml", "configs/data/flores-100langs.yaml"} <= presets
    assert set(excluded) == presets
    urls = [row.split("\t")[0] for row in (root / "metadata_devtest.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    calib_docs = {urls[i] for i in lines}
    for preset in ("configs/experiments/flores_alignment.yaml", "configs/data/flores-100langs.yaml"):
        out = tmp_path / Path(preset).stem
        cfg, _, seed = load_data_config(REPO / preset, [f"data.flores_dir={root}", "data.token_budget=null"], out=out)
        prepare(cfg, out, seed)
        split = json.loads((out / "split.json").read_text(encoding="utf-8"))["parts"]
        held = {int(i.rsplit("-", 1)[1]) - 1 for part in ("heldout", "fewshot") for i in split[part]["ids"]}
        assert len(held) >= 220 and held == set(excluded[preset])
        assert not held & set(lines), preset
        assert not {urls[i] for i in held} & calib_docs, preset  # not even a neighbouring sentence
    shipped = json.loads(CALIBRATION.read_text(encoding="utf-8"))["text"]["calibration_lines"]
    assert shipped == lines  # regenerate lid_labels.tsv when a preset's held-out part changes


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


def test_translation_verdicts_on_real_wmt22_outputs(shared_data_dir):
    """BayLing-13B's published WMT22 en->de outputs hold real failures: line 506 answered in Chinese, 457 and
    591 leave half the sentence in English, 22 and 23 copy a UI string. One function says so for the
    evaluation's rates and for a reward gate alike."""
    wmt = shared_data_dir / "wmt22"
    hyp_dir = shared_data_dir / "bayling" / "wmt22_hypotheses"
    src = (wmt / "generaltest2022.en-de.src.en").read_text(encoding="utf-8").splitlines()[:600]
    ref = (wmt / "generaltest2022.en-de.ref.A.de").read_text(encoding="utf-8").splitlines()[:600]
    hyps = (hyp_dir / "bayling-13b" / "en-de.hypo").read_text(encoding="utf-8").splitlines()[:600]
    verdicts = translation_verdicts(hyps, src, "deu_Latn")
    assert {i for i, v in enumerate(verdicts) if v.off_target} == {456, 505, 590}
    assert verdicts[505].lid.detected == "zho_Hans" and hyps[505].startswith("A.除非另有说明")
    assert verdicts[456].lid.detected == "eng_Latn"
    assert {i for i, v in enumerate(verdicts) if v.copy} == {21, 22}
    assert (hyps[21], src[21]) == ("3) Tap Settings.", "3)Tap Settings.")  # left in English, a space added
    assert verdicts[21].unknown and not verdicts[21].valid  # too short to tell the language, but a copy
    assert sum(v.valid for v in verdicts) == 595
    rates = translation_rates(verdicts)
    assert rates == {"off_target": 0.5, "unknown": 2.0, "copy": 0.33}
    # the evaluation's rates and per-sentence flags are these verdicts
    b = Bitext("wmt22", "eng_Latn", "deu_Latn", src, ref, [str(i) for i in range(600)])
    scores, rows = score_direction(b, hyps, metrics=("chrf",))
    assert {k: scores[k] for k in rates} == rates
    assert [(r["off_target"], r["lid"], r["copy"]) for r in rows] == [
        (v.off_target, v.lid.status, v.copy) for v in verdicts
    ]
    # good outputs of real systems: GPT-4 and NLLB-3.3B are never off-target (en->de and en->zh)
    for system in ("gpt-4", "nllb-3.3b"):
        for pair, tgt in (("en-de", "deu_Latn"), ("en-zh", "zho_Hans")):
            out = (hyp_dir / system / f"{pair}.hypo").read_text(encoding="utf-8").splitlines()[:300]
            source = (wmt / f"generaltest2022.{pair}.src.en").read_text(encoding="utf-8").splitlines()[:300]
            assert not any(v.off_target for v in translation_verdicts(out, source, tgt)), (system, pair)
