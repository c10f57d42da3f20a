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
  and once half the batch has left, the next prompts are started and merged into it (continuous batching);
* optionally (``loop_span``), a row caught in a greedy loop ends once the loop spans ``loop_span`` tokens and is
  written out to its limit by repeating it (:func:`ends`): not exact where the model would have left its loop,
  which ``bench/eval_throughput.py`` counts; off unless asked for (the evaluation asks, ``eval.translation``).

Exactness: the layout is the one ``model.generate`` builds (left padding, position ids ``cumsum(mask) - 1``, causal
and sliding-window masks in cache-slot space), so the arithmetic is the same up to the rounding of differently
shaped matrix products; greedy outputs match ``model.generate`` in float32 (``tests/engines/test_decode.py`` pins
it on a tiny model across batch sizes; ``bench/eval_throughput.py`` counts the differences on Gemma-3-270M).

Only greedy decoding runs here (sampling goes through ``model.generate``), and only for models whose attention
layers are all full or sliding-window (:func:`supports`); anything else falls back to ``model.generate``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
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


HEAD_CHUNK = 2048
"""Vocabulary rows per block of the fused output layer (:func:`argmax_rows`): a block's logits stay in cache."""

HEAD_MIN_ROWS = 16
"""Fewest rows for which the fused blocks beat one product plus ``argmax`` (measured on 2 cores: at 4-8 rows the
blocks' column-wise maximum costs more than the product saves)."""

_PLAIN_HEADS = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma3_text", "phi3"}
"""Model types whose ``ForCausalLM`` forward is ``lm_head(decoder(...).last_hidden_state)``, nothing after it (no
soft-capping, scaling or bias): for these the next token can be taken from the decoder's last hidden state."""


def argmax_rows(weight: Any, hidden: Any, chunk: int | None = None) -> Any:
    """``(hidden @ weight.T).argmax(-1)`` without materialising the logits: ``weight`` (``[vocab, d]``) in blocks
    of ``chunk`` rows, each block's maximum kept, the first index winning ties as ``argmax`` does.

    On a CPU the output layer is most of a decoding step for a small model with a large vocabulary (Gemma-3-270M:
    640 x 262,144 of its 268M parameters), and the ``argmax`` over ``[rows, 262144]`` logits that left the cache
    costs another quarter of the product at 32 rows (measured on 2 cores: 126 ms product + 30 ms ``argmax``, against
    113 ms for the blocks). Each block is ``weight[block] @ hidden.T``, the weight-first form MKL runs fastest for a
    few rows; its logits are the same dot products (``tests/engines/test_decode.py`` checks the tokens, and
    ``bench/eval_throughput.py`` counts any greedy output that moves).
    """
    import torch

    if hidden.shape[0] < HEAD_MIN_ROWS:
        return torch.mm(weight, hidden.t()).argmax(0)
    chunk = chunk or HEAD_CHUNK
    ht = hidden.t().contiguous()
    best_v, best_i = torch.mm(weight[:chunk], ht).max(0)
    for start in range(chunk, weight.shape[0], chunk):
        v, i = torch.mm(weight[start : start + chunk], ht).max(0)
        better = v > best_v
        best_v = torch.where(better, v, best_v)
        best_i = torch.where(better, i + start, best_i)
    return best_i


SCREEN_CHANNELS = 16
"""Hidden-state channels that :class:`ScreenedHead` carries at about float32 precision in its bf16 product (the
largest of the first states it sees): Gemma-3-270M's final states hold one to a few coordinates of ~100-1,100
against ~5 for the rest, and rounded to bf16 those alone would move a logit by up to ~1.7."""

SCREEN_TOP = 16
"""Tokens per row taken by one ``topk`` of the bf16 logits; a row whose 16th is still a candidate is compared in
full (Gemma-3-270M's 5-shot states: 8 candidates or fewer in 90 % of rows)."""

SCREEN_MAX_CANDIDATES = 64
"""Most tokens per row, on average, that :class:`ScreenedHead` scores again in float32 before it takes the plain
float32 product instead (measured on Gemma-3-270M's 5-shot states: 3.8 on average, 137 at most)."""


class ScreenedHead:
    """The float32 greedy token of each row (``argmax_rows(weight, hidden)``), found through a bf16 product.

    Why: the output layer is the largest product of a decoding step for a small model with a large vocabulary
    (Gemma-3-270M: 640 x 262,144), and on a CPU with native bf16 that product runs ~4x faster in bf16 than in
    float32. bf16 logits alone are not the float32 ones (their argmax differs in 3 % of Gemma's rows,
    ``bench/head_screen.py``), so they only screen: each row's logits are bounded, every token whose bf16 logit
    comes within the bound of the row's best is scored again in float32, and the best of those is the token.

    The bound is rigorous. Rounding a hidden coordinate and a weight to bf16 (unit roundoff ``u = 2^-8``) moves
    their product by at most ``(2u + u^2)`` of it; the :data:`SCREEN_CHANNELS` largest channels are instead split
    into two bf16 parts each (hidden: ``a + b``; weight: ``c + d``, extra columns of the bf16 weight), leaving
    ``~3u^2`` of their product. With Cauchy-Schwarz over the rest, the float32 sum of the product's terms
    (``K 2^-24`` of their magnitudes) and the bf16 rounding of the result (``u`` of it), a row's logits are off by
    at most ``E`` plus ``u`` of their size, and the float32 argmax is among the tokens whose bf16 logit is at least
    ``best - 2E - 2.1u(|best| + 2E)``. Those are rescored as ``hidden . weight[token]`` in float32: the same dot
    products as :func:`argmax_rows`, summed in another order, so a float32 near-tie (a few units in the last place)
    may resolve the other way; ``bench/eval_throughput.py`` counts the outputs that move. The first index wins ties.

    The channels carried in two parts are taken from the first rows seen: correctness does not depend on them (the
    bound covers whatever is left), only the number of tokens rescored. Rows with more than
    :data:`SCREEN_MAX_CANDIDATES` candidates on average, or non-finite states, go through :func:`argmax_rows`.
    """

    U = 2.0**-8

    def __init__(self, weight: Any, channels: int = SCREEN_CHANNELS) -> None:
        self.weight = weight
        self.channels = min(channels, weight.shape[1])
        self.low: Any = None
        self.fallbacks = 0
        self.rescored = 0

    def _prepare(self, hidden: Any) -> None:
        import torch

        w = self.weight
        d = w.shape[1]
        self.split = hidden.abs().amax(0).topk(self.channels).indices.sort().values
        rest = torch.ones(d, dtype=torch.bool, device=w.device)
        rest[self.split] = False
        c = w.to(torch.bfloat16)
        lo = (w[:, self.split] - c[:, self.split].float()).to(torch.bfloat16)
        self.low = torch.cat([c, c[:, self.split], lo], dim=1).contiguous()  # [vocab, d + 2 channels]
        self.rest = rest
        self.w_rest = float(w[:, rest].norm(dim=1).max()) * 1.0001 if rest.any() else 0.0
        self.w_split = float(w[:, self.split].norm(dim=1).max()) * 1.0001
        self.w_all = float(w.norm(dim=1).max()) * 1.0001
        self.terms = self.low.shape[1]

    def __call__(self, hidden: Any) -> Any:
        import torch

        if not bool(torch.isfinite(hidden).all()):
            self.fallbacks += 1
            return argmax_rows(self.weight, hidden)
        if self.low is None:
            self._prepare(hidden)
        u = self.U
        a = hidden.to(torch.bfloat16)
        b = (hidden - a.float()).to(torch.bfloat16)
        s = self.split
        x = torch.cat([a, b[:, s], a[:, s]], dim=1)
        approx = torch.mm(x, self.low.t())  # bf16 [rows, vocab], float32 sums inside
        top_v, top_i = approx.topk(SCREEN_TOP, dim=1)  # one pass: each row's best and its likely candidates
        best = top_v[:, 0].float()
        h_rest = hidden[:, self.rest].norm(dim=1) if self.w_rest else torch.zeros_like(best)
        bound = (
            (2 * u + u * u) * 1.01 * h_rest * self.w_rest
            + 4 * u * u * hidden[:, s].norm(dim=1) * self.w_split
            + 1.1 * self.terms * 2.0**-24 * hidden.norm(dim=1) * self.w_all
        )
        floor = best - 2 * bound - 2.1 * u * (best.abs() + 2 * bound)
        rows, where = (top_v.float() >= floor[:, None]).nonzero(as_tuple=True)
        tokens = top_i[rows, where]
        wide = (top_v[:, -1].float() >= floor).nonzero(as_tuple=True)[0]  # candidates may go past the top few
        if wide.numel():
            keep = ~torch.isin(rows, wide)
            low_floor = (floor[wide] - floor[wide].abs() * 2.0**-7).to(torch.bfloat16)  # rounded down: a superset
            w_rows, w_tokens = (approx[wide] >= low_floor[:, None]).nonzero(as_tuple=True)
            rows, tokens = torch.cat([rows[keep], wide[w_rows]]), torch.cat([tokens[keep], w_tokens])
            if w_rows.numel() > SCREEN_MAX_CANDIDATES * hidden.shape[0]:
                self.fallbacks += 1
                return argmax_rows(self.weight, hidden)
        self.rescored += rows.numel()
        exact = (self.weight[tokens] * hidden[rows]).sum(1)
        n = hidden.shape[0]
        top = torch.full((n,), float("-inf"), dtype=exact.dtype).scatter_reduce(0, rows, exact, "amax")
        best_rows = exact == top[rows]
        first = torch.full((n,), self.weight.shape[0], dtype=tokens.dtype)
        return first.scatter_reduce(0, rows[best_rows], tokens[best_rows], "amin")


def _screen_for(weight: Any) -> ScreenedHead:
    """The :class:`ScreenedHead` of ``weight``, kept on it: its bf16 copy is made once per model, not per call
    (and made again if the weight changes in place)."""
    key = (weight.data_ptr(), weight._version, tuple(weight.shape))
    kept = getattr(weight, "_bayling_screen", None)
    if kept is None or kept[0] != key:
        kept = (key, ScreenedHead(weight))
        weight._bayling_screen = kept
    return kept[1]


class _NextTokens:
    """The greedy next token of each row from one forward pass: ``model(...)``'s logits' ``argmax``, or, on a CPU
    for a model whose head is a plain linear layer (:data:`_PLAIN_HEADS`), the decoder's last hidden state through
    :func:`argmax_rows` (the logits never exist), or, from :data:`HEAD_MIN_ROWS` rows up where ``screen`` holds
    (default: where the CPU multiplies bf16 natively), through :class:`ScreenedHead`."""

    def __init__(self, model: Any, screen: bool | None = None) -> None:
        import torch

        self.model = model
        cfg = getattr(model.config, "text_config", None) or model.config
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        self.fused = (
            getattr(cfg, "model_type", None) in _PLAIN_HEADS
            and type(model).__name__.endswith("ForCausalLM")
            and hasattr(model, "get_decoder")
            and type(head) is torch.nn.Linear  # not a PEFT-wrapped head
            and head.bias is None
            and head.weight.device.type == "cpu"
            and getattr(cfg, "final_logit_softcapping", None) is None
        )
        self.head = head
        self.decoder = model.get_decoder() if self.fused else model
        self.cache_kw = _cache_kwarg(self.decoder)
        if screen is None:  # auto: where the bf16 product is native (elsewhere it is slower than float32)
            from bayling.models import native_bf16

            screen = native_bf16()
        self.screen = (
            _screen_for(head.weight) if screen and self.fused and head.weight.dtype == torch.float32 else None
        )

    def hidden(self, **kwargs: Any) -> Any:
        """Run the decoder only (filling the cache); its output is not needed."""
        if self.fused:
            return self.decoder(use_cache=True, **kwargs).last_hidden_state
        return self.model(use_cache=True, logits_to_keep=1, **kwargs).logits

    def __call__(self, cache: Any, **kwargs: Any) -> Any:
        """Each row's next token, ``[rows]``."""
        kwargs[self.cache_kw] = cache
        if self.fused:
            last = self.decoder(use_cache=True, **kwargs).last_hidden_state[:, -1]
            if self.screen is not None and last.shape[0] >= HEAD_MIN_ROWS:
                return self.screen(last)
            return argmax_rows(self.head.weight, last)
        return self.model(use_cache=True, logits_to_keep=1, **kwargs).logits[:, -1, :].argmax(-1)


def _grow_cache(reserve: int) -> Any:
    """An empty ``DynamicCache`` whose layers are :class:`_GrowLayer` s reserving ``reserve`` slots."""
    from transformers import DynamicCache

    cache = DynamicCache()
    layer = _grow_layer_class()
    cache.layer_class_to_replicate = lambda: layer(reserve)
    return cache


@functools.cache
def _grow_layer_class() -> Any:
    """The :class:`GrowLayer` class (made on first use: it subclasses transformers' ``DynamicLayer``)."""
    from transformers.cache_utils import DynamicLayer

    class GrowLayer(DynamicLayer):
        """A cache layer whose keys and values are views of a buffer with room to grow.

        ``DynamicLayer`` appends a token with ``torch.cat``, copying the whole cache at every step: at 128 rows of a
        5-shot prompt (~800 slots x 18 layers) that is ~0.75 GB a step, and a copy on this kind of CPU runs at a few
        GB/s. Here a token is written in place; a full buffer grows by a quarter (at least ``reserve`` slots).
        Slots past the filled length are never read: the views end there.
        """

        def __init__(self, reserve: int = 0) -> None:
            super().__init__()
            self.reserve = reserve
            self.buf: tuple[Any, Any] | None = None
            self.filled = 0

        def allocate(self, like: Any, rows: int, slots: int) -> None:
            """Zeroed buffers for ``rows`` rows and ``slots`` filled slots (plus the reserve), shaped like ``like``."""
            if not self.is_initialized:
                self.lazy_initialization(like, like)
            shape = (rows, like.shape[1], slots + max(self.reserve, 64, slots // 4), like.shape[3])
            self.buf = (like.new_zeros(shape), like.new_zeros(shape))
            self.set_filled(slots)

        def set_filled(self, filled: int) -> None:
            self.filled = filled
            self.keys, self.values = (b[:, :, :filled] for b in self.buf)

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            n, m = self.filled, key_states.shape[-2]
            if self.buf is None or n + m > self.buf[0].shape[2]:
                old = self.buf
                self.allocate(key_states, key_states.shape[0], n + m)
                if old is not None and n:
                    for new, was in zip(self.buf, old, strict=True):
                        new[:, :, :n] = was[:, :, :n]
            self.buf[0][:, :, n : n + m] = key_states
            self.buf[1][:, :, n : n + m] = value_states
            self.set_filled(n + m)
            return self.keys, self.values

        def batch_select_indices(self, indices: Any, lead: int = 0) -> None:
            """Keep the rows ``indices``, without the first ``lead`` slots (padding in every kept row)."""
            if self.buf is not None:
                self.buf = (self.buf[0][indices, :, lead:], self.buf[1][indices, :, lead:])
                self.set_filled(self.filled - lead)

    return GrowLayer


class StopCheck:
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


LOOP_MIN_REPEATS = 3
"""A loop is a unit repeated at least this many times in a row (with ``span`` tokens: units of <= span/3 tokens)."""


def loop_period(row: Sequence[int], span: int) -> int:
    """The period of the loop ``row`` ends in, or 0: the smallest ``p <= span // LOOP_MIN_REPEATS`` such that the
    last ``span`` tokens repeat a ``p``-token unit (``row[-j] == row[-j - p]`` for ``j`` in ``1..span - p``).

    Why: a base model that cannot write a language often falls into a greedy loop ("saka saka saka ...", Yoruba
    "àwọn àwọn ...") and runs to its token limit: measured on the FLORES experiment, 37 % of the 5-shot base's outputs
    into low-resource targets loop, and each costs 2-3 times a finished row's tokens. Greedy decoding that has
    repeated the same unit over ``span`` tokens almost always keeps repeating it (``bench/eval_throughput.py``
    counts the rows where it did not), so the rest of the row can be written without the model
    (:func:`extend_loop`).
    """
    if span <= 0 or len(row) < span:
        return 0
    tail = row[-span:]
    for p in range(1, span // LOOP_MIN_REPEATS + 1):
        if all(tail[j] == tail[j - p] for j in range(p, span)):
            return p
    return 0


def extend_loop(row: list[int], period: int, limit: int, stop: Callable[[list[int]], bool]) -> list[int]:
    """``row`` continued by repeating its last ``period`` tokens up to ``limit`` tokens, or until ``stop`` holds
    (a stop string that the repetition completes), as greedy decoding that stays in the loop would continue it."""
    unit = row[-period:]
    k = 0
    while len(row) < limit:
        row.append(unit[k % period])
        k += 1
        if stop(row):
            break
    return row


def ends(row: list[int], limit: int, stop: Callable[[list[int]], bool], loop_span: int = 0) -> bool:
    """Whether a greedy row ends with its newest token, and, if it ends in a loop, ``row`` completed in place:
    its limit, a stop token or string (``stop``), or a loop of ``loop_span`` tokens (:func:`loop_period`,
    continued by :func:`extend_loop`). The one rule of every decoding path (:func:`replay`)."""
    if len(row) >= limit or stop(row):
        return True
    period = loop_period(row, loop_span)
    if period:
        extend_loop(row, period, limit, stop)
        return True
    return False


def replay(row: Sequence[int], limit: int, stop: Callable[[list[int]], bool], loop_span: int = 0) -> list[int]:
    """The row :func:`greedy_generate` returns, from the tokens a path without early ends produced (``model.generate``
    runs rows past their stop to the batch's end): its tokens fed through :func:`ends` one at a time, so every
    decoding path gives the same hypothesis under the same rule."""
    out: list[int] = []
    for token in row:
        out.append(token)
        if ends(out, limit, stop, loop_span):
            break
    return out


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
    loop_span: int = 0,
    screen_head: bool | None = None,
) -> list[list[int]]:
    """The greedy continuation of each prompt (token ids), in input order.

    Rows are started in order of length, across groups, and the batch is kept full (:func:`_decode_all`): a
    decoding step of a small model on a CPU reads all the weights whatever the batch, so a wider batch costs less
    per row (measured on 2 cores, Gemma-3-270M's linear layers: 2.6 ms a row at 32 rows, 1.5 at 128), and rows are
    never held back to share a prefix with their batch. Each row takes its own group's prefix from the cache: with
    every row padded to its batch's width, the block computed when rows start is only as long as their longest
    *unshared* part, whatever their prefixes are.

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
        loop_span: a row whose last ``loop_span`` tokens are a loop ends there, written out to its limit by
            repeating the loop (:func:`ends`); 0: every token is computed.
        screen_head: take each row's float32 greedy token through a bf16 product screened by a rigorous bound
            (:class:`ScreenedHead`); ``None``: where this CPU multiplies bf16 natively.
    """
    if any(n < 1 for n in limits):
        raise ValueError(f"every token limit must be >= 1, got {min(limits)}")
    step = _NextTokens(_core(model), screen_head)
    check = StopCheck(set(stop_ids), stop_strings, tokenizer)
    device = next(step.model.parameters()).device
    shared: dict[int, tuple[int, list[tuple[Any, Any]]]] = {}  # prompt -> (its prefix length, that prefix's cache)
    loose: list[int] = []
    for length, members in prefix_groups(prompts, min_prefix):
        if not length:
            loose = members
            continue
        kv = _prefix_cache(step, prompts[members[0]][:length], device)
        shared.update((i, (length, kv)) for i in members)
    out: list[list[int]] = [[] for _ in prompts]
    reserve = min(max(limits), 256)  # slots each cache keeps free for new tokens (it grows past them if needed)
    _decode_all(step, prompts, limits, shared, loose, out, check, pad_id, batch_size, reserve, progress, loop_span)
    return out


@dataclass
class _Rows:
    """Rows being decoded together: their cache and mask (``width`` slots, left-padded), the position of each row's
    last token, the token each row feeds next, and which prompt each row is (``None`` once it has stopped: a
    stopped row stays in the batch, computing nothing anyone reads, until the rows are compacted)."""

    cache: Any
    mask: Any
    last: Any
    nxt: Any
    index: list[int | None]

    @property
    def live(self) -> int:
        return sum(i is not None for i in self.index)

    def compact(self) -> None:
        """Drop the stopped rows, and the leading slots that are padding in every row left (one copy of the cache).

        Without the second part a batch that is refilled for a whole evaluation would only widen: each step adds a
        slot, each merge pads the new rows to the batch's width, and attention and every cache copy would pay for
        slots no row reads. Dropping slots that every row masks moves all of a row's slots alike (positions are
        explicit, the sliding window counts slots between a query and a key): what each token attends to is
        unchanged."""
        import torch

        keep = [j for j, i in enumerate(self.index) if i is not None]
        if len(keep) == len(self.index):
            return
        sel = torch.tensor(keep, device=self.mask.device)
        mask = self.mask[sel]
        lead = int((mask.cumsum(-1) == 0).sum(-1).min())
        for layer in self.cache.layers:
            layer.batch_select_indices(sel, lead)
        self.mask, self.last, self.nxt = mask[:, lead:], self.last[sel], self.nxt[sel]
        self.index = [self.index[j] for j in keep]


COMPACT_EVERY = 16
"""Stopped rows leave the batch once they are 1/16 of it: dropping a row copies the whole cache (~0.75 GB at 128
rows of a 5-shot prompt), so rows that stop in the same few steps leave together; at most 1/16 of a step's rows
compute for nothing."""


def _decode_all(
    step: _NextTokens,
    prompts: Sequence[Sequence[int]],
    limits: Sequence[int],
    shared: dict[int, tuple[int, list[tuple[Any, Any]]]],
    loose: list[int],
    out: list[list[int]],
    check: StopCheck,
    pad_id: int,
    batch_size: int,
    reserve: int,
    progress: Callable[[int], None] | None,
    loop_span: int = 0,
) -> None:
    """Decode every prompt, keeping the batch full: stopped rows leave (:data:`COMPACT_EVERY`), and once a quarter
    of the batch is free, the next prompts (by length, rows with a shared prefix first) are started in a batch of
    their own and merged into the running one. Merging left-pads the narrower of the two, which moves all of a
    row's slots alike: what each token attends to, sliding window included, is unchanged."""
    import torch

    queue = [i for part in (sorted(shared), loose) for i in sorted(part, key=lambda i: (len(prompts[i]), i))]
    active: _Rows | None = None
    refill_at = batch_size - max(1, batch_size // 4)

    def take(nxt: Any, rows: _Rows) -> _Rows | None:
        """Each live row's next token; rows that stop are marked (and reported to ``progress``)."""
        rows.nxt = nxt
        stopped = 0
        for j, (i, token) in enumerate(zip(rows.index, nxt.tolist(), strict=True)):
            if i is None:
                continue
            out[i].append(token)
            if ends(out[i], limits[i], check, loop_span):
                rows.index[j] = None
                stopped += 1
        if progress is not None and stopped:
            progress(stopped)
        live = rows.live
        if not live:
            return None
        if (len(rows.index) - live) * COMPACT_EVERY >= len(rows.index):
            rows.compact()
        return rows

    while queue or active is not None:
        n = 0 if active is None else active.live
        if queue and n <= refill_at:
            head = queue[0] in shared  # a start never mixes rows with and without a shared prefix
            new = [i for i in queue[: batch_size - n] if (i in shared) == head]
            queue = queue[len(new) :]
            rows, nxt = _start(step, [prompts[i] for i in new], [shared.get(i) for i in new], pad_id, reserve)
            rows.index = list(new)
            started = take(nxt, rows)
            if started is not None:
                if active is None:
                    active = started
                else:
                    active.compact()
                    started.compact()
                    active = _merge(active, started, reserve)
            continue
        assert active is not None
        active.mask = torch.cat([active.mask, active.mask.new_ones((len(active.index), 1))], dim=-1)
        active.last = active.last + 1
        nxt = step(
            active.cache, input_ids=active.nxt[:, None], attention_mask=active.mask, position_ids=active.last[:, None]
        )
        active = take(nxt, active)


def _merge(a: _Rows, b: _Rows, reserve: int) -> _Rows:
    """One set of rows from two, the narrower left-padded to the wider's width (one copy of each cache)."""
    import torch

    width = max(a.mask.shape[1], b.mask.shape[1])

    def pad(t: Any, dim: int) -> Any:
        missing = width - t.shape[dim]
        if not missing:
            return t
        shape = list(t.shape)
        shape[dim] = missing
        return torch.cat([t.new_zeros(shape), t], dim=dim)

    cache = _grow_cache(reserve)
    n_a = len(a.index)
    for la, lb in zip(a.cache.layers, b.cache.layers, strict=True):
        layer = cache.layer_class_to_replicate()
        layer.allocate(la.keys, n_a + len(b.index), width)  # zeroed: the pad slots stay 0
        for buf, x, y in zip(layer.buf, (la.keys, la.values), (lb.keys, lb.values), strict=True):
            buf[:n_a, :, width - x.shape[2] : width] = x
            buf[n_a:, :, width - y.shape[2] : width] = y
        cache.layers.append(layer)
    return _Rows(
        cache,
        torch.cat([pad(a.mask, 1), pad(b.mask, 1)], dim=0),
        torch.cat([a.last, b.last]),
        torch.cat([a.nxt, b.nxt]),
        a.index + b.index,
    )


def _prefix_cache(step: _NextTokens, prefix: Sequence[int], device: Any) -> list[tuple[Any, Any]]:
    """Keys and values of every layer for ``prefix`` (batch 1, positions 0..n-1), each ``[1, heads, n, dim]``."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()  # full-length layers: the masks, not the cache, apply the sliding window
    ids = torch.tensor([list(prefix)], device=device)
    step.hidden(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        position_ids=torch.arange(ids.shape[1], device=device)[None],
        **{step.cache_kw: cache},
    )
    return [(layer.keys, layer.values) for layer in cache.layers]


def _start(
    step: _NextTokens,
    rows: Sequence[Sequence[int]],
    prefixes: Sequence[tuple[int, list[tuple[Any, Any]]] | None],
    pad_id: int,
    reserve: int,
) -> tuple[_Rows, Any]:
    """Run new rows' prompts, left-padded as ``model.generate`` pads a batch; their rows and first tokens.

    Row ``b`` (``p_b`` pads, then its prompt) holds its prefix token ``t`` at cache slot ``p_b + t``. The block
    computed starts at ``start = min_b(p_b + P_b)`` (``P_b``: the row's cached prefix, short of its last token),
    the latest slot before which every row's slots are padding or cached prefix; a row whose prefix runs past
    ``start`` computes that part again, as part of the block.
    """
    import torch

    device = next(step.model.parameters()).device
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
    cache = _grow_cache(reserve + width - start)  # room for the block and the new tokens: no regrowth
    if start > 0:
        layers = next(pre[1] for pre in prefixes if pre)
        for keys, _ in layers:
            layer = cache.layer_class_to_replicate()
            layer.allocate(keys, n_rows, start)  # zeroed: pad slots stay 0
            for b, (p, pre) in enumerate(zip(pads, prefixes, strict=True)):
                if pre and start > p:  # slots p..start-1 hold this row's prefix tokens 0..start-p-1
                    layer.buf[0][b, :, p:start] = pre[1][len(cache.layers)][0][0, :, : start - p]
                    layer.buf[1][b, :, p:start] = pre[1][len(cache.layers)][1][0, :, : start - p]
            cache.layers.append(layer)
    nxt = step(cache, input_ids=ids[:, start:], attention_mask=mask, position_ids=positions[:, start:])
    return _Rows(cache, mask, positions[:, -1], None, []), nxt
