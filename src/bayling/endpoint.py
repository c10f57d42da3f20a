"""An OpenAI-compatible endpoint and how to call it: the settings the data stage's teacher and the evaluation's
judge share.

Both stages talk to a chat-completions API through the ``openai`` client; they differ in what they ask and in
their defaults (a teacher samples at 0.7 and retries patiently; a judge answers at 0 with a longer timeout), not
in what a setting means. :class:`EndpointConfig` declares those settings once; ``data.teacher``
(:class:`bayling.data.config.TeacherConfig`) and ``eval.open_ended.judge`` (:class:`bayling.evaluate.judge.JudgeConfig`)
extend it with their own fields and defaults. The key itself never lives in a config: ``api_key_env`` names the
environment variable that holds it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from bayling.config import Count, Positive, PositiveFloat, Temperature
from bayling.errors import ConfigError


@dataclass
class EndpointConfig:
    """Where an OpenAI-compatible chat endpoint is and how requests to it are made."""

    model: str = "gpt-4o-mini"
    """Model name sent in each request (whatever name the endpoint serves)."""
    base_url: str | None = None
    """API root, e.g. ``http://127.0.0.1:8000/v1``; default ``$BASE_URL_ENV``, then the OpenAI API."""
    base_url_env: str = "OPENAI_BASE_URL"
    """Environment variable read for the API root when ``base_url`` is not set."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key (the key itself never goes in a config)."""
    temperature: Temperature = 0.7
    max_tokens: Positive = 512
    """Tokens the endpoint may generate per request."""
    timeout_s: PositiveFloat = 60.0
    """Per-request timeout in seconds."""
    max_retries: Count = 6
    """Retries per request on 429, 5xx, timeouts and connection errors (with backoff)."""
    concurrency: Positive = 8
    """Requests in flight at once."""


def connection(cfg: EndpointConfig, key: str) -> tuple[str | None, str]:
    """``(base_url, api_key)`` for ``cfg``; ``key`` is the config key of the section, for the error.

    A local server usually ignores the key, so a missing key is fine once an API root is set; with neither,
    the request would go to the OpenAI API without a key, which is an error worth stopping for.

    Raises:
        ConfigError: neither ``$API_KEY_ENV`` nor an API root is set.
    """
    base_url = cfg.base_url or os.environ.get(cfg.base_url_env) or None
    api_key = os.environ.get(cfg.api_key_env)
    if not api_key and base_url is None:
        raise ConfigError(f"{key}: set ${cfg.api_key_env} (or {key}.base_url for a local server)")
    return base_url, api_key or "not-needed"
