"""JSON and JSONL reading and writing for every stage, with errors that name ``file:line`` (the checks themselves:
:mod:`bayling.validate`).

Writes go to a temporary file renamed into place, so an interrupted build never leaves a
half-written file that a later stage would mistake for a finished one. ``tempfile`` creates that file
with mode 0600; it is widened to what ``open()`` would have made (0666 minus the process umask, so
0644 by default) before the rename, so outputs stay readable to colleagues and to jobs run as another user.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bayling.validate import BadLines, iter_jsonl_numbered


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` alone must set it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_temp(path: str | Path) -> tuple[int, str]:
    """A unique temporary file beside ``path`` (for a later ``os.replace``), with the umask's normal mode."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=p.name + ".", dir=p.parent)  # unique: concurrent writers never collide
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def atomic_temp_dir(path: str | Path) -> Path:
    """A unique temporary directory beside ``path`` (renamed into place later), with the umask's normal mode."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=p.name + ".", dir=p.parent))
    tmp.chmod(0o777 & ~_umask())
    return tmp


def read_jsonl(path: str | Path, skip_bad: bool = False, bad: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Yield one object per non-blank line.

    Args:
        path: the file.
        skip_bad: skip malformed lines instead of raising; their ``file:line: reason`` goes to ``bad``.
        bad: collects the skipped lines' descriptions.

    Raises:
        DataError: on a missing file, or a malformed line when ``skip_bad`` is False.
    """
    for _, obj in iter_jsonl_numbered(path, BadLines(skip=skip_bad, keep=0, sink=bad)):
        yield obj


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Atomically write rows as JSONL (UTF-8, non-ASCII kept); returns the number written."""
    p = Path(path)
    fd, tmp = atomic_temp(p)
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
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    p = Path(path)
    fd, tmp = atomic_temp(p)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JsonlWriter:
    """Atomic streaming JSONL writer: rows go to a temporary file that replaces ``path`` only on a clean exit.

    Example:
        >>> with JsonlWriter(tmp / "train.jsonl") as w:  # doctest: +SKIP
        ...     w.write({"messages": []})
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0

    def __enter__(self) -> JsonlWriter:
        fd, self._tmp = atomic_temp(self.path)
        self._f = os.fdopen(fd, "w", encoding="utf-8")
        return self

    def write(self, row: dict[str, Any]) -> None:
        self._f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.count += 1

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._f.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            Path(self._tmp).unlink(missing_ok=True)
