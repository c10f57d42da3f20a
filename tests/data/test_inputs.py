"""Input readers: parallel text in every layout, seed instructions in every format, and their error messages."""

from __future__ import annotations

import json
import tarfile

import pytest

from bayling.data.instructions import iter_instructions
from bayling.data.parallel import iter_parallel
from bayling.errors import DataError
from bayling.records import iter_aligned, load_parallel, read_flores
from bayling.validate import BadLines


def test_aligned_files_flores_and_moses_layouts(tmp_path):
    (tmp_path / "devtest").mkdir()
    (tmp_path / "devtest" / "eng_Latn.devtest").write_text("Hello world.\nGood night.\n", encoding="utf-8")
    (tmp_path / "devtest" / "deu_Latn.devtest").write_text("Hallo Welt.\nGute Nacht.\n", encoding="utf-8")
    recs = read_flores(tmp_path, ["en", "de"])
    assert [r.texts for r in recs] == [
        {"eng_Latn": "Hello world.", "deu_Latn": "Hallo Welt."},
        {"eng_Latn": "Good night.", "deu_Latn": "Gute Nacht."},
    ]
    assert recs[1].id == "flores-devtest-2"
    moses = tmp_path / "moses"
    moses.mkdir()
    (moses / "news.en").write_text("One.\nTwo.\n", encoding="utf-8")
    (moses / "news.zh").write_text("一。\n二。\n", encoding="utf-8")
    assert [r.texts["zho_Hans"] for r in iter_aligned(moses, ["eng_Latn", "zho_Hans"], split="train")] == [
        "一。",
        "二。",
    ]


def test_languages_packed_in_a_tarball_are_read_in_one_pass(tmp_path):
    (tmp_path / "devtest").mkdir()
    (tmp_path / "devtest" / "eng_Latn.devtest").write_text("a\nb\n", encoding="utf-8")
    member = tmp_path / "ace_Latn.devtest"
    member.write_text("x\ny\n", encoding="utf-8")
    with tarfile.open(tmp_path / "devtest_extra_1lang.tar.xz", "w:xz") as t:
        t.add(member, arcname="devtest/ace_Latn.devtest")
    member.unlink()
    assert [r.texts["ace_Latn"] for r in iter_aligned(tmp_path, ["eng_Latn", "ace_Latn"])] == ["x", "y"]


def test_misaligned_files_name_the_file_and_line(tmp_path):
    (tmp_path / "eng_Latn.devtest").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "deu_Latn.devtest").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"eng_Latn\.devtest:3: misaligned parallel files: .*deu_Latn\.devtest ends after 2"
    ):
        list(iter_aligned(tmp_path, ["eng_Latn", "deu_Latn"]))


def test_bad_jsonl_lines_fail_with_file_line_or_are_skipped_and_counted(tmp_path):
    p = tmp_path / "par.jsonl"
    p.write_text(
        '{"en": "Hi there.", "de": "Hallo."}\n{not json\n{"en": "Bye.", "xx_Zzzz": "?"}\n'
        '{"en": "", "de": "Leer."}\n{"en": "Yes.", "de": "Ja."}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"par\.jsonl:2: invalid JSON line"):
        list(iter_parallel(str(p), ["en", "de"]))
    bad = BadLines(skip=True)
    recs = list(iter_parallel(str(p), ["en", "de"], bad=bad))
    assert [r.texts["deu_Latn"] for r in recs] == ["Hallo.", "Ja."]
    assert bad.count == 3
    assert bad.messages[0].endswith(
        "par.jsonl:2: invalid JSON line (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"
    )
    assert "par.jsonl:3: unknown language 'xx_Zzzz'" in bad.messages[1]
    assert "par.jsonl:4: en: expected a non-empty string, found an empty string" in bad.messages[2]


def test_tsv_column_count_and_unknown_language(tmp_path):
    p = tmp_path / "par.tsv"
    p.write_text("id\ten\tzh\n1\tHello.\t你好。\n2\tonly one column\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"par\.tsv:3: expected 3 tab-separated columns, found 2"):
        load_parallel(str(p), ["en", "zh"])
    q = tmp_path / "bad.tsv"
    q.write_text("en\tklingon\nHello.\tnuqneH\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.tsv:1: .*klingon"):
        load_parallel(str(q), ["en"])


def test_hf_datasets_directory_with_translation_column(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(
        [
            {"translation": {"de": "Guten Morgen.", "en": "Good morning."}},
            {"translation": {"de": "Danke.", "en": "Thank you."}},
        ]
    )
    ds.save_to_disk(str(tmp_path / "wmt"))
    recs = list(iter_parallel(f"hf:{tmp_path / 'wmt'}", ["en", "de"]))
    assert [r.texts for r in recs] == [
        {"eng_Latn": "Good morning.", "deu_Latn": "Guten Morgen."},
        {"eng_Latn": "Thank you.", "deu_Latn": "Danke."},
    ]


def test_instruction_formats_and_lid_for_missing_lang(tmp_path):
    from bayling.lid import LanguageID

    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(
        json.dumps(
            [
                {
                    "instruction": "Summarise the text.",
                    "input": "Cats sleep a lot during the day.",
                    "output": "Cats sleep much.",
                },
                {"instruction": "用一句话介绍长城。", "input": "", "output": "长城是中国古代修建的军事防御工程。"},
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    recs = list(iter_instructions(str(alpaca), lid=LanguageID()))
    assert recs[0]["messages"][0]["content"] == "Summarise the text.\n\nCats sleep a lot during the day."
    assert [r["lang"] for r in recs] == ["eng_Latn", "zho_Hans"]
    share = tmp_path / "share.jsonl"
    share.write_text(
        json.dumps(
            {
                "id": "c1",
                "lang": "de",
                "conversations": [
                    {"from": "human", "value": "Hallo?"},
                    {"from": "gpt", "value": "Hallo! Wie kann ich helfen?"},
                    {"from": "human", "value": "Danke."},
                    {"from": "gpt", "value": "Gern geschehen."},
                ],
            }
        )
        + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "Hi"}]})
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(
        DataError, match=r"share\.jsonl:2: turns must alternate user/assistant and end with an assistant"
    ):
        list(iter_instructions(str(share)))
    bad = BadLines(skip=True)
    recs = list(iter_instructions(str(share), bad))
    assert recs[0]["lang"] == "deu_Latn" and [m["role"] for m in recs[0]["messages"]] == ["user", "assistant"] * 2
    assert bad.count == 1
