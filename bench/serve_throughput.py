"""Serving benchmark on Gemma-3-270M: batch translation throughput, streamed-turn latency, and an API load test.

Three parts, one run, one JSON file:

1. **Batch translation** (sentences/s) of English FLORES-200 devtest sentences into German: naive
   one-at-a-time ``model.generate`` (the textbook loop) vs bayling's batched transformers engine vs the
   llama.cpp engine, all greedy with the same ``max_new_tokens``; ratios are against the naive loop.
2. **Streamed chat turn**: time to first token and total time of one streamed reply, naive
   (``generate`` + ``TextIteratorStreamer``) vs the two engines.
3. **Load test** of ``bayling serve`` (a real server process on 127.0.0.1, once per engine: llama.cpp, and
   transformers, where the server batches waiting requests): C concurrent clients (default 50) send R
   requests, in a fixed mix: plain, streamed, streamed and read slowly (50 ms per event), and streamed
   then disconnected after two events. Every request must end as 200, or 429/503 with ``Retry-After``,
   never as a 500, a dropped connection or a hang; afterwards the queue must drain (nothing waiting,
   nothing running), every stream whose client left must have been cancelled, and the server's RSS is
   reported before and after. An overload phase repeats it against a server with a 4-slot queue: clients
   get 429s and back off for the ``Retry-After`` they are told.

Run as::

    nice -n 10 python bench/serve_throughput.py                     # ~6 min on 2 idle CPU cores
    nice -n 10 python bench/serve_throughput.py --quick             # smaller, ~1.5 min
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def sentences(n: int) -> tuple[list[str], str]:
    flores = Path(os.environ.get("BAYLING_SHARED_DATA", REPO.parent / "shared" / "data")) / "flores200" / "devtest"
    f = flores / "eng_Latn.devtest"
    if f.is_file():
        return f.read_text(encoding="utf-8").splitlines()[:n], str(f)
    from importlib import resources

    rows = [
        json.loads(x)
        for x in (resources.files("bayling.data") / "samples" / "parallel.jsonl").read_text().splitlines()
    ]
    texts = [r.get("eng_Latn") or r.get("src") or next(iter(r.values())) for r in rows]
    return [t for t in texts if isinstance(t, str)][:n], "bayling/data/samples/parallel.jsonl"


def conversations(texts: list[str]) -> list[list[dict[str, str]]]:
    from bayling.serve.translate import translation_request

    return [[{"role": "user", "content": translation_request(t, "eng_Latn", "deu_Latn")}] for t in texts]


# --- 1. batch translation ------------------------------------------------------------------------------


def naive_generate(engine: Any, convs: list, max_new_tokens: int) -> tuple[list[str], int]:
    """The textbook loop: one prompt at a time through ``model.generate`` (same model, same stop tokens)."""
    import torch

    tok, model = engine.tokenizer, engine.model
    outs, n_tokens = [], 0
    with torch.inference_mode():
        for ids in engine.prompt_ids(convs):  # the same prompt ids as the engine
            enc = {"input_ids": torch.tensor([ids], device=engine.device)}
            enc["attention_mask"] = torch.ones_like(enc["input_ids"])
            gen = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=engine.stop_ids,
                pad_token_id=tok.pad_token_id,
                temperature=None,
                top_p=None,
                top_k=None,
            )
            new = gen[0, enc["input_ids"].shape[1] :].tolist()
            cut = next((i for i, t in enumerate(new) if t in engine.stop_ids), len(new))
            n_tokens += cut
            outs.append(tok.decode(new[:cut], skip_special_tokens=True).strip())
    return outs, n_tokens


def timed(fn: Any) -> tuple[Any, float, float]:
    """Run ``fn``; return its result, wall seconds and this process's CPU seconds (all threads).

    CPU seconds are reported next to wall seconds because the benchmark machine is shared: time spent
    descheduled inflates wall time (by 10x and more at ``nice 10`` next to busy neighbours) but not CPU time.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def part_batch(hf: Any, cpp: Any, texts: list[str], max_new_tokens: int) -> dict[str, Any]:
    """Time the three ways on the same sentences, interleaved one batch at a time.

    Interleaving matters on a shared machine: if the naive loop ran first and alone, a burst of other
    work during it would inflate every ratio.
    """
    from bayling.engines import GenerationParams

    params = GenerationParams(max_new_tokens=max_new_tokens)
    warm = conversations(["Hello."])
    hf.generate(warm, GenerationParams(max_new_tokens=4))
    cpp.generate(warm, GenerationParams(max_new_tokens=4))
    secs = {"naive": 0.0, "batched": 0.0, "llamacpp": 0.0}
    cpu = dict(secs)
    naive, batched, llama, naive_tokens = [], [], [], 0
    for start in range(0, len(texts), hf.batch_size):
        convs = conversations(texts[start : start + hf.batch_size])
        (outs, n_tok), t, c = timed(lambda convs=convs: naive_generate(hf, convs, max_new_tokens))
        naive += outs
        naive_tokens += n_tok
        secs["naive"] += t
        cpu["naive"] += c
        outs, t, c = timed(lambda convs=convs: hf.generate_detailed(convs, params))
        batched += outs
        secs["batched"] += t
        cpu["batched"] += c
        outs, t, c = timed(lambda convs=convs: cpp.generate_detailed(convs, params))
        llama += outs
        secs["llamacpp"] += t
        cpu["llamacpp"] += c
    n = len(texts)

    def row(key: str, tokens: int) -> dict[str, float]:
        return {
            "seconds": round(secs[key], 2),
            "cpu_seconds": round(cpu[key], 2),
            "sentences_per_s": round(n / secs[key], 3),
            "generated_tokens": tokens,
            "tokens_per_s": round(tokens / secs[key], 1),
        }

    return {
        "sentences": n,
        "max_new_tokens": max_new_tokens,
        "naive_transformers": row("naive", naive_tokens),
        "batched_transformers": {
            **row("batched", sum(r["completion_tokens"] for r in batched)),
            "batch_size": hf.batch_size,
        },
        "llamacpp": row("llamacpp", sum(r["completion_tokens"] for r in llama)),
        "speedup_vs_naive": {
            "batched_transformers": round(secs["naive"] / secs["batched"], 2),
            "llamacpp": round(secs["naive"] / secs["llamacpp"], 2),
        },
        "cpu_time_ratio_vs_naive": {
            "batched_transformers": round(cpu["naive"] / cpu["batched"], 2),
            "llamacpp": round(cpu["naive"] / cpu["llamacpp"], 2),
        },
        # share of identical greedy outputs: left padding in bf16 perturbs logits slightly, which can flip a
        # near-tie argmax (fp32 keeps them identical, see tests/serve/test_api.py)
        "batched_equals_naive": round(sum(a == b["text"] for a, b in zip(naive, batched, strict=True)) / n, 3),
        "example": {
            "source": texts[0],
            "naive": naive[0],
            "batched": batched[0]["text"],
            "llamacpp": llama[0]["text"],
        },
    }


# --- 2. streamed turn latency ------------------------------------------------------------------------


def naive_stream(engine: Any, conv: list, max_new_tokens: int):
    import torch
    import transformers

    ids = torch.tensor(engine.prompt_ids([conv]), device=engine.device)
    enc = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    streamer = transformers.TextIteratorStreamer(engine.tokenizer, skip_prompt=True, skip_special_tokens=True)
    kw = dict(
        **enc,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=engine.stop_ids,
        streamer=streamer,
        pad_token_id=engine.tokenizer.pad_token_id,
        temperature=None,
        top_p=None,
        top_k=None,
    )
    t = threading.Thread(target=engine.model.generate, kwargs=kw)
    t.start()
    yield from (p for p in streamer if p)
    t.join()


def first_and_total(make_iter: Any) -> tuple[float, float, float]:
    """Seconds to the first piece, wall seconds in all, and CPU seconds in all."""
    t0, c0 = time.perf_counter(), time.process_time()
    first = None
    for _ in make_iter():
        if first is None:
            first = time.perf_counter() - t0
    return first or float("nan"), time.perf_counter() - t0, time.process_time() - c0


def part_stream(hf: Any, cpp: Any, text: str, max_new_tokens: int, reps: int) -> dict[str, Any]:
    from bayling.engines import GenerationParams

    conv = conversations([text])[0]
    params = GenerationParams(max_new_tokens=max_new_tokens)
    runs = {
        "naive_transformers": lambda: naive_stream(hf, conv, max_new_tokens),
        "transformers_engine": lambda: hf.stream(conv, params),
        "llamacpp": lambda: cpp.stream(conv, params),
    }
    out: dict[str, Any] = {"max_new_tokens": max_new_tokens, "repetitions": reps}
    for name, fn in runs.items():
        samples = [first_and_total(fn) for _ in range(reps)]
        out[name] = {
            "first_token_s": round(statistics.median(s[0] for s in samples), 3),
            "total_s": round(statistics.median(s[1] for s in samples), 3),
            "cpu_s": round(statistics.median(s[2] for s in samples), 3),
        }
    base = out["naive_transformers"]
    out["speedup_vs_naive"] = {
        name: {
            "first_token": round(base["first_token_s"] / out[name]["first_token_s"], 2),
            "total": round(base["total_s"] / out[name]["total_s"], 2),
        }
        for name in ("transformers_engine", "llamacpp")
    }
    return out


# --- 3. load test -----------------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, IndexError, ValueError):
        return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, engine: str, overrides: list[str]) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from bayling.cli import main; sys.exit(main())",
        "serve",
        "gemma-3-270m",
        *overrides,  # ServeConfig overrides follow the target
        "--engine",
        engine,
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "BAYLING_NO_PROGRESS": "1"},
    )
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become healthy in 120 s")


KINDS = ("plain", "stream", "slow", "stream", "leave", "plain")
"""The client mix, by request number: plain, streamed, streamed read slowly, streamed and disconnected."""


def server_rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MB (Linux ``/proc``; None elsewhere)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


async def one_request(client: Any, url: str, i: int, text: str, max_tokens: int, timeout: float) -> dict[str, Any]:
    import httpx

    kind = KINDS[i % len(KINDS)]
    stream = kind != "plain"
    n = max(max_tokens, 200) if kind == "leave" else max_tokens  # still generating when its client leaves
    body = {"messages": conversations([text])[0], "max_tokens": n, "stream": stream}
    t0 = time.perf_counter()
    rec: dict[str, Any] = {"i": i, "kind": kind, "stream": stream}
    try:
        if not stream:
            r = await client.post(url, json=body, timeout=timeout)
            rec["status"] = r.status_code
            if "retry-after" in r.headers:
                rec["retry_after"] = float(r.headers["retry-after"])
            if r.status_code == 200:
                rec["ok"] = bool(r.json()["choices"][0]["message"]["content"] is not None)
        else:
            async with client.stream("POST", url, json=body, timeout=timeout) as r:
                rec["status"] = r.status_code
                if "retry-after" in r.headers:
                    rec["retry_after"] = float(r.headers["retry-after"])
                last, events = "", 0
                async for line in r.aiter_lines():
                    if "ttft_s" not in rec and line.startswith("data: {"):
                        choices = json.loads(line[6:]).get("choices") or [{}]
                        if choices[0].get("delta", {}).get("content"):
                            rec["ttft_s"] = time.perf_counter() - t0
                    if line:
                        last = line
                        events += 1
                    if kind == "slow":
                        await asyncio.sleep(0.05)
                    if kind == "leave" and events == 2 and r.status_code == 200:
                        rec["left"] = rec["ok"] = True
                        break
                if r.status_code == 200 and kind != "leave":
                    rec["ok"] = last == "data: [DONE]" and '"error"' not in last
    except httpx.TimeoutException:
        rec["status"] = "timeout"
    except httpx.HTTPError as e:
        rec["status"] = f"client_error:{type(e).__name__}"
    rec["latency_s"] = time.perf_counter() - t0
    return rec


async def load(url: str, texts: list[str], requests: int, concurrency: int, max_tokens: int, timeout: float) -> list:
    import httpx

    todo = iter(range(requests))
    records: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def worker() -> None:
            for i in todo:
                rec = await one_request(client, url, i, texts[i % len(texts)], max_tokens, timeout)
                records.append(rec)
                if rec["status"] in (429, 503):  # a polite client backs off as told before its next request
                    await asyncio.sleep(rec.get("retry_after", 1.0))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return records


def summarize(records: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for r in records:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    ok = [r for r in records if r["status"] == 200 and r.get("ok")]
    lat = sorted(r["latency_s"] for r in ok)
    ttft = sorted(r["ttft_s"] for r in ok if "ttft_s" in r)

    def pct(xs: list[float], q: float) -> float | None:
        return round(xs[min(len(xs) - 1, int(q * len(xs)))], 3) if xs else None

    accounted = len(ok) + statuses.get("429", 0) + statuses.get("503", 0)
    refused = [r for r in records if r["status"] in (429, 503)]
    return {
        "requests": len(records),
        "by_kind": {k: sum(1 for r in records if r["kind"] == k) for k in dict.fromkeys(KINDS)},
        "disconnected_mid_stream": sum(1 for r in records if r.get("left")),
        "refusals_without_retry_after": sum(1 for r in refused if "retry_after" not in r),
        "status_counts": statuses,
        "success_rate": round(len(ok) / len(records), 3),
        "answered_or_rejected_rate": round(accounted / len(records), 3),
        "server_errors_5xx": sum(v for k, v in statuses.items() if k.startswith("5") and k != "503"),
        "timeouts_or_dropped": sum(v for k, v in statuses.items() if not k.isdigit()),
        "latency_p50_s": pct(lat, 0.5),
        "latency_p95_s": pct(lat, 0.95),
        "stream_first_token_p50_s": pct(ttft, 0.5),
        "stream_first_token_p95_s": pct(ttft, 0.95),
        "wall_s": round(wall, 1),
        "answered_per_s": round(len(ok) / wall, 2),
    }


def part_load(
    texts: list[str], requests: int, concurrency: int, max_tokens: int, engine: str, overrides: list[str]
) -> dict:
    import httpx

    port = free_port()
    proc = start_server(port, engine, overrides)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        httpx.post(url, json={"messages": conversations(texts[:1])[0], "max_tokens": 4}, timeout=120)  # warm-up
        rss_before = server_rss_mb(proc.pid)
        cpu_at_start = process_cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        records = asyncio.run(load(url, texts, requests, concurrency, max_tokens, timeout=300))
        res = summarize(records, time.perf_counter() - t0)
        t1, queue = time.perf_counter(), {}
        while time.perf_counter() - t1 < 60:  # drained: nothing waiting, nothing generating for anyone
            queue = httpx.get(f"http://127.0.0.1:{port}/health").json()["queue"]
            if not queue["waiting"] and not queue.get("running", queue["busy"]):
                break
            time.sleep(0.05)
        res["server_queue_stats"] = queue
        res["drained_after_s"] = round(time.perf_counter() - t1, 2)
        res["drained"] = not queue["waiting"] and not queue.get("running", queue["busy"])
        res["left_streams_all_cancelled"] = queue.get("cancelled_streams", 0) == res["disconnected_mid_stream"]
        res["server_rss_mb"] = {"before": rss_before, "after": server_rss_mb(proc.pid)}
        res["server_cpu_s"] = process_cpu_seconds(proc.pid) - cpu_at_start
        res["server_cpu_s_per_answer"] = round(res["server_cpu_s"] / max(res["status_counts"].get("200", 0), 1), 3)
        res.update(concurrency=concurrency, max_tokens=max_tokens, engine=engine, server_overrides=overrides)
        return res
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--stream-reps", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--load-max-tokens", type=int, default=16)
    ap.add_argument(
        "--load-engines",
        default="llamacpp,transformers",
        help="engines to load-test (comma-separated); the first also runs the overload phase",
    )
    ap.add_argument("--quick", action="store_true", help="8 sentences, 16 tokens, 60 requests")
    ap.add_argument("--parts", default="batch,stream,load", help="which parts to run (comma-separated)")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench" / "serve_throughput.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.sentences, args.max_new_tokens, args.requests, args.stream_reps = 8, 16, 60, 2
    os.environ.setdefault("BAYLING_NO_PROGRESS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch

    from bayling.engines.hf import TransformersEngine
    from bayling.engines.llamacpp import LlamaCppEngine
    from bayling.models import resolve_model

    texts, source = sentences(max(args.sentences, 20))
    result: dict[str, Any] = {
        "model": "gemma-3-270m (transformers: bf16 safetensors; llama.cpp: Q4_K_M GGUF)",
        "data": source,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "loadavg_at_start": os.getloadavg(),
        },
    }
    parts = {p.strip() for p in args.parts.split(",")}
    if parts & {"batch", "stream"}:
        print("loading engines…", file=sys.stderr)
        hf = TransformersEngine(
            resolve_model("gemma-3-270m"), dtype="bfloat16", device="cpu", batch_size=args.batch_size
        )
        cpp = LlamaCppEngine(n_ctx=2048)
    if "batch" in parts:
        print("1/3 batch translation…", file=sys.stderr)
        result["batch_translation"] = part_batch(hf, cpp, texts[: args.sentences], args.max_new_tokens)
        bt = result["batch_translation"]
        print(json.dumps({k: bt[k] for k in ("speedup_vs_naive", "cpu_time_ratio_vs_naive")}), file=sys.stderr)
    if "stream" in parts:
        print("2/3 streamed turn latency…", file=sys.stderr)
        result["streamed_turn"] = part_stream(hf, cpp, texts[0], args.max_new_tokens, args.stream_reps)
        print(json.dumps(result["streamed_turn"]["speedup_vs_naive"]), file=sys.stderr)
    if parts & {"batch", "stream"}:
        del hf, cpp
    if "load" not in parts:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
        return 0
    print("3/3 load test…", file=sys.stderr)
    engines = [e.strip() for e in args.load_engines.split(",") if e.strip()]
    runs = []
    for engine in engines:
        res = part_load(texts, args.requests, args.concurrency, args.load_max_tokens, engine, [])
        result[f"load_test_{engine}"] = res
        runs.append(res)
        keys = ("status_counts", "latency_p50_s", "latency_p95_s", "answered_per_s")
        print(engine, json.dumps({k: res[k] for k in keys}), file=sys.stderr)
    res = part_load(
        texts, max(args.requests // 2, 20), args.concurrency, args.load_max_tokens, engines[0], ["max_queue=4"]
    )
    result["load_test_overload"] = res
    runs.append(res)
    print("overload", json.dumps(res["status_counts"]), file=sys.stderr)
    ok = all(
        r["answered_or_rejected_rate"] == 1.0
        and r["server_errors_5xx"] == 0
        and r["refusals_without_retry_after"] == 0
        and r["drained"]
        and r["left_streams_all_cancelled"]
        for r in runs
    )
    result["machine"]["loadavg_at_end"] = os.getloadavg()
    result["load_test_pass"] = ok
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"wrote {out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
