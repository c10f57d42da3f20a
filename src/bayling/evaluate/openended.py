"""Open-ended multi-turn sets (BayLing-80, MT-Bench): answer turn by turn, then grade with the judge.

Answers are generated turn by turn: turn k's prompt holds the user's turns and the model's *own*
earlier answers, all questions of a turn in one batched engine call. Reference answers (MT-Bench's
GPT-4 ones for math/reasoning/coding) switch the judge to its reference-guided prompts. BayLing-80's
single-turn questions are exactly the first turns of its multi-turn file, so the multi-turn sets are
used and their turn-1 ratings are the single-turn scores.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayling.engines import Engine, GenerationParams
from bayling.errors import DataError
from bayling.records import dataset_dir
from bayling.validate import BadLines, at, check, describe, iter_jsonl_numbered

OPEN_ENDED = ("bayling80_en", "bayling80_zh", "mt_bench")


@dataclass
class Question:
    id: str
    category: str
    turns: list[str]
    lang: str
    refs: list[str] = field(default_factory=list)


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """``(line, object)`` rows; bad bytes, bad JSON and non-objects name ``file:line`` (:mod:`bayling.validate`)."""
    return list(iter_jsonl_numbered(path, BadLines()))


def _turns(d: dict, key: str, where: str) -> list[str]:
    turns = d.get(key)
    if not isinstance(turns, list) or not turns:
        raise DataError(f"{where}: {key!r} must be a non-empty list of turns, found {describe(turns)}")
    return [check(t, str, at(where, f"{key}[{i}]")) for i, t in enumerate(turns)]


def load_questions(name: str, data_dir: str | None = None, limit: int = 0) -> list[Question]:
    """BayLing-80 multi-turn (``bayling80_en``/``bayling80_zh``: ``question_id``, ``text``, ``category``) or
    MT-Bench (``question.jsonl``: ``turns``; ``reference_answer/gpt-4.jsonl`` when present)."""
    qs: list[Question] = []
    if name in ("bayling80_en", "bayling80_zh"):
        lang = name.rsplit("_", 1)[1]
        path = dataset_dir("bayling", data_dir) / "BayLing-80" / f"BayLing-80.multiturn.{lang}.jsonl"
        for n, d in _read_jsonl(path):
            turns = _turns(d, "text", f"{path}:{n}")
            qs.append(
                Question(
                    f"{name}-{d.get('question_id', n)}",
                    str(d.get("category", "")),
                    turns,
                    "zho_Hans" if lang == "zh" else "eng_Latn",
                )
            )
    elif name == "mt_bench":
        root = dataset_dir("mt_bench", data_dir)
        refs = {}
        ref_file = root / "reference_answer" / "gpt-4.jsonl"
        if ref_file.is_file():
            for n, d in _read_jsonl(ref_file):
                where = f"{ref_file}:{n}"
                choices = d.get("choices")
                if "question_id" not in d or not isinstance(choices, list) or not choices:
                    raise DataError(f"{where}: expected 'question_id' and a 'choices' list, found {describe(d)}")
                refs[str(d["question_id"])] = _turns(check(choices[0], dict, at(where, "choices[0]")), "turns", where)
        for n, d in _read_jsonl(root / "question.jsonl"):
            turns = _turns(d, "turns", f"{root / 'question.jsonl'}:{n}")
            qid = d.get("question_id", n)
            qs.append(
                Question(f"mt_bench-{qid}", str(d.get("category", "")), turns, "eng_Latn", refs.get(str(qid), []))
            )
    else:
        raise DataError(f"unknown open-ended set {name!r}; choose from {', '.join(OPEN_ENDED)}")
    return qs[:limit] if limit > 0 else qs


def answer_questions(
    engine: Engine,
    questions: Sequence[Question],
    max_new_tokens: int = 512,
    progress: Callable[[int], None] | None = None,
    seed: int = 0,
) -> list[list[str]]:
    """Answer every question turn by turn (one batched call per turn); returns answers per question."""
    answers: list[list[str]] = [[] for _ in questions]
    params = GenerationParams(max_new_tokens=max_new_tokens, seed=seed)
    for t in range(max((len(q.turns) for q in questions), default=0)):
        idx = [i for i, q in enumerate(questions) if len(q.turns) > t]
        convs = []
        for i in idx:
            conv = []
            for k in range(t):
                conv += [
                    {"role": "user", "content": questions[i].turns[k]},
                    {"role": "assistant", "content": answers[i][k]},
                ]
            convs.append(conv + [{"role": "user", "content": questions[i].turns[t]}])
        for i, a in zip(idx, engine.generate(convs, params, progress=progress), strict=True):
            answers[i].append(a)
    return answers


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 3) if xs else None


def judge_single(
    judge: Any,
    questions: Sequence[Question],
    answers: Sequence[Sequence[str]],
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """1-10 ratings for turns 1 and 2 of every question; summary by turn and category.

    A turn whose judgment held no rating twice is an error: counted in ``errors``, left out of the means.
    """
    from bayling.evaluate.judge import grade_single

    jobs = [(q, a, t) for q, a in zip(questions, answers, strict=True) for t in range(min(2, len(q.turns)))]
    res = judge.map(
        lambda j: grade_single(judge, j[0].turns, j[1], j[2], j[0].lang, j[0].refs or None), jobs, progress
    )
    rows = [{"id": q.id, "category": q.category, "turn": t + 1, **r} for (q, _, t), r in zip(jobs, res, strict=True)]
    by_turn, by_cat = defaultdict(list), defaultdict(list)
    for r in rows:
        if r["rating"] is not None:
            by_turn[r["turn"]].append(r["rating"])
            by_cat[r["category"]].append(r["rating"])
    rated = [r["rating"] for r in rows if r["rating"] is not None]
    summary = {
        "score": _mean(rated),
        "by_turn": {f"turn{t}": _mean(v) for t, v in sorted(by_turn.items())},
        "by_category": {c: _mean(v) for c, v in sorted(by_cat.items())},
        "penalized": sum(r["penalized"] for r in rows),
        "errors": sum(r["rating"] is None for r in rows),
        "n": len(rows),
    }
    return summary, rows


def judge_pairwise(
    judge: Any,
    questions: Sequence[Question],
    answers_1: Sequence[Sequence[str]],
    answers_2: Sequence[Sequence[str]],
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """System 1 vs system 2 on turns 1 and 2 of every question, each game in both orders.

    Comparisons whose verdict did not parse twice are ``errors``: counted, and left out of wins, ties,
    losses and both win rates (whose denominator is ``n - errors``).
    """
    from bayling.evaluate.judge import grade_pair

    jobs = [
        (q, a1, a2, t)
        for q, a1, a2 in zip(questions, answers_1, answers_2, strict=True)
        for t in range(min(2, len(q.turns)))
    ]
    res = judge.map(
        lambda j: grade_pair(judge, j[0].turns, j[1], j[2], j[3], j[0].lang, j[0].refs or None), jobs, progress
    )
    rows = [
        {"id": q.id, "category": q.category, "turn": t + 1, **r} for (q, _, _, t), r in zip(jobs, res, strict=True)
    ]
    wins = sum(r["winner"] == "1" for r in rows)
    losses = sum(r["winner"] == "2" for r in rows)
    errors = sum(r["winner"] == "error" for r in rows)
    ties = len(rows) - wins - losses - errors
    decided = len(rows) - errors
    summary = {
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "errors": errors,
        "win_rate": round(100.0 * wins / decided, 2) if decided else None,
        "win_rate_adjusted": round(100.0 * (wins + 0.5 * ties) / decided, 2) if decided else None,
        "inconsistent": sum(r["reason"] == "inconsistent" for r in rows),
        "n": len(rows),
    }
    return summary, rows
