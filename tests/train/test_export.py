"""Export: merged safetensors model == base + adapter; LoRA -> GGUF gives llama.cpp the HF model's greedy output."""

from __future__ import annotations

import json

import pytest
import torch

from bayling.models import ModelConfig
from bayling.train import train
from bayling.train.config import TrainConfig


@pytest.fixture(scope="module")
def tiny_adapter(tiny_llama, dialogues_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("export_run")
    cfg = TrainConfig(
        method="lora", learning_rate=2e-2, max_steps=3, batch_size=8, bf16=False, report_to=[], export=["merged"]
    )
    return train(cfg, ModelConfig(str(tiny_llama), device="cpu"), dialogues_file, out).final


def test_merged_model_equals_base_plus_adapter(tiny_llama, tiny_tokenizer, tiny_adapter):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged_dir = tiny_adapter.parent / "merged"
    summary = json.loads((tiny_adapter.parent / "summary.json").read_text(encoding="utf-8"))
    assert summary["exports"]["merged"] == str(merged_dir)
    assert (merged_dir / "model.safetensors").is_file() and (merged_dir / "tokenizer.json").is_file()
    assert not (merged_dir / "adapter_config.json").exists()
    ids = torch.tensor([tiny_tokenizer("Das Wetter ist heute schön. 今天天气很好。")["input_ids"]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
        plain = base(input_ids=ids).logits
        stacked = PeftModel.from_pretrained(base, tiny_adapter)(input_ids=ids).logits
        merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)(input_ids=ids).logits
    torch.testing.assert_close(merged, stacked, rtol=1e-5, atol=1e-5)
    assert (stacked - plain).abs().max() > 1e-3  # the adapter changes the model, so the check is not vacuous


def test_export_cli_errors_are_one_line(tmp_path, capsys):
    from bayling.train.export import main

    assert main([str(tmp_path), "--gguf", str(tmp_path / "a.gguf")]) == 2
    assert "is not a LoRA adapter directory" in capsys.readouterr().err


@pytest.mark.slow
def test_gguf_adapter_matches_hf_greedy_output_on_gemma(tmp_path):
    """Train a LoRA on the real Gemma-3-270M, convert it with llama.cpp's converter, and compare greedy
    replies: llama.cpp (the embedded Q4_K_M GGUF + GGUF adapter) vs transformers (de-quantised base + PEFT).

    The adapter is trained until it answers its prompts confidently, so the comparison is not at the mercy
    of near-ties that Q4 arithmetic can flip; without the adapter llama.cpp must answer differently.
    """
    pytest.importorskip("llama_cpp")
    from llama_cpp import Llama

    from bayling.chat import format_for_tokenizer, render, stop_token_ids
    from bayling.models import embedded_gguf, load_model, load_tokenizer, resolve_model
    from bayling.train.export import lora_to_gguf

    pairs = [
        ("Good morning.", "Guten Morgen."),
        ("Thank you very much.", "Vielen Dank."),
        ("Where is the station?", "Wo ist der Bahnhof?"),
        ("I like green tea.", "Ich mag grünen Tee."),
    ]
    data = tmp_path / "train.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Translate into German: {en}"},
                {"role": "assistant", "content": de},
            ]
        }
        for en, de in pairs * 4
    ]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    cfg = TrainConfig(
        method="lora",
        lora_r=8,
        lora_alpha=16,
        learning_rate=1e-3,
        max_steps=12,
        batch_size=4,
        max_length=64,
        bf16=True,
        logging_steps=4,
        report_to=[],
        export=["gguf"],
    )
    final = train(cfg, ModelConfig("gemma-3-270m", device="cpu"), data, tmp_path / "run").final
    gguf = tmp_path / "run" / "adapter.gguf"
    assert gguf.is_file() and gguf.stat().st_size > 100_000
    again = lora_to_gguf(final, tmp_path / "again.gguf")  # the standalone entry point gives the same file
    assert again.read_bytes() == gguf.read_bytes()

    base = resolve_model("gemma-3-270m")
    tok = load_tokenizer(base)
    fmt = format_for_tokenizer("auto", tok)
    hf = load_model(base, dtype="float32", device="cpu", adapter=final)
    tuned = Llama(model_path=str(embedded_gguf()), lora_path=str(gguf), n_ctx=256, n_threads=2, verbose=False)
    plain = Llama(model_path=str(embedded_gguf()), n_ctx=256, n_threads=2, verbose=False)
    results = []
    for en, de in pairs:
        prompt = render([{"role": "user", "content": f"Translate into German: {en}"}], fmt, add_generation_prompt=True)
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        assert tuned.tokenize(prompt.encode(), add_bos=False, special=True) == ids  # same tokens in both engines
        with torch.no_grad():
            out = hf.generate(
                torch.tensor([ids]), max_new_tokens=16, do_sample=False, eos_token_id=stop_token_ids(fmt, tok)
            )[0, len(ids) :].tolist()
        hf_text = tok.decode(out, skip_special_tokens=True).strip()
        cpp = tuned.create_completion(ids, max_tokens=16, temperature=0.0)["choices"][0][
            "text"
        ].strip()  # stops at EOG
        untuned = plain.create_completion(ids, max_tokens=16, temperature=0.0)["choices"][0]["text"].strip()
        results.append((hf_text, cpp, untuned, de))
    assert all(hf_text == cpp for hf_text, cpp, _, _ in results), results
    assert sum(hf_text == de for hf_text, _, _, de in results) >= 3, results  # the adapter learned its pairs
    assert all(cpp != untuned for _, cpp, untuned, _ in results), results  # and llama.cpp really applied it
