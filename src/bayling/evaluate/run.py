"""The evaluation stage: score the base and the tuned model on held-out translations.

Run as::

    bayling eval configs/quickstart.yaml

Each system's scores are cached under ``eval/<system>/`` with a fingerprint of everything that
affects them (model, adapter weights, test sentences, settings), so re-running after a new training
run re-scores only the tuned model. Greedy decoding makes scores repeatable.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from bayling.config import ModelConfig, to_dict
from bayling.data.io import write_json
from bayling.data.parallel import ParallelRecord, load_parallel, read_jsonl_parallel
from bayling.evaluate.config import EvalConfig
from bayling.evaluate.translation import parse_direction, translate_and_score
from bayling.progress import console, progress_bar


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(path.rglob("*.safetensors")) if path.is_dir() else [path]:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def load_testset(cfg: EvalConfig, heldout_file: str | Path | None) -> list[ParallelRecord]:
    """The sentences to translate: the data stage's held-out split, FLORES-200, or a file."""
    langs = sorted({c for d in cfg.directions for c in parse_direction(d)})
    if cfg.testset == "heldout":
        if heldout_file is None or not Path(heldout_file).is_file():
            from bayling.errors import DataError

            raise DataError("eval.testset=heldout needs the data stage's heldout.jsonl (run `bayling data` first)")
        recs = [r for r in read_jsonl_parallel(heldout_file) if all(c in r.texts for c in langs)]
    else:
        recs = load_parallel(cfg.testset, langs, cfg.flores_dir)
    return recs[: cfg.max_sentences]


def evaluate(
    cfg: EvalConfig,
    model: ModelConfig,
    out_dir: str | Path,
    adapter: str | Path | None = None,
    heldout_file: str | Path | None = None,
) -> dict[str, Any]:
    """Score the base model (if ``cfg.compare_base``) and the tuned one (if ``adapter``).

    Args:
        cfg: evaluation settings.
        model: the base model config.
        out_dir: where ``metrics.json``, ``table.md`` and per-system outputs go.
        adapter: trained adapter or full-model directory from the train stage.
        heldout_file: the data stage's ``heldout.jsonl`` (for ``testset: heldout``).

    Returns:
        The metrics dict also written to ``out_dir/metrics.json``.
    """
    from bayling.engines.hf import TransformersEngine
    from bayling.models import resolve_model

    out = Path(out_dir)
    directions = [parse_direction(d) for d in cfg.directions]
    records = load_testset(cfg, heldout_file)
    base_path = resolve_model(model.name_or_path, model.gguf_file)
    systems: dict[str, tuple[Path, Path | None]] = {}
    if cfg.compare_base or adapter is None:
        systems["base"] = (base_path, None)
    if adapter is not None:
        adapter = Path(adapter)
        is_full = (adapter / "config.json").is_file()
        systems["tuned"] = (adapter, None) if is_full else (base_path, adapter)

    results: dict[str, Any] = {}
    for name, (mpath, apath) in systems.items():
        sys_dir = out / name
        fp = _digest(
            {
                "eval": to_dict(cfg),
                "model": to_dict(model),
                "weights": _file_digest(apath or mpath),
                "records": [r.to_dict() for r in records],
            }
        )
        cached = sys_dir / "scores.json"
        if cached.is_file() and (sys_dir / "fingerprint").is_file() and (sys_dir / "fingerprint").read_text() == fp:
            console.print(f"[dim]eval: {name} unchanged, using cached scores[/dim]")
            results[name] = json.loads(cached.read_text(encoding="utf-8"))
            continue
        engine = TransformersEngine(
            mpath, adapter=apath, chat_format=model.chat_format, dtype=model.dtype, device=model.device,
            batch_size=cfg.batch_size, model_name=name,
        )
        total = len(records) * len(directions)
        with progress_bar(f"translating ({name})", total) as advance:
            results[name] = translate_and_score(
                engine, records, directions, sys_dir, cfg.max_new_tokens, cfg.metrics, progress=advance
            )
        (sys_dir / "fingerprint").write_text(fp)
        del engine
    metrics = {
        "testset": cfg.testset,
        "sentences_per_direction": len(records),
        "directions": [f"{s}-{t}" for s, t in directions],
        "systems": results,
    }
    write_json(out / "metrics.json", metrics)
    table, markdown = comparison_table(metrics, cfg.metrics)
    (out / "table.md").write_text(markdown, encoding="utf-8")
    console.print(table)
    return metrics


def comparison_table(metrics: dict[str, Any], metric_names: list[str]) -> tuple[Table, str]:
    """A before/after table (rich and Markdown) with a delta column per metric."""
    systems = list(metrics["systems"])
    labels = {"bleu": "BLEU", "chrf": "chrF++", "ter": "TER"}
    table = Table(title=f"Translation on {metrics['testset']} ({metrics['sentences_per_direction']} sentences each)")
    header = ["direction"]
    table.add_column("direction")
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
                v = (sum(per[x][m]["score"] for x in metrics["directions"]) / len(metrics["directions"])
                     if d == "average" else per[d][m]["score"])
                vals.append(v)
                cells.append(f"{v:.1f}")
            if len(systems) == 2:
                delta = vals[1] - vals[0]
                cells.append(f"{delta:+.1f}")
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    return table, "\n".join(lines) + "\n"
