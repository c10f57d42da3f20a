"""The SFT stage: TRL's ``SFTTrainer`` on chat data (full, LoRA or QLoRA), loss on assistant turns only.

Rows come pre-tokenized with their ``assistant_masks`` (:mod:`bayling.train.data`); batches are
padding-free, optionally best-fit-decreasing packed without cross-example attention, and with
``train.label_only_loss`` the LM head runs on labelled positions only (:mod:`bayling.train.loss`).
We configure TRL and PEFT and never fork their loops. Skipping, resuming, fitting and saving are the
helpers every stage shares (:mod:`bayling.train.stage`); :mod:`bayling.train.orchestrator` runs this stage
between CPT and preference tuning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bayling.chat import ChatFormat
from bayling.digest import file_digest, fingerprint
from bayling.errors import require
from bayling.io import write_json
from bayling.train.args import sft_args
from bayling.train.config import TrainConfig
from bayling.train.data import count_tokens, tokenize_file
from bayling.train.distributed import is_main_process, release_zero3_init
from bayling.train.model import load_for_training, lora_config
from bayling.train.stage import clear_output, fit, last_checkpoint, save_output, stage_done

log = logging.getLogger(__name__)

__all__ = ["NO_EFFECT", "build_sft_trainer", "run_sft"]


def build_sft_trainer(
    cfg: TrainConfig,
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, list[int]]],
    stage_dir: str | Path,
    device: str = "cpu",
    seed: int = 0,
    callbacks: list[Any] | None = None,
    args: Any = None,
) -> Any:
    """An ``SFTTrainer`` over pre-tokenized ``input_ids`` + ``assistant_masks`` rows (LoRA applied when asked).

    ``args`` are the :func:`bayling.train.args.sft_args` the model was loaded under (built here when not given).
    """
    trl = require("trl", "train")
    datasets = require("datasets", "train")
    peft_config = None
    if cfg.method in ("lora", "qlora"):
        peft_config = lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_modules)
    trainer = trl.SFTTrainer(
        model=model,
        args=args if args is not None else sft_args(cfg, Path(stage_dir), device, seed),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )
    if cfg.label_only_loss:
        from bayling.train.loss import install_label_only_head

        install_label_only_head(trainer.model)
    return trainer


NO_EFFECT = (
    "cpt",
    "label_only_loss",  # the same loss, computed with less work
    "preference",
    "reward",
    "export",
    "resume",
    "report_to",
    "threads",
    "logging_steps",
    "save_steps",
    "save_total_limit",
)
"""``train`` fields that cannot change the SFT result (logging, checkpoint cadence, later stages): left out of
its fingerprint (:func:`bayling.digest.fingerprint`)."""


def run_sft(
    cfg: TrainConfig,
    model_path: Path,
    tokenizer: Any,
    fmt: ChatFormat,
    data_file: Path,
    stage_dir: Path,
    output: Path,
    device: str,
    seed: int,
    callbacks: list[Any] | None = None,
    base_fp: str = "",
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Stage 2: supervised fine-tuning on chat data; writes ``output`` and ``stage_dir/summary.json``.

    ``base_fp`` is the fingerprint of the stage that produced ``model_path`` (CPT), so a new stage-1
    model retrains stage 2 even though its directory name is the same.
    """
    fp = fingerprint(
        cfg,
        NO_EFFECT,
        name="sft",
        model=str(model_path),
        base=base_fp,
        data=file_digest(data_file),
        seed=seed,
        chat_format=fmt.name,
    )
    done = stage_done(stage_dir, output, fp)
    if done:
        log.info("sft: already finished in %s", stage_dir)
        return done
    clear_output(output)
    rows = tokenize_file(data_file, tokenizer, fmt, cfg.max_length)
    total, trained = count_tokens(rows)
    resume = last_checkpoint(stage_dir, fp, cfg.resume)
    args = sft_args(cfg, stage_dir, device, seed)  # first: ZeRO-3 partitions the weights as they load
    model = load_for_training(model_path, cfg.method, cfg.bf16, device, cfg.attn_implementation, trust_remote_code)
    trainer = build_sft_trainer(cfg, model, tokenizer, rows, stage_dir, device, seed, callbacks, args)
    summary = fit(trainer, "sft", resume)
    save_output(trainer, tokenizer, output, model_path, cfg.method)
    release_zero3_init()  # merging/exporting/pair generation afterwards load whole models
    summary.update(
        method=cfg.method,
        examples=len(rows),
        dataset_tokens=total,
        trained_tokens=trained,
        packing=cfg.packing,
        padding_free=trainer.padding_free,
        fingerprint=fp,
    )
    if is_main_process():
        write_json(stage_dir / "summary.json", summary)
    return summary
