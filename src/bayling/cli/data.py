"""``bayling data``: build instruction data.

Run as::

    bayling data RUN_CONFIG [key=value ...] [--force]      # the data stage of a run (RUN_DIR/data)
    bayling data build CONFIG [key=value ...] [-o OUT]     # a data-only preset, e.g. configs/data/flores-100langs.yaml
    bayling data teacher CONFIG [key=value ...] [-o OUT]   # only the teacher-LLM part (resumable journal)
    bayling data stats FILE [--tokenizer MODEL]            # counts, tokens and fertility of a chat JSONL
    bayling data check FILE [--flores DIR --languages ...] [--wmt DIR] [--eval-file F]   # contamination

``build``/``teacher`` take a data-only preset (``name``, ``out_dir``, ``seed``, ``data:``) or a run config
(then they write into ``RUN_DIR/data``; :func:`bayling.pipeline.load_data_config` tells them apart). The
first form is the hidden subcommand ``stage``: :func:`bayling.cli.main` inserts it when the word after
``data`` is not a subcommand, so ``bayling data configs/quickstart.yaml`` keeps working.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bayling.cli._common import add_config_args, bounded, run_stages
from bayling.config import Positive

SUBCOMMANDS = ("build", "teacher", "stats", "check")
FORMS = "forms:\n" + __doc__.split("Run as::\n\n", 1)[1].split("\n\n", 1)[0]
USAGE = "bayling data [-h] RUN_CONFIG [key=value ...] [--force] | bayling data {build,teacher,stats,check} ..."
HELP = {
    "build": "build a dataset from a data-only preset or a run config",
    "teacher": "run only the teacher-LLM generation (resumes from its journal)",
    "stats": "stats of a chat JSONL (messages) or ShareGPT file",
    "check": "contamination of a training file against evaluation sets (exit 1 when found)",
}


def needs_stage(rest: list[str]) -> bool:
    """Whether ``bayling data REST`` is the run-config form (then the hidden ``stage`` subcommand is meant)."""
    return not rest or rest[0] not in (*SUBCOMMANDS, "-h", "--help")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="build instruction data: data CONFIG | data {build,teacher,stats,check} ...",
        description=__doc__.split("\n\n")[0],
        usage=USAGE,
        epilog=FORMS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = p.add_subparsers(dest="data_command", required=True, metavar="{build,teacher,stats,check}")
    stage = cmds.add_parser(  # no help=: hidden from the list (`bayling data CONFIG`, see needs_stage)
        "stage", prog="bayling data", usage=USAGE, epilog=FORMS, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_config_args(stage).set_defaults(func=lambda a: run_stages(a, ["data"]) and 0, leaf=stage)
    for cmd, func in (("build", _build), ("teacher", _teacher), ("stats", _stats), ("check", _check)):
        sp = cmds.add_parser(cmd, prog=f"bayling data {cmd}", help=HELP[cmd], description=HELP[cmd])
        _add_arguments(sp, cmd)
        # build/teacher are parsed again with parse_intermixed_args, so `-o OUT` may sit between overrides
        sp.set_defaults(func=func, leaf=sp, intermixed=cmd in ("build", "teacher"))


def _add_arguments(sp: argparse.ArgumentParser, cmd: str) -> None:
    if cmd in ("build", "teacher"):
        sp.add_argument("config", help="configs/data/*.yaml (or a run config)")
        sp.add_argument("overrides", nargs="*", help="dotted overrides, e.g. data.total=5000 data.num_proc=2")
        sp.add_argument("-o", "--out", help="output directory (default: out_dir of the preset)")
    elif cmd == "stats":
        sp.add_argument("file")
        sp.add_argument("--tokenizer", help="model name/path whose tokenizer counts tokens (e.g. gemma-3-270m)")
        sp.add_argument("--skip-bad", action="store_true", help="skip malformed lines (counted) instead of failing")
        sp.add_argument("--json", help="also write the stats to this JSON file")
    else:
        sp.add_argument("file")
        sp.add_argument("--flores", help="FLORES-200 directory (devtest of --languages)")
        sp.add_argument(
            "--languages", nargs="*", default=["eng_Latn", "zho_Hans"], help="FLORES languages (or flores101/all)"
        )
        sp.add_argument("--wmt", help="directory of evaluation files whose suffix is a language (WMT22 layout)")
        sp.add_argument("--eval-file", action="append", default=[], help="more evaluation files (text or JSONL)")
        bounded(sp, "--ngram", kind=Positive, default=13)
        sp.add_argument("--skip-bad", action="store_true", help="skip malformed lines (counted) instead of failing")


def _build(args: argparse.Namespace) -> int:
    from bayling.data import build
    from bayling.pipeline import load_data_config

    data, out, seed = load_data_config(args.config, args.overrides, args.out)
    result = build(data, out, seed)
    _print_summary(result.stats, result.out_dir)
    return 0


def _teacher(args: argparse.Namespace) -> int:
    from bayling.data.builder import generate_teacher
    from bayling.pipeline import load_data_config

    data, out, seed = load_data_config(args.config, args.overrides, args.out)
    result = generate_teacher(data, out, seed)
    print(json.dumps(result.stats, ensure_ascii=False, indent=2))
    print(result.file)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from bayling.data.stats import file_stats
    from bayling.io import write_json

    info = file_stats(args.file, args.tokenizer, args.skip_bad)
    if args.json:
        write_json(args.json, info)
    print(json.dumps(info, ensure_ascii=False, indent=2))
    return 0


def _check(args: argparse.Namespace) -> int:
    from bayling.data.check import check_file

    report = check_file(
        args.file, args.languages, args.flores, args.wmt, args.eval_file, args.ngram, skip_bad=args.skip_bad
    )
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 1 if report["contaminated"] else 0


def _print_summary(s: dict[str, Any], out: Path) -> None:
    from rich.table import Table

    from bayling.progress import console

    t = Table(title=f"bayling data: {out}", show_header=False)
    t.add_row("examples", f"{s['examples']:,}")
    t.add_row("tasks", ", ".join(f"{k} {v:,}" for k, v in s["tasks"].items()))
    t.add_row("languages / directions", f"{s['languages_count']} / {s['directions_count']}")
    t.add_row("held-out records", str(s["heldout_records"]))
    t.add_row("dropped", ", ".join(f"{k} {v:,}" for k, v in s["dropped"].items()) or "none")
    if s.get("tokens"):
        t.add_row("tokens", f"{s['tokens']['total']:,} ({s['tokens']['tokenizer']})")
    t.add_row("seconds", str(s["seconds"]))
    console.print(t)
    print(out)
