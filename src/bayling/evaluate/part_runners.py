"""The non-translation parts of an evaluation, one function each, called by :mod:`bayling.evaluate.stage`.

Each takes the config, a callable returning the system's engine (built lazily, so cached parts
never load a model) and the part's output directory, writes per-item JSONL beside its summary and
returns the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bayling.engines import Engine
from bayling.evaluate.config import EvalConfig
from bayling.io import write_jsonl
from bayling.progress import console, progress_bar

EngineFn = Callable[[], Engine]


def run_benchmarks(cfg: EvalConfig, engine: EngineFn, out_dir: Path) -> dict[str, Any]:
    """Each benchmark's summary per language (its registry entry says how it is read and scored)."""
    from bayling.evaluate.benchmarks import get_benchmark, load_benchmark
    from bayling.evaluate.mc import SCORERS

    bc = cfg.benchmarks
    summary: dict[str, dict[str, Any]] = {}
    for name in bc.tasks:
        score, total = SCORERS[get_benchmark(name).scorer]
        by_lang = load_benchmark(name, cfg.data_dir, bc.languages or None, bc.limit)
        summary[name] = {}
        for lang, items in by_lang.items():
            with progress_bar(f"{name} {lang}", total(items)) as advance:
                s, rows = score(engine(), items, cfg, advance)
            summary[name][lang] = s
            write_jsonl(out_dir / f"{name}.{lang}.jsonl", rows)
    return {"summary": summary}


def answer_open_ended(cfg: EvalConfig, engine: EngineFn, out_dir: Path) -> dict[str, Any]:
    """Answers to every open-ended set, turn by turn; ``{set: [question + answers]}``."""
    from bayling.evaluate.openended import answer_questions, load_questions

    oc = cfg.open_ended
    out: dict[str, Any] = {}
    for name in oc.sets:
        qs = load_questions(name, cfg.data_dir, oc.limit)
        with progress_bar(f"answering {name}", sum(len(q.turns) for q in qs)) as advance:
            answers = answer_questions(engine(), qs, oc.max_new_tokens, advance, cfg.seed)
        rows = [
            {"id": q.id, "category": q.category, "lang": q.lang, "turns": q.turns, "refs": q.refs, "answers": a}
            for q, a in zip(qs, answers, strict=True)
        ]
        write_jsonl(out_dir / f"{name}.jsonl", rows)
        out[name] = rows
    return out


def judge_open_ended(cfg: EvalConfig, answers: dict[str, dict[str, Any]], out: Path) -> dict[str, Any]:
    """Grade every system's answers (single) and tuned vs base (pairwise) with the configured judge."""
    from bayling.evaluate.judge import Judge
    from bayling.evaluate.openended import Question, judge_pairwise, judge_single
    from bayling.records import data_root

    counts = {s: {k: len(v) for k, v in per.items()} for s, per in answers.items()}
    jc = cfg.open_ended.judge
    if jc is None:
        console.print("[dim]eval: no judge configured; open-ended answers saved, not graded[/dim]")
        return {"answered": counts}
    prompts_file = jc.prompts
    root = data_root(cfg.data_dir)
    if prompts_file is None and root is not None and (root / "mt_bench" / "judge_prompts.jsonl").is_file():
        prompts_file = str(root / "mt_bench" / "judge_prompts.jsonl")  # FastChat's own wording when available
    from dataclasses import replace

    judge = Judge(replace(jc, prompts=prompts_file), jc.cache or out / "judge_cache.jsonl")
    result: dict[str, Any] = {"answered": counts, "judge": jc.model}
    jdir = out / "judge"

    def questions(rows: list[dict[str, Any]]) -> list[Question]:
        return [Question(r["id"], r["category"], r["turns"], r["lang"], r["refs"]) for r in rows]

    if jc.mode in ("single", "both"):
        result["single"] = {}
        for s, per in answers.items():
            result["single"][s] = {}
            for name, rows in per.items():
                with progress_bar(f"judging {s} {name}", sum(min(2, len(r["turns"])) for r in rows)) as adv:
                    summ, jrows = judge_single(judge, questions(rows), [r["answers"] for r in rows], adv)
                result["single"][s][name] = summ
                write_jsonl(jdir / f"single.{s}.{name}.jsonl", jrows)
    if jc.mode in ("pairwise", "both"):
        from bayling.evaluate.config import baseline_system

        base = baseline_system(answers)  # validate() made sure 'tuned' and a base are both there
        result["pairwise"] = {}
        for name, rows in answers["tuned"].items():
            base_rows = answers[base][name]
            with progress_bar(f"judging tuned vs base {name}", 2 * len(rows)) as adv:
                summ, jrows = judge_pairwise(
                    judge, questions(rows), [r["answers"] for r in rows], [r["answers"] for r in base_rows], adv
                )
            result["pairwise"][name] = summ
            write_jsonl(jdir / f"pairwise.{name}.jsonl", jrows)
    result["judge_requests"] = judge.requests
    return result


def run_interactive(
    cfg: EvalConfig, engine: EngineFn, out_dir: Path, records: Callable[[str, str], list]
) -> dict[str, Any]:
    """Refinement dialogues (per-turn scores) and constrained translation (hit-rate) per direction."""
    from bayling.evaluate.interactive import constrained_translation, load_constrained, refinement_dialogues
    from bayling.evaluate.translation import parse_direction
    from bayling.languages import get_language

    ic = cfg.interactive
    out: dict[str, Any] = {}
    if "refinement" in ic.tasks:
        out["refinement"] = {}
        third = get_language(ic.third_language).code
        for d in ic.directions:
            s, t = parse_direction(d)
            recs = records(s, t)
            with progress_bar(f"dialogues {s}-{t}", len(recs) * len(ic.turns)) as adv:
                summ, rows = refinement_dialogues(
                    engine(), recs, s, t, ic.turns, third, cfg.max_new_tokens, adv, cfg.seed
                )
            out["refinement"][f"{s}-{t}"] = summ
            write_jsonl(out_dir / f"refinement.{s}-{t}.jsonl", rows)
    if "constrained" in ic.tasks:
        out["constrained"] = {}
        for key, items in load_constrained(cfg.data_dir, ic.limit).items():
            s, t = key.split("-")
            with progress_bar(f"constrained {key}", len(items)) as adv:
                summ, rows = constrained_translation(engine(), items, s, t, cfg.max_new_tokens, adv, cfg.seed)
            out["constrained"][key] = summ
            write_jsonl(out_dir / f"constrained.{key}.jsonl", rows)
    return out


def run_perplexity(engine: EngineFn, texts: dict[str, list[str]], batch_size: int, out_dir: Path) -> dict[str, Any]:
    """Log-likelihood of held-out text per language (``{lang: summary}``); per-text rows in ``LANG.jsonl``."""
    from bayling.evaluate.perplexity import score_perplexity

    out: dict[str, Any] = {}
    for lang, lang_texts in texts.items():
        with progress_bar(f"log-likelihood {lang}", len(lang_texts)) as advance:
            out[lang], rows = score_perplexity(engine(), lang_texts, batch_size, advance)
        write_jsonl(out_dir / f"{lang}.jsonl", rows)
    return out
