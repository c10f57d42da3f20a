"""``bayling.cli.main``: one argparse tree, the run-config form of ``data``/``eval`` routed to their hidden
``stage`` subcommand, and ``data build``/``data teacher`` overrides on both sides of ``-o``."""

from __future__ import annotations

import re

import pytest

from bayling.cli import build_parser, data, eval, main, with_hidden_stage


def _choices(parser, dest: str) -> dict:
    return next(a for a in parser._actions if a.dest == dest).choices


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ("data configs/q.yaml k=v", "data stage configs/q.yaml k=v"),
        ("data --force configs/q.yaml", "data stage --force configs/q.yaml"),
        ("data", "data stage"),  # -> "required: config" from `bayling data`, as before
        ("data build c.yaml -o out", "data build c.yaml -o out"),
        ("data --help", "data --help"),
        ("-v eval configs/q.yaml", "-v eval stage configs/q.yaml"),
        ("eval score --hyp h", "eval score --hyp h"),
        ("eval", "eval"),  # -> the eval parser's own usage error
        ("train data", "train data"),  # only the command word counts
    ],
)
def test_the_run_config_form_gets_the_hidden_stage(argv, expected):
    assert " ".join(with_hidden_stage(argv.split())[0]) == expected


def test_help_lists_the_subcommands_and_hides_stage(capsys):
    top = build_parser()
    commands = _choices(top, "command")
    assert set(commands) == {"run", "data", "train", "eval", "chat", "serve", "translate", "push"}
    for name, module in (("data", data), ("eval", eval)):
        sub = _choices(commands[name], f"{name}_command")
        assert set(sub) == {*module.SUBCOMMANDS, "stage"}
        with pytest.raises(SystemExit):
            main([name, "--help"])
        page = capsys.readouterr().out
        for cmd in module.SUBCOMMANDS:
            assert f"\n    {cmd} " in page, page
        assert not re.search(r"^ +stage |stage}", page, flags=re.M)  # "the data stage of a run" in prose is fine


def test_data_build_reads_overrides_after_the_output_option(tmp_path, capsys):
    preset = tmp_path / "p.yaml"
    preset.write_text("name: t\nout_dir: out\ndata:\n  languages: [en, de]\n")
    assert main(["data", "build", str(preset), "-o", str(tmp_path / "o"), "data.totl=5"]) == 2
    assert "unknown config key 'data.totl' (did you mean 'total'?)" in capsys.readouterr().err


def test_eval_run_config_form_reaches_the_stage_with_force_first(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("name: t\n")
    assert main(["eval", "--force", str(cfg), "train.lr=1"]) == 2
    assert "unknown config key 'train.lr' (did you mean 'learning_rate'?)" in capsys.readouterr().err


def test_unknown_words_are_reported_by_the_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "score", "--hyp", "h", "--ref", "r", "--tgt-lang", "de", "extra"])
    assert e.value.code == 2
    assert "bayling eval score: error: unrecognized arguments: extra" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "c.yaml", "--bogus"])
    assert "bayling: error: unrecognized arguments: --bogus" in capsys.readouterr().err
