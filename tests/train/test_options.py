"""Switches that must not change the numbers: gradient checkpointing, padding-free vs padded batches."""

from __future__ import annotations

import json

import pytest

from bayling.train.config import TrainConfig
from bayling.train.orchestrator import train


def _losses(out):
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return [h["loss"] for h in summary["log_history"] if "loss" in h]


def test_gradient_checkpointing_and_padding_free_give_the_same_training_curve(tiny_llama, dialogues_file, tmp_path):
    base = dict(
        method="lora",
        learning_rate=1e-2,
        max_steps=3,
        batch_size=6,
        bf16=False,
        logging_steps=1,
        lora_dropout=0.0,
        report_to=[],
    )
    runs = {
        "padded": TrainConfig(**base, padding_free=False),
        "padding_free": TrainConfig(**base, padding_free=True),
        "padding_free_gc": TrainConfig(**base, padding_free=True, gradient_checkpointing=True),
    }
    curves = {}
    for name, cfg in runs.items():
        train(cfg, str(tiny_llama), dialogues_file, tmp_path / name, device="cpu")
        curves[name] = _losses(tmp_path / name)
    assert len(curves["padded"]) == 3 and curves["padded"][0] != curves["padded"][-1]
    assert curves["padding_free"] == pytest.approx(curves["padded"], rel=1e-5)
    assert curves["padding_free_gc"] == pytest.approx(curves["padding_free"], rel=1e-6)
