"""Loading a causal LM for training: full, LoRA or QLoRA, under whatever launcher is running.

Each stage (CPT, SFT, preference) loads its model with the same precision and placement rules, so they
live here once: :func:`load_for_training`, the ``from_pretrained`` arguments behind it
(:func:`pretrained_kwargs`) and the LoRA adapter config (:func:`lora_config`). What the launcher set up
(rank, sharding backend) comes from :mod:`bayling.train.distributed`.

Under ``accelerate launch`` the launcher's settings arrive as environment variables that
``TrainingArguments`` reads when it is built, so every stage builds its arguments (:mod:`bayling.train.args`)
*before* loading the model: only then is a ZeRO-3 config live during ``from_pretrained`` (weights
partitioned as they load, instead of one full copy per rank) and is the process group up for FSDP's
rank-0-only loading.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bayling.errors import ConfigError, MissingDependencyError, require
from bayling.models import torch_dtype
from bayling.train.distributed import is_distributed, launcher, local_device

log = logging.getLogger(__name__)

__all__ = ["generation_dtype", "load_for_training", "load_stage_output", "lora_config", "pretrained_kwargs"]


def _bf16_runs_fast(device: str) -> bool:
    """Whether bf16 weights train at speed on ``device``; on a CPU without native bf16 (AVX2 only) a bf16 matrix
    product is ~200x slower than in fp32 (an AMD EPYC: 2.69 s against 0.015 s for [512, 640] @ [640, 2048],
    ``bench/results/bf16_matmul_cpu.json``), so LoRA there trains on fp32 weights, with a log line saying so."""
    from bayling.models import pick_device
    from bayling.train.loss import fast_bf16_matmul

    torch = require("torch", "train")
    fast = fast_bf16_matmul(torch.device(pick_device(device).split(":")[0]))
    if not fast:
        log.warning("this CPU has no native bf16 (bf16 matmuls run ~200x slower): training in float32")
    return fast


def generation_dtype(bf16: bool, device: str) -> str:
    """The dtype a stage generates in with the inference engine (the preference stage's pairs): ``bfloat16``
    when ``train.bf16`` asks for it and the device runs it at speed, else ``float32`` (on a CPU without native
    bf16 the sampling would be ~200x slower in bf16, as training would; :func:`_bf16_runs_fast`)."""
    return "bfloat16" if bf16 and _bf16_runs_fast(device) else "float32"


def pretrained_kwargs(method: str, bf16: bool, device: str, attn_implementation: str | None = None) -> dict[str, Any]:
    """The ``from_pretrained`` keyword arguments for ``method`` on ``device`` under the current launcher.

    QLoRA under ZeRO-3 or FSDP stores the 4-bit weights in bf16 (``bnb_4bit_quant_storage``) so the
    sharding backend can split them like any bf16 tensor, and passes no ``device_map`` (ZeRO-3 rejects
    one; both place the shards themselves). Under DDP / ZeRO-2 each rank loads onto its own GPU. Call it
    after the ``TrainingArguments`` exist: it asks transformers whether ZeRO-3 is live.
    """
    transformers = require("transformers", "train")
    torch = require("torch", "train")
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    kwargs: dict[str, Any] = {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if method == "qlora":
        sharded = is_deepspeed_zero3_enabled() or launcher() == "fsdp"
        quant = dict(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        if sharded:
            quant["bnb_4bit_quant_storage"] = torch.bfloat16
        else:
            kwargs["device_map"] = {"": local_device(device)}
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(**quant)
        kwargs["dtype"] = torch.bfloat16
    elif method == "lora" and bf16 and _bf16_runs_fast(device):
        kwargs["dtype"] = torch_dtype("bfloat16")
    else:
        kwargs["dtype"] = torch.float32
    return kwargs


def load_for_training(
    model_path: str | Path,
    method: str,
    bf16: bool,
    device: str,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """Load a causal LM ready for ``method`` (``full``, ``lora`` or ``qlora``); ``trust_remote_code`` is
    ``model.trust_remote_code``.

    LoRA freezes the base, so it is loaded in bf16 when ``bf16`` (PEFT keeps adapters in fp32); full
    fine-tuning keeps fp32 master weights and lets the trainer autocast to bf16 on GPU; QLoRA loads the
    base in 4-bit NF4 through bitsandbytes, which needs CUDA. Build the stage's ``TrainingArguments``
    first (see the module docstring): under ZeRO-3 the weights are then partitioned while they load.
    """
    transformers = require("transformers", "train")
    if method == "qlora":
        if not device.startswith("cuda"):
            raise ConfigError("train.method=qlora needs a CUDA device (bitsandbytes 4-bit); use lora on CPU")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise MissingDependencyError(
                "train.method=qlora needs bitsandbytes: pip install 'bayling[qlora]'"
            ) from None
    kwargs = pretrained_kwargs(method, bf16, device, attn_implementation)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(model_path), trust_remote_code=trust_remote_code, **kwargs
    )
    model.config.use_cache = False
    if any(hasattr(p, "ds_id") for p in model.parameters()):  # what deepspeed.zero.Init leaves on each tensor
        log.info("loaded %s partitioned by DeepSpeed ZeRO-3 (each rank holds only its shard)", model_path)
    if method == "qlora" and "device_map" in kwargs:
        # fp32 norms/embeddings for k-bit training; skipped for sharded QLoRA, whose shards must keep one dtype
        peft = require("peft", "train")
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    elif method != "qlora" and not is_distributed() and launcher() is None:
        model = model.to(device)  # under accelerate the trainer (or DeepSpeed/FSDP) places the model itself
    return model


def lora_config(r: int, alpha: int, dropout: float, target_modules: list[str]) -> Any:
    """PEFT's LoRA config for a causal LM (the same for SFT and a LoRA CPT stage)."""
    peft = require("peft", "train")
    return peft.LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM"
    )


def load_stage_output(
    output: Path,
    base: Path,
    method: str,
    bf16: bool,
    device: str,
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """An earlier stage's result, trainable: the full model, or ``base`` with that stage's adapter (trained
    further, not a new one), for the stages after SFT."""
    if (output / "config.json").is_file():
        return load_for_training(output, "full", bf16, device, attn_implementation, trust_remote_code)
    peft = require("peft", "train")
    model = load_for_training(base, method, bf16, device, attn_implementation, trust_remote_code)
    return peft.PeftModel.from_pretrained(model, str(output), is_trainable=True)
