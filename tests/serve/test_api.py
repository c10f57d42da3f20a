"""The OpenAI-compatible API, exercised with the official ``openai`` client and raw HTTP against real uvicorn."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from bayling.engines import GenerationParams

MSG = [{"role": "user", "content": "Translate the following English text into German.\nThe weather is nice today."}]


def client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=30)


def test_openai_client_models_and_completion(server, tiny_engine):
    c = client(server)
    models = c.models.list()
    assert [m.id for m in models.data] == ["tiny"]
    assert c.models.retrieve("tiny").id == "tiny"

    r = c.chat.completions.create(model="tiny", messages=MSG, max_tokens=12)
    assert r.object == "chat.completion" and r.model == "tiny"
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    expected = tiny_engine.generate([MSG], GenerationParams(max_new_tokens=12))
    assert choice.message.content == expected[0]  # greedy by default: same text as the engine itself
    assert choice.finish_reason == "length" and r.usage.completion_tokens == 12
    assert r.usage.prompt_tokens == tiny_engine.count_prompt_tokens(MSG)
    assert r.usage.total_tokens == r.usage.prompt_tokens + 12


def test_openai_client_streaming_matches_plain(server):
    c = client(server)
    plain = c.chat.completions.create(model="tiny", messages=MSG, max_tokens=20).choices[0].message.content
    chunks = list(
        c.chat.completions.create(
            model="tiny", messages=MSG, max_tokens=20, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text.strip() == plain and len(chunks) > 3  # really streamed, piece by piece
    finals = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finals == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 20
    assert len({ch.id for ch in chunks}) == 1


def test_sse_wire_format(server):
    body = {"messages": MSG, "max_tokens": 5, "stream": True}
    with httpx.stream("POST", server + "/v1/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    for ev in events[:-2]:
        assert ev.startswith("data: ")
        obj = json.loads(ev[len("data: ") :])
        assert obj["object"] == "chat.completion.chunk" and "usage" not in obj
        assert set(obj["choices"][0]) == {"index", "delta", "logprobs", "finish_reason"}


def test_stop_sequences(server):
    c = client(server)
    full = c.chat.completions.create(model="tiny", messages=MSG, max_tokens=12).choices[0].message.content
    assert "\n" in full
    r = c.chat.completions.create(model="tiny", messages=MSG, max_tokens=12, stop=["\n"])
    assert r.choices[0].message.content == full.split("\n")[0] and r.choices[0].finish_reason == "stop"
    chunks = list(c.chat.completions.create(model="tiny", messages=MSG, max_tokens=12, stop="\n", stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == full.split("\n")[0]
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (json.dumps({"model": "tiny"}).encode(), 400, "messages: field required"),
        (json.dumps({"messages": [{"role": "robot", "content": "x"}]}).encode(), 400, "messages.0.role"),
        (json.dumps({"messages": MSG, "max_tokens": 100000}).encode(), 400, "over this server's limit of 400"),
        (json.dumps({"messages": MSG, "max_tokens": 0}).encode(), 400, "max_tokens"),
        (json.dumps({"messages": [{"role": "user", "content": "word " * 400}]}).encode(), 400, "at most 200"),
        (json.dumps({"messages": MSG + [{"role": "assistant", "content": "x"}]}).encode(), 400, "user turn"),
        (json.dumps({"messages": MSG, "n": 2}).encode(), 400, "n=1"),
        (json.dumps({"messages": MSG, "model": "gpt-4"}).encode(), 404, "not served here"),
        (json.dumps({"messages": [{"role": "user", "content": "x" * 2_000_000}]}).encode(), 413, "over 1000000"),
    ],
)
def test_validation_errors(server, body, status, needle):
    r = httpx.post(server + "/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert needle in err["message"] and err["type"]


def test_errors_through_openai_client(server):
    c = client(server)
    with pytest.raises(openai.BadRequestError, match="at most 200"):
        c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "word " * 400}])
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="gpt-4", messages=MSG)
    r = httpx.get(server + "/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_translate_endpoint(server):
    body = {
        "text": "The station is near.",
        "source_lang": "en",
        "target_lang": "German",
        "glossary": {"station": "Bahnhof"},
        "style": "formal",
        "max_tokens": 8,
    }
    r = httpx.post(server + "/v1/translate", json=body, timeout=30).json()
    assert r["object"] == "translation" and (r["source_lang"], r["target_lang"]) == ("eng_Latn", "deu_Latn")
    prompt = r["messages"][0]["content"]
    assert prompt == (
        "Translate the following English text into German.\nThe station is near.\n"
        'Make sure the translation uses "Bahnhof" for "station".\nMake it more formal.'
    )
    assert r["messages"][1] == {"role": "assistant", "content": r["translation"]}
    assert r["usage"]["completion_tokens"] <= 8

    p = httpx.post(server + "/v1/translate/prompt", json=body).json()
    assert p["messages"] == r["messages"][:1]

    with httpx.stream("POST", server + "/v1/translate", json={**body, "stream": True}, timeout=30) as s:
        lines = [ln for ln in s.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    streamed = "".join(
        json.loads(ln[6:])["choices"][0]["delta"].get("content", "") for ln in lines[:-1] if ln.startswith("data: {")
    )
    assert streamed.strip() == r["translation"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"target_lang": "klingon"}, "target_lang: unknown language 'klingon'"),
        ({"source_lang": "xx-YY"}, "source_lang: unknown language"),
        ({"style": "poetic"}, "style"),
        ({"text": ""}, "text"),
        ({"glossary": {"station": " "}}, "glossary entries need"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_translate_validation(server, change, needle):
    body = {"text": "Hello", "source_lang": "en", "target_lang": "de", **change}
    r = httpx.post(server + "/v1/translate", json=body)
    assert r.status_code == 400 and needle in r.json()["error"]["message"], r.text


def test_translate_options_and_page(server):
    opt = httpx.get(server + "/v1/translate/options").json()
    codes = {lang["code"] for lang in opt["languages"]}
    assert len(codes) == 204 and {"eng_Latn", "zho_Hans", "swh_Latn"} <= codes
    assert opt["followups"]["formal"] == "Make it more formal."
    assert "{term_tgt}" in opt["followups"]["glossary"]
    page = httpx.get(server + "/")
    assert page.status_code == 200 and "interactive translation" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # offline: no CDN, no external assets
    health = httpx.get(server + "/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny" and health["queue"]["waiting"] == 0


def test_api_key(make_server, tiny_engine):
    url = make_server(tiny_engine, api_key="s3cret")
    with pytest.raises(openai.AuthenticationError):
        client(url, "wrong").models.list()
    r = httpx.post(url + "/v1/chat/completions", json={"messages": MSG})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert client(url, "s3cret").chat.completions.create(model="tiny", messages=MSG, max_tokens=3).choices
    assert httpx.get(url + "/health").json()["auth"] is True  # health stays open for load balancers


def test_api_key_from_env(make_server, tiny_engine, monkeypatch):
    monkeypatch.setenv("MY_KEY", "from-env")
    url = make_server(tiny_engine, api_key=None, api_key_env="MY_KEY")
    assert httpx.get(url + "/v1/models").status_code == 401
    assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_bounded_queue_answers_429(make_server, tiny_engine):
    url = make_server(tiny_engine, max_queue=1, max_new_tokens=400)
    statuses: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        body = {"messages": MSG, "max_tokens": 300, "stream": True}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60) as r:
            if r.status_code == 200:
                assert r.read().decode().endswith("data: [DONE]\n\n")
            else:
                assert r.headers["retry-after"] == "1"
                assert json.loads(r.read())["error"]["type"] == "rate_limit_error"
            with lock:
                statuses.append(r.status_code)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(set(statuses)) == [200, 429] and len(statuses) == 6
    assert statuses.count(200) >= 1 and statuses.count(429) >= 3  # one running + one waiting (+1 if a slow client)
    q = httpx.get(url + "/health").json()["queue"]
    assert q["rejected"] == statuses.count(429) and q.get("errors", 0) == 0


def test_client_disconnect_mid_stream_stops_generation(make_server, tiny_engine):
    url = make_server(tiny_engine, max_new_tokens=400)
    body = {"messages": MSG, "max_tokens": 400, "stream": True}
    t0 = time.monotonic()
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
        it = r.iter_lines()
        got = [next(it) for _ in range(4)]
    assert all(g.startswith("data: ") or g == "" for g in got)
    deadline = time.monotonic() + 10
    while httpx.get(url + "/health").json()["queue"].get("cancelled_streams", 0) < 1:
        assert time.monotonic() < deadline, "the stream was not cancelled"
        time.sleep(0.05)
    while httpx.get(url + "/health").json()["queue"]["busy"]:  # the worker frees up right after cancelling
        assert time.monotonic() < deadline, "the worker stayed busy"
        time.sleep(0.05)
    assert time.monotonic() - t0 < 10
    # the server is fine afterwards
    r = client(url).chat.completions.create(model="tiny", messages=MSG, max_tokens=4)
    assert r.usage.completion_tokens == 4


def test_concurrent_requests_are_batched(make_server, tiny_engine):
    url = make_server(tiny_engine, max_batch_size=8)
    convs = [[{"role": "user", "content": f"Hello world! {i} How are you?"}] for i in range(6)]
    expected = [tiny_engine.generate([c], GenerationParams(max_new_tokens=16))[0] for c in convs]
    results: dict[int, str] = {}

    def one(i: int) -> None:
        r = client(url).chat.completions.create(model="tiny", messages=convs[i], max_tokens=16)
        results[i] = r.choices[0].message.content

    # hold the engine with a long stream so that the six plain requests queue up together
    hold = {"messages": MSG, "max_tokens": 400, "stream": True}
    with httpx.stream("POST", url + "/v1/chat/completions", json=hold) as s:
        lines = s.iter_lines()
        next(lines)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while httpx.get(url + "/health").json()["queue"]["waiting"] < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [ln for ln in lines if ln][-1] == "data: [DONE]"
    for t in threads:
        t.join(30)
    assert [results[i] for i in range(6)] == expected
    q = httpx.get(url + "/health").json()["queue"]
    assert q["max_batch_seen"] >= 2 and q["batches"] < 6


def test_bayling_serve_command_end_to_end(tiny_llama):
    """The real entry point: ``bayling serve MODEL`` in its own process, stopped with Ctrl-C (SIGINT)."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-c", "import sys; from bayling.cli import main; sys.exit(main())", "serve"]
    cmd += [str(tiny_llama), "max_queue=2", "model_name=cli-tiny", "--port", str(port)]  # overrides follow TARGET
    env = {**os.environ, "BAYLING_API_KEY": "k", "BAYLING_NO_PROGRESS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert health["model"] == "cli-tiny" and health["auth"] is True and health["queue"]["max_queue"] == 2
        c = client(f"http://127.0.0.1:{port}", "k")
        assert c.chat.completions.create(model="cli-tiny", messages=MSG, max_tokens=3).usage.completion_tokens == 3
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode in (0, 130), err
    assert f"http://127.0.0.1:{port}" in err and "auth on" in err
