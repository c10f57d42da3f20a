"""Every shipped YAML preset loads into the config class its command uses (train/accelerate: tests/train), and
every file a preset names ships with bayling or is marked as one the user provides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bayling.config import load_config
from bayling.data.config import DataBuildConfig
from bayling.evaluate.eval_only import EvalRunConfig
from bayling.pipeline import RunConfig
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


# ----------------------------------------------------------------------------- files a preset names

ALL_PRESETS = sorted((REPO / "configs").rglob("*.yaml"))
INPUT_KEYS = {
    "source",
    "flores_dir",
    "wmt_dir",
    "extra_files",
    "instructions",
    "data",
    "data_dir",
    "gguf_file",
    "adapter",
    "prompts",
    "comet_model",
    "cometkiwi_model",
}
"""Leaf keys whose values are input files or directories (the config dataclasses' path fields)."""
BUILTIN = {"sample", "flores200"}
"""Values of those keys that name shipped data or a data set found through its own setting/env var."""
MARKER = "# user-provided"


def _leaves(node, key=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _leaves(v, key)
    elif isinstance(node, str):
        yield key, node


def named_files(path: Path) -> list[str]:
    """The input files and directories a preset names: values of input keys (minus built-in names) and any
    value written as a path (``./``, ``../``, ``/``, ``~``)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    found = []
    for key, value in _leaves(data):
        explicit = value.startswith(("./", "../", "/", "~"))
        if explicit or (key in INPUT_KEYS and value not in BUILTIN and not value.startswith(("hf:", "http"))):
            found.append(value)
    return found


def test_the_file_finder_sees_what_presets_name(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text(
        "# how to run\nrun_dir: runs/{name}\ndata: {source: sample, instructions: [sample, seeds.jsonl]}\n"
        "train: {cpt: {data: mono.txt}}\nmodel: {name_or_path: org/model}\neval: {data_dir: ~/d}\n",
        encoding="utf-8",
    )
    assert named_files(p) == ["seeds.jsonl", "mono.txt", "~/d"]


@pytest.mark.parametrize("path", ALL_PRESETS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_file_a_preset_names_ships_or_is_marked_user_provided(path):
    """A preset runs from the repository root as written, or says which of its inputs you bring yourself.

    A named file must exist inside the repository (a path beside the checkout is not part of it), or every
    line naming it carries a ``# user-provided: what it is / where to get it`` comment.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    for name in named_files(path):
        target = (REPO / Path(name).expanduser()).resolve()
        if target.is_relative_to(REPO) and target.exists():
            continue
        naming = [ln for ln in lines if name in ln.split("#")[0]]
        assert naming and all(MARKER in ln for ln in naming), (
            f"{path.relative_to(REPO)} names {name!r}, which does not ship with bayling: "
            f"ship it or mark the line '{MARKER}: ...'"
        )
