"""Config loading: YAML -> typed dataclasses, overrides, and one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from bayling.config import load_config, save_config, to_dict
from bayling.errors import ConfigError
from bayling.pipeline import RunConfig

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_preset_loads_with_types():
    cfg = load_config(RunConfig, REPO / "configs" / "quickstart.yaml")
    assert cfg.name == "quickstart"
    assert cfg.model.name_or_path == "gemma-3-270m"
    assert cfg.train.method == "lora" and isinstance(cfg.train.learning_rate, float)
    assert cfg.train.learning_rate == pytest.approx(5e-4)
    assert cfg.train.epochs == pytest.approx(1.6) and isinstance(cfg.train.epochs, float)
    assert cfg.data.pairs == 800
    assert cfg.data.pivot_languages == ["eng_Latn"]
    assert (
        "eng_Latn-zho_Hans" in cfg.eval.translation.directions
        and "deu_Latn-eng_Latn" in cfg.eval.translation.directions
    )
    assert cfg.resolved_run_dir() == Path("runs/quickstart")


def test_overrides_win_and_are_parsed_as_yaml():
    cfg = load_config(
        RunConfig,
        REPO / "configs" / "quickstart.yaml",
        [
            "train.max_steps=7",
            "train.learning_rate=1e-5",
            "eval.translation.directions=[en-de]",
            "data.languages=eng_Latn,deu_Latn",
        ],
    )
    assert cfg.train.max_steps == 7
    assert cfg.train.learning_rate == pytest.approx(1e-5)
    assert cfg.eval.translation.directions == ["en-de"]
    assert cfg.data.languages == ["eng_Latn", "deu_Latn"]


def test_unknown_key_names_file_and_suggests(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  learning_rat: 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(RunConfig, p)
    msg = str(e.value)
    assert str(p) in msg and "train.learning_rat" in msg and "did you mean 'learning_rate'" in msg


def test_wrong_type_is_reported_with_its_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train:\n  max_steps: lots\n")
    with pytest.raises(ConfigError, match=r"train\.max_steps: expected an integer"):
        load_config(RunConfig, p)


def test_malformed_yaml_names_the_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\ntrain:\n  method: [lora\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml:\d+: invalid YAML"):
        load_config(RunConfig, p)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(RunConfig, "does/not/exist.yaml")


def test_round_trip_through_saved_yaml(tmp_path):
    cfg = load_config(RunConfig, REPO / "configs" / "quickstart.yaml", ["seed=3"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(RunConfig, tmp_path / "config.yaml")
    assert to_dict(again) == to_dict(cfg)


def test_one_seed_reaches_every_stage():
    """``seed`` is the run's one seed: the eval stage runs with it (it used to keep eval.seed=0), and a stage seed
    may repeat it but never disagree; the eval stage's fingerprint follows the run seed."""
    from bayling.pipeline import preflight, stage_fingerprints

    cfg = load_config(RunConfig, None, ["seed=3"])
    assert cfg.eval.seed is None and cfg.eval_section().seed == 3
    other = load_config(RunConfig, None, ["seed=4"])
    assert stage_fingerprints(cfg)["eval"] != stage_fingerprints(other)["eval"]
    assert load_config(RunConfig, None, ["seed=3", "eval.seed=3"]).eval_section().seed == 3
    with pytest.raises(ConfigError, match=r"eval\.seed=1 disagrees with seed=3: a run has one seed"):
        load_config(RunConfig, None, ["seed=3", "eval.seed=1"]).eval_section()
    with pytest.raises(ConfigError, match=r"data\.seed=5 disagrees with seed=3"):
        preflight(load_config(RunConfig, None, ["seed=3", "data.seed=5"]), ["data"])


def test_eval_only_runs_have_one_seed_too(tmp_path):
    from bayling.evaluate.eval_only import EvalRunConfig, run_eval_config

    assert load_config(EvalRunConfig, None, ["seed=2"]).seed == 2
    with pytest.raises(ConfigError, match=r"eval\.seed=1 disagrees with seed=2"):
        run_eval_config(None, ["seed=2", "eval.seed=1", f"out_dir={tmp_path}", "eval.testset=flores200"])
