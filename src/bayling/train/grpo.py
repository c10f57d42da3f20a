"""The reward stage: TRL's ``GRPOTrainer`` on translation requests, rewarded by gated chrF++.

TranslateGemma, MiLMMT-46, Hunyuan-MT, Tower+ and Seed-X all follow SFT with a stage that rewards translation
quality through a metric; MiLMMT zeroes the reward when language ID says the output is in the wrong language.
This stage does that on the training data's own translation requests (:func:`bayling.train.reward.
translation_requests`), with the reward of :func:`bayling.train.reward.translation_rewards`.

* The policy is the SFT result: its LoRA adapter is trained further (or the full model), and with ``beta > 0``
  TRL keeps a frozen copy of that adapter (``ref``) as the reference of the KL term, so the KL is to the SFT
  policy; the copy is deleted before saving, so the output is one adapter on the original base, like SFT's.
* Completions stop at the chat format's stop token: it is put among the model's generation-config EOS ids,
  which GRPO both generates with and masks completions by (without it every completion runs to the limit).
* The gate's share of off-target and copied completions, their chrF++ and length ratio are logged each step
  (``reward/off_target`` ...), since a reward stage that is being hacked shows there first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bayling.chat import ChatFormat, jinja_template, stop_token_ids
from bayling.digest import file_digest, fingerprint
from bayling.errors import DataError, require
from bayling.io import write_json
from bayling.train.args import common_args
from bayling.train.config import TrainConfig
from bayling.train.distributed import check_launch, is_main_process, release_zero3_init
from bayling.train.model import load_stage_output
from bayling.train.reward import RewardSpec, translation_requests, translation_rewards
from bayling.train.stage import clear_output, fit, last_checkpoint, save_output, stage_done

log = logging.getLogger(__name__)

__all__ = ["build_grpo_trainer", "grpo_args", "make_reward_function", "reward_requests", "run_grpo"]


def reward_requests(cfg: TrainConfig, data_file: Path, seed: int) -> list[dict[str, Any]]:
    """The stage's requests: translation requests of the training data into ``train.reward.targets`` (all when
    empty), at most ``max_prompts``."""
    rc = cfg.reward
    items = translation_requests(data_file, rc.max_prompts, seed, rc.targets)
    if not items:
        where = f" into {', '.join(rc.targets)}" if rc.targets else ""
        raise DataError(f"{data_file}: no single-turn translation request{where} for the reward stage")
    return items


def make_reward_function(spec: RewardSpec) -> Any:
    """The reward function GRPO calls: one gated reward per completion, the gate's shares logged."""

    def translation_reward(prompts, completions, reference, source, tgt, log_metric=None, **_: Any) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        rewards = translation_rewards(texts, reference, source, tgt, spec)
        if log_metric is not None and rewards:
            n = len(rewards)
            log_metric("reward/off_target", sum(r.off_target for r in rewards) / n)
            log_metric("reward/copy", sum(r.copy for r in rewards) / n)
            log_metric("reward/chrf", sum(r.chrf for r in rewards) / n)
            log_metric("reward/length_ratio", sum(r.length_ratio for r in rewards) / n)
        return [r.value for r in rewards]

    return translation_reward


def grpo_args(cfg: TrainConfig, stage_dir: Path, device: str, seed: int) -> Any:
    """The ``GRPOConfig`` of the reward stage (shared fields from :func:`common_args`)."""
    trl = require("trl", "train")
    rc = cfg.reward
    shared = common_args(
        cfg,
        stage_dir,
        device=device,
        seed=seed,
        batch_size=rc.prompts_per_step * rc.num_generations,
        learning_rate=rc.learning_rate,
        epochs=rc.epochs,
        max_steps=rc.max_steps,
        count_tokens=False,  # GRPO's batches are prompts, not input_ids
    )
    # One group batch per optimizer step: SFT's grad_accum would make GRPO generate that many batches per step
    # (its steps_per_generation defaults to it), and a small prompt set would then end an epoch with no step.
    shared["gradient_accumulation_steps"] = 1
    return check_launch(
        trl.GRPOConfig(
            **shared,
            beta=rc.beta,
            num_generations=rc.num_generations,
            max_completion_length=rc.max_new_tokens,
            temperature=rc.temperature,
            remove_unused_columns=False,  # the reward reads reference, source and tgt
            log_completions=False,
        )
    )


def build_grpo_trainer(
    model: Any, tokenizer: Any, fmt: ChatFormat, items: list[dict[str, Any]], spec: RewardSpec, args: Any
) -> Any:
    """A ``GRPOTrainer`` over ``items`` (:func:`reward_requests`) whose completions end at the format's stop token.

    GRPO generates with, and masks completions by, the EOS ids of the model's generation config plus the
    tokenizer's EOS; Gemma's EOS is not its end-of-turn token, so without this every completion runs to the limit.
    """
    trl = require("trl", "train")
    datasets = require("datasets", "train")
    model.generation_config.eos_token_id = stop_token_ids(fmt, tokenizer)
    return trl.GRPOTrainer(
        model=model,
        reward_funcs=[make_reward_function(spec)],
        args=args,
        train_dataset=datasets.Dataset.from_list(items),
        processing_class=tokenizer,
    )


def run_grpo(
    cfg: TrainConfig,
    base: Path,
    tokenizer: Any,
    fmt: ChatFormat,
    data_file: Path,
    prev_output: Path,
    stage_dir: Path,
    output: Path,
    device: str,
    seed: int,
    prev_fp: str = "",
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Train the previous stage's result (``prev_output``, fingerprint ``prev_fp``) with GRPO; writes ``output``."""
    rc = cfg.reward
    fp = fingerprint(rc, name="reward", prev=prev_fp, data=file_digest(data_file), seed=seed, chat_format=fmt.name)
    done = stage_done(stage_dir, output, fp)
    if done:
        log.info("reward: already finished in %s", stage_dir)
        return done
    clear_output(output)
    items = reward_requests(cfg, data_file, seed)
    spec = RewardSpec.of(rc)
    tokenizer.chat_template = jinja_template(fmt)  # TRL renders prompts through it: the one prompt format
    args = grpo_args(cfg, stage_dir, device, seed)  # before the model: ZeRO-3 partitions it as it loads
    model = load_stage_output(
        prev_output, base, cfg.method, cfg.bf16, device, cfg.attn_implementation, trust_remote_code
    )
    trainer = build_grpo_trainer(model, tokenizer, fmt, items, spec, args)
    resume = last_checkpoint(stage_dir, fp, cfg.resume)
    summary = fit(trainer, "grpo", resume)
    peft_model = trainer.model
    if hasattr(peft_model, "peft_config") and "ref" in peft_model.peft_config:
        peft_model.delete_adapter("ref")  # the frozen SFT copy behind the KL term is not part of the result
    save_output(trainer, tokenizer, output, base, cfg.method)
    release_zero3_init()
    steps = [h for h in summary["log_history"] if "reward" in h]
    first, last = (steps[0], steps[-1]) if steps else ({}, {})
    summary.update(
        method="grpo",
        prompts=len(items),
        targets=sorted({it["tgt"] for it in items}),
        fingerprint=fp,
        **{
            f"{when}_{key.replace('/', '_')}": h.get(key)
            for when, h in (("first", first), ("last", last))
            for key in ("reward", "reward/off_target", "reward/copy", "completions/clipped_ratio")
        },
    )
    if is_main_process():
        write_json(stage_dir / "summary.json", summary)
    return summary
