"""A misbehaving engine behind the real server (uvicorn on 127.0.0.1): every client is answered, within the
timeout, and the server goes on serving.

:class:`ChaosEngine` is the real tiny transformers engine, except for requests whose last message holds a
trigger word: ``RAISE`` (the engine call raises after generating, with a "secret" in its message),
``MISCOUNT`` (one result too few), ``MISSING`` (a missing optional dependency), ``HANG`` (blocks until the
test releases it), and, in ``stream``, ``HOLD`` (waits for the test's gate before the first piece) and
``STALL`` (two pieces, then blocks until released).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import httpx
import pytest

from bayling.engines import GenerationParams
from bayling.errors import ConfigError, MissingDependencyError
from bayling.serve.scheduler import GenerationTimeout, Scheduler

SECRET = "/srv/secret-models/llama.bin: CUDA error 700"


def conv(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Translate into German.\n{text} The weather is nice today."}]


class ChaosEngine:
    """The real tiny engine, misbehaving on trigger words (see the module docstring); records what it answered."""

    batched = True

    def __init__(self, engine) -> None:
        self.engine = engine
        self.seen: list[str] = []  # last-message texts of every conversation generate_detailed received
        self.release = threading.Event()  # ends HANG and STALL
        self.gate = threading.Event()  # lets a HOLD stream start

    def __getattr__(self, name):  # model_name, context_length, count_tokens, count_prompt_tokens
        return getattr(self.engine, name)

    def generate_detailed(self, conversations, params=None, progress=None):
        texts = [c[-1]["content"] for c in conversations]
        self.seen.extend(texts)
        if any("HANG" in t for t in texts):
            self.release.wait(30)
        if any("MISSING" in t for t in texts):
            raise MissingDependencyError("'flash_attn' is not installed; run: pip install 'bayling[gpu]'")
        if any("BADCONFIG" in t for t in texts):
            raise ConfigError("engine_options.rope_scaling: expected a mapping, got 'x'")
        results = self.engine.generate_detailed(conversations, params)
        if any("RAISE" in t for t in texts):
            raise RuntimeError(SECRET)
        if any("MISCOUNT" in t for t in texts):
            return results[:-1]
        return results

    def stream(self, conversation, params=None):
        text = conversation[-1]["content"]
        if "HOLD" in text:
            self.gate.wait(30)
        for i, piece in enumerate(self.engine.stream(conversation, params)):
            if "STALL" in text and i == 2:
                self.release.wait(30)
            if "RAISE" in text and i == 2:
                raise RuntimeError(SECRET)
            yield piece


@pytest.fixture
def chaos(tiny_engine):
    return ChaosEngine(tiny_engine)


def post(url: str, text: str, max_tokens: int = 6, timeout: float = 20) -> tuple[httpx.Response, float]:
    t0 = time.monotonic()
    body = {"messages": conv(text), "max_tokens": max_tokens}
    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=timeout)
    return r, time.monotonic() - t0


def queue(url: str) -> dict:
    return httpx.get(url + "/health", timeout=5).json()["queue"]


def wait_for(url: str, check, what: str, seconds: float = 10) -> dict:
    deadline = time.monotonic() + seconds
    while not check(q := queue(url)):
        assert time.monotonic() < deadline, f"{what}: {q}"
        time.sleep(0.02)
    return q


def expected_text(engine, text: str, max_tokens: int = 6) -> str:
    return engine.generate([conv(text)], GenerationParams(max_new_tokens=max_tokens))[0]


def assert_internal_error(r: httpx.Response, caplog) -> str:
    """A 500 naming only a request id, which the server log has next to the real exception."""
    assert r.status_code == 500, r.text
    err = r.json()["error"]
    rid = r.headers["x-request-id"]
    assert err["type"] == "server_error" and err["code"] == "internal_error"
    assert rid.startswith("req-") and rid in err["message"]
    assert "secret" not in r.text and "flash_attn" not in r.text and "Error" not in err["message"]
    logged = [rec for rec in caplog.records if rid in rec.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    return str(logged[0].exc_info[1])


@pytest.mark.parametrize("trigger", ["RAISE", "MISCOUNT"])
def test_a_failing_request_fails_alone_in_its_batch(make_server, chaos, tiny_engine, trigger, caplog):
    """Three plain requests batched together, one poisoned: it gets a 500, the other two their answers."""
    caplog.set_level(logging.WARNING)
    url = make_server(chaos, max_batch_size=4)
    texts = ["Good morning.", f"{trigger} Hello.", "How are you?"]
    answers: dict[str, tuple[httpx.Response, float]] = {}
    hold = {"messages": conv("HOLD"), "max_tokens": 4, "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", json=hold, timeout=20) as s:
        lines = s.iter_lines()
        next(lines)  # the worker is inside the held stream: the three below queue up together
        threads = [threading.Thread(target=lambda t=t: answers.__setitem__(t, post(url, t))) for t in texts]
        for t in threads:
            t.start()
        wait_for(url, lambda q: q["waiting"] == 3, "the three requests did not queue")
        chaos.gate.set()
        list(lines)
        for t in threads:
            t.join(30)
    assert sorted(chaos.seen[:3]) == sorted(conv(t)[-1]["content"] for t in texts)  # one batch of three, then singly
    bad, elapsed = answers[texts[1]]
    logged = assert_internal_error(bad, caplog)
    assert (SECRET if trigger == "RAISE" else "the engine returned 0 results for 1 conversations") in logged
    assert elapsed < 20
    for t in (texts[0], texts[2]):
        r, _ = answers[t]
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == expected_text(tiny_engine, t)
    q = queue(url)
    assert q["errors"] == 1 and q["completed"] == 1 + 2 and not q["busy"]
    r, _ = post(url, "And now?")  # the worker lives on
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == expected_text(
        tiny_engine, "And now?"
    )


def test_stream_error_in_band_names_only_a_request_id(make_server, chaos, caplog):
    caplog.set_level(logging.WARNING)
    url = make_server(chaos)
    body = {"messages": conv("RAISE"), "max_tokens": 12, "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=20) as r:
        events = [line for line in r.iter_lines() if line]
    assert r.status_code == 200 and events[-1] == "data: [DONE]"
    err = httpx.Response(500, text=events[-2][len("data: ") :]).json()["error"]
    assert err["code"] == "internal_error" and "secret" not in events[-2]
    rid = err["message"].split("request id ")[1].split(" ")[0]
    assert any(rid in rec.getMessage() and SECRET in str(rec.exc_info[1]) for rec in caplog.records)


def test_server_faults_are_5xx_and_client_faults_400(make_server, chaos, caplog):
    caplog.set_level(logging.WARNING)
    url = make_server(chaos)
    r, _ = post(url, "MISSING")  # the server lacks a package: not the client's fault
    assert "'flash_attn' is not installed" in assert_internal_error(r, caplog)
    r, _ = post(url, "BADCONFIG")  # a BaylingError about the request is still a 400 that says what
    assert r.status_code == 400 and "rope_scaling" in r.json()["error"]["message"]


def test_unexpected_error_outside_generation_names_only_a_request_id(make_server, tiny_engine, caplog):
    caplog.set_level(logging.WARNING)

    class BadCounter(ChaosEngine):
        def count_prompt_tokens(self, conversation):
            raise RuntimeError(SECRET)

    r, _ = post(make_server(BadCounter(tiny_engine)), "Hello.")
    assert SECRET in assert_internal_error(r, caplog)


def test_hung_engine_answers_504_within_the_timeout_and_serving_resumes(make_server, chaos, tiny_engine):
    url = make_server(chaos, generation_timeout_s=1.0, queue_timeout_s=20)
    r, elapsed = post(url, "HANG")
    assert r.status_code == 504 and r.json()["error"]["code"] == "generation_timeout"
    assert r.headers["retry-after"] == "5" and 1.0 <= elapsed < 10
    t0 = time.monotonic()
    q = wait_for(url, lambda q: q["stalled"], "/health does not report the stall")
    assert time.monotonic() - t0 < 5 and q["timed_out_generations"] == 1  # /health answers meanwhile

    later: list[tuple[httpx.Response, float]] = []
    waiting = threading.Thread(target=lambda: later.append(post(url, "Next, please.")))
    waiting.start()
    wait_for(url, lambda q: q["waiting"] == 1, "the next request did not queue")
    chaos.release.set()  # the engine returns; its answer to the gone client is dropped
    waiting.join(30)
    (r, _), expected = later[0], expected_text(tiny_engine, "Next, please.")
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == expected
    assert not queue(url)["stalled"]


def test_stalled_stream_gets_an_in_band_504_and_serving_resumes(make_server, chaos, tiny_engine):
    url = make_server(chaos, generation_timeout_s=1.0)
    body = {"messages": conv("STALL"), "max_tokens": 12, "stream": True}
    t0 = time.monotonic()
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=20) as r:
        events = [line for line in r.iter_lines() if line]
    assert time.monotonic() - t0 < 10
    assert events[-1] == "data: [DONE]" and '"code": "generation_timeout"' in events[-2]
    assert sum('"content"' in e for e in events[:-2]) == 1 + 2  # the role event, then the two pieces
    chaos.release.set()
    wait_for(url, lambda q: q.get("cancelled_streams") == 1 and not q["busy"], "the stream was not stopped")
    r, _ = post(url, "Next, please.")
    assert r.json()["choices"][0]["message"]["content"] == expected_text(tiny_engine, "Next, please.")


def test_what_a_gone_clients_plain_request_costs(make_server, chaos):
    """What the README says: a queued request of a gone client never reaches the engine; one already running in
    a batch runs to its end, its answer dropped."""
    url = make_server(chaos, queue_timeout_s=20)
    hold = {"messages": conv("HOLD"), "max_tokens": 4, "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", json=hold, timeout=20) as s:
        lines = s.iter_lines()
        next(lines)
        with pytest.raises(httpx.TimeoutException):
            post(url, "QUEUED and gone.", timeout=0.5)
        wait_for(url, lambda q: q["waiting"] == 0 and q["cancelled"] == 1, "the gone request still waits")
        chaos.gate.set()
        list(lines)
    with pytest.raises(httpx.TimeoutException):
        post(url, "HANG running and gone.", timeout=0.5)
    q = wait_for(url, lambda q: q["busy"], "the request did not start")
    chaos.release.set()
    q = wait_for(url, lambda q: not q["busy"], "the running batch did not end")
    assert [t for t in chaos.seen if "gone" in t] == [conv("HANG running and gone.")[-1]["content"]]
    assert q["completed"] == 2 and q.get("errors", 0) == 0  # the hold stream and the gone client's batch


def test_concurrent_engine_that_hangs_is_cancelled_at_the_timeout():
    """An engine driven as asyncio tasks (vLLM's kind): the hung request is cancelled (aborted in the engine)."""

    class Hanging:  # only the scheduler's side of a concurrent engine: vLLM itself is not installed here
        concurrent, batched = True, True

        def __init__(self) -> None:
            self.cancelled = 0

        async def agenerate(self, conversation, params):
            if conversation == "HANG":
                try:
                    await asyncio.sleep(60)
                except asyncio.CancelledError:
                    self.cancelled += 1
                    raise
            return {"text": conversation, "prompt_tokens": 1, "completion_tokens": 1, "finish_reason": "stop"}

    async def main():
        engine = Hanging()
        s = Scheduler(engine, generation_timeout_s=0.3)
        s.start()
        t0 = time.monotonic()
        with pytest.raises(GenerationTimeout, match="within 0.3 s"):
            await s.generate("HANG", GenerationParams())
        assert time.monotonic() - t0 < 5
        assert (await s.generate("next", GenerationParams()))["text"] == "next"
        await asyncio.sleep(0)
        s.close()
        return engine.cancelled, s.snapshot()

    cancelled, snap = asyncio.run(main())
    assert cancelled == 1 and snap["timed_out_generations"] == 1 and snap["running"] == 0


def test_worker_answers_every_job_when_it_fails_outside_the_engine(chaos, monkeypatch):
    """Anything raising on the worker after (or instead of) the engine call still answers the job: no hang."""

    async def main():
        s = Scheduler(chaos, generation_timeout_s=30)
        real = s._run_generate

        def fails_before(jobs):
            raise KeyError("stats")

        def fails_after(jobs):
            real(jobs)
            raise KeyError("stats")

        s.start()
        try:
            t0 = time.monotonic()
            monkeypatch.setattr(s, "_run_generate", fails_before)
            with pytest.raises(KeyError, match="stats"):
                await s.generate(conv("Hello."), GenerationParams(max_new_tokens=3))
            assert time.monotonic() - t0 < 5
            monkeypatch.setattr(s, "_run_generate", fails_after)  # answered before the raise: the answer stands
            assert (await s.generate(conv("Hello."), GenerationParams(max_new_tokens=3)))["completion_tokens"] == 3
            monkeypatch.setattr(s, "_run_generate", real)
            assert (await s.generate(conv("Hello."), GenerationParams(max_new_tokens=3)))["completion_tokens"] == 3
        finally:
            s.close()
        return s.snapshot()

    snap = asyncio.run(main())
    assert snap["running"] == 0 and snap["completed"] == 2
