"""Teacher-LLM jobs: what to ask, how to check the answers, how answers become examples.

Two job kinds (``data.teacher.tasks``, used round-robin):

* ``crosslingual_instruction`` (BayLing 2): a seed instruction (en/zh) plus "(Answer in B.)" is translated
  by the teacher into language A, then the teacher answers that A-language request in B. The example is
  ``[user: instruction in A, assistant: answer in B]``.
* ``interactive`` (BayLing 1): a template dialogue from a parallel record whose follow-ups include turns
  only a model can answer (polish, register changes without a reference variant, explanations); the
  teacher writes those replies one after the other, seeing the dialogue so far.

Each response is validated: non-empty, no preamble such as "Here is the translation:", language ID of the
expected language, and length (a "shorter" request must be shorter). Invalid responses are journaled as
such and their job is dropped and counted, so a re-run makes the same decision without asking again.
Jobs are drawn from ``(seed, job index)``, so the job list, and with a deterministic teacher the output,
is the same on every run.
"""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path
from typing import Any

from bayling.data.config import DataConfig
from bayling.data.filters import effective_length
from bayling.data.interactive import Dialogue, interactive_dialogue
from bayling.data.teacher import BudgetReached, Teacher, TeacherFailed, TeacherJournal
from bayling.errors import ConfigError, DataError
from bayling.io import write_jsonl
from bayling.progress import progress_bar
from bayling.prompts import lang_name, load_templates
from bayling.records import ParallelRecord

KINDS = ("crosslingual_instruction", "interactive")
_PREAMBLE = re.compile(r"^[^\n]{0,80}[:：]\s*\n")


class Validator:
    """Builds ``validate(text) -> reason | None`` closures for the expected language and length."""

    def __init__(self, cfg: DataConfig) -> None:
        from bayling.lid import LanguageID

        self.max_chars = cfg.filters.max_chars
        self.lid = LanguageID(cfg.filters.lid_backend, cfg.filters.lid_min_chars) if cfg.filters.lid else None

    def __call__(self, lang: str | None, plain: bool = False, length: str | None = None, prev: str | None = None):
        def validate(text: str) -> str | None:
            t = text.strip()
            if not t:
                return "empty"
            if len(t) > self.max_chars:
                return "too_long"
            if plain and _PREAMBLE.match(t):
                return "preamble"
            if lang and self.lid is not None and self.lid.check(t, lang) is False:
                return "wrong_language"
            if prev is not None and length == "shorter" and effective_length(t) >= effective_length(prev):
                return "not_shorter"
            if (
                prev is not None
                and length == "similar"
                and not 0.5 <= effective_length(t) / max(1.0, effective_length(prev)) <= 2
            ):
                return "length"
            return None

        return validate


async def _crosslingual(
    teacher: Teacher, check: Validator, t: dict[str, Any], seed_rec: dict[str, Any], a: str, b: str, job: str
) -> tuple[Dialogue, dict[str, Any]] | str:
    system = {"role": "system", "content": t["system"]}
    instruction = next(m["content"] for m in seed_rec["messages"] if m["role"] == "user")
    request = f"{instruction}\n\n(Answer in {lang_name(b)}.)"
    # Translate unless all of it is English already (else the English "(Answer in B.)" would sit in an A turn).
    if (a, seed_rec["lang"]) != ("eng_Latn", "eng_Latn"):
        ask = t["translate_instruction"].format(tgt=lang_name(a), text=request)
        r1 = await teacher.ask([system, {"role": "user", "content": ask}], check(a, plain=True), job)
        if r1["status"] != "ok":
            return r1["reason"]
        request = r1["text"].strip()
    r2 = await teacher.ask([system, {"role": "user", "content": request}], check(b), job)
    if r2["status"] != "ok":
        return r2["reason"]
    d = Dialogue(
        [{"role": "user", "content": request}, {"role": "assistant", "content": r2["text"].strip()}],
        ["crosslingual_instruction"],
        [{"lang": b}],
    )
    return d, {"task": "teacher", "src": a, "tgt": b, "instruction_lang": a, "source_id": seed_rec["id"]}


async def _interactive(teacher: Teacher, check: Validator, t: dict[str, Any], d: Dialogue, job: str) -> Dialogue | str:
    msgs = d.messages
    reply_i = -1
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        reply_i += 1
        if m["content"] is not None:
            continue
        rep = d.replies[reply_i]
        prev = next(x["content"] for x in reversed(msgs[:i]) if x["role"] == "assistant")
        system = {"role": "system", "content": f"{t['system']}\n{rep['teacher']}"}
        plain = rep.get("length") is not None
        r = await teacher.ask([system, *msgs[:i]], check(rep["lang"], plain, rep.get("length"), prev), job)
        if r["status"] != "ok":
            return r["reason"]
        m["content"] = r["text"].strip()
    return d


def _jobs(
    cfg: DataConfig,
    seed: int,
    records: list[ParallelRecord],
    seeds: list[dict[str, Any]],
    langs: list[str],
    directions: list[tuple[str, str]],
    ils: list[str],
    templates: dict[str, Any],
) -> list[tuple[str, Any]]:
    kinds = cfg.teacher.tasks
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ConfigError(f"data.teacher.tasks: unknown {bad}; use {', '.join(KINDS)}")
    jobs: list[tuple[str, Any]] = []
    n_seed = 0
    for i in range(cfg.teacher.examples):
        rng = random.Random(f"{seed}:teacher:{i}")
        kind = kinds[i % len(kinds)]
        if kind == "crosslingual_instruction":
            if n_seed >= len(seeds) or len(langs) < 2:
                jobs.append(("skip", "no_seed_instruction"))
                continue
            a, b = rng.sample(langs, 2)
            jobs.append((kind, (seeds[n_seed], a, b)))
            n_seed += 1
        else:
            rec = records[rng.randrange(len(records))]
            src, tgt = rng.choice(directions)
            il = rng.choice(ils)
            d = None
            for _ in range(8):  # a dialogue with at least one teacher-written turn
                cand = interactive_dialogue(
                    rec, src, tgt, il, templates, rng, max(1, cfg.max_followups), teacher=True, min_followups=1
                )
                if any(m["content"] is None for m in cand.messages):
                    d = cand
                    break
            jobs.append((kind, (d, rec, src, tgt, il)) if d else ("skip", "no_teacher_turn"))
    return jobs


def teacher_examples(
    cfg: DataConfig,
    out: Path,
    seed: int,
    records: list[ParallelRecord],
    seeds: list[dict[str, Any]],
    langs: list[str],
    directions: list[tuple[str, str]],
    ils: list[str],
) -> tuple[list[tuple[Dialogue, dict[str, Any], str]], dict[str, Any]]:
    """Run every teacher job (resuming from the journal) and return ``(dialogue, meta, uid)`` in job order.

    Also writes ``OUT/teacher/teacher.jsonl``. Raises :class:`DataError` when requests failed for good
    (network, server errors past the retries): the journal keeps every finished one, so re-running resumes.
    """
    tc = cfg.teacher
    templates = load_templates(cfg.templates)
    t = templates["teacher"]
    jobs = _jobs(cfg, seed, records, seeds, langs, directions, ils, templates)
    journal = TeacherJournal(tc.journal or out / "teacher" / "journal.jsonl")
    check = Validator(cfg)
    outcomes: list[Any] = [None] * len(jobs)

    async def run_all() -> None:
        teacher = Teacher(tc, journal)
        with progress_bar("teacher", len(jobs)) as advance:

            async def one(i: int, kind: str, arg: Any) -> None:
                try:
                    if kind == "crosslingual_instruction":
                        outcomes[i] = await _crosslingual(teacher, check, t, *arg, job=f"job-{i}")
                    elif kind == "interactive":
                        d, rec, src, tgt, il = arg
                        res = await _interactive(teacher, check, t, d, f"job-{i}")
                        outcomes[i] = (
                            res
                            if isinstance(res, str)
                            else (
                                res,
                                {
                                    "task": "teacher",
                                    "src": src,
                                    "tgt": tgt,
                                    "instruction_lang": il,
                                    "source_id": rec.id,
                                },
                            )
                        )
                    else:
                        outcomes[i] = arg
                except (TeacherFailed, BudgetReached) as e:
                    outcomes[i] = e
                finally:
                    advance(1)

            await asyncio.gather(*(one(i, k, a) for i, (k, a) in enumerate(jobs)))
        info["requests_sent"] = teacher.sent
        info["retries"] = teacher.retries

    info: dict[str, Any] = {"jobs": len(jobs), "journal": str(journal.path), "resumed_from_journal": journal.loaded}
    asyncio.run(run_all())
    results, dropped, failed = [], {}, []
    for i, o in enumerate(outcomes):
        if isinstance(o, TeacherFailed):
            failed.append(f"job {i}: {o}")
        elif isinstance(o, BudgetReached):
            dropped["budget"] = dropped.get("budget", 0) + 1
        elif isinstance(o, str):
            dropped[o] = dropped.get(o, 0) + 1
        else:
            d, meta = o
            results.append((d, meta, f"teacher-{i}"))
    info.update(
        completed=len(results),
        dropped=dropped,
        failed=len(failed),
        tokens=dict(journal.tokens),
        cost_usd=round(journal.cost(tc), 6),
        journal_entries=len(journal.entries),
    )
    if failed:
        raise DataError(
            f"{len(failed)} teacher job(s) failed ({failed[0]}); finished responses are kept in "
            f"{journal.path}; re-run the same command to resume"
        )
    write_jsonl(
        out / "teacher" / "teacher.jsonl", ({"id": uid, "messages": d.messages, **meta} for d, meta, uid in results)
    )
    return results, info
