"""``bayling train CONFIG [key=value ...]``: fine-tune the model on the built data (LoRA, QLoRA or full).

Examples::

    bayling train configs/quickstart.yaml train.max_steps=20
    bayling train configs/train/two_stage_alma.yaml            # CPT on monolingual text, then SFT
    bayling train configs/quickstart.yaml train.preference.method=cpo train.export=[merged,gguf]
    accelerate launch --config_file configs/accelerate/ddp_cpu.yaml $(which bayling) train CONFIG

The data stage runs first when its output is missing; under ``accelerate launch`` build it beforehand
with ``bayling data CONFIG`` so that only training is distributed.
"""

from __future__ import annotations

import argparse

from bayling.cli._common import add_config_args, run_stages

_HELP = "fine-tune the model on the built data (LoRA, QLoRA or full; optional CPT before and DPO/CPO after)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=_HELP, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    p.set_defaults(func=lambda a: run_stages(a, ["train"]) and 0)
