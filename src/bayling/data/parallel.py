"""Readers for parallel text: the shipped sample, aligned files (FLORES layout), TSV, JSONL and HF ``datasets``.

All readers yield :class:`ParallelRecord` objects keyed by FLORES-200 codes, so the builders never care
where text came from. They stream (one record at a time), so corpora far larger than memory can be read
twice (count, then build). Misaligned or malformed input fails with ``file:line`` and the reason, or is
skipped and counted through :class:`~bayling.validate.BadLines` when the user asked for that.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bayling.data.split import document_ids
from bayling.errors import DataError, UnknownLanguageError
from bayling.languages import get_language
from bayling.validate import BadLines, at, check, decode_text, fail, iter_jsonl_numbered, iter_lines, iter_tsv
from bayling.validate import field as get_field


@dataclass
class ParallelRecord:
    """One sentence (or segment) in several languages, with optional key terms and register variants."""

    id: str
    texts: dict[str, str]
    terms: list[dict[str, str]] = field(default_factory=list)
    variants: dict[str, dict[str, str]] = field(default_factory=dict)
    domain: str | None = None
    doc: str | None = None
    """The document (article) the segment comes from; the held-out split never cuts through one
    (see :mod:`bayling.data.split`)."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, **self.texts}
        if self.doc:
            d["doc"] = self.doc
        if self.domain:
            d["domain"] = self.domain
        if self.terms:
            d["terms"] = self.terms
        if self.variants:
            d["variants"] = self.variants
        return d


_META_KEYS = {"id", "doc", "domain", "terms", "variants"}


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


def _text_map(value: Any, where: str, codes: dict[str, str]) -> dict[str, str]:
    """A ``{language: text}`` object of ``terms``/``variants`` (keys mapped to codes where known)."""
    check(value, dict, where)
    return {codes.get(k, k): check(v, str, at(where, k)) for k, v in value.items()}


def _record_from_obj(obj: dict[str, Any], where: str, default_id: str) -> ParallelRecord:
    langs = [k for k in obj if k not in _META_KEYS]
    codes = _codes(langs, where)
    texts = {}
    for k in langs:
        texts[codes[k]] = get_field(obj, k, "text", where).strip()
    if not texts:
        raise fail(where, "language-code fields with the text (e.g. eng_Latn, zho_Hans)", obj)
    terms = get_field(obj, "terms", list, where, required=False, default=[])
    variants = get_field(obj, "variants", dict, where, required=False, default={})
    return ParallelRecord(
        id=str(obj.get("id", default_id)),
        texts=texts,
        terms=[_text_map(t, at(where, f"terms[{i}]"), codes) for i, t in enumerate(terms)],
        variants={reg: _text_map(d, at(where, f"variants.{reg}"), codes) for reg, d in variants.items()},
        domain=get_field(obj, "domain", "scalar", where, required=False),
        doc=str(get_field(obj, "doc", "scalar", where, required=False)) if obj.get("doc") is not None else None,
    )


def iter_jsonl_parallel(path: str | Path, bad: BadLines | None = None) -> Iterator[ParallelRecord]:
    """JSONL with language-code keys (plus optional ``id``, ``doc``, ``domain``, ``terms``, ``variants``)."""
    bad = bad or BadLines()
    for n, obj in iter_jsonl_numbered(path, bad):
        try:
            yield _record_from_obj(obj, f"{path}:{n}", f"{Path(path).stem}-{n}")
        except DataError as e:
            bad.error(str(e))


def read_jsonl_parallel(path: str | Path) -> list[ParallelRecord]:
    """All records of a JSONL parallel file (see :func:`iter_jsonl_parallel`)."""
    return list(iter_jsonl_parallel(path))


def iter_tsv_parallel(path: str | Path, bad: BadLines | None = None) -> Iterator[ParallelRecord]:
    """TSV whose header names a language per column (optional ``id`` and ``doc`` columns are kept)."""
    bad = bad or BadLines()
    p = Path(path)
    rows = iter_tsv(p, bad)
    first, header = next(rows, (0, None))
    if first == 1 and header is None:  # skipped by ``bad``: without a header nothing else can be read
        raise DataError(f"{p}:1: the header line cannot be decoded (not valid UTF-8)")
    if not header or not any(h.strip() for h in header):
        raise DataError(f"{p}:1: empty file; expected a header of language codes")
    langs = [h for h in header if h not in ("id", "doc")]
    codes = _codes(langs, f"{p}:1")
    if len(set(codes.values())) != len(langs):
        raise DataError(f"{p}:1: expected one column per language, found {', '.join(header)}")
    for n, row in rows:
        if row is None or not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            bad.error(f"{p}:{n}: expected {len(header)} tab-separated columns, found {len(row)}")
            continue
        d = dict(zip(header, row, strict=True))
        empty = [k for k in langs if not d[k].strip()]
        if empty:
            bad.error(f"{p}:{n}: empty text in column {empty[0]!r}")
            continue
        yield ParallelRecord(
            id=d.get("id") or f"{p.stem}-{n}",
            texts={codes[k]: d[k].strip() for k in langs},
            doc=d.get("doc") or None,
        )


def read_tsv_parallel(path: str | Path) -> list[ParallelRecord]:
    return list(iter_tsv_parallel(path))


def flores_dir(explicit: str | None = None) -> Path:
    """Locate FLORES-200: the explicit path, else ``$BAYLING_FLORES_DIR``."""
    path = explicit or os.environ.get("BAYLING_FLORES_DIR")
    if not path:
        raise DataError(
            "FLORES-200 not configured: set data.flores_dir / eval.flores_dir or $BAYLING_FLORES_DIR to the "
            "directory holding devtest/ (see the README section 'Getting FLORES-200')"
        )
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DataError(f"FLORES-200 directory not found: {p}")
    return p


def _lang_of(name: str) -> str | None:
    try:
        return get_language(name).code
    except UnknownLanguageError:
        return None


def aligned_files(root: Path, codes: list[str], split: str) -> dict[str, Path | tuple[Path, str]]:
    """Find one file per language: ``CODE.SPLIT`` / ``SPLIT/CODE.SPLIT`` (FLORES), ``NAME.CODE`` (Moses),
    ``NAME.CODE.txt`` (NTREX-128), or a member of ``SPLIT_extra*.tar.xz`` beside them (how the project packs the extra FLORES languages)."""
    found: dict[str, Path | tuple[Path, str]] = {}
    for code in codes:
        for d in (root / split, root):
            if (d / f"{code}.{split}").is_file():
                found[code] = d / f"{code}.{split}"
                break
    missing = [c for c in codes if c not in found]
    if missing:  # Moses style: corpus.en, corpus.de / news.eng_Latn; NTREX: newstest2019-ref.deu.txt
        for f in sorted(p for p in root.iterdir() if p.is_file() and "." in p.name):
            stem = f.name[: -len(".txt")] if f.name.endswith(".txt") and f.name.count(".") > 1 else f.name
            code = _lang_of(stem.rsplit(".", 1)[1])
            if code in missing and code not in found:
                found[code] = f
    missing = [c for c in codes if c not in found]
    for tar in sorted(root.glob(f"{split}_extra*.tar.xz")) if missing else []:
        with tarfile.open(tar, "r:xz") as t:
            for m in t.getmembers():
                base = m.name.rsplit("/", 1)[-1]
                code = base[: -len(f".{split}")] if base.endswith(f".{split}") else None
                if code in missing and code not in found:
                    found[code] = (tar, m.name)
    missing = [c for c in codes if c not in found]
    if missing:
        raise DataError(f"no file for language(s) {', '.join(missing)} under {root} (split {split!r})")
    return found


def _tar_lines(members: dict[str, tuple[Path, str]]) -> dict[str, list[str]]:
    """Read the needed tar members in one pass per archive (xz cannot seek)."""
    out: dict[str, list[str]] = {}
    by_tar: dict[Path, dict[str, str]] = {}
    for code, (tar, name) in members.items():
        by_tar.setdefault(tar, {})[name] = code
    for tar, names in by_tar.items():
        with tarfile.open(tar, "r:xz") as t:
            for m in t:
                if m.name in names:
                    data = t.extractfile(m)
                    if data is not None:
                        text = decode_text(data.read(), f"{tar}!{m.name}")
                        out[names[m.name]] = text.rstrip("\n").split("\n")
    return out


_END = object()


def _texts(lines: Iterator[tuple[int, str | None]]) -> Iterator[str | None]:
    return (text for _, text in lines)


def iter_aligned(
    root: str | Path, languages: list[str], split: str = "devtest", bad: BadLines | None = None
) -> Iterator[ParallelRecord]:
    """Line-aligned files, one per language (FLORES-200 layout or Moses ``NAME.CODE``); streams plain files.

    Records get the document id of their line when the directory has one (FLORES ``metadata_SPLIT.tsv``,
    NTREX ``DOCUMENT_IDS.tsv``; see :func:`bayling.data.split.document_ids`).

    Raises:
        DataError: when the files (or the document ids) have different line counts (``file:line`` of the first
            mismatch).
    """
    bad = bad or BadLines()
    root = Path(root)
    codes = [get_language(code).code for code in languages]
    files = aligned_files(root, codes, split)
    docs, docs_file = document_ids(root, split) or (None, None)
    in_tar = _tar_lines({c: f for c, f in files.items() if isinstance(f, tuple)})
    names = {c: (f"{f[0]}!{f[1]}" if isinstance(f, tuple) else str(f)) for c, f in files.items()}
    with contextlib.ExitStack() as stack:
        its: dict[str, Iterator[str | None]] = {}
        for c in codes:
            f = files[c]
            # undecodable lines come as None when skipping (counted by ``bad``), so the files stay aligned
            its[c] = (
                iter(in_tar[c]) if isinstance(f, tuple) else _texts(stack.enter_context(closing(iter_lines(f, bad))))
            )
        n = 0
        while True:
            n += 1
            lines = {c: next(it, _END) for c, it in its.items()}
            ended = [c for c, v in lines.items() if v is _END]
            if len(ended) == len(codes):
                if docs is not None and n - 1 != len(docs):
                    raise DataError(f"{docs_file}: {len(docs)} document ids for {n - 1} lines of {names[codes[0]]}")
                return
            if ended:
                going = next(c for c in codes if lines[c] is not _END)
                raise DataError(
                    f"{names[going]}:{n}: misaligned parallel files: {names[ended[0]]} ends after {n - 1} lines "
                    f"but {names[going]} continues"
                )
            if docs is not None and n > len(docs):
                raise DataError(f"{docs_file}: {len(docs)} document ids but {names[codes[0]]} has more lines")
            if any(v is None for v in lines.values()):
                continue  # a line that cannot be decoded: already counted by ``bad``
            texts = {c: v.strip() for c, v in lines.items()}
            empty = [c for c, v in texts.items() if not v]
            if empty:
                bad.error(f"{names[empty[0]]}:{n}: empty line in a line-aligned file")
                continue
            yield ParallelRecord(id=f"{root.name}-{split}-{n}", texts=texts, doc=docs[n - 1] if docs else None)


def read_flores(root: str | Path, languages: list[str], split: str = "devtest") -> list[ParallelRecord]:
    """Read FLORES-200 (``ROOT/devtest/CODE.devtest``, one sentence per line, aligned by line)."""
    recs = list(iter_aligned(root, languages, split))
    for i, r in enumerate(recs):
        r.id = f"flores-{split}-{i + 1}"
    return recs


def iter_hf(
    path: str, bad: BadLines | None = None, languages: list[str] | None = None, split: str = "devtest"
) -> Iterator[ParallelRecord]:
    """A Hugging Face dataset with language-code columns or a ``translation`` column of ``{lang: text}`` (the WMT
    layout on the Hub): a local ``save_to_disk`` directory or data files, or a Hub id ``ORG/NAME[:CONFIG][@SPLIT]``
    (see :mod:`bayling.data.hub`, which also reads the FLORES+ layout, taking ``split`` when none is named)."""
    from bayling.errors import require

    if not Path(path).expanduser().exists():
        from bayling.data.hub import iter_hub_parallel

        yield from iter_hub_parallel("hf:" + path, languages, split, bad)
        return

    datasets = require("datasets", "train")
    bad = bad or BadLines()
    p = Path(path).expanduser()
    try:
        if (p / "state.json").is_file() or (p / "dataset_dict.json").is_file():
            ds = datasets.load_from_disk(str(p))
        else:
            ds = datasets.load_dataset(str(p))
    except (FileNotFoundError, ValueError) as e:
        raise DataError(f"hf:{path}: cannot load dataset ({e})") from None
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"] if "train" in ds else ds[next(iter(ds))]
    for n, row in enumerate(ds, 1):
        obj = dict(row.pop("translation", None) or {}, **row)
        try:
            yield _record_from_obj(obj, f"hf:{path}:{n}", f"{p.name}-{n}")
        except DataError as e:
            bad.error(str(e))


def iter_source(
    source: str, languages: list[str], flores: str | None = None, split: str = "devtest", bad: BadLines | None = None
) -> Iterator[ParallelRecord]:
    """Every record of ``source`` (unfiltered), from the reader its form selects."""
    if source == "sample":
        return iter_jsonl_parallel(sample_path(), bad)
    if source == "flores200" and str(flores or os.environ.get("BAYLING_FLORES_DIR", "")).startswith("hf:"):
        source = flores or os.environ["BAYLING_FLORES_DIR"]  # a Hub copy of FLORES (the FLORES+ layout)
    if source == "flores200":
        return iter_aligned(flores_dir(flores), languages, split, bad)
    if source.startswith("hf:"):
        return iter_hf(source[3:], bad, languages, split)
    p = Path(source).expanduser()
    if p.is_dir():
        return iter_aligned(p, languages, split, bad)
    if p.suffix == ".tsv":
        return iter_tsv_parallel(p, bad)
    if p.suffix in (".jsonl", ".json"):
        return iter_jsonl_parallel(p, bad)
    if not p.exists():
        raise DataError(f"parallel data not found: {p}")
    raise DataError(f"{p}: unsupported parallel format; use a directory of aligned files, .tsv, .jsonl or hf:PATH")


def iter_parallel(
    source: str, languages: list[str], flores: str | None = None, split: str = "devtest", bad: BadLines | None = None
) -> Iterator[ParallelRecord]:
    """Records of ``source`` that have every language in ``languages``, restricted to those languages."""
    codes = [get_language(code).code for code in languages]
    for r in iter_source(source, codes, flores, split, bad):
        if all(c in r.texts for c in codes):
            r.texts = {c: r.texts[c] for c in codes}
            yield r


def load_parallel(source: str, languages: list[str], flores: str | None = None) -> list[ParallelRecord]:
    """Load parallel records from any supported source, keeping only records that have every language.

    Args:
        source: ``sample``, ``flores200``, a directory of aligned files, a ``.tsv``/``.jsonl`` file or ``hf:PATH``.
        languages: codes (or aliases) that every record must have.
        flores: FLORES directory for ``source="flores200"``.

    Returns:
        Records restricted to ``languages``.
    """
    codes = [get_language(code).code for code in languages]
    recs = list(iter_source(source, codes, flores))
    missing = [c for c in codes if not any(c in r.texts for r in recs)]
    if missing:
        raise DataError(f"{source}: no text for language(s) {', '.join(missing)}")
    keep = [r for r in recs if all(c in r.texts for c in codes)]
    for r in keep:
        r.texts = {c: r.texts[c] for c in codes}
    return keep
