"""Property-based fuzzing of the HTTP API on a real server (uvicorn on 127.0.0.1, the tiny model).

Random request bodies (raw bytes, invalid UTF-8, non-objects, deeply nested JSON, and near-valid requests
with wrong types, out-of-range numbers, huge integers, NaN, odd message shapes) sent to every POST route must
get a 4xx with OpenAI's JSON error shape and a message, or a success; never a 5xx, and never a server error
reported inside a stream. Bounded: a fixed seed, a small example budget, 8 new tokens at most.
"""

from __future__ import annotations

import json

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

HI = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
HELLO = {"text": "Hello", "source_lang": "en", "target_lang": "de", "max_tokens": 2}
ROUTES = ["/v1/chat/completions", "/v1/translate", "/v1/translate/prompt"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from([0, -1, 1, 8, 9, 2**63, -(2**63) - 1, 1e308, float("nan"), float("inf"), "", "tiny"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
texts = st.sampled_from(["", " ", "Hello", "你好", "\x00", "a" * 3000, "\ud7ff", "de"]) | st.text(max_size=12)
good_langs = st.sampled_from(["en", "de", "zho_Hans", "fra_Latn", "Japanese"])
langs = st.sampled_from(["en", "de", "zho_Hans", "klingon", "", "EN", "eng_Latn"]) | texts


def maybe(fields: dict) -> st.SearchStrategy:
    """Objects with any subset of ``fields`` (each of its own shape or any JSON value)."""
    return st.fixed_dictionaries({}, optional={k: v | values for k, v in fields.items()})


short = st.sampled_from(["Hello", "你好", "Good morning.", "x"])
content = short | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": short}), min_size=1, max_size=2)
system = st.fixed_dictionaries({"role": st.sampled_from(["system", "developer"]), "content": content})
turns = st.sampled_from([["user"], ["user", "assistant", "user"]]).flatmap(
    lambda roles: st.tuples(*[st.fixed_dictionaries({"role": st.just(r), "content": content}) for r in roles])
)
edge_ints = st.sampled_from([2**63, 2**64, 2**70, -(2**63) - 1, -(2**70)])


def absent_or(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """``None`` (the key is left out) or a value: every optional field shows up in about half the requests."""
    return st.none() | strategy


generation = {  # valid values: a request of this shape must be served (200)
    "model": absent_or(st.just("tiny")),
    "max_tokens": absent_or(st.integers(1, 8)),
    "temperature": absent_or(st.floats(0, 2)),
    "seed": absent_or(st.integers(-(2**31), 2**31)),
    "stream": absent_or(st.booleans()),
}
EDGES = {  # one field at an edge of what the schema, the server's limits or an engine takes
    "seed": edge_ints | st.sampled_from([2**63 - 1, -(2**63)]),
    "max_tokens": st.sampled_from([0, -1, 9, 2**31, 2**63, 1.5, "8"]),
    "temperature": st.sampled_from([float("nan"), float("inf"), -0.0, 2.0000001, 1e-300]),
    "model": st.sampled_from(["other", "", "tiny\n"]),
    "stream": st.sampled_from(["yes", 1, None]),
}


def _without_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


valid_chat = st.fixed_dictionaries(
    {
        "messages": st.tuples(st.lists(system, max_size=1), turns).map(lambda parts: [*parts[0], *parts[1]]),
        **generation,
        "max_completion_tokens": absent_or(st.integers(1, 8)),
        "top_p": absent_or(st.floats(0.01, 1)),
        "stop": absent_or(short | st.lists(texts, max_size=4)),
        "n": absent_or(st.just(1)),
        "stream_options": absent_or(st.fixed_dictionaries({"include_usage": st.booleans()})),
    }
).map(_without_none)
valid_translate = st.fixed_dictionaries(
    {
        "text": short,
        "source_lang": good_langs,
        "target_lang": good_langs,
        **generation,
        "instruction_lang": absent_or(good_langs),
        "glossary": absent_or(st.dictionaries(texts, texts, max_size=2)),
        "style": absent_or(st.sampled_from(["formal", "casual", "short"])),
    }
).map(_without_none)
part = maybe({"type": st.sampled_from(["text", "image_url", ""]), "text": texts})
message = maybe(
    {
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool", ""]),
        "content": texts | st.lists(part, max_size=2),
    }
)


@st.composite
def mutated(draw, body: st.SearchStrategy) -> dict:
    """A served request with one field replaced by any JSON value, or removed."""
    obj = draw(body)
    key = draw(st.sampled_from(sorted(obj)))
    if draw(st.booleans()):
        del obj[key]
    else:
        obj[key] = draw(values | scalars)
    return obj


@st.composite
def edged(draw, body: st.SearchStrategy, edges: dict) -> dict:
    """A served request with one field set to an edge value (or a field added that is not served)."""
    obj = draw(body)
    key = draw(st.sampled_from(sorted(edges)))
    obj[key] = draw(edges[key])
    return obj


CHAT_EDGES = {
    **EDGES,
    "messages": st.lists(message, max_size=3),
    "tools": st.lists(values, min_size=1, max_size=1),
    "n": st.sampled_from([0, 2]),
    "top_p": st.sampled_from([0, 1.0000001, float("nan")]),
    "stop": st.sampled_from([["a"] * 5, "", [""], ["\x00"]]),
    "stream_options": st.sampled_from([{"include_usage": True}, {"include_usage": "no"}]),
}
TRANSLATE_EDGES = {
    **EDGES,
    "glossary": values | st.sampled_from([{"": "x"}, {"Hello": ""}, {"a" * 500: "b"}]),
    "text": texts,
    "source_lang": langs,
    "target_lang": langs,
    "style": st.sampled_from(["rude", ""]),
    "extra": values,
}


@st.composite
def request(draw) -> tuple[str, bytes]:
    """One POST: a request that must be served, one with an edge value, a mutated one, or no request at all."""
    route = draw(st.sampled_from(ROUTES))
    chat = route.endswith("completions")
    valid, edges = (valid_chat, CHAT_EDGES) if chat else (valid_translate, TRANSLATE_EDGES)
    kind = draw(st.sampled_from(["valid", "valid", "edge", "edge", "mutated", "mutated", "value", "bytes", "deep"]))
    if kind == "valid":
        raw = json.dumps(draw(valid)).encode()
    elif kind == "edge":
        raw = json.dumps(draw(edged(valid, edges))).encode()
    elif kind == "mutated":
        raw = json.dumps(draw(mutated(valid))).encode()
        if draw(st.booleans()):  # and damaged bytes in it
            at = draw(st.integers(0, len(raw)))
            raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\x00", b"{", b'"', b"\xed\xa0\x80"])) + raw[at:]
    elif kind == "value":
        raw = json.dumps(draw(values)).encode()
    elif kind == "deep":
        depth = draw(st.integers(500, 20_000))
        raw = b'{"messages": ' + b"[" * depth + b"]" * depth + b"}"
    else:
        raw = draw(st.binary(max_size=40))
    return route, raw


def check_response(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        err = r.json()["error"]
        assert isinstance(err["message"], str) and err["message"].strip(), r.text
        assert "\n" not in err["message"], err["message"]
    elif r.headers.get("content-type", "").startswith("text/event-stream"):
        assert "server_error" not in r.text, r.text[-300:]


FUZZ = settings(
    max_examples=80, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


def test_random_bodies_get_4xx_with_a_message_never_5xx(make_server, tiny_engine):
    url = make_server(tiny_engine, max_new_tokens=8, default_max_tokens=4, max_input_tokens=200)
    with httpx.Client(base_url=url, timeout=60) as c:
        # the server answers real requests, so the 4xx below are about the bodies, not a broken server
        r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["role"] == "assistant"
        r = c.post("/v1/translate", json={"text": "Hi", "source_lang": "en", "target_lang": "de"})
        assert r.status_code == 200 and r.json()["target_lang"] == "deu_Latn"

        @FUZZ
        @given(request())
        @example(("/v1/chat/completions", b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"))  # found: a 500
        @example(("/v1/chat/completions", json.dumps({**HI, "seed": 2**64}).encode()))  # found: a 500
        @example(("/v1/chat/completions", json.dumps({**HI, "seed": -(2**63) - 1, "stream": True}).encode()))
        @example(("/v1/translate", json.dumps({**HELLO, "seed": 2**70}).encode()))  # found: a 500
        @example(("/v1/chat/completions", json.dumps({**HI, "temperature": 1e-300}).encode()))  # found: a 500
        @example(("/v1/translate", json.dumps({**HELLO, "temperature": 3.4e-89, "stream": True}).encode()))
        def fuzz(req):
            route, raw = req
            check_response(c.post(route, content=raw, headers={"content-type": "application/json"}))

        fuzz()
