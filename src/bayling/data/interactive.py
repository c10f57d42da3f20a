"""Template-based builders: interactive-translation dialogues and cross-lingual requests.

A dialogue (BayLing 1) opens with a translation request and continues with follow-ups drawn from
the turn taxonomy in ``templates/interactive.yaml`` (register change, glossary term, explanation,
translate on into a third language, back-translation). Replies come from the parallel record itself
(reference, register variants, other languages), so the offline builder needs no teacher model and
is deterministic for a given seed.
"""

from __future__ import annotations

import random
from typing import Any

from bayling.data.parallel import ParallelRecord
from bayling.data.templates import lang_name

REGISTER_TURNS = ("formal", "casual", "short")


def _fill(tpl: str, **kw: str) -> str:
    return tpl.format(**kw)


def _pick(templates: dict[str, Any], key_spec: dict[str, Any], il: str, rng: random.Random) -> str:
    choices = key_spec.get(il) or key_spec["eng_Latn"]
    return rng.choice(choices)


def translation_turn(
    rec: ParallelRecord, src: str, tgt: str, il: str, templates: dict[str, Any], rng: random.Random
) -> list[dict[str, str]]:
    """A single translation request and its reference answer."""
    prompt = _fill(
        _pick(templates, templates["translate"], il, rng),
        src=lang_name(src, il, templates),
        tgt=lang_name(tgt, il, templates),
        text=rec.texts[src],
    )
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": rec.texts[tgt]}]


def _available(rec: ParallelRecord, src: str, tgt: str, spec: dict[str, Any], third: list[str]) -> bool:
    for need in spec.get("needs", []):
        if need.startswith("variant:"):
            reg = need.split(":", 1)[1]
            if tgt not in rec.variants.get(reg, {}):
                return False
        elif need == "term":
            if not any(src in t and tgt in t for t in rec.terms):
                return False
        elif need == "third":
            if not third:
                return False
    return True


def interactive_dialogue(
    rec: ParallelRecord,
    src: str,
    tgt: str,
    il: str,
    templates: dict[str, Any],
    rng: random.Random,
    max_followups: int,
) -> tuple[list[dict[str, str]], list[str]]:
    """Build one multi-turn dialogue; returns the messages and the turn types used."""
    messages = translation_turn(rec, src, tgt, il, templates, rng)
    turn_types = ["translate"]
    third = [c for c in rec.texts if c not in (src, tgt)]
    followups = templates["followups"]
    possible = [name for name, spec in followups.items() if _available(rec, src, tgt, spec, third)]
    rng.shuffle(possible)
    k = rng.randint(0, max_followups)
    chosen: list[str] = []
    for name in possible:
        if len(chosen) >= k:
            break
        if name in REGISTER_TURNS and any(c in REGISTER_TURNS for c in chosen):
            continue  # one register change per dialogue keeps later replies consistent
        chosen.append(name)
    # Glossary/explanation refer to the plain translation, so they come before a register change;
    # back-translation and third-language turns come last.
    rank = {"glossary": 0, "explain": 1, "formal": 2, "casual": 2, "short": 2, "third_language": 3, "back_translate": 4}
    chosen.sort(key=lambda n: rank.get(n, 5))
    term = next((t for t in rec.terms if src in t and tgt in t), None)
    tgt2 = rng.choice(third) if third else None
    for name in chosen:
        spec = followups[name]
        kw = {
            "src": lang_name(src, il, templates),
            "tgt": lang_name(tgt, il, templates),
            "tgt2": lang_name(tgt2, il, templates) if tgt2 else "",
            "term_src": term[src] if term else "",
            "term_tgt": term[tgt] if term else "",
        }
        question = _fill(_pick(templates, spec, il, rng), **kw)
        answer_kind = spec["answer"]
        if answer_kind.startswith("variant:"):
            answer = rec.variants[answer_kind.split(":", 1)[1]][tgt]
        elif answer_kind == "target":
            answer = rec.texts[tgt]
        elif answer_kind == "third":
            answer = rec.texts[tgt2]
        elif answer_kind == "source":
            answer = rec.texts[src]
        elif answer_kind == "explain":
            expl = templates["explain_answer"]
            answer = _fill(expl.get(il) or expl["eng_Latn"], **kw)
        else:
            raise ValueError(f"unknown answer kind {answer_kind!r} in follow-up {name!r}")
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        turn_types.append(name)
    return messages, turn_types
