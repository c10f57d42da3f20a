"""Resumable teacher-LLM requests over any OpenAI-compatible endpoint.

Every request has a deterministic id (a hash of model, sampling settings and messages). A finished
request (its text, token usage and validation verdict) is appended to a JSONL journal and flushed
before anything else happens, so after a crash, ``kill -9`` or Ctrl-C the next run answers it from the
journal: nothing finished is asked again (no double cost) and nothing is lost. Requests are sent with
bounded concurrency and retried with exponential backoff (``Retry-After`` honoured) on 429, 5xx,
timeouts and connection errors; other errors (400, 401, 404) fail at once with the server's message.
Identical requests in flight at the same time are sent once.

Run as part of a build (``data.teacher.examples > 0``) or alone::

    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 bayling data teacher configs/data/teacher-demo.yaml
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bayling.data.config import TeacherConfig
from bayling.digest import digest
from bayling.endpoint import connection
from bayling.errors import require
from bayling.resume import Journal


def request_id(model: str, messages: list[dict[str, str]], temperature: float, max_tokens: int) -> str:
    """The deterministic key of a request in the journal."""
    request = {"model": model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
    return digest(request, size=32, ensure_ascii=False)


class TeacherJournal(Journal):
    """The journal of finished teacher requests (:class:`bayling.resume.Journal`, strict: a damaged line other
    than a torn last one names ``file:line``, because silently dropping a paid-for response is worse than
    stopping), counting the tokens every journaled request used."""

    def __init__(self, path: str | Path) -> None:
        self.tokens = {"prompt_tokens": 0, "completion_tokens": 0}
        super().__init__(path, key="id", strict=True)

    def _remember(self, entry: dict[str, Any]) -> None:
        if entry["id"] not in self.entries:
            for k in self.tokens:
                self.tokens[k] += int(entry.get("usage", {}).get(k, 0))
        super()._remember(entry)

    def cost(self, cfg: TeacherConfig) -> float:
        """USD spent on every journaled request (prices from ``cfg``)."""
        t = self.tokens
        return (
            t["prompt_tokens"] / 1e6 * cfg.price_input_per_mtok
            + t["completion_tokens"] / 1e6 * cfg.price_output_per_mtok
        )


class TeacherFailed(Exception):
    """A request that still failed after every retry (or failed in a way retrying cannot fix)."""


class BudgetReached(Exception):
    """``max_cost_usd`` is spent; no new requests are sent."""


def make_client(cfg: TeacherConfig) -> Any:
    """An ``openai.AsyncOpenAI`` for the configured endpoint, with the SDK's own retries off (ours count)."""
    openai = require("openai", "data")
    base_url, key = connection(cfg, "data.teacher")
    return openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=cfg.timeout_s)


class Teacher:
    """Asks the teacher, through the journal; ``validate(text) -> reason | None`` judges each response."""

    def __init__(self, cfg: TeacherConfig, journal: TeacherJournal, client: Any = None) -> None:
        self.cfg = cfg
        self.journal = journal
        self.client = client or make_client(cfg)
        self.sem = asyncio.Semaphore(cfg.concurrency)
        self.inflight: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.sent = 0
        self.retries = 0
        self.rng = random.Random()  # jitter only; never affects content

    async def ask(
        self, messages: list[dict[str, str]], validate: Callable[[str], str | None], job: str
    ) -> dict[str, Any]:
        """The journal entry for ``messages`` (``status`` ok/invalid, ``text``), asking the teacher if needed."""
        cfg = self.cfg
        rid = request_id(cfg.model, messages, cfg.temperature, cfg.max_tokens)
        done = self.journal.get(rid)
        if done is not None:
            return done
        if rid in self.inflight:
            return await asyncio.shield(self.inflight[rid])
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.inflight[rid] = fut
        try:
            text, usage = await self._call(messages)
            reason = validate(text)
            entry = {"id": rid, "job": job, "status": "invalid" if reason else "ok", "text": text, "usage": usage}
            if reason:
                entry["reason"] = reason
            self.journal.add(entry)
            fut.set_result(entry)
            return entry
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved: a lone waiter-less failure must not warn at shutdown
            raise
        finally:
            del self.inflight[rid]

    async def _call(self, messages: list[dict[str, str]]) -> tuple[str, dict[str, int]]:
        openai = require("openai", "data")
        cfg = self.cfg
        last: Exception | None = None
        for attempt in range(cfg.max_retries + 1):
            if attempt:
                self.retries += 1
            try:
                async with self.sem:
                    if cfg.max_cost_usd is not None and self.journal.cost(cfg) >= cfg.max_cost_usd:
                        raise BudgetReached(f"max_cost_usd={cfg.max_cost_usd} reached")
                    self.sent += 1
                    resp = await self.client.chat.completions.create(
                        model=cfg.model, messages=messages, temperature=cfg.temperature, max_tokens=cfg.max_tokens
                    )
                if not resp.choices or resp.choices[0].message.content is None:
                    raise TeacherFailed("response has no message content")
                usage = resp.usage
                return resp.choices[0].message.content, {
                    "prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
                    "completion_tokens": getattr(usage, "completion_tokens", 0) or 0,
                }
            except (
                openai.RateLimitError,
                openai.InternalServerError,
                openai.APITimeoutError,
                openai.APIConnectionError,
            ) as e:
                last = e
                if attempt == cfg.max_retries:
                    break
                await asyncio.sleep(self._delay(attempt, e))
            except openai.APIStatusError as e:  # 4xx other than 429: retrying will not help
                raise TeacherFailed(f"HTTP {e.status_code} from the teacher endpoint: {e.message}") from None
        raise TeacherFailed(f"gave up after {cfg.max_retries} retries: {type(last).__name__}: {last}")

    def _delay(self, attempt: int, err: Exception) -> float:
        response = getattr(err, "response", None)
        after = response.headers.get("retry-after") if response is not None else None
        if after:
            try:
                return min(float(after), self.cfg.max_backoff_s)
            except ValueError:
                pass
        base = self.cfg.backoff_s * (2**attempt)
        return min(self.cfg.max_backoff_s, base * (0.5 + self.rng.random()))
