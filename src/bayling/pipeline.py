"""``bayling run``: data -> train -> eval -> chat as cached stages in one run directory.

Each stage writes into ``RUN_DIR/<stage>/`` and, when it finishes, a ``_stage.json`` marker holding
a fingerprint of everything it depends on (its config section, the model, the seed and the upstream
fingerprints). Re-running skips stages whose fingerprint is unchanged, so an interrupted run resumes
at the first unfinished stage and changing ``eval.*`` never retrains. The resolved config, the seed
and a log are written beside the stages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from bayling.config import STAGES, RunConfig, save_config, to_dict
from bayling.data.io import write_json
from bayling.errors import ConfigError
from bayling.progress import console

log = logging.getLogger("bayling")


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stage_fingerprints(cfg: RunConfig) -> dict[str, str]:
    """What each stage's output depends on, hashed; a changed upstream changes every later stage."""
    model = to_dict(cfg.model)
    fp: dict[str, str] = {}
    fp["data"] = _fingerprint({"data": to_dict(cfg.data), "seed": cfg.seed})
    fp["train"] = _fingerprint({"train": to_dict(cfg.train), "model": model, "data": fp["data"], "seed": cfg.seed})
    fp["eval"] = _fingerprint({"eval": to_dict(cfg.eval), "model": model, "train": fp["train"]})
    fp["chat"] = _fingerprint({"chat": to_dict(cfg.chat), "model": model, "train": fp["train"]})
    return fp


def _setup_logging(run_dir: Path) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    target = str((run_dir / "run.log").resolve())
    if not any(getattr(h, "baseFilename", None) == target for h in root.handlers):
        fh = logging.FileHandler(target, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fh)


def _done(run_dir: Path, stage: str, fp: str) -> bool:
    marker = run_dir / stage / "_stage.json"
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("fingerprint") == fp
    except ValueError:
        return False


def preflight(cfg: RunConfig, plan: list[str]) -> None:
    """Fail before any work on what can be checked cheaply: languages, directions, the model reference."""
    from bayling.data.plan import resolve_languages
    from bayling.evaluate.translation import parse_direction
    from bayling.languages import get_language
    from bayling.models import check_model

    resolve_languages(cfg.data.languages)  # also expands the sets `flores101` / `all`
    for code in cfg.data.pivot_languages + cfg.data.instruction_languages:
        get_language(code)
    for d in cfg.eval.directions:
        parse_direction(d)
    if any(s in plan for s in ("train", "eval", "chat")):
        check_model(cfg.model.name_or_path, cfg.model.gguf_file)


def run(cfg: RunConfig, stages: list[str] | None = None, force: bool = False) -> Path:
    """Run ``stages`` (default: ``cfg.stages``), first completing any earlier stage they need.

    Args:
        cfg: the run config.
        stages: stage names to run; upstream stages from ``cfg.stages`` run too when not yet done.
        force: re-run the requested stages even when their outputs are current.

    Returns:
        The run directory.
    """
    wanted = stages or cfg.stages
    for s in wanted + cfg.stages:
        if s not in STAGES:
            raise ConfigError(f"unknown stage {s!r}; stages are: {', '.join(STAGES)}")
    last = max(STAGES.index(s) for s in wanted)
    plan = [s for s in STAGES if (s in cfg.stages and STAGES.index(s) <= last) or s in wanted]
    preflight(cfg, plan)
    run_dir = cfg.resolved_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / "config.yaml")
    _setup_logging(run_dir)
    fps = stage_fingerprints(cfg)
    console.print(f"[bold]bayling run[/bold] {cfg.name} -> {run_dir}  (stages: {', '.join(plan)}, seed {cfg.seed})")
    for stage in plan:
        if _done(run_dir, stage, fps[stage]) and not (force and stage in wanted):
            console.print(f"[dim]{stage}: up to date (cached)[/dim]")
            continue
        console.rule(f"[bold]{stage}")
        t0 = time.time()
        info = STAGE_FUNCS[stage](cfg, run_dir)
        elapsed = round(time.time() - t0, 1)
        log.info("stage %s finished in %.1fs", stage, elapsed)
        write_json(run_dir / stage / "_stage.json", {"fingerprint": fps[stage], "seconds": elapsed, **(info or {})})
        console.print(f"[green]{stage}: done in {elapsed:.0f}s[/green]")
    return run_dir


# ----------------------------------------------------------------------------- stages


def _stage_data(cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    from bayling.data.build import build

    out = build(cfg.data, run_dir / "data", seed=cfg.seed)
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    console.print(f"data: {stats['examples']} examples {stats['tasks']}, {stats['heldout_records']} held out")
    return {"examples": stats["examples"]}


def _stage_train(cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    from bayling.train.card import command, write_cards
    from bayling.train.orchestrator import train
    from bayling.train.tracking import run_recorder

    # Called although the stage is current only under --force: then retrain from scratch instead of
    # reusing the finished sub-stages (cpt/sft/preference) that train() would otherwise skip.
    forced = _done(run_dir, "train", stage_fingerprints(cfg)["train"])
    final = train(
        cfg.train,
        cfg.model.name_or_path,
        run_dir / "data" / "train.jsonl",
        run_dir / "train",
        seed=cfg.seed,
        chat_format=cfg.model.chat_format,
        gguf_file=cfg.model.gguf_file,
        device=cfg.model.device,
        callbacks=[run_recorder(run_dir / "train" / "trackers.json")],  # for the eval stage's scores
        fresh=forced,
    )
    from bayling.train.distributed import is_main_process

    if not is_main_process():  # under accelerate/torchrun: ranks > 0 leave once the distributed work is done
        raise SystemExit(0)
    write_cards(cfg, run_dir, metrics=None, cmd=command())  # rewritten with the scores by the eval stage
    summary = json.loads((run_dir / "train" / "summary.json").read_text(encoding="utf-8"))
    console.print(
        f"train: {summary['steps']} steps, loss {_num(summary.get('first_loss'))} -> {_num(summary.get('last_loss'))}, "
        f"{summary['seconds']}s"
    )
    return {"output": str(final), "command": command()}


def _num(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, int | float) else "n/a"


def _adapter(cfg: RunConfig, run_dir: Path) -> Path | None:
    final = run_dir / "train" / "final"
    return final if "train" in cfg.stages and final.is_dir() else None


def _stage_eval(cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    from bayling.evaluate.run import evaluate

    evaluate(
        cfg.eval,
        cfg.model,
        run_dir / "eval",
        adapter=_adapter(cfg, run_dir),
        heldout_file=run_dir / "data" / "heldout.jsonl",
        name=cfg.name,
    )
    if _adapter(cfg, run_dir) is not None:  # the run's own model: card with these scores, same tracker run
        from bayling.train.card import write_cards
        from bayling.train.tracking import log_eval_metrics

        metrics = json.loads((run_dir / "eval" / "metrics.json").read_text(encoding="utf-8"))
        write_cards(cfg, run_dir, metrics=metrics)
        log_eval_metrics(run_dir / "train", metrics)
    info = {"metrics": str(run_dir / "eval" / "metrics.json")}
    if cfg.eval.report:
        info["report"] = str(run_dir / "eval" / "report.html")
    return info


def _stage_chat(cfg: RunConfig, run_dir: Path) -> dict[str, Any]:
    from bayling.engines import GenerationParams
    from bayling.serve.chat import load_engine_for

    engine = load_engine_for(str(run_dir))
    conv = [{"role": "user", "content": cfg.chat.prompt}]
    answer = engine.generate([conv], GenerationParams(max_new_tokens=cfg.chat.max_new_tokens))[0]
    console.print(f"[bold]user:[/bold] {cfg.chat.prompt}\n[bold]bayling:[/bold] {answer}")
    write_json(run_dir / "chat" / "chat.json", {"messages": conv + [{"role": "assistant", "content": answer}]})
    return {}


STAGE_FUNCS = {"data": _stage_data, "train": _stage_train, "eval": _stage_eval, "chat": _stage_chat}
