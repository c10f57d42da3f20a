"""The evaluation stage: score the base and the tuned model, then write metrics, table and report.

Run as::

    bayling eval configs/quickstart.yaml                 # stage of a run (base vs tuned)
    bayling eval run configs/eval/flores_grid.yaml       # eval-only: any models, any parts

Per system, each part (translation, benchmarks, open-ended answers, interactive) is cached under
``OUT/<system>/`` with a fingerprint of everything that affects it (model weights, test data,
settings), so re-running after a new training run re-scores only the tuned model and adding a
benchmark never re-translates. Judge verdicts have their own cache. Greedy decoding (and fixed
seeds) make every score repeatable: evaluating the same model twice gives identical numbers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

from bayling.config import ModelConfig, to_dict
from bayling.data.io import write_json
from bayling.data.parallel import ParallelRecord, load_parallel, read_jsonl_parallel
from bayling.errors import ConfigError, DataError
from bayling.evaluate.config import EvalConfig
from bayling.evaluate.systems import System, make_engine, weights_digest
from bayling.evaluate.testsets import Bitext, load_bitexts
from bayling.evaluate.translation import grid_directions, parse_direction, translate_and_score
from bayling.progress import console, progress_bar


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def eval_directions(cfg: EvalConfig) -> list[tuple[str, str]]:
    """The directions to translate: the FLORES grid when ``grid_languages`` is set, else ``directions``."""
    if cfg.grid_languages:
        return grid_directions(cfg.grid_languages, cfg.grid_pivot)
    return [parse_direction(d) for d in cfg.directions]


def _heldout_records(heldout_file: str | Path | None, langs: set[str]) -> list[ParallelRecord]:
    if heldout_file is None or not Path(heldout_file).is_file():
        raise DataError("eval.testset=heldout needs the data stage's heldout.jsonl (run `bayling data` first)")
    return [r for r in read_jsonl_parallel(heldout_file) if all(c in r.texts for c in langs)]


def load_testset(cfg: EvalConfig, heldout_file: str | Path | None = None) -> list[Bitext]:
    """The translation test data, one :class:`Bitext` per direction, cut to ``max_sentences``."""
    directions = eval_directions(cfg)
    if not directions:
        return []
    if cfg.testset == "heldout" or Path(cfg.testset).suffix in (".jsonl", ".json", ".tsv"):
        langs = {c for d in directions for c in d}
        if cfg.testset == "heldout":
            recs = _heldout_records(heldout_file, langs)
        else:
            recs = load_parallel(cfg.testset, sorted(langs))
        bitexts = [
            Bitext(cfg.testset, s, t, [r.texts[s] for r in recs], [r.texts[t] for r in recs], [r.id for r in recs])
            for s, t in directions
        ]
    else:
        bitexts = load_bitexts(cfg.testset, directions, cfg.data_dir, cfg.flores_dir)
    return [b.head(cfg.max_sentences) for b in bitexts]


def validate(cfg: EvalConfig, systems: dict[str, System]) -> None:
    """Fail before any model is loaded on what can be checked cheaply (names, modes, model references)."""
    from bayling.engines import ENGINES
    from bayling.evaluate.benchmarks import BENCHMARKS
    from bayling.evaluate.interactive import TURN_TYPES
    from bayling.evaluate.metrics import METRICS
    from bayling.evaluate.openended import OPEN_ENDED
    from bayling.languages import get_language
    from bayling.models import check_model

    checks = [
        ("eval.metrics", cfg.metrics, METRICS),
        ("eval.benchmarks", cfg.benchmarks, BENCHMARKS),
        ("eval.open_ended", cfg.open_ended, OPEN_ENDED),
        ("eval.interactive", cfg.interactive, ("refinement", "constrained")),
        ("eval.interactive_turns", cfg.interactive_turns if cfg.interactive else [], TURN_TYPES),
        ("eval.engine", [cfg.engine], tuple(ENGINES)),
        ("eval.judge.mode", [cfg.judge.mode] if cfg.judge else [], ("single", "pairwise", "both")),
    ]
    for key, values, allowed in checks:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ConfigError(f"{key}: unknown {', '.join(map(str, bad))}; choose from {', '.join(allowed)}")
    if cfg.judge and cfg.judge.mode != "single" and not {"base", "tuned"} <= set(systems):
        raise ConfigError("eval.judge.mode pairwise/both compares 'tuned' with 'base': both systems are needed")
    for d in cfg.interactive_directions if "refinement" in cfg.interactive else []:
        parse_direction(d)
    for c in cfg.perplexity_languages:
        get_language(c)
    for s in systems.values():
        check_model(s.model, s.gguf_file)


def _interactive_records(cfg: EvalConfig, heldout_file: str | Path | None, src: str, tgt: str) -> list[ParallelRecord]:
    from bayling.evaluate.testsets import dataset_dir, read_flores_columns
    from bayling.languages import get_language

    third = get_language(cfg.interactive_third).code
    if cfg.testset == "heldout":
        recs = _heldout_records(heldout_file, {src, tgt})
    else:
        codes = sorted({src, tgt, third})
        cols = read_flores_columns(dataset_dir("flores200", cfg.data_dir, cfg.flores_dir), codes)
        n = len(cols[codes[0]])
        recs = [ParallelRecord(f"flores200-devtest-{i + 1}", {c: cols[c][i] for c in codes}) for i in range(n)]
    return recs[: cfg.interactive_limit] if cfg.interactive_limit > 0 else recs


class _Lazy:
    """Builds the system's engine on first use, so a fully cached system never loads its model."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory, self.engine = factory, None

    def get(self) -> Any:
        if self.engine is None:
            self.engine = self.factory()
        return self.engine


def _cached(part_dir: Path, fp: str, label: str, compute: Callable[[], Any]) -> Any:
    """Return ``part_dir/result.json`` when its fingerprint matches, else compute and store it."""
    res, fpf = part_dir / "result.json", part_dir / "fingerprint"
    if res.is_file() and fpf.is_file() and fpf.read_text() == fp:
        console.print(f"[dim]eval: {label} unchanged, using cached results[/dim]")
        return json.loads(res.read_text(encoding="utf-8"))
    out = compute()
    write_json(res, out)
    fpf.write_text(fp)
    return out


def _run_system(
    cfg: EvalConfig,
    model: ModelConfig,
    system: System,
    bitexts: list[Bitext],
    sys_dir: Path,
    heldout_file: str | Path | None,
) -> dict[str, Any]:
    """Every configured part for one system; returns ``{"translation": ..., "benchmarks": ..., ...}``."""
    from bayling.evaluate import parts

    lazy = _Lazy(lambda: make_engine(system, cfg.engine, model, cfg.batch_size, cfg.engine_options))
    base_fp = {
        "model": to_dict(model),
        "weights": weights_digest(system),
        "engine": cfg.engine,
        "engine_options": cfg.engine_options,
        "seed": cfg.seed,
        "adapter": system.adapter,
    }
    out: dict[str, Any] = {}

    # translation keeps the foundation's layout: OUT/<system>/scores.json + fingerprint + <direction>.jsonl
    fp = _digest(
        {
            **base_fp,
            "data": [[b.key, b.ids, b.sources, b.refs] for b in bitexts],
            **{
                k: getattr(cfg, k)
                for k in ("max_new_tokens", "metrics", "off_target", "comet_model", "cometkiwi_model", "batch_size")
            },
        }
    )
    cached = sys_dir / "scores.json"
    if cached.is_file() and (sys_dir / "fingerprint").is_file() and (sys_dir / "fingerprint").read_text() == fp:
        console.print(f"[dim]eval: {system.name} translation unchanged, using cached scores[/dim]")
        out["translation"] = json.loads(cached.read_text(encoding="utf-8"))
    elif bitexts:
        total = sum(len(b.sources) for b in bitexts)
        with progress_bar(f"translating ({system.name})", total) as advance:
            out["translation"] = translate_and_score(
                lazy.get,
                bitexts,
                sys_dir,
                cfg.max_new_tokens,
                cfg.metrics,
                advance,
                cfg.off_target,
                cfg.comet_model,
                cfg.cometkiwi_model,
                cfg.seed,
                journal_tag=_digest({**base_fp, "max_new_tokens": cfg.max_new_tokens}),
            )
        (sys_dir / "fingerprint").write_text(fp)

    if cfg.benchmarks:
        fp = _digest(
            {
                **base_fp,
                **{
                    k: getattr(cfg, k)
                    for k in (
                        "benchmarks",
                        "benchmark_languages",
                        "benchmark_limit",
                        "mgsm_max_new_tokens",
                        "data_dir",
                        "batch_size",
                    )
                },
            }
        )
        out["benchmarks"] = _cached(
            sys_dir / "benchmarks",
            fp,
            f"{system.name} benchmarks",
            lambda: parts.run_benchmarks(cfg, lazy.get, sys_dir / "benchmarks"),
        )
    if cfg.open_ended:
        fp = _digest(
            {
                **base_fp,
                **{
                    k: getattr(cfg, k)
                    for k in ("open_ended", "open_ended_limit", "open_ended_max_new_tokens", "data_dir")
                },
            }
        )
        out["open_ended"] = _cached(
            sys_dir / "open_ended",
            fp,
            f"{system.name} open-ended answers",
            lambda: parts.answer_open_ended(cfg, lazy.get, sys_dir / "open_ended"),
        )
    if cfg.interactive:
        fp = _digest(
            {
                **base_fp,
                "heldout": str(heldout_file),
                **{
                    k: getattr(cfg, k)
                    for k in (
                        "interactive",
                        "interactive_limit",
                        "interactive_turns",
                        "interactive_directions",
                        "interactive_third",
                        "testset",
                        "data_dir",
                        "max_new_tokens",
                    )
                },
            }
        )
        out["interactive"] = _cached(
            sys_dir / "interactive",
            fp,
            f"{system.name} interactive",
            lambda: parts.run_interactive(
                cfg, lazy.get, sys_dir / "interactive", lambda s, t: _interactive_records(cfg, heldout_file, s, t)
            ),
        )
    if cfg.perplexity_languages:
        from bayling.evaluate.perplexity import texts_by_language

        texts = texts_by_language(cfg, heldout_file)
        fp = _digest({**base_fp, "texts": texts, "batch_size": cfg.batch_size})
        out["perplexity"] = _cached(
            sys_dir / "perplexity",
            fp,
            f"{system.name} perplexity",
            lambda: parts.run_perplexity(lazy.get, texts, cfg.batch_size, sys_dir / "perplexity"),
        )
    return out


def pipeline_systems(model: ModelConfig, adapter: str | Path | None, compare_base: bool) -> dict[str, System]:
    """``base`` (unless only the tuned model is wanted) and ``tuned`` (when the train stage left an adapter)."""
    systems = {}
    if compare_base or adapter is None:
        systems["base"] = System("base", model.name_or_path, gguf_file=model.gguf_file)
    if adapter is not None:
        systems["tuned"] = System("tuned", model.name_or_path, str(adapter), model.gguf_file)
    return systems


def evaluate(
    cfg: EvalConfig,
    model: ModelConfig,
    out_dir: str | Path,
    adapter: str | Path | None = None,
    heldout_file: str | Path | None = None,
    systems: dict[str, System] | None = None,
    name: str = "",
) -> dict[str, Any]:
    """Score the base model (if ``cfg.compare_base``) and the tuned one (if ``adapter``), or ``systems``.

    Args:
        cfg: evaluation settings.
        model: the base model config (chat format, dtype and device apply to every system).
        out_dir: where ``metrics.json``, ``table.md``, ``report.{json,html}`` and per-system outputs go.
        adapter: trained adapter or full-model directory from the train stage.
        heldout_file: the data stage's ``heldout.jsonl`` (for ``testset: heldout``).
        systems: explicit systems to compare instead of base/tuned (eval-only runs).
        name: run name shown in the report.

    Returns:
        The metrics dict also written to ``out_dir/metrics.json``.
    """
    from bayling.evaluate import parts

    out = Path(out_dir)
    systems = systems or pipeline_systems(model, adapter, cfg.compare_base)
    validate(cfg, systems)
    bitexts = load_testset(cfg, heldout_file)
    results = {n: _run_system(cfg, model, s, bitexts, out / n, heldout_file) for n, s in systems.items()}
    metrics: dict[str, Any] = {
        "name": name,
        "testset": cfg.testset,
        "sentences_per_direction": max((len(b.sources) for b in bitexts), default=0),
        "directions": [b.key for b in bitexts],
        "systems": {n: r.get("translation", {}) for n, r in results.items()},
    }
    for part in ("benchmarks", "interactive"):
        if any(part in r for r in results.values()):
            metrics[part] = _by_kind({n: r[part] for n, r in results.items() if part in r}, part)
    if cfg.perplexity_languages:
        metrics["perplexity"] = {n: r["perplexity"] for n, r in results.items()}
    if cfg.open_ended:
        metrics["open_ended"] = parts.judge_open_ended(cfg, {n: r["open_ended"] for n, r in results.items()}, out)
    write_json(out / "metrics.json", metrics)
    if metrics["directions"]:
        table, markdown = comparison_table(metrics, cfg.metrics)
        (out / "table.md").write_text(markdown, encoding="utf-8")
        console.print(table)
    if cfg.report:
        from bayling.evaluate.report import write_report

        extra = {k: metrics[k] for k in ("benchmarks", "open_ended", "interactive") if k in metrics}
        _, page = write_report(out, metrics, extra, name=name)
        console.print(f"report: {page}")
    return metrics


def _by_kind(per_system: dict[str, dict[str, Any]], part: str) -> dict[str, Any]:
    """Benchmarks stay ``{system: {benchmark: {lang: summary}}}``; interactive becomes ``{kind: {system: ...}}``."""
    if part == "benchmarks":
        return {n: r["summary"] for n, r in per_system.items()}
    kinds = sorted({k for r in per_system.values() for k in r})
    return {k: {n: r[k] for n, r in per_system.items() if k in r} for k in kinds}


def comparison_table(metrics: dict[str, Any], metric_names: list[str]) -> tuple[Table, str]:
    """A before/after table (rich and Markdown) with a delta column per metric."""
    systems = list(metrics["systems"])
    labels = {"bleu": "BLEU", "chrf": "chrF++", "ter": "TER"}
    table = Table(title=f"Translation on {metrics['testset']} ({metrics['sentences_per_direction']} sentences each)")
    header = ["direction"]
    table.add_column("direction", no_wrap=True, min_width=17)
    for m in metric_names:
        for s in systems:
            table.add_column(f"{labels[m]} {s}", justify="right")
            header.append(f"{labels[m]} {s}")
        if len(systems) == 2:
            table.add_column(f"Δ {labels[m]}", justify="right")
            header.append(f"Δ {labels[m]}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = list(metrics["directions"]) + ["average"]
    for d in rows:
        cells = [d]
        for m in metric_names:
            vals = []
            for s in systems:
                per = metrics["systems"][s]
                v = (
                    sum(per[x][m]["score"] for x in metrics["directions"]) / len(metrics["directions"])
                    if d == "average"
                    else per[d][m]["score"]
                )
                vals.append(v)
                cells.append(f"{v:.1f}")
            if len(systems) == 2:
                cells.append(f"{vals[1] - vals[0]:+.1f}")
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    return table, "\n".join(lines) + "\n"
