"""``bayling chat RUN_DIR|MODEL``: a terminal chat with history, for a run's tuned model or any model.

Commands inside the chat::

    /translate [SRC:]TGT TEXT   translate TEXT (source English unless SRC is given), e.g. /translate zh:de 你好
    /refine formal|casual|short refine the last answer with the interactive-translation follow-up
    /system TEXT                set a system message (clears the history)
    /history                    print the conversation so far
    /reset                      clear the history
    /help, /quit

With ``-m`` (or non-interactive stdin) it answers and exits, which is what scripts and tests use.
The engine comes from :func:`bayling.engines.load_engine` (a run directory or a model reference).
"""

from __future__ import annotations

import sys
from typing import TextIO

from bayling.engines import Engine, GenerationParams
from bayling.errors import BaylingError

HELP = __doc__.split("Commands inside the chat::")[1].split("With ``-m``")[0].rstrip()


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
    engine: Engine,
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
