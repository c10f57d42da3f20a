"""Between the asyncio HTTP server and an engine: admission, batching, streaming, cancellation.

Two ways of running an engine, chosen by the engine itself:

* **Blocking engines** (transformers, llama.cpp) run on ONE worker thread; the event loop only queues
  work and relays results. When the worker frees up it takes the oldest job and, if it is a plain
  (non-streaming) generation, every other waiting plain job with the same sampling settings (up to
  ``max_batch_size``) and answers them in one ``generate`` call: concurrent clients share forward passes.
  A stream job iterates ``engine.stream`` on the worker and hands pieces to the event loop.
* **Concurrent engines** (``engine.concurrent``: vLLM's async engine, which batches continuously on its
  own) get every request as its own generation, up to ``max_batch_size`` at once, each an asyncio task
  driving ``engine.astream``/``engine.agenerate``: streams interleave token by token.

In both:

* **Admission.** At most ``max_queue`` requests wait for a free slot; one more raises
  :class:`Overloaded` at once (the server answers 429), so overload is a fast, explicit refusal instead
  of an ever-growing backlog.
* **Queue timeout.** A request that waited ``queue_timeout_s`` without starting raises :class:`Busy`
  (503) rather than hanging its client.
* **Generation timeout.** A plain generation not answered within ``generation_timeout_s`` of its start, or a
  stream silent for that long, raises :class:`GenerationTimeout` (504) and is abandoned: a hung engine
  costs each client one bounded wait, never a hang, and ``/health`` shows it (``stalled``).
* **Every job is answered.** Whatever goes wrong on the worker (the engine raises, returns the wrong number
  of results, the worker's own bookkeeping fails), every job of the batch gets its result or an error; a
  batch that raised is answered again row by row, so one bad request fails alone, not its batch-mates.
* **Cancellation.** :meth:`Job.cancel` (the client went away) drops a waiting job from the queue at once,
  so it never reaches the engine; a running stream stops at its next piece (blocking engines stop
  generating when their iterator is closed), and a concurrent engine's request is cancelled, which aborts
  it inside the engine. A blocking engine's running plain batch cannot be interrupted (its ``generate``
  call has no stop hook): it runs to its end and a gone client's row is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bayling.engines import Engine, GenerationParams

log = logging.getLogger(__name__)

_END = object()


class Overloaded(Exception):
    """The wait queue is full (HTTP 429)."""


class Busy(Exception):
    """The request waited too long, or the server is shutting down (HTTP 503)."""


class GenerationTimeout(Exception):
    """The engine did not answer (or, streaming, produced nothing) within ``generation_timeout_s`` (HTTP 504)."""


class EngineFailure(RuntimeError):
    """The engine broke its contract (wrong number of results) or the worker failed outside the engine."""


def generate_detailed(engine: Engine, conversations: Sequence[Any], params: GenerationParams) -> list[dict[str, Any]]:
    """``engine.generate_detailed`` when the engine has it, else ``generate`` with estimated counts."""
    if hasattr(engine, "generate_detailed"):
        return engine.generate_detailed(conversations, params)
    texts = engine.generate(conversations, params)
    return [{"text": t, "prompt_tokens": 0, "completion_tokens": 0, "finish_reason": "stop"} for t in texts]


class Job:
    """One request in flight: its input, where its results go, and whether its client is still there."""

    def __init__(
        self,
        kind: str,
        conversation: Any,
        params: GenerationParams,
        loop: asyncio.AbstractEventLoop,
        scheduler: Scheduler | None = None,
    ):
        self.kind = kind
        self.conversation = conversation
        self.params = params
        self.loop = loop
        self.enqueued = time.monotonic()
        self.started: asyncio.Future = loop.create_future()
        self.done: asyncio.Future = loop.create_future()
        self.pieces: asyncio.Queue = asyncio.Queue()
        self.cancelled = threading.Event()
        self.task: asyncio.Task | None = None  # the driving task (concurrent engines)
        self._scheduler = scheduler
        self.timeout = scheduler.generation_timeout_s if scheduler is not None else None

    def cancel(self) -> None:
        """Mark the job abandoned: dropped if still waiting, stopped (and aborted in the engine) if running.

        Idempotent, and harmless once the job is done.
        """
        if self.cancelled.is_set():
            return
        self.cancelled.set()
        if self._scheduler is not None:
            self._scheduler._forget(self)
        if self.task is not None and not self.task.done():
            self.task.cancel()

    # Called from the worker thread; everything touching asyncio objects goes through the loop.
    def _call(self, fn: Any, *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            self.cancelled.set()

    def _resolve(self, fut: asyncio.Future, value: Any = None, error: BaseException | None = None) -> None:
        self._call(_settle, fut, value, error)

    def push(self, item: Any) -> None:
        self._call(self.pieces.put_nowait, item)

    async def stream(self) -> AsyncIterator[str]:
        """Yield the pieces of a stream job; raises the engine's error if generation failed, and
        :class:`GenerationTimeout` (cancelling the job) when no piece came for ``timeout`` seconds."""
        while True:
            try:
                item = await asyncio.wait_for(self.pieces.get(), self.timeout)
            except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
                self.cancel()
                if self._scheduler is not None:
                    self._scheduler._count("timed_out_generations")
                raise GenerationTimeout(f"the engine produced nothing for {self.timeout:g} s") from None
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def _as_error(e: BaseException) -> Exception:
    """An exception a waiting coroutine may receive (a ``SystemExit`` raised into it would stop the server)."""
    return e if isinstance(e, Exception) else EngineFailure(f"engine worker error: {type(e).__name__}")


def _settle(fut: asyncio.Future, value: Any = None, error: BaseException | None = None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
        fut.exception()  # retrieved: nobody may be waiting any more, which is not an error worth logging
    else:
        fut.set_result(value)


class Scheduler:
    """Run one engine for many concurrent async requests.

    Args:
        engine: any engine (``generate``/``stream``; ``generate_detailed`` used when present; an engine with
            ``concurrent = True`` and ``astream``/``agenerate`` gets one request per generation).
        max_queue: requests allowed to wait for a free slot.
        max_batch_size: blocking engines: plain requests answered together in one ``generate`` call;
            concurrent engines: requests generating at the same time.
        queue_timeout_s: longest wait before a request is refused with :class:`Busy`.
        generation_timeout_s: longest a plain generation may run (a stream: stay silent) before its client is
            answered :class:`GenerationTimeout`.
    """

    def __init__(
        self,
        engine: Engine,
        max_queue: int = 32,
        max_batch_size: int = 8,
        queue_timeout_s: float = 120.0,
        generation_timeout_s: float = 600.0,
    ):
        self.engine = engine
        self.max_queue = max_queue
        self.concurrent = bool(getattr(engine, "concurrent", False))
        # engines that answer a list one by one anyway (llama.cpp) gain nothing from batching, and their
        # first caller would wait for the whole batch
        # a blocking engine that does not batch answers one request per call; a concurrent one runs up to this many
        self.max_batch_size = max_batch_size if self.concurrent or getattr(engine, "batched", True) else 1
        self.max_running = max_batch_size if self.concurrent else 1
        self.queue_timeout_s = queue_timeout_s
        self.generation_timeout_s = generation_timeout_s
        self._progress_at: float | None = None  # the worker's last sign of life in its current job
        self._cv = threading.Condition()
        self._pending: collections.deque[Job] = collections.deque()
        self._running: set[Job] = set()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.stats: collections.Counter[str] = collections.Counter()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        if not self.concurrent:
            self._thread = threading.Thread(target=self._run, name="bayling-engine", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new work, fail waiting jobs with :class:`Busy`; a blocking engine's running job finishes,
        a concurrent engine's running requests are cancelled (aborted in the engine)."""
        with self._cv:
            self._closed = True
            waiting, self._pending = list(self._pending), collections.deque()
            running = list(self._running) if self.concurrent else []
            self._cv.notify_all()
        for job in waiting:
            if not job.cancelled.is_set():  # an abandoned job has nobody left to tell
                job._resolve(job.started, error=Busy("the server is shutting down"))
        for job in running:
            job.cancel()
        if self._thread is not None:
            self._thread.join(timeout)

    def snapshot(self) -> dict[str, Any]:
        """Queue state and counters, for ``/health``; ``stalled``: the worker's engine call has shown no progress
        (a plain batch: its end; a stream: a piece) for ``generation_timeout_s`` (its clients were answered 504;
        the worker goes on when the engine returns)."""
        with self._cv:
            began = self._progress_at
            return {
                "waiting": len(self._pending),
                "running": len(self._running),
                "busy": bool(self._running),
                "stalled": began is not None and time.monotonic() - began > self.generation_timeout_s,
                "max_queue": self.max_queue,
                "max_running": self.max_running,
                **self.stats,
            }

    # -- submitting (event loop side) --------------------------------------------------------------
    def submit(self, kind: str, conversation: Any, params: GenerationParams) -> Job:
        """Queue a ``generate`` or ``stream`` job, or raise :class:`Overloaded` when the queue is full."""
        job = Job(kind, conversation, params, asyncio.get_running_loop(), self)
        with self._cv:
            if self._closed:
                raise Busy("the server is shutting down")
            free = len(self._running) < self.max_running and not self._pending
            if not free and len(self._pending) >= self.max_queue:
                self.stats["rejected"] += 1
                raise Overloaded(f"server overloaded: {len(self._pending)} requests already waiting; retry shortly")
            self._pending.append(job)
            self._cv.notify()
        if self.concurrent:
            self._start_waiting()
        return job

    async def wait_started(self, job: Job) -> None:
        """Wait until ``job`` starts; raise :class:`Busy` after ``queue_timeout_s``."""
        try:
            await asyncio.wait_for(asyncio.shield(job.started), self.queue_timeout_s)
        except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
            job.cancel()
            with self._cv:
                self.stats["timed_out"] += 1
            raise Busy(f"no capacity within {self.queue_timeout_s:g} s; retry later") from None

    async def generate(self, conversation: Any, params: GenerationParams) -> dict[str, Any]:
        """Answer one conversation (possibly batched with others); see :func:`generate_detailed`.

        Raises :class:`GenerationTimeout` when the answer is not there ``generation_timeout_s`` after the start.
        """
        job = self.submit("generate", conversation, params)
        try:
            await self.wait_started(job)
            try:
                return await asyncio.wait_for(asyncio.shield(job.done), self.generation_timeout_s)
            except (TimeoutError, asyncio.TimeoutError):
                self._count("timed_out_generations")
                raise GenerationTimeout(f"no answer from the engine within {self.generation_timeout_s:g} s") from None
        finally:
            job.cancel()  # no-op once done; if the caller was cancelled, the job is dropped or aborted

    def _count(self, name: str, n: int = 1) -> None:
        with self._cv:
            self.stats[name] += n

    def _alive(self) -> None:
        """The worker's job made progress (see ``stalled`` in :meth:`snapshot`)."""
        with self._cv:
            self._progress_at = time.monotonic()

    def _forget(self, job: Job) -> None:
        """A cancelled job leaves the wait queue at once (it no longer counts against ``max_queue``)."""
        with self._cv:
            try:
                self._pending.remove(job)
            except ValueError:
                return
            self.stats["cancelled"] += 1

    # -- concurrent engines: one asyncio task per request ------------------------------------------
    def _start_waiting(self) -> None:
        while True:
            with self._cv:
                if self._closed or not self._pending or len(self._running) >= self.max_running:
                    return
                job = self._pending.popleft()
                self._running.add(job)
                self.stats["max_running_seen"] = max(self.stats["max_running_seen"], len(self._running))
            _settle(job.started)
            job.task = job.loop.create_task(self._drive(job))

    async def _drive(self, job: Job) -> None:
        try:
            if job.kind == "stream":
                pieces = self.engine.astream(job.conversation, job.params)
                try:
                    async for piece in pieces:
                        job.pieces.put_nowait(piece)
                finally:
                    await pieces.aclose()  # a cancelled stream aborts its engine request here
                job.pieces.put_nowait(_END)
            else:
                _settle(job.done, await self.engine.agenerate(job.conversation, job.params))
            with self._cv:
                self.stats["completed"] += 1
        except asyncio.CancelledError:  # the client went away (or the server is closing): aborted in the engine
            with self._cv:
                self.stats["cancelled_streams" if job.kind == "stream" else "cancelled_running"] += 1
            gone = Busy("the generation was cancelled")
            job.pieces.put_nowait(gone)
            _settle(job.done, error=gone)
        except Exception as e:
            log.exception("generation failed")
            with self._cv:
                self.stats["errors"] += 1
            job.pieces.put_nowait(e)
            _settle(job.done, error=e)
        finally:
            with self._cv:
                self._running.discard(job)
            self._start_waiting()

    # -- blocking engines: the worker thread -------------------------------------------------------
    def _take(self) -> list[Job] | None:
        with self._cv:
            while not self._pending and not self._closed:
                self._cv.wait()
            if not self._pending:
                return None
            first = self._pending.popleft()
            batch = [first]
            if first.kind == "generate":
                for other in list(self._pending):
                    if len(batch) >= self.max_batch_size:
                        break
                    if other.kind == "generate" and other.params == first.params:
                        self._pending.remove(other)
                        batch.append(other)
            self._running.update(batch)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            failure: BaseException | None = None
            try:
                live = [j for j in batch if not j.cancelled.is_set()]
                self._count("cancelled", len(batch) - len(live))
                for j in live:
                    j._resolve(j.started)
                self._alive()
                if live and live[0].kind == "stream":
                    self._run_stream(live[0])
                elif live:
                    self._run_generate(live)
            except BaseException as e:  # never let the worker die: every later request would hang
                log.exception("engine worker error")
                failure = e
            finally:
                # whatever happened above, nobody is left waiting: a job already answered ignores this
                error = _as_error(failure) if failure is not None else EngineFailure("the engine worker lost this job")
                for j in batch:
                    j._resolve(j.started, error=error)
                    j._resolve(j.done, error=error)
                    if j.kind == "stream" and failure is not None:
                        j.push(error)
                with self._cv:
                    self._progress_at = None
                    self._running.difference_update(batch)

    def _run_generate(self, jobs: list[Job]) -> None:
        """Answer ``jobs`` in one engine call; if it fails and there were several, each again on its own."""
        try:
            results = list(generate_detailed(self.engine, [j.conversation for j in jobs], jobs[0].params))
            if len(results) != len(jobs):
                raise EngineFailure(f"the engine returned {len(results)} results for {len(jobs)} conversations")
        except Exception as e:
            if len(jobs) > 1:  # one bad request (or a batch too big for memory) must not fail its batch-mates
                log.warning("a batch of %d failed (%r); answering each on its own", len(jobs), e)
                for j in jobs:
                    if not j.cancelled.is_set():
                        self._run_generate([j])
                return
            log.exception("generation failed")
            self._count("errors")
            jobs[0]._resolve(jobs[0].done, error=e)
            return
        with self._cv:
            self.stats["batches"] += 1
            self.stats["completed"] += len(jobs)
            self.stats["max_batch_seen"] = max(self.stats["max_batch_seen"], len(jobs))
        for j, r in zip(jobs, results, strict=True):
            j._resolve(j.done, r)

    def _run_stream(self, job: Job) -> None:
        pieces = None
        try:
            pieces = self.engine.stream(job.conversation, job.params)
            for piece in pieces:
                if job.cancelled.is_set():
                    with self._cv:
                        self.stats["cancelled_streams"] += 1
                    break
                job.push(piece)
                self._alive()
            else:
                with self._cv:
                    self.stats["completed"] += 1
            job.push(_END)
        except Exception as e:
            log.exception("streaming generation failed")
            with self._cv:
                self.stats["errors"] += 1
            job.push(e)
        finally:
            try:
                close = getattr(pieces, "close", None)
                if close is not None:
                    close()
            finally:
                job._resolve(job.done)
