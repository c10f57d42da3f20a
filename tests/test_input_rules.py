"""The rules behind bayling's one-line input errors: which model references are paths, which config key a
typo meant, and how undecodable bytes are located."""

from __future__ import annotations

import dataclasses

import pytest

from bayling.errors import ConfigError, DataError, ModelError


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("runs/nope", "it starts with 'runs/'"),
        ("./nope", "it starts with '.'"),
        ("../x/y", "it starts with '.'"),
        ("/abs/model", "it starts with '/'"),
        ("~/models/x", "it starts with '~'"),
        ("a/b/c", "it has more than one '/'"),
        ("models\\x", "it contains '\\'"),
        ("here/x", "'here' is a directory here"),
        ("google/gemma-3-270m", None),
        ("google/gemma-3-270m@main", None),
        ("org/name@refs/pr/1", None),
        ("gemma-3-270m", None),
    ],
)
def test_which_model_references_are_paths(ref, reason, tmp_path, monkeypatch):
    from bayling.models import path_reason

    monkeypatch.chdir(tmp_path)
    (tmp_path / "here").mkdir()
    assert path_reason(ref) == reason


def test_a_missing_path_is_reported_as_one_and_a_hub_id_is_not(tmp_path, monkeypatch):
    from bayling.models import _kind

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as e:
        _kind("runs/nope", None)
    assert str(e.value).startswith("unknown model 'runs/nope': no such file or directory (read as a local path")
    assert _kind("some-org/some-model", None) == "hub"  # looked up on the Hub (or its cache) later
    (tmp_path / "some-org").mkdir()
    with pytest.raises(ModelError, match="'some-org' is a directory here"):
        _kind("some-org/some-model", None)


@pytest.mark.parametrize(
    ("override", "hint"),
    [
        ("train.lr=1", "learning_rate"),
        ("train.bs=8", "batch_size"),
        ("train.batch=8", "batch_size"),
        ("train.num_train_epochs=1", "epochs"),
        ("train.steps=5", "max_steps"),
        ("train.gradient_accumulation_steps=4", "grad_accum"),
        ("train.max_seq_length=512", "max_length"),
        ("train.learning-rate=1", "learning_rate"),
        ("train.Learning_Rate=1", "learning_rate"),
        ("train.learnig_rate=1", "learning_rate"),
        ("train.cpt.lr=1", "learning_rate"),
        ("model.model_name_or_path=x", "name_or_path"),
        ("data.langs=[de]", "languages"),
        ("learning_rate=1", "train.learning_rate"),
        ("max_steps=1", "train.max_steps"),
        ("serve.max_qeue=3", "max_queue"),
    ],
)
def test_unknown_key_suggests_what_was_meant(override, hint):
    from bayling.config import load_config
    from bayling.pipeline import RunConfig

    with pytest.raises(ConfigError) as e:
        load_config(RunConfig, None, [override])
    key = override.split("=")[0]
    assert str(e.value) == f"unknown config key '{key}' (did you mean '{hint}'?)"


def test_unknown_key_without_a_guess_lists_a_few_keys_only():
    from bayling.config import load_config
    from bayling.pipeline import RunConfig
    from bayling.train.config import TrainConfig

    with pytest.raises(ConfigError) as e:
        load_config(RunConfig, None, ["train.zzz=1"])
    msg = str(e.value)
    assert msg.startswith("unknown config key 'train.zzz'; valid keys here: method, lora_r,")
    n = len(dataclasses.fields(TrainConfig))  # 30 since train.label_only_loss
    assert msg.endswith(f"… ({n} in all)") and n >= 30 and "export" not in msg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"ok\n\xff\n", "f.txt:2: not valid UTF-8 at byte 1 (0xff)"),
        (b"ok\r\nab\xc3(\r\n", "f.txt:2: not valid UTF-8 at byte 3 (0xc3)"),
        (b"caf\xc3", "f.txt:1: not valid UTF-8 at byte 4 (0xc3)"),
        (b"\xef\xbb\xbfok\n\xed\xa0\x80\n", "f.txt:2: not valid UTF-8 at byte 1 (0xed)"),
    ],
)
def test_undecodable_bytes_are_named_by_line_and_byte(tmp_path, data, message):
    from bayling.validate import iter_lines, read_lines

    p = tmp_path / "f.txt"
    p.write_bytes(data)
    for read in (read_lines, lambda f: list(iter_lines(f))):
        with pytest.raises(DataError) as e:
            read(p)
        assert str(e.value).startswith(f"{p.parent}/{message}; re-encode the file as UTF-8")


def test_bom_and_crlf_are_read_as_plain_lines(tmp_path):
    from bayling.validate import iter_lines, read_lines

    p = tmp_path / "f.txt"
    p.write_bytes(b"\xef\xbb\xbfone\r\ntwo\u2028\r\n\r\nthree".replace(b"\\u2028", "\u2028".encode()))
    assert read_lines(p) == ["one", "two\u2028", "", "three"]
    assert [t for _, t in iter_lines(p)] == ["one", "two\u2028", "", "three"]
    p.write_bytes("ein\nzwei\n".encode("utf-16"))
    assert read_lines(p, encoding="utf-16") == ["ein", "zwei"]


def test_trailing_blank_lines_are_segments_as_in_sacrebleus_cli(tmp_path):
    """``readlines`` semantics: only the last line end is dropped, so trailing blank lines stay segments."""
    from bayling.validate import read_lines

    p = tmp_path / "f.txt"
    for data, lines in [
        (b"a\nb\n\n\n", ["a", "b", "", ""]),
        (b"a\nb\n", ["a", "b"]),
        (b"a\nb", ["a", "b"]),
        (b"\n", [""]),
        (b"", []),
        (b"a\r\n\r\n", ["a", ""]),
    ]:
        p.write_bytes(data)
        assert read_lines(p) == lines, data
        with p.open(encoding="utf-8", newline=None) as f:
            assert [line.removesuffix("\n") for line in f.readlines()] == lines  # what sacreBLEU's CLI reads
