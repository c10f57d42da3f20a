"""Training data: chat JSONL -> ``input_ids`` + ``assistant_masks`` rows, monolingual text -> token rows.

Conversations go through :func:`bayling.chat.tokenize_conversation`, which yields the exact ids an engine
sees at inference plus a 0/1 mask over assistant replies (and their stop token); TRL turns the mask into
``labels`` (-100 elsewhere), so the loss covers every assistant turn of a multi-turn dialogue and nothing
else. Monolingual documents (continued pre-training) are plain next-token prediction on every token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bayling.chat import ChatFormat, format_for_tokenizer, tokenize_conversation
from bayling.errors import BaylingError, DataError
from bayling.io import read_jsonl


def tokenize_file(
    path: str | Path, tokenizer: Any, fmt: ChatFormat | str, max_length: int
) -> list[dict[str, list[int]]]:
    """Tokenize a chat JSONL (``messages`` per line) into ``input_ids`` + ``assistant_masks`` rows.

    Rows are truncated to ``max_length`` (keeping the start, as at inference); rows left with no
    assistant token are dropped since they carry no loss.

    Raises:
        DataError: naming ``file:line`` for a line without ``messages`` or with malformed turns, or when
            no row has an assistant token within ``max_length``.
    """
    if isinstance(fmt, str):  # a name or "auto"
        fmt = format_for_tokenizer(fmt, tokenizer)
    rows = []
    for n, ex in enumerate(read_jsonl(path), 1):
        if not isinstance(ex.get("messages"), list):
            raise DataError(f"{path}:{n}: expected a 'messages' list (chat JSONL)")
        try:
            row = tokenize_conversation(ex["messages"], fmt, tokenizer, max_length=max_length)
        except BaylingError as e:  # a malformed conversation: add the location
            raise DataError(f"{path}:{n}: {e}") from None
        if 1 in row["assistant_masks"]:
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no example has an assistant turn within max_length={max_length}")
    return rows


def read_texts(path: str | Path) -> list[str]:
    """Monolingual documents from ``.txt`` (one per non-blank line) or ``.jsonl`` (a ``text`` field)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file not found: {p}")
    if p.suffix in (".jsonl", ".json"):
        texts = []
        for n, obj in enumerate(read_jsonl(p), 1):
            if not isinstance(obj.get("text"), str) or not obj["text"].strip():
                raise DataError(f"{p}:{n}: expected a non-empty 'text' string")
            texts.append(obj["text"])
    else:
        from bayling.validate import read_lines

        texts = [line.strip() for line in read_lines(p) if line.strip()]
    if not texts:
        raise DataError(f"{p}: no text")
    return texts


def tokenize_texts(texts: list[str], tokenizer: Any) -> list[dict[str, list[int]]]:
    """Each document as ``BOS text EOS`` ids (the model sees document boundaries, as in pre-training)."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [{"input_ids": bos + ids + eos} for ids in enc if ids]


def count_tokens(rows: list[dict[str, list[int]]]) -> tuple[int, int]:
    """``(all tokens, trained tokens)`` of tokenized rows (trained = assistant-mask ones, or all)."""
    total = sum(len(r["input_ids"]) for r in rows)
    trained = sum(sum(r["assistant_masks"]) if "assistant_masks" in r else len(r["input_ids"]) for r in rows)
    return total, trained
