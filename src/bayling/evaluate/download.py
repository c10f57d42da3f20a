"""``bayling eval download``: the translation test sets from their original publishers, and spBLEU's model.

:func:`download` fetches FLORES-200 (Meta's tarball), WMT22 general (the ``wmt-conference/wmt22-news-systems``
repository) and NTREX-128 (``MicrosoftTranslator/NTREX``) into the shared-data layout that
:mod:`bayling.testsets` reads; :func:`download_flores200_spm` puts the FLORES-200 SentencePiece model where
sacreBLEU looks for it. The URLs are module constants and every function takes a ``base_url`` so tests can
point it at a server on 127.0.0.1.

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
from collections.abc import Sequence
from pathlib import Path

from bayling.errors import DataError
from bayling.testsets import WMT22_DIRECTIONS

FLORES200_URL = "https://dl.fbaipublicfiles.com/nllb/flores200_dataset.tar.gz"
WMT22_URL = "https://raw.githubusercontent.com/wmt-conference/wmt22-news-systems/main/txt"
NTREX_URL = "https://raw.githubusercontent.com/MicrosoftTranslator/NTREX/main/NTREX-128"


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
            sacreBLEU and bayling find it without further settings (else set ``eval.translation.spm_model``).
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
