"""Data sets from the Hugging Face Hub: ``hf:ORG/NAME[:CONFIG][@SPLIT]`` references, loaded with
``datasets.load_dataset`` (read as parallel text by :mod:`bayling.records`, as a FLORES-200 test set by
:mod:`bayling.testsets`, as seed instructions by :mod:`bayling.data.instructions`).

Syntax (the ``hf:`` prefix marks a data set; a path that exists locally keeps meaning that directory)::

    hf:org/name                    # the "train" split (else the first one) of the default config
    hf:org/name:de-en@validation   # config "de-en", split "validation" (slices such as train[:1000] work)
    hf:org/name?revision=v1.0      # a branch, tag or commit; ?streaming=true|false forces streaming

Parallel text is read from language-code columns (``eng_Latn``, ``en``, ``English``...) or from a
``translation`` column of ``{lang: text}`` (the WMT/OPUS layout). A repository in the layout of
``openlanguagedata/flores_plus`` (one config per language, columns ``id``, ``iso_639_3``, ``iso_15924``,
``glottocode``, ``text``, ``url``, ``domain``, ``topic``..., splits ``dev``/``devtest``) is recognised and
aligned by ``id``; it works wherever a FLORES-200 directory does (``data.flores_dir``, ``eval.flores_dir``
or ``eval.testset``). FLORES+ renamed a few codes (``zho_Hans`` is ``cmn_Hans`` there): both spellings work.

Data sets whose files exceed :data:`STREAM_BYTES` are streamed (read over HTTP as they are iterated, never
copied to disk); smaller ones are downloaded once into the HF cache, like models. Offline
(``--offline``/``HF_HUB_OFFLINE=1``) only what ``datasets`` cached before is used. Gated sets (FLORES+ is one)
need their terms accepted on the Hub and a token (``HF_TOKEN`` or ``hf auth login``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from bayling.errors import DataError, require

STREAM_BYTES = int(os.environ.get("BAYLING_HF_STREAM_BYTES", 2_000_000_000))
"""Stream a Hub data set when its data files total more than this (default 2 GB)."""

FLORES_PLUS_CODES = {
    "zho_Hans": "cmn_Hans",
    "zho_Hant": "cmn_Hant",
    "tgl_Latn": "fil_Latn",
    "tzm_Tfng": "zgh_Tfng",
    "est_Latn": "ekk_Latn",
    "grn_Latn": "gug_Latn",
    "kon_Latn": "ktu_Latn",
    "ajp_Arab": "apc_Arab_sout3123",
    "apc_Arab": "apc_Arab_nort3139",
    "aka_Latn": "twi_Latn_asan1239",
    "twi_Latn": "twi_Latn_akua1239",
}
"""FLORES-200 code -> its FLORES+ 2.x name (relabelled after quality checks; see the FLORES+ changelog)."""


@dataclass
class HfRef:
    """A parsed ``hf:`` reference."""

    repo_id: str
    config: str | None = None
    split: str | None = None
    revision: str | None = None
    streaming: bool | None = None
    """None = decide by size (:data:`STREAM_BYTES`)."""
    local: bool = False
    """The reference is an existing local path (``save_to_disk`` directory or data files), not a Hub id."""

    @property
    def text(self) -> str:
        return (
            f"hf:{self.repo_id}"
            + (f":{self.config}" if self.config else "")
            + (f"@{self.split}" if self.split else "")
        )


def parse_hf(source: str) -> HfRef:
    """Parse ``hf:ORG/NAME[:CONFIG][@SPLIT][?revision=R&streaming=B]`` (the ``hf:`` prefix is optional)."""
    s = source[3:] if source.startswith("hf:") else source
    if Path(s).expanduser().exists():
        return HfRef(s, local=True)
    if s.startswith((".", "/", "~")):
        raise DataError(f"{source}: no such local data set directory or file")
    s, _, query = s.partition("?")
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(params) - {"revision", "streaming"}
    if unknown:
        raise DataError(f"{source}: unknown option(s) {', '.join(sorted(unknown))}; use ?revision=...&streaming=true")
    s, _, split = s.partition("@")
    repo, _, config = s.partition(":")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise DataError(f"{source}: expected hf:ORG/NAME[:CONFIG][@SPLIT] (a Hub data set id) or hf:LOCAL_PATH")
    streaming = None
    if "streaming" in params:
        streaming = params["streaming"].lower() in ("1", "true", "yes", "on")
    return HfRef(repo, config or None, split or None, params.get("revision"), streaming)


def hub_dataset_ids(sources: list[str]) -> list[str]:
    """The Hub data set ids among config values such as ``data.source`` (local paths and other forms skipped)."""
    out: list[str] = []
    for s in sources:
        if isinstance(s, str) and s.startswith("hf:"):
            try:
                ref = parse_hf(s)
            except DataError:
                continue
            if not ref.local and ref.repo_id not in out:
                out.append(ref.repo_id)
    return out


# ----------------------------------------------------------------------------- loading


def _dataset_error(ref: HfRef, e: BaseException) -> DataError:
    from bayling import hub

    err = hub.hub_error("dataset", ref.repo_id, e, DataError)
    if err is not None:
        return err
    if hub.is_offline() and type(e).__name__ in ("ConnectionError", "OfflineModeIsEnabled", "LocalEntryNotFoundError"):
        return hub.offline_error("dataset", ref.repo_id, DataError)
    first = next((x.strip() for x in str(e).splitlines() if x.strip()), type(e).__name__)
    return DataError(f"{ref.text}: cannot load the data set ({first})")


def _stream_by_size(ref: HfRef) -> bool:
    """Whether the data set's files are large enough to stream (False when the Hub cannot tell us)."""
    from bayling import hub

    if ref.streaming is not None:
        return ref.streaming
    if hub.is_offline():
        return False
    try:
        info = hub.api().dataset_info(ref.repo_id, revision=ref.revision, files_metadata=True)
    except Exception as e:  # noqa: BLE001
        raise _dataset_error(ref, e) from None
    total = sum(s.size or 0 for s in info.siblings or [])
    return total > STREAM_BYTES


def load(ref: HfRef, split: str | None = None, config: str | None = None) -> Any:
    """A ``datasets`` split of ``ref`` (``Dataset`` or, when streaming, ``IterableDataset``).

    Args:
        ref: the parsed reference.
        split: split to use when ``ref`` names none; None = ``train``, else the first split.
        config: config to use when ``ref`` names none.

    Raises:
        DataError: one line (offline and not cached, gated, not found, unknown config or split).
    """
    datasets = require("datasets", "train")
    from bayling import hub

    if ref.local:
        p = Path(ref.repo_id).expanduser()
        try:
            if (p / "state.json").is_file() or (p / "dataset_dict.json").is_file():
                ds = datasets.load_from_disk(str(p))
            else:  # data files, or a local copy of a Hub repository (its card's configs apply)
                ds = datasets.load_dataset(str(p), ref.config or config)
        except (FileNotFoundError, ValueError) as e:
            raise DataError(f"hf:{ref.repo_id}: cannot load dataset ({e})") from None
        return _pick_split(ds, ref.split or split, ref)
    if hub.is_offline():
        hub.go_offline()  # BAYLING_OFFLINE alone: datasets must not go online either
    streaming = _stream_by_size(ref)
    try:
        with hub.download_progress():
            ds = datasets.load_dataset(
                ref.repo_id,
                ref.config or config,
                split=ref.split or split,
                revision=ref.revision,
                streaming=streaming,
            )
    except Exception as e:  # noqa: BLE001 - datasets raises many kinds; the user gets one line
        raise _dataset_error(ref, e) from None
    return _pick_split(ds, None, ref)


def _pick_split(ds: Any, split: str | None, ref: HfRef) -> Any:
    if not hasattr(ds, "keys"):  # a single split already
        return ds
    names = list(ds.keys())
    if split and split in names:
        return ds[split]
    if split:
        raise DataError(f"{ref.text}: no split {split!r}; it has {', '.join(names)}")
    return ds["train"] if "train" in ds else ds[names[0]]


def config_names(ref: HfRef) -> list[str]:
    """The configs a Hub data set declares (cached by ``datasets`` after the first call)."""
    from bayling import hub

    datasets = require("datasets", "train")
    if hub.is_offline():
        hub.go_offline()
    try:
        return list(datasets.get_dataset_config_names(ref.repo_id, revision=ref.revision))
    except Exception as e:  # noqa: BLE001
        raise _dataset_error(ref, e) from None


# ----------------------------------------------------------------------------- FLORES+ layout


def flores_plus_configs(ref: HfRef, codes: list[str]) -> dict[str, str] | None:
    """``{FLORES-200 code: config}`` when ``ref`` has the FLORES+ per-language layout, else None."""
    if ref.local or ref.config:
        return None
    names = set(config_names(ref))
    found = {}
    for code in codes:
        for cand in (code, FLORES_PLUS_CODES.get(code)):
            if cand and cand in names:
                found[code] = cand
                break
    if not found:
        return None
    missing = [c for c in codes if c not in found]
    if missing:
        hint = ", ".join(f"{c} (FLORES+: {FLORES_PLUS_CODES[c]})" if c in FLORES_PLUS_CODES else c for c in missing)
        raise DataError(f"{ref.text}: no config for language(s) {hint}")
    return found


def flores_plus_columns(
    ref: HfRef, configs: dict[str, str], split: str
) -> tuple[list[Any], dict[str, dict[Any, dict]]]:
    """``(ids in order, {code: {id: row}})`` for the FLORES+ layout, checked to align across languages."""
    rows: dict[str, dict[Any, dict]] = {}
    order: list[Any] = []
    for code, config in configs.items():
        ds = load(HfRef(ref.repo_id, config, ref.split or split, ref.revision, False), split=split)
        rows[code] = {}
        for n, row in enumerate(ds, 1):
            if "text" not in row:
                raise DataError(f"{ref.text}:{config}: row {n} has no 'text' column (not the FLORES+ layout)")
            key = row.get("id", n)
            rows[code][key] = row
        if not order:
            order = sorted(rows[code])
    for code, by_id in rows.items():
        if set(by_id) != set(order):
            raise DataError(
                f"{ref.text}: config {configs[code]} has {len(by_id)} rows whose ids differ from the "
                f"{len(order)} of {configs[next(iter(configs))]} ({split})"
            )
    return order, rows
