"""The training stage: supervised fine-tuning with TRL's ``SFTTrainer`` (full or LoRA via PEFT).

Run as::

    bayling train configs/quickstart.yaml

Conversations are tokenized by :func:`bayling.chat.tokenize_conversation`, which yields the exact
ids an engine sees at inference plus an ``assistant_masks`` column; TRL turns that mask into labels,
so the loss covers assistant turns only, across every turn of a multi-turn dialogue. We configure
TRL and PEFT and never fork their loops.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from bayling.chat import format_for_tokenizer, tokenize_conversation
from bayling.data.io import read_jsonl, write_json
from bayling.errors import ConfigError, DataError, require
from bayling.models import load_tokenizer, pick_device, resolve_model, torch_dtype
from bayling.train.config import TrainConfig

log = logging.getLogger(__name__)


def tokenize_file(path: str | Path, tokenizer: Any, chat_format: str, max_length: int) -> list[dict[str, list[int]]]:
    """Tokenize a chat JSONL (``messages`` per line) into ``input_ids`` + ``assistant_masks`` rows."""
    fmt = format_for_tokenizer(chat_format, tokenizer)
    rows = []
    for n, ex in enumerate(read_jsonl(path), 1):
        if "messages" not in ex:
            raise DataError(f"{path}:{n}: expected a 'messages' list (chat JSONL)")
        try:
            row = tokenize_conversation(ex["messages"], fmt, tokenizer, max_length=max_length)
        except Exception as e:  # a BaylingError from a malformed conversation: add the location
            raise DataError(f"{path}:{n}: {e}") from None
        if 1 in row["assistant_masks"]:
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no example has an assistant turn within max_length={max_length}")
    return rows


def _model_for_training(model_path: Path, cfg: TrainConfig, device: str) -> Any:
    transformers = require("transformers", "train")
    torch = require("torch", "train")
    if cfg.method == "lora" and cfg.bf16:
        dtype = torch_dtype("bfloat16")  # frozen base in bf16; PEFT keeps the adapters in fp32
    else:
        dtype = torch.float32  # full fine-tuning keeps fp32 master weights (autocast does bf16 on GPU)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(model_path), dtype=dtype)
    model.config.use_cache = False
    return model.to(device)


def train(
    cfg: TrainConfig,
    model_name_or_path: str,
    data_file: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    chat_format: str = "auto",
    gguf_file: str | None = None,
    device: str = "auto",
) -> Path:
    """Fine-tune a causal LM on a chat JSONL file.

    Args:
        cfg: training hyper-parameters.
        model_name_or_path: model reference (see :func:`bayling.models.resolve_model`).
        data_file: chat JSONL from the data stage.
        out_dir: where checkpoints and the final model/adapter go.
        seed: run seed.
        chat_format: chat format name or ``auto``.
        gguf_file: GGUF file inside ``model_name_or_path``, if any.
        device: ``auto``, ``cpu``, ``cuda``…

    Returns:
        ``out_dir / "final"``: a PEFT adapter directory (LoRA) or a full model directory.
    """
    if cfg.method not in ("lora", "full"):
        raise ConfigError(f"train.method must be 'lora' or 'full', got {cfg.method!r}")
    torch = require("torch", "train")
    trl = require("trl", "train")
    datasets = require("datasets", "train")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(device)
    model_path = resolve_model(model_name_or_path, gguf_file)
    tokenizer = load_tokenizer(model_path)
    rows = tokenize_file(data_file, tokenizer, chat_format, cfg.max_length)
    dataset = datasets.Dataset.from_list(rows)
    model = _model_for_training(model_path, cfg, device)

    peft_config = None
    if cfg.method == "lora":
        peft = require("peft", "train")
        peft_config = peft.LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.lora_target_modules,
            task_type="CAUSAL_LM",
        )
    on_gpu = device.startswith("cuda")
    args = trl.SFTConfig(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps (transformers 5)
        weight_decay=cfg.weight_decay,
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps > 0 else "no",
        save_steps=cfg.save_steps if cfg.save_steps > 0 else 500,
        bf16=bool(cfg.bf16 and on_gpu and cfg.method == "full"),
        max_length=cfg.max_length,
        packing=cfg.packing,
        gradient_checkpointing=cfg.gradient_checkpointing,
        seed=seed,
        data_seed=seed,
        report_to=[],
        use_cpu=not on_gpu,
        dataloader_num_workers=0,
        remove_unused_columns=True,
    )
    trainer = trl.SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
    )
    resume = None
    if cfg.resume:
        from transformers.trainer_utils import get_last_checkpoint

        ckpt_dir = out / "checkpoints"
        resume = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
        if resume:
            log.info("resuming from %s", resume)
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    elapsed = time.time() - t0
    final = out / "final"
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    (final / "bayling_base_model.json").write_text(
        json.dumps({"base_model": str(model_path), "method": cfg.method}), encoding="utf-8"
    )
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    n_tokens = sum(sum(1 for _ in r["input_ids"]) for r in rows)
    write_json(
        out / "summary.json",
        {
            "method": cfg.method,
            "examples": len(rows),
            "steps": trainer.state.global_step,
            "train_loss": result.training_loss,
            "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "seconds": round(elapsed, 1),
            "dataset_tokens": n_tokens,
            "resumed_from": resume,
            "log_history": trainer.state.log_history,
        },
    )
    return final
