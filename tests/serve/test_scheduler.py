"""The scheduler between the event loop and a blocking engine: errors, timeouts, shutdown (tiny real engine)."""

from __future__ import annotations

import asyncio

import pytest

from bayling.engines import GenerationParams
from bayling.errors import BaylingError
from bayling.serve.scheduler import Busy, Overloaded, Scheduler

MSG = [{"role": "user", "content": "Translate the following English text into German.\nThe weather is nice today."}]


def run(coro):
    return asyncio.run(coro)


BAD = [{"role": "wizard", "content": "Hello"}]


def test_engine_errors_reach_the_caller_and_the_worker_survives(tiny_engine):
    async def main():
        s = Scheduler(tiny_engine)
        s.start()
        try:
            # a role the chat format does not know: the engine raises while building the prompt
            job = s.submit("stream", BAD, GenerationParams(max_new_tokens=3))
            await s.wait_started(job)
            with pytest.raises(BaylingError, match="unknown chat role"):
                [p async for p in job.stream()]
            with pytest.raises(BaylingError, match="unknown chat role"):
                await s.generate(BAD, GenerationParams(max_new_tokens=3))
            r = await s.generate(MSG, GenerationParams(max_new_tokens=3))
            assert r["completion_tokens"] == 3
        finally:
            s.close()
        return s.snapshot()

    snap = run(main())
    assert snap["errors"] == 2 and snap["completed"] == 1 and not snap["busy"]


def test_queue_timeout_and_overload(tiny_engine):
    async def main():
        s = Scheduler(tiny_engine, max_queue=1, queue_timeout_s=0.2)
        s.start()
        try:
            long = s.submit("stream", MSG, GenerationParams(max_new_tokens=400))
            await s.wait_started(long)
            waiting = asyncio.ensure_future(s.generate(MSG, GenerationParams(max_new_tokens=2)))
            await asyncio.sleep(0.05)
            with pytest.raises(Overloaded):  # one waiting already: the next is refused at once
                s.submit("generate", MSG, GenerationParams(max_new_tokens=2))
            with pytest.raises(Busy, match="no capacity within 0.2 s"):
                await waiting
            long.cancel()
            [p async for p in long.stream()]
        finally:
            s.close()
        return s.snapshot()

    snap = run(main())
    assert snap["timed_out"] == 1 and snap["rejected"] == 1 and snap["cancelled_streams"] == 1


def test_close_fails_waiting_jobs(tiny_engine):
    async def main():
        s = Scheduler(tiny_engine)
        s.start()
        long = s.submit("stream", MSG, GenerationParams(max_new_tokens=300))
        await s.wait_started(long)
        waiting = s.submit("generate", MSG, GenerationParams(max_new_tokens=2))
        long.cancel()
        s.close()
        with pytest.raises(Busy, match="shutting down"):
            await waiting.started
        with pytest.raises(Busy, match="shutting down"):
            s.submit("generate", MSG, GenerationParams(max_new_tokens=2))

    run(main())
