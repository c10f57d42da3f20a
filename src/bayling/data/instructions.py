"""Seed general instructions (the zh/en share of the BayLing 2 mix) from the usual instruction formats.

Every record becomes ``{"messages": [...], "lang": CODE, "id": ...}``. Accepted per line (JSONL) or per
item (a JSON list): bayling's own ``instruction``/``response``/``lang``; Alpaca ``instruction``/``input``/
``output``; ShareGPT ``conversations`` (``from``: human/gpt/system); OpenAI ``messages``. A record without
``lang`` is language-identified from its first user turn (``None`` when the backend cannot tell).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from bayling.data.io import BadLines, iter_jsonl_numbered
from bayling.errors import DataError, UnknownLanguageError
from bayling.languages import get_language

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def sample_instructions() -> Path:
    """The seed instructions shipped with bayling."""
    return Path(str(resources.files("bayling.data") / "samples" / "instructions.jsonl"))


def to_messages(obj: dict[str, Any], where: str) -> list[dict[str, str]]:
    """One instruction record in any supported format -> OpenAI messages (alternating, ending with assistant).

    Raises:
        DataError: naming ``where`` (``file:line``) and what was expected.
    """
    if "messages" in obj:
        msgs = [{"role": str(m.get("role")), "content": m.get("content")} for m in obj["messages"]]
    elif "conversations" in obj:
        msgs = []
        for m in obj["conversations"]:
            role = _SHAREGPT_ROLES.get(str(m.get("from")))
            if role is None:
                raise DataError(f"{where}: unknown ShareGPT speaker {m.get('from')!r}; expected human/gpt/system")
            msgs.append({"role": role, "content": m.get("value")})
    elif "instruction" in obj and ("response" in obj or "output" in obj):
        prompt = obj["instruction"] if not obj.get("input") else f"{obj['instruction']}\n\n{obj['input']}"
        msgs = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": obj.get("response", obj.get("output"))},
        ]
        for turn in obj.get("history") or []:  # LLaMA-Factory's multi-turn alpaca: [[q, a], ...] before this turn
            if not (isinstance(turn, list) and len(turn) == 2):
                raise DataError(f"{where}: 'history' must be a list of [question, answer] pairs")
        history = [
            {"role": r, "content": t}
            for q_a in obj.get("history") or []
            for r, t in zip(("user", "assistant"), q_a, strict=True)
        ]
        msgs = history + msgs
    else:
        raise DataError(f"{where}: expected 'instruction' + 'response'/'output', 'conversations' or 'messages'")
    if not msgs or any(not isinstance(m["content"], str) or not m["content"].strip() for m in msgs):
        raise DataError(f"{where}: every turn needs non-empty text")
    body = msgs[1:] if msgs[0]["role"] == "system" else msgs
    if (
        not body
        or body[-1]["role"] != "assistant"
        or any(m["role"] != ("user" if i % 2 == 0 else "assistant") for i, m in enumerate(body))
    ):
        raise DataError(f"{where}: turns must alternate user/assistant and end with an assistant reply")
    return [{"role": m["role"], "content": m["content"].strip()} for m in msgs]


def _items(path: Path, bad: BadLines) -> Iterator[tuple[dict[str, Any], str]]:
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise DataError(f"{path}: invalid JSON ({e})") from None
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON list of instruction records")
        for i, obj in enumerate(data, 1):
            if not isinstance(obj, dict):
                bad.error(f"{path}:item {i}: expected an object")
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
    if source.startswith("hf:"):  # a Hub data set or a local HF dataset (bayling.data.hub)
        from bayling.data.hub import iter_hub_instructions

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
