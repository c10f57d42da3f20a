"""One stage's life inside ``bayling train``: skip it when finished, resume it when cut off, fit, save.

The CPT, SFT and preference stages differ in their data and trainer, not in their bookkeeping, so that
lives here once and each stage module imports it (they never import each other):

* a stage's fingerprint (:func:`bayling.digest.fingerprint`: its whole config section minus the fields
  that cannot change its result, the base model, input files by content) with its output in place means
  it is done (:func:`stage_done`); markers are :func:`bayling.resume.mark` files.
* :func:`last_checkpoint` resumes only from complete checkpoints written under the same fingerprint,
  and :func:`clear_output` removes a stale output before a stage writes it.
* :func:`fit` runs ``trainer.train`` with the console/tracker logging and returns the numbers every
  stage summary has; :func:`save_output` writes the adapter/model with its tokenizer and base.

Rank 0 edits the shared directories; the other ranks wait at :func:`bayling.train.distributed.barrier`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from bayling.resume import mark, marked
from bayling.train.distributed import barrier, is_main_process

log = logging.getLogger(__name__)

__all__ = ["clear_output", "fit", "last_checkpoint", "save_output", "stage_done"]


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


def stage_done(stage_dir: Path, output: Path, fp: str) -> dict[str, Any] | None:
    """The finished stage's summary when it ran with fingerprint ``fp`` and its output still exists."""
    summary = marked(stage_dir / "summary.json", fp)
    return summary if summary is not None and output.is_dir() else None


def clear_output(output: Path) -> None:
    """Remove a stale output directory before a stage writes it (a LoRA run must not inherit the
    ``config.json`` of an earlier full fine-tune, which would make consumers load it as a full model)."""
    if output.is_dir() and is_main_process():
        shutil.rmtree(output)
    barrier()


def fit(trainer: Any, label: str, resume_from: str | None, extra_callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Run ``trainer.train`` with console/tracker logging; return the numbers every stage summary has."""
    from bayling.train.callbacks import ThroughputLogger, install_first

    logger = ThroughputLogger(label)
    install_first(trainer, logger)
    if resume_from:
        log.info("%s: resuming from %s", label, resume_from)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    elapsed = time.perf_counter() - t0
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    tokens = trainer.state.num_input_tokens_seen - logger.start_tokens
    return {
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "seconds": round(elapsed, 2),
        "tokens_seen": trainer.state.num_input_tokens_seen,
        "tokens_per_second": round(tokens / elapsed, 1) if tokens > 0 and elapsed > 0 else None,
        "resumed_from": resume_from,
        "world_size": trainer.args.world_size,
        "distributed_type": trainer.accelerator.distributed_type.name,
        "log_history": history,
    }


def save_output(trainer: Any, tokenizer: Any, output: Path, base_model: Path, method: str) -> None:
    """Save the adapter/model, the tokenizer and which base it belongs to (rank 0 writes)."""
    trainer.save_model(str(output))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(output))
        (output / "bayling_base_model.json").write_text(
            json.dumps({"base_model": str(base_model), "method": method}), encoding="utf-8"
        )
