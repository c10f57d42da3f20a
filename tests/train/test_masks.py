"""The labels TRL actually feeds the model cover exactly the assistant replies (+ stop token), for every format.

Batches come from the real ``SFTTrainer`` dataloader (labels built by TRL from our ``assistant_masks``),
padded, padding-free and BFD-packed. Each example is located in the batch, its trained runs are
decoded, and they must equal ``reply + stop`` for every assistant turn of the multi-turn dialogue.
"""

from __future__ import annotations

import json

import pytest
import torch

from bayling.chat import FORMATS, as_messages, format_for_tokenizer
from bayling.train.config import TrainConfig
from bayling.train.data import tokenize_file
from bayling.train.sft import build_sft_trainer

LAYOUTS = {
    "padded": dict(padding_free=False, packing=False),
    "padding_free": dict(padding_free=True, packing=False),
    "packed_bfd": dict(packing=True, packing_strategy="bfd"),
}


def split_batch(batch: dict) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) of each example in a collated batch, whatever its layout."""
    out = []
    if "position_ids" in batch and "attention_mask" not in batch:  # flattened: examples start where positions reset
        ids, labels, pos = batch["input_ids"][0], batch["labels"][0], batch["position_ids"][0]
        starts = (pos == 0).nonzero().flatten().tolist() + [len(pos)]
        for a, b in zip(starts, starts[1:], strict=False):
            if b - a > 1:  # trailing pad positions come back as length-1 runs of position 0
                out.append((ids[a:b].tolist(), labels[a:b].tolist()))
    else:
        for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], strict=False):
            n = int(mask.sum())
            out.append((ids[:n].tolist(), labels[:n].tolist()))
    return out


def trained_runs(ids: list[int], labels: list[int]) -> list[list[int]]:
    runs, cur = [], []
    for i, lab in zip(ids, labels, strict=False):
        if lab != -100:
            assert lab == i, "a label must be the input token itself (the model shifts internally)"
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    return runs + ([cur] if cur else [])


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("fmt_name", sorted(FORMATS))
def test_fed_labels_are_exactly_the_assistant_spans(
    tiny_llama, tiny_tokenizer, dialogues_file, tmp_path, fmt_name, layout
):
    tok = tiny_tokenizer
    fmt = format_for_tokenizer(fmt_name, tok)
    convs = [json.loads(line)["messages"] for line in dialogues_file.read_text(encoding="utf-8").splitlines()]
    rows = tokenize_file(dialogues_file, tok, fmt, max_length=1024)
    assert max(len(r["input_ids"]) for r in rows) < 1024  # nothing truncated: every example must arrive whole
    by_ids = {tuple(r["input_ids"]): c for r, c in zip(rows, convs, strict=False)}
    assert len(by_ids) == len(convs) and any(sum(m["role"] == "assistant" for m in c) >= 3 for c in convs)

    cfg = TrainConfig(method="full", bf16=False, batch_size=4, max_length=1024, report_to=[], **LAYOUTS[layout])
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    trainer = build_sft_trainer(cfg, model, tok, rows, tmp_path)
    seen = 0
    for batch in trainer.get_train_dataloader():
        if layout == "packed_bfd":
            assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
        for ids, labels in split_batch(batch):
            conv = by_ids[tuple(ids)]  # the example arrives whole and unchanged
            expected = [m.content + fmt.stop for m in as_messages(conv) if m.role == "assistant"]
            got = [tok.decode(run) for run in trained_runs(ids, labels)]
            assert got == expected
            seen += 1
    assert seen == len(convs)


def test_truncation_keeps_the_start_and_masks_only_what_remains(tiny_tokenizer, dialogues_file):
    fmt = format_for_tokenizer("gemma", tiny_tokenizer)
    full = tokenize_file(dialogues_file, tiny_tokenizer, fmt, max_length=4096)
    cut = tokenize_file(dialogues_file, tiny_tokenizer, fmt, max_length=40)
    assert all(len(r["input_ids"]) <= 40 for r in cut) and len(cut) <= len(full)
    prefixes = {tuple(f["input_ids"][:40]): f["assistant_masks"][:40] for f in full}
    for c in cut:  # every kept row is the start of its full row, with the mask cut at the same place
        assert prefixes[tuple(c["input_ids"])] == c["assistant_masks"] and 1 in c["assistant_masks"]
    assert sum(len(f["input_ids"]) > 40 for f in full) > 10


def test_rows_without_any_assistant_token_in_budget_are_dropped(tiny_tokenizer, tmp_path):
    from bayling.errors import DataError

    p = tmp_path / "long_prompt.jsonl"
    p.write_text(
        json.dumps({"messages": [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]})
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match="no example has an assistant turn within max_length=16"):
        tokenize_file(p, tiny_tokenizer, "gemma", max_length=16)
    p.write_text('{"messages": [{"role": "assistant", "content": "x"}]}\n{"text": 1}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"long_prompt.jsonl:1: .*expected 'user'"):
        tokenize_file(p, tiny_tokenizer, "gemma", max_length=64)
    p.write_text(
        '{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}\n'
        '{"text": "no messages"}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"long_prompt.jsonl:2: expected a 'messages' list"):
        tokenize_file(p, tiny_tokenizer, "gemma", max_length=64)


def test_padded_and_padding_free_batches_hold_the_same_examples_in_the_same_order(
    tiny_llama, tiny_tokenizer, dialogues_file, tmp_path
):
    """Padding-free (our default) changes only the layout: same examples per step as the padded recipe."""
    from transformers import AutoModelForCausalLM

    rows = tokenize_file(dialogues_file, tiny_tokenizer, "gemma", max_length=512)
    orders = {}
    for layout in ("padded", "padding_free"):
        cfg = TrainConfig(method="full", bf16=False, batch_size=4, report_to=[], **LAYOUTS[layout])
        trainer = build_sft_trainer(
            cfg, AutoModelForCausalLM.from_pretrained(tiny_llama), tiny_tokenizer, rows, tmp_path / layout
        )
        torch.manual_seed(0)
        orders[layout] = [[tuple(ids) for ids, _ in split_batch(b)] for b in trainer.get_train_dataloader()]
    assert orders["padded"] == orders["padding_free"]
    assert sum(len(b) for b in orders["padded"]) == len(rows)
