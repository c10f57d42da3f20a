"""Label-only, chunked LM-head loss: logits only where a label is, a few rows of ``[tokens, vocab]`` at a time.

Why: Gemma-3-270M's output layer (640 x 262,144, tied to the input embedding) is 168M of its 268M parameters,
so on CPU the LM head, not the transformer, is what a training step spends its time on. TRL's ``SFTTrainer``
already computes the loss through a fused head (``trl.trainer.utils.add_fused_lm_head``) that never builds the
full logits, but off Triton devices it scores *every* position (prompt tokens included), recomputes the logits
in the backward and upcasts each tile through several fp32 temporaries. With assistant-only labels only the
assistant tokens count, so most of that work is thrown away.

:func:`label_only_logprobs` scores only the labelled positions, ``chunk`` tokens at a time against the whole
vocabulary (one ``[chunk, vocab]`` tile, never ``[tokens, vocab]``), and, like Liger's fused linear
cross-entropy, computes the gradient while the tile is live: two matmuls per token instead of three, no backward
recompute. The per-token log-probability is the one the model's own loss computes (logits in the model's dtype,
softmax in fp32, Gemma-2-style ``final_logit_softcapping`` applied), so the loss is unchanged.

:func:`install_label_only_head` plugs it in where TRL calls its fused head (``model(..., fused_lm_head=True)``)
and returns the same :class:`trl.trainer.utils.FusedCausalLMOutput`, so TRL's ``compute_loss`` keeps doing the
rest exactly as before: normalisation by ``num_items_in_batch`` under gradient accumulation, the
``mean_token_accuracy`` / ``entropy`` metrics (computed here from the same tiles), token counts. Packed,
padding-free batches need nothing extra: TRL's collator already sets the label of each example's first token
to -100, so no token is predicted from the previous example. Where the label-only kernel does not apply
(Triton devices, where TRL's own kernel is already label-only; scaled-logit or MoE models; sharded FSDP/ZeRO-3
heads that need their own gradient; an adapter on the output layer), TRL's head runs unchanged.
"""

from __future__ import annotations

import functools
import logging
import types
from typing import Any

log = logging.getLogger(__name__)

LOGITS_BUDGET = 1 << 25
"""Logits per tile (128 MB in fp32): 128 tokens of Gemma's 262,144-token vocabulary (fewer, larger matmuls
run faster on CPU: 32-token tiles took ~1.4x as long in a micro-benchmark of Gemma's head)."""

_SCALE_ATTRS = ("logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")


def chunk_tokens(vocab: int, budget: int = LOGITS_BUDGET) -> int:
    """Tokens per tile so that a ``[tokens, vocab]`` fp32 tile holds about ``budget`` logits."""
    return max(1, budget // vocab)


def fast_bf16_matmul(device: Any) -> bool:
    """Whether bf16 matrix products run at speed on ``device``: always on a GPU; on a CPU only with native bf16
    instructions (AVX512-BF16/AMX, oneDNN's ``bf16 supported``). Without them the head's ``[32, 262144] @ [262144,
    640]`` product took 27.8 s in bf16 against 0.13 s in fp32 (an AVX2 AMD EPYC, 2 cores;
    ``bench/results/bf16_matmul_cpu.json``), so the head then computes in fp32: the same loss to rounding."""
    from bayling.models import native_bf16

    return device.type != "cpu" or native_bf16()


def _head_tiles(
    hidden: Any,
    weight: Any,
    targets: Any,
    softcap: float | None,
    chunk: int,
    row_scale: Any = None,
    need_hidden_grad: bool = False,
    need_weight_grad: bool = False,
    stats: bool = True,
) -> tuple[Any, ...]:
    """One pass over the labelled rows, ``chunk`` at a time: log-probs, metrics and gradients of the log-probs.

    The gradient of ``log p(target)`` with respect to the logits is ``onehot - softmax``; it is formed in the
    tile buffer and multiplied straight into the hidden (and weight) gradients, scaled per row by ``row_scale``
    (1 when None: the forward stashes unit-upstream gradients; the backward rescales them).

    Returns:
        ``(logprobs, entropy, is_top1, grad_hidden, grad_weight)``: fp32 ``[n]`` log-probs; entropy and
        is_top1 ``[n]`` (None without ``stats``); grad_hidden ``[n, H]`` fp32; grad_weight ``[V, H]`` fp32.
    """
    import torch

    n, vocab = hidden.shape[0], weight.shape[0]
    device = hidden.device
    dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else hidden.dtype
    if dtype == torch.bfloat16 and not fast_bf16_matmul(device):
        dtype = torch.float32
    w = weight.to(dtype)
    h = hidden.to(dtype)
    rows = min(chunk, max(n, 1))
    logits = torch.empty(rows, vocab, device=device, dtype=dtype)  # the matmul's output, in the model's dtype
    fp32 = dtype == torch.float32
    z = logits if fp32 else torch.empty(rows, vocab, device=device, dtype=torch.float32)
    e = torch.empty(rows, vocab, device=device, dtype=torch.float32)
    logprobs = torch.empty(n, device=device, dtype=torch.float32)
    entropy = torch.empty(n, device=device, dtype=torch.float32) if stats else None
    is_top1 = torch.empty(n, device=device, dtype=torch.bool) if stats else None
    grad_hidden = torch.empty(n, h.shape[1], device=device, dtype=torch.float32) if need_hidden_grad else None
    grad_weight = torch.zeros(w.shape, device=device, dtype=torch.float32) if need_weight_grad else None
    with torch.autocast(device.type, enabled=False):
        for start in range(0, n, chunk):
            end = min(start + chunk, n)
            k = end - start
            hc, tc, zk, ek = h[start:end], targets[start:end], z[:k], e[:k]
            torch.mm(hc, w.t(), out=logits[:k])
            if not fp32:
                zk.copy_(logits[:k])
            if softcap is not None:  # Gemma 2: cap * tanh(logits / cap)
                zk.div_(softcap).tanh_().mul_(softcap)
            m = zk.amax(-1)
            target_logit = zk.gather(1, tc[:, None]).squeeze(1)
            zk.sub_(m[:, None])
            torch.exp(zk, out=ek)
            s = ek.sum(-1)
            logprobs[start:end] = target_logit - m - s.log()
            if stats:
                # entropy = log Z - sum p z = log s - sum(e * (z - m)) / s
                dot = torch.bmm(ek.unsqueeze(1), zk.unsqueeze(2)).view(k)
                entropy[start:end] = s.log() - dot / s
                # top-1 like argmax (first maximum): only rows whose target reaches the maximum need a look
                top = target_logit >= m
                idx = top.nonzero().flatten()
                if len(idx):
                    top[idx] = zk[idx].argmax(-1) == tc[idx]
                is_top1[start:end] = top
            if not (need_hidden_grad or need_weight_grad):
                continue
            ar = torch.arange(k, device=device)
            ek[ar, tc] -= s  # e - s*onehot; times -1/s gives onehot - softmax
            scale = -1.0 / s if row_scale is None else -row_scale[start:end].float() / s
            ek.mul_(scale[:, None])
            if softcap is not None:  # d cap*tanh(y/cap) / dy = 1 - tanh^2
                zk.add_(m[:, None]).div_(softcap).square_().neg_().add_(1.0)
                ek.mul_(zk)
            g = ek if fp32 else logits[:k].copy_(ek)
            if need_hidden_grad:
                grad_hidden[start:end] = torch.mm(g, w)
            if need_weight_grad:
                grad_weight.addmm_(ek.t(), hc.float())
    return logprobs, entropy, is_top1, grad_hidden, grad_weight


@functools.cache
def _function() -> Any:
    """The autograd Function, built on first use so that importing this module does not import torch."""
    import torch

    class _LabelOnlyHead(torch.autograd.Function):
        """The hidden-state gradient of each row is stashed in the forward and scaled by its upstream gradient
        in the backward (exact for any upstream gradient). A weight gradient (full fine-tuning) is stashed summed
        over rows, exact when every row has the same upstream gradient (a sum or mean loss, as SFT's); otherwise
        the backward recomputes the tiles with the per-row scales."""

        @staticmethod
        def forward(ctx, hidden, weight, targets, softcap, chunk, stats):
            need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
            lp, ent, top1, gh, gw = _head_tiles(hidden, weight, targets, softcap, chunk, None, need_h, need_w, stats)
            ctx.softcap, ctx.chunk = softcap, chunk
            ctx.hidden_dtype, ctx.weight_dtype = hidden.dtype, weight.dtype
            ctx.save_for_backward(gh, gw, hidden if need_w else None, weight if need_w else None, targets)
            for x in (ent, top1):
                if x is not None:
                    ctx.mark_non_differentiable(x)
            return lp, ent, top1

        @staticmethod
        def backward(ctx, grad_lp, *_):
            gh, gw, hidden, weight, targets = ctx.saved_tensors
            if grad_lp is None:
                return None, None, None, None, None, None
            g = grad_lp.float()
            grad_hidden = (gh * g[:, None]).to(ctx.hidden_dtype) if gh is not None else None
            grad_weight = None
            if gw is not None:
                if g.numel() == 0 or bool((g == g[0]).all()):
                    grad_weight = (gw * (g[0] if g.numel() else 0.0)).to(ctx.weight_dtype)
                else:  # per-row upstream gradients: recompute the tiles with them
                    tiles = _head_tiles(hidden, weight, targets, ctx.softcap, ctx.chunk, g, False, True, False)
                    grad_weight = tiles[4].to(ctx.weight_dtype)
            return grad_hidden, grad_weight, None, None, None, None

    return _LabelOnlyHead


def label_only_logprobs(
    hidden: Any, weight: Any, targets: Any, softcap: float | None = None, chunk: int | None = None, stats: bool = True
) -> tuple[Any, Any, Any]:
    """``log p(target)`` of ``hidden @ weight.T`` for labelled rows only, gradients computed in the forward.

    Args:
        hidden: ``[n, H]`` final hidden states of the labelled positions (after the shift).
        weight: ``[V, H]`` output layer (the input embedding when tied).
        targets: ``[n]`` next-token labels.
        softcap: ``final_logit_softcapping`` (logits become ``cap * tanh(logits / cap)``), None for none.
        chunk: tokens per ``[chunk, V]`` tile (default :func:`chunk_tokens`).
        stats: also return the entropy and whether the target is the argmax (metrics, no gradient).

    Returns:
        ``(logprobs, entropy, is_top1)``, each ``[n]``; the last two None without ``stats``.
    """
    return _function().apply(hidden, weight, targets, softcap, chunk or chunk_tokens(weight.shape[0]), stats)


# ----------------------------------------------------------------------------- TRL integration


def _is_dtensor(t: Any) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without distributed
        return False
    return isinstance(t, DTensor)


def supports_label_only(model: Any) -> str | None:
    """Why the label-only head cannot serve ``model`` (None when it can)."""
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if text is not config:
        return "a multimodal model (its language backbone is not model.base_model)"
    if any(getattr(text, a, None) not in (None, 1.0) for a in _SCALE_ATTRS):
        return "scaled logits (logit_scale and similar)"
    if getattr(text, "num_experts_per_tok", None) or getattr(text, "output_router_logits", False):
        return "a mixture-of-experts model (router auxiliary loss)"
    if model.get_output_embeddings() is None or getattr(model.get_output_embeddings(), "bias", None) is not None:
        return "an output layer with a bias or none at all"
    return None


def install_label_only_head(model: Any, chunk: int | None = None) -> bool:
    """Serve TRL's fused-head calls (``model(..., fused_lm_head=True)``) with :func:`label_only_logprobs`.

    ``model`` is the trainer's model (a PEFT model or a plain causal LM) after ``SFTTrainer.__init__`` added
    TRL's fused head to it. Calls without ``fused_lm_head`` (generation, evaluation through ``logits``) and
    inputs the label-only kernel does not cover go to TRL's head unchanged.

    Returns:
        True when installed; False (with the reason logged) when the model is not supported.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    reason = supports_label_only(base)
    if reason:
        log.info("label-only loss: not used for %s", reason)
        return False
    if "forward" not in vars(base):  # SFTTrainer.__init__ sets TRL's fused forward on the instance
        log.info("label-only loss: not used (TRL's fused LM head is not installed on this model)")
        return False
    trl_forward = base.forward
    softcap = getattr(base.config.get_text_config(), "final_logit_softcapping", None)

    @functools.wraps(trl_forward)
    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        from trl.trainer.utils import FusedCausalLMOutput, maybe_gather_lm_head_ctx

        head = self.get_output_embeddings()
        weight = head.weight
        sharded = _is_dtensor(weight)
        zero3_grad = hasattr(weight, "ds_id") and weight.requires_grad
        adapted = hasattr(head, "base_layer")  # a PEFT adapter on the output layer itself
        triton = weight.device.type in ("cuda", "xpu")  # TRL's Triton kernel there already scores labels only
        if not fused_lm_head or triton or sharded or zero3_grad or adapted:
            return trl_forward(
                *args,
                fused_lm_head=fused_lm_head,
                labels=labels,
                shift_labels=shift_labels,
                num_items_in_batch=num_items_in_batch,
                **kwargs,
            )
        kwargs["use_cache"] = False
        hidden = self.base_model(*args, **kwargs).last_hidden_state
        if shift_labels is None:
            hidden, labels = hidden[:, :-1], labels[:, 1:]
        else:
            labels = shift_labels
        hidden, labels = hidden.to(weight.device), labels.to(weight.device)
        mask = labels != -100
        with maybe_gather_lm_head_ctx(weight):
            lp, ent, top1 = label_only_logprobs(hidden[mask], weight, labels[mask], softcap, chunk)
        # masked_scatter keeps an all-ignored micro-batch connected to the graph (a zero loss, not a failure)
        log_probs = lp.new_zeros(mask.shape).masked_scatter(mask, lp)
        denom = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(
            loss=-log_probs.sum() / denom,
            log_probs=log_probs,
            entropy=ent.new_zeros(mask.shape).masked_scatter(mask, ent),
            is_top1=top1.new_zeros(mask.shape).masked_scatter(mask, top1),
            label_mask=mask,
        )

    base.forward = types.MethodType(forward, base)
    return True
