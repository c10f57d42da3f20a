"""Serving fixtures: the tiny Llama behind the transformers engine, and real uvicorn servers on 127.0.0.1.

``make_server(engine, api_key=..., **serve_config)`` starts :func:`bayling.serve.api.create_app` in a
real uvicorn server on a free loopback port (in a thread of the test process) and returns its base URL;
every server is shut down at the end of the test.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(engine, api_key: str | None = "", **cfg) -> Iterator[str]:
    """Serve ``engine`` on 127.0.0.1 (uvicorn, real sockets) for the duration of the block."""
    import uvicorn

    from bayling.serve.api import create_app
    from bayling.serve.config import ServeConfig

    port = free_port()
    app = create_app(engine, ServeConfig(port=port, **cfg), api_key=api_key)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "server did not shut down"


@pytest.fixture(scope="module")
def server(tiny_engine) -> Iterator[str]:
    """One shared server with default limits plus a small max_input_tokens, for tests that do not change config."""
    with running_server(tiny_engine, max_input_tokens=200, max_new_tokens=400) as url:
        yield url


@pytest.fixture
def make_server():
    stack = contextlib.ExitStack()

    def start(engine, **kwargs) -> str:
        return stack.enter_context(running_server(engine, **kwargs))

    with stack:
        yield start


@pytest.fixture
def fake_vllm(monkeypatch):
    """``tests/serve/fake_vllm.py`` installed as ``vllm`` in ``sys.modules`` for one test."""
    import importlib.util
    import sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bayling_fake_vllm", Path(__file__).with_name("fake_vllm.py"))
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    for name, mod in module.modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    return module
