"""The wording of every translation request: the instruction templates, the canonical chat prompt, few-shot.

Templates are data, not strings scattered in code: ``templates/interactive.yaml`` (beside this module) holds
every turn type per instruction language: the translation requests, the follow-ups of interactive
translation (register change, glossary term, explain a word...), the cross-lingual tasks and the language
names. The data stage builds its dialogues from them; :func:`translation_prompt` is the request used by
evaluation and serving: the first English template the data builder also trains on, so a tuned model is scored
on a prompt it knows. :func:`fewshot_prompt` is the completion prompt a base model is evaluated with
(lm-evaluation-harness' translation layout: ``"{src}: {text}\n{tgt}:"``, demonstrations joined by a blank line,
cut at the newline), with the same language names.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bayling.errors import DataError
from bayling.languages import get_language

TEMPLATES = Path(__file__).parent / "templates" / "interactive.yaml"
"""The shipped templates (``data.templates`` replaces them for a build)."""

DEFAULT_IL = "eng_Latn"
ANSWER_KINDS = {"target", "third", "source", "explain", "source_language", "numbers", "teacher"}
NEEDS = {"term", "third", "number", "omission", "teacher"}


def _check(data: dict[str, Any], src: Path) -> None:
    from bayling.validate import check

    for key in ("translate", "followups", "names"):
        if key not in data:
            raise DataError(f"{src}: missing top-level key {key!r}")
        check(data[key], dict, f"{src}: {key}")
    for il, tpls in data["translate"].items():
        for i, tpl in enumerate(check(tpls, list, f"{src}: translate.{il}")):
            check(tpl, str, f"{src}: translate.{il}[{i}]")
    for name, spec in data["followups"].items():
        check(check(spec, dict, f"{src}: followups.{name}").get("answer", ""), str, f"{src}: followups.{name}.answer")
        check(spec.get("needs", []), list, f"{src}: followups.{name}.needs")
    if DEFAULT_IL not in data["translate"]:
        raise DataError(f"{src}: 'translate' needs {DEFAULT_IL} templates (the canonical evaluation prompt)")
    for name, spec in data["followups"].items():
        if "answer" not in spec:
            raise DataError(f"{src}: follow-up {name!r} has no 'answer'")
        answer = spec["answer"]
        if not (answer in ANSWER_KINDS or answer.startswith("variant:")):
            raise DataError(f"{src}: follow-up {name!r}: unknown answer {answer!r}")
        for need in spec.get("needs", []):
            if not (need in NEEDS or need.startswith("variant:")):
                raise DataError(f"{src}: follow-up {name!r}: unknown need {need!r}")
        if answer == "teacher" and "teacher" not in spec:
            raise DataError(f"{src}: follow-up {name!r} is answered by the teacher but has no 'teacher' prompt")
        if DEFAULT_IL not in spec:
            raise DataError(f"{src}: follow-up {name!r} has no {DEFAULT_IL} templates")
    for il, tpls in data["translate"].items():
        for tpl in tpls:
            if "{text}" not in tpl or "{tgt}" not in tpl:
                raise DataError(f"{src}: translate[{il}] template lacks {{text}} or {{tgt}}: {tpl!r:.80}")


@lru_cache(maxsize=8)
def load_templates(path: str | None = None) -> dict[str, Any]:
    """Load the template YAML (the shipped one by default) and check its structure."""
    src = Path(path) if path else TEMPLATES
    from bayling.validate import read_text

    try:
        data = yaml.safe_load(read_text(src, what="template file"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise DataError(f"{src}{f':{mark.line + 1}' if mark else ''}: invalid YAML") from None
    if not isinstance(data, dict):
        raise DataError(f"{src}: expected a mapping at the top level")
    _check(data, src)
    return data


def lang_name(code: str, in_lang: str = DEFAULT_IL, templates: dict[str, Any] | None = None) -> str:
    """A language's name as written in ``in_lang`` (falls back to the English name)."""
    t = templates or load_templates()
    code = get_language(code).code
    return t["names"].get(get_language(in_lang).code, {}).get(code) or get_language(code).name


def pick(spec: dict[str, Any], il: str, rng: random.Random) -> str:
    """One template of ``spec`` in instruction language ``il`` (English when ``il`` has none)."""
    choices = spec.get(il) or spec[DEFAULT_IL]
    return rng.choice(choices) if isinstance(choices, list) else choices


def fill(tpl: str, **kw: str) -> str:
    """``str.format`` that names the template when a placeholder has no value."""
    try:
        return tpl.format(**kw)
    except (KeyError, IndexError) as e:
        raise DataError(f"template {tpl!r:.60} uses placeholder {e} which this turn type does not provide") from None


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


# ----------------------------------------------------------------------------- few-shot completion

STOP = ("\n",)
"""Where a few-shot completion ends (the next line would start another example)."""

SHOT = "{src}: {source}\n{tgt}: {target}"
QUERY = "{src}: {source}\n{tgt}:"
DELIMITER = "\n\n"


def fewshot_prompt(text: str, src: str, tgt: str, demos: Sequence[tuple[str, str]]) -> str:
    """The completion prompt for ``text``: demonstrations, then ``"{src}: {text}\\n{tgt}:"``.

    Language names are the ones the chat prompt uses (:func:`lang_name`: "German", "Chinese").

    Example:
        >>> fewshot_prompt("Thank you.", "eng_Latn", "deu_Latn", [("Good morning.", "Guten Morgen.")])
        'English: Good morning.\\nGerman: Guten Morgen.\\n\\nEnglish: Thank you.\\nGerman:'
    """
    s, t = lang_name(src, DEFAULT_IL), lang_name(tgt, DEFAULT_IL)
    shots = [SHOT.format(src=s, tgt=t, source=a, target=b) for a, b in demos]
    return DELIMITER.join([*shots, QUERY.format(src=s, tgt=t, source=text)])
