"""Translation requests built from the interactive-translation templates, and batch translation.

The first turn is :func:`bayling.prompts.translation_prompt` (the prompt evaluation scores and
the data builder trains on). Glossary and style options are appended to it as the follow-up
instructions of ``templates/interactive.yaml`` (``glossary``, ``formal``/``casual``/``short``),
i.e. exactly the sentences a tuned model has seen as refinement turns; the web page uses the same
sentences for its refine buttons (:func:`followup_templates`).

Files (``bayling translate``): :func:`read_input`, :func:`parse_glossary` and :func:`translate_file`.

Run as::

    bayling translate --src-lang en --tgt-lang de < in.txt > out.txt
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bayling.digest import digest
from bayling.engines import Engine, GenerationParams
from bayling.errors import BaylingError
from bayling.io import write_text
from bayling.languages import get_language
from bayling.prompts import lang_name, load_templates, translation_prompt
from bayling.resume import Journal

STYLES = ("formal", "casual", "short")
"""Register options: each maps to the follow-up of the same name in the templates."""

REFINEMENTS = ("formal", "casual", "short", "glossary", "back_translate", "third_language")
"""Follow-up kinds the web page offers as refine buttons."""


def followup_text(kind: str, instruction_lang: str = "eng_Latn", variant: int = 0, **fields: str) -> str:
    """One follow-up instruction (``formal``, ``glossary``…) in ``instruction_lang`` (English fallback)."""
    spec = load_templates()["followups"].get(kind)
    if spec is None:
        raise BaylingError(f"unknown follow-up {kind!r}; expected one of: {', '.join(REFINEMENTS)}")
    il = get_language(instruction_lang).code
    choices = spec.get(il) or spec["eng_Latn"]
    try:
        return choices[variant % len(choices)].format(**fields)
    except KeyError as e:
        raise BaylingError(f"follow-up {kind!r} needs the field {e.args[0]!r}") from None


def followup_templates(instruction_lang: str = "eng_Latn") -> dict[str, str]:
    """The first template of each refine follow-up, placeholders kept (the web page fills them in)."""
    out = {}
    il = get_language(instruction_lang).code
    for kind in REFINEMENTS:
        spec = load_templates()["followups"][kind]
        out[kind] = (spec.get(il) or spec["eng_Latn"])[0]
    return out


def translation_request(
    text: str,
    src: str,
    tgt: str,
    glossary: Mapping[str, str] | None = None,
    style: str | None = None,
    instruction_lang: str = "eng_Latn",
    variant: int = 0,
) -> str:
    """The user turn asking to translate ``text``, with glossary/style instructions appended.

    Args:
        text: source text.
        src: source language (any alias :func:`bayling.languages.get_language` accepts).
        tgt: target language.
        glossary: source term -> required target term.
        style: ``formal``, ``casual`` or ``short``.
        instruction_lang: language the instructions are written in.
        variant: which translation template (0 = the canonical one).

    Returns:
        The request text.

    Raises:
        UnknownLanguageError: an unknown language.
        BaylingError: an unknown style or an empty glossary term.
    """
    if not text.strip():
        raise BaylingError("text to translate is empty")
    if style is not None and style not in STYLES:
        raise BaylingError(f"unknown style {style!r}; expected one of: {', '.join(STYLES)}")
    prompt = translation_prompt(text, src, tgt, instruction_lang, variant)
    extra = []
    for term_src, term_tgt in (glossary or {}).items():
        if not str(term_src).strip() or not str(term_tgt).strip():
            raise BaylingError(f"glossary entries need a source and a target term, got {term_src!r}: {term_tgt!r}")
        extra.append(followup_text("glossary", instruction_lang, term_src=term_src, term_tgt=term_tgt))
    if style is not None:
        extra.append(followup_text(style, instruction_lang))
    return prompt + ("\n" + "\n".join(extra) if extra else "")


def language_choices() -> list[dict[str, str]]:
    """Every language of the table as ``{code, name, native, prompt_name}`` for pickers (the page's selects).

    ``prompt_name`` is the name the English templates use (``Chinese`` for ``zho_Hans``), so follow-ups the
    page fills in read like the ones the model was tuned on.
    """
    from bayling.languages import languages

    templates = load_templates()
    return [
        {"code": lg.code, "name": lg.name, "native": lg.native, "prompt_name": lang_name(lg.code, templates=templates)}
        for lg in languages()
    ]


# --- batch translation -----------------------------------------------------------------------------


def _line_key(i: int, text: str) -> str:
    return f"{i}:{digest(text)}"


def translate_lines(
    engine: Engine,
    lines: Sequence[str],
    src: str,
    tgt: str,
    params: GenerationParams | None = None,
    glossary: Mapping[str, str] | None = None,
    style: str | None = None,
    chunk_size: int = 16,
    journal: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Translate each line (blank lines stay blank), ``chunk_size`` lines per engine call.

    Args:
        engine: any engine (batched engines answer a chunk in one call).
        lines: source lines, without newlines.
        src: source language.
        tgt: target language.
        params: generation parameters (greedy, 256 new tokens by default).
        glossary: source term -> target term, required in every line's translation.
        style: ``formal``, ``casual`` or ``short``.
        chunk_size: lines per engine call (and per journal write).
        journal: a JSONL file that finished lines are appended to; lines already in it (same index and
            text) are not translated again, so an interrupted job resumes where it stopped.
        progress: called with the number of lines finished.

    Returns:
        One translation per input line, newlines inside a translation replaced by spaces.
    """
    src, tgt = get_language(src).code, get_language(tgt).code
    params = params or GenerationParams()
    jrnl = Journal(journal, key="key") if journal else None
    done = {k: str(e.get("text", "")) for k, e in jrnl.entries.items()} if jrnl is not None else {}
    out = [""] * len(lines)
    todo = []
    for i, line in enumerate(lines):
        key = _line_key(i, line)
        if not line.strip():
            continue
        if key in done:
            out[i] = done[key]
        else:
            todo.append(i)
    if progress is not None and len(lines) - len(todo):
        progress(len(lines) - len(todo))
    for start in range(0, len(todo), chunk_size):
        idx = todo[start : start + chunk_size]
        convs = [[{"role": "user", "content": translation_request(lines[i], src, tgt, glossary, style)}] for i in idx]
        replies = engine.generate(convs, params)
        for i, reply in zip(idx, replies, strict=True):
            out[i] = " ".join(reply.split("\n")).strip()
        if jrnl is not None:
            jrnl.add(*({"key": _line_key(i, lines[i]), "text": out[i]} for i in idx))
        if progress is not None:
            progress(len(idx))
    return out


# --- files (``bayling translate``) -----------------------------------------------------------------------


def parse_glossary(items: Sequence[str]) -> dict[str, str]:
    """``["Zug=train", ...]`` (``--glossary SRC=TGT``) -> ``{"Zug": "train"}``.

    Raises:
        BaylingError: an item without a term on both sides of ``=``.
    """
    glossary = {}
    for item in items:
        term, sep, target = item.partition("=")
        if not sep or not term.strip() or not target.strip():
            raise BaylingError(f"--glossary expects SRC=TGT, got {item!r}")
        glossary[term.strip()] = target.strip()
    return glossary


def read_input(
    path: str | Path | None, encoding: str = "utf-8", errors: str = "strict", stdin: Any = None
) -> list[str]:
    """The lines to translate, decoded before any model loads (a damaged input fails at once, naming line and byte).

    Args:
        path: the input file; None reads ``stdin`` (bytes from its ``buffer`` when it has one, decoded here).
        encoding: the input's encoding; ``errors``: what to do with undecodable bytes (``strict`` fails).
        stdin: the stream read when ``path`` is None (``sys.stdin`` by default).

    Returns:
        One entry per line; only ``"\n"`` ends a line, so there is one output line per input line whatever
        else a line holds.
    """
    import sys

    from bayling.errors import DataError
    from bayling.validate import ENCODING_HINT, check_encoding, decode_text, read_text

    check_encoding(encoding, errors)
    stdin = stdin if stdin is not None else sys.stdin
    try:
        if path:
            text = read_text(path, encoding, errors, what="input file")
        else:
            raw = getattr(stdin, "buffer", None)  # bytes, decoded here; a text stream (tests) is taken as is
            text = decode_text(raw.read(), "<stdin>", encoding, errors) if raw else stdin.read()
    except DataError as e:
        raise DataError(f"{e}{ENCODING_HINT if 'not valid' in str(e) else ''}") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def translate_file(
    engine: Engine,
    lines: Sequence[str],
    src: str,
    tgt: str,
    output: str | Path | None = None,
    params: GenerationParams | None = None,
    glossary: Mapping[str, str] | None = None,
    style: str | None = None,
    chunk_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Translate ``lines`` into the text of an output file (one line per input line).

    With ``output``, finished lines are journaled beside it (``OUTPUT.journal.jsonl``) so a re-run resumes, and
    the result is written atomically there, after which the journal is removed.

    Returns:
        The translated text (also written to ``output`` when given).
    """
    journal = Path(str(output) + ".journal.jsonl") if output else None
    out = translate_lines(
        engine, lines, src, tgt, params, glossary or None, style, chunk_size, journal=journal, progress=progress
    )
    result = "".join(line + "\n" for line in out)
    if output:
        write_text(Path(output), result)
        if journal is not None:
            journal.unlink(missing_ok=True)
    return result
