"""The training stage's entry, :func:`train`: runs its sub-stages in order and assembles the result.

Run as::

    bayling train configs/quickstart.yaml
    bayling train configs/train/two_stage_alma.yaml          # CPT on monolingual text, then SFT
    accelerate launch --config_file configs/accelerate/ddp_cpu.yaml $(which bayling) train CONFIG

Sub-stages, each resumable from its own checkpoints and skipped when already finished:

1. ``cpt`` (when ``train.cpt.data`` is set): continued pre-training on monolingual text (ALMA stage 1,
   :mod:`bayling.train.cpt`).
2. ``sft``: loss on assistant turns only, padding-free batches, optional best-fit-decreasing packing
   without cross-example attention (:mod:`bayling.train.sft`).
3. ``preference`` (when ``train.preference.method`` is ``dpo``/``cpo``): references vs model outputs, greedy
   or sampled and ranked by the gated reward (:mod:`bayling.train.preference`).
4. ``reward`` (when ``train.reward.method`` is ``grpo``): GRPO with chrF++ gated by language ID and copies
   (:mod:`bayling.train.grpo`, :mod:`bayling.train.reward`).
5. A LoRA trained on a continued-pre-trained base is merged into it; ``train.export`` formats are written.

This module is the only one that knows all the sub-stages; they share their bookkeeping through
:mod:`bayling.train.stage` and never import each other. The result is ``OUT/final`` (a PEFT adapter, or
a full model directory when the weights themselves changed) and ``OUT/summary.json``, returned together
as a :class:`TrainResult`.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayling.chat import format_for_tokenizer, jinja_template
from bayling.errors import require
from bayling.io import write_json
from bayling.models import ModelConfig, load_tokenizer, pick_device, resolve_model
from bayling.resume import mark, marked
from bayling.train.config import TrainConfig
from bayling.train.distributed import barrier, is_main_process
from bayling.train.sft import run_sft

__all__ = ["TrainResult", "train"]


def _merge_final(adapter: Path, base: Path, final: Path, fp: str, trust_remote_code: bool = False) -> None:
    """Merge the last adapter into its (continued-pre-trained) base: consumers load adapters onto the
    *original* base, so a LoRA on new weights must ship as a full model. Skipped when already done."""
    from bayling.train.export import merge_adapter

    marker = final / "bayling_base_model.json"
    if marked(marker, fp) is not None:
        return
    merge_adapter(adapter, base, final, trust_remote_code=trust_remote_code)
    mark(marker, fp, base_model=str(base), method="merged", adapter=str(adapter))


def stage_outputs(cfg: TrainConfig, out: Path) -> dict[str, Path]:
    """Where SFT and each sub-stage after it write, in order: ``OUT/NAME/output``, except that the last writes
    ``OUT/final`` unless it is a LoRA on a continued-pre-trained base (then merged into ``final`` after it). The
    ablation (:mod:`bayling.ablation`) reads it to place a copied SFT adapter where the SFT sub-stage looks."""
    later = [
        name
        for name, on in (("preference", cfg.preference.method != "none"), ("reward", cfg.reward.method != "none"))
        if on
    ]
    outputs = {name: out / name / "output" for name in ("sft", *later)}
    if not (cfg.method != "full" and cfg.cpt.data):  # adapter_on_new_base: CPT gives the LoRA a new base
        outputs[("sft", *later)[-1]] = out / "final"
    return outputs


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
    """Fine-tune a causal LM on a chat JSONL file (after optional CPT, before optional DPO/CPO and GRPO).

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
        for name in ("cpt", "sft", "preference", "reward", "final", "merged", "adapter.gguf", "summary.json"):
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
    outputs = stage_outputs(cfg, out)
    later = list(outputs)[1:]
    last = list(outputs)[-1]
    base_fp = stages["cpt"]["fingerprint"] if "cpt" in stages else ""
    stages["sft"] = run_sft(
        cfg,
        base,
        tokenizer,
        fmt,
        Path(data_file),
        out / "sft",
        outputs["sft"],
        device,
        seed,
        callbacks,
        base_fp,
        trust,
    )
    prev = "sft"
    for name in later:
        if name == "preference":
            from bayling.train.preference import run_preference as run_stage
        else:
            from bayling.train.grpo import run_grpo as run_stage
        stages[name] = run_stage(
            cfg,
            base,
            tokenizer,
            fmt,
            Path(data_file),
            outputs[prev],
            out / name,
            outputs[name],
            device,
            seed,
            stages[prev]["fingerprint"],
            trust,
        )
        prev = name

    if adapter_on_new_base and is_main_process():
        _merge_final(outputs[last], base, final, stages[last]["fingerprint"], trust)
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
