"""Stage 1 of two-stage training (ALMA): continued pre-training on monolingual text, then SFT on top.

ALMA (Xu et al., 2024, "A Paradigm Shift in Machine Translation") showed that a short full-weight
fine-tune on monolingual text of the target languages, before a small parallel/instruction SFT, is what
lifts translation into non-English languages. Here the documents are packed (``bfd_split``, so no text
is dropped) and every token is trained. The result is a full model directory that the SFT stage uses as
its base; a LoRA variant is merged into the weights first.

Enable with ``train.cpt.data=mono.txt`` (one document per line, or JSONL with ``text``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from bayling.digest import file_digest, fingerprint
from bayling.errors import require
from bayling.io import write_json
from bayling.train.args import sft_args
from bayling.train.config import TrainConfig
from bayling.train.data import count_tokens, read_texts, tokenize_texts
from bayling.train.distributed import is_main_process, release_zero3_init
from bayling.train.model import load_for_training, lora_config
from bayling.train.stage import clear_output, fit, last_checkpoint, stage_done

log = logging.getLogger(__name__)

_SHARED_FIELDS = (
    "bf16",
    "grad_accum",
    "warmup_ratio",
    "lr_scheduler",
    "weight_decay",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "attn_implementation",
    "gradient_checkpointing",
)


def cpt_args(cfg: TrainConfig, stage_dir: Path, device: str, seed: int) -> Any:
    """The SFT arguments with the stage-1 numbers: same device/precision/logging/checkpoint rules."""
    c = cfg.cpt
    stage_cfg = dataclasses.replace(
        cfg,
        method=c.method,
        learning_rate=c.learning_rate,
        epochs=c.epochs,
        max_steps=c.max_steps,
        batch_size=c.batch_size,
        max_length=c.max_length,
        packing=True,
        packing_strategy="bfd_split",
    )
    return sft_args(stage_cfg, stage_dir, device, seed)


def run_cpt(
    cfg: TrainConfig,
    model_path: Path,
    tokenizer: Any,
    stage_dir: Path,
    device: str,
    seed: int,
    trust_remote_code: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Continue pre-training ``model_path`` on ``cfg.cpt.data``.

    Returns:
        ``(stage_dir / "model", summary)``: the full model directory SFT starts from, and the stage numbers.
    """
    trl = require("trl", "train")
    datasets = require("datasets", "train")
    c = cfg.cpt
    data = Path(c.data)  # type: ignore[arg-type]
    output = stage_dir / "model"
    shared = {k: getattr(cfg, k) for k in _SHARED_FIELDS}  # what stage 1 takes from the SFT section
    fp = fingerprint(c, name="cpt", shared=shared, model=str(model_path), data=file_digest(data), seed=seed)
    done = stage_done(stage_dir, output, fp)
    if done:
        log.info("cpt: already finished in %s", stage_dir)
        return output, done
    clear_output(output)

    rows = tokenize_texts(read_texts(data), tokenizer)
    total, _ = count_tokens(rows)
    args = cpt_args(cfg, stage_dir, device, seed)  # before the model: ZeRO-3 partitions the weights as they load
    resume = last_checkpoint(stage_dir, fp, cfg.resume)
    model = load_for_training(model_path, c.method, cfg.bf16, device, cfg.attn_implementation, trust_remote_code)
    peft_config = None
    if c.method == "lora":
        peft_config = lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_modules)
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    if cfg.label_only_loss:  # every token is labelled: the gain is the chunked head without backward recompute
        from bayling.train.loss import install_label_only_head

        install_label_only_head(trainer.model)
    summary = fit(trainer, "cpt", resume)
    if c.method == "lora":
        trainer.save_model(str(stage_dir / "adapter"))  # collective under ZeRO-3/FSDP: every rank takes part
        release_zero3_init()  # the merge loads the whole base
        if is_main_process():
            from bayling.train.export import merge_adapter

            merge_adapter(stage_dir / "adapter", model_path, output, trust_remote_code=trust_remote_code)
    else:
        trainer.save_model(str(output))
        release_zero3_init()
    if is_main_process():
        tokenizer.save_pretrained(str(output))
        summary.update(documents=len(rows), dataset_tokens=total, method=c.method, fingerprint=fp)
        write_json(stage_dir / "summary.json", summary)
    return output, summary
