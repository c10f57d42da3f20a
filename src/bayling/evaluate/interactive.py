"""Interactive translation evaluation: per-turn scores of refinement dialogues and constraint hit-rate.

**Refinement dialogues** (BayLing 1's interactive translation, scored automatically): each record
is played as a scripted dialogue, e.g. ``translate -> third_language -> back_translate``; the user
turns come from the data stage's templates (``templates/interactive.yaml``, canonical variant),
the history holds the model's *own* earlier replies, and every turn is scored against the reference
that turn asks for (the target sentence, the third-language sentence, the source for a
back-translation, the register variant, or the target with the glossary term). So a report can say
"turn 3 still matches the reference" or "the model forgets the source by turn 3".

**Constrained translation** (BayLing's lexically constrained sets, ``{src, tgt, constraint}``): the
canonical translation request plus BayLing's ``Make sure to include these words:`` line; scored by
constraint hit-rate (share of constraint words found in the output, exact and case-insensitive), the
share of outputs with every constraint, and BLEU/chrF++ against the reference.

A hit counts only in a *valid* output: one that language ID does not call off-target
(:data:`bayling.lid.OFF_TARGET`; ``unknown`` stays valid) and that is not a copy (:func:`bayling.lid.is_copy`)
of the source, of the request, or of its constraint line. The request names the required words, so a base
model that repeats the prompt would otherwise "hit" them all; its outputs are excluded and their hits count
as misses. The hit-rate is reported beside the chrF++ of the same outputs, the share excluded (off-target,
copy), the naive rate over all outputs (``hit_rate_raw``), and the hit-rate and chrF++ of the valid outputs
alone. The glossary turn of the refinement dialogues counts term hits the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bayling.engines import Engine, GenerationParams
from bayling.errors import ConfigError, DataError
from bayling.evaluate.metrics import corpus_scores
from bayling.languages import get_language
from bayling.prompts import lang_name, load_templates, translation_prompt
from bayling.records import ParallelRecord, dataset_dir

CONSTRAINT_LINE = "\nMake sure to include these words: {words}"
"""Appended to the translation request, as in BayLing's ``scripts/constrained_translate.py``."""

TURN_TYPES = ("translate", "formal", "casual", "short", "glossary", "third_language", "back_translate")


def _turn_prompt(kind: str, rec: ParallelRecord, src: str, tgt: str, third: str) -> tuple[str, str, str]:
    """(user text, reference, reference language) of one scripted turn."""
    if kind not in TURN_TYPES:
        raise ConfigError(f"unknown interactive turn {kind!r}; choose from {', '.join(TURN_TYPES)}")
    t = load_templates()
    if kind == "translate":
        return translation_prompt(rec.texts[src], src, tgt), rec.texts[tgt], tgt
    spec = t["followups"][kind]
    term = next((x for x in rec.terms if src in x and tgt in x), None)
    kw = {
        "src": lang_name(src),
        "tgt": lang_name(tgt),
        "tgt2": lang_name(third),
        "term_src": term[src] if term else "",
        "term_tgt": term[tgt] if term else "",
    }
    text = spec["eng_Latn"][0].format(**kw)
    answer = spec["answer"]
    if answer.startswith("variant:"):
        return text, rec.variants[answer.split(":", 1)[1]][tgt], tgt
    return (
        text,
        {"target": rec.texts[tgt], "third": rec.texts.get(third, ""), "source": rec.texts[src]}[answer],
        {"target": tgt, "third": third, "source": src}[answer],
    )


def _usable(rec: ParallelRecord, src: str, tgt: str, third: str, turns: Sequence[str]) -> bool:
    for kind in turns:
        if kind in ("formal", "casual", "short") and tgt not in rec.variants.get(kind, {}):
            return False
        if kind in ("glossary", "explain") and not any(src in x and tgt in x for x in rec.terms):
            return False
        if kind == "third_language" and third not in rec.texts:
            return False
    return src in rec.texts and tgt in rec.texts


def refinement_dialogues(
    engine: Engine,
    records: Sequence[ParallelRecord],
    src: str,
    tgt: str,
    turns: Sequence[str],
    third: str,
    max_new_tokens: int = 96,
    progress: Callable[[int], None] | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Play the scripted dialogue on every usable record; score each turn over all dialogues.

    Returns:
        ``({"turns": [{"turn", "type", "lang", "bleu", "chrf", "off_target", "unknown", "term_hit_rate"?}], "n"},
        rows)``.
    """
    from bayling.lid import is_copy, off_target_rates

    if not turns or turns[0] != "translate":
        raise ConfigError("eval.interactive.turns must start with 'translate'")
    unknown = [k for k in turns if k not in TURN_TYPES]
    if unknown:
        raise ConfigError(f"unknown interactive turn(s) {unknown}; choose from {', '.join(TURN_TYPES)}")
    recs = [r for r in records if _usable(r, src, tgt, third, turns)]
    if not recs:
        raise DataError(
            f"interactive {src}-{tgt}: no record has what the turns {list(turns)} need "
            "(terms/variants come with the data stage's held-out records, a third language with FLORES)"
        )
    history: list[list[dict[str, str]]] = [[] for _ in recs]
    rows = [{"id": r.id, "turns": []} for r in recs]
    summary_turns = []
    params = GenerationParams(max_new_tokens=max_new_tokens, seed=seed)
    for k, kind in enumerate(turns):
        asks = [_turn_prompt(kind, r, src, tgt, third) for r in recs]
        convs = [h + [{"role": "user", "content": a[0]}] for h, a in zip(history, asks, strict=True)]
        outs = engine.generate(convs, params, progress=progress)
        lang = asks[0][2]
        refs = [a[1] for a in asks]
        scores = corpus_scores(outs, refs, lang, ("bleu", "chrf"))
        rates, verdicts = off_target_rates(outs, lang)
        flags = [v.off for v in verdicts]
        entry = {
            "turn": k + 1,
            "type": kind,
            "lang": lang,
            "bleu": scores["bleu"]["score"],
            "chrf": scores["chrf"]["score"],
            **rates,
            "signatures": {m: v["signature"] for m, v in scores.items()},
        }
        if kind == "glossary":
            terms = [next(x for x in r.terms if src in x and tgt in x)[tgt] for r in recs]
            valid = [not f and not is_copy(o, a[0]) for f, o, a in zip(flags, outs, asks, strict=True)]
            hits = [ok and t in o for ok, t, o in zip(valid, terms, outs, strict=True)]
            entry["term_hit_rate"] = round(100.0 * sum(hits) / len(outs), 2)
        summary_turns.append(entry)
        for i, (a, o) in enumerate(zip(asks, outs, strict=True)):
            history[i] = convs[i] + [{"role": "assistant", "content": o}]
            rows[i]["turns"].append(
                {"type": kind, "user": a[0], "ref": a[1], "hyp": o, "off_target": flags[i], "lid": verdicts[i].status}
            )
    return {"turns": summary_turns, "n": len(recs)}, rows


# ----------------------------------------------------------------------------- constrained translation


def load_constrained(data_dir: str | None = None, limit: int = 0) -> dict[str, list[dict[str, Any]]]:
    """BayLing's constrained sets by direction: ``constraints.zh-en.en.jsonl`` -> ``zho_Hans-eng_Latn``."""
    from bayling.validate import BadLines, iter_jsonl_numbered

    root = dataset_dir("bayling", data_dir) / "constrained_translation"
    files = sorted(root.glob("constraints.*.jsonl"))
    if not files:
        raise DataError(f"no constraints.*.jsonl under {root}")
    out = {}
    for f in files:
        pair = f.name.split(".")[1]
        s, t = (get_language(x).code for x in pair.split("-"))
        items = []
        for n, d in iter_jsonl_numbered(f, BadLines()):
            ok = isinstance(d.get("src"), str) and isinstance(d.get("tgt"), str)
            if (
                not ok
                or not isinstance(d.get("constraint"), list)
                or not all(isinstance(w, str) for w in d["constraint"])
            ):
                raise DataError(f"{f}:{n}: expected src and tgt strings and a constraint list of strings")
            items.append({"id": f"{pair}-{n}", **d})
        out[f"{s}-{t}"] = items[:limit] if limit > 0 else items
    return out


def constraint_hits(hyp: str, words: Sequence[str]) -> tuple[int, int]:
    """(exact hits, case-insensitive hits) of constraint ``words`` in ``hyp``."""
    low = hyp.lower()
    return sum(w in hyp for w in words), sum(w.lower() in low for w in words)


def constrained_translation(
    engine: Engine,
    items: Sequence[dict[str, Any]],
    src: str,
    tgt: str,
    max_new_tokens: int = 96,
    progress: Callable[[int], None] | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Translate with lexical constraints and measure how many constraints the valid outputs contain.

    Returns:
        ``(summary, rows)``: ``hit_rate`` (% of all constraints found, exact case, in valid outputs),
        ``hit_rate_ci`` (any case), ``all_constraints`` (% of items with every constraint, valid outputs),
        ``hit_rate_raw`` (% found in any output, echoes included), ``excluded``/``off_target``/``copy``
        (% of outputs), ``unknown`` (% with too little evidence for language ID, kept), ``bleu``/``chrf`` of
        all outputs, ``valid`` (``n``, ``hit_rate``, ``chrf`` of the valid outputs alone), ``constraints``, ``n``.
    """
    from bayling.lid import is_copy, off_target_rates

    lines = [CONSTRAINT_LINE.format(words=", ".join(it["constraint"])) for it in items]
    prompts = [translation_prompt(it["src"], src, tgt) + line for it, line in zip(items, lines, strict=True)]
    convs = [[{"role": "user", "content": p}] for p in prompts]
    outs = engine.generate(convs, GenerationParams(max_new_tokens=max_new_tokens, seed=seed), progress=progress)
    rates, verdicts = off_target_rates(outs, tgt)
    total = exact = ci = raw = full = 0
    rows = []
    for it, o, p, line, v in zip(items, outs, prompts, lines, verdicts, strict=True):
        copy = is_copy(o, it["src"]) or is_copy(o, p) or is_copy(o, line.strip())
        valid = not v.off and not copy
        e, c = constraint_hits(o, it["constraint"])
        raw += e
        if valid:
            exact, ci, full = exact + e, ci + c, full + (e == len(it["constraint"]))
        total += len(it["constraint"])
        rows.append(
            {
                "id": it["id"],
                "src": it["src"],
                "ref": it["tgt"],
                "hyp": o,
                "constraint": it["constraint"],
                "lid": v.status,
                "copy": copy,
                "valid": valid,
                "hits": e if valid else 0,
                "hits_raw": e,
            }
        )
    refs = [it["tgt"] for it in items]
    scores = corpus_scores(outs, refs, tgt, ("bleu", "chrf"))
    ok = [i for i, r in enumerate(rows) if r["valid"]]
    ok_total = sum(len(items[i]["constraint"]) for i in ok)
    n = max(len(items), 1)
    summary = {
        "hit_rate": round(100.0 * exact / max(total, 1), 2),
        "hit_rate_ci": round(100.0 * ci / max(total, 1), 2),
        "all_constraints": round(100.0 * full / n, 2),
        "hit_rate_raw": round(100.0 * raw / max(total, 1), 2),
        "excluded": round(100.0 * (len(items) - len(ok)) / n, 2),
        "off_target": rates["off_target"],
        "copy": round(100.0 * sum(r["copy"] for r in rows) / n, 2),
        "unknown": rates["unknown"],
        "bleu": scores["bleu"],
        "chrf": scores["chrf"],
        "valid": {
            "n": len(ok),
            "hit_rate": round(100.0 * exact / ok_total, 2) if ok_total else None,
            "chrf": corpus_scores([outs[i] for i in ok], [refs[i] for i in ok], tgt, ("chrf",))["chrf"]
            if ok
            else None,
        },
        "constraints": total,
        "n": len(items),
    }
    return summary, rows
