"""Config of the training stage (``bayling train``): SFT through TRL, optional CPT before and DPO/CPO and a
GRPO reward stage after.

YAML keys under ``train:`` map one to one onto these fields; the nested ``cpt:``, ``preference:`` and ``reward:``
sections switch the language-aware extra stages on (see ``configs/train/*.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from bayling.config import (
    Bound,
    Count,
    Fraction,
    NonNegative,
    Positive,
    PositiveFloat,
    Steps,
    at_least,
    between,
    check_bounds,
)
from bayling.errors import ConfigError

METHODS = ("lora", "full", "qlora")
EXPORTS = ("merged", "gguf")


@dataclass
class CptConfig:
    """Stage 1 of ALMA-style two-stage training: continued pre-training on monolingual text.

    ALMA (Xu et al., 2024) first fine-tunes on monolingual text of the target languages, then on a little
    high-quality parallel data; the first stage is what lifts non-English fluency. Enabled when ``data`` is set.
    """

    data: str | None = None
    """Monolingual text: ``.txt`` (one document per line) or ``.jsonl`` with a ``text`` field. None = no stage 1."""
    method: str = "full"
    """``full`` (as ALMA) or ``lora`` (merged into the weights before SFT)."""
    learning_rate: PositiveFloat = 2e-5
    epochs: PositiveFloat = 1.0
    max_steps: Steps = -1
    batch_size: Positive = 4
    max_length: Positive = 512
    """Packed sequence length; documents are packed with ``bfd_split`` so no text is dropped."""


@dataclass
class PreferenceConfig:
    """Stage 3: preference tuning on translation pairs (TRL's DPO or CPO), after SFT.

    Pairs are ``chosen`` = the reference translation and ``rejected`` = what the SFT model writes for the
    same prompt (greedy), built from the single-turn translation examples of the training data, unless
    ``data`` gives ready pairs. CPO (ALMA-R) needs no reference model; DPO uses a frozen copy of the SFT model.
    """

    method: str = "none"
    """``none``, ``dpo`` or ``cpo``."""
    data: str | None = None
    """JSONL of ready pairs: ``prompt`` (messages), ``chosen`` and ``rejected`` (assistant strings)."""
    max_pairs: Positive = 256
    """Build at most this many pairs from the training data (each costs one greedy generation)."""
    max_new_tokens: Positive = 128
    beta: PositiveFloat = 0.1
    learning_rate: PositiveFloat = 5e-6
    epochs: PositiveFloat = 1.0
    max_steps: Steps = -1
    batch_size: Positive = 4
    cpo_alpha: NonNegative = 1.0
    """Weight of CPO's NLL term on the chosen side (ALMA-R uses 1.0)."""
    pairs: str = "greedy"
    """How pairs are built from the training data: ``greedy`` (chosen = reference, rejected = the model's greedy
    answer) or ``sampled``, the cheap offline variant of the reward stage: ``samples`` answers per request are
    sampled and scored with the language-gated reward (:mod:`bayling.train.reward`); rejected is an off-target or
    copied sample, else the worst; chosen is given by ``chosen``."""
    samples: Annotated[int, at_least(2)] = 4
    """Answers sampled per request with ``pairs: sampled``."""
    temperature: Annotated[float, Bound(0, 2, lo_open=True)] = 0.8
    """Sampling temperature with ``pairs: sampled``."""
    targets: list[str] = field(default_factory=list)
    """With ``pairs: sampled``: only requests into these target languages (as ``reward.targets``); empty = every
    language."""
    chosen: str = "reference"
    """With ``pairs: sampled``: ``reference`` or ``best`` (the best sample the gate lets through, the reference when
    none does or when it scores no better than the rejected one)."""
    gate_loops: bool = False
    """With ``pairs: sampled``: a looping sample (:func:`bayling.lid.is_loop`) is gated like an off-target one, so
    it is rejected first and never chosen (measured without it: DPO on gated pairs raised loops into low-resource
    targets, ``bench/results/rec_offline_e3_tiers.json``)."""


@dataclass
class RewardConfig:
    """The reward stage after SFT: TRL's GRPO on translation requests with a language-gated reward.

    The reward is sentence chrF++ against the reference, zero when the output is in the wrong language or copies
    its source (:mod:`bayling.train.reward`, the evaluation's own rules). The SFT adapter (or full model) is
    trained further; ``beta`` keeps it near the SFT policy (KL to a frozen copy of the SFT adapter).
    """

    method: str = "none"
    """``none`` or ``grpo``."""
    max_prompts: Positive = 64
    """Translation requests drawn from the training data (each is sampled ``num_generations`` times per epoch)."""
    targets: list[str] = field(default_factory=list)
    """Only requests into these target languages (the ones that fail); empty = every language."""
    num_generations: Annotated[int, at_least(2)] = 4
    """Completions per request: GRPO's group, whose mean reward is each completion's baseline."""
    prompts_per_step: Positive = 2
    """Requests per optimizer step (the per-device batch is ``prompts_per_step x num_generations`` completions)."""
    max_new_tokens: Positive = 64
    """Completion length limit; completions stop at the chat format's stop token."""
    temperature: Annotated[float, Bound(0, 2, lo_open=True)] = 1.0
    beta: NonNegative = 0.04
    """Weight of the KL divergence to the SFT policy."""
    learning_rate: PositiveFloat = 1e-5
    epochs: PositiveFloat = 1.0
    max_steps: Steps = -1
    length_penalty: NonNegative = 0.0
    """Reward lost per unit of ``|ln(len(output) / len(reference))|``; 0 = none."""
    comet_model: str | None = None
    """COMET ``checkpoints/model.ckpt`` mixed into the reward; None = chrF++ only."""
    cometkiwi_model: str | None = None
    """CometKiwi ``checkpoints/model.ckpt`` mixed into the reward; None = not used."""
    comet_weight: Fraction = 0.5
    """Weight of the COMET/CometKiwi mean against chrF++ when a checkpoint is given."""
    gate_loops: bool = False
    """Also zero the reward of an output that loops (:func:`bayling.lid.is_loop`): a loop in the target language
    passes the language gate. Off by default (the measured runs gated off-target answers and copies only)."""


@dataclass
class TrainConfig:
    """Supervised fine-tuning; fields map onto ``trl.SFTConfig`` / ``peft.LoraConfig``."""

    method: str = "lora"
    """``lora``, ``full`` or ``qlora`` (4-bit base via bitsandbytes; CUDA only)."""
    lora_r: Positive = 16
    lora_alpha: Positive = 32
    lora_dropout: Annotated[float, between(0, 1, hi_open=True)] = 0.05
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    learning_rate: PositiveFloat = 2e-4
    epochs: PositiveFloat = 1.0
    max_steps: Steps = -1
    """Stop after this many optimizer steps (overrides ``epochs`` when > 0)."""
    batch_size: Positive = 4
    grad_accum: Positive = 1
    max_length: Positive = 256
    """Token budget per example (or per packed sequence)."""
    packing: bool = False
    """Pack several examples into one sequence (padding-free, no cross-example attention where supported).

    With flash-attention/flex (GPU) the rows of a batch are one varlen sequence, so ``batch_size`` can be large.
    With sdpa/eager (CPU) the score matrix is dense over all tokens of the batch: use ``batch_size: 1`` and
    ``grad_accum`` for a bigger effective batch (``bench/train_throughput.py`` measures both layouts)."""
    packing_strategy: str = "bfd"
    """``bfd`` (best-fit decreasing: whole examples, padding-free with restarting position ids) or ``wrapped``."""
    padding_free: bool = True
    """Without packing, still flatten each batch into one row with no pad tokens (same batches and loss as
    padded batches, less compute). Position ids restart per example, so attention never crosses examples."""
    label_only_loss: bool = True
    """Compute the LM head and loss only at labelled (assistant) tokens, a few rows of ``[tokens, vocab]`` at a
    time (:mod:`bayling.train.loss`): same loss, much less work on a large vocabulary. ``false`` = TRL's own head."""
    attn_implementation: str | None = None
    """``sdpa``, ``eager``, ``flash_attention_2``, ``flex_attention``…; None = the model's default."""
    warmup_ratio: Fraction = 0.05
    weight_decay: NonNegative = 0.0
    lr_scheduler: str = "cosine"
    gradient_checkpointing: bool = False
    bf16: bool = True
    """Train in bfloat16 (weights loaded in bf16; LoRA adapters kept in fp32 by PEFT)."""
    logging_steps: Positive = 5
    save_steps: Count = 0
    """Save a resumable checkpoint every N steps (0 = only at the end)."""
    save_total_limit: Positive | None = 2
    """Keep this many newest checkpoints (None = all)."""
    resume: bool = True
    """Continue from the newest checkpoint in the output directory if one exists (same config and data only)."""
    threads: Positive | None = None
    """CPU threads for torch (None = torch's default)."""
    report_to: list[str] | None = None
    """Experiment trackers, as transformers' ``report_to``: ``tensorboard``, ``mlflow``, ``wandb`` (and its other
    integrations), ``all`` or ``none``/``[]`` (console only). None = TensorBoard when installed, plus MLflow / W&B
    when ``MLFLOW_TRACKING_URI`` / ``WANDB_PROJECT`` is set. The eval stage adds its scores to the same runs."""
    cpt: CptConfig = field(default_factory=CptConfig)
    preference: PreferenceConfig = field(default_factory=PreferenceConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    export: list[str] = field(default_factory=list)
    """After training: ``merged`` (full safetensors model) and/or ``gguf`` (LoRA adapter for llama.cpp)."""

    def __post_init__(self) -> None:
        check_bounds(self, "train")
        if self.method not in METHODS:
            raise ConfigError(f"train.method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.packing_strategy not in ("bfd", "bfd_split", "wrapped"):
            raise ConfigError(
                f"train.packing_strategy must be bfd, bfd_split or wrapped, got {self.packing_strategy!r}"
            )
        if self.cpt.method not in ("full", "lora"):
            raise ConfigError(f"train.cpt.method must be full or lora, got {self.cpt.method!r}")
        if self.preference.method not in ("none", "dpo", "cpo"):
            raise ConfigError(f"train.preference.method must be none, dpo or cpo, got {self.preference.method!r}")
        pc, rc = self.preference, self.reward
        if pc.pairs not in ("greedy", "sampled"):
            raise ConfigError(f"train.preference.pairs must be greedy or sampled, got {pc.pairs!r}")
        if pc.chosen not in ("reference", "best"):
            raise ConfigError(f"train.preference.chosen must be reference or best, got {pc.chosen!r}")
        if pc.pairs == "sampled" and (pc.samples < 2 or pc.temperature <= 0):
            raise ConfigError(
                f"train.preference.pairs=sampled needs samples >= 2 and temperature > 0, got {pc.samples} and "
                f"{pc.temperature}"
            )
        if pc.targets and pc.pairs != "sampled":
            raise ConfigError(
                f"train.preference.targets {pc.targets} choose the requests of pairs=sampled; with pairs={pc.pairs} "
                "they would be ignored (set train.preference.pairs=sampled or leave targets empty)"
            )
        if rc.method not in ("none", "grpo"):
            raise ConfigError(f"train.reward.method must be none or grpo, got {rc.method!r}")
        if rc.num_generations < 2 or rc.prompts_per_step < 1:
            raise ConfigError(
                f"train.reward: num_generations must be >= 2 (GRPO compares a group) and prompts_per_step >= 1, "
                f"got {rc.num_generations} and {rc.prompts_per_step}"
            )
        from bayling.train.reward import RewardSpec

        RewardSpec.of(rc)  # checks the ranges
        from bayling.languages import expand_languages

        rc.targets = expand_languages(rc.targets) if rc.targets else []
        pc.targets = expand_languages(pc.targets) if pc.targets else []
        bad = [e for e in self.export if e not in EXPORTS]
        if bad:
            raise ConfigError(f"train.export: unknown {bad}; choose from {', '.join(EXPORTS)}")
        from bayling.train.tracking import check_report_to

        check_report_to(self.report_to)
        if "gguf" in self.export and self.method == "full":
            raise ConfigError("train.export 'gguf' converts a LoRA adapter; with method=full export 'merged' instead")
