"""What a training process knows about its launcher: rank, sharding backend, precision, ZeRO-3 state.

Under ``accelerate launch`` / ``torchrun`` the launcher's decisions arrive as environment variables
(``RANK``, ``WORLD_SIZE``, ``ACCELERATE_USE_DEEPSPEED``, ``ACCELERATE_MIXED_PRECISION``...). Every stage
reads them the same way, so the answers live here once: which process writes shared files
(:func:`is_main_process`, :func:`barrier`), which device this rank uses (:func:`local_device`), whether the
launcher's precision and sharding match what the run trains with (:func:`check_launcher_precision`,
:func:`check_launch`), and how to end a stage's ZeRO-3 partitioning (:func:`release_zero3_init`).

Model loading (:mod:`bayling.train.model`) and the trainer arguments (:mod:`bayling.train.args`) build on
these; nothing here loads a model or builds a trainer.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from bayling.errors import ConfigError

if TYPE_CHECKING:
    from bayling.train.config import TrainConfig

__all__ = [
    "autocast_bf16",
    "barrier",
    "check_launch",
    "check_launcher_precision",
    "is_distributed",
    "is_main_process",
    "launcher",
    "local_device",
    "release_zero3_init",
]


def is_distributed() -> bool:
    """True under ``accelerate launch`` / ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """True on rank 0 (and when not distributed): the process that writes shared files."""
    return int(os.environ.get("RANK", "0")) == 0


def launcher() -> str | None:
    """The sharding backend the accelerate launcher asked for: ``deepspeed``, ``fsdp`` or None (DDP / one process)."""
    for name, env in (("deepspeed", "ACCELERATE_USE_DEEPSPEED"), ("fsdp", "ACCELERATE_USE_FSDP")):
        if os.environ.get(env, "false").lower() in ("1", "true", "yes"):
            return name
    return None


def local_device(device: str) -> str:
    """This process's device: ``cuda`` becomes ``cuda:LOCAL_RANK`` under a multi-process launcher."""
    if device == "cuda" and is_distributed():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def barrier() -> None:
    """Wait for every process (no-op when not distributed): rank 0 edits shared directories, the others read."""
    if is_distributed():
        import torch
        from accelerate import PartialState

        # cpu=True without a GPU: otherwise accelerate sets up no process group there and this would not wait
        PartialState(cpu=not torch.cuda.is_available()).wait_for_everyone()


def release_zero3_init() -> None:
    """Forget a finished stage's ZeRO-3 config, so that the next ``from_pretrained`` loads whole weights.

    accelerate's global state keeps the stage's DeepSpeed config alive after training, and transformers
    would go on partitioning every later load (merging an adapter, exporting, generating preference pairs)
    as if it were for a DeepSpeed engine. The next stage's ``TrainingArguments`` switch it on again.
    """
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()


def autocast_bf16(cfg: TrainConfig, device: str) -> bool:
    """Whether the trainer autocasts to bf16: ``train.bf16`` on a CUDA device, for every method.

    One answer for the whole run, so that ``TrainingArguments.bf16``, the accelerator's mixed precision and
    DeepSpeed's ``bf16.enabled`` agree (transformers refuses to start DeepSpeed when they differ). On CPU
    ``train.bf16`` only loads a LoRA base in bf16: CPU autocast is slow and the bf16 base already runs in bf16.
    """
    return bool(cfg.bf16 and device.startswith("cuda"))


def check_launcher_precision(cfg: TrainConfig, device: str) -> None:
    """Fail early when the accelerate launcher's ``mixed_precision`` contradicts the run's own precision.

    ``accelerate launch`` passes ``mixed_precision`` as ``ACCELERATE_MIXED_PRECISION``; ``TrainingArguments``
    lets ``bf16=True`` override ``no``, but a launcher asking for bf16 (or fp16) while the run trains without
    autocast would silently autocast under DDP/FSDP and stop DeepSpeed at ``trainer.train()``.
    """
    wanted = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    ours = "bf16" if autocast_bf16(cfg, device) else "no"
    if wanted not in ("no", ours):
        hint = f"launch with --mixed_precision {ours}"
        if wanted == "bf16" and not cfg.bf16:
            hint += " or set train.bf16=true"
        raise ConfigError(
            f"the accelerate launcher sets mixed_precision={wanted}, but this run trains with mixed_precision={ours} "
            f"(train.bf16={str(cfg.bf16).lower()} on {device}; bf16 autocast is used on CUDA only): {hint}"
        )


def check_launch(args: Any) -> Any:
    """Refuse a run where accelerate did not set up the sharding the launcher asked for; returns ``args``.

    ``TrainingArguments`` has just created accelerate's process state, so its decision can be read back:
    accelerate enables FSDP only on GPU-class devices (CPU processes become ``MULTI_CPU``, i.e. plain DDP),
    and without a GPU it gives DeepSpeed no process group of its own (its world size stays 1, which
    DeepSpeed's batch-size check rejects with more than one process). Training on unsharded copies when
    the config asked for sharding would only fail later, or run out of memory, on a real job.
    """
    backend = launcher()
    if backend is None:
        return args
    state = args.distributed_state
    kind = getattr(state.distributed_type, "name", str(state.distributed_type))
    if backend == "fsdp" and kind in ("NO", "MULTI_CPU"):
        raise ConfigError(
            f"the accelerate config asks for FSDP, but accelerate set up {kind} on {state.device} "
            "(it enables FSDP only on GPU-class devices), so nothing would be sharded; "
            "on CPU launch with configs/accelerate/ddp_cpu.yaml"
        )
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if backend == "deepspeed" and args.world_size != launched:
        raise ConfigError(
            f"the accelerate config asks for DeepSpeed with {launched} processes, but accelerate set up "
            f"{kind} with world size {args.world_size} on {state.device} (without a GPU it has no process "
            "group for DeepSpeed); on CPU run DeepSpeed with --num_processes 1, or DDP with "
            "configs/accelerate/ddp_cpu.yaml"
        )
    return args
