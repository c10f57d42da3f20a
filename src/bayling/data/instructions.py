"""Seed general instructions (the zh/en share of the BayLing 2 mix) from the usual instruction formats.

Every record becomes ``{"messages": [...], "lang": CODE, "id": ...}``. Accepted per line (JSONL) or per
item (a JSON list): bayling's own ``instruction``/``response``/``lang``; Alpaca ``instruction``/``input``/
``output``; ShareGPT ``conversations`` (``from``: human/gpt/system); OpenAI ``messages``. A record without
``lang`` is language-identified from its first user turn (``None`` when the backend cannot tell).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from bayling.errors import DataError, UnknownLanguageError
from bayling.languages import get_language
from bayling.validate import BadLines, at, chat_messages, check, describe, fail, field, iter_jsonl_numbered, read_json


def sample_instructions() -> Path:
    """The seed instructions shipped with bayling."""
    return Path(str(resources.files("bayling.data") / "samples" / "instructions.jsonl"))


def to_messages(obj: dict[str, Any], where: str) -> list[dict[str, str]]:
    """One instruction record in any supported format -> OpenAI messages (alternating, ending with assistant).

    Raises:
        DataError: naming ``where`` (``file:line``), what was expected and what was found.
    """
    if "messages" in obj or "conversations" in obj:
        msgs = chat_messages(obj, where, nonempty=True)
    elif "instruction" in obj and ("response" in obj or "output" in obj):
        instruction = field(obj, "instruction", "text", where)
        extra = field(obj, "input", str, where, required=False, default="")
        reply = field(obj, "response" if "response" in obj else "output", "text", where)
        history = []
        for i, q_a in enumerate(field(obj, "history", list, where, required=False, default=[])):
            # LLaMA-Factory's multi-turn alpaca: [[question, answer], ...] before this turn
            if not (isinstance(q_a, list) and len(q_a) == 2):
                raise fail(at(where, f"history[{i}]"), "a [question, answer] pair", q_a)
            for role, text, j in (("user", q_a[0], 0), ("assistant", q_a[1], 1)):
                history.append({"role": role, "content": check(text, "text", at(where, f"history[{i}][{j}]"))})
        prompt = instruction if not extra.strip() else f"{instruction}\n\n{extra}"
        msgs = history + [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}]
    else:
        raise DataError(
            f"{where}: expected 'instruction' + 'response'/'output', 'conversations' or 'messages', "
            f"found {describe(obj)}"
        )
    body = msgs[1:] if msgs[0]["role"] == "system" else msgs
    if (
        not body
        or body[-1]["role"] != "assistant"
        or any(m["role"] != ("user" if i % 2 == 0 else "assistant") for i, m in enumerate(body))
    ):
        roles = ", ".join(m["role"] for m in msgs)
        raise DataError(f"{where}: turns must alternate user/assistant and end with an assistant reply, found {roles}")
    return [{"role": m["role"], "content": m["content"].strip()} for m in msgs]


def _items(path: Path, bad: BadLines) -> Iterator[tuple[dict[str, Any], str]]:
    if path.suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise fail(str(path), "a JSON list of instruction records", data)
        for i, obj in enumerate(data, 1):
            if not isinstance(obj, dict):
                bad.error(str(fail(f"{path}:item {i}", "an object", obj)))
                continue
            yield obj, f"{path}:item {i}"
        return
    for n, obj in iter_jsonl_numbered(path, bad):
        yield obj, f"{path}:{n}"


def iter_instructions(source: str, bad: BadLines | None = None, lid: Any = None) -> Iterator[dict[str, Any]]:
    """Instruction records of one file (``sample`` = shipped) as ``{"id", "messages", "lang"}``.

    Args:
        source: ``sample``, a path (``.jsonl`` or ``.json``) or ``hf:ORG/NAME[:CONFIG][@SPLIT]``.
        bad: malformed-line policy (default: fail at the first one).
        lid: a :class:`~bayling.lid.LanguageID` used when a record has no ``lang``.
    """
    bad = bad or BadLines()
    if source.startswith("hf:"):  # a Hub data set or a local HF dataset (bayling.hub_data)
        yield from iter_hub_instructions(source, bad, lid)
        return
    path = sample_instructions() if source == "sample" else Path(source).expanduser()
    if not path.is_file():
        raise DataError(f"instruction file not found: {path}")
    for obj, where in _items(path, bad):
        try:
            yield _record(obj, where, path.stem, lid)
        except DataError as e:
            bad.error(str(e))


def _record(obj: dict[str, Any], where: str, stem: str, lid: Any) -> dict[str, Any]:
    msgs = to_messages(obj, where)
    lang = obj.get("lang")
    if lang:
        try:
            lang = get_language(str(lang)).code
        except UnknownLanguageError as e:
            raise DataError(f"{where}: {e}") from None
    elif lid is not None:
        first = next(m["content"] for m in msgs if m["role"] == "user")
        lang = lid.detect(first, ["eng_Latn", "zho_Hans"]) or lid.detect(first)
    return {
        "id": str(obj.get("id") or f"{stem}-{where.rsplit(':', 1)[-1].replace('item ', '')}"),
        "messages": msgs,
        "lang": lang,
    }


def iter_hub_instructions(source: str, bad: BadLines | None = None, lid: Any = None) -> Iterator[dict[str, Any]]:
    """Instruction records of an ``hf:`` data set (Alpaca, ShareGPT ``conversations`` or OpenAI ``messages``)."""
    from bayling.hub_data import load, parse_hf

    bad = bad or BadLines()
    ref = parse_hf(source)
    stem = Path(ref.repo_id).name
    for n, row in enumerate(load(ref), 1):
        obj = {k: v for k, v in dict(row).items() if v is not None}
        try:
            yield _record(obj, f"{ref.text}:{n}", stem, lid)
        except DataError as e:
            bad.error(str(e))
