"""Readers for parallel text: the shipped sample, FLORES-200 layout, TSV and JSONL.

All readers return :class:`ParallelRecord` objects keyed by FLORES-200 codes, so the builders never
care where text came from. Misaligned or malformed input fails with ``file:line`` and the reason.
"""

from __future__ import annotations

import csv
import os
import tarfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bayling.data.io import read_jsonl
from bayling.errors import DataError, UnknownLanguageError
from bayling.languages import get_language


@dataclass
class ParallelRecord:
    """One sentence (or segment) in several languages, with optional key terms and register variants."""

    id: str
    texts: dict[str, str]
    terms: list[dict[str, str]] = field(default_factory=list)
    variants: dict[str, dict[str, str]] = field(default_factory=dict)
    domain: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, **self.texts}
        if self.domain:
            d["domain"] = self.domain
        if self.terms:
            d["terms"] = self.terms
        if self.variants:
            d["variants"] = self.variants
        return d


_META_KEYS = {"id", "domain", "terms", "variants"}


def sample_path() -> Path:
    """The parallel corpus shipped with bayling (en/zh/de/fr/es, written for the project)."""
    return Path(str(resources.files("bayling.data") / "samples" / "parallel.jsonl"))


def _codes(keys: list[str], where: str) -> dict[str, str]:
    out = {}
    for k in keys:
        try:
            out[k] = get_language(k).code
        except UnknownLanguageError as e:
            raise DataError(f"{where}: {e}") from None
    return out


def read_jsonl_parallel(path: str | Path) -> list[ParallelRecord]:
    """JSONL with language-code keys (plus optional ``id``, ``domain``, ``terms``, ``variants``)."""
    recs = []
    for n, obj in enumerate(read_jsonl(path), 1):
        langs = [k for k in obj if k not in _META_KEYS]
        codes = _codes(langs, f"{path}:{n}")
        texts = {}
        for k in langs:
            if not isinstance(obj[k], str) or not obj[k].strip():
                raise DataError(f"{path}:{n}: field {k!r} must be a non-empty string")
            texts[codes[k]] = obj[k].strip()
        recs.append(
            ParallelRecord(
                id=str(obj.get("id", f"{Path(path).stem}-{n}")),
                texts=texts,
                terms=[{codes.get(k, k): v for k, v in t.items()} for t in obj.get("terms", [])],
                variants={
                    reg: {codes.get(k, k): v for k, v in d.items()} for reg, d in obj.get("variants", {}).items()
                },
                domain=obj.get("domain"),
            )
        )
    return recs


def read_tsv_parallel(path: str | Path) -> list[ParallelRecord]:
    """TSV whose header names a language per column (an optional ``id`` column is kept)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"file not found: {p}")
    with p.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(rows, None)
        if not header:
            raise DataError(f"{p}:1: empty file; expected a header of language codes")
        langs = [h for h in header if h != "id"]
        codes = _codes(langs, f"{p}:1")
        recs = []
        for n, row in enumerate(rows, 2):
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise DataError(f"{p}:{n}: expected {len(header)} tab-separated columns, found {len(row)}")
            d = dict(zip(header, row, strict=True))
            recs.append(ParallelRecord(id=d.get("id") or f"{p.stem}-{n}", texts={codes[k]: d[k] for k in langs}))
    return recs


def flores_dir(explicit: str | None = None) -> Path:
    """Locate FLORES-200: the explicit path, else ``$BAYLING_FLORES_DIR``."""
    path = explicit or os.environ.get("BAYLING_FLORES_DIR")
    if not path:
        raise DataError(
            "FLORES-200 not configured: set data.flores_dir / eval.flores_dir or $BAYLING_FLORES_DIR to the "
            "directory holding devtest/ (see README: getting FLORES-200)"
        )
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DataError(f"FLORES-200 directory not found: {p}")
    return p


def _flores_lines(root: Path, code: str, split: str) -> list[str]:
    for d in (root / split, root):
        f = d / f"{code}.{split}"
        if f.is_file():
            return f.read_text(encoding="utf-8").rstrip("\n").split("\n")
    for tar in sorted(root.glob(f"{split}_extra*.tar.xz")):  # languages packed beside the plain files
        with tarfile.open(tar, "r:xz") as t:
            for m in t.getmembers():
                if m.name.endswith(f"/{code}.{split}") or m.name == f"{code}.{split}":
                    data = t.extractfile(m)
                    if data is not None:
                        return data.read().decode("utf-8").rstrip("\n").split("\n")
    raise DataError(f"FLORES-200 file {code}.{split} not found under {root}")


def read_flores(root: str | Path, languages: list[str], split: str = "devtest") -> list[ParallelRecord]:
    """Read FLORES-200 (``ROOT/devtest/CODE.devtest``, one sentence per line, aligned by line)."""
    root = Path(root)
    codes = [get_language(code).code for code in languages]
    cols = {c: _flores_lines(root, c, split) for c in codes}
    lengths = {c: len(v) for c, v in cols.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(f"{root}: misaligned FLORES files (line counts {lengths})")
    n = next(iter(lengths.values()))
    return [ParallelRecord(id=f"flores-{split}-{i + 1}", texts={c: cols[c][i] for c in codes}) for i in range(n)]


def load_parallel(source: str, languages: list[str], flores: str | None = None) -> list[ParallelRecord]:
    """Load parallel records from any supported source, keeping only records that have every language.

    Args:
        source: ``sample``, ``flores200``, a FLORES directory, or a ``.tsv``/``.jsonl`` file.
        languages: codes (or aliases) that every record must have.
        flores: FLORES directory for ``source="flores200"``.

    Returns:
        Records restricted to ``languages``.
    """
    codes = [get_language(code).code for code in languages]
    if source == "sample":
        recs = read_jsonl_parallel(sample_path())
    elif source == "flores200":
        recs = read_flores(flores_dir(flores), codes)
    else:
        p = Path(source).expanduser()
        if p.is_dir():
            recs = read_flores(p, codes)
        elif p.suffix == ".tsv":
            recs = read_tsv_parallel(p)
        elif p.suffix in (".jsonl", ".json"):
            recs = read_jsonl_parallel(p)
        elif not p.exists():
            raise DataError(f"parallel data not found: {p}")
        else:
            raise DataError(f"{p}: unsupported parallel format; use a FLORES directory, .tsv or .jsonl")
    missing = [c for c in codes if not any(c in r.texts for r in recs)]
    if missing:
        raise DataError(f"{source}: no text for language(s) {', '.join(missing)}")
    keep = [r for r in recs if all(c in r.texts for c in codes)]
    for r in keep:
        r.texts = {c: r.texts[c] for c in codes}
    return keep
