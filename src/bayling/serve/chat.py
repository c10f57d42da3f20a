"""``bayling chat RUN_DIR|MODEL``: a terminal chat with history, for a run's tuned model or any model.

Commands inside the chat: ``/reset`` clears the history, ``/translate TGT TEXT`` asks for a
translation with the canonical prompt, ``/quit`` leaves. With ``-m`` (or non-interactive stdin)
it answers and exits, which is what scripts and tests use.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bayling.engines import GenerationParams
from bayling.errors import BaylingError, ModelError


def load_engine_for(target: str, engine: str = "transformers", **kwargs: Any) -> Any:
    """An engine for a run directory (its base model + trained adapter) or a model reference."""
    from bayling.config import RunConfig, load_config
    from bayling.engines import engine_class
    from bayling.models import resolve_model

    p = Path(target)
    cls = engine_class(engine)
    if (p / "config.yaml").is_file() and (p / "data").exists():  # a run directory
        cfg = load_config(RunConfig, p / "config.yaml")
        final = p / "train" / "final"
        if not final.is_dir():
            raise ModelError(f"{p}: no trained model yet (train/final missing); run `bayling train` first")
        base = resolve_model(cfg.model.name_or_path, cfg.model.gguf_file)
        if (final / "config.json").is_file():
            return cls(final, chat_format=cfg.model.chat_format, dtype=cfg.model.dtype, device=cfg.model.device,
                       model_name=cfg.name, **kwargs)
        return cls(base, adapter=final, chat_format=cfg.model.chat_format, dtype=cfg.model.dtype,
                   device=cfg.model.device, model_name=cfg.name, **kwargs)
    return cls(resolve_model(target), **kwargs)


def _translate_command(line: str) -> str:
    from bayling.data.templates import translation_prompt
    from bayling.languages import get_language

    parts = line.split(maxsplit=2)
    if len(parts) < 3:
        raise BaylingError("usage: /translate TGT_LANG TEXT   (e.g. /translate de Good morning)")
    tgt = get_language(parts[1]).code
    return translation_prompt(parts[2], "eng_Latn", tgt).replace("English text", "text")


def chat_loop(engine: Any, messages: list[str] | None = None, max_new_tokens: int = 256, out=sys.stdout) -> list:
    """Chat until EOF or ``/quit``; returns the conversation. ``messages`` replaces stdin when given."""
    history: list[dict[str, str]] = []
    interactive = messages is None and sys.stdin.isatty()
    source = iter(messages) if messages is not None else sys.stdin
    params = GenerationParams(max_new_tokens=max_new_tokens)
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
        if line in ("/quit", "/exit"):
            break
        if line == "/reset":
            history = []
            out.write("(history cleared)\n")
            continue
        try:
            content = _translate_command(line) if line.startswith("/translate") else line
        except BaylingError as e:
            out.write(f"{e}\n")
            continue
        history.append({"role": "user", "content": content})
        if interactive and hasattr(engine, "stream"):
            out.write("bayling> ")
            pieces = []
            for piece in engine.stream(history, params):
                pieces.append(piece)
                out.write(piece)
                out.flush()
            answer = "".join(pieces).strip()
            out.write("\n")
        else:
            answer = engine.generate([history], params)[0]
            out.write(f"{answer}\n")
        history.append({"role": "assistant", "content": answer})
    return history
