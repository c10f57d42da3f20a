"""``bayling serve RUN_DIR|MODEL``: the OpenAI-compatible HTTP API and the interactive-translation page."""

from __future__ import annotations

import argparse

from bayling.cli._common import bounded
from bayling.serve.config import Port


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve an OpenAI-compatible API (/v1/chat/completions, /v1/translate, /v1/models) and a web page",
        description="Serve a run's tuned model or any model over HTTP. Settings come from ServeConfig: the run's "
        "serve: section (for a run directory), then --config YAML, then key=value overrides right after TARGET (e.g. "
        "max_queue=16 engine_options.n_ctx=4096); the flags below win over all of them. Set BAYLING_API_KEY to require 'Authorization: Bearer <key>'.",
    )
    p.add_argument("target", help="a run directory (uses its tuned model) or a model reference, e.g. gemma-3-270m")
    p.add_argument("overrides", nargs="*", help="ServeConfig overrides, e.g. max_queue=16 max_new_tokens=256")
    p.add_argument("--config", help="ServeConfig YAML, e.g. configs/serve/cpu.yaml")
    p.add_argument("--engine", help="transformers | llamacpp | vllm (default: transformers)")
    p.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    bounded(p, "--port", kind=Port, help="port (default 8000)")
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from bayling.config import from_dict, load_config, read_yaml, to_dict
    from bayling.errors import ConfigError
    from bayling.layout import RunLayout
    from bayling.serve.api import serve
    from bayling.serve.config import ServeConfig

    base = None
    if RunLayout.is_run(args.target):  # a run directory: its own `serve:` section first
        path = RunLayout(args.target).config  # only that section: a run saved before other sections moved still serves
        try:
            base = to_dict(from_dict(ServeConfig, read_yaml(path).get("serve") or {}, "serve"))
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    cfg = load_config(ServeConfig, args.config, args.overrides, base=base)
    serve(args.target, engine=args.engine, host=args.host, port=args.port, config=cfg)
    return 0
