"""One validation layer for every file bayling reads: damaged input is named, never a traceback.

Every reader (chat and instruction JSONL/JSON, parallel TSV/JSONL/aligned files, evaluation hypothesis and
reference files, benchmark and judge files, YAML configs) decodes and checks its input through these
helpers, so a problem is reported as ``file:line: what was expected, what was found``:

* bytes are decoded line by line, so undecodable input names its line and byte
  (``in.txt:3: not valid UTF-8 at byte 17 (0xff)``); a UTF-8 byte-order mark is dropped and ``\\r\\n`` line
  ends are read as ``\\n``;
* JSON lines that do not parse, nest too deeply or are not objects, and records whose fields have the wrong
  shape (``messages[1]: expected a 'content' field, found an object with role``) raise :class:`~bayling.errors.DataError`;
* where a stage allows it (``skip_bad_lines``, ``--skip-bad``) :class:`BadLines` counts and skips bad records
  instead, keeping every good one.

It imports only :mod:`bayling.errors`, so every layer of bayling can use it.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bayling.errors import ConfigError, DataError

BOM = codecs.BOM_UTF8
NL = b"\n"
ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
DECODE_ERRORS = ("strict", "replace", "ignore", "backslashreplace")
"""The ``errors=`` choices offered to users (``--errors``): each yields text that can be encoded again."""
ENCODING_HINT = " (or pass --encoding ENC or --errors replace)"
"""Appended by commands that offer ``--encoding``/``--errors`` to an undecodable-input message."""


class BadLines:
    """Collects malformed input lines when the user asked to skip them, else raises at the first one.

    Keeps the total and the first ``keep`` messages (``file:line: reason``), so a 3M-line file with many
    bad lines does not grow memory; stats.json reports both.
    """

    def __init__(self, skip: bool = False, keep: int = 20, sink: list[str] | None = None) -> None:
        self.skip = skip
        self.keep = keep
        self.count = 0
        self.messages: list[str] = []
        self.sink = sink  # a caller's list that receives every skipped line's message

    def append(self, msg: str) -> None:
        """Record one bad line (the ``bad`` list protocol of :func:`bayling.io.read_jsonl`)."""
        self.count += 1
        if self.sink is not None:
            self.sink.append(msg)
        if len(self.messages) < self.keep:
            self.messages.append(msg)

    def error(self, msg: str) -> None:
        """Raise :class:`DataError` for ``msg``, or count it when skipping."""
        if not self.skip:
            raise DataError(msg)
        self.append(msg)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "first": self.messages}


# ----------------------------------------------------------------------------- bytes -> text


def check_encoding(encoding: str, errors: str = "strict") -> None:
    """Fail with one line on an encoding or error policy Python does not know."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ConfigError(f"unknown text encoding {encoding!r} (e.g. utf-8, latin-1, cp1252, gb18030)") from None
    if errors not in DECODE_ERRORS:
        raise ConfigError(f"unknown decoding error policy {errors!r}; choose from {', '.join(DECODE_ERRORS)}")


def _name(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    return {"utf-8": "UTF-8", "ascii": "ASCII"}.get(name, name)


def decode(raw: bytes, where: str, encoding: str = "utf-8", errors: str = "strict") -> str:
    """Decode one line (or a whole text without newlines); undecodable bytes name ``where`` and the byte.

    Raises:
        DataError: ``where: not valid UTF-8 at byte N (0xXX)``, N counted from 1 within ``raw``.
    """
    try:
        return raw.decode(encoding, errors)
    except UnicodeDecodeError as e:
        hint = "; re-encode the file as UTF-8" if codecs.lookup(encoding).name == "utf-8" else ""
        raise DataError(
            f"{where}: not valid {_name(encoding)} at byte {e.start + 1} (0x{raw[e.start]:02x}){hint}"
        ) from None


def _ascii_compatible(encoding: str) -> bool:
    """Whether ``\\n`` is the single byte 0x0a, so lines can be split before decoding (not UTF-16/32)."""
    try:
        return "a\n".encode(encoding) == b"a\n"
    except (UnicodeError, LookupError):
        return False


def decode_text(data: bytes, name: str, encoding: str = "utf-8", errors: str = "strict") -> str:
    """Decode a whole file's bytes (BOM dropped, ``\\r\\n`` -> ``\\n``), naming the line of a bad byte."""
    check_encoding(encoding, errors)
    if codecs.lookup(encoding).name == "utf-8" and data.startswith(BOM):
        data = data[len(BOM) :]
    try:
        text = data.decode(encoding, errors)
    except UnicodeDecodeError as e:
        if _ascii_compatible(encoding):  # name the line: decode it alone (raises with the byte in the line)
            start, end = data.rfind(NL, 0, e.start) + 1, data.find(NL, e.start)
            decode(data[start : len(data) if end < 0 else end], f"{name}:{data.count(NL, 0, e.start) + 1}", encoding)
        raise DataError(f"{name}: not valid {_name(encoding)} at byte {e.start + 1} of the file") from None
    if codecs.lookup(encoding).name != "utf-8" and text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n")


def need_file(path: str | Path, what: str = "file") -> Path:
    """``path`` as a :class:`~pathlib.Path` when it is a file, else ``{what} not found`` / ``is a directory``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} is a directory, not a file" if p.is_dir() else f"{what} not found: {p}")
    return p


def read_text(path: str | Path, encoding: str = "utf-8", errors: str = "strict", what: str = "file") -> str:
    """A whole text file, decoded through :func:`decode_text`.

    Raises:
        DataError: ``{what} not found: PATH``, or the line and byte that cannot be decoded.
    """
    p = need_file(path, what)
    return decode_text(p.read_bytes(), str(p), encoding, errors)


def read_lines(path: str | Path, encoding: str = "utf-8", errors: str = "strict") -> list[str]:
    """Lines of a text file without their ends (blank lines kept: in aligned files they are segments).

    Only the final line end is dropped, so trailing blank lines are segments too, as sacreBLEU's CLI reads files
    (``readlines``): a hypothesis file whose last outputs are empty still aligns with its references.
    """
    text = read_text(path, encoding, errors)
    return text.removesuffix("\n").split("\n") if text else []


def iter_lines(
    path: str | Path,
    bad: BadLines | None = None,
    encoding: str = "utf-8",
    errors: str = "strict",
    name: str | None = None,
) -> Iterator[tuple[int, str | None]]:
    """Stream ``(line number, text)`` of a text file, splitting on ``\\n`` only (as JSONL and aligned files mean).

    The line end (``\\n`` or ``\\r\\n``) is removed, and a UTF-8 BOM before the first line. A line that cannot
    be decoded goes through ``bad``: with ``bad`` skipping it is yielded as ``None`` (so aligned readers keep
    counting); without ``bad``, or when ``bad`` raises, it is a :class:`DataError` naming line and byte.

    Args:
        path: the file.
        bad: the malformed-line policy (default: raise).
        encoding: the text encoding.
        errors: ``strict`` (raise), ``replace`` (U+FFFD), ``ignore`` or ``backslashreplace``.
        name: how the file is named in messages (default: the path).
    """
    check_encoding(encoding, errors)
    p = need_file(path)
    name = name or str(p)
    if not _ascii_compatible(encoding):  # UTF-16/32: no byte-level line split; decode the whole file
        text = decode_text(p.read_bytes(), name, encoding, errors)
        yield from enumerate(text.rstrip("\n").split("\n") if text else [], 1)
        return
    utf8 = codecs.lookup(encoding).name == "utf-8"
    with p.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if n == 1 and utf8 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1] if raw.endswith(b"\n") else raw
            try:
                yield n, decode(raw, f"{name}:{n}", encoding, errors)
            except DataError as e:
                if bad is None:
                    raise
                bad.error(str(e))
                yield n, None


def iter_tsv(path: str | Path, bad: BadLines | None = None) -> Iterator[tuple[int, list[str] | None]]:
    """``(line number, fields)`` of a tab-separated file without quoting (``csv.QUOTE_NONE``: a line is a row)."""
    for n, line in iter_lines(path, bad):
        yield n, None if line is None else line.split("\t")


# ----------------------------------------------------------------------------- JSON


def parse_json(text: str, where: str) -> Any:
    """``json.loads`` with one-line errors (syntax, nesting too deep)."""
    try:
        return json.loads(text)
    except ValueError as e:
        raise DataError(f"{where}: invalid JSON ({e})") from None
    except RecursionError:
        raise DataError(f"{where}: invalid JSON (nested too deeply)") from None


def iter_jsonl_numbered(path: str | Path, bad: BadLines) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` per non-blank line; malformed lines go through ``bad`` (raise or count)."""
    p = need_file(path)
    for n, line in iter_lines(p, bad):
        if line is None or not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {_json_type(obj)}")
        except ValueError as e:
            bad.error(f"{p}:{n}: invalid JSON line ({e})")
            continue
        except RecursionError:
            bad.error(f"{p}:{n}: invalid JSON line (nested too deeply)")
            continue
        yield n, obj


def read_json(path: str | Path, what: str = "file") -> Any:
    """A whole JSON file (not JSONL), decoded and parsed with errors naming the file."""
    p = Path(path)
    return parse_json(read_text(p, what=what), str(p))


def read_json_object(path: str | Path, what: str = "file") -> dict[str, Any]:
    """A JSON file that must hold an object (a config, a summary, a marker), with one-line errors."""
    obj = read_json(path, what)
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object, found {describe(obj)}")
    return obj


# ----------------------------------------------------------------------------- record shapes


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What :func:`field` finds for an absent key (``describe(MISSING)`` says so)."""


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def describe(value: Any) -> str:
    """What was found, for messages: ``a string ('oops')``, ``a list of 3 items``, ``null``, ``nothing``."""
    if value is MISSING:
        return "nothing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"a number ({value!r:.20})"
    if isinstance(value, str):
        if not value.strip():
            return "an empty string" if not value else "a blank string"
        short = value if len(value) <= 30 else value[:27] + "..."
        return f"a string ({short!r})"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item{'s' * (len(value) != 1)}" if value else "an empty list"
    if isinstance(value, dict):
        if not value:
            return "an empty object"
        keys = [str(k) for k in list(value)[:5]]
        return f"an object with {', '.join(keys)}{', …' if len(value) > 5 else ''}"
    return f"a {type(value).__name__}"


def at(where: str, path: str) -> str:
    """``file:line`` plus a JSON path inside the record (``x.jsonl:3: messages[1].content``)."""
    return f"{where}: {path}" if path else where


def fail(where: str, expected: str, found: Any) -> DataError:
    """``where: expected …, found …`` as a :class:`DataError` (to raise)."""
    return DataError(f"{where}: expected {expected}, found {describe(found)}")


_KINDS: dict[Any, tuple[tuple[type, ...], str]] = {
    str: ((str,), "a string"),
    "text": ((str,), "a non-empty string"),
    list: ((list,), "a list"),
    dict: ((dict,), "an object"),
    int: ((int,), "an integer"),
    "number": ((int, float), "a number"),
    bool: ((bool,), "true or false"),
    "scalar": ((str, int, float), "a string or number"),
}


def check(value: Any, kind: Any, where: str) -> Any:
    """``value`` if it is of ``kind`` (``str``, ``"text"`` = non-empty string, ``list``, ``dict``, ``int``,
    ``"number"``, ``bool``, ``"scalar"``), else a :class:`DataError` saying what was expected and found."""
    types, expected = _KINDS[kind]
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok or (kind == "text" and not value.strip()):
        raise fail(where, expected, value)
    return value


def field(obj: dict[str, Any], key: str, kind: Any, where: str, required: bool = True, default: Any = None) -> Any:
    """``obj[key]`` checked by :func:`check`; a missing key is an error when ``required``, else ``default``.

    ``None`` counts as missing for an optional field (JSON ``null`` is how many exporters write "absent").
    """
    value = obj.get(key, MISSING)
    if value is MISSING or (value is None and not required):
        if required:
            raise DataError(f"{where}: expected a {key!r} field, found {describe(obj)}")
        return default
    return check(value, kind, at(where, key))


def check_fields(obj: dict[str, Any], spec: dict[str, Any], where: str) -> None:
    """Check optional metadata fields: ``{key: kind}``, or ``{key: [kind]}`` for a list of that kind."""
    for key, kind in spec.items():
        value = obj.get(key)
        if value is None:
            continue
        if isinstance(kind, list):
            for i, item in enumerate(check(value, list, at(where, key))):
                if item is not None:
                    check(item, kind[0], at(where, f"{key}[{i}]"))
        else:
            check(value, kind, at(where, key))


def chat_messages(obj: dict[str, Any], where: str, nonempty: bool = False) -> list[dict[str, str]]:
    """The turns of a chat record: OpenAI ``messages`` (``role``, ``content``) or ShareGPT ``conversations``
    (``from``, ``value``), as ``[{"role", "content"}]``; shapes are checked, turn order is not.

    Args:
        obj: one JSON record.
        where: ``file:line`` for messages.
        nonempty: every turn needs text that is not blank.

    Raises:
        DataError: ``x.jsonl:3: messages[1]: expected a 'content' field, found an object with role``, and the
            like.
    """
    key = "messages" if "messages" in obj or "conversations" not in obj else "conversations"
    if key not in obj:
        raise DataError(f"{where}: expected a 'messages' or 'conversations' list, found {describe(obj)}")
    turns = check(obj[key], list, at(where, key))
    if not turns:
        raise fail(at(where, key), "at least one turn", turns)
    role_key, text_key = ("role", "content") if key == "messages" else ("from", "value")
    out = []
    for i, turn in enumerate(turns):
        loc = at(where, f"{key}[{i}]")
        check(turn, dict, loc)
        role = field(turn, role_key, str, loc)
        if key == "messages" and role not in ROLES:
            raise fail(at(loc, role_key), "system, user or assistant", role)
        if key == "conversations":
            if role not in SHAREGPT_ROLES:
                raise DataError(f"{loc}: unknown ShareGPT speaker {role!r}; expected human/gpt/system")
            role = SHAREGPT_ROLES[role]
        content = field(turn, text_key, "text" if nonempty else str, loc)
        out.append({"role": role, "content": content})
    return out
