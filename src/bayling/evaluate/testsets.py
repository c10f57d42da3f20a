"""Translation test sets: FLORES-200 devtest, WMT22 general (BayLing's 14 directions), NTREX-128.

Every loader returns :class:`Bitext` objects, one per direction (source lines, reference lines,
ids), read from the public layouts:

* FLORES-200: ``flores200/devtest/CODE.devtest`` (one sentence per line, aligned across languages),
  plus languages packed as ``devtest_extra*.tar.xz`` beside the plain files (read in one pass);
* WMT22: ``wmt22/generaltest2022.SRC-TGT.src.SRC`` and ``...ref.A.TGT`` (reference A, which is what
  BayLing scored against; B where a direction has no A);
* NTREX-128: ``ntrex128/newstest2019-src.eng.txt`` and ``newstest2019-ref.CODE.txt`` (English source;
  X->en uses the reference as source, as the NTREX authors allow).

:func:`download` fetches each set from its original publisher (Meta's FLORES-200 tarball, the
``wmt-conference/wmt22-news-systems`` repository, ``MicrosoftTranslator/NTREX``) into that layout;
the URLs are module constants and every function takes a ``base_url`` so tests can point it at a
server on 127.0.0.1.

Run as::

    bayling eval download flores200 wmt22 ntrex --dest ~/bayling-data
    export BAYLING_EVAL_DATA=~/bayling-data
    bayling eval download flores200-spm          # spBLEU's SentencePiece model, where sacreBLEU looks for it
"""

from __future__ import annotations

import io
import os
import tarfile
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bayling.errors import DataError
from bayling.languages import get_language

FLORES200_URL = "https://dl.fbaipublicfiles.com/nllb/flores200_dataset.tar.gz"
WMT22_URL = "https://raw.githubusercontent.com/wmt-conference/wmt22-news-systems/main/txt"
NTREX_URL = "https://raw.githubusercontent.com/MicrosoftTranslator/NTREX/main/NTREX-128"

WMT22_DIRECTIONS = (
    "zh-en", "en-zh", "de-en", "en-de", "cs-en", "en-cs", "ja-en",
    "en-ja", "ru-en", "en-ru", "uk-en", "en-uk", "de-fr", "fr-de",
)  # fmt: skip
"""The 14 WMT22 general-task directions of BayLing's released outputs."""

TESTSETS = ("flores200", "wmt22", "ntrex")


@dataclass
class Bitext:
    """One direction of a test set: aligned source and reference lines."""

    testset: str
    src: str
    tgt: str
    sources: list[str]
    refs: list[str]
    ids: list[str]

    @property
    def key(self) -> str:
        return f"{self.src}-{self.tgt}"

    def head(self, n: int) -> Bitext:
        """The first ``n`` segments (all when ``n <= 0``)."""
        if n <= 0:
            return self
        return Bitext(self.testset, self.src, self.tgt, self.sources[:n], self.refs[:n], self.ids[:n])


def read_lines(path: str | Path, encoding: str = "utf-8", errors: str = "strict") -> list[str]:
    """Lines of a text file without line ends (blank lines kept: they are segments); a byte that cannot be
    decoded is named with its line and position (see :func:`bayling.validate.read_lines`)."""
    from bayling.validate import read_lines as _read_lines

    return _read_lines(path, encoding, errors)


def _aligned(testset: str, src_path: Path, ref_path: Path, src: str, tgt: str) -> Bitext:
    sources, refs = read_lines(src_path), read_lines(ref_path)
    if len(sources) != len(refs):
        raise DataError(
            f"{ref_path}:{min(len(sources), len(refs)) + 1}: {len(refs)} reference lines but {len(sources)} "
            f"source lines in {src_path}"
        )
    ids = [f"{testset}-{i + 1}" for i in range(len(sources))]
    return Bitext(testset, src, tgt, sources, refs, ids)


# ----------------------------------------------------------------------------- locating data


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
    where = ", ".join(str(c) for c in candidates) or "nowhere (set eval.data_dir or $BAYLING_EVAL_DATA)"
    dl = {"flores200": "flores200", "wmt22": "wmt22", "ntrex128": "ntrex"}.get(name)
    hint = f"; get it with: bayling eval download {dl} --dest DIR" if dl else ""
    raise DataError(f"{name} data not found: looked in {where}{hint}")


# ----------------------------------------------------------------------------- FLORES-200


def read_flores_columns(root: str | Path, codes: Sequence[str], split: str = "devtest") -> dict[str, list[str]]:
    """Read FLORES-200 files for ``codes`` (plain files first, then one pass over the extra tarballs)."""
    root = Path(root)
    out: dict[str, list[str]] = {}
    for code in codes:
        for d in (root / split, root):
            f = d / f"{code}.{split}"
            if f.is_file():
                out[code] = read_lines(f)
                break
    missing = {f"{c}.{split}": c for c in codes if c not in out}
    for tar in sorted(root.glob(f"{split}_extra*.tar.xz")) if missing else []:
        with tarfile.open(tar, "r:xz") as t:
            for m in t:
                base = m.name.rsplit("/", 1)[-1]
                if base in missing and m.isfile():
                    data = t.extractfile(m)
                    assert data is not None
                    out[missing.pop(base)] = data.read().decode("utf-8").rstrip("\n").split("\n")
        if not missing:
            break
    if missing:
        raise DataError(f"FLORES-200 file(s) {', '.join(missing)} not found under {root}")
    lengths = {c: len(v) for c, v in out.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"{root}: misaligned FLORES files (line counts {lengths})")
    return out


def load_flores(root: str | Path, directions: Iterable[tuple[str, str]], split: str = "devtest") -> list[Bitext]:
    """One :class:`Bitext` per direction from FLORES-200 (any of the 204 languages, any direction)."""
    directions = list(directions)
    codes = sorted({c for d in directions for c in d})
    cols = read_flores_columns(root, codes, split)
    n = len(next(iter(cols.values()))) if cols else 0
    ids = [f"flores200-{split}-{i + 1}" for i in range(n)]
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
        except Exception:  # noqa: BLE001 - an NTREX variant our table does not know (e.g. gsw-BE) is skipped
            try:
                code = get_language(tag.split("-")[0]).code
            except Exception:  # noqa: BLE001
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


def load_bitexts(
    testset: str, directions: Sequence[tuple[str, str]], data_dir: str | None = None, flores_dir: str | None = None
) -> list[Bitext]:
    """Load ``directions`` of a named set (``flores200``, ``wmt22``, ``ntrex``) or a FLORES-layout directory."""
    root = data_root(data_dir)
    local = root is not None and (root / "flores200").is_dir()
    hub_flores = flores_dir or ("" if local else os.environ.get("BAYLING_FLORES_DIR", ""))
    if testset.startswith("hf:") or (testset == "flores200" and hub_flores.startswith("hf:")):
        from bayling.data.hub import load_flores_bitexts  # a Hub copy of FLORES (FLORES+ layout)

        return load_flores_bitexts(testset if testset.startswith("hf:") else hub_flores, list(directions))
    if testset == "flores200":
        return load_flores(dataset_dir("flores200", data_dir, flores_dir), directions)
    if testset == "wmt22":
        return load_wmt22(dataset_dir("wmt22", data_dir), directions)
    if testset == "ntrex":
        return load_ntrex(dataset_dir("ntrex128", data_dir), directions)
    p = Path(testset).expanduser()
    if p.is_dir():
        return load_flores(p, directions)
    raise DataError(f"unknown test set {testset!r}: use heldout, {', '.join(TESTSETS)}, a FLORES directory or a file")


# ----------------------------------------------------------------------------- downloads


def _fetch(url: str, timeout: float = 120.0) -> bytes:
    """GET ``url`` (used only by the download functions; tests point them at 127.0.0.1)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - fixed https URLs or a test server
            return r.read()
    except OSError as e:
        raise DataError(f"download failed: {url} ({e})") from None


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def download_flores200(dest: str | Path, url: str = FLORES200_URL) -> Path:
    """Fetch Meta's FLORES-200 tarball and unpack ``devtest/*.devtest`` into ``DEST/flores200/devtest``, plus
    ``metadata_*.tsv`` (each sentence's article: the data stage splits by it) into ``DEST/flores200``."""
    out = Path(dest) / "flores200" / "devtest"
    with tarfile.open(fileobj=io.BytesIO(_fetch(url, timeout=600)), mode="r:*") as t:
        n = 0
        for m in t:
            name = m.name.rsplit("/", 1)[-1]
            is_meta = name.startswith("metadata_") and name.endswith(".tsv")
            if m.isfile() and ("/devtest/" in f"/{m.name}" and name.endswith(".devtest") or is_meta):
                data = t.extractfile(m)
                assert data is not None
                _write_atomic((out.parent if is_meta else out) / name, data.read())
                n += not is_meta
    if n == 0:
        raise DataError(f"{url}: no devtest/*.devtest files in the archive")
    return out.parent


def download_wmt22(dest: str | Path, directions: Sequence[str] = WMT22_DIRECTIONS, base_url: str = WMT22_URL) -> Path:
    """Fetch sources and references (A, else B) of WMT22 general from ``wmt22-news-systems`` into ``DEST/wmt22``."""
    out = Path(dest) / "wmt22"
    for pair in directions:
        s, t = pair.split("-")
        name = f"generaltest2022.{pair}.src.{s}"
        _write_atomic(out / name, _fetch(f"{base_url}/sources/{name}"))
        for ref in ("A", "B"):
            name = f"generaltest2022.{pair}.ref.{ref}.{t}"
            try:
                _write_atomic(out / name, _fetch(f"{base_url}/references/{name}"))
                break
            except DataError:
                if ref == "B":
                    raise
    return out


def download_ntrex(
    dest: str | Path, languages: Sequence[str] = ("zho-CN", "deu", "fra", "jpn", "rus"), base_url: str = NTREX_URL
) -> Path:
    """Fetch NTREX-128's English source, the references named by NTREX codes and ``DOCUMENT_IDS.tsv`` (each
    line's article) into ``DEST/ntrex128``."""
    out = Path(dest) / "ntrex128"
    for name in ["newstest2019-src.eng.txt", "DOCUMENT_IDS.tsv"] + [f"newstest2019-ref.{c}.txt" for c in languages]:
        _write_atomic(out / name, _fetch(f"{base_url}/{name}"))
    return out


def flores200_spm_url() -> str:
    """The URL sacreBLEU itself downloads its ``flores200`` SentencePiece model from."""
    from sacrebleu.tokenizers.tokenizer_spm import SPM_MODELS

    return SPM_MODELS["flores200"]["url"]


def download_flores200_spm(dest: str | Path | None = None, url: str | None = None) -> Path:
    """Fetch the FLORES-200 SentencePiece model (spBLEU) to where sacreBLEU looks for it, or to ``dest``.

    Args:
        dest: target file; default ``$SACREBLEU/models/flores200sacrebleuspm`` (``~/.sacrebleu``), where both
            sacreBLEU and bayling find it without further settings (else set ``eval.spm_model``).
        url: source; default sacreBLEU's own URL (:func:`flores200_spm_url`).

    Returns:
        The model's path (checked to load as a SentencePiece model).
    """
    from bayling.evaluate.metrics import sacrebleu_spm_path

    out = Path(dest).expanduser() if dest else sacrebleu_spm_path()
    data = _fetch(url or flores200_spm_url(), timeout=600)
    try:
        import sentencepiece

        sentencepiece.SentencePieceProcessor(model_proto=data)
    except ImportError:
        pass
    except RuntimeError as e:
        raise DataError(f"{url or flores200_spm_url()}: not a SentencePiece model ({e})") from None
    _write_atomic(out, data)
    return out


def download(names: Sequence[str], dest: str | Path) -> list[Path]:
    """Download the named sets (``flores200``, ``wmt22``, ``ntrex``) from their original sources."""
    fns = {"flores200": download_flores200, "wmt22": download_wmt22, "ntrex": download_ntrex}
    unknown = [n for n in names if n not in fns]
    if unknown:
        raise DataError(f"cannot download {', '.join(unknown)}; choose from {', '.join(fns)}")
    if Path(dest).exists() and not Path(dest).is_dir():  # before any download, not after it
        raise DataError(f"--dest {dest} is not a directory")
    return [fns[n](dest) for n in names]
