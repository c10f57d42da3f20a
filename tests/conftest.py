"""Shared fixtures: a tiny random Llama with a few-kB tokenizer built offline, data locations, and the overrides
that shrink the quickstart's data to a test's size (``tiny_data``).

``tiny_llama`` is a real ``LlamaForCausalLM`` (hidden 16, 2 layers) saved to a temp directory, so
every code path that loads "a Hugging Face model directory" is exercised in seconds with no
download. Its byte-level BPE tokenizer is trained on the fly and knows the special tokens of every
chat format, so each format can be rendered and tokenized exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("BAYLING_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SPECIAL_TOKENS = [
    "<pad>",
    "<s>",
    "</s>",
    "<unk>",
    "<bos>",
    "<eos>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|im_start|>",
    "<|im_end|>",
]


def shared_data() -> Path | None:
    """``../shared/data`` beside the checkout (or ``$BAYLING_SHARED_DATA``); None when absent."""
    env = os.environ.get("BAYLING_SHARED_DATA")
    for p in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if p.is_dir():
            return p
    return None


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    p = shared_data()
    if p is None:
        pytest.skip("../shared/data not present")
    return p


def build_tiny_tokenizer(out_dir: Path, chat_format: str = "gemma"):
    """Train a byte-level BPE (vocab ~600) on a few multilingual lines and save it as a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        "Translate the following English text into Chinese. The weather is nice today.",
        "Übersetze den folgenden Text. Zielsprache: Englisch. Das Wetter ist heute schön.",
        "把下面的英语翻译成中文。今天天气很好。我们明天早上九点在火车站见面。",
        "Make it more formal. Can you make it shorter? Now translate it into German.",
        "Hello world! How are you? 1 2 3 4 5 6 7 8 9 0 , . ; : ? ! \" ' ( ) - _",
    ] * 20
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    bos, eos = {"gemma": ("<bos>", "<eos>"), "llama3": ("<|begin_of_text|>", "<|eot_id|>")}.get(
        chat_format, ("<s>", "</s>")
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token="<pad>", unk_token="<unk>"
    )
    fast.add_special_tokens({"additional_special_tokens": [t for t in SPECIAL_TOKENS if t not in (bos, eos)]})
    fast.save_pretrained(out_dir)
    return fast


def build_tiny_llama(out_dir: Path, chat_format: str = "gemma", seed: int = 0, hidden_size: int = 16) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tiny_tokenizer(out_dir, chat_format)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """Directory of a random tiny Llama whose tokenizer uses Gemma's turn tokens."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def wide_llama(tmp_path_factory) -> Path:
    """The tiny Llama at hidden size 256: wide enough that bf16 matmuls round differently with the batch shape
    (greedy outputs then depend on the batch size, as Gemma's do), still ~2 MB."""
    return build_tiny_llama(tmp_path_factory.mktemp("wide_llama"), hidden_size=256)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


@pytest.fixture(scope="session")
def tiny_engine(tiny_llama):
    """The transformers engine on the tiny random Llama (fp32; CPU, or ``$BAYLING_TEST_DEVICE`` e.g. ``cuda``).

    Used by the engine and serving tests; ``tests/evaluate`` has its own (batched, per module)."""
    from bayling.engines.hf import TransformersEngine

    device = os.environ.get("BAYLING_TEST_DEVICE", "cpu")
    return TransformersEngine(tiny_llama, dtype="float32", device=device, model_name="tiny")


TINY_DATA: dict[str, int] = {"heldout": 6, "interactive": 24, "pairs": 0, "crosslingual": 12, "general": 4}
"""Every count of the data stage's ``data`` section, shrunk so a run finishes in seconds: the one place to add a
count the data stage gains (a count a test leaves out would otherwise come at the preset's full size)."""


def tiny_data_overrides(**counts: int | None) -> list[str]:
    """``data.COUNT=N`` overrides for every count of :data:`TINY_DATA`, ``counts`` replacing some of them.

    Args:
        **counts: a test's own counts (``heldout=4``); None keeps the config's value for that count.

    Example:
        >>> tiny_data_overrides(heldout=None, general=2)
        ['data.interactive=24', 'data.pairs=0', 'data.crosslingual=12', 'data.general=2']
    """
    unknown = set(counts) - set(TINY_DATA)
    if unknown:
        raise TypeError(f"not a data count of TINY_DATA: {', '.join(sorted(unknown))}")
    merged = {**TINY_DATA, **counts}
    return [f"data.{k}={v}" for k, v in merged.items() if v is not None]


@pytest.fixture(scope="session")
def tiny_data():
    """:func:`tiny_data_overrides`: ``tiny_data(heldout=4, interactive=8)`` -> the ``data.*`` overrides."""
    return tiny_data_overrides
