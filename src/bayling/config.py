"""Typed configs: dataclasses loaded from YAML presets plus ``key.sub=value`` overrides.

YAML keys match dataclass field names one to one; an unknown or misspelt key, a wrong type or a
missing file is a :class:`~bayling.errors.ConfigError` naming the file and the dotted key, so a
typo never silently falls back to a default. Each stage owns its section's dataclass
(``bayling.data.config``, ``bayling.train.config``, ``bayling.evaluate.config``,
``bayling.serve.config``); :class:`RunConfig` composes them for ``bayling run``.

Run as::

    bayling run configs/quickstart.yaml train.max_steps=20 eval.max_sentences=10
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bayling.data.config import DataConfig
from bayling.errors import ConfigError
from bayling.evaluate.config import EvalConfig
from bayling.serve.config import ChatConfig, ServeConfig
from bayling.train.config import TrainConfig

T = TypeVar("T")


@dataclass
class ModelConfig:
    """Which causal LM to start from."""

    name_or_path: str = "gemma-3-270m"
    """The embedded default (``gemma-3-270m``), a local HF model directory, a ``.gguf`` file, or a hub id
    already in the local Hugging Face cache."""
    gguf_file: str | None = None
    """GGUF file name inside ``name_or_path`` when that directory holds GGUF weights."""
    chat_format: str = "auto"
    """``auto`` (detected from the tokenizer's special tokens) or one of bayling.chat.FORMATS."""
    dtype: str = "bfloat16"
    """Weights dtype for training and transformers inference: ``bfloat16``, ``float16`` or ``float32``."""
    device: str = "auto"
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:1``…"""
    trust_remote_code: bool = False


@dataclass
class RunConfig:
    """One end-to-end run: data -> train -> eval -> chat, each stage cached in ``run_dir``."""

    name: str = "run"
    run_dir: str = "runs/{name}"
    """Where every stage writes; ``{name}`` is replaced by ``name``."""
    seed: int = 0
    stages: list[str] = field(default_factory=lambda: ["data", "train", "eval", "chat"])
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)

    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir.replace("{name}", self.name))


STAGES = ("data", "train", "eval", "chat")


# ----------------------------------------------------------------------------- generic loading


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check/convert a YAML value against a field annotation."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r:.60}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            value = [value] if not isinstance(value, str) else [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r:.60}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r:.60}")
        _, val_tp = typing.get_args(tp) or (Any, Any)
        return {str(k): _convert(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r:.60}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r:.60}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r:.60}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r:.60}")
    raise ConfigError(f"{where}: unsupported field type {_type_name(tp)}")


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys with a did-you-mean hint."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown config key '{dotted}'{hint}; valid keys here: {', '.join(names)}")
        kwargs[key] = _convert(value, hints[key], dotted)
    try:
        obj = cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None
    return obj


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain dict (what ``config.yaml`` in a run directory holds)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.learning_rate=1e-4"`` -> (["train", "learning_rate"], 1e-4), value parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.subkey=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{'.'.join(path)}': '{part}' is not a section")
    node[path[-1]] = value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with errors that name the file (and line, for syntax errors)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{p}{line}: invalid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of config keys at the top level")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Load ``cls`` from an optional YAML file plus ``key=value`` overrides (overrides win).

    Args:
        cls: the dataclass to build (usually :class:`RunConfig`).
        path: YAML preset; ``None`` starts from the defaults.
        overrides: ``dotted.key=value`` strings, values parsed as YAML.

    Returns:
        The config instance.
    """
    data = read_yaml(path) if path is not None else {}
    for ov in overrides:
        keys, value = parse_override(ov)
        _set_path(data, keys, value)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from None


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (what produced a run, for reproducibility)."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True), encoding="utf-8")
