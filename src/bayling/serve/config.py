"""Configs of the serving side: one chat turn at the end of a run, and the HTTP server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ChatConfig:
    """The chat stage of ``bayling run``: answer one turn with the tuned model, as a smoke test."""

    prompt: str = "Translate the following sentence into Chinese.\nThe train to Berlin leaves at nine o'clock."
    max_new_tokens: int = 64


@dataclass
class ServeConfig:
    """``bayling serve``: an OpenAI-compatible HTTP API."""

    engine: str = "transformers"
    """``transformers``, ``llamacpp`` or ``vllm``."""
    host: str = "127.0.0.1"
    port: int = 8000
    max_new_tokens: int = 512
