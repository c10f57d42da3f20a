"""The nested ``eval`` section: each part in its own section, the keys of the old flat layout rejected with their
new name (never accepted silently), and :func:`~bayling.evaluate.config.validate` as the one place of checks."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from bayling.config import load_config
from bayling.errors import BaylingError, ConfigError
from bayling.evaluate.config import RENAMED_KEYS, EvalConfig, validate
from bayling.evaluate.eval_only import EvalRunConfig
from bayling.pipeline import RunConfig, preflight

REPO = Path(__file__).resolve().parents[2]

OLD_VALUES = {
    "benchmarks": ["xcopa"],
    "open_ended": ["mt_bench"],
    "interactive": ["refinement"],
    "judge": {"model": "x"},
    "prompts": {"base": "chat"},
}


def _field_type(path: str) -> object:
    """The type of the ``eval`` field at a dotted path (fails on a path that names no field)."""
    tp: object = EvalConfig
    for part in path.split("."):
        assert dataclasses.is_dataclass(tp) and part in {f.name for f in dataclasses.fields(tp)}, path
        tp = typing.get_type_hints(tp)[part]
    return tp


@pytest.mark.parametrize("old", sorted(RENAMED_KEYS))
def test_every_new_key_exists_and_no_old_key_is_a_field(old):
    new = RENAMED_KEYS[old]
    _field_type(new)
    if old in ("benchmarks", "open_ended", "interactive"):  # the parts' names became their sections
        assert new.startswith(f"{old}.")
    else:
        assert old not in {f.name for f in dataclasses.fields(EvalConfig)}


@pytest.mark.parametrize("old", sorted(RENAMED_KEYS))
@pytest.mark.parametrize("cls", [RunConfig, EvalRunConfig], ids=["run", "eval-only"])
def test_an_old_yaml_key_fails_in_one_line_naming_the_new_key(old, cls, tmp_path):
    import yaml

    p = tmp_path / "old.yaml"
    p.write_text(yaml.safe_dump({"eval": {old: OLD_VALUES.get(old, 5)}}))
    with pytest.raises(ConfigError) as e:
        load_config(cls, p)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{p}: eval.{old} ") and msg.endswith(f"eval.{RENAMED_KEYS[old]}")


def test_old_cli_overrides_fail_naming_the_new_key():
    with pytest.raises(ConfigError, match=r"^eval\.benchmark_limit was renamed: use eval\.benchmarks\.limit$"):
        load_config(RunConfig, None, ["eval.benchmark_limit=3"])
    with pytest.raises(ConfigError, match=r"eval\.grid_languages was renamed: use eval\.translation\.languages$"):
        load_config(EvalRunConfig, REPO / "configs" / "eval" / "flores_grid.yaml", ["eval.grid_languages=[de]"])
    # a part's list where its section now is: the list has a key of its own
    with pytest.raises(
        ConfigError, match=r"eval\.benchmarks is a section now: its list goes in eval\.benchmarks\.tasks"
    ):
        load_config(RunConfig, REPO / "configs" / "quickstart.yaml", ["eval.benchmarks=[xcopa]"])
    with pytest.raises(
        ConfigError, match=r"eval\.interactive is a section now: its list goes in eval\.interactive\.tasks"
    ):
        load_config(RunConfig, None, ["eval.interactive=refinement"])
    # the new keys load, in a run and in an eval-only config alike
    cfg = load_config(RunConfig, None, ["eval.benchmarks.limit=3", "eval.open_ended.judge.mode=both"])
    assert cfg.eval.benchmarks.limit == 3 and cfg.eval.open_ended.judge.mode == "both"
    ev = load_config(EvalRunConfig, REPO / "configs" / "eval" / "interactive.yaml", ["eval.interactive.limit=2"])
    assert ev.eval.interactive.tasks == ["refinement", "constrained"] and ev.eval.interactive.limit == 2


def test_a_typo_inside_a_section_still_gets_a_suggestion():
    with pytest.raises(
        ConfigError, match=r"unknown config key 'eval\.translation\.direction' \(did you mean 'directions'"
    ):
        load_config(RunConfig, None, ["eval.translation.direction=[en-de]"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.translation.metrics=[meteor]", "eval.translation.metrics: unknown meteor"),
        ("eval.translation.directions=[en-xx]", "xx"),
        ("eval.translation.languages=[tier:huge]", "tier"),
        ("eval.translation.prompt=zero", "eval.translation.prompt: unknown zero"),
        ("eval.base_prompts=[zero]", "eval.base_prompts: unknown zero"),
        ("eval.benchmarks.tasks=[mmlu]", "eval.benchmarks.tasks: unknown mmlu"),
        ("eval.open_ended.sets=[alpaca_eval]", "eval.open_ended.sets: unknown alpaca_eval"),
        ("eval.open_ended.judge.mode=elo", "eval.open_ended.judge.mode: unknown elo"),
        ("eval.interactive.tasks=[chat]", "eval.interactive.tasks: unknown chat"),
        ("eval.perplexity.languages=[xx_Xxxx]", "xx_Xxxx"),
        ("eval.engine_options.n_ctx=512", "eval.engine_options: the transformers engine has no option 'n_ctx'"),
    ],
)
def test_a_run_checks_its_eval_section_before_any_stage(override, message):
    """``bayling run`` used to find these only after data and training; now its preflight calls ``validate``."""
    cfg = load_config(RunConfig, REPO / "configs" / "quickstart.yaml", [override])
    with pytest.raises(BaylingError, match=message.replace(".", r"\.")):  # ConfigError, UnknownLanguageError
        preflight(cfg, ["data", "train", "eval"])
    preflight(cfg, ["data"])  # a run without its eval stage does not need a valid eval section
    with pytest.raises(BaylingError, match=message.replace(".", r"\.")):
        validate(cfg.eval)


def test_interactive_settings_are_checked_only_when_dialogues_run():
    cfg = EvalConfig()
    cfg.interactive.turns = ["translate", "sing"]
    cfg.interactive.third_language = "xx_Xxxx"
    validate(cfg)  # interactive is off: its settings are not read
    cfg.interactive.tasks = ["constrained"]
    with pytest.raises(ConfigError, match=r"eval\.interactive\.turns: unknown sing"):
        validate(cfg)
    cfg.interactive.turns = ["translate"]
    validate(cfg)  # constrained translation has no dialogues: no third language needed
    cfg.interactive.tasks = ["refinement"]
    with pytest.raises(BaylingError, match="xx_Xxxx"):
        validate(cfg)


def test_checks_that_need_the_systems(tiny_llama):
    from bayling.evaluate.systems import System

    cfg = load_config(RunConfig, None, ["eval.open_ended.judge.mode=pairwise", "eval.translation.prompts.nobody=chat"])
    validate(cfg.eval)  # neither can be judged without the systems
    base = {"base": System("base", str(tiny_llama))}
    with pytest.raises(ConfigError, match=r"eval\.translation\.prompts \(system\): unknown nobody"):
        validate(cfg.eval, base)
    cfg.eval.translation.prompts = {}
    with pytest.raises(ConfigError, match=r"eval\.open_ended\.judge\.mode pairwise/both compares 'tuned' with 'base'"):
        validate(cfg.eval, base)
    validate(cfg.eval, {**base, "tuned": System("tuned", str(tiny_llama))})
    with pytest.raises(BaylingError, match="unknown model '/no/such/model'"):
        validate(cfg.eval, {**base, "tuned": System("tuned", "/no/such/model")})
