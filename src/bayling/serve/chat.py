"""``bayling chat RUN_DIR|MODEL``: a terminal chat with history, for a run's tuned model or any model.

Commands inside the chat::

    /translate [SRC:]TGT TEXT   translate TEXT (source English unless SRC is given), e.g. /translate zh:de 你好
    /refine formal|casual|short refine the last answer with the interactive-translation follow-up
    /system TEXT                set a system message (clears the history)
    /history                    print the conversation so far
    /reset                      clear the history
    /help, /quit

With ``-m`` (or non-interactive stdin) it answers and exits, which is what scripts and tests use.
:func:`load_engine_for` is also what ``bayling run``'s chat stage and ``bayling serve`` use to turn a run
directory or a model reference into an engine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from bayling.engines import GenerationParams
from bayling.errors import BaylingError, ModelError

HELP = __doc__.split("Commands inside the chat::")[1].split("With ``-m``")[0].rstrip()


def _is_run_dir(p: Path) -> bool:
    return (p / "config.yaml").is_file() and (p / "data").exists()


def _base_gguf(name_or_path: str, gguf_file: str | None = None) -> Path:
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


def _run_adapter_gguf(run_dir: Path) -> Path:
    """The run's LoRA adapter exported to GGUF (``train.export: [gguf]``), or a clear error."""
    summary = run_dir / "train" / "summary.json"
    if summary.is_file():
        exported = (json.loads(summary.read_text(encoding="utf-8")).get("exports") or {}).get("gguf")
        if exported and Path(exported).is_file():
            return Path(exported)
    found = sorted((run_dir / "train").rglob("*.gguf"))
    if found:
        return found[0]
    raise ModelError(
        f"{run_dir}: the LoRA adapter has not been exported to GGUF for llama.cpp; export it with "
        f"`bayling train {run_dir / 'config.yaml'} train.export=[gguf]` (or serve it with --engine transformers)"
    )


def load_engine_for(target: str, engine: str = "transformers", **kwargs: Any) -> Any:
    """An engine for a run directory (its base model + trained adapter) or a model reference.

    Args:
        target: a run directory of ``bayling run`` (needs ``train/final``), or a model reference
            (``gemma-3-270m``, an HF directory, a ``.gguf`` file, a cached hub id).
        engine: ``transformers``, ``llamacpp`` or ``vllm``.
        **kwargs: engine constructor options (``batch_size``, ``n_ctx``, ``model_name``…).

    Returns:
        The loaded engine.
    """
    from bayling.engines import engine_class
    from bayling.models import resolve_model

    cls = engine_class(engine)
    p = Path(target)
    if not _is_run_dir(p):
        if engine == "llamacpp":
            return cls(_base_gguf(target), **kwargs)
        return cls(resolve_model(target), **kwargs)

    from bayling.config import RunConfig, load_config

    cfg = load_config(RunConfig, p / "config.yaml")
    final = p / "train" / "final"
    if not final.is_dir():
        raise ModelError(f"{p}: no trained model yet (train/final missing); run `bayling train` first")
    kwargs.setdefault("model_name", cfg.name)
    kwargs.setdefault("chat_format", cfg.model.chat_format)
    full_model = (final / "config.json").is_file()
    if engine == "llamacpp":
        if full_model:
            raise ModelError(f"{p}: a full fine-tune is served by --engine transformers or vllm, not llama.cpp")
        base = _base_gguf(cfg.model.name_or_path, cfg.model.gguf_file)
        return cls(base, lora_path=_run_adapter_gguf(p), **kwargs)
    kwargs.setdefault("dtype", cfg.model.dtype)
    kwargs.setdefault("device", cfg.model.device)
    if full_model:
        return cls(final, **kwargs)
    return cls(resolve_model(cfg.model.name_or_path, cfg.model.gguf_file), adapter=final, **kwargs)


def translate_command(line: str) -> str:
    """``/translate [SRC:]TGT TEXT`` -> the canonical translation request (source English by default)."""
    from bayling.serve.translate import translation_request

    parts = line.split(maxsplit=2)
    if len(parts) < 3:
        raise BaylingError(
            "usage: /translate [SRC:]TGT TEXT   (e.g. /translate de Good morning, /translate zh:en 你好)"
        )
    src, _, tgt = parts[1].rpartition(":")
    return translation_request(parts[2], src or "eng_Latn", tgt)


def refine_command(line: str, history: list[dict[str, str]]) -> str:
    """``/refine formal|casual|short`` -> the follow-up instruction for the last answer."""
    from bayling.serve.translate import STYLES, followup_text

    parts = line.split()
    if len(parts) != 2 or parts[1] not in STYLES:
        raise BaylingError(f"usage: /refine {'|'.join(STYLES)}")
    if not history:
        raise BaylingError("nothing to refine yet: translate or ask something first")
    return followup_text(parts[1])


def chat_loop(
    engine: Any,
    messages: list[str] | None = None,
    max_new_tokens: int = 256,
    out: TextIO | None = None,
    temperature: float = 0.0,
) -> list[dict[str, str]]:
    """Chat until EOF or ``/quit``; returns the conversation. ``messages`` replaces stdin when given.

    Interactive sessions stream the reply as it is generated; scripted ones print one reply per line.
    """
    out = out or sys.stdout
    history: list[dict[str, str]] = []
    system: list[dict[str, str]] = []
    interactive = messages is None and sys.stdin.isatty()
    source = iter(messages) if messages is not None else iter(sys.stdin)
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature)
    if interactive:
        out.write(f"bayling chat with {getattr(engine, 'model_name', 'the model')}; /help lists commands\n")
    while True:
        if interactive:
            out.write("you> ")
            out.flush()
        line = next(source, None)
        if line is None:
            break
        line = line.strip()
        if not line:
            continue
        command = line.split(maxsplit=1)[0]
        if command in ("/quit", "/exit"):
            break
        if command == "/help":
            out.write(HELP.strip("\n") + "\n")
            continue
        if command == "/reset":
            history = []
            out.write("(history cleared)\n")
            continue
        if command == "/history":
            for m in system + history:
                out.write(f"[{m['role']}] {m['content']}\n")
            continue
        if command == "/system":
            system = [{"role": "system", "content": line[len("/system") :].strip()}] if line != "/system" else []
            history = []
            out.write("(system message set, history cleared)\n" if system else "(system message removed)\n")
            continue
        try:
            if command == "/translate":
                content = translate_command(line)
            elif command == "/refine":
                content = refine_command(line, history)
            elif command.startswith("/"):
                raise BaylingError(f"unknown command {command}; /help lists them")
            else:
                content = line
        except BaylingError as e:
            out.write(f"{e}\n")
            continue
        history.append({"role": "user", "content": content})
        conversation = system + history
        if interactive and hasattr(engine, "stream"):
            out.write("bayling> ")
            pieces = []
            for piece in engine.stream(conversation, params):
                pieces.append(piece)
                out.write(piece)
                out.flush()
            answer = "".join(pieces).strip()
            out.write("\n")
        else:
            answer = engine.generate([conversation], params)[0]
            out.write(f"{answer}\n")
        history.append({"role": "assistant", "content": answer})
    return system + history
