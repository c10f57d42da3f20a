"""The training stage: ``bayling train`` (entry point :func:`train` -> :class:`TrainResult`, from :mod:`bayling.train.sft`).

Modules:
    * ``config``     – :class:`TrainConfig` with its ``cpt`` / ``preference`` sections (YAML ``train:``)
    * ``data``       – chat JSONL -> ``input_ids`` + ``assistant_masks``; monolingual text -> token rows
    * ``sft``        – the stage orchestration and the SFT stage (TRL ``SFTTrainer``)
    * ``cpt``        – ALMA-style continued pre-training before SFT
    * ``preference`` – DPO / CPO on reference-vs-model-output pairs after SFT
    * ``export``     – merged safetensors model, LoRA adapter as GGUF for llama.cpp
    * ``model``      – model loading (full / LoRA / QLoRA), shared trainer arguments, resume bookkeeping
    * ``callbacks``  – console / TensorBoard / MLflow logging with tokens per second

Heavy dependencies (torch, transformers, TRL, PEFT) are imported inside these modules, never here.
"""

__all__ = ["TrainResult", "train"]


def __getattr__(name: str) -> object:
    """The stage's entry point, imported on first use: importing the package (its config) stays cheap."""
    if name in __all__:
        from bayling.train import sft

        return getattr(sft, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
