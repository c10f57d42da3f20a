"""Template-based interactive-translation dialogues (BayLing 1).

A dialogue opens with a translation request (sometimes constrained: "make sure to include these words")
and continues with follow-ups drawn from the turn taxonomy in ``templates/interactive.yaml``: register
changes, glossary terms, fixing a user's flawed draft (omission, wrong number), questions about the text,
translating on into a third language, back-translation. Offline, replies come from the parallel record
itself (reference, register variants, other languages, templated answers), so the builder needs no model
and is deterministic for a given seed. With ``teacher=True`` the turns only a model can answer (polish,
register changes of records without variants, explanations) are left as ``None`` for
:mod:`bayling.data.teacher_jobs` to fill.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from bayling.prompts import fill, lang_name, pick
from bayling.records import ParallelRecord

REGISTER_TURNS = ("formal", "casual", "short", "polish")
# Glossary/explanation/fixes refer to the plain translation, so they come before a register change;
# third-language, back-translation and questions about the original come last.
ORDER = {
    "glossary": 0,
    "explain": 1,
    "fix_omission": 1,
    "fix_number": 1,
    "formal": 2,
    "casual": 2,
    "short": 2,
    "polish": 2,
    "explain_choice": 3,
    "third_language": 4,
    "back_translate": 5,
    "source_language": 6,
    "numbers": 6,
    "summarize": 6,
}
_NUMBER = re.compile(r"(?<![0-9])[0-9]+(?:[.,][0-9]+)*(?![0-9])")
_WORD = re.compile(r"\w+")


@dataclass
class Dialogue:
    """A conversation plus, per assistant turn, what it is and what its reply must look like.

    ``messages`` holds ``None`` as the content of assistant turns a teacher must write.
    """

    messages: list[dict[str, Any]]
    turns: list[str]
    replies: list[dict[str, Any]] = field(default_factory=list)
    """Per assistant turn: ``lang`` (FLORES code the reply must be in, None = mixed), ``source`` (the text it
    translates, for the length-ratio filter), and for teacher turns ``teacher`` (the instruction) and ``length``."""


def numbers(text: str) -> list[str]:
    """ASCII numbers in ``text`` (``2015``, ``3.5``, ``1,000``), in order, without repeats."""
    return list(dict.fromkeys(_NUMBER.findall(text)))


def shared_terms(src_text: str, tgt_text: str, k: int = 2) -> list[str]:
    """Words that appear verbatim in both texts and must survive translation: numbers and names."""
    tgt_words = set(_WORD.findall(tgt_text))
    out = []
    for w in _WORD.findall(src_text):
        if w in tgt_words and w not in out and len(w) > 1 and (w[0].isupper() or any(ch.isdigit() for ch in w)):
            out.append(w)
    return out[:k]


def _spaced(text: str) -> bool:
    return text.count(" ") >= 4


def omission_draft(text: str, rng: random.Random) -> str | None:
    """``text`` with a contiguous 20-40% span cut out (words, or characters for unspaced scripts)."""
    units = text.split(" ") if _spaced(text) else list(text)
    if len(units) < (5 if _spaced(text) else 8):
        return None
    n = max(1, int(len(units) * rng.uniform(0.2, 0.4)))
    start = rng.randrange(0, len(units) - n + 1)
    kept = units[:start] + units[start + n :]
    return (" " if _spaced(text) else "").join(kept)


def number_draft(text: str, rng: random.Random) -> str | None:
    """``text`` with one of its numbers changed (the "wrong number" error a user asks to fix)."""
    found = list(_NUMBER.finditer(text))
    ints = [m for m in found if m.group().isdigit()]
    if not ints:
        return None
    m = rng.choice(ints)
    value = int(m.group()) + rng.randint(1, 9)
    return text[: m.start()] + str(value) + text[m.end() :]


def _available(rec: ParallelRecord, src: str, tgt: str, spec: dict[str, Any], third: list[str], teacher: bool) -> bool:
    for need in spec.get("needs", []):
        if need.startswith("variant:"):
            if tgt not in rec.variants.get(need.split(":", 1)[1], {}) and not teacher:
                return False
        elif need == "term" and not any(src in t and tgt in t for t in rec.terms):
            return False
        elif need == "third" and not third:
            return False
        elif need == "number" and not (numbers(rec.texts[src]) and numbers(rec.texts[tgt])):
            return False
        elif need == "omission" and len(rec.texts[tgt].split(" ") if _spaced(rec.texts[tgt]) else rec.texts[tgt]) < 8:
            return False
        elif need == "teacher" and not teacher:
            return False
    return True


def _opener(
    rec: ParallelRecord, src: str, tgt: str, il: str, templates: dict[str, Any], rng: random.Random
) -> tuple[str, str]:
    names = {"src": lang_name(src, il, templates), "tgt": lang_name(tgt, il, templates)}
    prompt = fill(pick(templates["translate"], il, rng), text=rec.texts[src], **names)
    terms = shared_terms(rec.texts[src], rec.texts[tgt])
    if terms and "constrained" in templates and rng.random() < templates.get("constrained_rate", 0.25):
        return prompt + fill(pick(templates["constrained"], il, rng), terms=", ".join(terms)), "translate_constrained"
    return prompt, "translate"


def translation_turn(
    rec: ParallelRecord, src: str, tgt: str, il: str, templates: dict[str, Any], rng: random.Random
) -> list[dict[str, str]]:
    """A single translation request and its reference answer."""
    names = {"src": lang_name(src, il, templates), "tgt": lang_name(tgt, il, templates)}
    prompt = fill(pick(templates["translate"], il, rng), text=rec.texts[src], **names)
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": rec.texts[tgt]}]


def _choose(possible: list[str], k: int) -> list[str]:
    chosen: list[str] = []
    for name in possible:
        if len(chosen) >= k:
            break
        if name in REGISTER_TURNS and any(c in REGISTER_TURNS for c in chosen):
            continue  # one register change per dialogue keeps later replies consistent
        chosen.append(name)
    return sorted(chosen, key=lambda n: ORDER.get(n, 9))


def interactive_dialogue(
    rec: ParallelRecord,
    src: str,
    tgt: str,
    il: str,
    templates: dict[str, Any],
    rng: random.Random,
    max_followups: int,
    teacher: bool = False,
    min_followups: int = 0,
) -> Dialogue:
    """Build one multi-turn dialogue from ``rec`` (``src`` -> ``tgt``, requests written in ``il``).

    Args:
        rec: the parallel record.
        src: source language code.
        tgt: target language code.
        il: instruction language code (falls back to English templates when it has none).
        templates: the loaded template YAML.
        rng: the example's random generator (the only source of randomness).
        max_followups: follow-ups are drawn from ``min_followups..max_followups``.
        teacher: allow turns whose reply a teacher model must write (left as ``None``).
        min_followups: lower bound of the number of follow-ups.

    Returns:
        The :class:`Dialogue`.
    """
    opener, opener_type = _opener(rec, src, tgt, il, templates, rng)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": opener},
        {"role": "assistant", "content": rec.texts[tgt]},
    ]
    turns, replies = [opener_type], [{"lang": tgt, "source": rec.texts[src]}]
    third = [c for c in rec.texts if c not in (src, tgt)]
    followups = templates["followups"]
    possible = [n for n, spec in followups.items() if _available(rec, src, tgt, spec, third, teacher)]
    rng.shuffle(possible)
    chosen = _choose(possible, rng.randint(min(min_followups, max_followups), max_followups))
    term = next((t for t in rec.terms if src in t and tgt in t), None)
    tgt2 = rng.choice(third) if third else None
    lang_of = {"tgt": tgt, "src": src, "tgt2": tgt2, "il": il}
    for name in chosen:
        spec = followups[name]
        kw = {
            "src": lang_name(src, il, templates),
            "tgt": lang_name(tgt, il, templates),
            "tgt2": lang_name(tgt2, il, templates) if tgt2 else "",
            "term_src": term[src] if term else "",
            "term_tgt": term[tgt] if term else "",
            "numbers": ", ".join(numbers(rec.texts[src])),
            "draft": "",
        }
        if name == "fix_omission":
            kw["draft"] = omission_draft(rec.texts[tgt], rng) or ""
        elif name == "fix_number":
            kw["draft"] = number_draft(rec.texts[tgt], rng) or ""
        if name.startswith("fix_") and not kw["draft"]:
            continue  # e.g. only decimal numbers: nothing to corrupt
        question = fill(pick(spec, il, rng), **kw)
        answer = _answer(spec["answer"], rec, src, tgt, tgt2, il, templates, kw)
        if answer is None and spec["answer"] != "teacher" and not teacher:
            continue
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        turns.append(name)
        reply: dict[str, Any] = {"lang": lang_of[spec.get("reply_lang", "tgt")]}
        if spec["answer"] in ("target", "third"):
            reply["source"] = rec.texts[src]  # a translation of the source: its length ratio is checked
        elif spec["answer"] == "source":
            reply["source"] = rec.texts[tgt]
        if answer is None:
            reply.update(teacher=spec["teacher"], length=spec.get("length"))
        replies.append(reply)
    return Dialogue(messages, turns, replies)


def _answer(
    kind: str,
    rec: ParallelRecord,
    src: str,
    tgt: str,
    tgt2: str | None,
    il: str,
    templates: dict[str, Any],
    kw: dict[str, str],
) -> str | None:
    if kind.startswith("variant:"):
        return rec.variants.get(kind.split(":", 1)[1], {}).get(tgt)  # None: the teacher writes it
    if kind == "target":
        return rec.texts[tgt]
    if kind == "third":
        return rec.texts[tgt2] if tgt2 else None
    if kind == "source":
        return rec.texts[src]
    if kind == "explain":
        return fill(pick(templates["explain_answer"], il, random.Random(0)), **kw)
    if kind in ("source_language", "numbers"):
        return fill(pick(templates["answers"][kind], il, random.Random(0)), **kw)
    if kind == "teacher":
        return None
    raise ValueError(f"unknown answer kind {kind!r}")
