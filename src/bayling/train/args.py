"""The ``TrainingArguments`` every stage builds: the shared fields, and the SFT config CPT reuses.

CPT, SFT and preference tuning configure TRL with the same schedule, logging, checkpoint, precision and
seeding rules; :func:`common_args` spells those once, and each stage adds its own numbers (batch size,
learning rate, length). :func:`sft_args` is here rather than in :mod:`bayling.train.sft` because the CPT
stage trains through the same ``SFTConfig`` with its stage-1 numbers.

Build these before loading the model (see :mod:`bayling.train.model`): under ``accelerate launch`` they are
what turns a ZeRO-3 config live and brings the process group up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayling.errors import require
from bayling.train.callbacks import default_report_to
from bayling.train.distributed import autocast_bf16, check_launch, check_launcher_precision, launcher

if TYPE_CHECKING:
    from bayling.train.config import TrainConfig

__all__ = ["common_args", "sft_args"]


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


def sft_args(cfg: TrainConfig, stage_dir: Path, device: str = "cpu", seed: int = 0) -> Any:
    """The ``trl.SFTConfig`` for ``cfg``; build it before the model (see :mod:`bayling.train.model`).

    Without packing, rows are already truncated by :func:`bayling.train.data.tokenize_file`, so ``max_length``
    is left unset and TRL accepts padding-free batches (it refuses them with a ``max_length`` it cannot enforce).
    """
    trl = require("trl", "train")
    padding_free = cfg.padding_free or (cfg.packing and cfg.packing_strategy != "wrapped")
    args = trl.SFTConfig(
        **common_args(
            cfg,
            stage_dir,
            device=device,
            seed=seed,
            batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            epochs=cfg.epochs,
            max_steps=cfg.max_steps,
            weight_decay=cfg.weight_decay,
        ),
        max_length=cfg.max_length if cfg.packing else None,
        packing=cfg.packing,
        packing_strategy=cfg.packing_strategy,
        padding_free=padding_free,
        remove_unused_columns=True,
    )
    return check_launch(args)
