"""The systems an evaluation compares (base, tuned, or any named models) and their engines.

A system is a model plus an optional adapter; :func:`make_engine` builds the configured engine for
it through :func:`bayling.engines.load_engine` (``transformers`` by default; ``llamacpp`` takes the GGUF
and a GGUF LoRA; ``vllm`` the HF directory). :func:`weights_digest` fingerprints the weights so cached scores are reused only for the
same model. :func:`resolve_prompt` decides how a system is asked to translate: ``fewshot`` for a base
model (no chat template of its own), ``chat`` for an instruct or tuned one.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayling.errors import ConfigError
from bayling.evaluate.config import PROMPTS

if TYPE_CHECKING:
    from bayling.engines import Engine
    from bayling.evaluate.config import EvalConfig
    from bayling.models import ModelConfig


@dataclass
class System:
    """One model under evaluation.

    Attributes:
        name: label in tables and directory name (``base``, ``tuned``…).
        model: the model reference as the user gave it (embedded alias, HF directory, ``.gguf``).
        adapter: a PEFT adapter directory (transformers/vllm), a GGUF LoRA (llamacpp), or a full fine-tuned
            model directory, which then replaces ``model``.
        gguf_file: GGUF file name inside ``model`` when ``model`` is a directory of GGUF weights.
        prompt: ``chat``, ``fewshot`` or ``auto`` for the translation prompt; None: ``eval.translation.prompts`` /
            ``eval.translation.prompt`` decide (see :func:`resolve_prompt`).
    """

    name: str
    model: str
    adapter: str | None = None
    gguf_file: str | None = None
    prompt: str | None = None

    @classmethod
    def parse(cls, name: str, ref: str) -> System:
        """``"MODEL"`` or ``"MODEL::ADAPTER"`` (the eval-only config's ``systems`` values)."""
        model, _, adapter = ref.partition("::")
        if not model:
            raise ConfigError(f"system {name!r}: empty model reference")
        return cls(name, model, adapter or None)


def _digest_path(p: Path, h: Any, names: bool = True) -> None:
    files = (
        sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in (".safetensors", ".bin", ".gguf"))
        if p.is_dir()
        else [p]
    )
    for f in files:
        st = f.stat()
        name = f.relative_to(p).as_posix() if p.is_dir() else f.name if names else ""
        h.update(name.encode())
        if st.st_size > 64 * 2**20:  # big base weights: size + mtime (hashing GBs per run costs seconds)
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        else:
            h.update(f.read_bytes())


def weights_digest(system: System) -> str:
    """Fingerprint of the system's weights: the base model by its path (big files by size and mtime), an adapter
    by content alone (its weight files and its ``adapter_config.json`` less the base model's path), so that the
    same adapter copied elsewhere (an ablation arm's SFT, a stage output moved) keys the same passes."""
    h = hashlib.sha256(system.model.encode())
    if Path(system.model).expanduser().exists():
        _digest_path(Path(system.model).expanduser(), h)
    if system.adapter:
        adapter = Path(system.adapter).expanduser()
        h.update(b"adapter")
        if adapter.exists():
            _digest_path(adapter, h, names=False)
            conf = adapter / "adapter_config.json"
            if conf.is_file():
                fields = json.loads(conf.read_text(encoding="utf-8"))
                fields.pop("base_model_name_or_path", None)  # the base is keyed above, by what it is
                h.update(json.dumps(fields, sort_keys=True).encode())
        else:
            h.update(str(system.adapter).encode())  # a hub id: keyed by its name
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- prompts


def resolve_prompt(system: System, requested: str = "auto") -> str:
    """``chat`` or ``fewshot`` for ``system`` (its own ``prompt`` wins over ``requested``).

    ``auto`` means ``chat`` for a tuned model (an adapter or a full fine-tune) and for a model with a chat
    template of its own (:func:`has_own_chat_template`), else ``fewshot``.
    """
    from bayling.errors import ConfigError

    choice = system.prompt or requested
    if choice not in PROMPTS:
        raise ConfigError(
            f"eval.translation.prompt for {system.name}: unknown {choice!r}; choose from {', '.join(PROMPTS)}"
        )
    if choice != "auto":
        return choice
    if system.adapter:
        return "chat"
    return "chat" if has_own_chat_template(system.model, system.gguf_file) else "fewshot"


def has_own_chat_template(model: str, gguf_file: str | None = None) -> bool:
    """Whether the model came with a chat template (an instruct model) rather than being a base model.

    The embedded Gemma-3-270M is a base model: its GGUF has no template, and the one in its converted copy
    was added by bayling (:data:`bayling.models.ADDED_TEMPLATE_MARKER` records that for every conversion).
    A GGUF is read for ``tokenizer.chat_template``; an HF directory for ``chat_template.jinja``/``.json`` or a
    ``chat_template`` in ``tokenizer_config.json``.
    """
    from bayling.models import ADDED_TEMPLATE_MARKER, check_model, resolve_model

    kind = check_model(model, gguf_file)
    if kind == "embedded":
        return False
    if kind == "gguf":
        p = Path(model).expanduser()
        return gguf_has_chat_template(p / gguf_file if gguf_file else p)
    d = resolve_model(model) if kind == "hub" else Path(model).expanduser()
    if (d / ADDED_TEMPLATE_MARKER).is_file():
        return False
    if (d / "chat_template.jinja").is_file() or (d / "chat_template.json").is_file():
        return True
    cfg = d / "tokenizer_config.json"
    return cfg.is_file() and bool(json.loads(cfg.read_text(encoding="utf-8")).get("chat_template"))


_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
"""GGUF metadata value type -> size in bytes (8 = string and 9 = array have lengths)."""


def gguf_has_chat_template(path: Path) -> bool:
    """Whether a GGUF file's metadata holds ``tokenizer.chat_template``.

    Reads only the key/value header (GGUF v2/v3 layout), stopping at the key: gguf-py's ``GGUFReader`` maps
    every tensor first, ~30 s for the 250 MB embedded model on a busy 2-core machine.
    """
    from bayling.errors import ModelError

    with path.open("rb") as f:

        def read(fmt: str) -> tuple[int, ...]:
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))

        def skip(vtype: int) -> None:
            if vtype in _GGUF_FIXED:
                f.seek(_GGUF_FIXED[vtype], 1)
            elif vtype == 8:
                f.seek(read("<Q")[0], 1)
            elif vtype == 9:
                itype, count = read("<IQ")
                if itype in _GGUF_FIXED:
                    f.seek(_GGUF_FIXED[itype] * count, 1)
                else:
                    for _ in range(count):
                        skip(itype)
            else:
                raise ModelError(f"{path}: unknown GGUF metadata type {vtype}")

        if f.read(4) != b"GGUF" or read("<I")[0] < 2:
            raise ModelError(f"{path} is not a GGUF v2/v3 file")
        _, n_kv = read("<QQ")
        for _ in range(n_kv):
            key = f.read(read("<Q")[0])
            vtype = read("<I")[0]
            if key == b"tokenizer.chat_template":
                return True
            skip(vtype)
    return False


CPU_EVAL_DTYPE = "float32"
"""What the transformers engine computes in when evaluating on CPU (unless ``eval.engine_options.dtype``)."""


def engine_dtype(cfg: EvalConfig, model_cfg: ModelConfig) -> str | None:
    """The dtype an evaluation's transformers engine computes in; None for the other engines.

    ``eval.engine_options.dtype`` when given; else float32 on CPU and ``model.dtype`` on a GPU. Why not the
    training dtype: with bfloat16 weights a prompt's greedy output depends on the other prompts in its batch
    (left padding changes the shapes, hence the rounding, and a near-tie flips), so a score would depend on
    ``eval.batch_size``. Measured on the quickstart (4 directions x 40 sentences): bf16 at batch 8 vs 16 moved
    chrF++ by up to 1.3 per direction; float32 gave the same 320 hypotheses at both, in 269 s at batch 16
    against 314 s for bf16 at batch 8 (2 cores). The weights were bf16 already, so upcasting loses nothing.
    """
    if cfg.engine != "transformers":
        return None
    if "dtype" in cfg.engine_options:
        return str(cfg.engine_options["dtype"])
    from bayling.models import pick_device

    return CPU_EVAL_DTYPE if pick_device(model_cfg.device).startswith("cpu") else model_cfg.dtype


def make_engine(system: System, cfg: EvalConfig, model_cfg: ModelConfig) -> Engine:
    """The configured engine (``cfg.engine``, ``cfg.engine_options``, ``cfg.batch_size`` of an
    :class:`~bayling.evaluate.config.EvalConfig`) for ``system``, named after it, computing in
    :func:`engine_dtype`; llama.cpp without its prompt cache, so no output depends on the request before it."""
    from bayling.engines import load_engine

    dtype = engine_dtype(cfg, model_cfg)
    options = {**({"prompt_cache": False} if cfg.engine == "llamacpp" else {}), **cfg.engine_options}
    return load_engine(
        system.model,
        model_cfg,
        cfg.engine,
        adapter=system.adapter,
        gguf_file=system.gguf_file,
        name=system.name,
        batch_size=cfg.batch_size,
        options={**options, **({"dtype": dtype} if dtype else {})},
    )
