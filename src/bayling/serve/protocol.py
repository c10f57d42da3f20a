"""The wire format: OpenAI's chat-completions schema (requests, responses, SSE chunks, errors).

Requests are validated with pydantic models; every failure becomes OpenAI's error shape
``{"error": {"message", "type", "param", "code"}}`` with a 4xx status, so the official ``openai``
client raises its usual ``BadRequestError``/``AuthenticationError``/``RateLimitError``.
Differences from OpenAI, on purpose: sampling is greedy unless ``temperature`` is given (reproducible
translations), and only ``n=1`` is served.

Bounds on what a client controls (each violation is a 400 naming the field and the limit):

* ``stop``: at most :data:`MAX_STOP` strings of at most :data:`MAX_STOP_CHARS` characters each.
* ``max_tokens``/``max_completion_tokens`` >= 1 (and at most ``serve.max_new_tokens``, checked by the
  server); ``temperature`` 0..2; ``top_p`` in (0, 1]; ``seed`` a signed 64-bit integer.
* ``messages``: at least one (at most ``serve.max_messages``, and the prompt at most
  ``serve.max_input_tokens`` tokens and the context window minus ``max_tokens``: checked by the server).
* ``n``: only 1. ``logprobs``/``top_logprobs``, ``tools``/``tool_choice``/``functions``/``function_call``,
  ``response_format``, ``logit_bias``, ``frequency_penalty``/``presence_penalty``, ``modalities``: accepted
  only at values that ask for nothing this server does not do (``logprobs: false``, ``tools: []``,
  ``response_format: {"type": "text"}``, penalties 0…), otherwise rejected.
* Unknown fields are **rejected** with ``unrecognized request argument supplied: NAME``, as OpenAI's API
  does. OpenAI fields that do not change the reply (``user``, ``metadata``, ``store``, ``service_tier``,
  ``parallel_tool_calls``, ``prompt_cache_key``, ``safety_identifier``) are accepted and ignored.
  Inside a message, unknown keys (``name``, ``refusal``, ``annotations``… that clients echo back) are
  ignored; its ``role`` and ``content`` are validated.
* ``/v1/translate``: the fields of :class:`TranslationRequest` only; at most :data:`MAX_GLOSSARY` glossary
  entries.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_STOP = 4
"""Most ``stop`` strings in one request (OpenAI's limit)."""
MAX_STOP_CHARS = 128
"""Longest ``stop`` string (a stream holds back that many characters while it may be a partial match)."""
MAX_GLOSSARY = 64
"""Most glossary entries in one ``/v1/translate`` request."""
_INT64 = 2**63


class APIError(Exception):
    """An error answered to the client with ``status`` in OpenAI's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        bad = [p.type for p in self.content if p.type != "text"]
        if bad:
            raise APIError(400, f"only text content is supported, got a {bad[0]!r} part", param="messages")
        return "".join(p.text or "" for p in self.content)

    def as_dict(self) -> dict[str, str]:
        return {"role": "system" if self.role == "developer" else self.role, "content": self.text()}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions`` (see the module docstring for what is bounded, ignored or rejected)."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=-_INT64, lt=_INT64)
    stop: str | list[str] | None = Field(None, validate_default=True)
    n: int | None = 1
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    # accepted only when they ask for nothing (checked below)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    response_format: dict[str, Any] | None = None
    logit_bias: dict[str, float] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    modalities: list[str] | None = None
    # accepted and ignored: they do not change the reply
    user: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None
    parallel_tool_calls: bool | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> list[str]:
        stops = [v] if isinstance(v, str) else list(v or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences, got {len(stops)}")
        for s in stops:
            if len(s) > MAX_STOP_CHARS:
                raise ValueError(f"a stop sequence may have at most {MAX_STOP_CHARS} characters, got {len(s)}")
        return [s for s in stops if s]

    @field_validator("n")
    @classmethod
    def _n(cls, v: int | None) -> int:
        if v not in (None, 1):
            raise ValueError("only n=1 is supported")
        return 1

    @field_validator("stream")
    @classmethod
    def _stream(cls, v: bool | None) -> bool:
        return bool(v)

    @field_validator("logprobs", "top_logprobs")
    @classmethod
    def _no_logprobs(cls, v: Any) -> Any:
        if v:
            raise ValueError("log probabilities are not returned by this server")
        return v

    @field_validator("tools", "functions")
    @classmethod
    def _no_tools(cls, v: Any) -> Any:
        if v:
            raise ValueError("tools are not supported by this server")
        return v

    @field_validator("tool_choice", "function_call")
    @classmethod
    def _no_tool_choice(cls, v: Any) -> Any:
        if v not in (None, "none", "auto"):
            raise ValueError("tools are not supported by this server")
        return v

    @field_validator("response_format")
    @classmethod
    def _text_only(cls, v: dict[str, Any] | None) -> Any:
        if v and v.get("type", "text") != "text":
            raise ValueError(f"only text replies are supported, not {v.get('type')!r}")
        return v

    @field_validator("logit_bias")
    @classmethod
    def _no_bias(cls, v: Any) -> Any:
        if v:
            raise ValueError("logit_bias is not supported by this server")
        return v

    @field_validator("frequency_penalty", "presence_penalty")
    @classmethod
    def _no_penalty(cls, v: float | None) -> Any:
        if v:
            raise ValueError("penalties are not supported by this server (only 0)")
        return v

    @field_validator("modalities")
    @classmethod
    def _text_modality(cls, v: list[str] | None) -> Any:
        if v and v != ["text"]:
            raise ValueError("only the text modality is supported")
        return v


class TranslationRequest(BaseModel):
    """``POST /v1/translate``: one text, two languages, optional glossary and style."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    source_lang: str = Field(min_length=1)
    target_lang: str = Field(min_length=1)
    glossary: dict[str, str] | None = Field(None, max_length=MAX_GLOSSARY)
    style: Literal["formal", "casual", "short"] | None = None
    instruction_lang: str = "eng_Latn"
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    seed: int | None = Field(None, ge=-_INT64, lt=_INT64)
    stream: bool = False


def parse_body(raw: bytes, model: type[BaseModel]) -> Any:
    """Decode a JSON body and validate it, raising :class:`APIError` with a readable 400 message."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise APIError(400, f"request body is not valid JSON: {e}", code="invalid_json") from None
    except RecursionError:  # was a 500
        raise APIError(400, "request body is not valid JSON: nested too deeply", code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, f"request body must be a JSON object, got {type(data).__name__}", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "body"
        if first["type"] == "extra_forbidden":  # OpenAI's wording for an unknown field
            raise APIError(
                400, f"unrecognized request argument supplied: {where}", param=where, code=first["type"]
            ) from None
        msg = "field required" if first["type"] == "missing" else first["msg"]
        more = f" (and {e.error_count() - 1} more problems)" if e.error_count() > 1 else ""
        raise APIError(400, f"{where}: {msg}{more}", param=where, code=first["type"]) from None


# --- responses ------------------------------------------------------------------------------------


def new_id(prefix: str = "chatcmpl") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(cid: str, model: str, text: str, finish_reason: str, use: dict[str, int]) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object."""
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": use,
    }


def chunk(
    cid: str,
    created: int,
    model: str,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    use: dict[str, int] | None = None,
    with_usage: bool = False,
) -> str:
    """One SSE event of a ``chat.completion.chunk`` (``delta=None``: the final usage-only chunk)."""
    obj: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if with_usage:
        obj["usage"] = use
    return sse(obj)


def sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


DONE = "data: [DONE]\n\n"


class StopScanner:
    """Cut a stream at the first of the request's ``stop`` strings, holding back possible partial matches.

    ``feed`` returns the text that is certainly not part of a stop string, and whether one was hit.
    """

    def __init__(self, stops: list[str] | None):
        self.stops = [s for s in stops or [] if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buf = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        if not self.stops:
            return piece, False
        self.buf += piece
        hits = [i for i in (self.buf.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.buf = self.buf[: min(hits)], ""
            return out, True
        cut = max(len(self.buf) - self.hold, 0)
        out, self.buf = self.buf[:cut], self.buf[cut:]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out

    def cut(self, text: str) -> tuple[str, bool]:
        """Apply the stops to a whole reply."""
        hits = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        return (text[: min(hits)], True) if hits else (text, False)
