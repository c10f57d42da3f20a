"""Configs of the serving side: one chat turn at the end of a run, and the HTTP server.

``bayling serve TARGET --config configs/serve.yaml key=value`` loads :class:`ServeConfig`; every field
below is a YAML key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from bayling.config import Count, Positive, PositiveFloat, between, check_bounds
from bayling.errors import ConfigError

Port = Annotated[int, between(1, 65535)]
"""A TCP port (``serve.port`` and ``bayling serve --port``)."""

LOOPBACK = ("localhost", "127.0.0.1", "::1")
"""Names of this machine: binding to one keeps the server private, and they are the Host names it accepts."""


@dataclass
class ChatConfig:
    """The chat stage of ``bayling run``: answer one turn with the tuned model, as a smoke test."""

    prompt: str = "Translate the following sentence into Chinese.\nThe train to Berlin leaves at nine o'clock."
    max_new_tokens: Positive = 64


@dataclass
class ServeConfig:
    """``bayling serve``: an OpenAI-compatible HTTP API plus the interactive-translation page."""

    engine: str = "transformers"
    """``transformers``, ``llamacpp`` or ``vllm``."""
    host: str = "127.0.0.1"
    """Interface to bind; the default keeps the server private to this machine."""
    port: Port = 8000
    model_name: str | None = None
    """Model id reported by ``/v1/models`` (default: the run's or model's name)."""
    max_new_tokens: Positive = 512
    """The most tokens one request may ask for (``max_tokens``); more is a 400, not a silent clamp."""
    default_max_tokens: Positive = 256
    """Reply length when a request gives no ``max_tokens``."""
    max_input_tokens: Positive = 2048
    """The longest rendered prompt accepted (also bounded by the engine's context window)."""
    max_messages: Positive = 64
    """Most messages in one conversation."""
    max_request_bytes: Positive = 1_000_000
    """Largest request body; bigger is a 413."""
    max_queue: Count = 32
    """Requests allowed to wait while the engine is busy; one more is answered 429 at once."""
    max_batch_size: Positive = 8
    """Waiting non-streaming requests with the same sampling settings answered in one engine call."""
    queue_timeout_s: PositiveFloat = 120.0
    """A request still waiting after this long is answered 503 instead of hanging."""
    generation_timeout_s: PositiveFloat = 600.0
    """A plain request whose generation runs longer than this (a stream silent this long) is answered 504; a
    hung engine then costs each client one bounded wait, and ``/health`` reports ``stalled``."""
    api_key_env: str = "BAYLING_API_KEY"
    """Environment variable holding the API key; when it is set, ``/v1/*``, ``/docs`` and ``/openapi.json``
    need ``Authorization: Bearer``."""
    cors_origins: list[str] = field(default_factory=list)
    """Origins (``scheme://host[:port]``) whose web pages may call this server from a browser (CORS allow-list).
    Empty (the default): none; the server's own page at ``/`` works, a request from any other page is a 403."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Host names clients may reach the server by (the ``Host`` header; a DNS-rebinding guard). Empty (the
    default): ``localhost``, ``127.0.0.1`` and ``::1`` when bound to a loopback address, no check otherwise
    (behind a public name, list it here, and set an API key)."""
    web: bool = True
    """Serve the interactive-translation page at ``/``."""
    engine_options: dict[str, Any] = field(default_factory=dict)
    """Extra engine constructor arguments, e.g. ``{n_ctx: 4096}`` (llamacpp), ``{batch_size: 16}`` (transformers),
    ``{gpu_memory_utilization: 0.8}`` (vllm)."""

    def __post_init__(self) -> None:
        check_bounds(self, "serve")
        if self.default_max_tokens > self.max_new_tokens:
            raise ConfigError("serve.default_max_tokens must not exceed serve.max_new_tokens")
        for origin in self.cors_origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ConfigError(f"serve.cors_origins: {origin!r} is not an origin like 'https://example.org:8080'")
        for host in self.allowed_hosts:
            if not host or "/" in host or " " in host:
                raise ConfigError(f"serve.allowed_hosts: {host!r} is not a host name")

    def host_allow_list(self) -> frozenset[str] | None:
        """Host names the ``Host`` header may carry (lower case, no port), or None for no check."""
        if self.allowed_hosts:
            return frozenset(h.lower().strip("[]") for h in self.allowed_hosts)
        if self.host in LOOPBACK:
            return frozenset(LOOPBACK)
        return None
