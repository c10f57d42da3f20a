"""The one place engines are built: from a model reference (evaluation, ``bayling chat MODEL``) or a run.

Engines are registered by name in :data:`ENGINES` and imported only when asked for (:func:`engine_class`), so a
missing optional extra (llama.cpp, vLLM) only matters when that engine is used.

:func:`load_engine` turns a model reference (embedded alias, HF directory, ``.gguf`` file, Hub id), an
optional adapter and the shared :class:`~bayling.models.ModelConfig` into the named engine;
:func:`load_run` does the same for a run directory of ``bayling run`` (its base model plus
``train/final``, or the adapter exported to GGUF for llama.cpp). Engine options from a config
(``eval.engine_options``, ``serve.engine_options``) are checked against what the engine's constructor takes:
a typo is a :class:`~bayling.errors.ConfigError` naming the option and the engine, never silently ignored.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bayling.errors import ConfigError, ModelError
from bayling.layout import RunLayout
from bayling.models import ModelConfig

if TYPE_CHECKING:
    from bayling.engines import Engine


ENGINES = {
    "transformers": "bayling.engines.hf:TransformersEngine",
    "llamacpp": "bayling.engines.llamacpp:LlamaCppEngine",
    "vllm": "bayling.engines.vllm:VLLMEngine",
}


def engine_class(name: str) -> type:
    """Import the engine class registered under ``name``."""
    try:
        target = ENGINES[name]
    except KeyError:
        raise ConfigError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


OWN = ("model_path", "adapter", "lora_path")
"""Constructor arguments the factory itself fills in (what to load); never engine options."""


def engine_options(engine: str) -> list[str]:
    """The options the named engine's constructor accepts (besides what to load)."""
    params = inspect.signature(engine_class(engine).__init__).parameters
    return [
        n
        for n, p in params.items()
        if n != "self" and n not in OWN and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]


def check_options(engine: str, options: dict[str, Any], key: str = "engine_options") -> None:
    """Reject an option ``engine`` does not take (``key``: the config key the options came from).

    Raises:
        ConfigError: naming the option, the engine and what it accepts (with a did-you-mean).
    """
    known = engine_options(engine)
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"{key}: the {engine} engine has no option {name!r} ({hint}it takes: {', '.join(known)})"
            )


def _build(engine: str, target: Path | None, settings: dict[str, Any], options: dict[str, Any]) -> Engine:
    """The engine, given what to load (``target``, plus ``adapter``/``lora_path`` in ``settings``).

    ``settings`` are bayling's own (model config, name, batch size): passed where the engine takes them.
    ``options`` come from a user's config (checked already), and win over ``settings``.
    """
    accepted = set(engine_options(engine)) | {"adapter", "lora_path"}
    kwargs = {k: v for k, v in settings.items() if k in accepted and v is not None}
    return engine_class(engine)(target, **{**kwargs, **options})


def _settings(model_cfg: ModelConfig, name: str | None, batch_size: int | None) -> dict[str, Any]:
    return {
        "chat_format": model_cfg.chat_format,
        "dtype": model_cfg.dtype,
        "device": model_cfg.device,
        "trust_remote_code": model_cfg.trust_remote_code,
        "model_name": name,
        "batch_size": batch_size,
    }


def base_gguf(name_or_path: str, gguf_file: str | None = None) -> Path:
    """The GGUF file llama.cpp loads for a model reference (embedded alias or ``.gguf`` path)."""
    from bayling.models import EMBEDDED_ALIASES, embedded_gguf

    if name_or_path in EMBEDDED_ALIASES:
        return embedded_gguf()
    p = Path(name_or_path).expanduser()
    p = p / gguf_file if gguf_file else p
    if p.suffix == ".gguf" and p.is_file():
        return p
    raise ModelError(
        f"the llama.cpp engine needs a GGUF model, and {name_or_path!r} is not one "
        "(give a .gguf file or the embedded 'gemma-3-270m', or use --engine transformers)"
    )


def load_engine(
    target: str | Path,
    model_cfg: ModelConfig | None = None,
    engine: str = "transformers",
    *,
    adapter: str | Path | None = None,
    gguf_file: str | None = None,
    name: str | None = None,
    batch_size: int | None = None,
    options: dict[str, Any] | None = None,
) -> Engine:
    """An engine for a model reference, or for a run directory (then :func:`load_run`).

    Args:
        target: ``gemma-3-270m``, an HF directory, a ``.gguf`` file, a cached Hub id, or a run directory.
        model_cfg: chat format, dtype, device, remote-code trust (defaults: :class:`~bayling.models.ModelConfig`).
        engine: ``transformers``, ``llamacpp`` or ``vllm``.
        adapter: a PEFT adapter directory (transformers, vLLM), a GGUF LoRA (llama.cpp), or a full fine-tuned
            model directory, which then replaces ``target``.
        gguf_file: GGUF file name inside ``target`` when that directory holds GGUF weights.
        name: the model name the engine reports (default: from the path).
        batch_size: conversations per forward batch, for engines that batch that way (transformers).
        options: a config's ``engine_options``: engine constructor arguments (``n_ctx``,
            ``gpu_memory_utilization``…), checked by :func:`check_options`; they win over the settings above.

    Raises:
        ModelError: the model cannot be loaded by this engine.
        ConfigError: an unknown engine or engine option.
    """
    if RunLayout.is_run(target):
        if model_cfg is not None or adapter is not None or gguf_file is not None:
            raise ValueError("a run directory brings its own model; give no model_cfg, adapter or gguf_file")
        return load_run(target, engine, name=name, batch_size=batch_size, options=options)
    from bayling.models import check_model_files, resolve_model

    options = dict(options or {})
    check_options(engine, options)  # an unknown engine or option fails before any model work
    cfg = model_cfg or ModelConfig()
    model = str(target)
    settings = _settings(cfg, name, batch_size)
    lora = Path(adapter).expanduser() if adapter else None
    if engine == "llamacpp":
        if lora is not None and lora.suffix != ".gguf":
            raise ModelError(
                f"engine llamacpp needs a GGUF LoRA adapter; {lora} is not one "
                "(use eval.engine=transformers for PEFT adapters)"
            )
        return _build(engine, base_gguf(model, gguf_file), {**settings, "lora_path": lora}, options)
    if lora is not None and lora.is_dir():
        check_model_files(lora)
    if lora is not None and (lora / "config.json").is_file():  # a full fine-tune replaces the base
        return _build(engine, lora, settings, options)
    return _build(engine, resolve_model(model, gguf_file), {**settings, "adapter": lora}, options)


def load_run(
    run_dir: str | Path,
    engine: str = "transformers",
    *,
    name: str | None = None,
    batch_size: int | None = None,
    options: dict[str, Any] | None = None,
) -> Engine:
    """An engine for a run's trained model: its base model (``model:`` of ``config.yaml``) plus ``train/final``.

    Args:
        run_dir: the run directory.
        engine: ``transformers``, ``llamacpp`` (needs ``train.export: [gguf]``) or ``vllm``.
        name: the model name the engine reports (default: the run's name).
        batch_size, options: see :func:`load_engine`.

    Raises:
        ModelError: no trained model yet, or none this engine can load.
    """
    from bayling.config import from_dict, read_yaml
    from bayling.models import check_model_files, resolve_model

    layout = RunLayout(Path(run_dir))
    p = layout.run_dir
    raw = read_yaml(layout.config)
    try:
        model_cfg = from_dict(ModelConfig, raw.get("model") or {}, "model")
    except ConfigError as e:
        raise ConfigError(f"{layout.config}: {e}") from None
    options = dict(options or {})
    check_options(engine, options)
    final = layout.train_final
    if not final.is_dir():
        raise ModelError(f"{p}: no trained model yet (train/final missing); run `bayling train` first")
    check_model_files(final)  # a damaged adapter_config.json / tokenizer_config.json: one line, before loading
    settings = _settings(model_cfg, name or str(raw.get("name", "run")), batch_size)
    full_model = (final / "config.json").is_file()
    if engine == "llamacpp":
        if full_model:
            raise ModelError(f"{p}: a full fine-tune is served by --engine transformers or vllm, not llama.cpp")
        base = base_gguf(model_cfg.name_or_path, model_cfg.gguf_file)
        return _build(engine, base, {**settings, "lora_path": _adapter_gguf(layout)}, options)
    if full_model:
        return _build(engine, final, settings, options)
    base_dir = resolve_model(model_cfg.name_or_path, model_cfg.gguf_file)
    return _build(engine, base_dir, {**settings, "adapter": final}, options)


def exported_adapter_gguf(layout: RunLayout) -> Path | None:
    """The run's LoRA adapter exported to GGUF (``train.export: [gguf]``, or an earlier llama.cpp evaluation),
    or None; an export older than ``train/final``'s weights is stale (trained again since) and not returned."""
    found: list[Path] = []
    if layout.train_summary.is_file():
        from bayling.validate import read_json_object

        summary = read_json_object(layout.train_summary)
        exported = (summary.get("exports") or {}).get("gguf")
        if exported and Path(exported).is_file():
            found.append(Path(exported))
    found += sorted(layout.train_dir.rglob("*.gguf"))
    weights = layout.train_final / "adapter_model.safetensors"
    newest = weights.stat().st_mtime_ns if weights.is_file() else 0
    return next((p for p in found if p.stat().st_mtime_ns >= newest), None)


def _adapter_gguf(layout: RunLayout) -> Path:
    """The run's LoRA adapter exported to GGUF (:func:`exported_adapter_gguf`), or a clear error."""
    found = exported_adapter_gguf(layout)
    if found is not None:
        return found
    raise ModelError(
        f"{layout.run_dir}: the LoRA adapter has not been exported to GGUF for llama.cpp; export it with "
        f"`bayling train {layout.config} train.export=[gguf]` (or serve it with --engine transformers)"
    )
