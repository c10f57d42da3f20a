"""``bayling run|data|train|eval CONFIG [key=value ...]``: run the pipeline or one stage of it."""

from __future__ import annotations

import argparse

from bayling.config import RunConfig, load_config


def _add(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("config", help="YAML preset, e.g. configs/quickstart.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.max_steps=10 eval.max_sentences=5")
    p.add_argument("--force", action="store_true", help="re-run the stage even if its outputs are current")
    return p


def register(sub: argparse._SubParsersAction) -> None:
    _add(sub, "run", "run data -> train -> eval -> chat, caching each stage in the run directory").set_defaults(
        func=lambda a: _run(a, None)
    )
    _add(sub, "data", "build the instruction data (train.jsonl, heldout.jsonl, stats.json)").set_defaults(
        func=lambda a: _run(a, ["data"])
    )
    _add(sub, "train", "fine-tune the model on the built data (LoRA or full)").set_defaults(
        func=lambda a: _run(a, ["train"])
    )
    _add(sub, "eval", "score base and tuned model with sacreBLEU and print the before/after table").set_defaults(
        func=lambda a: _run(a, ["eval"])
    )


def _run(args: argparse.Namespace, stages: list[str] | None) -> int:
    from bayling.pipeline import run

    cfg = load_config(RunConfig, args.config, args.overrides)
    run_dir = run(cfg, stages=stages, force=args.force)
    print(run_dir)
    return 0
