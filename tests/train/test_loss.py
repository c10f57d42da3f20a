"""The label-only chunked LM head gives today's loss, per token and in gradients, without a [tokens, vocab] matrix.

References: the model's own full logits (``model(...).logits``, log-softmax in fp32) per token, and TRL's fused
head (``train.label_only_loss: false``, today's path) for the trainer loss and its gradients.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bayling.train import loss as loss_mod
from bayling.train.config import TrainConfig
from bayling.train.data import tokenize_file
from bayling.train.loss import install_label_only_head, label_only_logprobs
from bayling.train.sft import build_sft_trainer

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- the kernel alone


@pytest.mark.parametrize("softcap", [None, 30.0])
@pytest.mark.parametrize("upstream", ["uniform", "per_row"])
def test_kernel_matches_log_softmax_entropy_argmax_and_gradients(softcap, upstream):
    torch.manual_seed(0)
    n, h, v = 37, 16, 600
    hidden = torch.randn(n, h, requires_grad=True)
    weight = (torch.randn(v, h) * 0.5).requires_grad_()
    targets = torch.randint(0, v, (n,))
    targets[:5] = (hidden[:5] @ weight.t()).argmax(-1)  # some rows predicted right: is_top1 must see them
    g = torch.full((n,), -0.1) if upstream == "uniform" else -torch.rand(n)

    lp, ent, top1 = label_only_logprobs(hidden, weight, targets, softcap, chunk=8)
    (lp * g).sum().backward()
    grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None

    logits = hidden @ weight.t()
    if softcap:
        logits = softcap * torch.tanh(logits / softcap)
    ref = torch.log_softmax(logits, -1)
    ref_lp = ref.gather(1, targets[:, None]).squeeze(1)
    (ref_lp * g).sum().backward()
    torch.testing.assert_close(lp, ref_lp.detach(), rtol=0, atol=1e-5)
    torch.testing.assert_close(ent, -(ref.exp() * ref).sum(-1).detach(), rtol=0, atol=1e-5)
    assert torch.equal(top1, logits.argmax(-1) == targets) and 5 <= int(top1.sum()) < n
    torch.testing.assert_close(grads[0], hidden.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grads[1], weight.grad, rtol=1e-4, atol=1e-6)


def test_top1_counts_a_tie_only_for_the_first_maximum_like_argmax():
    hidden = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    weight = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0], [2.0, 0.0]])  # rows 1 and 3 tie for the maximum
    _, _, top1 = label_only_logprobs(hidden, weight, torch.tensor([1, 3]))
    assert top1.tolist() == [True, False]


@pytest.mark.parametrize("native_bf16", [True, False])
def test_kernel_in_bf16_matches_the_model_head_it_stands_for(native_bf16, monkeypatch):
    """bf16 weights on a CPU with native bf16: logits rounded to bf16 like the model's own head, softmax in fp32.
    Without it (an AVX2 CPU, where bf16 products run ~200x slower: bench/results/bf16_matmul_cpu.json) the head computes in
    fp32: the log-probs of the fp32 head on the same weights."""
    from bayling.train import loss

    monkeypatch.setattr(loss, "fast_bf16_matmul", lambda device: native_bf16)
    torch.manual_seed(0)
    hidden = torch.randn(40, 64).bfloat16().requires_grad_()
    weight = (torch.randn(3000, 64) * 0.1).bfloat16()
    targets = torch.randint(0, 3000, (40,))
    lp, _, _ = label_only_logprobs(hidden, weight, targets, chunk=16)
    lp.sum().backward()
    ours = hidden.grad.clone()
    hidden.grad = None
    logits = (hidden @ weight.t()).float() if native_bf16 else hidden.float() @ weight.float().t()
    ref = torch.log_softmax(logits, -1).gather(1, targets[:, None]).squeeze(1)
    ref.sum().backward()
    torch.testing.assert_close(lp, ref.detach(), rtol=0, atol=1e-5)
    torch.testing.assert_close(ours.float(), hidden.grad.float(), rtol=2e-2, atol=1e-3)
    assert hidden.grad.dtype == ours.dtype == torch.bfloat16


def test_bf16_head_policy_follows_the_cpu():
    from bayling.train.loss import fast_bf16_matmul

    assert fast_bf16_matmul(torch.device("cpu")) == torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert fast_bf16_matmul(torch.device("cuda"))  # a GPU keeps bf16


def test_a_microbatch_without_labels_gives_a_zero_loss_with_a_gradient(tiny_llama, tiny_tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    rows = [{"input_ids": [1, 5, 6, 7], "assistant_masks": [0, 0, 0, 1]}] * 2
    cfg = TrainConfig(method="full", bf16=False, report_to=[])
    trainer = build_sft_trainer(cfg, model, tiny_tokenizer, rows, tmp_path)
    ids = torch.tensor([[1, 5, 6, 7]])
    out = trainer.model(input_ids=ids, labels=torch.full_like(ids, -100), fused_lm_head=True)
    out.loss.backward()
    assert out.loss.item() == 0.0 and out.label_mask.sum() == 0


# ----------------------------------------------------------------------------- inside the SFT trainer


def _trainer(tiny_llama, tokenizer, rows, tmp_path, method, packing, label_only, chunk=None):
    """``method`` ``full_tied``: full fine-tuning with the output layer tied to the input embedding (as Gemma's)."""
    from transformers import AutoModelForCausalLM

    tied = method == "full_tied"
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    if tied:
        model.config.tie_word_embeddings = True
        model.lm_head.weight = model.model.embed_tokens.weight
    method = "full" if tied else method
    cfg = TrainConfig(
        method=method,
        bf16=False,
        batch_size=4,
        max_length=256,
        packing=packing,
        padding_free=packing,
        lora_dropout=0.0,
        label_only_loss=label_only and chunk is None,
        report_to=[],
    )
    trainer = build_sft_trainer(cfg, model, tokenizer, rows, tmp_path / f"{method}{packing}{label_only}")
    if label_only and chunk is not None:
        assert install_label_only_head(trainer.model, chunk=chunk)
    return trainer


def _reference_logprobs(model, batch):
    """Per-token log p(label) from the model's full logits, at the labelled positions."""
    keys = ("input_ids", "attention_mask", "position_ids")
    logits = model(**{k: batch[k] for k in keys if k in batch}).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    lp = torch.log_softmax(logits, -1).gather(2, labels.clamp(min=0)[..., None])[..., 0]
    return lp[labels != -100]


@pytest.mark.parametrize(
    ("method", "packing"),
    [("full", False), ("full", True), ("lora", False), ("lora", True), ("full_tied", True)],
    ids=["full-padded", "full-packed", "lora-padded", "lora-packed", "full_tied-packed"],
)
def test_label_only_loss_equals_the_full_loss_per_token_and_in_gradients(
    tiny_llama, tiny_tokenizer, dialogues_file, tmp_path, method, packing
):
    rows = tokenize_file(dialogues_file, tiny_tokenizer, "gemma", max_length=256)
    ours = _trainer(tiny_llama, tiny_tokenizer, rows, tmp_path, method, packing, True)
    today = _trainer(tiny_llama, tiny_tokenizer, rows, tmp_path, method, packing, False)
    batch = next(iter(ours.get_train_dataloader()))
    assert ("attention_mask" in batch) != packing
    if packing:  # TRL's collator: no example's first token is predicted from the previous example
        assert len((batch["position_ids"][0] == 0).nonzero()) >= 3
        assert (batch["labels"][batch["position_ids"] == 0] == -100).all()

    out = ours.model(**batch, fused_lm_head=True)
    mask = out.label_mask
    assert 50 < int(mask.sum()) < mask.numel()  # assistant-only: some positions carry no label
    with torch.no_grad():
        ref = _reference_logprobs(ours.model, batch)
    torch.testing.assert_close(out.log_probs[mask], ref, rtol=0, atol=1e-5)

    grads = {}
    for name, trainer in (("ours", ours), ("today", today)):
        trainer.model.train()
        loss = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=int(mask.sum()) * 2)
        loss.backward()
        params = {n: p for n, p in trainer.model.named_parameters() if p.requires_grad}
        grads[name] = (loss.item(), {n: p.grad.clone() for n, p in params.items()})
        metrics = {k: v[-1] for k, v in trainer._metrics["train"].items() if k != "num_tokens"}
        grads[name] += (metrics,)
    (loss_ours, g_ours, m_ours), (loss_today, g_today, m_today) = grads["ours"], grads["today"]
    assert loss_ours == pytest.approx(loss_today, rel=1e-6)
    assert loss_ours == pytest.approx(-ref.sum().item() / (int(mask.sum()) * 2), rel=1e-6)  # num_items_in_batch
    assert g_ours.keys() == g_today.keys() and len(g_ours) >= (5 if method == "lora" else 20)
    for n in g_ours:
        torch.testing.assert_close(g_ours[n], g_today[n], rtol=1e-4, atol=1e-7, msg=n)
    assert m_ours["mean_token_accuracy"] == pytest.approx(m_today["mean_token_accuracy"], abs=1e-6)
    assert m_ours["entropy"] == pytest.approx(m_today["entropy"], rel=1e-5)


class _VocabTensors(TorchDispatchMode):
    """Records, for every tensor an aten op produces, how many ``vocab``-wide rows it holds."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab, self.max_rows, self.calls = vocab, 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.calls += 1
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and self.vocab in t.shape:
                self.max_rows = max(self.max_rows, t.numel() // self.vocab)
        return out


@pytest.mark.parametrize("method", ["full", "lora"])
def test_no_tensor_holds_more_than_a_chunk_of_vocab_rows(tiny_llama, tiny_tokenizer, dialogues_file, tmp_path, method):
    """Forward and backward of a packed batch: nothing as large as [tokens, vocab], only 4-row tiles (and the
    [vocab, hidden] weight and its gradient). TRL's head on CPU, today's path, builds [tokens, vocab] tiles."""
    rows = tokenize_file(dialogues_file, tiny_tokenizer, "gemma", max_length=256)
    seen = {}
    for label_only in (True, False):
        trainer = _trainer(tiny_llama, tiny_tokenizer, rows, tmp_path, method, True, label_only, chunk=4)
        batch = next(iter(trainer.get_train_dataloader()))
        vocab, hidden = trainer.model.config.vocab_size, trainer.model.config.hidden_size
        tokens = batch["input_ids"].numel()
        assert tokens > 10 * hidden and vocab not in (tokens, tokens - 1)
        with _VocabTensors(vocab) as spy:
            trainer.compute_loss(trainer.model, batch).backward()
        assert spy.calls > 100
        seen[label_only] = spy.max_rows
    assert seen[True] <= max(4, hidden)  # 4-token tiles; the weight [vocab, hidden]
    assert seen[False] >= tokens - 1  # the control: today's head does build [tokens, vocab]


def test_unsupported_models_keep_trls_head(tiny_llama, tiny_tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    model.config.logit_scale = 0.5
    cfg = TrainConfig(method="full", bf16=False, report_to=[])
    rows = [{"input_ids": [1, 5, 6, 7], "assistant_masks": [0, 0, 1, 1]}] * 2
    trainer = build_sft_trainer(cfg, model, tiny_tokenizer, rows, tmp_path)
    assert loss_mod.supports_label_only(model) == "scaled logits (logit_scale and similar)"
    assert not install_label_only_head(trainer.model)


# ----------------------------------------------------------------------------- a real `bayling train`


def test_bayling_train_gives_the_same_loss_curve_with_the_switch_on_and_off(
    tiny_llama, tiny_data, tmp_path, monkeypatch
):
    from bayling.cli import main

    calls = []
    real = loss_mod._head_tiles
    monkeypatch.setattr(loss_mod, "_head_tiles", lambda *a, **k: calls.append(a[0].shape[0]) or real(*a, **k))
    curves = {}
    for switch in ("true", "false"):
        run_dir = tmp_path / switch
        overrides = [
            f"run_dir={run_dir}",
            f"model.name_or_path={tiny_llama}",
            "model.dtype=float32",
            *tiny_data(heldout=6, interactive=24, crosslingual=12, general=4),
            "train.max_steps=4",
            "train.batch_size=1",
            "train.grad_accum=2",
            "train.packing=true",
            "train.bf16=false",
            "train.lora_dropout=0.0",
            "train.learning_rate=0.01",
            "train.logging_steps=1",
            "train.report_to=[]",
            f"train.label_only_loss={switch}",
        ]
        n_calls = len(calls)
        assert main(["train", str(REPO / "configs" / "quickstart.yaml"), *overrides]) == 0
        summary = json.loads((run_dir / "train" / "summary.json").read_text(encoding="utf-8"))
        curves[switch] = [h["loss"] for h in summary["log_history"] if "loss" in h]
        assert (len(calls) > n_calls) == (switch == "true")  # the label-only head ran only when switched on
    assert len(curves["true"]) == 4 and curves["true"][0] != curves["true"][-1]
    assert curves["true"] == pytest.approx(curves["false"], rel=1e-5)


@pytest.mark.parametrize("native_bf16", [True, False])
def test_lora_trains_bf16_weights_only_where_bf16_runs_fast(native_bf16, monkeypatch):
    """On a CPU without native bf16 every bf16 product is ~200x slower: LoRA then loads fp32 weights."""
    from bayling.train import loss
    from bayling.train.model import pretrained_kwargs

    monkeypatch.setattr(loss, "fast_bf16_matmul", lambda device: native_bf16)
    want = torch.bfloat16 if native_bf16 else torch.float32
    assert pretrained_kwargs("lora", True, "cpu")["dtype"] == want
    assert pretrained_kwargs("lora", False, "cpu")["dtype"] == torch.float32


@pytest.mark.parametrize("native_bf16", [True, False])
def test_the_preference_stage_samples_in_bf16_only_where_bf16_runs_fast(
    native_bf16, monkeypatch, tiny_llama, translation_data, tmp_path
):
    """``train.bf16`` once made the offline variant sample its pairs in bf16 on an AVX2 CPU: a run's 512 samples
    did not finish in 13 minutes. The engine now gets the dtype training gets."""
    from bayling.models import ModelConfig
    from bayling.train import loss, preference, train
    from bayling.train.config import PreferenceConfig
    from bayling.train.model import generation_dtype

    monkeypatch.setattr(loss, "fast_bf16_matmul", lambda device: native_bf16)
    assert generation_dtype(True, "cpu") == ("bfloat16" if native_bf16 else "float32")
    assert generation_dtype(False, "cpu") == "float32"
    seen = []
    real = preference._engine

    def engine(model_path, adapter, chat_format, device, dtype, trust_remote_code):
        seen.append(dtype)
        return real(model_path, adapter, chat_format, device, dtype, trust_remote_code)

    monkeypatch.setattr(preference, "_engine", engine)
    cfg = TrainConfig(
        method="lora", bf16=True, max_steps=1, batch_size=2, report_to=[], lora_r=4, lora_alpha=8,
        preference=PreferenceConfig(
            method="dpo", pairs="sampled", samples=2, temperature=1.0, max_pairs=2, max_new_tokens=4, max_steps=1
        ),
    )  # fmt: skip
    train(cfg, ModelConfig(str(tiny_llama), device="cpu"), translation_data, tmp_path, seed=0)
    assert seen == ["bfloat16" if native_bf16 else "float32"]
