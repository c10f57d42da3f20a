"""``bayling translate``: batch translation, one line in -> one line out, with a progress bar on stderr.

Run as::

    bayling translate --src-lang en --tgt-lang de < in.txt > out.txt
    bayling translate runs/quickstart --src-lang en --tgt-lang zh -i in.txt -o out.txt --engine llamacpp
    bayling translate -s de -t en --encoding latin-1 < old.txt        # or --errors replace for damaged bytes

Input that cannot be decoded fails before any model loads, naming the line and byte
(``<stdin>:3: not valid UTF-8 at byte 17 (0xff)``).
"""

from __future__ import annotations

import argparse
import sys

from bayling.cli._common import bounded
from bayling.config import Positive
from bayling.validate import DECODE_ERRORS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate text line by line (stdin -> stdout, or -i/-o files)")
    p.add_argument(
        "target",
        nargs="?",
        default="gemma-3-270m",
        help="a run directory (its tuned model) or a model reference (default: gemma-3-270m)",
    )
    p.add_argument("--src-lang", "-s", required=True, help="source language: FLORES-200 or ISO code, or a name")
    p.add_argument("--tgt-lang", "-t", required=True, help="target language")
    p.add_argument("--input", "-i", help="input file (default: stdin)")
    p.add_argument(
        "--output",
        "-o",
        help="output file, written atomically; finished lines are journaled beside it so a re-run resumes",
    )
    p.add_argument("--engine", default="transformers", help="transformers | llamacpp | vllm")
    p.add_argument(
        "--glossary",
        action="append",
        default=[],
        metavar="SRC=TGT",
        help="a term and its required translation (repeatable)",
    )
    p.add_argument("--style", choices=("formal", "casual", "short"))
    p.add_argument("--encoding", default="utf-8", help="encoding of the input (default utf-8; output is UTF-8)")
    p.add_argument(
        "--errors",
        default="strict",
        choices=DECODE_ERRORS,
        help="undecodable input bytes: strict (fail naming line and byte, the default), replace (U+FFFD), "
        "ignore or backslashreplace",
    )
    bounded(p, "--batch-size", kind=Positive, default=16, help="lines per engine call")
    bounded(p, "--max-new-tokens", kind=Positive, default=256)
    p.set_defaults(func=_translate)


def _translate(args: argparse.Namespace) -> int:
    from bayling.engines import GenerationParams, load_engine
    from bayling.languages import get_language
    from bayling.progress import progress_bar
    from bayling.serve.translate import parse_glossary, read_input, translate_file

    src, tgt = get_language(args.src_lang).code, get_language(args.tgt_lang).code  # fail before loading a model
    glossary = parse_glossary(args.glossary)
    lines = read_input(args.input, args.encoding, args.errors)
    engine = load_engine(args.target, engine=args.engine)
    with progress_bar(f"translating {src} -> {tgt}", total=len(lines)) as advance:
        result = translate_file(
            engine,
            lines,
            src,
            tgt,
            args.output,
            GenerationParams(max_new_tokens=args.max_new_tokens),
            glossary=glossary,
            style=args.style,
            chunk_size=args.batch_size,
            progress=advance,
        )
    if not args.output:
        sys.stdout.write(result)
        sys.stdout.flush()
    return 0
