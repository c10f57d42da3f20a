"""Subprocess driver for the resume test: train the tiny model, log every batch, optionally SIGKILL itself.

Run as::

    python tests/train/resume_driver.py MODEL_DIR DATA.jsonl OUT_DIR [KILL_AT_STEP]

Each collated batch's token ids are appended (and fsync'ed) to ``OUT_DIR/batches.txt`` so the test can
compare data order across runs. With ``KILL_AT_STEP`` the process sends itself SIGKILL at the end of that
optimizer step: no clean-up, no final save, exactly like a crash or an OOM kill.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from pathlib import Path

from transformers import TrainerCallback
from trl.trainer import sft_trainer

from bayling.models import ModelConfig
from bayling.train import train
from bayling.train.config import TrainConfig

model_dir, data, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
kill_at = int(sys.argv[4]) if len(sys.argv) > 4 else 0
out.mkdir(parents=True, exist_ok=True)
log = open(out / "batches.txt", "a", encoding="utf-8")  # noqa: SIM115 - kept open until the process dies

_collate = sft_trainer.DataCollatorForLanguageModeling.torch_call


def logged_collate(self, examples):
    batch = _collate(self, examples)
    log.write(hashlib.sha1(batch["input_ids"].numpy().tobytes()).hexdigest()[:12] + "\n")
    log.flush()
    os.fsync(log.fileno())
    return batch


sft_trainer.DataCollatorForLanguageModeling.torch_call = logged_collate


class KillAt(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if kill_at and state.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


cfg = TrainConfig(
    method="lora",
    lora_r=4,
    lora_alpha=8,
    lora_dropout=0.1,
    learning_rate=5e-3,
    epochs=2,
    batch_size=4,
    max_length=256,
    packing=True,
    bf16=False,
    logging_steps=1,
    save_steps=4,
    save_total_limit=2,
    threads=1,
    report_to=[],
)
train(cfg, ModelConfig(model_dir, device="cpu"), data, out / "run", seed=3, callbacks=[KillAt()])
