"""The chat formats: pinned rendered strings, BOS/EOS exactly once, masks equal to assistant spans."""

from __future__ import annotations

import pytest

from bayling.chat import (
    FORMATS,
    Message,
    format_for_tokenizer,
    get_format,
    jinja_template,
    render,
    render_segments,
    tokenize_conversation,
)
from bayling.errors import BaylingError, ConfigError

CONV = [
    {"role": "user", "content": "Translate into German: Good morning."},
    {"role": "assistant", "content": "Guten Morgen."},
    {"role": "user", "content": "Make it more formal."},
    {"role": "assistant", "content": "Einen schönen guten Morgen."},
]


def test_gemma_render_is_pinned():
    assert render(CONV, "gemma") == (
        "<bos><start_of_turn>user\nTranslate into German: Good morning.<end_of_turn>\n"
        "<start_of_turn>model\nGuten Morgen.<end_of_turn>\n"
        "<start_of_turn>user\nMake it more formal.<end_of_turn>\n"
        "<start_of_turn>model\nEinen schönen guten Morgen.<end_of_turn>\n"
    )
    assert render(CONV[:1], "gemma", add_generation_prompt=True) == (
        "<bos><start_of_turn>user\nTranslate into German: Good morning.<end_of_turn>\n<start_of_turn>model\n"
    )


def test_gemma_merges_system_into_first_user_turn():
    conv = [{"role": "system", "content": "Be brief."}] + CONV[:1]
    assert render(conv, "gemma", add_generation_prompt=True).startswith(
        "<bos><start_of_turn>user\nBe brief.\n\nTranslate into German"
    )


def test_llama3_render_is_pinned_and_keeps_bos():
    conv = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"},
    ]
    assert render(conv, "llama3") == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>"
    )
    # BayLing's own Llama-3 adapter lost <|begin_of_text|>; with a default system line it must still be first.
    assert render(conv[1:2], "bayling3", add_generation_prompt=True).startswith(
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nI am BayLing"
    )


def test_chatml_render_is_pinned():
    assert render(CONV[:2], "chatml") == (
        "<|im_start|>user\nTranslate into German: Good morning.<|im_end|>\n"
        "<|im_start|>assistant\nGuten Morgen.<|im_end|>\n"
    )


def test_bayling_v1_matches_the_released_template():
    # ictnlp/BayLing conversation.py: system + "\n", "### Instruction:\n" + q + "\n", "### Response:\n" + a + "</s>" + "\n"
    assert render(CONV[:2], "bayling_v1") == (
        "<s>I am an intelligent language assistant developed by the NLP Group of ICT/CAS.\n"
        "Below is a dialog consisting of instructions and responses. Write a response that completes the request.\n\n"
        "### Instruction:\nTranslate into German: Good morning.\n### Response:\nGuten Morgen.</s>\n"
    )


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_segments_join_to_render_and_only_replies_are_trained(name):
    segs = render_segments(CONV, name)
    assert "".join(t for t, _ in segs) == render(CONV, name)
    trained = [t for t, k in segs if k]
    stop = get_format(name).stop
    assert trained == ["Guten Morgen." + stop, "Einen schönen guten Morgen." + stop]


@pytest.mark.parametrize("name", ["gemma", "llama3", "chatml", "bayling_v1"])
def test_token_mask_covers_exactly_the_assistant_spans(tiny_tokenizer, name):
    fmt = format_for_tokenizer(name, tiny_tokenizer)
    enc = tokenize_conversation(CONV, fmt, tiny_tokenizer)
    ids, mask = enc["input_ids"], enc["assistant_masks"]
    assert len(ids) == len(mask)
    trained_text = tiny_tokenizer.decode([i for i, m in zip(ids, mask, strict=False) if m])
    assert trained_text == "Guten Morgen." + fmt.stop + "Einen schönen guten Morgen." + fmt.stop
    # training ids are the inference ids: the prompt for turn 2 is a prefix of the training sequence
    prompt = render(CONV[:3], fmt, add_generation_prompt=True)
    prompt_ids = tiny_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids
    # BOS exactly once (formats that have one), never in a trained span
    if fmt.bos:
        assert ids.count(tiny_tokenizer.convert_tokens_to_ids(fmt.bos)) == 1 and ids[
            0
        ] == tiny_tokenizer.convert_tokens_to_ids(fmt.bos)
    stop_id = tiny_tokenizer.convert_tokens_to_ids(fmt.stop)
    # the stop token is trained after each reply (so the model learns to stop), never after a user turn
    assert sum(1 for i, m in zip(ids, mask, strict=False) if i == stop_id and m) == 2


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_jinja_template_equals_render(tiny_tokenizer, name):
    for conv in (CONV, CONV[:3], [{"role": "system", "content": "Sys."}] + CONV):
        gen = conv[-1]["role"] == "user"
        expected = render(conv, name, add_generation_prompt=gen)
        got = tiny_tokenizer.apply_chat_template(
            conv, chat_template=jinja_template(name), tokenize=False, add_generation_prompt=gen
        )
        assert got == expected


def test_bad_conversations_fail_clearly():
    with pytest.raises(BaylingError, match="alternate"):
        render([{"role": "assistant", "content": "x"}], "gemma")
    with pytest.raises(BaylingError, match="unknown chat role"):
        Message("bot", "x")
    with pytest.raises(ConfigError, match="unknown chat format 'gema'"):
        get_format("gema")


def test_auto_format_detection(tiny_tokenizer):
    assert format_for_tokenizer("auto", tiny_tokenizer).name == "gemma"
