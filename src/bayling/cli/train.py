"""``bayling train CONFIG [key=value ...]``: fine-tune the model on the built data (LoRA or full)."""

from __future__ import annotations

import argparse

from bayling.cli._common import add_config_args, run_stages


def register(sub: argparse._SubParsersAction) -> None:
    p = add_config_args(sub.add_parser("train", help="fine-tune the model on the built data (LoRA or full)", description="fine-tune the model on the built data (LoRA or full)"))
    p.set_defaults(func=lambda a: run_stages(a, ["train"]) and 0)
