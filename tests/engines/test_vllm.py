"""The vLLM engine (:mod:`bayling.engines.vllm`) on the tiny model (GPU only; the fake-vLLM tests of the server are
in ``tests/serve/test_vllm.py``)."""

from __future__ import annotations

import importlib.util

import pytest

from bayling.engines import GenerationParams

MSG = [{"role": "user", "content": "Translate the following English text into German.\nThe weather is nice today."}]


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")
def test_vllm_engine_on_tiny_model(tiny_llama, tiny_engine):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a GPU")
    from bayling.engines.vllm import VLLMEngine

    engine = VLLMEngine(tiny_llama, dtype="float32", gpu_memory_utilization=0.2)
    try:
        assert engine.context_length == 512  # the model's own
        params = GenerationParams(max_new_tokens=12)
        (r,) = engine.generate_detailed([MSG], params)
        assert r["prompt_tokens"] == tiny_engine.count_prompt_tokens(MSG) and r["completion_tokens"] <= 12
        assert "".join(engine.stream(MSG, params)).strip() == r["text"]
    finally:
        engine.close()
