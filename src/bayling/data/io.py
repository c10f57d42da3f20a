"""JSONL reading and writing with errors that name ``file:line``.

Writes go to a temporary file renamed into place, so an interrupted build never leaves a
half-written file that a later stage would mistake for a finished one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bayling.errors import DataError


def read_jsonl(path: str | Path, skip_bad: bool = False, bad: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Yield one object per non-blank line.

    Args:
        path: the file.
        skip_bad: skip malformed lines instead of raising; their ``file:line: reason`` goes to ``bad``.
        bad: collects the skipped lines' descriptions.

    Raises:
        DataError: on a missing file, or a malformed line when ``skip_bad`` is False.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file not found: {p}")
    with p.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
            except ValueError as e:
                msg = f"{p}:{n}: invalid JSON line ({e})"
                if not skip_bad:
                    raise DataError(msg) from None
                if bad is not None:
                    bad.append(msg)
                continue
            yield obj


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Atomically write rows as JSONL (UTF-8, non-ASCII kept); returns the number written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", dir=p.parent)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write pretty JSON."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, p)
