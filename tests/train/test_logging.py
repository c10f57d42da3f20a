"""Loss / learning rate / tokens-per-second reach the console and TensorBoard; summary.json holds the numbers."""

from __future__ import annotations

import json

import pytest

from bayling.models import ModelConfig
from bayling.train import train
from bayling.train.config import TrainConfig


def test_console_tensorboard_and_summary(tiny_llama, dialogues_file, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from bayling.progress import console

    cfg = TrainConfig(
        method="lora", max_steps=4, batch_size=4, bf16=False, logging_steps=2, packing=True, report_to=None
    )  # None = TensorBoard because it is installed
    with console.capture() as cap:
        final = train(cfg, ModelConfig(str(tiny_llama), device="cpu"), dialogues_file, tmp_path).final
    lines = [x for x in cap.get().splitlines() if x.startswith("sft step")]
    assert [x.split()[2] for x in lines] == ["2/4", "4/4"]
    assert all(" loss " in x and " lr " in x and x.endswith("tok/s") for x in lines)

    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    for key in ("steps", "first_loss", "last_loss", "seconds", "tokens_per_second", "dataset_tokens"):
        assert summary[key] is not None, key
    assert summary["steps"] == 4 and summary["packing"] and summary["padding_free"]
    assert summary["tokens_seen"] > 0 and summary["trained_tokens"] < summary["dataset_tokens"]
    assert final == tmp_path / "final"

    runs = list((tmp_path / "sft" / "checkpoints" / "runs").glob("*"))
    assert len(runs) == 1
    acc = EventAccumulator(str(runs[0]))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/learning_rate", "train/tokens_per_second"} <= tags
    assert [e.step for e in acc.Scalars("train/tokens_per_second")] == [2, 4]
    assert all(e.value > 0 for e in acc.Scalars("train/tokens_per_second"))
