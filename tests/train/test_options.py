"""Switches that must not change the numbers: gradient checkpointing, padding-free vs padded batches."""

from __future__ import annotations

import json

import pytest

from bayling.models import ModelConfig
from bayling.train import train
from bayling.train.config import TrainConfig


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
        train(cfg, ModelConfig(str(tiny_llama), device="cpu"), dialogues_file, tmp_path / name)
        curves[name] = _losses(tmp_path / name)
    assert len(curves["padded"]) == 3 and curves["padded"][0] != curves["padded"][-1]
    assert curves["padding_free"] == pytest.approx(curves["padded"], rel=1e-5)
    assert curves["padding_free_gc"] == pytest.approx(curves["padding_free"], rel=1e-6)


def test_trust_remote_code_reaches_every_load_of_training(tiny_llama, dialogues_file, tmp_path, monkeypatch):
    """``model.trust_remote_code`` (it used to be accepted and dropped) reaches the tokenizer, the trained model
    and the merged export."""
    import transformers

    seen = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        real = cls.from_pretrained.__func__

        def spy(klass, *a, _real=real, **k):
            seen.append((klass.__name__, k.get("trust_remote_code")))
            return _real(klass, *a, **k)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    cfg = TrainConfig(method="lora", max_steps=1, batch_size=4, bf16=False, report_to=[], export=["merged"])
    result = train(cfg, ModelConfig(str(tiny_llama), device="cpu", trust_remote_code=True), dialogues_file, tmp_path)
    assert (result.final / "adapter_config.json").is_file() and (tmp_path / "merged" / "config.json").is_file()
    assert {name for name, _ in seen} == {"AutoTokenizer", "AutoModelForCausalLM"}
    assert all(trust is True for _, trust in seen), seen
    assert len([n for n, _ in seen if n == "AutoModelForCausalLM"]) == 2  # training, then the merge
