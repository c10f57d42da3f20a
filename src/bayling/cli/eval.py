"""``bayling eval CONFIG [key=value ...]``: score base and tuned model with sacreBLEU and print the before/after table."""

from __future__ import annotations

import argparse

from bayling.cli._common import add_config_args, run_stages


def register(sub: argparse._SubParsersAction) -> None:
    p = add_config_args(sub.add_parser("eval", help="score base and tuned model with sacreBLEU and print the before/after table", description="score base and tuned model with sacreBLEU and print the before/after table"))
    p.set_defaults(func=lambda a: run_stages(a, ["eval"]) and 0)
