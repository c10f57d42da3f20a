"""Greedy decoding for the transformers engine at the speed of the hardware: shared prefixes once, no dead rows.

``model.generate`` wastes two things in an evaluation (measured on the FLORES experiment, 2 cores): every few-shot
prompt of a direction re-reads the same ~700-token demonstration prefix, and a batch keeps computing rows that have
stopped until its longest row ends. :func:`greedy_generate` does the same greedy decoding without either waste:

* prompts are grouped by a shared token prefix (:func:`prefix_groups`); a group's prefix is run through the model
  once, at batch 1, and its keys/values are laid into every batch holding a row of that group exactly where the
  plain left-padded path would hold them (row ``b`` with ``p_b`` pads holds prefix token ``t`` at cache slot
  ``p_b + t``), so only the rest of each prompt is computed per row; batches still mix groups (directions), as
  ``model.generate``'s do, since a decoding step costs about as much for a few rows as for a full batch;
* a row leaves the batch, and its cache, the step it stops (a stop token, a stop string, or its own token limit),
  and once half the batch has left, the next prompts are started and merged into it (continuous batching).

Exactness: the layout is the one ``model.generate`` builds (left padding, position ids ``cumsum(mask) - 1``, causal
and sliding-window masks in cache-slot space), so the arithmetic is the same up to the rounding of differently
shaped matrix products; greedy outputs match ``model.generate`` in float32 (``tests/engines/test_decode.py`` pins
it on a tiny model across batch sizes; ``bench/eval_throughput.py`` counts the differences on Gemma-3-270M).

Only greedy decoding runs here (sampling goes through ``model.generate``), and only for models whose attention
layers are all full or sliding-window (:func:`supports`); anything else falls back to ``model.generate``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

MIN_PREFIX = 32
"""Shortest shared prefix (tokens) worth computing once: a chat request's shared head (~15 tokens) is not."""

_SUPPORTED_LAYERS = {"full_attention", "sliding_attention"}


def _core(model: Any) -> Any:
    """The transformers model under a PEFT wrapper (its LoRA layers are inside it, so calling it applies them)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def supports(model: Any) -> bool:
    """Whether :func:`greedy_generate` can drive ``model``: a decoder whose attention layers are all full or
    sliding-window (no linear-attention or recurrent state to lay out) and whose forward takes ``logits_to_keep``."""
    model = _core(model)
    cfg = model.config
    cfg = getattr(cfg, "text_config", None) or cfg
    layer_types = getattr(cfg, "layer_types", None) or ["full_attention"]
    if not set(layer_types) <= _SUPPORTED_LAYERS or getattr(cfg, "is_encoder_decoder", False):
        return False
    params = inspect.signature(model.forward).parameters
    return "logits_to_keep" in params and ("cache" in params or "past_key_values" in params)


def _cache_kwarg(model: Any) -> str:
    """``cache`` (transformers >= 5.25) or ``past_key_values`` (earlier 5.x)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def prefix_groups(prompts: Sequence[Sequence[int]], min_prefix: int = MIN_PREFIX) -> list[tuple[int, list[int]]]:
    """Prompt indices grouped by a shared token prefix: ``[(prefix_length, indices)]``.

    Prompts sorted by their token ids sit next to those they share most with; a run of neighbours sharing at least
    ``min_prefix`` tokens is a group (its prefix: the longest one all of them share, short of each prompt's last
    token, which must be fed to get the first logits). Prompts in no such run form one last group of prefix 0.
    Deterministic: the same prompts give the same groups.
    """
    order = sorted(range(len(prompts)), key=lambda i: (list(prompts[i]), i))
    groups: list[tuple[int, list[int]]] = []
    loose: list[int] = []

    def flush(members: list[int], shared: int) -> None:
        shared = min(shared, min(len(prompts[i]) for i in members) - 1)
        if len(members) >= 2 and shared >= min_prefix:
            groups.append((shared, members))
        else:
            loose.extend(members)

    if not order:
        return []
    members, shared = [order[0]], len(prompts[order[0]])
    for i in order[1:]:
        common = min(shared, _lcp(prompts[members[0]], prompts[i]))
        if common >= min_prefix:
            members.append(i)
            shared = common
        else:
            flush(members, shared)
            members, shared = [i], len(prompts[i])
    flush(members, shared)
    if loose:
        groups.append((0, sorted(loose)))
    return groups


@contextmanager
def _weight_first_head(model: Any) -> Iterator[None]:
    """The output layer computed as ``W @ x^T`` while decoding on a CPU.

    The output layer is most of a decoding step's work for a small model with a large vocabulary (Gemma-3-270M:
    640 x 262,144 of its 268M parameters), and MKL computes ``x @ W^T`` for a few rows far below its peak:
    measured on 2 cores, 247 ms at 32 rows and 138 ms at 4 against 154 ms and 44 ms for ``W @ x^T``, whose results
    were bitwise equal at 1, 16 and 32 rows and equal in every argmax at 4 (``bench/eval_throughput.py`` counts
    any greedy output that moves). GPUs keep the model's own layer.
    """
    import torch

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Linear) or head.weight.device.type != "cpu" or "forward" in vars(head):
        yield
        return

    def forward(x: Any) -> Any:
        flat = x.reshape(-1, x.shape[-1])
        out = torch.mm(head.weight, flat.t()).t()
        if head.bias is not None:
            out = out + head.bias
        return out.reshape(*x.shape[:-1], head.out_features)

    head.forward = forward
    try:
        yield
    finally:
        del head.forward


class _StopCheck:
    """Whether a row's new tokens end its generation: a stop token, or a stop string in their decoded text.

    A stop string is looked for in the decoded last few tokens only (a string of ``n`` characters spans at most
    ``n`` tokens, and a few more cover byte tokens that make one character), so the check costs the same at every
    step; the engine cuts the text at the first stop string afterwards, as ``model.generate``'s rows are.
    """

    def __init__(self, stop_ids: set[int], stop_strings: Sequence[str], tokenizer: Any) -> None:
        self.stop_ids = stop_ids
        self.stop_strings = [s for s in stop_strings if s]
        self.tokenizer = tokenizer
        self.window = 4 * max((len(s) for s in self.stop_strings), default=0) + 4

    def __call__(self, row: list[int]) -> bool:
        if row[-1] in self.stop_ids:
            return True
        if not self.stop_strings:
            return False
        tail = self.tokenizer.decode(row[-self.window :], skip_special_tokens=True)
        return any(s in tail for s in self.stop_strings)


def greedy_generate(
    model: Any,
    prompts: Sequence[Sequence[int]],
    limits: Sequence[int],
    stop_ids: set[int],
    pad_id: int,
    batch_size: int,
    tokenizer: Any = None,
    stop_strings: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    min_prefix: int = MIN_PREFIX,
) -> list[list[int]]:
    """The greedy continuation of each prompt (token ids), in input order.

    Rows are started in order of length, across groups, and the batch is kept full (:func:`_decode_all`): decoding
    a small model on a CPU costs about as much per step at batch 4 as at batch 32 (each step reads all the
    weights), so rows are never held back to share a prefix with their batch. Each row takes its own group's
    prefix from the cache: with every row padded to its batch's width, the block computed when rows start is only
    as long as their longest *unshared* part, whatever their prefixes are.

    Args:
        model: a causal LM for which :func:`supports` holds, in inference mode.
        prompts: token ids of each prompt (at least one token each).
        limits: the most new tokens for each prompt (a row stops there; ``finish_reason`` ``length``).
        stop_ids: token ids that end a row (the stop token is kept in the output, as ``model.generate`` does).
        pad_id: id written in padding slots (masked; never attended to).
        batch_size: rows computed together (a batch only shrinks as its rows stop).
        tokenizer: decodes new tokens for ``stop_strings``.
        stop_strings: strings that end a row when its decoded new text contains one.
        progress: called with the number of prompts finished, as they finish.
        min_prefix: shortest shared prefix computed once (:func:`prefix_groups`).
    """
    if any(n < 1 for n in limits):
        raise ValueError(f"every token limit must be >= 1, got {min(limits)}")
    model = _core(model)
    check = _StopCheck(set(stop_ids), stop_strings, tokenizer)
    cache_kw = _cache_kwarg(model)
    device = next(model.parameters()).device
    shared: dict[int, tuple[int, list[tuple[Any, Any]]]] = {}  # prompt -> (its prefix length, that prefix's cache)
    loose: list[int] = []
    for length, members in prefix_groups(prompts, min_prefix):
        if not length:
            loose = members
            continue
        kv = _prefix_cache(model, prompts[members[0]][:length], cache_kw, device)
        shared.update((i, (length, kv)) for i in members)
    out: list[list[int]] = [[] for _ in prompts]
    with _weight_first_head(model):
        _decode_all(model, prompts, limits, shared, loose, out, check, pad_id, batch_size, cache_kw, progress)
    return out


@dataclass
class _Rows:
    """Rows being decoded together: their cache and mask (``width`` slots, left-padded), the position of each row's
    last token, the token each row feeds next, and which prompt each row is."""

    cache: Any
    mask: Any
    last: Any
    nxt: Any
    index: list[int]

    def keep(self, keep: list[int]) -> None:
        import torch

        sel = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(sel)
        self.mask, self.last, self.nxt = self.mask[sel], self.last[sel], self.nxt[sel]
        self.index = [self.index[j] for j in keep]


def _decode_all(
    model: Any,
    prompts: Sequence[Sequence[int]],
    limits: Sequence[int],
    shared: dict[int, tuple[int, list[tuple[Any, Any]]]],
    loose: list[int],
    out: list[list[int]],
    check: _StopCheck,
    pad_id: int,
    batch_size: int,
    cache_kw: str,
    progress: Callable[[int], None] | None,
) -> None:
    """Decode every prompt, keeping the batch full: rows leave the step they stop, and once half the batch has
    left, the next prompts (by length, rows with a shared prefix first) are started in a batch of their own and
    merged into the running one. Merging left-pads the narrower of the two, which moves all of a row's slots
    alike: what each token attends to, sliding window included, is unchanged."""
    import torch

    queue = [i for part in (sorted(shared), loose) for i in sorted(part, key=lambda i: (len(prompts[i]), i))]
    active: _Rows | None = None

    def take(logits: Any, rows: _Rows) -> _Rows | None:
        """Each row's next token from ``logits``; rows that stop leave (reported to ``progress``)."""
        rows.nxt = logits[:, -1, :].argmax(-1)
        keep = []
        for j, (i, token) in enumerate(zip(rows.index, rows.nxt.tolist(), strict=True)):
            out[i].append(token)
            if not (len(out[i]) >= limits[i] or check(out[i])):
                keep.append(j)
        if progress is not None and len(keep) < len(rows.index):
            progress(len(rows.index) - len(keep))
        if not keep:
            return None
        if len(keep) < len(rows.index):
            rows.keep(keep)
        return rows

    while queue or active is not None:
        n = 0 if active is None else len(active.index)
        if queue and n <= batch_size // 2:
            head = queue[0] in shared  # a start never mixes rows with and without a shared prefix
            new = [i for i in queue[: batch_size - n] if (i in shared) == head]
            queue = queue[len(new) :]
            rows, logits = _start(model, [prompts[i] for i in new], [shared.get(i) for i in new], pad_id, cache_kw)
            rows.index = new
            started = take(logits, rows)
            if started is not None:
                active = started if active is None else _merge(active, started)
            continue
        assert active is not None
        active.mask = torch.cat([active.mask, active.mask.new_ones((len(active.index), 1))], dim=-1)
        active.last = active.last + 1
        logits = model(
            input_ids=active.nxt[:, None],
            attention_mask=active.mask,
            position_ids=active.last[:, None],
            use_cache=True,
            logits_to_keep=1,
            **{cache_kw: active.cache},
        ).logits
        active = take(logits, active)


def _merge(a: _Rows, b: _Rows) -> _Rows:
    """One set of rows from two, the narrower left-padded to the wider's width."""
    import torch
    from transformers import DynamicCache

    width = max(a.mask.shape[1], b.mask.shape[1])

    def pad(t: Any, dim: int) -> Any:
        missing = width - t.shape[dim]
        if not missing:
            return t
        shape = list(t.shape)
        shape[dim] = missing
        return torch.cat([t.new_zeros(shape), t], dim=dim)

    cache = DynamicCache()
    for layer, (la, lb) in enumerate(zip(a.cache.layers, b.cache.layers, strict=True)):
        keys = torch.cat([pad(la.keys, 2), pad(lb.keys, 2)], dim=0)
        values = torch.cat([pad(la.values, 2), pad(lb.values, 2)], dim=0)
        cache.update(keys, values, layer)
    return _Rows(
        cache,
        torch.cat([pad(a.mask, 1), pad(b.mask, 1)], dim=0),
        torch.cat([a.last, b.last]),
        torch.cat([a.nxt, b.nxt]),
        a.index + b.index,
    )


def _prefix_cache(model: Any, prefix: Sequence[int], cache_kw: str, device: Any) -> list[tuple[Any, Any]]:
    """Keys and values of every layer for ``prefix`` (batch 1, positions 0..n-1), each ``[1, heads, n, dim]``."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()  # full-length layers: the masks, not the cache, apply the sliding window
    ids = torch.tensor([list(prefix)], device=device)
    model(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        position_ids=torch.arange(ids.shape[1], device=device)[None],
        use_cache=True,
        logits_to_keep=1,
        **{cache_kw: cache},
    )
    return [(layer.keys, layer.values) for layer in cache.layers]


def _start(
    model: Any,
    rows: Sequence[Sequence[int]],
    prefixes: Sequence[tuple[int, list[tuple[Any, Any]]] | None],
    pad_id: int,
    cache_kw: str,
) -> tuple[_Rows, Any]:
    """Run new rows' prompts, left-padded as ``model.generate`` pads a batch; their rows and first logits.

    Row ``b`` (``p_b`` pads, then its prompt) holds its prefix token ``t`` at cache slot ``p_b + t``. The block
    computed starts at ``start = min_b(p_b + P_b)`` (``P_b``: the row's cached prefix, short of its last token),
    the latest slot before which every row's slots are padding or cached prefix; a row whose prefix runs past
    ``start`` computes that part again, as part of the block.
    """
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    n_rows, width = len(rows), max(len(r) for r in rows)
    pads = [width - len(r) for r in rows]
    ids = torch.full((n_rows, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n_rows, width), dtype=torch.long)
    for b, (row, p) in enumerate(zip(rows, pads, strict=True)):
        ids[b, p:] = torch.tensor(list(row))
        mask[b, p:] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as model.generate: pads are masked anyway
    cached = [min(pre[0], len(r) - 1) if pre else 0 for pre, r in zip(prefixes, rows, strict=True)]
    start = min(p + n for p, n in zip(pads, cached, strict=True))
    cache = DynamicCache()
    if start > 0:
        layers = next(pre[1] for pre in prefixes if pre)
        for layer in range(len(layers)):
            keys, values = layers[layer]
            k = keys.new_zeros((n_rows, keys.shape[1], start, keys.shape[3]))
            v = values.new_zeros((n_rows, values.shape[1], start, values.shape[3]))
            for b, (p, pre) in enumerate(zip(pads, prefixes, strict=True)):
                if pre and start > p:  # slots p..start-1 hold this row's prefix tokens 0..start-p-1
                    k[b, :, p:start] = pre[1][layer][0][0, :, : start - p]
                    v[b, :, p:start] = pre[1][layer][1][0, :, : start - p]
            cache.update(k, v, layer)
    logits = model(
        input_ids=ids[:, start:],
        attention_mask=mask,
        position_ids=positions[:, start:],
        use_cache=True,
        logits_to_keep=1,
        **{cache_kw: cache},
    ).logits
    return _Rows(cache, mask, positions[:, -1], None, []), logits
