"""The ``bayling`` command: a thin dispatcher over one entry function per stage.

Run as::

    bayling run configs/quickstart.yaml          # data -> train -> eval -> chat
    bayling data|train|eval CONFIG [key=value]    # one stage (earlier stages run if missing)
    bayling chat RUN_DIR|MODEL                    # terminal chat
    bayling serve RUN_DIR|MODEL                   # OpenAI-compatible HTTP API
    bayling push RUN_DIR ORG/NAME                 # adapter + model card to the Hugging Face Hub

Models and data sets named by Hub id are downloaded on first use; ``--offline`` (or ``BAYLING_OFFLINE=1``)
uses the local cache only. Verbosity (``-v``) never changes network behaviour.

User errors (bad file, bad key, unknown language or model, a path that cannot be read or written) print one
``bayling: error:`` line and exit with status 2; Ctrl-C exits with 130 and keeps every finished stage.
``tests/cli/test_errors_table.py`` holds the damaged inputs of every command that this promise is tested on.

Every command is a plain argparse subparser; ``data`` and ``eval`` have subcommands of their own and also take a
run config as their first word (``bayling data CONFIG``): :func:`main` then inserts their hidden subcommand
``stage`` (:func:`with_hidden_stage`).
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

from bayling import __version__
from bayling.cli import chat, data, eval, push, run, serve, train, translate
from bayling.errors import BaylingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"bayling {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library logs and tracebacks")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="use only models and data sets already in the Hugging Face cache (also: BAYLING_OFFLINE=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (run, data, train, eval, chat, serve, translate, push):
        module.register(sub)
    return parser


CONFIG_FIRST = {"data": data, "eval": eval}
"""Commands whose first word may be a run config instead of one of their subcommands."""


def with_hidden_stage(argv: list[str]) -> tuple[list[str], int]:
    """``argv`` with ``stage`` after ``data``/``eval`` when a run config follows, and the command's index.

    The command is the first word that is not an option (the global options take no value); ``-1`` if none.
    """
    at = next((i for i, a in enumerate(argv) if not a.startswith("-")), -1)
    if at >= 0 and argv[at] in CONFIG_FIRST and CONFIG_FIRST[argv[at]].needs_stage(argv[at + 1 :]):
        argv = [*argv[: at + 1], "stage", *argv[at + 1 :]]
    return argv, at


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayling`` console script; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    command_line = shlex.join(["bayling", *argv])  # for the model card's "how it was made"
    # --offline is accepted anywhere (`bayling run CONFIG --offline`), also after stage subcommands that
    # parse their own arguments later
    cut = argv.index("--") if "--" in argv else len(argv)
    offline = "--offline" in argv[:cut]
    argv, at = with_hidden_stage([a for a in argv[:cut] if a != "--offline"] + argv[cut:])
    args, extra = parser.parse_known_args(argv)
    args.command_line = command_line
    leaf = getattr(args, "leaf", None)  # the parser of a `data`/`eval` subcommand, which reports its own errors
    if getattr(args, "intermixed", False):  # `data build CONFIG k=v -o OUT k2=v2`: overrides around options
        vars(args).update(vars(leaf.parse_intermixed_args(argv[at + 2 :])))
    elif extra:
        (leaf or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    from bayling.hub import go_offline, is_offline

    if offline or is_offline():  # BAYLING_OFFLINE=1 must reach datasets/transformers too
        go_offline()
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # the run log (a file) may take INFO; the terminal does not
        handler.setLevel(level)
    if not args.verbose:
        _quiet_libraries()
    try:
        from bayling.cli._common import check_flags

        check_flags(args)
        return int(args.func(args) or 0)
    except BaylingError as e:
        if args.verbose:
            raise
        print(f"bayling: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if isinstance(e, BrokenPipeError):  # `bayling ... | head`: the reader left; nothing more to say
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            return 141
        if e.filename is None or args.verbose:  # not about a path the user gave: a real failure, keep its traceback
            raise
        where = f"{e.filename} -> {e.filename2}" if e.filename2 else str(e.filename)
        print(f"bayling: error: {where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bayling: interrupted; finished stages are kept, re-run the same command to resume", file=sys.stderr)
        return 130


def _quiet_libraries() -> None:
    import os
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", module="transformers")
    warnings.filterwarnings("ignore", module="trl")
    warnings.filterwarnings("ignore", module="peft")
    warnings.filterwarnings("ignore", module="torch")
    # transformers' own tqdm bars ("Loading weights") would clutter our rich progress output. transformers takes
    # its bar switch from huggingface_hub's when it is imported (and its verbosity from TRANSFORMERS_VERBOSITY),
    # so it is not imported here: that alone cost ~0.7 s on every command, errors included.
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:
        pass
    if "transformers" in sys.modules:  # already imported (an embedding caller): switch it directly
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
