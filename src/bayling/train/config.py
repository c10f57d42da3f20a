"""Config of the training stage (``bayling train``): SFT through TRL with full or LoRA updates."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """Supervised fine-tuning; fields map onto ``trl.SFTConfig`` / ``peft.LoraConfig``."""

    method: str = "lora"
    """``lora`` or ``full``."""
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1
    """Stop after this many optimizer steps (overrides ``epochs`` when > 0)."""
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 256
    """Token budget per example (or per packed sequence)."""
    packing: bool = False
    """Pack several examples into one sequence (padding-free, no cross-example attention where supported)."""
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    gradient_checkpointing: bool = False
    bf16: bool = True
    """Train in bfloat16 (weights loaded in bf16; LoRA adapters kept in fp32 by PEFT)."""
    logging_steps: int = 5
    save_steps: int = 0
    """Save a resumable checkpoint every N steps (0 = only at the end)."""
    resume: bool = True
    """Continue from the newest checkpoint in the output directory if one exists."""
    threads: int | None = None
    """CPU threads for torch (None = torch's default)."""
