"""A BFD-packed, padding-free batch gives every token the same loss as its example run alone.

This is what "packing without cross-example attention" means: position ids restart per example and the
attention backend (sdpa/eager build a block-diagonal mask from them) keeps examples apart. The control
(positions not reset) must differ, or the check would prove nothing.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bayling.train.config import TrainConfig
from bayling.train.data import tokenize_file
from bayling.train.sft import build_sft_trainer


def per_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """NLL of each next-token label (``labels`` aligned with inputs, -100 = ignored); 0 where ignored."""
    shift_logits, shift_labels = logits[:-1].float(), labels[1:]
    nll = F.cross_entropy(shift_logits, shift_labels.clamp(min=0), reduction="none")
    return torch.where(shift_labels == -100, torch.zeros_like(nll), nll)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_batch_matches_unpacked_examples_token_by_token(
    tiny_llama, tiny_tokenizer, dialogues_file, tmp_path, attn
):
    from transformers import AutoModelForCausalLM

    rows = tokenize_file(dialogues_file, tiny_tokenizer, "gemma", max_length=256)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, attn_implementation=attn, dtype=torch.float32).eval()
    cfg = TrainConfig(method="full", bf16=False, batch_size=4, max_length=256, packing=True, report_to=[])
    trainer = build_sft_trainer(cfg, model, tiny_tokenizer, rows, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    ids, labels, pos = batch["input_ids"][0], batch["labels"][0], batch["position_ids"][0]
    starts = (pos == 0).nonzero().flatten().tolist() + [len(pos)]
    segments = [(a, b) for a, b in zip(starts, starts[1:], strict=False) if b - a > 1]
    assert len(segments) >= 3, "the batch should hold several examples"

    with torch.no_grad():
        packed = model(input_ids=ids[None], position_ids=pos[None]).logits[0]
        control = model(input_ids=ids[None], position_ids=torch.arange(len(ids))[None]).logits[0]
        n_compared = 0
        for a, b in segments:
            alone = model(input_ids=ids[None, a:b]).logits[0]
            expected = per_token_nll(alone, labels[a:b])
            torch.testing.assert_close(per_token_nll(packed[a:b], labels[a:b]), expected, rtol=1e-5, atol=1e-5)
            n_compared += int((labels[a + 1 : b] != -100).sum())
        assert n_compared > 100
        # Without restarting positions the later examples attend to earlier ones: losses change.
        a, b = segments[-1]
        assert not torch.allclose(per_token_nll(control[a:b], labels[a:b]), per_token_nll(packed[a:b], labels[a:b]))


def test_trainer_loss_padded_equals_padding_free_on_the_same_batch(
    tiny_llama, tiny_tokenizer, dialogues_file, tmp_path
):
    """TRL's own loss over one batch is identical whether the batch is padded or flattened without padding."""
    from transformers import AutoModelForCausalLM

    rows = tokenize_file(dialogues_file, tiny_tokenizer, "gemma", max_length=512)
    losses = {}
    for padding_free in (False, True):
        model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).eval()
        cfg = TrainConfig(method="full", bf16=False, batch_size=6, padding_free=padding_free, report_to=[])
        trainer = build_sft_trainer(cfg, model, tiny_tokenizer, rows, tmp_path / str(padding_free))
        batch = next(iter(trainer.get_train_dataloader()))
        assert ("attention_mask" in batch) != padding_free
        with torch.no_grad():
            losses[padding_free] = trainer.compute_loss(trainer.model, batch).item()
    assert losses[False] == pytest.approx(losses[True], rel=1e-6)
