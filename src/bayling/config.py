"""The config loader: YAML presets plus ``key.sub=value`` overrides <-> typed dataclasses.

YAML keys match dataclass field names one to one; an unknown or misspelt key (with a did-you-mean, also for
names other tools use: ``lr``, ``per_device_train_batch_size``), a wrong type or a missing file is a
:class:`~bayling.errors.ConfigError` naming the file and the dotted key, so a typo never silently falls back
to a default. A key a section no longer takes (listed in that dataclass's ``RENAMED`` table, such as the flat
``eval.benchmark_limit``) fails with its new name. This module knows no config of its own: each stage owns its
section's dataclass (``bayling.data.config``, ``bayling.train.config``, ``bayling.evaluate.config``,
``bayling.serve.config``), :class:`~bayling.models.ModelConfig` is shared, and :class:`~bayling.pipeline.RunConfig`
composes them for ``bayling run``.

Run as::

    bayling run configs/quickstart.yaml train.max_steps=20 eval.max_sentences=10
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml

from bayling.errors import ConfigError

T = TypeVar("T")


# ----------------------------------------------------------------------------- bounds of numeric values


@dataclasses.dataclass(frozen=True)
class Bound:
    """The values a numeric config field or CLI flag accepts: ``lo``..``hi`` (either end open or absent), plus
    ``also``: values outside that range with a meaning of their own (``-1``: no limit, ``0``: off).

    Declared once, on the field's annotation (``batch_size: Annotated[int, at_least(1)] = 16``, or an alias
    below such as ``Positive``) or on the flag (:func:`bayling.cli._common.bounded`); the loader and the CLI
    read it from there, and ``tests/test_bounds.py`` tries both sides of every bound, and fails for a numeric
    field or flag that has none.
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    """``lo`` itself is refused (a learning rate must be > 0)."""
    hi_open: bool = False
    also: tuple[float, ...] = ()

    def allows(self, value: float) -> bool:
        if value in self.also:
            return True
        if value != value:  # NaN
            return False
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        return not (self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi)))

    def __str__(self) -> str:
        lo = None if self.lo is None else f"{'>' if self.lo_open else '>='} {_num(self.lo)}"
        hi = None if self.hi is None else f"{'<' if self.hi_open else '<='} {_num(self.hi)}"
        if lo and hi:
            text = f"in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        else:
            text = lo or hi or "any number"
        return text + "".join(f" or {_num(v)}" for v in self.also)

    def check(self, value: Any, key: str) -> None:
        """Raise a :class:`ConfigError` naming ``key``, ``value`` and the allowed range unless ``value`` fits."""
        if isinstance(value, int | float) and not isinstance(value, bool) and not self.allows(value):
            raise ConfigError(f"{key} must be {self}, got {value!r}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def at_least(lo: float, also: tuple[float, ...] = ()) -> Bound:
    return Bound(lo=lo, also=also)


def above(lo: float) -> Bound:
    return Bound(lo=lo, lo_open=True)


def between(lo: float, hi: float, hi_open: bool = False) -> Bound:
    return Bound(lo=lo, hi=hi, hi_open=hi_open)


Count = Annotated[int, at_least(0)]
"""How many of something; 0 = none (or, where the field says so, all)."""
Positive = Annotated[int, at_least(1)]
"""A size that must be at least 1: batch sizes, token limits, workers."""
PositiveFloat = Annotated[float, above(0)]
"""A strictly positive number: learning rates, epochs, timeouts."""
NonNegative = Annotated[float, at_least(0)]
"""A number >= 0: weights, prices, backoff delays."""
Fraction = Annotated[float, between(0, 1)]
"""A share or probability in [0, 1]."""
Steps = Annotated[int, at_least(1, also=(-1,))]
"""An optimizer-step limit: -1 = none (the epochs decide)."""
Seed = Annotated[int, between(0, 2**32 - 1)]
"""A random seed (numpy, torch and llama.cpp all take an unsigned 32-bit seed)."""
Temperature = Annotated[float, between(0, 2)]
"""Sampling temperature; 0 = greedy."""


def bound_of(tp: Any) -> Bound | None:
    """The :class:`Bound` on an annotation (inside ``X | None`` too), or None."""
    if typing.get_origin(tp) is Annotated:
        return next((m for m in tp.__metadata__ if isinstance(m, Bound)), None)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next(filter(None, (bound_of(a) for a in typing.get_args(tp))), None)
    return None


def _value_type(tp: Any) -> Any:
    """The annotation of the numbers a field holds: the field's own, a list's items' or a dict's values'."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _value_type(args[0]) if len(args) == 1 else tp
    base = tp.__origin__ if typing.get_origin(tp) is Annotated else tp
    origin = typing.get_origin(base)
    if origin in (list, tuple):
        return (typing.get_args(base) or (Any,))[0]
    if origin is dict:
        return (typing.get_args(base) or (Any, Any))[1]
    return tp


def numeric_fields(cls: Any) -> dict[str, tuple[type, Bound | None]]:
    """``{field: (int or float, its Bound or None)}`` for every numeric field of dataclass ``cls`` (also a list or
    dict of numbers: the bound is then each item's / value's)."""
    out: dict[str, tuple[type, Bound | None]] = {}
    for name, tp in typing.get_type_hints(cls, include_extras=True).items():
        if name not in _fields(cls):
            continue
        vt = _value_type(tp)
        plain = vt.__origin__ if typing.get_origin(vt) is Annotated else vt
        if plain in (int, float):
            out[name] = (plain, bound_of(vt))
    return out


def check_bounds(obj: Any, where: str = "") -> None:
    """Check every bounded number of config dataclass ``obj`` and of its sections (a config built in Python,
    not loaded: the loader checks as it reads).

    Raises:
        ConfigError: ``where.key must be <range>, got <value>``.
    """
    for name, (_, bound) in numeric_fields(type(obj)).items():
        if bound is not None:
            _check_value(getattr(obj, name), bound, f"{where}.{name}" if where else name)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_bounds(value, f"{where}.{f.name}" if where else f.name)


def _check_value(value: Any, bound: Bound, key: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            bound.check(v, f"{key}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            bound.check(v, f"{key}[{i}]")
    else:
        bound.check(value, key)


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


KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "lr": ("learning_rate",),
    "bs": ("batch_size",),
    "batch": ("batch_size",),
    "per_device_train_batch_size": ("batch_size",),
    "train_batch_size": ("batch_size",),
    "epochs": ("epochs", "num_train_epochs"),
    "epoch": ("epochs", "num_train_epochs"),
    "num_epochs": ("epochs", "num_train_epochs"),
    "num_train_epochs": ("epochs",),
    "steps": ("max_steps",),
    "num_steps": ("max_steps",),
    "train_steps": ("max_steps",),
    "gradient_accumulation_steps": ("grad_accum",),
    "gradient_accumulation": ("grad_accum",),
    "accumulation_steps": ("grad_accum",),
    "warmup": ("warmup_ratio",),
    "warmup_steps": ("warmup_ratio",),
    "wd": ("weight_decay",),
    "r": ("lora_r",),
    "rank": ("lora_r",),
    "lora_rank": ("lora_r",),
    "alpha": ("lora_alpha",),
    "dropout": ("lora_dropout",),
    "target_modules": ("lora_target_modules",),
    "scheduler": ("lr_scheduler",),
    "lr_scheduler_type": ("lr_scheduler",),
    "max_seq_length": ("max_length",),
    "max_seq_len": ("max_length",),
    "seq_len": ("max_length",),
    "cutoff_len": ("max_length",),
    "max_tokens": ("max_new_tokens", "default_max_tokens"),
    "model": ("name_or_path",),
    "model_name_or_path": ("name_or_path",),
    "model_name": ("name_or_path",),
    "path": ("name_or_path",),
    "torch_dtype": ("dtype",),
    "precision": ("bf16", "dtype"),
    "fp16": ("bf16",),
    "lang": ("languages",),
    "langs": ("languages",),
    "language": ("languages",),
    "workers": ("num_proc",),
    "num_workers": ("num_proc",),
    "output_dir": ("run_dir", "out_dir"),
    "out_dir": ("run_dir",),
    "run_name": ("name",),
}
"""Names users bring from other tools (TRL/transformers, LLaMA-Factory, habit) -> bayling's field names; the
first that exists in the section is suggested."""


def _fields(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _suggest_here(key: str, names: list[str]) -> str | None:
    norm = key.strip().lower().replace("-", "_")
    if norm in names:
        return norm
    for alias in KEY_ALIASES.get(norm, ()):
        if alias in names:
            return alias
    close = difflib.get_close_matches(norm, names, n=1, cutoff=0.75)
    return close[0] if close else None


def suggest_key(key: Any, cls: Any) -> str | None:
    """The field of ``cls`` a user most likely meant by the unknown ``key`` (an alias, a close spelling, or
    the same key one section down: ``learning_rate`` at the top -> ``train.learning_rate``); None if unclear."""
    key = str(key)
    names = _fields(cls)
    hit = _suggest_here(key, names)
    if hit is not None:
        return hit
    hints = typing.get_type_hints(cls)
    for name in names:  # put in the wrong section: found as a field of a subsection
        if dataclasses.is_dataclass(hints[name]):
            sub = _fields(hints[name])
            norm = key.strip().lower().replace("-", "_")
            found = norm if norm in sub else next((a for a in KEY_ALIASES.get(norm, ()) if a in sub), None)
            if found is not None:
                return f"{name}.{found}"
    return None


def _renamed(cls: Any, key: Any, value: Any, names: list[str], hints: dict[str, Any], where: str) -> str | None:
    """The one-line error for an old key of ``cls`` (its ``RENAMED`` table: old key -> new dotted key relative to
    the section), or None. A key that is a section now is old when given a value that is not a mapping."""
    new = getattr(cls, "RENAMED", {}).get(key)
    if new is None:
        return None
    dotted, prefix = (f"{where}.{key}" if where else str(key)), (f"{where}." if where else "")
    if key not in names:
        return f"{dotted} was renamed: use {prefix}{new}"
    if dataclasses.is_dataclass(hints[key]) and not isinstance(value, dict):
        return f"{dotted} is a section now: its list goes in {prefix}{new}"
    return None


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys with a did-you-mean hint.

    A dataclass may list keys it no longer takes in a ``RENAMED`` class attribute (``{old key: new dotted key}``,
    relative to it); such a key is rejected with its new name, never accepted silently. Older names it still
    takes are in an ``ALIASES`` class attribute (``{old key: field}``); given beside the field, the old key is
    unknown.
    """
    hints = typing.get_type_hints(cls)
    bounds = {name: b for name, (_, b) in numeric_fields(cls).items() if b is not None}
    names = _fields(cls)
    kwargs = {}
    aliases = getattr(cls, "ALIASES", {})
    for key, value in data.items():
        if key in aliases and aliases[key] not in data:  # an older name still accepted for a field
            key = aliases[key]
        dotted = f"{where}.{key}" if where else str(key)
        moved = _renamed(cls, key, value, names, hints, where)
        if moved is not None:
            raise ConfigError(moved)
        if key not in names:
            hint = suggest_key(key, cls)
            if hint is not None:
                raise ConfigError(f"unknown config key '{dotted}' (did you mean '{hint}'?)")
            shown = ", ".join(names[:8]) + (f", … ({len(names)} in all)" if len(names) > 8 else "")
            raise ConfigError(f"unknown config key '{dotted}'; valid keys here: {shown}")
        kwargs[key] = _convert(value, hints[key], dotted)
        if key in bounds:
            _check_value(kwargs[key], bounds[key], dotted)
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
    from bayling.errors import DataError
    from bayling.validate import describe, read_text

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(read_text(p))
    except DataError as e:  # not UTF-8: the line and byte
        raise ConfigError(str(e)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{p}{line}: invalid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{p}: invalid YAML (nested too deeply)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of config keys at the top level, found {describe(data)}")
    return data


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    base: dict[str, Any] | None = None,
) -> T:
    """Load ``cls`` from optional defaults, an optional YAML file and ``key=value`` overrides (later wins).

    Args:
        cls: the dataclass to build (e.g. :class:`~bayling.pipeline.RunConfig`).
        path: YAML preset; ``None`` starts from the defaults (or ``base``).
        overrides: ``dotted.key=value`` strings, values parsed as YAML.
        base: top-level keys to start from before the file's (e.g. a run's ``serve`` section).

    Returns:
        The config instance.
    """
    data = {**(base or {}), **(read_yaml(path) if path is not None else {})}
    for ov in overrides:
        keys, value = parse_override(ov)
        _set_path(data, keys, value)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from None
    except RecursionError:  # a YAML alias that contains itself (``a: &x [*x]``)
        raise ConfigError(
            f"{path or 'config'}: a value refers to itself (YAML alias) or is nested too deeply"
        ) from None


def stage_seed(seed: int, section_seed: int | None, key: str) -> int:
    """The one seed of a run: a stage section's ``seed`` may be left unset (None: the run's ``seed``) or repeat
    it, never disagree with it silently.

    Raises:
        ConfigError: ``key`` (e.g. ``eval.seed``) is set to another value than the top-level ``seed``.
    """
    if section_seed is None or section_seed == seed:
        return seed
    raise ConfigError(
        f"{key}={section_seed} disagrees with seed={seed}: a run has one seed; set the top-level 'seed' only"
    )


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (what produced a run, for reproducibility)."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True), encoding="utf-8")
