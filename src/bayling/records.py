"""Parallel text in every form bayling reads, as :class:`ParallelRecord` objects, and where shared data lives.

Every stage reads parallel text through here: the data stage builds from it, evaluation scores on it (test sets
and few-shot demonstrations, see :mod:`bayling.testsets`), the contamination check indexes it. Readers yield
records keyed by FLORES-200 codes, so callers never care where text came from:

* JSONL with language-code keys (plus ``id``, ``doc``, ``domain``, ``terms``, ``variants``);
* TSV whose header names a language per column (plus ``id`` and ``doc``);
* directories of line-aligned files: FLORES-200 (``SPLIT/CODE.SPLIT``, extra languages packed in
  ``SPLIT_extra*.tar.xz``), Moses (``NAME.CODE``) and NTREX-128 (``NAME.CODE.txt``), with each line's document
  (article) id from FLORES ``metadata_SPLIT.tsv`` or NTREX ``DOCUMENT_IDS.tsv`` (:func:`document_ids`: the
  held-out split never cuts through a document);
* Hugging Face data sets, local or ``hf:ORG/NAME`` on the Hub (:mod:`bayling.hub_data`), including the FLORES+
  layout.

They stream (one record at a time), so corpora far larger than memory can be read twice (count, then build).
Misaligned or malformed input fails with ``file:line`` and the reason, or is skipped and counted through
:class:`~bayling.validate.BadLines` when the user asked for that.

Shared data (FLORES-200, WMT22, NTREX-128, benchmarks) is found by :func:`dataset_dir` under the data root
(``eval.data_dir`` or ``$BAYLING_EVAL_DATA``), FLORES-200 also by ``data.flores_dir`` / ``eval.flores_dir`` or
``$BAYLING_FLORES_DIR`` (:func:`flores_source`, which may also be a Hub copy).
"""

from __future__ import annotations

import contextlib
import os
import tarfile
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayling.errors import DataError, UnknownLanguageError
from bayling.languages import get_language
from bayling.validate import (
    BadLines,
    at,
    check,
    decode_text,
    fail,
    iter_jsonl_numbered,
    iter_lines,
    iter_tsv,
    read_lines,
)
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


# ----------------------------------------------------------------------------- where shared data lives


def data_root(explicit: str | None = None) -> Path | None:
    """The shared-data root: ``explicit``, else ``$BAYLING_EVAL_DATA``; None when neither is set."""
    path = explicit or os.environ.get("BAYLING_EVAL_DATA")
    return Path(path).expanduser() if path else None


def dataset_dir(name: str, data_dir: str | None = None, explicit: str | None = None) -> Path:
    """The directory of one data set (``flores200``, ``wmt22``, ``ntrex128``, ``xcopa``…).

    Args:
        name: folder name in the shared-data layout.
        data_dir: the data root (see :func:`data_root`).
        explicit: a path given for this set alone; wins over the root.

    Raises:
        DataError: naming where it looked and how to get the data.
    """
    candidates = []
    if explicit:
        candidates.append(Path(explicit).expanduser())
    root = data_root(data_dir)
    if root is not None:
        candidates.append(root / name)
    if name == "flores200" and os.environ.get("BAYLING_FLORES_DIR"):
        candidates.append(Path(os.environ["BAYLING_FLORES_DIR"]).expanduser())
    for c in candidates:
        if c.is_dir():
            return c
    nowhere = "nowhere (set eval.data_dir or $BAYLING_EVAL_DATA)"
    if name == "flores200":
        nowhere = (
            "nowhere (set data.flores_dir / eval.flores_dir, eval.data_dir, $BAYLING_EVAL_DATA or $BAYLING_FLORES_DIR)"
        )
    where = ", ".join(str(c) for c in candidates) or nowhere
    dl = {"flores200": "flores200", "wmt22": "wmt22", "ntrex128": "ntrex"}.get(name)
    hint = f"; get it with: bayling eval download {dl} --dest DIR" if dl else ""
    raise DataError(f"{name} data not found: looked in {where}{hint}")


def flores_source(explicit: str | None = None, data_dir: str | None = None) -> str | Path:
    """Where FLORES-200 is: a local directory (see :func:`dataset_dir`) or an ``hf:`` Hub copy (FLORES+ layout).

    ``explicit`` (``data.flores_dir`` / ``eval.flores_dir``) wins; then a ``flores200`` folder under the data
    root; then ``$BAYLING_FLORES_DIR`` (a directory or an ``hf:`` reference).
    """
    if explicit and str(explicit).startswith("hf:"):
        return str(explicit)
    root = data_root(data_dir)
    local = root is not None and (root / "flores200").is_dir()
    env = os.environ.get("BAYLING_FLORES_DIR", "")
    if not explicit and not local and env.startswith("hf:"):
        return env
    return dataset_dir("flores200", data_dir, explicit)


# ----------------------------------------------------------------------------- line-aligned files


def _lang_of(name: str) -> str | None:
    try:
        return get_language(name).code
    except UnknownLanguageError:
        return None


def aligned_files(
    root: Path, codes: list[str], split: str, other_layouts: bool = True
) -> dict[str, Path | tuple[Path, str]]:
    """Find one file per language: ``CODE.SPLIT`` / ``SPLIT/CODE.SPLIT`` (FLORES), with ``other_layouts`` also
    ``NAME.CODE`` (Moses) and ``NAME.CODE.txt`` (NTREX-128), else a member of ``SPLIT_extra*.tar.xz`` beside them
    (how the project packs the extra FLORES languages).

    Raises:
        DataError: naming the files not found (``eng_Latn.devtest not found``).
    """
    found: dict[str, Path | tuple[Path, str]] = {}
    for code in codes:
        for d in (root / split, root):
            if (d / f"{code}.{split}").is_file():
                found[code] = d / f"{code}.{split}"
                break
    missing = [c for c in codes if c not in found]
    if missing and other_layouts:  # Moses style: corpus.en, corpus.de / news.eng_Latn; NTREX: newstest2019-ref.deu.txt
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
        names = ", ".join(f"{c}.{split}" for c in missing)
        raise DataError(f"no file for language(s) {', '.join(missing)} under {root}: {names} not found")
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
    NTREX ``DOCUMENT_IDS.tsv``; see :func:`document_ids`).

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


def read_columns(root: str | Path, codes: Sequence[str], split: str = "devtest") -> dict[str, list[str]]:
    """Whole columns of a FLORES-layout directory, ``{code: lines}`` (plain files first, then one pass over the
    extra tarballs); lines are kept as they are (blank lines and surrounding spaces too: they are segments).

    Raises:
        DataError: a language without a file (``CODE.SPLIT not found``), or files of different lengths.
    """
    root = Path(root)
    files = aligned_files(root, list(codes), split, other_layouts=False)
    out = {c: read_lines(f) for c, f in files.items() if not isinstance(f, tuple)}
    out.update(_tar_lines({c: f for c, f in files.items() if isinstance(f, tuple)}))
    lengths = {c: len(out[c]) for c in codes}
    if len(set(lengths.values())) > 1:
        raise DataError(f"{root}: misaligned FLORES files (line counts {lengths})")
    return {c: out[c] for c in codes}


def read_flores(root: str | Path, languages: list[str], split: str = "devtest") -> list[ParallelRecord]:
    """Read FLORES-200 (``ROOT/devtest/CODE.devtest``, one sentence per line, aligned by line)."""
    recs = list(iter_aligned(root, languages, split))
    for i, r in enumerate(recs):
        r.id = f"flores-{split}-{i + 1}"
    return recs


def document_ids(root: str | Path, split: str) -> tuple[list[str], Path] | None:
    """Per-line document ids of a directory of aligned files, and the file they came from; None if none.

    Looks for FLORES ``metadata_SPLIT.tsv`` (header with a ``URL`` column) in ``root`` or ``root/SPLIT``,
    then NTREX-128 ``DOCUMENT_IDS.tsv`` (one id a line) in ``root``.

    Raises:
        DataError: a metadata file without a ``URL`` column, or with an empty id (``file:line``).
    """
    root = Path(root)
    for meta in (root / f"metadata_{split}.tsv", root / split / f"metadata_{split}.tsv"):
        if meta.is_file():
            rows = iter_tsv(meta)
            _, header = next(rows, (1, []))
            if "URL" not in header:
                raise DataError(f"{meta}:1: expected a 'URL' column (FLORES metadata), found {header}")
            col = header.index("URL")
            ids = []
            for n, row in rows:
                if len(row) <= col or not row[col].strip():
                    raise DataError(f"{meta}:{n}: no URL")
                ids.append(row[col].strip())
            return ids, meta
    ntrex = root / "DOCUMENT_IDS.tsv"
    if ntrex.is_file():
        ids = read_lines(ntrex)
        for n, x in enumerate(ids, 1):
            if not x.strip():
                raise DataError(f"{ntrex}:{n}: empty document id")
        return [x.strip() for x in ids], ntrex
    return None


# ----------------------------------------------------------------------------- Hugging Face data sets


def iter_flores_plus(ref: Any, configs: dict[str, str], split: str, bad: BadLines) -> Iterator[ParallelRecord]:
    """Parallel records from the FLORES+ layout of a Hub data set; each carries its article URL as ``doc``."""
    from bayling.hub_data import flores_plus_columns

    order, rows = flores_plus_columns(ref, configs, split)
    name = ref.repo_id.split("/")[-1]
    for key in order:
        texts = {code: str(rows[code][key]["text"] or "").strip() for code in configs}
        empty = [c for c, t in texts.items() if not t]
        if empty:
            bad.error(f"{ref.text}:{configs[empty[0]]}: empty text for id {key}")
            continue
        first = rows[next(iter(configs))][key]
        yield ParallelRecord(id=f"{name}-{split}-{key}", texts=texts, doc=first.get("url") or None)


def iter_hf(
    source: str, languages: list[str] | None = None, flores_split: str = "devtest", bad: BadLines | None = None
) -> Iterator[ParallelRecord]:
    """Parallel records of an ``hf:`` source, local or on the Hub (:mod:`bayling.hub_data`): language-code
    columns (other columns are metadata), a ``translation`` column of ``{lang: text}`` (the WMT layout), or the
    FLORES+ layout (taking ``flores_split`` when the reference names none).

    Args:
        source: ``hf:ORG/NAME[:CONFIG][@SPLIT]`` or ``hf:LOCAL_PATH``.
        languages: FLORES codes needed (selects the FLORES+ configs to read).
        flores_split: split of a FLORES+-layout source when the reference names none.
        bad: malformed-row policy.
    """
    from bayling.hub_data import flores_plus_configs, load, parse_hf

    bad = bad or BadLines()
    ref = parse_hf(source)
    configs = flores_plus_configs(ref, list(languages or []))
    if configs is not None:
        yield from iter_flores_plus(ref, configs, flores_split, bad)
        return
    ds = load(ref)
    stem = Path(ref.repo_id).name
    for n, row in enumerate(ds, 1):
        row = dict(row)
        obj = dict(row.pop("translation", None) or {}, **row)
        obj = {k: v for k, v in obj.items() if k in ("id", "domain") or _lang_of(k)}  # other columns: metadata
        if n == 1 and not any(_lang_of(k) for k in obj):
            raise DataError(
                f"{ref.text}: no language-code columns (e.g. eng_Latn, en) or translation column; "
                f"columns are {', '.join(row)}"
            )
        try:
            yield _record_from_obj(obj, f"{ref.text}:{n}", f"{stem}-{n}")
        except DataError as e:
            bad.error(str(e))


# ----------------------------------------------------------------------------- any source


def iter_source(
    source: str, languages: list[str], flores: str | None = None, split: str = "devtest", bad: BadLines | None = None
) -> Iterator[ParallelRecord]:
    """Every record of ``source`` (unfiltered), from the reader its form selects.

    Args:
        source: ``flores200`` (found by :func:`flores_source` from ``flores``), a directory of aligned files, a
            ``.tsv``/``.jsonl``/``.json`` file or ``hf:REF``.
        languages: FLORES codes (which files of an aligned directory, which FLORES+ configs to read).
        flores: ``data.flores_dir`` / ``eval.flores_dir``.
        split: the split of FLORES-layout directories and of FLORES+ when the reference names none.
        bad: malformed-line policy.
    """
    if source == "flores200":
        found = flores_source(flores)
        if isinstance(found, str):  # a Hub copy of FLORES (the FLORES+ layout)
            return iter_hf(found, languages, split, bad)
        return iter_aligned(found, languages, split, bad)
    if source.startswith("hf:"):
        return iter_hf(source, languages, split, bad)
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
        source: ``flores200``, a directory of aligned files, a ``.tsv``/``.jsonl`` file or ``hf:REF``.
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
