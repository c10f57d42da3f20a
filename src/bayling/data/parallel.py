"""The data stage's parallel text: ``data.source`` read through :mod:`bayling.records`, plus ``sample``.

Every form of parallel text (JSONL, TSV, aligned directories with document ids, FLORES-200, Hugging Face data
sets) is read by :mod:`bayling.records`; the data stage adds one name of its own, ``sample``: the parallel
corpus shipped with bayling (en/zh/de/fr/es, written for the project; see ``samples/README.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from bayling import records
from bayling.records import ParallelRecord
from bayling.validate import BadLines


def sample_path() -> Path:
    """The parallel corpus shipped with bayling (en/zh/de/fr/es, written for the project)."""
    return Path(str(resources.files("bayling.data") / "samples" / "parallel.jsonl"))


def source_path(source: str) -> str:
    """``data.source`` as :mod:`bayling.records` reads it (``sample`` -> the shipped corpus)."""
    return str(sample_path()) if source == "sample" else source


def iter_parallel(
    source: str, languages: list[str], flores: str | None = None, split: str = "devtest", bad: BadLines | None = None
) -> Iterator[ParallelRecord]:
    """:func:`bayling.records.iter_parallel` of ``data.source`` (``sample`` included)."""
    return records.iter_parallel(source_path(source), languages, flores, split, bad)
