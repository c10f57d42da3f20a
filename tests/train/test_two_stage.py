"""Two-stage training (config switch ``train.cpt.data``): monolingual continued pre-training, then SFT (ALMA)."""

from __future__ import annotations

import json

import torch

from bayling.models import ModelConfig
from bayling.train import train
from bayling.train.config import CptConfig, TrainConfig

MONO = [
    "Das Wetter ist heute schön und wir gehen in den Park.",
    "Der Zug nach Berlin fährt morgen früh um neun Uhr ab.",
    "今天天气很好，我们明天早上九点在火车站见面。",
    "Wir treffen uns morgen am Bahnhof.",
] * 12


def _lm_loss(model_dir, tokenizer, texts) -> float:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    enc = [torch.tensor([tokenizer.bos_token_id] + tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    with torch.no_grad():
        return sum(model(input_ids=e[None], labels=e[None]).loss.item() for e in enc) / len(enc)


def test_cpt_then_sft_yields_a_merged_model_that_learned_the_monolingual_text(
    tiny_llama, tiny_tokenizer, dialogues_file, tmp_path
):
    mono = tmp_path / "mono.txt"
    mono.write_text("\n".join(MONO) + "\n", encoding="utf-8")
    cfg = TrainConfig(
        method="lora",
        learning_rate=5e-3,
        max_steps=4,
        batch_size=4,
        bf16=False,
        report_to=[],
        cpt=CptConfig(data=str(mono), method="full", learning_rate=1e-2, epochs=6, batch_size=8, max_length=128),
    )
    result = train(cfg, ModelConfig(str(tiny_llama), device="cpu"), dialogues_file, tmp_path / "run")
    final = result.final
    cpt_model = tmp_path / "run" / "cpt" / "model"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert result.summary == summary and result.exports == {}  # the result is what summary.json holds

    # Stage 1 really trained on the monolingual text: its LM loss there dropped well below the base's.
    held = MONO[:4]
    assert _lm_loss(cpt_model, tiny_tokenizer, held) < _lm_loss(tiny_llama, tiny_tokenizer, held) - 0.3
    assert summary["stages"]["cpt"]["documents"] == len(MONO) and summary["stages"]["cpt"]["steps"] >= 6
    # Stage 2 started from stage 1's weights; since consumers load adapters onto the *original* base,
    # the LoRA result is merged into a full model directory.
    sft_adapter = tmp_path / "run" / "sft" / "output"
    assert json.loads((sft_adapter / "bayling_base_model.json").read_text())["base_model"] == str(cpt_model)
    assert (final / "config.json").is_file() and not (final / "adapter_config.json").exists()
    assert summary["steps"] == 4

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([tiny_tokenizer("Das Wetter ist heute schön.")["input_ids"]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(final, dtype=torch.float32)(input_ids=ids).logits
        stacked = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(cpt_model, dtype=torch.float32), sft_adapter
        )(input_ids=ids).logits
    torch.testing.assert_close(merged, stacked, rtol=1e-4, atol=1e-4)

    # A second call finds every stage finished and returns at once without retraining.
    mtime = (final / "model.safetensors").stat().st_mtime
    assert train(cfg, ModelConfig(str(tiny_llama), device="cpu"), dialogues_file, tmp_path / "run").final == final
    assert (final / "model.safetensors").stat().st_mtime == mtime
