"""Real-model checks on the embedded Gemma-3-270M (slow: run with ``pytest -m slow tests/evaluate``)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from bayling.evaluate.config import EvalConfig, TranslationConfig
from bayling.evaluate.stage import evaluate
from bayling.evaluate.systems import System
from bayling.models import ModelConfig

pytestmark = pytest.mark.slow

GRID = [
    "zho_Hans",
    "deu_Latn",
    "fra_Latn",
    "jpn_Jpan",
    "rus_Cyrl",
    "arb_Arab",
    "hin_Deva",
    "swh_Latn",
    "zul_Latn",
    "ace_Latn",
]


@pytest.fixture(scope="module")
def gemma_engine():
    from bayling.engines.hf import TransformersEngine
    from bayling.models import resolve_model

    return TransformersEngine(resolve_model("gemma-3-270m"), dtype="float32", device="cpu", batch_size=4)


def test_flores_grid_on_gemma(shared_data_dir, tmp_path):
    cfg = EvalConfig(
        testset="flores200",
        data_dir=str(shared_data_dir),
        max_sentences=2,
        max_new_tokens=32,
        translation=TranslationConfig(languages=GRID),
        batch_size=8,
    )
    model = ModelConfig(dtype="bfloat16", device="cpu")
    m = evaluate(cfg, model, {"base": System("base", "gemma-3-270m")}, tmp_path, name="gemma-grid").metrics
    assert len(m["directions"]) == 20
    per = m["systems"]["base"]
    # a real model produces text that overlaps the references somewhere (the random tiny model scores ~0)
    assert max(v["chrf"]["score"] for v in per.values()) > 10
    assert json.loads((tmp_path / "report.json").read_text())["languages"]["systems"]["base"]["tiers"]
    assert (tmp_path / "report.html").read_text().count("<svg") == 2  # one system: heatmap + tier bars


def test_gemma_prefers_the_true_continuation(gemma_engine):
    from bayling.evaluate.benchmarks import MCItem
    from bayling.evaluate.mc import score_mc

    items = [
        MCItem("paris", "The capital of France is", ["Berlin", "Paris", "banana"], 1, "eng_Latn"),
        MCItem("sun", "The sun rises in the", ["west", "kitchen", "east"], 2, "eng_Latn"),
        MCItem("zh", "中国的首都是", ["巴黎", "北京"], 1, "zho_Hans", target_delimiter=""),
    ]
    summary, rows = score_mc(gemma_engine, items)
    assert summary["acc"] == 100.0, rows


def test_gemma_finds_real_text_more_likely_than_scrambled(gemma_engine, shared_data_dir):
    """Held-out FLORES text in English and Chinese: real sentences beat the same tokens shuffled."""
    import random

    from bayling.evaluate.perplexity import score_perplexity
    from bayling.records import read_columns

    cols = read_columns(shared_data_dir / "flores200", ["eng_Latn", "zho_Hans"])
    for lang, sep in (("eng_Latn", " "), ("zho_Hans", "")):
        texts = cols[lang][:6]
        rng = random.Random(0)
        scrambled = [
            sep.join(rng.sample(t.split(sep) if sep else list(t), len(t.split(sep) if sep else t))) for t in texts
        ]
        real, _ = score_perplexity(gemma_engine, texts)
        bad, _ = score_perplexity(gemma_engine, scrambled)
        assert real["nll_per_byte"] < bad["nll_per_byte"] and real["perplexity"] < 200, (lang, real, bad)


def test_llamacpp_engine_by_config(shared_data_dir, tmp_path):
    """The same evaluation through the llama.cpp engine (the embedded GGUF), chosen by ``eval.engine``."""
    pytest.importorskip("llama_cpp")
    cfg = EvalConfig(
        testset="flores200",
        data_dir=str(shared_data_dir),
        max_sentences=2,
        max_new_tokens=24,
        translation=TranslationConfig(directions=["en-de", "de-en"]),
        engine="llamacpp",
        engine_options={"n_ctx": 1024},
    )
    m = evaluate(cfg, ModelConfig(), {"base": System("base", "gemma-3-270m")}, tmp_path).metrics
    assert set(m["systems"]["base"]) == {"eng_Latn-deu_Latn", "deu_Latn-eng_Latn"}
    # a few-shot base is drawn 3 times by default: one hypothesis file per draw, under OUT/<system>/seed-<s>/
    for seed in (0, 1, 2):
        rows = (tmp_path / "base" / f"seed-{seed}" / "eng_Latn-deu_Latn.jsonl").read_text(encoding="utf-8")
        assert len(rows.splitlines()) == 2, seed


def test_fewshot_base_beats_chat_base_on_flores(shared_data_dir, tmp_path):
    """The reason for few-shot base columns: prompted in chat, the base model copies or rambles."""
    engine = "llamacpp" if importlib.util.find_spec("llama_cpp") else "transformers"
    cfg = EvalConfig(
        testset="flores200",
        data_dir=str(shared_data_dir),
        max_sentences=4,
        max_new_tokens=64,
        engine=engine,
        engine_options={"n_ctx": 2048} if engine == "llamacpp" else {},
        translation=TranslationConfig(directions=["en-de", "de-en"], prompts={"chat": "chat"}),
        report=False,
    )
    systems = {"fewshot": System("fewshot", "gemma-3-270m"), "chat": System("chat", "gemma-3-270m")}
    m = evaluate(cfg, ModelConfig(dtype="float32", device="cpu"), systems, tmp_path).metrics
    assert m["prompts"]["fewshot"]["prompt"] == "fewshot" and m["prompts"]["chat"]["prompt"] == "chat"
    gains = [
        m["systems"]["fewshot"][d]["chrf"]["score"] - m["systems"]["chat"][d]["chrf"]["score"] for d in m["directions"]
    ]
    # measured with llama.cpp: en-de 26.2 vs 25.5 (the chat base copies the English, names overlap), de-en 43.3 vs 27.6
    assert min(gains) > 0 and sum(gains) / len(gains) > 5, gains
