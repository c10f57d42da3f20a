"""Translation test sets as :class:`Bitext` directions: FLORES-200 devtest, WMT22 general (BayLing's 14
directions), NTREX-128, a FLORES-layout directory, or a Hub copy of FLORES (FLORES+ layout).

Every loader returns one :class:`Bitext` per direction (source lines, reference lines, ids), read from the
public layouts (``bayling eval download`` fetches them, see :mod:`bayling.evaluate.download`):

* FLORES-200: ``flores200/devtest/CODE.devtest`` (one sentence per line, aligned across languages),
  plus languages packed as ``devtest_extra*.tar.xz`` beside the plain files (read in one pass, by
  :func:`bayling.records.read_columns`: the one FLORES reader);
* WMT22: ``wmt22/generaltest2022.SRC-TGT.src.SRC`` and ``...ref.A.TGT`` (reference A, which is what
  BayLing scored against; B where a direction has no A);
* NTREX-128: ``ntrex128/newstest2019-src.eng.txt`` and ``newstest2019-ref.CODE.txt`` (English source;
  X->en uses the reference as source, as the NTREX authors allow);
* WMT24++ (``google/wmt24pp``, or its local copy ``DATA_DIR/wmt24pp``): one config per English->locale pair
  (``en-de_DE``), split ``train``, columns ``lp``, ``domain``, ``document_id``, ``segment_id``,
  ``is_bad_source``, ``source``, ``target`` (the post-edit, the reference) and ``original_target``. Rows
  flagged ``is_bad_source`` are dropped and counted (``Bitext.dropped``), as its authors did in the paper.
  A locale resolves to its FLORES code (``de_DE`` -> ``deu_Latn``, ``zh_TW`` -> ``zho_Hant``) for language
  ID and BLEU's tokenizer; results stay per locale (``eng_Latn-pt_BR``, ``eng_Latn-pt_PT``): a direction
  names a language, and each of its WMT24++ locales is scored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bayling.errors import DataError, UnknownLanguageError
from bayling.languages import get_language
from bayling.records import dataset_dir, flores_source, read_columns
from bayling.validate import read_lines

if TYPE_CHECKING:
    from bayling.hub_data import HfRef

WMT22_DIRECTIONS = (
    "zh-en", "en-zh", "de-en", "en-de", "cs-en", "en-cs", "ja-en",
    "en-ja", "ru-en", "en-ru", "uk-en", "en-uk", "de-fr", "fr-de",
)  # fmt: skip
"""The 14 WMT22 general-task directions of BayLing's released outputs."""

TESTSETS = ("flores200", "wmt22", "ntrex", "wmt24pp")

WMT24PP = "google/wmt24pp"
"""WMT24++ on the Hub (55 English->locale pairs, post-edited references)."""
WMT24PP_PAIR = re.compile(r"^en-([a-z]{2,3}_[A-Z]{2})$")
"""A WMT24++ config name (``en-de_DE``); the group is the target locale."""


@dataclass
class Bitext:
    """One direction of a test set: aligned source and reference lines."""

    testset: str
    src: str
    tgt: str
    sources: list[str]
    refs: list[str]
    ids: list[str]
    locale: str = ""
    """The target's locale where a set has several of one language (WMT24++ ``pt_BR``/``pt_PT``); it names the
    direction (``eng_Latn-pt_BR``), while ``tgt`` (the FLORES code) drives language ID and BLEU's tokenizer."""
    dropped: int = 0
    """Rows of the set left out before scoring (WMT24++ bad sources)."""

    @property
    def key(self) -> str:
        return f"{self.src}-{self.locale or self.tgt}"

    def head(self, n: int) -> Bitext:
        """The first ``n`` segments (all when ``n <= 0``)."""
        if n <= 0:
            return self
        return replace(self, sources=self.sources[:n], refs=self.refs[:n], ids=self.ids[:n])


def _aligned(testset: str, src_path: Path, ref_path: Path, src: str, tgt: str) -> Bitext:
    sources, refs = read_lines(src_path), read_lines(ref_path)
    if len(sources) != len(refs):
        raise DataError(
            f"{ref_path}:{min(len(sources), len(refs)) + 1}: {len(refs)} reference lines but {len(sources)} "
            f"source lines in {src_path}"
        )
    ids = [f"{testset}-{i + 1}" for i in range(len(sources))]
    return Bitext(testset, src, tgt, sources, refs, ids)


# ----------------------------------------------------------------------------- FLORES-200


def load_flores(root: str | Path, directions: Iterable[tuple[str, str]], split: str = "devtest") -> list[Bitext]:
    """One :class:`Bitext` per direction from FLORES-200 (any of the 204 languages, any direction)."""
    directions = list(directions)
    codes = sorted({c for d in directions for c in d})
    cols = read_columns(root, codes, split)
    n = len(next(iter(cols.values()))) if cols else 0
    ids = [f"flores200-{split}-{i + 1}" for i in range(n)]
    return [Bitext("flores200", s, t, cols[s], cols[t], ids) for s, t in directions]


def load_flores_hub(source: str, directions: list[tuple[str, str]], split: str = "devtest") -> list[Bitext]:
    """Test-set directions from a Hub FLORES (FLORES+ layout), in the form of a local FLORES-200 directory."""
    from bayling.hub_data import flores_plus_columns, flores_plus_configs, parse_hf

    ref = parse_hf(source)
    directions = [(get_language(s).code, get_language(t).code) for s, t in directions]
    codes = sorted({c for d in directions for c in d})
    configs = flores_plus_configs(ref, codes)
    if configs is None:
        raise DataError(f"{ref.text}: not a FLORES+-layout data set (one config per language, e.g. eng_Latn)")
    order, rows = flores_plus_columns(ref, configs, ref.split or split)
    cols = {c: [str(rows[c][k]["text"]).strip() for k in order] for c in codes}
    ids = [f"flores200-{ref.split or split}-{i + 1}" for i in range(len(order))]
    return [Bitext("flores200", s, t, cols[s], cols[t], ids) for s, t in directions]


# ----------------------------------------------------------------------------- WMT22


def _iso(code: str) -> str:
    lang = get_language(code)
    return lang.iso639_1 or lang.iso639_3


def wmt22_files(root: str | Path, src: str, tgt: str, ref: str = "auto") -> tuple[Path, Path]:
    """Source and reference file of one WMT22 direction (reference A, else B, unless ``ref`` names one)."""
    root, s, t = Path(root), _iso(src), _iso(tgt)
    pair = f"{s}-{t}"
    if pair not in WMT22_DIRECTIONS:
        raise DataError(f"WMT22 has no {pair} direction in BayLing's set; choose from {', '.join(WMT22_DIRECTIONS)}")
    src_file = root / f"generaltest2022.{pair}.src.{s}"
    refs = [ref] if ref != "auto" else ["A", "B"]
    for r in refs:
        ref_file = root / f"generaltest2022.{pair}.ref.{r}.{t}"
        if ref_file.is_file():
            return src_file, ref_file
    raise DataError(f"WMT22 reference for {pair} not found in {root} (tried ref {'/'.join(refs)})")


def load_wmt22(root: str | Path, directions: Iterable[tuple[str, str]], ref: str = "auto") -> list[Bitext]:
    """One :class:`Bitext` per direction of WMT22 general (directions as FLORES codes or ISO aliases)."""
    out = []
    for src, tgt in directions:
        s, t = get_language(src).code, get_language(tgt).code
        src_file, ref_file = wmt22_files(root, s, t, ref)
        out.append(_aligned("wmt22", src_file, ref_file, s, t))
    return out


# ----------------------------------------------------------------------------- NTREX-128


def _ntrex_files(root: Path) -> dict[str, Path]:
    """FLORES code -> NTREX file (``newstest2019-ref.zho-CN.txt`` -> ``zho_Hans``; source = English)."""
    files = {"eng_Latn": root / "newstest2019-src.eng.txt"}
    for f in sorted(root.glob("newstest2019-ref.*.txt")):
        tag = f.name[len("newstest2019-ref.") : -len(".txt")]
        try:
            code = get_language(tag).code
        except UnknownLanguageError:  # an NTREX variant our table does not know (e.g. gsw-BE): its language, else skip
            try:
                code = get_language(tag.split("-")[0]).code
            except UnknownLanguageError:
                continue
        files.setdefault(code, f)
    return files


def load_ntrex(root: str | Path, directions: Iterable[tuple[str, str]]) -> list[Bitext]:
    """One :class:`Bitext` per direction of NTREX-128 (English <-> X, or X <-> Y through the shared source)."""
    root = Path(root)
    files = _ntrex_files(root)
    out = []
    for src, tgt in directions:
        s, t = get_language(src).code, get_language(tgt).code
        for c in (s, t):
            if c not in files or not files[c].is_file():
                raise DataError(f"NTREX-128 has no file for {c} under {root}")
        out.append(_aligned("ntrex", files[s], files[t], s, t))
    return out


# ----------------------------------------------------------------------------- WMT24++


def wmt24pp_locales(ref: HfRef) -> dict[str, str]:
    """``{locale: config}`` of a data set in the WMT24++ layout (empty when it is not one)."""
    from bayling.hub_data import config_names

    names = [ref.config] if ref.config else config_names(ref)
    return {m.group(1): c for c in names if (m := WMT24PP_PAIR.match(c))}


def load_wmt24pp(source: str, directions: Iterable[tuple[str, str]]) -> list[Bitext]:
    """One :class:`Bitext` per WMT24++ locale of each direction's target, bad sources dropped.

    Args:
        source: ``hf:google/wmt24pp`` (``hf:ORG/NAME:en-de_DE`` keeps one locale) or ``hf:LOCAL_COPY``.
        directions: English -> X pairs (codes or aliases); ``en-pt`` scores ``pt_BR`` and ``pt_PT``.
    """
    from bayling.hub_data import HfRef, load, parse_hf
    from bayling.progress import console
    from bayling.validate import check

    ref = parse_hf(source)
    locales = wmt24pp_locales(ref)
    if not locales:
        raise DataError(f"{ref.text}: not in the WMT24++ layout (one config per pair such as en-de_DE)")
    by_code: dict[str, list[str]] = {}
    for loc in locales:
        by_code.setdefault(get_language(loc).code, []).append(loc)
    out, dropped = [], []
    for src, tgt in dict.fromkeys((get_language(s).code, get_language(t).code) for s, t in directions):
        if src != "eng_Latn":
            raise DataError(f"WMT24++ translates from English only; {src}-{tgt} is not in it")
        if tgt not in by_code:
            have = ", ".join(sorted(locales))
            raise DataError(f"{ref.text}: no locale of {tgt} ({get_language(tgt).name}); it has {have}")
        for loc in by_code[tgt]:
            config = locales[loc]
            rows = load(HfRef(ref.repo_id, config, ref.split or "train", ref.revision, local=ref.local))
            kept, n = [], 0
            for n, row in enumerate(rows, 1):
                where = f"{ref.text}:{config}:{n}"
                for k in ("source", "target"):
                    check(row.get(k), str, f"{where}: {k}")
                if row.get("lp", config) != config:
                    raise DataError(f"{where}: lp is {row['lp']!r}, expected {config!r}")
                if not isinstance(row.get("is_bad_source"), bool):
                    raise DataError(f"{where}: is_bad_source must be true or false, got {row.get('is_bad_source')!r}")
                if not row["is_bad_source"]:
                    kept.append((row.get("segment_id", n), row))
            ids = [f"wmt24pp-{loc}-{sid}" for sid, _ in kept]
            sources, refs = [r["source"] for _, r in kept], [r["target"] for _, r in kept]
            b = Bitext("wmt24pp", src, tgt, sources, refs, ids, locale=loc, dropped=n - len(kept))
            out.append(b)
            dropped.append(f"{loc} {b.dropped}")
    console.print(f"[dim]wmt24pp: bad-source rows dropped: {', '.join(dropped)}[/dim]")
    return out


def wmt24pp_source(data_dir: str | None = None) -> str:
    """``hf:DATA_DIR/wmt24pp`` when a local copy of the Hub repository is there, else ``hf:google/wmt24pp``."""
    from bayling.records import data_root

    root = data_root(data_dir)
    local = root / "wmt24pp" if root is not None else None
    return f"hf:{local}" if local is not None and local.is_dir() else f"hf:{WMT24PP}"


def load_bitexts(
    testset: str, directions: Sequence[tuple[str, str]], data_dir: str | None = None, flores_dir: str | None = None
) -> list[Bitext]:
    """Load ``directions`` of a named set (``flores200``, ``wmt22``, ``ntrex``, ``wmt24pp``), a FLORES-layout
    directory or an ``hf:`` data set in the FLORES+ or WMT24++ layout."""
    if testset == "wmt24pp":
        return load_wmt24pp(wmt24pp_source(data_dir), directions)
    if testset.startswith("hf:"):
        from bayling.hub_data import parse_hf

        ref = parse_hf(testset)
        if (ref.config and WMT24PP_PAIR.match(ref.config)) or (not ref.config and wmt24pp_locales(ref)):
            return load_wmt24pp(testset, directions)
        return load_flores_hub(testset, list(directions))
    if testset == "flores200":
        found = flores_source(flores_dir, data_dir)
        if isinstance(found, str):
            return load_flores_hub(found, list(directions))
        return load_flores(found, directions)
    if testset == "wmt22":
        return load_wmt22(dataset_dir("wmt22", data_dir), directions)
    if testset == "ntrex":
        return load_ntrex(dataset_dir("ntrex128", data_dir), directions)
    p = Path(testset).expanduser()
    if p.is_dir():
        return load_flores(p, directions)
    raise DataError(f"unknown test set {testset!r}: use heldout, {', '.join(TESTSETS)}, a FLORES directory or a file")
