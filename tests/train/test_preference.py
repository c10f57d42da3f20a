"""Preference tuning after SFT (config switch ``train.preference.method``): pairs = reference vs model output."""

from __future__ import annotations

import json

import pytest
import torch

from bayling.chat import format_for_tokenizer, tokenize_conversation
from bayling.models import ModelConfig
from bayling.train import train
from bayling.train.config import PreferenceConfig, TrainConfig


def _load(base, adapter):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter).eval()


@pytest.mark.parametrize("method", ["dpo", "cpo"])
def test_preference_stage_ranks_references_above_own_outputs(
    tiny_llama, tiny_tokenizer, dialogues_file, tmp_path, method
):
    from bayling.engines import GenerationParams
    from bayling.engines.hf import TransformersEngine
    from bayling.train.preference import preference_margin

    cfg = TrainConfig(
        method="lora",
        learning_rate=5e-3,
        max_steps=4,
        batch_size=4,
        bf16=False,
        logging_steps=1,
        report_to=[],
        preference=PreferenceConfig(
            method=method, max_pairs=12, max_new_tokens=12, learning_rate=1e-2, batch_size=4, epochs=3, beta=0.5
        ),
    )
    final = train(cfg, ModelConfig(str(tiny_llama), device="cpu"), dialogues_file, tmp_path).final
    sft_adapter = tmp_path / "sft" / "output"
    assert final == tmp_path / "final" and (final / "adapter_config.json").is_file()
    assert not (final / "ref").exists()  # DPO's frozen reference adapter is not shipped

    pairs = [
        json.loads(x) for x in (tmp_path / "preference" / "pairs.jsonl").read_text(encoding="utf-8").split("\n") if x
    ]
    convs = [json.loads(x)["messages"] for x in dialogues_file.read_text(encoding="utf-8").split("\n") if x]
    assert 2 <= len(pairs) <= 12
    for p in pairs:  # the prompt opens a training dialogue and chosen is that dialogue's reference reply
        assert any(
            c[: len(p["prompt"])] == p["prompt"] and c[len(p["prompt"])]["content"] == p["chosen"] for c in convs
        )
        assert p["rejected"].strip() and p["rejected"] != p["chosen"]
    # rejected is what the SFT model itself writes, greedily
    engine = TransformersEngine(tiny_llama, adapter=sft_adapter, dtype="float32", device="cpu")
    again = engine.generate([p["prompt"] for p in pairs[:3]], GenerationParams(max_new_tokens=12))
    assert again == [p["rejected"] for p in pairs[:3]]

    fmt = format_for_tokenizer("auto", tiny_tokenizer)
    before = preference_margin(_load(tiny_llama, sft_adapter), tiny_tokenizer, fmt, pairs)
    after = preference_margin(_load(tiny_llama, final), tiny_tokenizer, fmt, pairs)
    assert after > before + 1.0, (before, after)
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    stage = summary["stages"]["preference"]
    assert stage["method"] == method and stage["pairs"] == len(pairs) and stage["steps"] == 3 * -(-len(pairs) // 4)
    assert summary["steps"] == 4  # the top-level numbers stay those of SFT (what the pipeline prints)


def test_dpo_sees_exactly_the_rendered_conversation(tiny_llama, tiny_tokenizer):
    """DPO tokenizes through the chat template we install: ids equal bayling.chat's own tokenization."""
    import copy

    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from bayling.chat import jinja_template

    tok = copy.deepcopy(tiny_tokenizer)
    fmt = format_for_tokenizer("auto", tok)
    tok.chat_template = jinja_template(fmt)
    prompt = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Translate: Das Wetter ist schön."},
    ]
    ds = Dataset.from_list(
        [
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": "The weather is nice."}],
                "rejected": [{"role": "assistant", "content": "weather weather"}],
            }
        ]
    )
    args = trl.DPOConfig(output_dir="/tmp/unused", use_cpu=True, report_to=[], max_length=256)
    trainer = trl.DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_llama), args=args, train_dataset=ds, processing_class=tok
    )
    row = trainer.train_dataset[0]
    for key, reply in (("chosen_ids", "The weather is nice."), ("rejected_ids", "weather weather")):
        expected = tokenize_conversation(prompt + [{"role": "assistant", "content": reply}], fmt, tok)["input_ids"]
        assert row["prompt_ids"] + row[key] == expected
