"""``bayling eval``: the evaluation stage of a run, eval-only runs, file scoring, reports, test-set downloads.

Usage::

    bayling eval CONFIG [key=value ...] [--force]        # stage of a run: base vs tuned, before/after table
    bayling eval run EVAL_CONFIG [key=value ...]         # eval-only run (configs/eval/*.yaml)
    bayling eval score --hyp FILE --ref FILE [--ref FILE2] --tgt-lang zh [--tokenize auto] [--off-target] [--json] [--encoding E]
    bayling eval report EVAL_DIR                         # rebuild report.json/report.html from metrics.json
    bayling eval download flores200 wmt22 ntrex --dest DIR
    bayling eval download flores200-spm                  # spBLEU's SentencePiece model, into sacreBLEU's cache
"""

from __future__ import annotations

import argparse
import json

from bayling.cli._common import add_config_args, run_stages
from bayling.validate import DECODE_ERRORS, ENCODING_HINT

SUBCOMMANDS = ("run", "score", "report", "download")
HELP = "evaluate: the eval stage of a run, eval-only runs, file scoring, reports, test-set downloads"
DESCRIPTIONS = {
    "run": "eval-only run: score the systems of an eval config (configs/eval/*.yaml)",
    "score": "score a hypothesis file with sacreBLEU (BLEU with the target language's tokenizer, chrF++, TER)",
    "report": "rebuild report.json and report.html of an evaluation directory",
    "download": "download test sets from their original sources into the shared-data layout, and the FLORES-200 "
    "SentencePiece model for spBLEU (flores200-spm) into sacreBLEU's cache",
}


def needs_stage(rest: list[str]) -> bool:
    """Whether ``bayling eval REST`` is the run-config form (then the hidden ``stage`` subcommand is meant)."""
    return bool(rest) and rest[0] not in (*SUBCOMMANDS, "-h", "--help")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help=HELP,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="bayling eval {CONFIG,run,score,report,download} ...",
    )
    p.set_defaults(func=lambda a: raise_usage("a run config or a subcommand is required"))
    cmds = p.add_subparsers(dest="eval_command", metavar="{run,score,report,download}")
    stage = cmds.add_parser("stage", prog="bayling eval", description="the eval stage of a run")  # hidden: no help=
    add_config_args(stage).set_defaults(func=lambda a: run_stages(a, ["eval"]) and 0, leaf=stage)
    for name, func in (("run", _run), ("score", _score), ("report", _report), ("download", _download)):
        sp = cmds.add_parser(
            name, prog=f"bayling eval {name}", help=DESCRIPTIONS[name], description=DESCRIPTIONS[name]
        )
        _add_arguments(sp, name)
        sp.set_defaults(func=func, leaf=sp)


def raise_usage(msg: str) -> None:
    from bayling.errors import ConfigError

    raise ConfigError(f"{msg}; usage: bayling eval {{CONFIG,run,score,report,download}} ... (see bayling eval -h)")


def _add_arguments(p: argparse.ArgumentParser, name: str) -> None:
    if name == "run":
        p.add_argument("config", help="eval config YAML")
        p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. eval.max_sentences=5")
    elif name == "score":
        p.add_argument("--hyp", required=True, help="system output, one segment per line")
        p.add_argument("--ref", required=True, action="append", help="reference file (repeat for several)")
        p.add_argument("--tgt-lang", required=True, help="target language (zh, ja, de, eng_Latn…)")
        p.add_argument("--src", help="source file (for COMET)")
        p.add_argument("--src-lang", help="source language (for the off-target check)")
        p.add_argument("--metrics", nargs="+", default=["bleu", "chrf"], help="bleu chrf ter")
        p.add_argument(
            "--tokenize",
            default="wmt",
            help="BLEU tokenizer: wmt (sacreBLEU's default per language; the default), auto (spBLEU whenever the "
            "FLORES-200 model is available) or a sacreBLEU tokenizer (13a, flores200, char...); unspaced scripts "
            "without spBLEU get no BLEU",
        )
        p.add_argument("--spm-model", help="FLORES-200 SentencePiece model (default: sacreBLEU's copy)")
        p.add_argument("--off-target", action="store_true", help="also report the off-target-language rate")
        p.add_argument("--comet", metavar="CKPT", help="local COMET checkpoint (needs bayling[comet])")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.add_argument("--encoding", default="utf-8", help="encoding of the files (default utf-8)")
        p.add_argument(
            "--errors",
            default="strict",
            choices=DECODE_ERRORS,
            help="undecodable bytes: strict (fail naming line and byte, the default), replace (U+FFFD), ignore…",
        )
    elif name == "report":
        p.add_argument("eval_dir", help="directory holding metrics.json (e.g. runs/quickstart/eval)")
    else:
        p.add_argument("names", nargs="+", choices=["flores200", "wmt22", "ntrex", "flores200-spm"])
        p.add_argument("--dest", help="data root (for the test sets); then set $BAYLING_EVAL_DATA to it")
        p.add_argument("--spm-dest", help="where to put flores200-spm (default: where sacreBLEU looks for it)")


def _run(args: argparse.Namespace) -> int:
    from bayling.evaluate.eval_only import run_eval_config

    run_eval_config(args.config, args.overrides)
    return 0


def _score(args: argparse.Namespace) -> int:
    from bayling.errors import DataError
    from bayling.evaluate.metrics import score_files
    from bayling.validate import check_encoding

    check_encoding(args.encoding, args.errors)
    try:
        res = score_files(
            args.hyp,
            args.ref,
            args.tgt_lang,
            args.metrics,
            args.src,
            args.src_lang,
            args.off_target,
            args.comet,
            bleu_tokenize=args.tokenize,
            spm_model=args.spm_model,
            encoding=args.encoding,
            errors=args.errors,
        )
    except DataError as e:
        raise DataError(f"{e}{ENCODING_HINT if 'not valid' in str(e) else ''}") from None
    if args.json:
        print(json.dumps(res, ensure_ascii=False, indent=2))
        return 0
    for name, v in res.items():
        if isinstance(v, dict) and v["score"] is None:
            print(f"{name:<10} {'n/a':>7}  {v['reason']}")
        elif isinstance(v, dict):
            print(f"{name:<10} {v['score']:>7.2f}  {v['signature']}")
        elif name != "n":
            print(f"{name:<10} {v:>7.2f}")
    print(f"{'segments':<10} {res['n']:>7}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from bayling.evaluate.report import rebuild_report

    _, page = rebuild_report(args.eval_dir)
    print(page)
    return 0


def _download(args: argparse.Namespace) -> int:
    from bayling.evaluate.download import download, download_flores200_spm

    sets = [n for n in args.names if n != "flores200-spm"]
    if sets and not args.dest:
        raise_usage(f"downloading {', '.join(sets)} needs --dest DIR")
    for path in download(sets, args.dest) if sets else []:
        print(path)
    if "flores200-spm" in args.names:
        print(download_flores200_spm(args.spm_dest))
    return 0
