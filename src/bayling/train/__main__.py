"""``python -m bayling.train CONFIG [key=value ...]``: the same as ``bayling train``, as a module.

Launchers that take a module rather than a script use it::

    accelerate launch --config_file configs/accelerate/fsdp.yaml -m bayling.train configs/train/full_bf16_gpu.yaml
    torchrun --nproc_per_node 8 -m bayling.train configs/train/llama3_8b_full.yaml
"""

from __future__ import annotations

import sys

from bayling.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
