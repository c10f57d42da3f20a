"""Generation engines behind one small interface, used by evaluation, chat and the HTTP server.

Every engine takes conversations (lists of ``{"role", "content"}``), turns them into token ids with
:func:`bayling.chat.conversation_ids` (message text as plain text), and returns the assistant's reply.
Engines are looked up by name and imported lazily so that a missing optional extra only matters when that
engine is asked for; they are built in one place, :mod:`bayling.engines.factory` (:func:`load_engine` for a
model reference, :func:`load_run` for a run's trained model); what they do alike is written once in
:mod:`bayling.engines.common`. An engine that runs many requests at once by itself (vLLM's async engine) also sets
``concurrent = True`` and offers ``astream``/``agenerate`` coroutines; the server then gives it one request
per generation instead of a worker thread (:mod:`bayling.serve.scheduler`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from bayling.config import Bound, Count, Positive, Temperature, between, check_bounds
from bayling.engines.factory import ENGINES, engine_class, load_engine, load_run


@dataclass
class GenerationParams:
    """Sampling parameters shared by all engines (greedy by default, for reproducible scores)."""

    max_new_tokens: Positive = 256
    """At least 1: llama.cpp reads ``max_tokens <= 0`` as "until the context is full", and a batch loop asked
    for nothing would return empty hypotheses that score as real ones."""
    temperature: Temperature = 0.0
    top_p: Annotated[float, Bound(0, 1, lo_open=True)] = 1.0
    seed: Annotated[int, between(-(2**63), 2**63 - 1)] | None = None
    """Any signed 64-bit integer (the HTTP API's range); llama.cpp takes its low 32 bits."""
    max_new_tokens_each: tuple[Positive, ...] | None = None
    """A limit per request (in the order of the requests), each at most ``max_new_tokens``; None: ``max_new_tokens``
    for every request. The evaluation scales a translation's limit with its source's length, so a row that rambles
    stops early on every engine alike."""
    loop_span: Count = 0
    """Greedy requests on the transformers engine: a row whose last ``loop_span`` tokens repeat one unit (of at most
    a third of them) ends there and is written out to its limit by repeating the unit, as greedy decoding that stays
    in its loop continues it (:func:`bayling.engines.decode.ends`); 0: every token is computed. The evaluation sets
    it (``eval.translation.loop_span``); other engines decode every token."""

    def __post_init__(self) -> None:
        check_bounds(self)
        # logits / 1e-80 overflow to inf and sampling fails (an HTTP 500); a temperature that small is greedy anyway
        if 0 < self.temperature < 1e-3:
            self.temperature = 0.0
        if self.max_new_tokens_each is not None:
            self.max_new_tokens_each = tuple(min(int(n), self.max_new_tokens) for n in self.max_new_tokens_each)

    def limits(self, n: int) -> list[int]:
        """The token limit of each of ``n`` requests."""
        if self.max_new_tokens_each is None:
            return [self.max_new_tokens] * n
        if len(self.max_new_tokens_each) != n:
            raise ValueError(f"max_new_tokens_each has {len(self.max_new_tokens_each)} limits for {n} requests")
        return list(self.max_new_tokens_each)

    def per_request(self, n: int) -> list[GenerationParams]:
        """One set of parameters per request, each with its own limit as ``max_new_tokens`` (for engines that
        run requests one by one or each with its own sampling parameters)."""
        from dataclasses import replace

        return [replace(self, max_new_tokens=k, max_new_tokens_each=None) for k in self.limits(n)]


class Engine(Protocol):
    """What every engine provides (the server uses the token-counting parts for limits and ``usage``)."""

    model_name: str
    batched: bool
    """True when :meth:`generate` runs several conversations in one forward batch of the ``batch_size`` its
    constructor takes (derived from the constructor by :class:`~bayling.engines.common.EngineBase`)."""

    @property
    def context_length(self) -> int:
        """Longest prompt + reply the model accepts, in tokens."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` (special tokens written as text count as one)."""
        ...

    def count_prompt_tokens(self, conversation: Sequence[dict[str, Any]]) -> int:
        """Tokens of the prompt rendered by :mod:`bayling.chat` for ``conversation``."""
        ...

    def generate_detailed(
        self,
        conversations: Sequence[Sequence[dict[str, Any]]],
        params: GenerationParams | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Like :meth:`generate`, with ``text``, ``prompt_tokens``, ``completion_tokens``, ``finish_reason``."""
        ...

    def generate(
        self,
        conversations: Sequence[Sequence[dict[str, Any]]],
        params: GenerationParams | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Answer each conversation (batched where the engine can); ``progress(n)`` is called as ``n`` more
        conversations are answered. ``params`` default to greedy :class:`GenerationParams`."""
        ...

    def stream(self, conversation: Sequence[dict[str, Any]], params: GenerationParams | None = None) -> Iterator[str]:
        """Yield the reply to one conversation piece by piece."""
        ...

    # -- raw-text completion (few-shot prompts of base models) -----------------------------------------
    def complete(
        self,
        prompts: Sequence[str],
        params: GenerationParams | None = None,
        stop: Sequence[str] = ("\n",),
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Continue each raw text prompt (no chat template; BOS only where the model's tokenizer adds one),
        cut at the first ``stop`` string; see :func:`cut_at_stop`. ``progress`` as in :meth:`generate`."""
        ...


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any ``stop`` string, stripped (what ``complete`` returns).

    Engines also stop generating at ``stop``; cutting the decoded text again makes the result identical
    whether a stop string ended generation or only appeared inside a longer token.
    """
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut].strip()


__all__ = ["ENGINES", "Engine", "GenerationParams", "cut_at_stop", "engine_class", "load_engine", "load_run"]
