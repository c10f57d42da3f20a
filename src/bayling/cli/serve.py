"""``bayling serve RUN_DIR|MODEL``: the OpenAI-compatible HTTP API."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve an OpenAI-compatible API (/v1/chat/completions, /v1/models)")
    p.add_argument("target", help="a run directory (uses its tuned model) or a model reference")
    p.add_argument("--engine", default="transformers", help="transformers | llamacpp | vllm")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from bayling.serve.api import serve

    serve(args.target, engine=args.engine, host=args.host, port=args.port)
    return 0
