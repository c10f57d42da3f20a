"""``bayling data ...`` from the command line, the shipped data presets, and FLORES-200 from ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bayling.cli import main
from bayling.config import load_config
from bayling.data import build
from bayling.data.config import DataBuildConfig

REPO = Path(__file__).resolve().parents[2]
PRESETS = sorted((REPO / "configs" / "data").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_data_preset_loads(preset):
    cfg = load_config(DataBuildConfig, preset)
    assert cfg.data.languages and cfg.resolved_out_dir()


def test_build_stats_and_check_commands(tmp_path, capsys, tiny_llama, tiny_data):
    out = tmp_path / "s"
    rc = main(
        [
            "data",
            "build",
            str(REPO / "configs" / "data" / "sample.yaml"),
            "-o",
            str(out),
            *tiny_data(heldout=None, interactive=60, crosslingual=40, general=10),  # the preset's held-out count
        ]
    )
    assert rc == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["examples"] > 90 and (out / "train.sharegpt.jsonl").is_file() and (out / "config.yaml").is_file()
    capsys.readouterr()
    assert (
        main(
            [
                "data",
                "stats",
                str(out / "train.jsonl"),
                "--tokenizer",
                str(tiny_llama),
                "--json",
                str(tmp_path / "st.json"),
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["examples"] == stats["examples"] and printed["tokens"]["total"] > 0
    assert printed["tasks"] == stats["tasks"]
    # ShareGPT files are read too
    assert main(["data", "stats", str(out / "train.sharegpt.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == stats["examples"]
    # contamination check: clean against an unrelated sentence, dirty against a training sentence
    clean = tmp_path / "clean.txt"
    clean.write_text("Nothing in the training data looks like this sentence about quantum zebras.\n")
    assert main(["data", "check", str(out / "train.jsonl"), "--eval-file", str(clean)]) == 0
    first = json.loads((out / "train.jsonl").read_text().splitlines()[0])["messages"][1]["content"]
    dirty = tmp_path / "dirty.txt"
    dirty.write_text(first + "\n")
    assert main(["data", "check", str(out / "train.jsonl"), "--eval-file", str(dirty)]) == 1
    assert json.loads(capsys.readouterr().out.split("\n}\n")[-2] + "\n}")["contaminated"] >= 1


def test_run_config_form_still_works(tmp_path, tiny_data):
    rc = main(
        [
            "data",
            str(REPO / "configs" / "quickstart.yaml"),
            f"run_dir={tmp_path}/run",
            *tiny_data(heldout=None, interactive=20, crosslingual=10, general=4),
        ]
    )
    assert rc == 0
    assert json.loads((tmp_path / "run" / "data" / "stats.json").read_text())["tasks"]["interactive"] > 0
    assert (tmp_path / "run" / "data" / "_stage.json").is_file()


def test_user_errors_are_one_line_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "par.jsonl"
    bad.write_text('{"en": "Hello there.", "zh": "你好。"}\n{"en": "oops"\n')
    rc = main(
        [
            "data",
            "build",
            str(REPO / "configs" / "data" / "sample.yaml"),
            "-o",
            str(tmp_path / "o"),
            f"data.source={bad}",
            "data.languages=[en,zh]",
            "data.heldout=1",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and f"bayling: error: {bad}:2: invalid JSON line" in err
    rc = main(
        [
            "data",
            "build",
            str(REPO / "configs" / "data" / "sample.yaml"),
            "-o",
            str(tmp_path / "k"),
            "data.languages=[eng_Latn,klingon]",
        ]
    )
    assert rc == 2 and "klingon" in capsys.readouterr().err
    rc = main(
        [
            "data",
            "build",
            str(REPO / "configs" / "data" / "sample.yaml"),
            "-o",
            str(tmp_path / "p"),
            "data.formats=[parquet]",
        ]
    )
    assert rc == 2 and "data.formats" in capsys.readouterr().err


def test_flores_100_languages(shared_data_dir, tmp_path):
    cfg = load_config(
        DataBuildConfig,
        REPO / "configs" / "data" / "flores-100langs.yaml",
        [
            f"data.flores_dir={shared_data_dir / 'flores200'}",
            "data.total=3000",
            "data.tokenizer=null",
            "data.num_proc=1",
            "data.formats=[chat]",
            f"data.contamination.wmt_dir={shared_data_dir / 'wmt22'}",
            f"data.contamination.flores_dir={shared_data_dir / 'flores200'}",
            f"data.instructions=[{shared_data_dir / 'instruct' / 'alpaca_zh_demo.json'},"
            f"{shared_data_dir / 'instruct' / 'alpaca_en_demo.json'}]",
        ],
    )
    out = build(cfg.data, tmp_path / "f", seed=0).out_dir
    stats = json.loads((out / "stats.json").read_text())
    assert stats["languages_count"] == 102 and stats["parallel_records"] == 1012
    # whole articles are held out until at least 200 sentences are (FLORES articles have at most 6)
    assert 200 <= stats["heldout_records"] < 206 and stats["split"]["by"] == "document"
    # ~970 directions: language ID finds 998 of the 1000 alpaca_zh instructions Chinese (the mix then asks for
    # more general and fewer translation examples than when 54 of them were called other languages)
    assert stats["examples"] > 2800 and stats["directions_count"] > 900
    assert set(stats["tasks"]) == {"interactive", "crosslingual", "general"}
    assert stats["contamination"]["flores_skipped_as_source"] and any(
        "wmt22" in s for s in stats["contamination"]["sources"]
    )
    # py3langid cannot identify these; since issue 24 no stand-in is accepted where it is a language a model
    # writes (Tagalog for Cebuano, Swahili for Chichewa, Spanish for Asturian are ambiguous: unknown)
    assert set(stats["lid"]["unchecked_languages"]) == {
        *("ast_Latn", "ceb_Latn", "kam_Latn", "kea_Latn", "luo_Latn"),
        *("mri_Latn", "nya_Latn", "snd_Arab", "umb_Latn", "wol_Latn"),
    }
    held = [json.loads(x) for x in (out / "heldout.jsonl").read_text().splitlines()]
    assert len(held[0]) == 104  # id + doc + 102 languages
    held_en = {h["eng_Latn"] for h in held}
    train = (out / "train.jsonl").read_text()
    assert not [s for s in held_en if s in train]


def test_flores_languages_packed_in_the_tarball(shared_data_dir, tmp_path):
    from bayling.data.config import DataConfig

    cfg = DataConfig(
        source="flores200",
        flores_dir=str(shared_data_dir / "flores200"),
        languages=["eng_Latn", "zho_Hans", "ace_Latn", "yue_Hant"],
        heldout=12,
        interactive=40,
        crosslingual=40,
        general=0,
    )
    stats = json.loads((build(cfg, tmp_path / "t", seed=0).out_dir / "stats.json").read_text())
    assert stats["languages"].keys() == {"eng_Latn", "zho_Hans", "ace_Latn", "yue_Hant"}
    # Han script settles Chinese, and Cantonese is in the zho macrolanguage: every language here is checked
    assert stats["lid"]["unchecked_languages"] == []
