"""The eval cache is keyed on the whole ``eval`` section minus fields listed as unable to change a part, and
COMET checkpoints are loaded once per run."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path

import pytest

from bayling.evaluate.cache import NO_EFFECT, PARTS, READ_BY, part_fingerprint
from bayling.evaluate.config import (
    BenchmarksConfig,
    EvalConfig,
    InteractiveConfig,
    OpenEndedConfig,
    PerplexityConfig,
    TranslationConfig,
)
from bayling.evaluate.stage import evaluate
from bayling.evaluate.systems import System
from bayling.models import ModelConfig

# an EvalConfig with a field nobody listed yet, as a future feature would add one
Extended = dataclasses.make_dataclass(
    "Extended", [("new_knob", int, dataclasses.field(default=0))], bases=(EvalConfig,)
)


@pytest.mark.parametrize("part", PARTS)
def test_an_unlisted_field_is_in_every_key(part):
    base = part_fingerprint(EvalConfig(), part)
    assert part_fingerprint(Extended(), part) != base  # a new field (even at its default) invalidates
    assert part_fingerprint(Extended(new_knob=1), part) != part_fingerprint(Extended(), part)
    assert part_fingerprint(EvalConfig(seed=1), part) != base  # shared fields reach every part


@pytest.mark.parametrize("part", PARTS)
def test_listed_no_effect_fields_keep_the_key(part):
    base = part_fingerprint(EvalConfig(), part)
    assert part_fingerprint(EvalConfig(report=False, compare_base=False, base_prompts=["chat"]), part) == base
    for path in NO_EFFECT:
        _field(path)


def _field(path: str) -> object:
    """The default of the ``eval`` field at a dotted path (fails on a path that names no field)."""
    node: object = EvalConfig()
    for part in path.split("."):
        assert part in {f.name for f in dataclasses.fields(node)}, path
        node = getattr(node, part)
    return node


def test_fields_of_other_parts_do_not_touch_a_part():
    t = part_fingerprint(EvalConfig(), "translation")
    others = EvalConfig(
        benchmarks=BenchmarksConfig(limit=7),
        open_ended=OpenEndedConfig(limit=3),
        interactive=InteractiveConfig(limit=1),
    )
    assert part_fingerprint(others, "translation") == t
    assert part_fingerprint(EvalConfig(benchmarks=BenchmarksConfig(limit=7)), "benchmarks") != part_fingerprint(
        EvalConfig(), "benchmarks"
    )
    assert part_fingerprint(EvalConfig(translation=TranslationConfig(metrics=["ter"])), "translation") != t
    assert part_fingerprint(EvalConfig(translation=TranslationConfig(metrics=["ter"])), "interactive") == (
        part_fingerprint(EvalConfig(), "interactive")
    )
    assert part_fingerprint(EvalConfig(max_sentences=3), "translation") != t
    assert part_fingerprint(EvalConfig(max_sentences=3), "benchmarks") == part_fingerprint(EvalConfig(), "benchmarks")
    assert part_fingerprint(EvalConfig(max_new_tokens=3), "interactive") != part_fingerprint(
        EvalConfig(), "interactive"
    )
    assert all(p in PARTS for parts in READ_BY.values() for p in parts)
    for path in [*READ_BY, *NO_EFFECT]:
        _field(path)


def test_batch_size_counts_only_where_the_engine_batches():
    # transformers pads a batch to one length, which can change greedy outputs; llama.cpp and vLLM ignore it
    for part in PARTS:
        assert part_fingerprint(EvalConfig(batch_size=2), part) != part_fingerprint(EvalConfig(), part)
        for engine in ("llamacpp", "vllm"):
            a = part_fingerprint(EvalConfig(engine=engine, batch_size=2), part)
            assert a == part_fingerprint(EvalConfig(engine=engine, batch_size=16), part)


def _testset(tmp_path: Path) -> str:
    rows = [{"id": f"s{i}", "eng_Latn": f"Sentence number {i}.", "deu_Latn": f"Satz Nummer {i}."} for i in range(8)]
    f = tmp_path / "test.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(f)


def _count_engines(monkeypatch) -> list[str]:
    """The names of the systems whose engine the evaluation builds from now on (a model it had to load)."""
    import bayling.evaluate.stage as stage

    built: list[str] = []
    real = stage.make_engine

    def counting(*a, **k):
        built.append(a[0].name)
        return real(*a, **k)

    monkeypatch.setattr(stage, "make_engine", counting)
    return built


def test_rerun_reuses_or_recomputes_by_the_key(tiny_llama, tmp_path, monkeypatch):
    model = ModelConfig(dtype="float32", device="cpu")
    systems = {"base": System("base", str(tiny_llama))}
    tr = TranslationConfig(directions=["en-de"], fewshot_k=2)
    kw = dict(testset=_testset(tmp_path), max_sentences=3, max_new_tokens=3, translation=tr)
    first = evaluate(EvalConfig(**kw), model, systems, tmp_path / "out").metrics
    built = _count_engines(monkeypatch)
    again = evaluate(
        EvalConfig(**kw, report=False, benchmarks=BenchmarksConfig(limit=3)), model, systems, tmp_path / "out"
    ).metrics
    assert built == [] and again["systems"] == first["systems"]  # no-effect and other-part fields: cached
    evaluate(Extended(**kw, new_knob=1), model, systems, tmp_path / "out")
    assert built == ["base"]  # a field nobody listed: recomputed, never a stale result
    evaluate(
        EvalConfig(**{**kw, "translation": dataclasses.replace(tr, fewshot_k=1)}), model, systems, tmp_path / "out"
    )
    assert built == ["base", "base"]


def test_reuse_from_copies_what_an_earlier_run_computed_and_nothing_else(tiny_llama, tmp_path, monkeypatch):
    from bayling.errors import ConfigError

    model = ModelConfig(dtype="float32", device="cpu")
    systems = {"base-fewshot": System("base-fewshot", str(tiny_llama), prompt="fewshot")}
    tr = TranslationConfig(directions=["en-de"], fewshot_k=2, fewshot_seeds=[0, 1])
    ppl = PerplexityConfig(languages=["eng_Latn"])
    kw = dict(testset=_testset(tmp_path), max_sentences=3, max_new_tokens=3, translation=tr, perplexity=ppl)
    first = evaluate(EvalConfig(**kw), model, systems, tmp_path / "arm_a" / "eval").metrics
    built = _count_engines(monkeypatch)
    again = evaluate(EvalConfig(**kw, reuse_from=[str(tmp_path / "arm_a")]), model, systems, tmp_path / "b").metrics
    assert built == []  # both demonstration draws and the perplexity came from arm_a: no model was loaded
    assert again["systems"] == first["systems"] and again["perplexity"] == first["perplexity"]
    assert sorted(again["reused"]) == ["base-fewshot/perplexity", "base-fewshot/seed-0", "base-fewshot/seed-1"]
    for name in ("eng_Latn-deu_Latn.jsonl", "scores.json"):
        a = (tmp_path / "arm_a" / "eval" / "base-fewshot" / "seed-1" / name).read_bytes()
        assert (tmp_path / "b" / "base-fewshot" / "seed-1" / name).read_bytes() == a
    # a key that differs (another token limit) is computed, never taken from the earlier run
    other = evaluate(
        EvalConfig(**{**kw, "max_new_tokens": 4}, reuse_from=[str(tmp_path / "arm_a")]), model, systems, tmp_path / "c"
    ).metrics
    assert built == ["base-fewshot"] and sorted(other.get("reused", {})) == ["base-fewshot/perplexity"]
    with pytest.raises(ConfigError, match="reuse_from"):
        evaluate(EvalConfig(**kw, reuse_from=[str(tmp_path / "nowhere")]), model, systems, tmp_path / "d")


def _lora(base: Path, out: Path, alpha: int = 8) -> Path:
    """A LoRA adapter on ``base`` whose B matrices are not zero (its outputs differ from the base's)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base)
    cfg = LoraConfig(r=2, lora_alpha=alpha, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, cfg).save_pretrained(out)
    return out


def test_an_adapter_is_keyed_by_its_content_not_its_path(tiny_llama, tmp_path, monkeypatch):
    """An ablation arm scores its SFT adapter from a copy: the pass another run made of that adapter is reused;
    the same weights under another ``lora_alpha`` (other outputs) are not."""
    import shutil

    model = ModelConfig(dtype="float32", device="cpu")
    adapter = _lora(tiny_llama, tmp_path / "sft" / "final")
    kw = dict(testset=_testset(tmp_path), max_sentences=3, max_new_tokens=3, translation=TranslationConfig(["en-de"]))

    def run(path: Path, out: str, **extra):
        systems = {"tuned": System("tuned", str(tiny_llama), str(path), prompt="chat")}
        return evaluate(EvalConfig(**kw, **extra), model, systems, tmp_path / out).metrics

    first = run(adapter, "a")
    copy = shutil.copytree(adapter, tmp_path / "grpo" / "train" / "sft" / "output")
    built = _count_engines(monkeypatch)
    again = run(copy, "b", reuse_from=[str(tmp_path / "a")])
    assert built == [] and again["systems"] == first["systems"] and sorted(again["reused"]) == ["tuned"]
    conf = json.loads((copy / "adapter_config.json").read_text())
    (copy / "adapter_config.json").write_text(json.dumps({**conf, "lora_alpha": 2 * conf["lora_alpha"]}))
    run(copy, "c", reuse_from=[str(tmp_path / "a")])
    assert built == ["tuned"]  # the same weights scaled otherwise: translated again


class _FakeComet(types.ModuleType):
    """Stands in for unbabel-comet (not installable on this CPU box): counts checkpoint loads."""

    def __init__(self):
        super().__init__("comet")
        self.__version__ = "fake"
        self.loaded: list[str] = []

    def load_from_checkpoint(self, path):
        self.loaded.append(path)

        class Model:
            def predict(self, rows, batch_size, gpus, progress_bar):
                scores = [0.5 + 0.01 * len(r["mt"]) for r in rows]
                return types.SimpleNamespace(system_score=sum(scores) / len(scores), scores=scores)

        return Model()


@pytest.mark.skipif("comet" in sys.modules, reason="a real comet module is loaded")
def test_comet_is_loaded_once_per_run(tiny_llama, tmp_path, monkeypatch):
    fake = _FakeComet()
    monkeypatch.setitem(sys.modules, "comet", fake)
    for name in ("comet.ckpt", "kiwi.ckpt"):
        (tmp_path / name).write_bytes(b"")
    cfg = EvalConfig(
        testset=_testset(tmp_path),
        max_sentences=2,
        max_new_tokens=3,
        translation=TranslationConfig(
            directions=["en-de", "de-en"],
            fewshot_k=2,
            comet_model=str(tmp_path / "comet.ckpt"),
            cometkiwi_model=str(tmp_path / "kiwi.ckpt"),
        ),
        report=False,
    )
    systems = {"base": System("base", str(tiny_llama)), "tuned": System("tuned", str(tiny_llama), prompt="chat")}
    m = evaluate(cfg, ModelConfig(dtype="float32", device="cpu"), systems, tmp_path / "out").metrics
    # 2 systems x 2 directions x 2 checkpoints scored, each checkpoint loaded once
    assert sorted(fake.loaded) == [str(tmp_path / "comet.ckpt"), str(tmp_path / "kiwi.ckpt")]
    for per in m["systems"].values():
        for d in ("eng_Latn-deu_Latn", "deu_Latn-eng_Latn"):
            assert per[d]["comet"]["signature"].endswith("|refs:1|comet:fake") and "cometkiwi" in per[d]
