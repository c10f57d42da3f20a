"""Subprocess driver for the reward-stage resume test: SFT, then GRPO or sampled DPO; optionally SIGKILL itself.

Run as::

    python tests/train/reward_resume_driver.py MODEL_DIR DATA.jsonl OUT_DIR STAGE [KILL_AT_STEP]

``STAGE`` is ``reward`` (GRPO) or ``preference`` (DPO on sampled pairs). With ``KILL_AT_STEP`` the process sends
itself SIGKILL at the end of that optimizer step of ``STAGE`` (SFT runs to its end): no clean-up, no final save.
"""

from __future__ import annotations

import os
import signal
import sys

from transformers import Trainer, TrainerCallback

from bayling.models import ModelConfig
from bayling.train import train
from bayling.train.config import PreferenceConfig, RewardConfig, TrainConfig

model_dir, data, out, stage = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
kill_at = int(sys.argv[5]) if len(sys.argv) > 5 else 0


class KillAt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if kill_at and state.global_step == kill_at and f"/{stage}/" in args.output_dir:
            os.kill(os.getpid(), signal.SIGKILL)


_train = Trainer.train


def train_with_kill(self, *a, **kw):
    self.add_callback(KillAt())
    return _train(self, *a, **kw)


Trainer.train = train_with_kill

later = dict(max_steps=4, learning_rate=5e-2)
cfg = TrainConfig(
    method="lora",
    lora_r=4,
    lora_alpha=8,
    learning_rate=5e-3,
    max_steps=2,
    batch_size=4,
    bf16=False,
    logging_steps=1,
    save_steps=1,
    save_total_limit=2,
    warmup_ratio=0.0,
    threads=1,
    report_to=[],
    reward=RewardConfig(
        method="grpo" if stage == "reward" else "none", max_prompts=8, num_generations=2, prompts_per_step=2,
        max_new_tokens=6, **later,
    ),
    preference=PreferenceConfig(
        method="dpo" if stage == "preference" else "none", pairs="sampled", samples=2, temperature=1.0, max_pairs=8,
        max_new_tokens=6, batch_size=2, **later,
    ),
)  # fmt: skip
train(cfg, ModelConfig(model_dir, device="cpu"), data, out, seed=3)
