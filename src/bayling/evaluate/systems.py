"""The systems an evaluation compares (base, tuned, or any named models) and their engines.

A system is a model plus an optional adapter; :func:`make_engine` builds the configured engine for
it (``transformers`` by default; ``llamacpp`` takes the GGUF and a GGUF LoRA; ``vllm`` the HF
directory). :func:`weights_digest` fingerprints the weights so cached scores are reused only for the
same model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayling.errors import ConfigError, ModelError


@dataclass
class System:
    """One model under evaluation.

    Attributes:
        name: label in tables and directory name (``base``, ``tuned``…).
        model: the model reference as the user gave it (embedded alias, HF directory, ``.gguf``).
        adapter: a PEFT adapter directory (transformers/vllm), a GGUF LoRA (llamacpp), or a full fine-tuned
            model directory, which then replaces ``model``.
        gguf_file: GGUF file name inside ``model`` when ``model`` is a directory of GGUF weights.
    """

    name: str
    model: str
    adapter: str | None = None
    gguf_file: str | None = None

    @classmethod
    def parse(cls, name: str, ref: str) -> System:
        """``"MODEL"`` or ``"MODEL::ADAPTER"`` (the eval-only config's ``systems`` values)."""
        model, _, adapter = ref.partition("::")
        if not model:
            raise ConfigError(f"system {name!r}: empty model reference")
        return cls(name, model, adapter or None)


def _digest_path(p: Path, h: Any) -> None:
    files = (
        sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in (".safetensors", ".bin", ".gguf"))
        if p.is_dir()
        else [p]
    )
    for f in files:
        st = f.stat()
        h.update(f.name.encode())
        if st.st_size > 64 * 2**20:  # big base weights: size + mtime (hashing GBs per run costs seconds)
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        else:
            h.update(f.read_bytes())


def weights_digest(system: System) -> str:
    """Fingerprint of the system's weights (adapters by content, big base files by size and mtime)."""
    h = hashlib.sha256(system.model.encode())
    for ref in (system.model, system.adapter):
        if ref and Path(ref).expanduser().exists():
            _digest_path(Path(ref).expanduser(), h)
    return h.hexdigest()[:16]


def make_engine(system: System, engine: str, model_cfg: Any, batch_size: int, options: dict[str, Any]) -> Any:
    """Build the named engine for ``system``.

    Args:
        system: what to load.
        engine: ``transformers``, ``llamacpp`` or ``vllm``.
        model_cfg: the shared :class:`~bayling.config.ModelConfig` (chat format, dtype, device).
        batch_size: generation batch size (transformers).
        options: extra engine arguments from ``eval.engine_options``.
    """
    from bayling.engines import engine_class
    from bayling.models import EMBEDDED_ALIASES, resolve_model

    cls = engine_class(engine)
    adapter = Path(system.adapter).expanduser() if system.adapter else None
    if engine == "llamacpp":
        gguf: Path | None = None
        if system.model not in EMBEDDED_ALIASES:
            gguf = Path(system.model).expanduser() / (system.gguf_file or "")
            if gguf.suffix != ".gguf":
                raise ModelError(f"engine llamacpp needs a .gguf model; {system.model} is not one")
        if adapter is not None and adapter.suffix != ".gguf":
            raise ModelError(
                f"engine llamacpp needs a GGUF LoRA adapter; {adapter} is not one "
                "(use eval.engine=transformers for PEFT adapters)"
            )
        return cls(gguf, lora_path=adapter, chat_format=model_cfg.chat_format, model_name=system.name, **options)
    if adapter is not None and (adapter / "config.json").is_file():  # a full fine-tune replaces the base
        path, adapter = adapter, None
    else:
        path = resolve_model(system.model, system.gguf_file)
    kwargs: dict[str, Any] = {
        "adapter": adapter,
        "chat_format": model_cfg.chat_format,
        "dtype": model_cfg.dtype,
        "device": model_cfg.device,
        "model_name": system.name,
    }
    if engine == "transformers":
        kwargs["batch_size"] = batch_size
    return cls(path, **kwargs, **options)
