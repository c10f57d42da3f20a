"""Load and faults against a real ``bayling serve`` process on 127.0.0.1 (tiny model, transformers engine).

50 concurrent streaming clients, of which 10 read slowly and 10 disconnect mid-stream, plus 10 plain
requests, all at once against a queue of 24. Afterwards:

* every request got a 200, or a 429/503 with ``Retry-After`` (never a 500, a dropped connection or a hang);
* the queue is empty and nothing is running: every stream whose client left was cancelled, none ran on;
* the server's resident memory is back near its level before the load (a second round does not grow it).

Marked ``slow`` (``pytest -m slow tests/serve/test_load.py``): a server process of its own and two rounds take
about 15 s on 2 idle cores (the first round also warms the allocator up). The fast suite covers the same paths
one client at a time (``test_api.py``, ``test_security.py``, ``test_vllm.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

MSG = [{"role": "user", "content": "Translate the following English text into German.\nThe weather is nice today."}]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def client(base: str, kind: str, http: httpx.AsyncClient) -> dict:
    """One client; ``kind`` is ``stream``, ``slow`` (reads a line every 50 ms), ``leave`` (disconnects after
    two events) or ``plain`` (no streaming)."""
    stream = kind != "plain"
    body = {"messages": MSG, "max_tokens": 400 if kind == "leave" else 4, "stream": stream}
    rec: dict = {"kind": kind}
    if not stream:
        r = await http.post(base + "/v1/chat/completions", json=body)
        rec.update(status=r.status_code, retry_after=r.headers.get("retry-after"))
        rec["ok"] = r.status_code == 200 and r.json()["usage"]["completion_tokens"] >= 0
        return rec
    async with http.stream("POST", base + "/v1/chat/completions", json=body) as r:
        rec.update(status=r.status_code, retry_after=r.headers.get("retry-after"))
        if r.status_code != 200:
            await r.aread()
            return rec
        events = 0
        lines = []
        async for line in r.aiter_lines():
            if not line:
                continue
            lines.append(line)
            events += 1
            if kind == "slow":
                await asyncio.sleep(0.05)
            if kind == "leave" and events == 2:
                return {**rec, "left": True}  # closing the response here drops the connection
        rec["ok"] = lines[-1] == "data: [DONE]" and not any('"error"' in ln for ln in lines)
    return rec


async def load_round(base: str) -> list[dict]:
    kinds = ["stream", "slow", "stream", "leave", "stream", "plain"] * 10  # 50 streaming clients + 10 plain
    limits = httpx.Limits(max_connections=len(kinds), max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        return await asyncio.gather(*(client(base, k, http) for k in kinds))


def health(base: str) -> dict:
    return httpx.get(base + "/health", timeout=10).json()["queue"]


def settle(base: str, timeout: float = 60.0) -> dict:
    """Wait until nothing waits or runs; returns the queue state."""
    deadline = time.monotonic() + timeout
    while True:
        q = health(base)
        if q["waiting"] == 0 and q["running"] == 0:
            return q
        assert time.monotonic() < deadline, f"still busy after the load: {q}"
        time.sleep(0.05)


@pytest.mark.slow
def test_load_disconnects_and_slow_readers(tiny_llama):
    if not Path("/proc/self/status").is_file():
        pytest.skip("reads the server's memory from /proc (Linux)")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-c", "import sys; from bayling.cli import main; sys.exit(main())", "serve"]
    cmd += [str(tiny_llama), "max_queue=24", "queue_timeout_s=60", "max_new_tokens=400", "--port", str(port)]
    env = {**os.environ, "BAYLING_NO_PROGRESS": "1", "BAYLING_API_KEY": ""}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                health(base)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)

        rounds, rss = [], [rss_mb(proc.pid)]
        for _ in range(2):  # the first round also warms the allocator up; the second must not grow memory
            t0 = time.monotonic()
            records = asyncio.run(load_round(base))
            before = dict(health(base))
            q = settle(base)
            rounds.append((records, before, q, time.monotonic() - t0))
            rss.append(rss_mb(proc.pid))

        seen_cancelled = 0
        for records, _, q, _ in rounds:
            statuses = [r["status"] for r in records]
            assert set(statuses) <= {200, 429, 503}, statuses
            assert 200 in statuses and 429 in statuses  # served, and overload refused at once
            for r in records:
                if r["status"] != 200:
                    assert r["retry_after"] is not None and float(r["retry_after"]) > 0, r
                elif r["kind"] != "leave":
                    assert r["ok"], r
            left = sum(1 for r in records if r.get("left"))
            assert left >= 1  # the disconnect path was exercised
            # every stream whose client left was stopped (none generated on to its 400 tokens)
            assert q["cancelled_streams"] - seen_cancelled == left, (q, left)
            seen_cancelled = q["cancelled_streams"]
            assert q.get("errors", 0) == 0
        assert rss[2] - rss[1] < 30, f"RSS after warm-up {rss[1]:.0f} MB, after the second round {rss[2]:.0f} MB"
        print(
            "load rounds: "
            + json.dumps(
                {
                    "seconds": [round(r[3], 1) for r in rounds],
                    "statuses": [{s: [x["status"] for x in r[0]].count(s) for s in (200, 429, 503)} for r in rounds],
                    "rss_mb": [round(x) for x in rss],
                    "queue": rounds[-1][2],
                }
            )
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
