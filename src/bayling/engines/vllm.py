"""The vLLM engine (GPU; optional extra ``pip install 'bayling[vllm]'``): continuous batching.

vLLM's async engine (``vllm.v1.engine.async_llm.AsyncLLM``; ``vllm.AsyncLLMEngine`` in versions without
v1, which has the same ``generate``/``abort``) schedules every request as its own sequence and batches
whatever is running at each step, so the server hands it requests as they arrive: eight concurrent
streams are eight requests in flight at once, interleaving token by token, not eight turns on a lock.

The async engine belongs to the event loop it first runs on, and this engine is used both by the
server's loop and from plain threads (evaluation, ``bayling chat``), so it lives on a private loop in a
daemon thread; calls are sent there with :func:`asyncio.run_coroutine_threadsafe`:

* :meth:`VLLMEngine.astream` / :meth:`VLLMEngine.agenerate`: awaitable from any event loop (the server's);
  one vLLM request each. When the caller goes away (the stream is closed, the task cancelled) the
  request is aborted with ``abort(request_id)``, which frees its KV-cache blocks at once.
* :meth:`VLLMEngine.stream` / :meth:`VLLMEngine.generate_detailed`: blocking wrappers; a list of
  conversations is sent as concurrent requests.

Prompts are token ids from :func:`bayling.chat.conversation_ids` (tokenized here with the model's HF
tokenizer; message text as plain text), never vLLM's chat templates, so the server prompts exactly as
training did and a user cannot forge control tokens. A LoRA adapter directory (PEFT format, what
``bayling train`` writes) is served with ``enable_lora``. ``max_model_len`` defaults to the model's own
context length.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from bayling.chat import conversation_ids
from bayling.engines import GenerationParams
from bayling.engines.common import Conversations, HFTokenizerEngine, Progress
from bayling.errors import ModelError, require

log = logging.getLogger(__name__)

_END = object()
"""What a request's stream gets after its last piece (a failed request's gets the error instead)."""


def _last(item: Any) -> bool:
    """Whether a stream ``item`` ends the stream (``_END`` or the request's error)."""
    return item is _END or isinstance(item, BaseException)


def _async_engine_class(vllm: Any) -> Any:
    """vLLM v1's ``AsyncLLM``, or the older ``AsyncLLMEngine`` where there is no v1 engine."""
    try:
        from vllm.v1.engine.async_llm import AsyncLLM

        return AsyncLLM
    except ImportError:
        return vllm.AsyncLLMEngine


class VLLMEngine(HFTokenizerEngine):
    """Generate with vLLM's async engine (continuous batching on one or more GPUs).

    Args:
        model_path: HF model directory.
        adapter: optional PEFT LoRA adapter directory.
        chat_format: format name or ``auto``.
        dtype: ``bfloat16``, ``float16``, ``float32`` or ``auto``.
        device: kept for config compatibility; vLLM needs a GPU (``cpu`` is refused with a clear error).
        model_name: the name reported to clients.
        gpu_memory_utilization: fraction of GPU memory vLLM may take (weights + KV cache).
        max_model_len: context window; default (None): the model's own (``max_position_embeddings``).
        tensor_parallel_size: GPUs to shard the model over.
        max_lora_rank: largest LoRA rank to accept when an adapter is given.
        seed: sampling seed used when a request gives none.
        trust_remote_code: let vLLM and transformers run the model's own code (``model.trust_remote_code``).
    """

    concurrent = True
    """Requests run as separate generations at the same time (the server does not serialise them)."""

    def __init__(
        self,
        model_path: str | Path,
        adapter: str | Path | None = None,
        chat_format: str = "auto",
        dtype: str = "bfloat16",
        device: str = "auto",
        model_name: str | None = None,
        gpu_memory_utilization: float = 0.5,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        max_lora_rank: int = 64,
        seed: int = 0,
        trust_remote_code: bool = False,
    ) -> None:
        if device == "cpu":
            raise ModelError("the vLLM engine runs on GPUs; use --engine transformers or llamacpp on CPU")
        vllm = require("vllm", "vllm")
        self._vllm = vllm
        self._load_tokenizer(model_path, adapter, chat_format, model_name, trust_remote_code)
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(adapter))
        self.seed = seed
        args = vllm.AsyncEngineArgs(
            model=str(model_path),
            tokenizer=str(model_path),
            dtype=dtype,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            enable_lora=adapter is not None,
            max_lora_rank=max_lora_rank,
            disable_log_stats=True,
            trust_remote_code=trust_remote_code,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bayling-vllm", daemon=True)
        self._thread.start()
        engine_class = _async_engine_class(vllm)

        async def start() -> Any:  # on the engine's loop, which its output handler will belong to
            return engine_class.from_engine_args(args)

        try:
            self.llm = self._call(start())
        except BaseException:
            self._stop_loop()
            raise

    # -- the private event loop --------------------------------------------------------------------
    def _call(self, coro: Any) -> Any:
        """Run ``coro`` on the engine's loop and wait for its result (from any thread but that loop's)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def close(self) -> None:
        """Shut vLLM down (its engine process and GPU memory) and stop the private loop."""
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            stop = getattr(self.llm, "shutdown", None) or getattr(self.llm, "shutdown_background_loop", None)
            if stop is not None:
                stop()

        try:
            self._call(shutdown())
        finally:
            self._stop_loop()

    # -- sizes and counts --------------------------------------------------------------------------
    @property
    def context_length(self) -> int:
        """The context window vLLM was started with (the model's own unless ``max_model_len`` was given)."""
        config = getattr(self.llm, "model_config", None) or self.llm.engine.model_config
        return int(config.max_model_len)

    def prompt_ids(self, conversation: Sequence[dict[str, Any]]) -> list[int]:
        """The prompt's token ids (thread-safe; message text as plain text)."""
        with self._private.borrow() as tokenizer:
            return conversation_ids(conversation, self.format, tokenizer)

    def _sampling(self, params: GenerationParams, stop: list[str] | None = None) -> Any:
        return self._vllm.SamplingParams(
            stop=stop,
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p if params.temperature > 0 else 1.0,
            seed=self.seed if params.seed is None else params.seed,
            stop_token_ids=self.stop_ids,
            skip_special_tokens=True,
        )

    # -- one request, on the engine's loop ---------------------------------------------------------
    async def _request(
        self,
        ids: list[int],
        params: GenerationParams,
        request_id: str,
        emit: Callable[[str], None] | None,
        stop: list[str] | None = None,
    ) -> dict[str, Any]:
        """Run one vLLM request; ``emit`` gets each new piece of text. Returns the finished reply."""
        sent, last = 0, None
        async for out in self.llm.generate(
            {"prompt_token_ids": ids}, self._sampling(params, stop), request_id, lora_request=self.lora
        ):
            last = out
            if emit is None:
                continue
            text = out.outputs[0].text  # cumulative (vLLM's default output kind)
            piece = text[sent:]
            if sent == 0:  # the reply's leading whitespace, like generate()'s strip()
                piece = piece.lstrip()
            if piece:
                sent = len(text)
                emit(piece)
        if last is None:
            raise ModelError(f"vLLM returned nothing for request {request_id}")
        o = last.outputs[0]
        return {
            "text": o.text.strip(),
            "prompt_tokens": len(ids),
            "completion_tokens": len(o.token_ids),
            "finish_reason": "length" if o.finish_reason == "length" else "stop",
        }

    async def _abort(self, request_id: str, running: Future) -> None:
        """Abort a request whose caller went away, and stop the coroutine that was reading it."""
        try:
            await self.llm.abort(request_id)
        except Exception:  # already finished, or the engine is shutting down
            log.debug("abort of %s failed", request_id, exc_info=True)
        running.cancel()

    def _submit(
        self,
        ids: list[int],
        params: GenerationParams,
        emit: Callable[[Any], None] | None,
        stop: list[str] | None = None,
    ) -> tuple[str, Future]:
        """Start one request on the engine's loop; with ``emit``, its pieces then ``_END`` (or the error)."""
        request_id = f"bayling-{uuid.uuid4().hex}"

        async def run() -> dict[str, Any]:
            try:
                result = await self._request(ids, params, request_id, emit, stop)
            except Exception as e:
                if emit is not None:
                    emit(e)
                raise
            if emit is not None:
                emit(_END)
            return result

        return request_id, asyncio.run_coroutine_threadsafe(run(), self._loop)

    def _abort_soon(self, request_id: str, running: Future) -> Future:
        """Abort ``request_id`` (from any thread; returns at once)."""
        return asyncio.run_coroutine_threadsafe(self._abort(request_id, running), self._loop)

    def _end_stream(self, item: Any, request_id: str, running: Future) -> None:
        """After a stream's last ``item``: raise the request's error, or abort the request when the reader
        left before its end (the stream closed, the task cancelled)."""
        if isinstance(item, BaseException):
            raise item
        if item is not _END:
            self._abort_soon(request_id, running)

    def _results(self, jobs: list[tuple[str, Future]], progress: Progress) -> list[dict[str, Any]]:
        """Wait for the submitted requests' replies, in order, ``progress(1)`` after each; the requests
        still running when the wait is interrupted are aborted (free the GPU for whoever comes next)."""
        results = []
        try:
            for _, running in jobs:
                results.append(running.result())
                if progress is not None:
                    progress(1)
        finally:
            for request_id, running in jobs:
                if not running.done():
                    self._abort_soon(request_id, running)
        return results

    # -- for the server's event loop ---------------------------------------------------------------
    async def astream(
        self, conversation: Sequence[dict[str, Any]], params: GenerationParams | None = None
    ) -> AsyncIterator[str]:
        """Yield pieces of one reply as vLLM produces them; closing/cancelling it aborts the request."""
        caller = asyncio.get_running_loop()
        pieces: asyncio.Queue = asyncio.Queue()
        ids = await asyncio.to_thread(self.prompt_ids, conversation)  # a long prompt must not stall the loop
        request_id, running = self._submit(
            ids,
            params or GenerationParams(),
            lambda item: caller.call_soon_threadsafe(pieces.put_nowait, item),
        )
        item: Any = None
        try:
            while not _last(item := await pieces.get()):
                yield item
        finally:
            self._end_stream(item, request_id, running)

    async def agenerate(
        self, conversation: Sequence[dict[str, Any]], params: GenerationParams | None = None
    ) -> dict[str, Any]:
        """One reply (dict as in :meth:`generate_detailed`); cancelling the caller aborts the request."""
        ids = await asyncio.to_thread(self.prompt_ids, conversation)
        request_id, running = self._submit(ids, params or GenerationParams(), None)
        try:
            return await asyncio.wrap_future(running)
        except asyncio.CancelledError:
            self._abort_soon(request_id, running)
            raise

    # -- blocking API (evaluation, bayling chat) ---------------------------------------------------
    def _answer(
        self, conversations: Conversations, params: GenerationParams, progress: Progress
    ) -> list[dict[str, Any]]:
        """All conversations as concurrent vLLM requests."""
        each = params.per_request(len(conversations))
        return self._results(
            [self._submit(self.prompt_ids(c), p, None) for c, p in zip(conversations, each, strict=True)], progress
        )

    def stream(self, conversation: Sequence[dict[str, Any]], params: GenerationParams | None = None) -> Iterator[str]:
        """Yield pieces of one reply (blocking); closing the iterator aborts the request."""
        pieces: queue.Queue = queue.Queue()
        request_id, running = self._submit(self.prompt_ids(conversation), params or GenerationParams(), pieces.put)
        item: Any = None
        try:
            while not _last(item := pieces.get()):
                yield item
        finally:
            self._end_stream(item, request_id, running)

    # -- raw-text completion (few-shot prompts of base models; no chat template) -------------------------
    def _continue(
        self, prompts: Sequence[str], params: GenerationParams, stop: list[str], progress: Progress
    ) -> list[str]:
        """All prompts as concurrent vLLM requests.

        Token ids come from the tokenizer with its own special tokens (``add_special_tokens=True``: BOS
        where the model's tokenizer adds one), as in the transformers engine.
        """
        with self._private.borrow() as tokenizer:
            ids = [tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
        each = params.per_request(len(ids))
        running = [self._submit(x, p, None, stop=stop) for x, p in zip(ids, each, strict=True)]
        return [r["text"] for r in self._results(running, progress)]
