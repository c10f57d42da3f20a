"""The training stage: ``bayling train`` (entry point :func:`train` -> :class:`TrainResult`, from
:mod:`bayling.train.orchestrator`).

Modules, top to bottom of the import graph (a module imports only those below it; no cycle):
    * ``orchestrator`` – :func:`train`: cpt -> sft -> preference -> reward -> merge/export -> ``summary.json``
    * ``cpt``          – ALMA-style continued pre-training before SFT
    * ``sft``          – the SFT stage (TRL ``SFTTrainer``)
    * ``preference``   – DPO / CPO on reference-vs-model-output pairs after SFT (greedy, or sampled and ranked)
    * ``grpo``         – the reward stage: TRL's GRPO with the language-gated translation reward
    * ``reward``       – that reward (chrF++ zeroed for off-target output and copies) and its translation requests
    * ``stage``        – what every sub-stage shares: fingerprint, skip when done, resume, fit, save
    * ``args``         – the ``TrainingArguments`` fields every stage shares, and the ``SFTConfig``
    * ``model``        – model loading (full / LoRA / QLoRA, an earlier stage's output) and the LoRA config
    * ``distributed``  – rank, launcher, precision and sharding checks, barriers, ZeRO-3 release
    * ``config``       – :class:`TrainConfig` with its ``cpt`` / ``preference`` / ``reward`` sections (YAML ``train:``)
    * ``data``         – chat JSONL -> ``input_ids`` + ``assistant_masks``; monolingual text -> token rows
    * ``loss``         – the label-only chunked LM-head loss
    * ``export``       – merged safetensors model, LoRA adapter as GGUF for llama.cpp
    * ``callbacks``    – console / TensorBoard / MLflow logging with tokens per second
    * ``tracking``, ``card`` – the run's tracker records and its model / dataset cards

Heavy dependencies (torch, transformers, TRL, PEFT) are imported inside these modules, never here.
"""

__all__ = ["TrainResult", "train"]


def __getattr__(name: str) -> object:
    """The stage's entry point, imported on first use: importing the package (its config) stays cheap."""
    if name in __all__:
        from bayling.train import orchestrator

        return getattr(orchestrator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
