"""``bayling data CONFIG [key=value ...]``: build the instruction data (train.jsonl, heldout.jsonl, stats.json)."""

from __future__ import annotations

import argparse

from bayling.cli._common import add_config_args, run_stages


def register(sub: argparse._SubParsersAction) -> None:
    p = add_config_args(sub.add_parser("data", help="build the instruction data (train.jsonl, heldout.jsonl, stats.json)", description="build the instruction data (train.jsonl, heldout.jsonl, stats.json)"))
    p.set_defaults(func=lambda a: run_stages(a, ["data"]) and 0)
