"""Argument helpers shared by the stage subcommands (config path + dotted overrides)."""

from __future__ import annotations

import argparse
import typing
from pathlib import Path
from typing import Any

from bayling.config import bound_of


def bounded(p: argparse.ArgumentParser, *flags: str, kind: Any, **kwargs: Any) -> argparse.Action:
    """Add a numeric flag whose values are bounded like a config field: ``kind`` is an annotated type from
    :mod:`bayling.config` (``Positive``, ``Temperature``, ``Annotated[int, between(1, 65535)]``...).

    :func:`check_flags` checks the parsed value before the command runs (one ``bayling: error:`` line naming the
    flag, the value and the range); ``tests/test_bounds.py`` fails for an ``int``/``float`` flag added without it.
    """
    bound = bound_of(kind)
    if bound is None:
        raise TypeError(f"{flags}: kind must carry a bayling.config.Bound")
    action = p.add_argument(*flags, type=typing.get_args(kind)[0], **kwargs)
    action.bound = bound  # type: ignore[attr-defined]
    known = dict(p.get_default("flag_bounds") or {})
    known[action.dest] = (max(flags, key=len), bound)
    p.set_defaults(flag_bounds=known)
    return action


def check_flags(args: argparse.Namespace) -> None:
    """Check the parsed values of the command's :func:`bounded` flags (None: not given, no default).

    Raises:
        ConfigError: ``--batch-size must be >= 1, got -1``.
    """
    for dest, (flag, bound) in (getattr(args, "flag_bounds", None) or {}).items():
        value = getattr(args, dest, None)
        if value is not None:
            bound.check(value, flag)


def add_config_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("config", help="YAML preset, e.g. configs/quickstart.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=10 eval.max_sentences=5")
    p.add_argument("--force", action="store_true", help="re-run the stage even if its outputs are current")
    return p


def run_stages(args: argparse.Namespace, stages: list[str] | None) -> Path:
    """Load the run config from ``args`` and run ``stages`` through :func:`bayling.pipeline.run`."""
    from bayling.config import load_config
    from bayling.pipeline import RunConfig, run

    cfg = load_config(RunConfig, args.config, args.overrides)
    run_dir = run(cfg, stages=stages, force=args.force, command=args.command_line)
    print(run_dir)
    return run_dir
