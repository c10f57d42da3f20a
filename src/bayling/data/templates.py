"""Instruction templates (``templates/interactive.yaml``) and the canonical translation prompt.

Templates are data, not strings scattered in code: the YAML holds every turn type per instruction
language. :func:`translation_prompt` is the request used by evaluation and serving; it is the first
English template the data builder also trains on, so a tuned model is scored on a prompt it knows.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bayling.errors import DataError
from bayling.languages import get_language


@lru_cache(maxsize=8)
def load_templates(path: str | None = None) -> dict[str, Any]:
    """Load the template YAML (the shipped one by default) and check its structure."""
    src = Path(path) if path else Path(str(resources.files("bayling.data") / "templates" / "interactive.yaml"))
    if not src.is_file():
        raise DataError(f"template file not found: {src}")
    data = yaml.safe_load(src.read_text(encoding="utf-8"))
    for key in ("translate", "followups", "names"):
        if key not in data:
            raise DataError(f"{src}: missing top-level key {key!r}")
    for name, spec in data["followups"].items():
        if "answer" not in spec:
            raise DataError(f"{src}: follow-up {name!r} has no 'answer'")
    return data


def lang_name(code: str, in_lang: str = "eng_Latn", templates: dict[str, Any] | None = None) -> str:
    """A language's name as written in ``in_lang`` (falls back to the English name)."""
    t = templates or load_templates()
    code = get_language(code).code
    return t["names"].get(get_language(in_lang).code, {}).get(code) or get_language(code).name


def translation_prompt(text: str, src: str, tgt: str, instruction_lang: str = "eng_Latn", variant: int = 0) -> str:
    """The translation request for ``text`` from ``src`` into ``tgt``.

    Args:
        text: source text.
        src: source language (code or alias).
        tgt: target language (code or alias).
        instruction_lang: language the request is written in (a language with templates).
        variant: which template of that language (0 = the canonical one used for evaluation).

    Returns:
        The user-turn text.
    """
    t = load_templates()
    il = get_language(instruction_lang).code
    choices = t["translate"].get(il) or t["translate"]["eng_Latn"]
    tpl = choices[variant % len(choices)]
    return tpl.format(src=lang_name(src, il, t), tgt=lang_name(tgt, il, t), text=text)
