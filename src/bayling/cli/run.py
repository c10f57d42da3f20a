"""``bayling run CONFIG [key=value ...]``: run data -> train -> eval (-> ablation, when listed in stages) -> chat, caching each stage in the run directory."""

from __future__ import annotations

import argparse

from bayling.cli._common import add_config_args, run_stages


def register(sub: argparse._SubParsersAction) -> None:
    p = add_config_args(
        sub.add_parser(
            "run",
            help="run data -> train -> eval (-> ablation, when listed in stages) -> chat, caching each stage in the run directory",
            description="run data -> train -> eval (-> ablation, when listed in stages) -> chat, caching each stage in the run directory",
        )
    )
    p.set_defaults(func=lambda a: run_stages(a, None) and 0)
