"""Template-based cross-lingual examples (BayLing 2): any direction between the build's languages.

Single-turn tasks, weighted by ``DataConfig.crosslingual_tasks``:

* ``translate``: translate A -> B, the request written in a third language when one has templates
  (instruction in one language, answer required in another: the cross-lingual signal of BayLing 2);
* ``multi_target``: translate A into B and C at once;
* ``identify``: name the language of a text (answer in the instruction language);
* ``verify``: judge whether a B text translates an A text; the B side is the reference or a copy with a
  span cut out or a number changed, and a "no" answer gives the correct translation.

All replies come from the parallel record, so no model is needed.
"""

from __future__ import annotations

import random
from typing import Any

from bayling.data.interactive import Dialogue, number_draft, omission_draft
from bayling.prompts import fill, lang_name, pick
from bayling.records import ParallelRecord

TASKS = ("translate", "multi_target", "identify", "verify")


def _il(
    templates: dict[str, Any], section: dict[str, Any], ils: list[str], extra: list[str], rng: random.Random
) -> str:
    pool = [x for x in dict.fromkeys(ils + extra) if section.get(x)]
    return rng.choice(pool or ["eng_Latn"])


def crosslingual_example(
    rec: ParallelRecord, task: str, ils: list[str], templates: dict[str, Any], rng: random.Random
) -> tuple[Dialogue, dict[str, Any]]:
    """One cross-lingual example of kind ``task`` from ``rec``.

    Args:
        rec: a record with at least two languages.
        task: one of :data:`TASKS`.
        ils: instruction languages.
        templates: the loaded template YAML.
        rng: the example's random generator.

    Returns:
        The dialogue and its metadata (``src``, ``tgt``, ``instruction_lang``).
    """
    langs = list(rec.texts)
    if task == "multi_target" and len(langs) < 3:
        task = "translate"
    src, tgt = rng.sample(langs, 2)
    cl = templates.get("crosslingual", {})
    ans = templates.get("answers", {})
    if task == "translate":
        # Instruction written in a third language when possible: the cross-lingual signal of BayLing 2.
        il = _il(templates, templates["translate"], ils, [src, tgt], rng)
        names = {"src": lang_name(src, il, templates), "tgt": lang_name(tgt, il, templates)}
        prompt = fill(pick(templates["translate"], il, rng), text=rec.texts[src], **names)
        dialogue = Dialogue(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": rec.texts[tgt]}],
            ["translate"],
            [{"lang": tgt, "source": rec.texts[src]}],
        )
        return dialogue, {"src": src, "tgt": tgt, "instruction_lang": il}
    il = _il(templates, cl[task], ils, [], rng)
    kw = {
        "src": lang_name(src, il, templates),
        "tgt": lang_name(tgt, il, templates),
        "text": rec.texts[src],
        "text_tgt": rec.texts[tgt],
        "draft": "",
        "tgt2": "",
        "text_tgt2": "",
    }
    reply_lang: str | None = il
    if task == "multi_target":
        tgt2 = rng.choice([c for c in langs if c not in (src, tgt)])
        kw.update(tgt2=lang_name(tgt2, il, templates), text_tgt2=rec.texts[tgt2])
        answer_key, reply_lang = "multi_target", None  # two languages in one reply: not language-checked
    elif task == "identify":
        answer_key, tgt = "identify", il
    elif task == "verify":
        roll = rng.random()
        draft = None
        if roll < 0.25:
            draft, answer_key = number_draft(rec.texts[tgt], rng), "verify_number"
        elif roll < 0.5:
            draft, answer_key = omission_draft(rec.texts[tgt], rng), "verify_omission"
        if draft is None or draft == rec.texts[tgt]:
            draft, answer_key = rec.texts[tgt], "verify_yes"
        kw["draft"] = draft
        if answer_key != "verify_yes":
            reply_lang = None  # a verdict in the instruction language plus the corrected translation
    else:
        raise ValueError(f"unknown cross-lingual task {task!r}; expected one of {', '.join(TASKS)}")
    prompt = fill(pick(cl[task], il, rng), **kw)
    answer = fill(pick(ans[answer_key], il, rng), **kw)
    dialogue = Dialogue(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}], [task], [{"lang": reply_lang}]
    )
    return dialogue, {"src": src, "tgt": tgt, "instruction_lang": il}
