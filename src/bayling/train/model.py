"""Model and trainer-argument builders shared by the CPT, SFT and preference stages.

Each stage configures TRL with the same device, precision, checkpointing, logging and seeding rules,
so they live here once: :func:`load_for_training` (full / LoRA / QLoRA), :func:`lora_config`,
:func:`common_args` (the ``TrainingArguments`` fields every stage shares) and :func:`last_checkpoint`
(resume only from checkpoints written by the same config and data).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayling.errors import ConfigError, MissingDependencyError, require
from bayling.models import torch_dtype
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


def barrier() -> None:
    """Wait for every process (no-op when not distributed): rank 0 edits shared directories, the others read."""
    if is_distributed():
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def load_for_training(
    model_path: str | Path,
    method: str,
    bf16: bool,
    device: str,
    attn_implementation: str | None = None,
) -> Any:
    """Load a causal LM ready for ``method`` (``full``, ``lora`` or ``qlora``).

    LoRA freezes the base, so it is loaded in bf16 when ``bf16`` (PEFT keeps adapters in fp32); full
    fine-tuning keeps fp32 master weights and lets the trainer autocast to bf16 on GPU; QLoRA loads the
    base in 4-bit NF4 through bitsandbytes, which needs CUDA.
    """
    transformers = require("transformers", "train")
    torch = require("torch", "train")
    kwargs: dict[str, Any] = {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if method == "qlora":
        if not device.startswith("cuda"):
            raise ConfigError("train.method=qlora needs a CUDA device (bitsandbytes 4-bit); use lora on CPU")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise MissingDependencyError(
                "train.method=qlora needs bitsandbytes: pip install 'bayling[qlora]'"
            ) from None
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["dtype"] = torch.bfloat16
        kwargs["device_map"] = {"": device}
    elif method == "lora" and bf16:
        kwargs["dtype"] = torch_dtype("bfloat16")
    else:
        kwargs["dtype"] = torch.float32
    model = transformers.AutoModelForCausalLM.from_pretrained(str(model_path), **kwargs)
    model.config.use_cache = False
    if method == "qlora":
        peft = require("peft", "train")
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    elif not is_distributed():  # under accelerate the trainer places the model itself
        model = model.to(device)
    return model


def lora_config(r: int, alpha: int, dropout: float, target_modules: list[str]) -> Any:
    peft = require("peft", "train")
    return peft.LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM"
    )


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
    sets for itself (preference tuning has its own batch size, learning rate and length).
    """
    on_gpu = device.startswith("cuda")
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
        # Autocast only where it pays: a bf16-loaded LoRA base already runs in bf16, and CPU autocast is slow.
        bf16=bool(cfg.bf16 and on_gpu and cfg.method == "full"),
        seed=seed,
        data_seed=seed,
        report_to=default_report_to(cfg.report_to),
        use_cpu=not on_gpu,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every trainable parameter gets a gradient; skip DDP's extra graph walk
        # Feeds the tokens/s log; off for trainers whose batches have no plain ``input_ids`` (CPO).
        include_num_input_tokens_seen="non_padding" if count_tokens else "no",
        disable_tqdm=True,
    )


# ----------------------------------------------------------------------------- resume bookkeeping


def fingerprint(*parts: Any) -> str:
    """A short hash of configs and input files (files hashed by content)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, Path) and p.is_file():
            h.update(hashlib.sha256(p.read_bytes()).hexdigest().encode())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def last_checkpoint(stage_dir: Path, fp: str, resume: bool) -> str | None:
    """Newest *complete* checkpoint to resume from, or None.

    Checkpoints are only reused when ``stage_dir/fingerprint.json`` matches ``fp`` (same config, model and
    data); stale ones from a different config are deleted rather than silently continued. Transformers
    writes ``trainer_state.json`` last, so a checkpoint without it was cut off mid-save (a crash) and is
    removed; the previous one is used instead.
    """
    ckpt_dir = stage_dir / "checkpoints"
    marker = stage_dir / "fingerprint.json"
    old = json.loads(marker.read_text(encoding="utf-8")).get("fingerprint") if marker.is_file() else None
    main = is_main_process()
    if ckpt_dir.is_dir() and (old != fp or not resume) and main:
        log.info("discarding checkpoints in %s (config or data changed, or resume=false)", ckpt_dir)
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    if main:
        stage_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"fingerprint": fp}), encoding="utf-8")
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
