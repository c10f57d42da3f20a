"""``bayling run``'s ablation stage: arms of the run, each the run with a few keys changed, on its split.

The question after a recipe is measured is what each of its parts buys: SFT alone against SFT + a reward stage,
a budget split by need against an even one. Each arm is the run's own config with the arm's keys overridden,
run as a child run in ``RUN/ablation/ARM`` through :func:`bayling.pipeline.run` (so it resumes after a kill
as the run does) and scored on the run's held-out sentences, then one table compares the run's tuned model and
every arm against the run's few-shot base (:mod:`bayling.evaluate.ablation`).

Nothing is computed twice:

* an arm whose ``data`` section is the run's starts from a copy of the run's data (and its stage marker), so it
  trains on the same examples;
* an arm that keeps the run's data starts its SFT from a copy of the run's SFT output and summary: the SFT
  sub-stage checks its own fingerprint (training config, model, data content) and skips only when it matches,
  so an arm that changes SFT settings retrains, and one that adds a reward or preference stage starts it from
  the run's SFT adapter;
* the arm's evaluation reads the run's finished parts (``eval.reuse_from``): the base's passes, and the SFT's
  passes for the ``tuned-sft`` system of an arm with a stage after SFT.

Config (``ablation.arms``: arm name -> ``{dotted.key: value}`` overrides of this run)::

    ablation:
      arms:
        grpo: {train.reward.method: grpo, train.reward.gate_loops: true}
        offline: {train.preference.method: dpo, train.preference.pairs: sampled}
        even: {data.budget_by: even}

    bayling run configs/experiments/alignment_recommended_60min.yaml 'stages=[data,train,eval,ablation]'

Writes ``RUN/ablation/ablation.md`` and ``ablation.json`` (the table) and adds the table to the run's report.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bayling.config import from_dict, to_dict
from bayling.errors import ConfigError
from bayling.layout import RunLayout

RunConfig = Any
"""A :class:`bayling.pipeline.RunConfig`. The pipeline runs this stage and hands it its own ``run`` and
``stage_fingerprints``, so this module never imports the pipeline (no import circle)."""

ARM_STAGES = ["data", "train", "eval"]


@dataclass
class AblationConfig:
    """The arms of ``bayling run``'s ``ablation`` stage (run it with ``stages=[data,train,eval,ablation]``)."""

    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Arm name -> ``{dotted.key: value}`` overrides of this run's config (``train.reward.method: grpo``);
    a mapping value is merged into the section, not put in its place."""
    baseline: str = "sft"
    """The table's name for the run's own tuned model (the arm every other arm changes)."""


def _merge(node: dict[str, Any], path: list[str], value: Any, where: str) -> None:
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: '{part}' is not a section")
    last = path[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        for k, v in value.items():
            _merge(node[last], [str(k)], v, where)
    else:
        node[last] = value


def arm_config(cfg: RunConfig, arm: str) -> RunConfig:
    """The run's config with the arm's overrides, in ``RUN/ablation/ARM``, scoring what the run scored and
    reading the run's finished evaluation parts.

    Raises:
        ConfigError: an unknown key or a bad value, named as ``ablation.arms.ARM: ...``.
    """
    where = f"ablation.arms.{arm}"
    if not arm or "/" in arm or arm.startswith("."):
        raise ConfigError(f"{where}: an arm's name is a folder name (no '/', not starting with '.')")
    if arm == cfg.ablation.baseline:
        raise ConfigError(f"{where}: the name is the run's own model's (ablation.baseline={arm!r}); pick another")
    data = to_dict(cfg)
    for key, value in cfg.ablation.arms[arm].items():
        path = str(key).split(".")
        if path[0] in ("name", "run_dir", "stages", "ablation", "seed"):
            raise ConfigError(f"{where}: {key} is set by the ablation (an arm changes data, model, train or eval)")
        _merge(data, path, copy.deepcopy(value), f"{where}.{key}")
    run_dir = cfg.resolved_run_dir() / "ablation" / arm
    data |= {"name": f"{cfg.name}-{arm}", "run_dir": str(run_dir), "stages": list(ARM_STAGES), "ablation": {}}
    parent = str(cfg.resolved_run_dir())
    data["eval"]["reuse_from"] = [parent, *[d for d in data["eval"].get("reuse_from") or [] if d != parent]]
    data["eval"]["compare_stages"] = True
    try:
        return from_dict(type(cfg), data)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def check(cfg: RunConfig) -> list[RunConfig]:
    """Every arm's config, built before any work so a typo fails in seconds; the run must score the few-shot
    base (the table's reference) and have at least one arm.

    Raises:
        ConfigError: no arms, no few-shot base, or an arm's bad key or value.
    """
    if not cfg.ablation.arms:
        raise ConfigError("the ablation stage has no arms: set ablation.arms (arm name -> {dotted.key: value})")
    e = cfg.eval
    if not e.compare_base or "fewshot" not in e.base_prompts:
        raise ConfigError(
            "the ablation compares every arm with the few-shot base: set eval.compare_base=true and "
            "eval.base_prompts to include fewshot"
        )
    return [arm_config(cfg, a) for a in cfg.ablation.arms]


def seed_arm(cfg: RunConfig, arm: RunConfig, fingerprints: Callable[[Any], dict[str, str]]) -> list[str]:
    """Copy into the arm's directory what the run already made and the arm would make the same: its data (when
    the ``data`` sections agree) and its SFT output with the SFT summary (whose fingerprint the SFT sub-stage
    checks). ``fingerprints`` is :func:`bayling.pipeline.stage_fingerprints`. Returns what was copied; nothing is
    copied over an arm's own finished work."""
    from bayling.resume import marked
    from bayling.train.orchestrator import stage_outputs

    src, dst = RunLayout(cfg.resolved_run_dir()), RunLayout(arm.resolved_run_dir())
    fp, arm_fp = fingerprints(cfg), fingerprints(arm)
    copied: list[str] = []
    if fp["data"] != arm_fp["data"] or marked(src.stage_marker("data"), fp["data"]) is None:
        return copied
    if marked(dst.stage_marker("data"), arm_fp["data"]) is None:
        shutil.rmtree(dst.data_dir, ignore_errors=True)
        shutil.copytree(src.data_dir, dst.data_dir)
        copied.append("data")
    sft_summary = src.train_dir / "sft" / "summary.json"
    if marked(src.stage_marker("train"), fp["train"]) is None or not sft_summary.is_file():
        return copied
    target = stage_outputs(arm.train, dst.train_dir)["sft"]  # where the arm's SFT sub-stage looks for it
    if not (dst.train_dir / "sft" / "summary.json").is_file() and not target.exists():
        (dst.train_dir / "sft").mkdir(parents=True, exist_ok=True)
        shutil.copytree(stage_outputs(cfg.train, src.train_dir)["sft"], target)
        shutil.copy2(sft_summary, dst.train_dir / "sft" / "summary.json")
        copied.append("sft")
    return copied


def run_ablation(
    cfg: RunConfig,
    layout: RunLayout,
    run: Callable[..., Any],
    fingerprints: Callable[[Any], dict[str, str]],
    command: str | None = None,
) -> dict[str, Any]:
    """Run every arm (each resumable, each reusing what the run made), then write the table.

    ``run`` and ``fingerprints`` are :func:`bayling.pipeline.run` and :func:`~bayling.pipeline.stage_fingerprints`.

    Returns:
        The stage's info: where the table is, and each arm's run directory.
    """
    from bayling.evaluate.ablation import Arm, compare, render, to_json
    from bayling.io import write_json
    from bayling.progress import console

    arms = check(cfg)
    for name, arm in zip(cfg.ablation.arms, arms, strict=True):
        copied = seed_arm(cfg, arm, fingerprints)
        console.rule(
            f"[bold]ablation arm {name}[/bold]" + (f" (from the run's {' and '.join(copied)})" if copied else "")
        )
        run(arm, command=command)
    columns = [Arm(cfg.ablation.baseline, layout.run_dir)]
    columns += [Arm(name, arm.resolved_run_dir()) for name, arm in zip(cfg.ablation.arms, arms, strict=True)]
    table = compare(layout.run_dir, columns, cfg.eval.translation.pivot)
    out = layout.run_dir / "ablation"
    out.mkdir(parents=True, exist_ok=True)
    text = render(table)
    data = to_json(table) | {"overrides": cfg.ablation.arms}
    (out / "ablation.md").write_text(text + "\n", encoding="utf-8")
    write_json(out / "ablation.json", data)
    console.print(text)
    if cfg.eval.report and layout.metrics.is_file():
        from bayling.evaluate.report import rebuild_report

        rebuild_report(layout.eval_dir)
    return {"table": str(out / "ablation.md"), "arms": {a.name: str(a.run_dir) for a in columns[1:]}}
