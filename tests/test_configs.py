"""Every shipped YAML preset loads into the config class its command uses (train/accelerate: tests/train)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bayling.config import RunConfig, load_config
from bayling.data.config import DataBuildConfig
from bayling.evaluate.runner import EvalRunConfig
from bayling.serve.config import ServeConfig

REPO = Path(__file__).resolve().parents[1]
KINDS = {"data": DataBuildConfig, "eval": EvalRunConfig, "serve": ServeConfig, "experiments": RunConfig}
PRESETS = [(p, KINDS[p.parent.name]) for kind in KINDS for p in sorted((REPO / "configs" / kind).glob("*.yaml"))]
PRESETS += [(p, RunConfig) for p in sorted((REPO / "configs").glob("*.yaml"))]


def test_every_preset_directory_is_covered():
    dirs = {p.name for p in (REPO / "configs").iterdir() if p.is_dir()}
    assert dirs <= set(KINDS) | {"train", "accelerate"}, dirs
    assert len(PRESETS) >= 10


@pytest.mark.parametrize("path, cls", PRESETS, ids=lambda x: getattr(x, "name", None) or x.__name__)
def test_preset_loads(path, cls):
    cfg = load_config(cls, path)
    assert cfg is not None
    assert path.read_text(encoding="utf-8").lstrip().startswith("#"), "each preset opens with how to run it"
