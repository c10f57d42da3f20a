"""``bayling chat RUN_DIR|MODEL``: chat in the terminal with a run's tuned model or any model."""

from __future__ import annotations

import argparse

from bayling.cli._common import bounded
from bayling.config import Positive, Temperature


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chat",
        help="chat in the terminal (history, /reset, /translate [SRC:]TGT TEXT, /refine, /quit)",
        description="Chat with a run's tuned model or any model. Inside the chat, /help lists the commands.",
    )
    p.add_argument("target", help="a run directory (uses its tuned model) or a model reference, e.g. gemma-3-270m")
    p.add_argument("-m", "--message", action="append", help="answer this message and exit (repeatable: one turn each)")
    p.add_argument("--engine", default="transformers", help="transformers | llamacpp | vllm")
    bounded(p, "--max-new-tokens", kind=Positive, default=256)
    bounded(p, "--temperature", kind=Temperature, default=0.0, help="0 = greedy (default)")
    p.set_defaults(func=_chat)


def _chat(args: argparse.Namespace) -> int:
    from bayling.engines import load_engine
    from bayling.serve.chat import chat_loop

    engine = load_engine(args.target, engine=args.engine)
    chat_loop(engine, messages=args.message, max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    return 0
