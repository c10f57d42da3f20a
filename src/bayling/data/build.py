"""The data stage: ``build(cfg, out_dir)`` writes ``train.jsonl``, ``heldout.jsonl`` and ``stats.json``.

Run as::

    bayling data configs/quickstart.yaml

The held-out records are split off *before* any training example is made, so evaluation sentences
never leak into training data.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from bayling.data.config import DataConfig
from bayling.data.interactive import interactive_dialogue, translation_turn
from bayling.data.io import read_jsonl, write_json, write_jsonl
from bayling.data.parallel import load_parallel
from bayling.data.templates import load_templates
from bayling.errors import DataError
from bayling.languages import get_language


def _directions(langs: list[str], pivots: list[str]) -> list[tuple[str, str]]:
    pairs = [(a, b) for a, b in itertools.permutations(langs, 2)]
    if pivots:
        pairs = [(a, b) for a, b in pairs if a in pivots or b in pivots]
    return pairs


def load_general(source: str) -> list[dict[str, Any]]:
    """Seed general instructions (``instruction``, ``response``, ``lang``)."""
    path = Path(str(resources.files("bayling.data") / "samples" / "instructions.jsonl")) if source == "sample" else Path(source)
    rows = []
    for n, obj in enumerate(read_jsonl(path), 1):
        if not obj.get("instruction") or not obj.get("response"):
            raise DataError(f"{path}:{n}: expected non-empty 'instruction' and 'response'")
        rows.append(obj)
    return rows


def build(cfg: DataConfig, out_dir: str | Path, seed: int = 0) -> Path:
    """Build the training mix and the held-out split.

    Args:
        cfg: the data config.
        out_dir: directory to write into.
        seed: run seed (used when ``cfg.seed`` is None).

    Returns:
        ``out_dir``, holding ``train.jsonl`` (chat ``messages`` per line), ``heldout.jsonl`` and ``stats.json``.
    """
    out = Path(out_dir)
    rng = random.Random(cfg.seed if cfg.seed is not None else seed)
    langs = [get_language(x).code for x in cfg.languages]
    pivots = [get_language(x).code for x in cfg.pivot_languages]
    ils = [get_language(x).code for x in cfg.instruction_languages]
    templates = load_templates()

    records = load_parallel(cfg.source, langs, cfg.flores_dir)
    rng.shuffle(records)
    if len(records) <= cfg.heldout:
        raise DataError(f"{cfg.source}: only {len(records)} parallel records, need more than heldout={cfg.heldout}")
    heldout, train_recs = records[: cfg.heldout], records[cfg.heldout :]
    if cfg.max_records:
        train_recs = train_recs[: cfg.max_records]

    examples: list[dict[str, Any]] = []
    directions = _directions(langs, pivots)
    if not directions:
        raise DataError(f"no translation directions: languages={langs} pivot_languages={pivots}")
    for i in range(cfg.interactive):
        rec = train_recs[i % len(train_recs)]
        src, tgt = rng.choice(directions)
        il = rng.choice(ils)
        msgs, turns = interactive_dialogue(rec, src, tgt, il, templates, rng, cfg.max_followups)
        examples.append({"messages": msgs, "task": "interactive", "turns": turns, "src": src, "tgt": tgt,
                         "instruction_lang": il, "source_id": rec.id})
    all_pairs = list(itertools.permutations(langs, 2))
    for _ in range(cfg.crosslingual):
        rec = rng.choice(train_recs)
        src, tgt = rng.choice(all_pairs)
        # Instruction written in a third language when possible: the cross-lingual signal of BayLing 2.
        il = rng.choice([x for x in ils + [src, tgt] if x in templates["translate"]])
        msgs = translation_turn(rec, src, tgt, il, templates, rng)
        examples.append({"messages": msgs, "task": "crosslingual", "turns": ["translate"], "src": src, "tgt": tgt,
                         "instruction_lang": il, "source_id": rec.id})
    if cfg.general:
        general = load_general(cfg.instructions)
        rng.shuffle(general)
        for g in general[: cfg.general]:
            msgs = [{"role": "user", "content": g["instruction"]}, {"role": "assistant", "content": g["response"]}]
            lang = g.get("lang", "eng_Latn")
            examples.append({"messages": msgs, "task": "general", "turns": ["general"], "src": lang, "tgt": lang,
                             "instruction_lang": lang, "source_id": g.get("id")})
    rng.shuffle(examples)

    write_jsonl(out / "train.jsonl", examples)
    write_jsonl(out / "heldout.jsonl", (r.to_dict() for r in heldout))
    stats = statistics(examples)
    stats["heldout_records"] = len(heldout)
    stats["parallel_records_used"] = len(train_recs)
    write_json(out / "stats.json", stats)
    return out


def statistics(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per task, turn type and direction, plus turn and character totals."""
    tasks = Counter(e["task"] for e in examples)
    turns = Counter(t for e in examples for t in e["turns"])
    dirs = Counter(f"{e['src']}-{e['tgt']}" for e in examples if e["task"] != "general")
    n_turns = [sum(m["role"] == "assistant" for m in e["messages"]) for e in examples]
    return {
        "examples": len(examples),
        "tasks": dict(tasks),
        "task_ratio": {k: round(v / max(1, len(examples)), 3) for k, v in tasks.items()},
        "turn_types": dict(turns),
        "directions": dict(sorted(dirs.items())),
        "assistant_turns_mean": round(sum(n_turns) / max(1, len(n_turns)), 3),
        "characters": sum(len(m["content"]) for e in examples for m in e["messages"]),
    }
