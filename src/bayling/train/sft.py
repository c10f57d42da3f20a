"""The training stage: SFT with TRL's ``SFTTrainer`` (full, LoRA or QLoRA), plus optional extra stages.

Run as::

    bayling train configs/quickstart.yaml
    bayling train configs/train/two_stage_alma.yaml          # CPT on monolingual text, then SFT
    accelerate launch --config_file configs/accelerate/ddp_cpu.yaml $(which bayling) train CONFIG

Stages, each resumable from its own checkpoints and skipped when already finished:

1. ``cpt`` (when ``train.cpt.data`` is set): continued pre-training on monolingual text (ALMA stage 1).
2. ``sft``: loss on assistant turns only (:mod:`bayling.train.data`), padding-free batches, optional
   best-fit-decreasing packing without cross-example attention.
3. ``preference`` (when ``train.preference.method`` is ``dpo``/``cpo``): references vs model outputs.

We configure TRL and PEFT and never fork their loops. The result (:class:`TrainResult`) is ``OUT/final`` (a
PEFT adapter, or a full model directory when the weights themselves changed) and ``OUT/summary.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayling.chat import ChatFormat, format_for_tokenizer, jinja_template
from bayling.digest import file_digest, fingerprint
from bayling.errors import require
from bayling.io import write_json
from bayling.models import ModelConfig, load_tokenizer, pick_device, resolve_model
from bayling.resume import mark, marked
from bayling.train.config import TrainConfig
from bayling.train.data import count_tokens, tokenize_file
from bayling.train.model import (
    barrier,
    check_launch,
    common_args,
    is_main_process,
    last_checkpoint,
    load_for_training,
    lora_config,
    release_zero3_init,
)

log = logging.getLogger(__name__)

__all__ = ["TrainResult", "build_sft_trainer", "sft_args", "tokenize_file", "train"]


def sft_args(cfg: TrainConfig, stage_dir: Path, device: str = "cpu", seed: int = 0) -> Any:
    """The ``trl.SFTConfig`` for ``cfg``; build it before the model (see :mod:`bayling.train.model`).

    Without packing, rows are already truncated by :func:`tokenize_file`, so ``max_length`` is left unset
    and TRL accepts padding-free batches (it refuses them with a ``max_length`` it cannot enforce).
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

    ``args`` are the :func:`sft_args` the model was loaded under (built here when not given).
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


NO_EFFECT = (
    "cpt",
    "label_only_loss",  # the same loss, computed with less work
    "preference",
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


def clear_output(output: Path) -> None:
    """Remove a stale output directory before a stage writes it (a LoRA run must not inherit the
    ``config.json`` of an earlier full fine-tune, which would make consumers load it as a full model)."""
    if output.is_dir() and is_main_process():
        shutil.rmtree(output)
    barrier()


def stage_done(stage_dir: Path, output: Path, fp: str) -> dict[str, Any] | None:
    """The finished stage's summary when it ran with fingerprint ``fp`` and its output still exists."""
    summary = marked(stage_dir / "summary.json", fp)
    return summary if summary is not None and output.is_dir() else None


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


def _merge_final(adapter: Path, base: Path, final: Path, fp: str, trust_remote_code: bool = False) -> None:
    """Merge the last adapter into its (continued-pre-trained) base: consumers load adapters onto the
    *original* base, so a LoRA on new weights must ship as a full model. Skipped when already done."""
    from bayling.train.export import merge_adapter

    marker = final / "bayling_base_model.json"
    if marked(marker, fp) is not None:
        return
    merge_adapter(adapter, base, final, trust_remote_code=trust_remote_code)
    mark(marker, fp, base_model=str(base), method="merged", adapter=str(adapter))


@dataclass
class TrainResult:
    """What the train stage made.

    Attributes:
        final: ``OUT/final``: a PEFT adapter directory (LoRA on the original base) or a full model directory
            (full fine-tuning, or LoRA merged into a continued-pre-trained base).
        summary: what ``OUT/summary.json`` holds (steps, losses, seconds, tokens, per-stage numbers, exports);
            empty on ranks other than the main process, which do not write it.
    """

    final: Path
    summary: dict[str, Any]

    @property
    def exports(self) -> dict[str, str]:
        """``train.export`` outputs by kind (``merged``, ``gguf``)."""
        return dict(self.summary.get("exports") or {})


def train(
    cfg: TrainConfig,
    model: ModelConfig,
    data_file: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    callbacks: list[Any] | None = None,
    fresh: bool = False,
) -> TrainResult:
    """Fine-tune a causal LM on a chat JSONL file (after optional CPT, before optional DPO/CPO).

    Args:
        cfg: training hyper-parameters.
        model: the model to start from and how to load it (reference, GGUF file, chat format, device, remote code).
        data_file: chat JSONL from the data stage.
        out_dir: where checkpoints, stage outputs and the final model/adapter go.
        seed: run seed (model init of adapters, data order, dropout).
        callbacks: extra ``transformers.TrainerCallback`` objects for the SFT stage.
        fresh: discard finished stages and checkpoints in ``out_dir`` and train from scratch (``--force``);
            otherwise finished stages are reused and an interrupted one resumes from its last checkpoint.

    Returns:
        ``out_dir / "final"`` and the summary also written to ``out_dir / "summary.json"``.
    """
    torch = require("torch", "train")
    out = Path(out_dir)
    if fresh and is_main_process():
        for name in ("cpt", "sft", "preference", "final", "merged", "adapter.gguf", "summary.json"):
            target = out / name
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    barrier()
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(model.device)
    trust = model.trust_remote_code
    original = resolve_model(model.name_or_path, model.gguf_file)
    tokenizer = load_tokenizer(original, trust)
    fmt = format_for_tokenizer(model.chat_format, tokenizer)
    # The saved tokenizer carries the template of exactly what was trained (vLLM, llama.cpp --jinja, TRL).
    tokenizer.chat_template = jinja_template(fmt)
    stages: dict[str, Any] = {}
    t0 = time.perf_counter()

    base = original
    if cfg.cpt.data:
        from bayling.train.cpt import run_cpt

        base, stages["cpt"] = run_cpt(cfg, original, tokenizer, out / "cpt", device, seed, trust)

    final = out / "final"
    adapter_on_new_base = cfg.method != "full" and base != original
    preference = cfg.preference.method != "none"
    sft_output = out / "sft" / "output" if (preference or adapter_on_new_base) else final
    base_fp = stages["cpt"]["fingerprint"] if "cpt" in stages else ""
    stages["sft"] = run_sft(
        cfg, base, tokenizer, fmt, Path(data_file), out / "sft", sft_output, device, seed, callbacks, base_fp, trust
    )
    last_output = sft_output

    if preference:
        from bayling.train.preference import run_preference

        pref_output = out / "preference" / "output" if adapter_on_new_base else final
        stages["preference"] = run_preference(
            cfg,
            base,
            tokenizer,
            fmt,
            Path(data_file),
            sft_output,
            out / "preference",
            pref_output,
            device,
            seed,
            stages["sft"]["fingerprint"],
            trust,
        )
        last_output = pref_output

    if adapter_on_new_base and is_main_process():
        _merge_final(last_output, base, final, stages["preference" if preference else "sft"]["fingerprint"], trust)
    exports = {}
    if cfg.export and is_main_process():
        from bayling.train.export import export_all

        exports = export_all(cfg.export, final, original, out, trust)

    summary: dict[str, Any] = {}
    if is_main_process():
        sft = stages["sft"]
        summary = {
            **{k: v for k, v in sft.items() if k != "log_history"},
            "seconds": sft["seconds"],
            "total_seconds": round(time.perf_counter() - t0, 2),
            "base_model": str(original),
            "stages": {k: {kk: vv for kk, vv in v.items() if kk != "log_history"} for k, v in stages.items()},
            "exports": {k: str(v) for k, v in exports.items()},
            "log_history": sft.get("log_history", []),
        }
        write_json(out / "summary.json", summary)
    barrier()
    return TrainResult(final, summary)
