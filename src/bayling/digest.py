"""Content digests: the one way bayling hashes configs, data and requests, and its fingerprint convention.

Every cache in bayling (a finished pipeline stage, an evaluation part, a training sub-stage, a teacher or
judge request, a translated line) is keyed by :func:`digest` of what produced it: SHA-256 of the canonical
JSON (sorted keys, ``str()`` for anything JSON lacks), cut to ``size`` hex digits. Files are keyed by their
content (:func:`file_digest`).

A config section is keyed by :func:`fingerprint`: the **whole** section minus an explicit list of fields that
cannot change the result (logging cadence, later stages, report switches...). A field added to a section
later is therefore in every key until someone lists it: a new setting can cost a recomputation, never a
stale result.

:func:`stable_hash` is the 64-bit integer the data stage samples and deduplicates with (Python's ``hash`` is
salted per process, so it cannot be used for anything that must be the same in every run).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def digest(obj: Any, size: int = 16, ensure_ascii: bool = True) -> str:
    """A short, stable hash of a JSON-able object (dict key order does not matter).

    Args:
        obj: what to hash; objects JSON cannot represent are hashed by ``str()``.
        size: hex digits kept (64 = the whole SHA-256).
        ensure_ascii: ``json.dumps``' flag; the teacher's and the judge's request keys were made with
            ``False`` and keep it, so their paid-for caches stay valid.
    """
    blob = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=ensure_ascii)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:size]


def file_digest(path: str | Path, size: int = 16) -> str:
    """SHA-256 of a file's bytes (read in blocks: training files can be larger than memory).

    A path that is not a file digests as its name, so a missing input is reported by the reader that opens it
    (naming the config key), not here.
    """
    p = Path(path)
    if not p.is_file():
        return digest(str(p), size)
    h = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:size]


def fingerprint(section: Any, no_effect: Iterable[str] = (), *, name: str = "section", **context: Any) -> str:
    """The key of a result computed from a config ``section`` and ``context``.

    Args:
        section: a config dataclass (or a mapping of its fields).
        no_effect: fields of ``section`` that cannot change the result; every other field is hashed.
        name: the key the section's fields are hashed under (different results of one section differ by it).
        **context: everything else the result depends on (model, seed, upstream fingerprints, data digests).

    Example:
        >>> fingerprint({"lr": 1e-4, "logging_steps": 10}, no_effect=["logging_steps"], name="sft", seed=0) == (
        ...     fingerprint({"lr": 1e-4, "logging_steps": 50}, no_effect=["logging_steps"], name="sft", seed=0))
        True
    """
    from bayling.config import to_dict

    fields = to_dict(section)
    skip = set(no_effect)
    return digest({name: {k: v for k, v in fields.items() if k not in skip}, **context})


def stable_hash(text: str) -> int:
    """A 64-bit hash that is the same in every process and run (Python's ``hash`` is salted)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
