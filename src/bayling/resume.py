"""Skipping finished work and resuming interrupted work: one journal and one done marker for every stage.

Two kinds of work are cached, each one way:

* **Many small paid-for or slow requests** (teacher-LLM calls, judge verdicts, translated lines, groups of
  translated test sentences) go to a :class:`Journal`: an append-only JSONL file keyed by request id, each
  write flushed and fsync'd before the work goes on, so after a crash, ``kill -9`` or Ctrl-C a re-run answers
  every finished request from the file. A last line cut short by a crash is cut off when the journal opens.
* **One result computed from a fingerprint** (a pipeline stage, an evaluation part, a training sub-stage)
  is done when its marker records that fingerprint (:func:`marked`, :func:`mark`); :func:`cached` reads
  the stored result then, and otherwise computes and stores it. A ``.json`` marker holds
  ``{"fingerprint": ..., **info}`` (``_stage.json``, ``summary.json``); any other marker file holds the bare
  fingerprint (an evaluation part's ``fingerprint``).

Fingerprints come from :mod:`bayling.digest`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from bayling.errors import DataError
from bayling.io import write_json, write_jsonl, write_text

log = logging.getLogger(__name__)

T = TypeVar("T")


class Journal:
    """Append-only JSONL of finished requests, keyed by the field ``key`` of each entry.

    Args:
        path: the journal file (created on the first :meth:`add`).
        key: the entry field holding the request id (a later entry with the same id wins).
        strict: a damaged line other than a torn last one is a :class:`~bayling.errors.DataError` naming
            ``file:line`` (for paid-for answers: silently dropping one is worse than stopping); otherwise it is
            skipped with a warning and its request is simply done again.

    Attributes:
        entries: ``{id: entry}`` of everything journaled so far.
        loaded: how many entries the file held when it was opened.

    Thread-safe: :meth:`add` may be called from worker threads (the judge's request pool).
    """

    def __init__(self, path: str | Path, key: str = "id", strict: bool = False) -> None:
        self.path = Path(path)
        self.key = key
        self.strict = strict
        self.entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        if self.path.is_file():
            self._load()
        self.loaded = len(self.entries)

    def _load(self) -> None:
        raw = self.path.read_bytes()
        good_end = raw.rfind(b"\n") + 1
        if good_end < len(raw):  # a torn final line from a killed writer: cut it off, its request is redone
            log.warning("%s: cutting off a line torn by an interrupted write", self.path)
            with self.path.open("r+b") as f:
                f.truncate(good_end)
        for n, line in enumerate(raw[:good_end].split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line.decode("utf-8"))
                if not isinstance(entry, dict) or entry.get(self.key) is None:
                    raise ValueError
                self._remember(entry)
            except (ValueError, KeyError, TypeError):
                if self.strict:
                    raise DataError(
                        f"{self.path}:{n}: corrupt journal line (expected a JSON object with '{self.key}')"
                    ) from None
                log.warning("%s:%d: skipping a damaged journal line", self.path, n)

    def _remember(self, entry: dict[str, Any]) -> None:
        """Keep ``entry`` in memory (a subclass may also count what it holds)."""
        self.entries[str(entry[self.key])] = entry

    def get(self, rid: str) -> dict[str, Any] | None:
        """The journaled entry of request ``rid``, or None."""
        return self.entries.get(rid)

    def __contains__(self, rid: object) -> bool:
        return rid in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, *entries: dict[str, Any]) -> None:
        """Append ``entries`` and make them durable (flush + fsync) before returning."""
        if not entries:
            return
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                for entry in entries:
                    f.write(json.dumps(entry, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            for entry in entries:
                self._remember(entry)

    def keep(self, entries: Iterable[dict[str, Any]]) -> None:
        """Replace the journal by ``entries`` alone (atomically), e.g. dropping those of other settings."""
        with self._lock:
            kept = list(entries)
            write_jsonl(self.path, kept)
            self.entries = {}
            for entry in kept:
                self._remember(entry)


# ----------------------------------------------------------------------------- done markers


def marked(marker: str | Path, fp: str) -> dict[str, Any] | None:
    """What ``marker`` holds when it records fingerprint ``fp``, else None (missing, unreadable or another one).

    A ``.json`` marker is returned whole (``{"fingerprint": fp, ...}``); a plain one as ``{"fingerprint": fp}``.
    """
    p = Path(marker)
    if not p.is_file():
        return None
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix == ".json" else {"fingerprint": text.strip()}
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("fingerprint") == fp else None


def mark(marker: str | Path, fp: str, **info: Any) -> None:
    """Record (atomically) that the work of fingerprint ``fp`` is done; ``info`` goes into a ``.json`` marker."""
    p = Path(marker)
    if p.suffix == ".json":
        write_json(p, {"fingerprint": fp, **info})
    elif info:
        raise ValueError(f"{p}: only a .json marker can hold more than the fingerprint")
    else:
        write_text(p, fp)


def cached(
    result: str | Path,
    marker: str | Path,
    fp: str,
    compute: Callable[[], T],
    hit: Callable[[], None] | None = None,
) -> T | Any:
    """The JSON stored in ``result`` when ``marker`` records ``fp``; else ``compute()``, stored and marked.

    Args:
        result: the JSON file holding the result.
        marker: the done marker (see :func:`mark`); written after ``result``, so a crash between the two
            only costs a recomputation.
        fp: the fingerprint of everything the result depends on.
        compute: makes the result (JSON-able).
        hit: called when the stored result is used (to say so).
    """
    res = Path(result)
    if res.is_file() and marked(marker, fp) is not None:
        if hit is not None:
            hit()
        return json.loads(res.read_text(encoding="utf-8"))
    out = compute()
    write_json(res, out)
    mark(marker, fp)
    return out
