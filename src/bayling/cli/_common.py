"""Argument helpers shared by the stage subcommands (config path + dotted overrides)."""

from __future__ import annotations

import argparse
from pathlib import Path


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
