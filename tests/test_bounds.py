"""Every numeric config field and numeric CLI flag has bounds, and each bound holds on both sides.

The cases are generated from the dataclasses reachable from every config the loader reads (``RunConfig``,
``DataBuildConfig``, ``EvalRunConfig``, ``ServeConfig``) and from the engines' ``GenerationParams``, and from
every ``int``/``float`` flag of ``bayling --help``: a value just inside each end of the range (and each special
value such as ``-1``) loads, a value just outside fails with one line naming the key, the value and the range.
A numeric field or flag added without a bound fails ``test_every_numeric_field_has_a_bound`` /
``test_every_numeric_flag_has_a_bound``: give it one (``batch_size: Positive = 16``; see
:class:`bayling.config.Bound`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing

import pytest

from bayling.config import Bound, load_config, numeric_fields
from bayling.data.config import DataBuildConfig
from bayling.engines import GenerationParams
from bayling.errors import ConfigError
from bayling.evaluate.eval_only import EvalRunConfig
from bayling.pipeline import RunConfig
from bayling.serve.config import ServeConfig

ROOTS = (RunConfig, DataBuildConfig, EvalRunConfig, ServeConfig, GenerationParams)
"""What the loader reads (``bayling run/data/eval run/serve``) and what every engine call takes."""


def _sections(root: type) -> dict[type, str]:
    """Every dataclass reachable from ``root`` (``X | None`` sections too) -> its dotted path (first found)."""
    found: dict[type, str] = {root: ""}
    todo = [root]
    while todo:
        cls = todo.pop()
        for name, tp in typing.get_type_hints(cls).items():
            for t in (tp, *typing.get_args(tp)):
                if dataclasses.is_dataclass(t) and t not in found:
                    found[t] = f"{found[cls]}.{name}".lstrip(".")
                    todo.append(t)
    return found


def _fields() -> list[tuple[type, type, str, str, type, Bound | None]]:
    """``(root, section, dotted key, field, int|float, bound)`` for every numeric field, each section once."""
    seen: set[type] = set()
    out = []
    for root in ROOTS:
        for cls, path in _sections(root).items():
            if cls in seen:
                continue
            seen.add(cls)
            for name, (kind, bound) in numeric_fields(cls).items():
                out.append((root, cls, f"{path}.{name}".lstrip("."), name, kind, bound))
    return out


FIELDS = _fields()


def _near(x: float, kind: type, up: bool) -> float:
    if kind is int:
        return int(x) + (1 if up else -1)
    return math.nextafter(float(x), math.inf if up else -math.inf)


def samples(bound: Bound, kind: type) -> tuple[list[float], list[float]]:
    """Values just inside the range (and the special ``also`` values) and values just outside it."""
    inside, outside = list(bound.also), []
    for end, is_open, up in ((bound.lo, bound.lo_open, True), (bound.hi, bound.hi_open, False)):
        if end is None:
            continue
        inside.append(_near(end, kind, up) if is_open else (int(end) if kind is int else float(end)))
        outside.append((int(end) if kind is int else float(end)) if is_open else _near(end, kind, not up))
    for v in bound.also:
        outside += [w for w in (_near(v, kind, True), _near(v, kind, False)) if not bound.allows(w)]
    return inside, outside


def test_the_cases_cover_every_config():
    keys = {key for _, _, key, *_ in FIELDS}
    assert {"eval.batch_size", "eval.max_new_tokens", "train.lora_dropout", "data.mix", "serve.port"} <= keys
    assert {"max_new_tokens", "top_p"} <= {name for _, cls, _, name, *_ in FIELDS if cls is GenerationParams}
    assert len(FIELDS) >= 90  # 92 when the bounds came


@pytest.mark.parametrize(("root", "cls", "key", "name", "kind", "bound"), FIELDS, ids=[f[2] for f in FIELDS])
def test_every_numeric_field_has_a_bound(root, cls, key, name, kind, bound):
    assert bound is not None, (
        f"{cls.__name__}.{name} ({key}) is a number without bounds: annotate it with one, e.g. "
        f"'{name}: Positive = ...' or 'Annotated[{kind.__name__}, at_least(0)]' (bayling.config)"
    )


def _load(root: type, key: str, name: str, value: float, is_dict: bool, is_seq: bool = False) -> None:
    if root is GenerationParams:
        GenerationParams(**{name: (value,) if is_seq else value})
        return
    path = f"{key}.x" if is_dict else key
    load_config(root, None, [f"{path}=[{value!r}]" if is_seq else f"{path}={value!r}"])


BOUNDED = [f for f in FIELDS if f[5] is not None]


@pytest.mark.parametrize(("root", "cls", "key", "name", "kind", "bound"), BOUNDED, ids=[f[2] for f in BOUNDED])
def test_each_bound_holds_on_both_sides(root, cls, key, name, kind, bound):
    hint = typing.get_type_hints(cls)[name]
    is_dict = typing.get_origin(hint) is dict
    # a list or tuple of numbers (fewshot_seeds, max_new_tokens_each): each item is bounded, named by its index
    is_seq = any(typing.get_origin(t) in (list, tuple) for t in (hint, *typing.get_args(hint)))
    inside, outside = samples(bound, kind)
    assert outside, f"{key}: a bound that refuses nothing"
    shown = f"{key}.x" if is_dict else f"{key}[0]" if is_seq else key
    for value in inside:
        try:
            _load(root, key, name, value, is_dict, is_seq)
        except ConfigError as e:  # another rule may refuse the value (default_max_tokens <= max_new_tokens)...
            assert f"{shown} must be" not in str(e), (value, str(e))  # ...never this bound
    for value in outside:
        with pytest.raises(ConfigError) as e:
            _load(root, key, name, value, is_dict, is_seq)
        message = str(e.value)
        assert message == f"{shown} must be {bound}, got {value!r}", message
        assert "\n" not in message


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.batch_size=-1", "eval.batch_size must be >= 1, got -1"),
        ("eval.batch_size=0", "eval.batch_size must be >= 1, got 0"),
        ("eval.max_new_tokens=0", "eval.max_new_tokens must be >= 1, got 0"),
        ("train.max_steps=0", "train.max_steps must be >= 1 or -1, got 0"),
        ("train.learning_rate=0", "train.learning_rate must be > 0, got 0.0"),
        ("seed=-3", "seed must be in [0, 4294967295], got -3"),
    ],
)
def test_the_reported_cases(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(RunConfig, None, [override])
    assert str(e.value) == message


def test_a_config_built_in_python_is_checked_where_it_is_used():
    from bayling.evaluate.config import EvalConfig, validate
    from bayling.train.config import TrainConfig

    with pytest.raises(ConfigError, match=r"^eval\.batch_size must be >= 1, got 0$"):
        validate(EvalConfig(batch_size=0))
    with pytest.raises(ConfigError, match=r"^train\.cpt\.batch_size must be >= 1, got 0$"):
        TrainConfig(cpt=__import__("bayling.train.config").train.config.CptConfig(batch_size=0))
    with pytest.raises(ConfigError, match=r"^max_new_tokens must be >= 1, got 0$"):  # llama.cpp: 0 = until full
        GenerationParams(max_new_tokens=0)


# ----------------------------------------------------------------------------- CLI flags


def _parsers(parser: argparse.ArgumentParser, name: str = "bayling") -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(name, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                out += _parsers(p, f"{name} {sub}")
    return out


def _flags() -> list[tuple[str, argparse.ArgumentParser, argparse.Action]]:
    from bayling.cli import build_parser

    return [
        (f"{name} {a.option_strings[-1] if a.option_strings else a.dest}", p, a)
        for name, p in _parsers(build_parser())
        for a in p._actions
        if a.type in (int, float)
    ]


FLAGS = _flags()


def test_the_flag_cases_cover_the_numeric_flags():
    names = {n for n, _, _ in FLAGS}
    assert {"bayling translate --batch-size", "bayling translate --max-new-tokens", "bayling serve --port"} <= names


@pytest.mark.parametrize(("name", "parser", "action"), FLAGS, ids=[f[0] for f in FLAGS])
def test_every_numeric_flag_has_a_bound(name, parser, action):
    from bayling.cli._common import check_flags

    bound = getattr(action, "bound", None)
    assert bound is not None, f"{name} takes a number without bounds: add it with bayling.cli._common.bounded"
    flag = max(action.option_strings, key=len)
    inside, outside = samples(bound, action.type)
    for value in inside:
        check_flags(argparse.Namespace(flag_bounds=parser.get_default("flag_bounds"), **{action.dest: value}))
    for value in outside:
        with pytest.raises(ConfigError) as e:
            check_flags(argparse.Namespace(flag_bounds=parser.get_default("flag_bounds"), **{action.dest: value}))
        assert str(e.value) == f"{flag} must be {bound}, got {value!r}"
