"""Model and trainer-argument builders shared by the CPT, SFT and preference stages.

Each stage configures TRL with the same device, precision, checkpointing, logging and seeding rules,
so they live here once: :func:`load_for_training` (full / LoRA / QLoRA), :func:`lora_config`,
:func:`common_args` (the ``TrainingArguments`` fields every stage shares), :func:`check_launch` (the
launcher asked for what accelerate actually set up) and :func:`last_checkpoint` (resume only from
checkpoints written by the same config and data).

Under ``accelerate launch`` the launcher's settings arrive as environment variables that
``TrainingArguments`` reads when it is built, so every stage builds its arguments *before* loading the
model: only then is a ZeRO-3 config live during ``from_pretrained`` (weights partitioned as they load,
instead of one full copy per rank) and is the process group up for FSDP's rank-0-only loading.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayling.errors import ConfigError, MissingDependencyError, require
from bayling.models import torch_dtype
from bayling.resume import mark, marked
from bayling.train.callbacks import default_report_to

if TYPE_CHECKING:
    from bayling.train.config import TrainConfig

log = logging.getLogger(__name__)


def is_distributed() -> bool:
    """True under ``accelerate launch`` / ``torchrun`` with more than one process."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    import os

    return int(os.environ.get("RANK", "0")) == 0


def launcher() -> str | None:
    """The sharding backend the accelerate launcher asked for: ``deepspeed``, ``fsdp`` or None (DDP / one process)."""
    import os

    for name, env in (("deepspeed", "ACCELERATE_USE_DEEPSPEED"), ("fsdp", "ACCELERATE_USE_FSDP")):
        if os.environ.get(env, "false").lower() in ("1", "true", "yes"):
            return name
    return None


def local_device(device: str) -> str:
    """This process's device: ``cuda`` becomes ``cuda:LOCAL_RANK`` under a multi-process launcher."""
    import os

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


def pretrained_kwargs(method: str, bf16: bool, device: str, attn_implementation: str | None = None) -> dict[str, Any]:
    """The ``from_pretrained`` keyword arguments for ``method`` on ``device`` under the current launcher.

    QLoRA under ZeRO-3 or FSDP stores the 4-bit weights in bf16 (``bnb_4bit_quant_storage``) so the
    sharding backend can split them like any bf16 tensor, and passes no ``device_map`` (ZeRO-3 rejects
    one; both place the shards themselves). Under DDP / ZeRO-2 each rank loads onto its own GPU. Call it
    after the ``TrainingArguments`` exist: it asks transformers whether ZeRO-3 is live.
    """
    transformers = require("transformers", "train")
    torch = require("torch", "train")
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    kwargs: dict[str, Any] = {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if method == "qlora":
        sharded = is_deepspeed_zero3_enabled() or launcher() == "fsdp"
        quant = dict(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        if sharded:
            quant["bnb_4bit_quant_storage"] = torch.bfloat16
        else:
            kwargs["device_map"] = {"": local_device(device)}
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(**quant)
        kwargs["dtype"] = torch.bfloat16
    elif method == "lora" and bf16:
        kwargs["dtype"] = torch_dtype("bfloat16")
    else:
        kwargs["dtype"] = torch.float32
    return kwargs


def load_for_training(
    model_path: str | Path,
    method: str,
    bf16: bool,
    device: str,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """Load a causal LM ready for ``method`` (``full``, ``lora`` or ``qlora``); ``trust_remote_code`` is
    ``model.trust_remote_code``.

    LoRA freezes the base, so it is loaded in bf16 when ``bf16`` (PEFT keeps adapters in fp32); full
    fine-tuning keeps fp32 master weights and lets the trainer autocast to bf16 on GPU; QLoRA loads the
    base in 4-bit NF4 through bitsandbytes, which needs CUDA. Build the stage's ``TrainingArguments``
    first (see the module docstring): under ZeRO-3 the weights are then partitioned while they load.
    """
    transformers = require("transformers", "train")
    if method == "qlora":
        if not device.startswith("cuda"):
            raise ConfigError("train.method=qlora needs a CUDA device (bitsandbytes 4-bit); use lora on CPU")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise MissingDependencyError(
                "train.method=qlora needs bitsandbytes: pip install 'bayling[qlora]'"
            ) from None
    kwargs = pretrained_kwargs(method, bf16, device, attn_implementation)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(model_path), trust_remote_code=trust_remote_code, **kwargs
    )
    model.config.use_cache = False
    if any(hasattr(p, "ds_id") for p in model.parameters()):  # what deepspeed.zero.Init leaves on each tensor
        log.info("loaded %s partitioned by DeepSpeed ZeRO-3 (each rank holds only its shard)", model_path)
    if method == "qlora" and "device_map" in kwargs:
        # fp32 norms/embeddings for k-bit training; skipped for sharded QLoRA, whose shards must keep one dtype
        peft = require("peft", "train")
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    elif method != "qlora" and not is_distributed() and launcher() is None:
        model = model.to(device)  # under accelerate the trainer (or DeepSpeed/FSDP) places the model itself
    return model


def release_zero3_init() -> None:
    """Forget a finished stage's ZeRO-3 config, so that the next ``from_pretrained`` loads whole weights.

    accelerate's global state keeps the stage's DeepSpeed config alive after training, and transformers
    would go on partitioning every later load (merging an adapter, exporting, generating preference pairs)
    as if it were for a DeepSpeed engine. The next stage's ``TrainingArguments`` switch it on again.
    """
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()


def lora_config(r: int, alpha: int, dropout: float, target_modules: list[str]) -> Any:
    peft = require("peft", "train")
    return peft.LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM"
    )


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
    import os

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
    import os

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


def common_args(
    cfg: TrainConfig,
    out_dir: Path,
    *,
    device: str,
    seed: int,
    batch_size: int,
    learning_rate: float,
    epochs: float,
    max_steps: int,
    weight_decay: float = 0.0,
    count_tokens: bool = True,
) -> dict[str, Any]:
    """``TrainingArguments`` fields every stage shares (checkpoints under ``out_dir/checkpoints``).

    Schedule, logging, checkpointing and precision come from ``cfg``; the arguments are what a stage
    sets for itself (preference tuning has its own batch size, learning rate and length). Raises
    :class:`ConfigError` when the launcher's mixed precision contradicts ``train.bf16`` on ``device``.
    """
    on_gpu = device.startswith("cuda")
    check_launcher_precision(cfg, device)
    return dict(
        # TRL's configs default this to True; "gradient_checkpointing" is its deprecated transformers-5 name.
        activation_checkpointing=cfg.gradient_checkpointing,
        output_dir=str(out_dir / "checkpoints"),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        max_steps=max_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps (transformers 5)
        weight_decay=weight_decay,
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps > 0 else "no",
        save_steps=cfg.save_steps if cfg.save_steps > 0 else 500,
        save_total_limit=cfg.save_total_limit,
        bf16=autocast_bf16(cfg, device),
        seed=seed,
        data_seed=seed,
        report_to=default_report_to(cfg.report_to),
        # DeepSpeed picks its own accelerator (CUDA, or its CPU accelerator); accelerate skips DeepSpeed when
        # told use_cpu. Everything else trains on CPU over gloo when there is no GPU.
        use_cpu=not on_gpu and launcher() != "deepspeed",
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every trainable parameter gets a gradient; skip DDP's extra graph walk
        # Feeds the tokens/s log; off for trainers whose batches have no plain ``input_ids`` (CPO).
        include_num_input_tokens_seen="non_padding" if count_tokens else "no",
        disable_tqdm=True,
    )


# ----------------------------------------------------------------------------- resume bookkeeping


def last_checkpoint(stage_dir: Path, fp: str, resume: bool) -> str | None:
    """Newest *complete* checkpoint to resume from, or None.

    Checkpoints are only reused when ``stage_dir/fingerprint.json`` matches ``fp`` (same config, model and
    data); stale ones from a different config are deleted rather than silently continued. Transformers
    writes ``trainer_state.json`` last, so a checkpoint without it was cut off mid-save (a crash) and is
    removed; the previous one is used instead.
    """
    ckpt_dir = stage_dir / "checkpoints"
    marker = stage_dir / "fingerprint.json"
    main = is_main_process()
    if ckpt_dir.is_dir() and (marked(marker, fp) is None or not resume) and main:
        log.info("discarding checkpoints in %s (config or data changed, or resume=false)", ckpt_dir)
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    if main:
        stage_dir.mkdir(parents=True, exist_ok=True)
        mark(marker, fp)
    barrier()
    if not resume or not ckpt_dir.is_dir():
        return None
    found = sorted(
        (p for p in ckpt_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    for ckpt in found:
        if (ckpt / "trainer_state.json").is_file():
            return str(ckpt)
        if main:
            log.warning("removing incomplete checkpoint %s (interrupted while saving)", ckpt)
            shutil.rmtree(ckpt, ignore_errors=True)
    return None
