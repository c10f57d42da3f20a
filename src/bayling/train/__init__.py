"""The training stage: ``bayling train`` (entry point :func:`bayling.train.sft.train`).

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
