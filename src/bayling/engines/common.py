"""What every engine does the same way, written once: the engines subclass these and add only their own generation.

:class:`EngineBase` holds the :class:`~bayling.engines.Engine` methods that only default their parameters and
shape results: ``generate`` (the texts of ``generate_detailed``), ``generate_detailed`` (greedy
:class:`~bayling.engines.GenerationParams` by default) and ``complete`` (cut at the first stop string with
:func:`~bayling.engines.cut_at_stop`). An engine implements ``_answer`` and ``_continue`` for them.

:class:`HFTokenizerEngine` adds what the engines that prompt through a Hugging Face tokenizer (transformers, vLLM)
share: loading the tokenizer with its chat format, stop tokens and reported name, and counting tokens on a
private copy of the tokenizer (:class:`TokenizerCopy`), so the server can count from its own thread while a
generation runs.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bayling.chat import conversation_ids, format_for_tokenizer, stop_token_ids
from bayling.engines import GenerationParams, cut_at_stop


def takes_batch_size(engine_class: type) -> bool:
    """Whether an engine class runs requests in batches of a ``batch_size`` its constructor takes."""
    import inspect

    return "batch_size" in inspect.signature(engine_class.__init__).parameters


Conversations = Sequence[Sequence[dict[str, Any]]]
"""OpenAI-style message lists (``{"role", "content"}``), each ending with a user turn."""
Progress = Callable[[int], None] | None
"""Called with the number of conversations (or prompts) finished, as they finish."""


DEFAULT_BATCH_SIZE = 16
"""Prompts (or scored sequences) per forward batch unless a config says otherwise: the transformers engine's
default, ``eval.batch_size``'s, and the log-likelihood scorers' (``bayling.evaluate.mc``, ``.perplexity``)."""


class EngineBase:
    """The public generation methods of every engine, on top of its ``_answer`` and ``_continue``.

    ``batched`` is derived, never declared: an engine batches by ``batch_size`` exactly when its constructor takes
    ``batch_size`` (the factory passes it only then, and the evaluation's cache keys ``eval.batch_size`` only then,
    since only then can a greedy output depend on it).
    """

    batched: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.batched = takes_batch_size(cls)

    def _answer(
        self, conversations: Conversations, params: GenerationParams, progress: Progress
    ) -> list[dict[str, Any]]:
        """One reply dict per conversation, in input order (see :meth:`generate_detailed`)."""
        raise NotImplementedError

    def _continue(
        self, prompts: Sequence[str], params: GenerationParams, stop: list[str], progress: Progress
    ) -> list[str]:
        """One raw continuation per prompt, in input order; generation stops at ``stop`` (cut again here)."""
        raise NotImplementedError

    def generate_detailed(
        self, conversations: Conversations, params: GenerationParams | None = None, progress: Progress = None
    ) -> list[dict[str, Any]]:
        """Answer each conversation, with what an OpenAI response reports about each reply.

        Args:
            conversations: OpenAI-style message lists ending with a user turn.
            params: generation parameters (greedy by default).
            progress: called with the number of conversations finished as they finish.

        Returns:
            One dict per conversation, in input order: ``text`` (stop string removed, stripped),
            ``prompt_tokens``, ``completion_tokens`` and ``finish_reason`` (``stop`` when the model ended its
            turn, ``length`` when it ran into ``max_new_tokens``).
        """
        return self._answer(conversations, params or GenerationParams(), progress)

    def generate(
        self, conversations: Conversations, params: GenerationParams | None = None, progress: Progress = None
    ) -> list[str]:
        """Answer each conversation; the replies' text in input order (see :meth:`generate_detailed`)."""
        return [r["text"] for r in self.generate_detailed(conversations, params, progress)]

    def complete(
        self,
        prompts: Sequence[str],
        params: GenerationParams | None = None,
        stop: Sequence[str] = ("\n",),
        progress: Progress = None,
    ) -> list[str]:
        """Continue each raw text prompt (no chat template), cut at the first ``stop`` string.

        Returns:
            One continuation per prompt, in input order, without the stop string, stripped.
        """
        texts = self._continue(prompts, params or GenerationParams(), list(stop), progress)
        return [cut_at_stop(text, stop) for text in texts]


class TokenizerCopy:
    """A private copy of a Hugging Face tokenizer, made on first use, lent to one thread at a time.

    Token counts and prompt ids are asked for from the server's threads while a generation runs; a fast
    tokenizer switching padding on and off in two threads at once fails with "Already borrowed", so they use
    this copy instead of the engine's tokenizer.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._copy: Any = None
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[Any]:
        """The copy, held for the ``with`` block."""
        with self._lock:
            if self._copy is None:
                self._copy = copy.deepcopy(self._tokenizer)
            yield self._copy


class HFTokenizerEngine(EngineBase):
    """An engine that prompts through a Hugging Face tokenizer (the transformers and vLLM engines)."""

    def _load_tokenizer(
        self,
        model_path: str | Path,
        adapter: str | Path | None,
        chat_format: str,
        model_name: str | None,
        trust_remote_code: bool,
    ) -> None:
        """Set ``tokenizer``, ``format``, ``stop_ids`` and ``model_name`` (default: the adapter's or model's
        directory name)."""
        from bayling.models import load_tokenizer

        self.tokenizer = load_tokenizer(model_path, trust_remote_code)
        self.format = format_for_tokenizer(chat_format, self.tokenizer)
        self.stop_ids = stop_token_ids(self.format, self.tokenizer)
        self.model_name = model_name or Path(str(adapter or model_path)).name
        self._private = TokenizerCopy(self.tokenizer)

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text`` (special tokens written as text count as one); thread-safe."""
        with self._private.borrow() as tokenizer:
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_prompt_tokens(self, conversation: Sequence[dict[str, Any]]) -> int:
        """Number of tokens of the prompt rendered by :mod:`bayling.chat` for ``conversation``; thread-safe."""
        with self._private.borrow() as tokenizer:
            return len(conversation_ids(conversation, self.format, tokenizer))
