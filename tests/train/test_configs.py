"""Every shipped training preset and accelerate config loads; bad values fail with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bayling.config import RunConfig, load_config
from bayling.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
TRAIN_PRESETS = sorted((REPO / "configs" / "train").glob("*.yaml"))
ACCELERATE = sorted((REPO / "configs" / "accelerate").glob("*.yaml"))


def test_presets_exist():
    assert len(TRAIN_PRESETS) >= 5 and len(ACCELERATE) >= 6


@pytest.mark.parametrize("path", TRAIN_PRESETS, ids=lambda p: p.name)
def test_train_preset_loads(path):
    cfg = load_config(RunConfig, path)
    assert "train" in cfg.stages
    assert path.read_text(encoding="utf-8").lstrip().startswith("#"), "each preset opens with how to run it"


@pytest.mark.parametrize("path", ACCELERATE, ids=lambda p: p.name)
def test_accelerate_config_is_valid(path):
    from accelerate.commands.config.config_args import ClusterConfig

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg = ClusterConfig.from_yaml_file(str(path))  # accelerate's own loader: unknown keys raise
    assert cfg.num_processes >= 1 and cfg.num_machines >= 1
    if data["distributed_type"] == "DEEPSPEED":
        assert data["deepspeed_config"]["zero_stage"] in (2, 3)
    if data["distributed_type"] == "FSDP":
        assert data["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # train/final is a plain model


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.method=adapter", "train.method must be one of lora, full, qlora"),
        ("train.preference.method=ppo", "train.preference.method must be none, dpo or cpo"),
        ("train.export=[onnx]", "train.export: unknown"),
        ("train.packing_strategy=greedy", "train.packing_strategy"),
        ("train.cpt.lr=1", "unknown config key 'train.cpt.lr'"),
    ],
)
def test_bad_train_values_are_reported(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(RunConfig, REPO / "configs" / "quickstart.yaml", [override])


def test_qlora_on_cpu_is_a_clear_error(tiny_llama):
    from bayling.train.model import load_for_training

    with pytest.raises(ConfigError, match="qlora needs a CUDA device"):
        load_for_training(tiny_llama, "qlora", True, "cpu")
