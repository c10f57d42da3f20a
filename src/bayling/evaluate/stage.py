"""The evaluation stage: score the base and the tuned model, then write metrics, table and report.

Run as::

    bayling eval configs/quickstart.yaml                 # stage of a run (base-fewshot vs tuned)
    bayling eval run configs/eval/flores_grid.yaml       # eval-only: any models, any parts

A pipeline run compares the base model prompted few-shot (``base-fewshot``; ``eval.base_prompts`` can add
``base-chat``) with the tuned model prompted in chat (``tuned``); see :mod:`bayling.evaluate.fewshot`.
Per system, each part (translation, benchmarks, open-ended answers, interactive) is cached under
``OUT/<system>/`` with a fingerprint of the whole ``eval`` section minus the fields that cannot change
it, plus the weights, the test data and the system's prompt (:mod:`bayling.evaluate.cache`), so
re-running after a new training run re-scores only the tuned model and adding a benchmark never
re-translates. Judge verdicts have their own cache. Greedy decoding (and fixed seeds) make every score
repeatable: evaluating the same model twice gives identical numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from bayling.config import to_dict
from bayling.digest import digest
from bayling.engines import Engine
from bayling.errors import DataError
from bayling.evaluate.cache import cached_part, copy_from_memo, hypotheses_key, part_fingerprint, reuse_memo
from bayling.evaluate.config import EvalConfig, baseline_system, validate
from bayling.evaluate.systems import (
    System,
    engine_dtype,
    make_engine,
    resolve_prompt,
    weights_digest,
)
from bayling.evaluate.translation import grid_directions, parse_direction, translate_and_score
from bayling.io import write_json
from bayling.models import ModelConfig
from bayling.progress import console, progress_bar
from bayling.records import ParallelRecord, load_parallel, read_jsonl_parallel
from bayling.resume import cached, marked
from bayling.testsets import Bitext, load_bitexts


def eval_directions(cfg: EvalConfig) -> list[tuple[str, str]]:
    """The directions to translate: the FLORES grid when ``translation.languages`` is set, else
    ``translation.directions``."""
    tr = cfg.translation
    if tr.languages:
        return grid_directions(tr.languages, tr.pivot)
    return [parse_direction(d) for d in tr.directions]


def _heldout_records(heldout_file: str | Path | None, langs: set[str]) -> list[ParallelRecord]:
    if heldout_file is None or not Path(heldout_file).is_file():
        raise DataError("eval.testset=heldout needs the data stage's heldout.jsonl (run `bayling data` first)")
    return [r for r in read_jsonl_parallel(heldout_file) if all(c in r.texts for c in langs)]


def full_testset(cfg: EvalConfig, heldout_file: str | Path | None = None) -> list[Bitext]:
    """The translation test data, one :class:`Bitext` per direction, not yet cut to ``max_sentences``."""
    directions = eval_directions(cfg)
    if not directions:
        return []
    if cfg.testset == "heldout" or Path(cfg.testset).suffix in (".jsonl", ".json", ".tsv"):
        langs = {c for d in directions for c in d}
        if cfg.testset == "heldout":
            recs = _heldout_records(heldout_file, langs)
        else:
            recs = load_parallel(cfg.testset, sorted(langs))
        return [
            Bitext(cfg.testset, s, t, [r.texts[s] for r in recs], [r.texts[t] for r in recs], [r.id for r in recs])
            for s, t in directions
        ]
    return load_bitexts(cfg.testset, directions, cfg.data_dir, cfg.flores_dir)


def load_testset(cfg: EvalConfig, heldout_file: str | Path | None = None) -> list[Bitext]:
    """The translation test data, one :class:`Bitext` per direction, cut to ``max_sentences``."""
    return [b.head(cfg.max_sentences) for b in full_testset(cfg, heldout_file)]


def _interactive_records(cfg: EvalConfig, heldout_file: str | Path | None, src: str, tgt: str) -> list[ParallelRecord]:
    from bayling.languages import get_language
    from bayling.records import dataset_dir, read_columns

    third = get_language(cfg.interactive.third_language).code
    if cfg.testset == "heldout":
        recs = _heldout_records(heldout_file, {src, tgt})
    else:
        codes = sorted({src, tgt, third})
        cols = read_columns(dataset_dir("flores200", cfg.data_dir, cfg.flores_dir), codes)
        n = len(cols[codes[0]])
        recs = [ParallelRecord(f"flores200-devtest-{i + 1}", {c: cols[c][i] for c in codes}) for i in range(n)]
    return recs[: cfg.interactive.limit] if cfg.interactive.limit > 0 else recs


class _Lazy:
    """Builds the system's engine on first use, so a fully cached system never loads its model."""

    def __init__(self, factory: Callable[[], Engine]) -> None:
        self.factory: Callable[[], Engine] = factory
        self.engine: Engine | None = None

    def get(self) -> Engine:
        if self.engine is None:
            self.engine = self.factory()
        return self.engine


@dataclass
class _Run:
    """What every system of one evaluation shares: test data, prompts, loaded COMET models, part memo."""

    bitexts: list[Bitext]
    heldout_file: str | Path | None
    prompts: dict[str, dict[str, Any]]
    demos: dict[int, dict[str, list[tuple[str, str]]]] | None
    """Few-shot demonstrations per draw: ``{seed: {direction: [(source, target)]}}``."""
    spm: Path | None
    comet: Any
    memo: dict[str, Path]
    """Fingerprint -> folder of each part computed in this run or found in ``eval.reuse_from``."""
    reused: dict[str, str] = field(default_factory=dict)
    """``{part folder: folder it was copied from}``."""


def _file_key(p: Path | None) -> Any:
    return None if p is None else [str(p), p.stat().st_size, p.stat().st_mtime_ns]


def _run_system(cfg: EvalConfig, model: ModelConfig, system: System, sys_dir: Path, run: _Run) -> dict[str, Any]:
    """Every configured part for one system; returns ``{"translation": ..., "benchmarks": ..., ...}``."""
    from bayling.evaluate import part_runners

    lazy = _Lazy(lambda: make_engine(system, cfg, model))
    weights = {
        "model": to_dict(model),
        "weights": weights_digest(system),  # an adapter by content: a copy elsewhere reuses its passes
        "adapter": system.adapter is not None,
        "dtype": engine_dtype(cfg, model),  # what it computes in (float32 on CPU): outputs depend on it
    }
    out: dict[str, Any] = {}

    # translation keeps the foundation's layout: OUT/<system>/scores.json + fingerprint + <direction>.jsonl; a
    # few-shot system drawn with several seeds has that layout per draw under OUT/<system>/seed-<s>/
    prompt = run.prompts.get(system.name, {})
    draws = run.demos if prompt.get("prompt") == "fewshot" else None
    if draws is None:
        res = _translation(cfg, system, sys_dir, run, weights, lazy, None, system.name, prompt)
        if res is not None:
            out["translation"] = res
    else:
        per_seed = {}
        for seed, demos in draws.items():
            seed_dir, label = sys_dir, system.name
            if len(draws) > 1:
                seed_dir, label = sys_dir / f"seed-{seed}", f"{system.name}, demonstrations seed {seed}"
            res = _translation(cfg, system, seed_dir, run, weights, lazy, demos, label, _draw_prompt(prompt, seed))
            if res is not None:
                per_seed[seed] = res
        if len(per_seed) == 1 and len(draws) == 1:
            out["translation"] = next(iter(per_seed.values()))
        elif per_seed:
            from bayling.evaluate.fewshot import mean_over_seeds

            out["translation"] = mean_over_seeds(per_seed)
            mean_file = sys_dir / "scores.json"
            if not mean_file.is_file() or json.loads(mean_file.read_text(encoding="utf-8")) != out["translation"]:
                write_json(mean_file, out["translation"])  # a cached rerun leaves the file alone
            (sys_dir / "fingerprint").unlink(missing_ok=True)  # never taken for a cached single draw

    def part(name: str, label: str, compute: Callable[[Path], Any], **inputs: Any) -> None:
        """``out[name]``: the part computed into ``sys_dir/name``, or its cached result; ``inputs`` join its
        fingerprint."""
        part_dir = sys_dir / name
        fp = part_fingerprint(cfg, name, **weights, **inputs)
        out[name] = cached_part(
            part_dir, fp, f"{system.name} {label}", lambda: compute(part_dir), run.memo, run.reused
        )

    if cfg.benchmarks.tasks:
        part("benchmarks", "benchmarks", lambda d: part_runners.run_benchmarks(cfg, lazy.get, d))
    if cfg.open_ended.sets:
        part("open_ended", "open-ended answers", lambda d: part_runners.answer_open_ended(cfg, lazy.get, d))
    if cfg.interactive.tasks:
        heldout = Path(run.heldout_file) if run.heldout_file and Path(run.heldout_file).is_file() else None
        part(
            "interactive",
            "interactive",
            lambda d: part_runners.run_interactive(
                cfg, lazy.get, d, lambda s, t: _interactive_records(cfg, run.heldout_file, s, t)
            ),
            heldout=heldout and digest(heldout.read_text("utf-8")),
        )
    if cfg.perplexity.languages:
        from bayling.evaluate.perplexity import texts_by_language

        texts = texts_by_language(cfg, run.heldout_file)
        part(
            "perplexity",
            "perplexity",
            lambda d: part_runners.run_perplexity(lazy.get, texts, cfg.batch_size, d),
            texts=digest(texts),
        )
    return out


def decoding_record(cfg: EvalConfig) -> dict[str, Any]:
    """How every translation was decoded, for ``metrics.json`` and the table's caption: greedy, the token limit
    rule, and whether loops were written out (only the transformers engine does; others decode every token)."""
    tr = cfg.translation
    scale, offset = tr.max_new_tokens_per_source_token, tr.max_new_tokens_offset
    limit = (
        f"min({cfg.max_new_tokens}, {scale:g} x source tokens + {offset})" if scale > 0 else str(cfg.max_new_tokens)
    )
    return {
        "greedy": True,
        "engine": cfg.engine,
        "limit": limit,
        "loop_span": tr.loop_span if cfg.engine == "transformers" else 0,
    }


def decoding_text(rec: dict[str, Any]) -> str:
    """One caption line for :func:`decoding_record`."""
    loops = (
        f"; a loop over {rec['loop_span']} tokens is written out to the limit (eval.translation.loop_span)"
        if rec.get("loop_span")
        else ""
    )
    return f"greedy decoding ({rec['engine']}), at most {rec['limit']} new tokens{loops}"


def _draw_prompt(prompt: dict[str, Any], seed: int) -> dict[str, Any]:
    """The prompt record of one demonstration draw, as its cache key sees it: the draw's own demonstration ids,
    not the other draws' (adding a seed re-translates that draw only). A single draw keeps the whole record, so
    its key is the one a single-draw evaluation always had."""
    if "demos_by_seed" not in prompt:
        return prompt
    rest = {k: v for k, v in prompt.items() if k not in ("seeds", "demos_by_seed")}
    return rest | {"demos": prompt["demos_by_seed"][str(seed)]}


def _translation(
    cfg: EvalConfig,
    system: System,
    out_dir: Path,
    run: _Run,
    weights: dict[str, Any],
    lazy: _Lazy,
    fewshot: dict[str, list[tuple[str, str]]] | None,
    label: str,
    prompt: dict[str, Any],
) -> dict[str, Any] | None:
    """One translation pass of ``system`` (one demonstration draw of a few-shot system) into ``out_dir``, or its
    cached scores; None when there is nothing to translate and nothing cached. ``prompt`` is the prompt record
    of this pass (:func:`_draw_prompt`), part of its key."""
    bitexts = run.bitexts
    fp = part_fingerprint(
        cfg,
        "translation",
        **weights,
        data=[[b.key, b.ids, b.sources, b.refs] for b in bitexts],
        prompt=prompt,
        demos=fewshot,
        spm=_file_key(run.spm),
    )
    scores, marker = out_dir / "scores.json", out_dir / "fingerprint"

    def translate() -> dict[str, Any]:
        with progress_bar(f"translating ({label})", sum(len(b.sources) for b in bitexts)) as advance:
            return translate_and_score(
                lazy.get,
                bitexts,
                out_dir,
                cfg.max_new_tokens,
                cfg.translation.metrics,
                advance,
                cfg.translation.off_target,
                cfg.translation.comet_model,
                cfg.translation.cometkiwi_model,
                cfg.seed,
                journal_tag=hypotheses_key(cfg, **weights, prompt=prompt, demos=fewshot),
                fewshot=fewshot,
                bleu_tokenize=cfg.translation.bleu_tokenize,
                spm=run.spm,
                comet=run.comet,
                length_rule=(cfg.translation.max_new_tokens_per_source_token, cfg.translation.max_new_tokens_offset),
                loop_span=cfg.translation.loop_span,
                group_size=max(64, 4 * cfg.batch_size),  # rows enough to keep the engine's batch full
            )

    def unchanged() -> None:
        console.print(f"[dim]eval: {label} translation unchanged, using cached scores[/dim]")

    if bitexts:
        copy_from_memo(out_dir, fp, f"{label} translation", run.memo, run.reused, subfolders=False)
    if bitexts or (scores.is_file() and marked(marker, fp) is not None):
        result = cached(scores, marker, fp, translate, unchanged)
        run.memo.setdefault(fp, out_dir)
        return result
    return None


def pipeline_systems(
    model: ModelConfig, adapter: str | Path | None, compare_base: bool, base_prompts: list[str] | None = None
) -> dict[str, System]:
    """``base-<prompt>`` per base prompt (unless only the tuned model is wanted) and ``tuned`` (chat) when the
    train stage left an adapter."""
    systems = {}
    if compare_base or adapter is None:
        for p in base_prompts or ["fewshot"]:
            base = System("base", model.name_or_path, gguf_file=model.gguf_file, prompt=p)
            kind = resolve_prompt(base)
            systems[f"base-{kind}"] = replace(base, name=f"base-{kind}", prompt=kind)
    if adapter is not None:
        systems["tuned"] = System("tuned", model.name_or_path, str(adapter), model.gguf_file, prompt="chat")
    return systems


def _prompts(
    cfg: EvalConfig,
    model: ModelConfig,
    systems: dict[str, System],
    full: list[Bitext],
    bitexts: list[Bitext],
    heldout_file: Any,
) -> tuple[dict[str, dict[str, Any]], dict[int, dict[str, list[tuple[str, str]]]] | None]:
    """How each system is prompted (``metrics.json``'s ``prompts``) and the few-shot demonstrations of each draw
    (``{seed: {direction: [(source, target)]}}``; one draw when ``fewshot_k`` is 0: there is nothing to draw)."""
    from bayling.evaluate.fewshot import chat_record, demonstrations, fewshot_record, fewshot_seeds, load_pool

    if not bitexts:
        return {}, None
    kinds = {n: resolve_prompt(s, cfg.translation.prompts.get(n, cfg.translation.prompt)) for n, s in systems.items()}
    demos, by_seed, source = None, {0: {b.key: [] for b in bitexts}}, "none (eval.translation.fewshot_k=0)"
    if "fewshot" in kinds.values():
        demos = {0: {b.key: [] for b in bitexts}}
        if cfg.translation.fewshot_k > 0:
            pool = load_pool(cfg, full, heldout_file)
            first = next(n for n, k in kinds.items() if k == "fewshot")
            drawn = {s: demonstrations(cfg, pool, bitexts, first, s) for s in fewshot_seeds(cfg)}
            demos = {s: texts for s, (texts, _) in drawn.items()}
            by_seed = {s: ids for s, (_, ids) in drawn.items()}
            source = pool.source
    k = cfg.translation.fewshot_k
    first_ids = next(iter(by_seed.values()))
    prompts = {
        n: fewshot_record(k, source, first_ids, by_seed) if kind == "fewshot" else chat_record(model.chat_format)
        for n, kind in kinds.items()
    }
    return prompts, demos


@dataclass
class EvalResult:
    """What the eval stage wrote.

    Attributes:
        out_dir: holds ``metrics.json``, ``table.md``, ``report.{json,html}`` and one directory per system.
        metrics: what ``metrics.json`` holds (scores with signatures, prompts, benchmarks...).
        report: the HTML report, when ``eval.report`` is on.
    """

    out_dir: Path
    metrics: dict[str, Any]
    report: Path | None = None

    @property
    def metrics_file(self) -> Path:
        return self.out_dir / "metrics.json"


def evaluate(
    cfg: EvalConfig,
    model: ModelConfig,
    systems: dict[str, System],
    out_dir: str | Path,
    heldout_file: str | Path | None = None,
    name: str = "",
) -> EvalResult:
    """Score ``systems`` (a run's: :func:`pipeline_systems`; an eval-only config's: its own) side by side.

    Args:
        cfg: evaluation settings (``cfg.seed`` None: seed 0, as when called outside a run).
        model: the shared model config (chat format, dtype and device apply to every system).
        systems: the models to compare, by name (``base-fewshot`` / ``tuned`` get the before/after columns).
        out_dir: where ``metrics.json``, ``table.md``, ``report.{json,html}`` and per-system outputs go.
        heldout_file: the data stage's ``heldout.jsonl`` (for ``testset: heldout``).
        name: run name shown in the report.

    Returns:
        The output directory, the metrics also written to ``out_dir/metrics.json`` and the report's path.
    """
    from bayling.evaluate import part_runners
    from bayling.evaluate.metrics import CometModels, spm_model_path

    out = Path(out_dir)
    if cfg.seed is None:  # called without a run: the default seed
        cfg = replace(cfg, seed=0)
    validate(cfg, systems)
    full = full_testset(cfg, heldout_file)
    bitexts = [b.head(cfg.max_sentences) for b in full]
    prompts, demos = _prompts(cfg, model, systems, full, bitexts, heldout_file)
    spm = spm_model_path(cfg.translation.spm_model)
    if bitexts and spm is None and "bleu" in cfg.translation.metrics and cfg.translation.bleu_tokenize == "auto":
        console.print(
            "[dim]eval: no FLORES-200 SentencePiece model, so no spBLEU (bayling eval download flores200-spm)[/dim]"
        )
    run = _Run(bitexts, heldout_file, prompts, demos, spm, CometModels(), reuse_memo(cfg.reuse_from))
    results = {n: _run_system(cfg, model, s, out / n, run) for n, s in systems.items()}
    metrics: dict[str, Any] = {
        "name": name,
        "testset": cfg.testset,
        "sentences_per_direction": max((len(b.sources) for b in bitexts), default=0),
        "directions": [b.key for b in bitexts],
        **({"dropped": {b.key: b.dropped for b in full if b.dropped}} if any(b.dropped for b in full) else {}),
        "systems": {n: r.get("translation", {}) for n, r in results.items()},
        "prompts": prompts,
        "decoding": decoding_record(cfg),
    }
    outside = {k: v for k, v in run.reused.items() if not Path(v).resolve().is_relative_to(out.resolve())}
    if outside:  # parts copied from earlier runs (eval.reuse_from), by the folder they were copied into
        metrics["reused"] = {str(Path(k).relative_to(out)): v for k, v in sorted(outside.items())}
    for part in ("benchmarks", "interactive"):
        if any(part in r for r in results.values()):
            metrics[part] = _by_kind({n: r[part] for n, r in results.items() if part in r}, part)
    if cfg.perplexity.languages:
        metrics["perplexity"] = {n: r["perplexity"] for n, r in results.items()}
    if cfg.open_ended.sets:
        metrics["open_ended"] = part_runners.judge_open_ended(
            cfg, {n: r["open_ended"] for n, r in results.items()}, out
        )
    base = baseline_system(results)
    if metrics["directions"] and "tuned" in results and metrics["systems"]["tuned"]:
        from bayling.evaluate.significance import significance

        if base is not None:
            metrics["significance"] = significance(
                out, metrics, base, cfg.translation.metrics, cfg.translation.bleu_tokenize, spm
            )
        # what the stage after SFT did: tuned against its own SFT (also in a run that leaves the base out)
        if metrics["systems"].get("tuned-sft"):
            metrics["significance_stages"] = significance(
                out, metrics, "tuned-sft", cfg.translation.metrics, cfg.translation.bleu_tokenize, spm
            )
    write_json(out / "metrics.json", metrics)
    if metrics["directions"]:
        table, markdown = comparison_table(metrics, cfg.translation.metrics)
        (out / "table.md").write_text(markdown, encoding="utf-8")
        console.print(table)
    page = None
    if cfg.report:
        from bayling.evaluate.report import write_report

        extra = {k: metrics[k] for k in ("benchmarks", "open_ended", "interactive") if k in metrics}
        _, page = write_report(out, metrics, extra, name=name)
        console.print(f"report: {page}")
    return EvalResult(out, metrics, Path(page) if page else None)


def _by_kind(per_system: dict[str, dict[str, Any]], part: str) -> dict[str, Any]:
    """Benchmarks stay ``{system: {benchmark: {lang: summary}}}``; interactive becomes ``{kind: {system: ...}}``."""
    if part == "benchmarks":
        return {n: r["summary"] for n, r in per_system.items()}
    kinds = sorted({k for r in per_system.values() for k in r})
    return {k: {n: r[k] for n, r in per_system.items() if k in r} for k in kinds}


def comparison_table(metrics: dict[str, Any], metric_names: list[str]) -> tuple[Table, str]:
    """A before/after table (rich and Markdown): one column per metric and system, ``Δ`` = tuned - baseline
    (``base`` or ``base-fewshot``) with its 95 % paired bootstrap interval (``metrics.json``'s ``significance``),
    then the off-target and LID-unknown shares per system; under it the prompt each system got and the counts of
    (significant) wins and losses. A few-shot base drawn with several seeds shows its mean and the draws' min–max.
    ``n/a``: BLEU does not apply."""
    from bayling.evaluate.fewshot import prompt_summary
    from bayling.evaluate.significance import counts_text, interval_text

    systems = list(metrics["systems"])
    base = baseline_system(systems)
    delta = base is not None and "tuned" in systems
    sig = metrics.get("significance") or {}
    labels = {"bleu": "BLEU", "chrf": "chrF++", "ter": "TER"}
    dirs = list(metrics["directions"])
    rates = [s for s in systems if any("off_target" in metrics["systems"][s].get(d, {}) for d in dirs)]
    title = f"Translation on {metrics['testset']} ({metrics['sentences_per_direction']} sentences each)"
    table = Table(title=title)
    header = ["direction"]
    table.add_column("direction", no_wrap=True, min_width=17)

    def column(name: str) -> None:
        table.add_column(escape(name), justify="right")
        header.append(name)

    for m in metric_names:
        for s in systems:
            column(f"{labels[m]} {s}")
        if delta:
            column(f"Δ {labels[m]} [95 % CI]")
    for s in rates:
        column(f"off-target / unknown % {s}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def average(vals: list[float | None]) -> float | None:
        vals = [v for v in vals if v is not None]
        return sum(vals) / len(vals) if vals else None

    def seed_averages(s: str, m: str) -> list[float | None]:
        """The average over directions of each demonstration draw (empty for a single-draw system)."""
        per = [metrics["systems"][s][x] for x in dirs]
        seeds = per[0].get("seeds") if per else None
        if not seeds:
            return []
        return [average([p["seeds"][k][m]["score"] for p in per]) for k in seeds]

    def score(s: str, d: str, m: str) -> tuple[float | None, str]:
        """The score (the mean over draws) and its draws' ``(min–max)`` when there are several."""
        if d != "average":
            v = metrics["systems"][s][d][m]
            spread = f" ({v['min']:.1f}–{v['max']:.1f})" if v.get("score") is not None and "min" in v else ""
            return v["score"], spread
        mean = average([metrics["systems"][s][x][m]["score"] for x in dirs])
        draws = seed_averages(s, m)
        ok = mean is not None and draws and None not in draws
        return mean, f" ({min(draws):.1f}–{max(draws):.1f})" if ok else ""  # type: ignore[type-var]

    def rate(s: str, d: str) -> str:
        rows = [metrics["systems"][s][x] for x in (dirs if d == "average" else [d])]
        off, unk = average([r.get("off_target") for r in rows]), average([r.get("unknown") for r in rows])
        return "n/a" if off is None else f"{off:.1f} / {'n/a' if unk is None else f'{unk:.1f}'}"

    for d in [*dirs, "average"]:
        cells = [d]
        for m in metric_names:
            vals = {s: score(s, d, m) for s in systems}
            cells += ["n/a" if v is None else f"{v:.1f}{spread}" for v, spread in vals.values()]
            if delta:
                b, t = vals[base][0], vals["tuned"][0]
                iv = (sig.get("average") if d == "average" else sig.get("directions", {}).get(d, {})) or {}
                cells.append("n/a" if b is None or t is None else interval_text(iv.get(m), t - b))
        cells += [rate(s, d) for s in rates]
        table.add_row(*map(escape, cells))  # "[low, high]" is text, not rich markup
        lines.append("| " + " | ".join(cells) + " |")
    prompts = metrics.get("prompts", {})
    notes = [f"{s}: {prompt_summary(prompts[s])}" for s in systems if s in prompts]
    if "decoding" in metrics:
        notes.append(decoding_text(metrics["decoding"]))
    if any("min" in (metrics["systems"][s][d].get(m) or {}) for s in systems for d in dirs for m in metric_names):
        notes.append("(a–b): the lowest and highest of the demonstration draws; the score is their mean")
    if delta:
        notes.append(f"Δ = tuned - {base}")
        if sig:
            notes.append(f"[low, high]: {sig['method']}; *: significant")
            notes += [counts_text(c, labels[m], base) for m, c in sig.get("counts", {}).items() if m in labels]
    stages = metrics.get("significance_stages") or {}
    for m, c in stages.get("counts", {}).items():
        if m in labels:
            avg = interval_text(stages["average"].get(m))
            notes.append(f"{counts_text(c, labels[m], 'tuned-sft')}; average Δ {avg}")
    if rates:
        notes.append(
            "off-target / unknown: outputs language ID puts in another language / cannot tell (too short, mixed)"
        )
    if any(
        metrics["systems"][s][d].get(m, {}).get("score", 0) is None
        for s in systems
        for d in dirs
        for m in metric_names
    ):
        notes.append("n/a: no BLEU for a script written without spaces unless spBLEU is available (see chrF++)")
    table.caption = escape("\n".join(notes))
    return table, "\n".join(lines) + "\n" + "".join(f"\n- {n}" for n in notes) + ("\n" if notes else "")
