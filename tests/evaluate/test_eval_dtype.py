"""Scores must not depend on ``eval.batch_size``: the transformers engine evaluates in float32 on CPU.

In bfloat16 a greedy output depends on the other prompts of its batch (left padding changes the shapes and so
the rounding); on the quickstart, batch 8 vs 16 moved chrF++ by up to 1.3 (README). These tests pin the
policy (:func:`bayling.evaluate.systems.engine_dtype`) and its effect on a whole evaluation.
"""

from __future__ import annotations

import pytest

from bayling.evaluate.config import EvalConfig, TranslationConfig
from bayling.evaluate.stage import evaluate
from bayling.evaluate.systems import System, engine_dtype, make_engine
from bayling.models import ModelConfig

BF16_CPU = ModelConfig(dtype="bfloat16", device="cpu")


@pytest.mark.parametrize(
    ("engine", "options", "model", "expected"),
    [
        ("transformers", {}, BF16_CPU, "float32"),  # the training dtype is not the eval dtype on CPU
        ("transformers", {"dtype": "bfloat16"}, BF16_CPU, "bfloat16"),  # engine_options win
        ("transformers", {}, ModelConfig(dtype="bfloat16", device="cuda"), "bfloat16"),  # a GPU keeps it
        ("llamacpp", {}, BF16_CPU, None),  # GGUF engines have their own types
    ],
)
def test_engine_dtype_policy(engine, options, model, expected):
    assert engine_dtype(EvalConfig(engine=engine, engine_options=options), model) == expected


def test_make_engine_upcasts_bf16_weights_on_cpu(tiny_llama):
    import torch

    model = ModelConfig(name_or_path=str(tiny_llama), dtype="bfloat16", device="cpu")
    system = System("base", str(tiny_llama))
    assert make_engine(system, EvalConfig(), model).model.dtype == torch.float32
    kept = make_engine(system, EvalConfig(engine_options={"dtype": "bfloat16"}), model)
    assert kept.model.dtype == torch.bfloat16


def _cfg(data_dir, batch_size: int, **kw) -> EvalConfig:
    return EvalConfig(
        testset="flores200",
        data_dir=str(data_dir),
        max_sentences=12,
        max_new_tokens=24,
        batch_size=batch_size,
        translation=TranslationConfig(directions=["eng_Latn-deu_Latn", "eng_Latn-zho_Hans"], metrics=["chrf"]),
        report=False,
        **kw,
    )


def _hypotheses(out) -> list[str]:
    return [p.read_text("utf-8") for p in sorted((out / "base").glob("eng_Latn-*.jsonl"))]


def _two_batch_sizes(model_dir, data_dir, out, **kw) -> tuple[dict, dict]:
    model = ModelConfig(name_or_path=str(model_dir), dtype="bfloat16", device="cpu")
    systems = {"base": System("base", str(model_dir), prompt="chat")}
    one = evaluate(_cfg(data_dir, 1, **kw), model, systems, out / "b1").metrics
    many = evaluate(_cfg(data_dir, 12, **kw), model, systems, out / "b12").metrics
    return one, many


def test_greedy_scores_do_not_depend_on_the_batch_size(wide_llama, shared_data_dir, tmp_path):
    """A bf16 model (the training dtype) evaluated at batch 1 and batch 12 writes the same hypotheses."""
    one, many = _two_batch_sizes(wide_llama, shared_data_dir, tmp_path)
    assert one["systems"] == many["systems"]
    assert _hypotheses(tmp_path / "b1") == _hypotheses(tmp_path / "b12")
    assert len(_hypotheses(tmp_path / "b1")) == 2


def test_in_bf16_they_would(wide_llama, shared_data_dir, tmp_path):
    """Why the policy exists: the same evaluation computed in bf16 changes with the batch size."""
    _two_batch_sizes(wide_llama, shared_data_dir, tmp_path, engine_options={"dtype": "bfloat16"})
    assert _hypotheses(tmp_path / "b1") != _hypotheses(tmp_path / "b12")


def test_the_compute_dtype_is_part_of_the_cache_key(tiny_llama, shared_data_dir, tmp_path, monkeypatch):
    """Scores computed in one dtype are not reused for another (the change of default must recompute)."""
    model = ModelConfig(name_or_path=str(tiny_llama), dtype="bfloat16", device="cpu")
    systems = {"base": System("base", str(tiny_llama), prompt="chat")}
    cfg = _cfg(shared_data_dir, 4)
    evaluate(cfg, model, systems, tmp_path / "out")

    def no_engine(*args):
        raise AssertionError("no engine")

    monkeypatch.setattr("bayling.evaluate.stage.make_engine", no_engine)
    evaluate(cfg, model, systems, tmp_path / "out")  # still cached: no engine is built
    monkeypatch.setattr("bayling.evaluate.stage.engine_dtype", lambda c, m: "float16")
    with pytest.raises(AssertionError, match="no engine"):  # another dtype must recompute
        evaluate(cfg, model, systems, tmp_path / "out")
