"""Chat formats: the ONE place where conversations become prompt strings and token ids.

Data building, training, evaluation and every serving engine import this module, so the string a
model is trained on is byte-for-byte the string it is prompted with. BayLing's own release rendered
prompts in three places and its Llama-3 adapter lost the BOS token; ``tests/test_chat.py`` pins the
rendered strings and checks that BOS appears exactly once and that the label mask covers exactly the
assistant spans.

Token ids (:func:`conversation_ids` for prompts, :func:`tokenize_conversation` for training, one rule for
both): the format's own control strings are special tokens where the layout puts them, and message text
is tokenized as plain text, so a user who types ``<end_of_turn>\n<start_of_turn>model\n`` cannot forge a
turn, and a text to translate that contains such strings reaches the model as that text.

Formats:
    * ``gemma``      – ``<start_of_turn>user … <end_of_turn>`` (system merged into the first user turn)
    * ``llama3``     – Llama-3 header tokens, stop ``<|eot_id|>``
    * ``bayling3``   – ``llama3`` with BayLing-3's default system line
    * ``chatml``     – ``<|im_start|>role … <|im_end|>`` (Qwen; no BOS)
    * ``bayling_v1`` – BayLing 1 (``### Instruction:`` / ``### Response:``, responses end with EOS)

Example:
    >>> fmt = get_format("gemma")
    >>> render([Message("user", "Hi")], fmt, add_generation_prompt=True)
    '<bos><start_of_turn>user\\nHi<end_of_turn>\\n<start_of_turn>model\\n'
"""

from __future__ import annotations

import dataclasses
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bayling.errors import BaylingError, ConfigError

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    """One chat turn. ``role`` is ``system``, ``user`` or ``assistant`` (OpenAI's names)."""

    role: str
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise BaylingError(f"unknown chat role {self.role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(self.content, str):
            raise BaylingError(f"message content must be a string, got {type(self.content).__name__}")

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def as_messages(conversation: Iterable[Message | Mapping[str, Any]]) -> list[Message]:
    """Normalise OpenAI-style dicts (``{"role", "content"}``) or :class:`Message` objects into messages."""
    out = []
    for i, m in enumerate(conversation):
        if isinstance(m, Message):
            out.append(m)
        elif isinstance(m, Mapping) and "role" in m and "content" in m:
            out.append(Message(str(m["role"]), m["content"]))
        else:
            raise BaylingError(f"message {i} must have 'role' and 'content', got {m!r:.80}")
    return out


def first_exchange(conversation: Iterable[Message | Mapping[str, Any]]) -> list[Message] | None:
    """The conversation up to its first assistant reply (an optional system message, the first user turn, the
    reply), or None when it does not start that way: the request and answer a translation example opens with."""
    msgs = as_messages(conversation)
    start = 1 if msgs and msgs[0].role == "system" else 0
    head = msgs[: start + 2]
    if len(head) < start + 2 or head[-1].role != "assistant":
        return None
    return head


@dataclass(frozen=True)
class ChatFormat:
    """How a conversation is laid out as text.

    Every piece is a literal string; ``{content}`` is replaced by the message text. ``stop`` is the
    string that ends an assistant turn: it is part of the trained span (so the model learns to stop)
    and is what engines stop on.
    """

    name: str
    bos: str
    system: str | None  # template for a system turn; None = merge system text into the first user turn
    user: str
    assistant_prefix: str
    stop: str
    assistant_after_stop: str = ""  # text after the stop string (e.g. a newline), not trained
    default_system: str | None = None
    preamble: str = ""  # text right after BOS (bayling_v1 puts a separator after its system line)
    markers: tuple[str, ...] = ()
    """The control strings of the layout besides ``bos``/``stop`` (special tokens only where the layout puts them)."""

    def with_special_tokens(self, bos: str | None = None, eos: str | None = None) -> ChatFormat:
        """Return a copy whose BOS/EOS match a tokenizer (only formats that use the model's own EOS change)."""
        changes: dict[str, str] = {}
        if bos is not None and self.bos in ("<s>", ""):
            changes["bos"] = bos if self.bos else ""
        if eos is not None and self.stop == "</s>":
            changes["stop"] = eos
        return dataclasses.replace(self, **changes) if changes else self


_BAYLING_V1_SYSTEM = (
    "I am an intelligent language assistant developed by the NLP Group of ICT/CAS.\n"
    "Below is a dialog consisting of instructions and responses. Write a response that completes the request.\n"
)

_LLAMA3 = ChatFormat(
    name="llama3",
    bos="<|begin_of_text|>",
    system="<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>",
    user="<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>",
    assistant_prefix="<|start_header_id|>assistant<|end_header_id|>\n\n",
    stop="<|eot_id|>",
    markers=("<|start_header_id|>", "<|end_header_id|>"),
)

FORMATS: dict[str, ChatFormat] = {
    "gemma": ChatFormat(
        name="gemma",
        bos="<bos>",
        system=None,
        user="<start_of_turn>user\n{content}<end_of_turn>\n",
        assistant_prefix="<start_of_turn>model\n",
        stop="<end_of_turn>",
        assistant_after_stop="\n",
        markers=("<start_of_turn>",),
    ),
    "llama3": _LLAMA3,
    "bayling3": dataclasses.replace(
        _LLAMA3, name="bayling3", default_system="I am BayLing developed by the NLP Group of ICT/CAS."
    ),
    "chatml": ChatFormat(
        name="chatml",
        bos="",
        system="<|im_start|>system\n{content}<|im_end|>\n",
        user="<|im_start|>user\n{content}<|im_end|>\n",
        assistant_prefix="<|im_start|>assistant\n",
        stop="<|im_end|>",
        assistant_after_stop="\n",
        markers=("<|im_start|>",),
    ),
    "bayling_v1": ChatFormat(
        name="bayling_v1",
        bos="<s>",
        system="{content}\n",
        user="### Instruction:\n{content}\n",
        assistant_prefix="### Response:\n",
        stop="</s>",
        assistant_after_stop="\n",
        default_system=_BAYLING_V1_SYSTEM,
    ),
}


def get_format(name: str | ChatFormat) -> ChatFormat:
    """Look up a chat format by name (``gemma``, ``llama3``, ``bayling3``, ``chatml``, ``bayling_v1``)."""
    if isinstance(name, ChatFormat):
        return name
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown chat format {name!r}; choose one of: {', '.join(FORMATS)}") from None


def detect_format(tokenizer: Any) -> ChatFormat:
    """Pick the chat format whose special tokens the tokenizer knows, falling back to ``bayling_v1``.

    The fallback is adapted to the tokenizer's own BOS/EOS, so any causal LM gets a format whose
    turn end is a token it already has.
    """
    vocab = tokenizer.get_vocab()
    if "<start_of_turn>" in vocab and "<end_of_turn>" in vocab:
        return FORMATS["gemma"]
    if "<|start_header_id|>" in vocab and "<|eot_id|>" in vocab:
        return FORMATS["llama3"]
    if "<|im_start|>" in vocab and "<|im_end|>" in vocab:
        return FORMATS["chatml"]
    return FORMATS["bayling_v1"].with_special_tokens(bos=tokenizer.bos_token or "", eos=tokenizer.eos_token)


def format_for_tokenizer(name: str, tokenizer: Any) -> ChatFormat:
    """Resolve ``name`` (or ``"auto"``) to a format whose BOS/EOS strings exist in ``tokenizer``."""
    if name == "auto":
        return detect_format(tokenizer)
    return get_format(name).with_special_tokens(bos=tokenizer.bos_token or "", eos=tokenizer.eos_token)


def _check_order(messages: Sequence[Message]) -> None:
    body = [m for m in messages if m.role != "system"]
    if any(m.role == "system" for m in messages[1:]):
        raise BaylingError("a system message may only come first")
    for i, m in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if m.role != expected:
            raise BaylingError(
                f"turn {i} has role {m.role!r}, expected {expected!r} (turns must alternate user/assistant)"
            )


@dataclass(frozen=True)
class Piece:
    """One piece of a rendered conversation.

    ``content`` marks message text (what a user, system or assistant wrote): it is always tokenized as
    plain text, so a ``<end_of_turn>`` typed by a user is characters, not a turn end. Everything else is
    the format's own layout, whose control strings are special tokens. ``trained`` marks the assistant
    replies plus their stop string (the loss spans); ``segment`` groups pieces into
    :func:`render_segments`' pieces.
    """

    text: str
    trained: bool = False
    content: bool = False
    segment: int = 0


def render_pieces(
    conversation: Iterable[Message | Mapping[str, Any]],
    fmt: str | ChatFormat,
    add_generation_prompt: bool = False,
) -> list[Piece]:
    """Lay a conversation out as :class:`Piece` s: layout and message text kept apart.

    Args:
        conversation: messages (dicts or :class:`Message`), optionally starting with a system turn.
        fmt: a format or its name.
        add_generation_prompt: end with the assistant prefix, ready for the model to answer.

    Returns:
        The pieces, in order; joining their texts gives :func:`render`'s string.
    """
    fmt = get_format(fmt)
    messages = as_messages(conversation)
    _check_order(messages)
    system = fmt.default_system
    if messages and messages[0].role == "system":
        system, messages = messages[0].content, messages[1:]
    segments: list[list[Piece]] = []

    def turn(template: str, content: str) -> None:
        before, after = template.split("{content}")
        segments.append([Piece(before), Piece(content, content=True), Piece(after)])

    if fmt.bos:
        segments.append([Piece(fmt.bos)])
    merge_system = system if (system and fmt.system is None) else None
    if system and fmt.system is not None:
        turn(fmt.system, system)
    if fmt.preamble:
        segments.append([Piece(fmt.preamble)])
    for i, m in enumerate(messages):
        if m.role == "user":
            content = m.content
            if merge_system is not None and i == 0:
                content = f"{merge_system}\n\n{content}"
            turn(fmt.user, content)
        else:
            segments.append([Piece(fmt.assistant_prefix)])
            segments.append([Piece(m.content, trained=True, content=True), Piece(fmt.stop, trained=True)])
            if fmt.assistant_after_stop:
                segments.append([Piece(fmt.assistant_after_stop)])
    if add_generation_prompt:
        if messages and messages[-1].role == "assistant":
            raise BaylingError("add_generation_prompt needs a conversation that ends with a user turn")
        segments.append([Piece(fmt.assistant_prefix)])
    return [dataclasses.replace(p, segment=i) for i, seg in enumerate(segments) for p in seg if p.text]


def render_segments(
    conversation: Iterable[Message | Mapping[str, Any]],
    fmt: str | ChatFormat,
    add_generation_prompt: bool = False,
) -> list[tuple[str, bool]]:
    """Lay a conversation out as ``(text, trained)`` pieces.

    ``trained`` is True exactly for each assistant reply plus its stop string: the spans the loss
    is computed on. Joining the texts gives :func:`render`'s string.

    Args:
        conversation: messages (dicts or :class:`Message`), optionally starting with a system turn.
        fmt: a format or its name.
        add_generation_prompt: end with the assistant prefix, ready for the model to answer.

    Returns:
        The list of pieces.
    """
    out: dict[int, list[Piece]] = {}
    for p in render_pieces(conversation, fmt, add_generation_prompt):
        out.setdefault(p.segment, []).append(p)
    segments = [("".join(p.text for p in ps), ps[0].trained) for ps in out.values()]
    return [(t, trained) for t, trained in segments if t]


def render(
    conversation: Iterable[Message | Mapping[str, Any]],
    fmt: str | ChatFormat,
    add_generation_prompt: bool = False,
) -> str:
    """Render a conversation to the exact prompt string (BOS included, as text)."""
    return "".join(p.text for p in render_pieces(conversation, fmt, add_generation_prompt))


# --- token ids --------------------------------------------------------------------------------------
#
# The rule, for every tokenizer: the format's own control strings (BOS, turn markers, stop) are special
# tokens where the *layout* puts them, and message text is tokenized as plain text ("special tokens
# split"), so nothing a user writes can open or close a turn. Text between two of the format's control
# tokens (layout text and message text together, e.g. "user\n" + the message) is tokenized in one go,
# which is exactly what tokenizing the whole rendered string does: Hugging Face and llama.cpp tokenizers
# cut the input at special tokens and tokenize each stretch between them on its own. So a conversation
# whose messages contain no control strings gets the very ids it got when the whole string was
# tokenized with special tokens recognised (the ids models were trained on).


class TextTokenizer(Protocol):
    """What :func:`conversation_ids` needs from a tokenizer that is not a Hugging Face one (llama.cpp)."""

    def encode_text(self, text: str) -> list[int]:
        """Ids of ``text`` as plain text (control strings in it stay characters)."""
        ...

    def special_token_id(self, text: str) -> int | None:
        """The id when ``text`` is exactly one special (control) token of the vocabulary, else None."""
        ...


_HF_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_HF_LOCKS_GUARD = threading.Lock()


def _hf_lock(tokenizer: Any) -> threading.Lock:
    """One lock per HF tokenizer: ``split_special_tokens`` is a switch on the shared Rust tokenizer."""
    with _HF_LOCKS_GUARD:
        lock = _HF_LOCKS.get(tokenizer)
        if lock is None:
            lock = _HF_LOCKS[tokenizer] = threading.Lock()
        return lock


_HF_SPECIALS: weakref.WeakKeyDictionary[Any, tuple[int, frozenset[int]]] = weakref.WeakKeyDictionary()


def _hf_special_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of the tokenizer's special added tokens (cached: Gemma has 6k of them, ~10 ms to list)."""
    size = len(tokenizer)
    with _HF_LOCKS_GUARD:
        cached = _HF_SPECIALS.get(tokenizer)
    if cached is not None and cached[0] == size:
        return cached[1]
    ids = frozenset(i for i, t in tokenizer.added_tokens_decoder.items() if t.special)
    with _HF_LOCKS_GUARD:
        _HF_SPECIALS[tokenizer] = (size, ids)
    return ids


def _hf_special_token_id(tokenizer: Any, text: str, special: frozenset[int]) -> int | None:
    i = tokenizer.convert_tokens_to_ids(text)
    return i if isinstance(i, int) and i in special and tokenizer.convert_ids_to_tokens(i) == text else None


def _control_pattern(fmt: ChatFormat) -> re.Pattern[str]:
    controls = sorted({s for s in (fmt.bos, fmt.stop, *fmt.markers) if s}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, controls)) or "(?!)")


def _runs(pieces: list[Piece], fmt: ChatFormat, special_token_id: Callable[[str], int | None]) -> list[Any]:
    """Split the pieces at the format's control tokens (layout pieces only).

    Returns a list whose items are either ``(token_id, trained)`` for a control token or a list of
    pieces: a stretch of text to tokenize as plain text.
    """
    pattern = _control_pattern(fmt)
    out: list[Any] = []
    run: list[Piece] = []
    for p in pieces:
        if p.content:
            run.append(p)
            continue
        pos = 0
        for m in pattern.finditer(p.text):
            tid = special_token_id(m.group())
            if tid is None:  # this tokenizer has no such token: the string is text
                continue
            if m.start() > pos:
                run.append(Piece(p.text[pos : m.start()], p.trained))
            if run:
                out.append(run)
                run = []
            out.append((tid, p.trained))
            pos = m.end()
        if pos < len(p.text):
            run.append(Piece(p.text[pos:], p.trained))
    if run:
        out.append(run)
    return out


def _mask(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int]:
    """1 for each token that starts inside a trained span."""
    return [int(end > start and any(a <= start < b for a, b in spans)) for start, end in offsets]


def _spans(pieces: Sequence[Piece], which: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for p in pieces:
        if getattr(p, which):
            spans.append((pos, pos + len(p.text)))
        pos += len(p.text)
    return spans


def _encode_hf(pieces: list[Piece], fmt: ChatFormat, tokenizer: Any) -> tuple[list[int], list[int]]:
    text = "".join(p.text for p in pieces)
    trained, content = _spans(pieces, "trained"), _spans(pieces, "content")
    special = _hf_special_ids(tokenizer)
    with _hf_lock(tokenizer):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, split_special_tokens=False)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
        forged = any(
            i in special and any(s < b and e > a for a, b in content) for i, (s, e) in zip(ids, offsets, strict=True)
        )
        if not forged:  # the common case: one call, the ids of the whole string
            return ids, _mask(offsets, trained)
        ids, mask = [], []
        for item in _runs(pieces, fmt, lambda s: _hf_special_token_id(tokenizer, s, special)):
            if isinstance(item, tuple):
                ids.append(item[0])
                mask.append(int(item[1]))
                continue
            run_text = "".join(p.text for p in item)
            enc = tokenizer(run_text, add_special_tokens=False, return_offsets_mapping=True, split_special_tokens=True)
            ids += enc["input_ids"]
            mask += _mask(enc["offset_mapping"], _spans(item, "trained"))
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:  # put the switch back for code that calls the Rust tokenizer directly
            backend.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
    return ids, mask


def conversation_ids(
    conversation: Iterable[Message | Mapping[str, Any]],
    fmt: str | ChatFormat,
    tokenizer: Any,
    add_generation_prompt: bool = True,
) -> list[int]:
    """Token ids of a conversation (the prompt engines send to the model): message text as plain text.

    Args:
        conversation: the messages.
        fmt: chat format or its name.
        tokenizer: a Hugging Face *fast* tokenizer, or a :class:`TextTokenizer` (the llama.cpp engine's).
        add_generation_prompt: end with the assistant prefix (the default: a prompt to answer).

    Returns:
        The ids, BOS included once when the format has one.
    """
    fmt = get_format(fmt)
    pieces = render_pieces(conversation, fmt, add_generation_prompt)
    if not hasattr(tokenizer, "encode_text"):
        return _encode_hf(pieces, fmt, tokenizer)[0]
    ids: list[int] = []
    for item in _runs(pieces, fmt, tokenizer.special_token_id):
        ids += [item[0]] if isinstance(item, tuple) else tokenizer.encode_text("".join(p.text for p in item))
    return ids


def tokenize_conversation(
    conversation: Iterable[Message | Mapping[str, Any]],
    fmt: str | ChatFormat,
    tokenizer: Any,
    max_length: int | None = None,
) -> dict[str, list[int]]:
    """Tokenize a full conversation for training: ``input_ids`` plus a 0/1 ``assistant_masks``.

    Ids follow the same rule as :func:`conversation_ids` (the format's control tokens special, message
    text as plain text), so they are identical to what an engine sends at inference; the mask is derived
    from character offsets, so a token is trained iff it starts inside an assistant span.

    Args:
        conversation: the messages; must end with an assistant turn to have anything to train on.
        fmt: chat format or its name.
        tokenizer: a Hugging Face *fast* tokenizer (offsets are needed).
        max_length: truncate to this many tokens (keeping the start).

    Returns:
        ``{"input_ids": [...], "assistant_masks": [...]}`` of equal length.
    """
    fmt = get_format(fmt)
    ids, mask = _encode_hf(render_pieces(conversation, fmt), fmt, tokenizer)
    if max_length is not None:
        ids, mask = ids[:max_length], mask[:max_length]
    return {"input_ids": ids, "assistant_masks": mask}


def stop_token_ids(fmt: ChatFormat, tokenizer: Any) -> list[int]:
    """Token ids that end generation: the format's stop token plus the tokenizer's EOS."""
    ids = []
    stop_id = tokenizer.convert_tokens_to_ids(fmt.stop) if fmt.stop else None
    if stop_id is not None and stop_id != getattr(tokenizer, "unk_token_id", None):
        ids.append(stop_id)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def jinja_template(fmt: str | ChatFormat) -> str:
    """A Hugging Face ``chat_template`` equivalent to :func:`render`, saved with converted models.

    Other tools (vLLM, TRL, llama.cpp's ``--jinja``) then lay prompts out exactly as bayling does;
    ``tests/test_chat.py`` checks ``tokenizer.apply_chat_template`` against :func:`render`.
    """
    fmt = get_format(fmt)

    def lit(s: str) -> str:
        return "{{ " + repr(s) + " }}" if s else ""

    default_sys = repr(fmt.default_system) if fmt.default_system else "none"
    parts = [
        "{%- set msgs = messages -%}",
        f"{{%- set system = {default_sys} -%}}",
        "{%- if msgs and msgs[0]['role'] == 'system' -%}{%- set system = msgs[0]['content'] -%}"
        "{%- set msgs = msgs[1:] -%}{%- endif -%}",
        lit(fmt.bos),
    ]
    user_pre, user_post = fmt.user.split("{content}")
    if fmt.system is not None:
        sys_pre, sys_post = fmt.system.split("{content}")
        parts.append("{%- if system -%}" + lit(sys_pre) + "{{ system }}" + lit(sys_post) + "{%- endif -%}")
    parts.append(lit(fmt.preamble))
    first_user = "{{ system ~ '\\n\\n' ~ m['content'] }}" if fmt.system is None else "{{ m['content'] }}"
    parts.append(
        "{%- for m in msgs -%}"
        "{%- if m['role'] == 'user' -%}"
        + lit(user_pre)
        + ("{%- if loop.first and system -%}" + first_user + "{%- else -%}{{ m['content'] }}{%- endif -%}")
        + lit(user_post)
        + "{%- else -%}"
        + lit(fmt.assistant_prefix)
        + "{{ m['content'] }}"
        + lit(fmt.stop)
        + lit(fmt.assistant_after_stop)
        + "{%- endif -%}{%- endfor -%}"
        + "{%- if add_generation_prompt -%}"
        + lit(fmt.assistant_prefix)
        + "{%- endif -%}"
    )
    return "".join(parts)
