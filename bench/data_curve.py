"""The data curve: how much text in a language the model must see before it translates into it.

"How much text must I bring for my language?" is the first question of a user with a low-resource language.
This trains once, on a preset's recipe (by default ``configs/experiments/alignment_reward_draft.yaml``) with only
English, Chinese and the curve's target languages in the data, at a constant learning rate after warm-up, saving
an adapter every ``--save-steps`` steps. The curve's points are checkpoints at geometrically spaced steps: the
model after seeing all, 1/2, 1/4, ... of the data (down to the first checkpoint) is the model a user with that much text would get at the same
learning rate (a shorter run would also decay its rate sooner: that difference is not measured). Each point is
scored on the held-out FLORES articles, en->X only, and placed at the target-language assistant tokens seen:
the data stage's count (``stats.json`` ``tokens.assistant_by_language``) times the share of the optimizer steps
done. The trainer shuffles the data, so that count is an estimate, not a tally; the JSON says so. The first
point (0 tokens) is the 5-shot base over the preset's demonstration draws.

Second condition, SFT + the reward stage: GRPO with the language-gated reward (``train.reward``) starting from
chosen checkpoints (``--reward-at``), each in a copy of the run whose SFT output is that checkpoint; third, the
offline variant (``--offline-at``): DPO on pairs of the checkpoint's own samples ranked by the same gated reward.

    python bench/data_curve.py --json bench/results/data_curve.json --plot bench/results/data_curve.png

Defaults: targets jav_Latn, asm_Beng, yor_Latn (low-resource, the base barely writes them) and heb_Hebr (mid);
a 200k-token budget (~40 min of SFT on 2 cores, ~8-16k assistant tokens per target; the training articles hold
~20k per language). ``--smoke TINY_MODEL_DIR`` runs the whole path on a tiny model and the shipped sample corpus
(targets zho_Hans, deu_Latn) in a couple of minutes, to check the script.

Output: a JSON file (command, commit, machine, every point: condition, step, target, assistant tokens, chrF++,
off-target, copy and looping %, length ratio, and for a tuned point Δ chrF++ against the base with its
paired-bootstrap interval) and a plot of en->X off-target rate and chrF++ against assistant tokens (log scale), one line
per target and condition.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from provenance import provenance  # noqa: E402

from bayling.cli import main as bayling  # noqa: E402

PRESET = REPO / "configs" / "experiments" / "alignment_reward_draft.yaml"
TARGETS = ["jav_Latn", "asm_Beng", "yor_Latn", "heb_Hebr"]
PIVOT = "eng_Latn"
AFTER_SFT = {  # the stage after SFT of each condition, on requests into the curve's targets
    "sft+reward": lambda targets: ["train.reward.method=grpo"],
    # LoRA moves little at DPO's full-fine-tune rate (5e-6): 10x, as GRPO's 2e-5 is 2x its usual 1e-5
    "sft+offline": lambda targets: [
        "train.preference.method=dpo", "train.preference.pairs=sampled", f"train.preference.targets=[{','.join(targets)}]",
        "train.preference.max_pairs=128", "train.preference.learning_rate=5e-5",
    ],
}  # fmt: skip


def run_overrides(targets: list[str], budget: int, save_steps: int, run_dir: Path) -> list[str]:
    """The SFT run: only en/zh + the targets, the budget, a constant rate, every checkpoint kept, no eval stage."""
    langs = ",".join(dict.fromkeys([PIVOT, "zho_Hans", *targets]))
    return [
        f"run_dir={run_dir}",
        f"data.languages=[{langs}]",
        f"data.token_budget={budget}",
        "stages=[data,train]",
        "train.reward.method=none",
        "train.preference.method=none",
        "train.lr_scheduler=constant_with_warmup",
        f"train.save_steps={save_steps}",
        "train.save_total_limit=null",
        f"train.reward.targets=[{','.join(targets)}]",
    ]


def checkpoints(run_dir: Path) -> dict[int, Path]:
    """``{step: adapter dir}`` of the SFT checkpoints, plus the final adapter at the last step."""
    found = {}
    for d in (run_dir / "train" / "sft" / "checkpoints").glob("checkpoint-*"):
        if (d / "adapter_config.json").is_file():
            found[int(d.name.split("-")[1])] = d
    summary = json.loads((run_dir / "train" / "summary.json").read_text(encoding="utf-8"))
    found[int(summary["steps"])] = run_dir / "train" / "final"
    return dict(sorted(found.items()))


def geometric(steps: list[int]) -> list[int]:
    """The last step, its half, quarter... down to the first checkpoint: points evenly spaced on a log axis."""
    last, chosen = steps[-1], []
    s = last
    while s >= steps[0]:
        chosen.append(min(steps, key=lambda x, s=s: abs(x - s)))
        s //= 2
    return sorted(set(chosen))


def score(
    run_dir: Path,
    systems: dict[str, Any],
    out: Path,
    targets: list[str],
    eval_overrides: list[str],
    reuse: list[str],
) -> dict[str, Any]:
    """Score ``systems`` on en->X of the run's held-out articles; ``metrics.json`` ``systems``."""
    from bayling.config import load_config
    from bayling.evaluate import evaluate
    from bayling.pipeline import RunConfig

    cfg = load_config(RunConfig, run_dir / "config.yaml", eval_overrides)
    section = cfg.eval_section()
    tr = replace(section.translation, languages=[], directions=[f"{PIVOT}-{t}" for t in targets])
    section = replace(
        section,
        translation=tr,
        perplexity=replace(section.perplexity, languages=[]),
        report=False,
        reuse_from=reuse,
        seed=cfg.seed,
    )
    result = evaluate(section, cfg.model, systems, out, heldout_file=run_dir / "data" / "heldout.jsonl")
    return result.metrics


def rows(metrics: dict[str, Any], system: str, targets: list[str], eval_dir: Path) -> list[dict[str, Any]]:
    """Per target: chrF++ (its min-max over demonstration draws for the base), off-target, copy and looping rates
    and the length ratio (hypothesis over reference characters), every draw's outputs counted."""
    from tier_summary import looping, system_files

    out = []
    for t in targets:
        s = metrics["systems"][system].get(f"{PIVOT}-{t}", {})
        chrf = s.get("chrf") or {}
        outputs = [
            json.loads(line)
            for f in system_files(eval_dir / system, f"{PIVOT}-{t}")
            for line in f.read_text(encoding="utf-8").splitlines()
        ]
        ref_chars = sum(len(o["ref"]) for o in outputs)
        out.append(
            {
                "looping": round(100 * sum(looping(o["hyp"]) for o in outputs) / len(outputs), 1) if outputs else None,
                "length_ratio": round(sum(len(o["hyp"]) for o in outputs) / ref_chars, 3) if ref_chars else None,
                "target": t,
                "chrf": chrf.get("score"),
                "chrf_min": chrf.get("min"),
                "chrf_max": chrf.get("max"),
                "off_target": s.get("off_target"),
                "copy": s.get("copy"),
                "n": s.get("n"),
            }
        )
    return out


def delta_vs_base(
    tuned: dict[str, Any], tuned_dir: Path, base: dict[str, Any], base_dir: Path, targets: list[str]
) -> dict[str, dict[str, Any]]:
    """Per target: Δ chrF++ of the tuned model against the 5-shot base (the mean over its draws) with the 95 %
    paired-bootstrap interval, as the evaluation computes it (:mod:`bayling.evaluate.significance`)."""
    from bayling.evaluate.significance import compare_direction, summarize

    per = {
        d: compare_direction(
            tuned_dir / "tuned",
            tuned["systems"]["tuned"][d],
            base_dir / "base-fewshot",
            base["systems"]["base-fewshot"][d],
            d,
        )
        for d in (f"{PIVOT}-{t}" for t in targets)
    }
    ivs = summarize(per, ["chrf"])["directions"]
    return {d.split("-", 1)[1]: {"delta_chrf": iv["chrf"]} for d, iv in ivs.items()}


def clone_at_checkpoint(run_dir: Path, step: int, adapter: Path, dest: Path) -> None:
    """A copy of the SFT run whose finished SFT stage is the checkpoint at ``step`` (so ``bayling run`` with a
    stage after SFT switched on, GRPO or the offline variant, skips SFT and starts from that adapter)."""
    if (dest / "train" / "summary.json").is_file():
        return  # done (or resumable) already
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run_dir / "data", dest / "data", dirs_exist_ok=True)
    sft = dest / "train" / "sft"
    sft.mkdir(parents=True, exist_ok=True)
    for name in ("summary.json", "fingerprint.json"):
        if (run_dir / "train" / "sft" / name).is_file():
            shutil.copy2(run_dir / "train" / "sft" / name, sft / name)
    summary = json.loads((sft / "summary.json").read_text(encoding="utf-8"))
    summary["from_checkpoint_step"] = step  # what this copy's SFT output is
    (sft / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    shutil.copytree(adapter, sft / "output", dirs_exist_ok=True, ignore=shutil.ignore_patterns("optimizer.pt"))


def plot(points: list[dict[str, Any]], path: Path) -> None:
    """Off-target % and chrF++ against assistant tokens: one line per target x condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for target, cond in sorted({(p["target"], p["condition"]) for p in points if p["condition"] != "base"}):
        base = [p for p in points if p["target"] == target and p["condition"] == "base"]
        pts = sorted(
            (p for p in points if p["target"] == target and p["condition"] == cond),
            key=lambda p: p["assistant_tokens"],
        )
        xs = [p["assistant_tokens"] for p in pts]
        line = "-" if cond == "sft" else ":"
        for ax, key in zip(axes, ("off_target", "chrf"), strict=True):
            (h,) = ax.plot(xs, [p[key] for p in pts], line, marker="o", label=f"{target} {cond}")
            if base and cond == "sft":  # the 5-shot base: a flat reference line in the target's colour
                ax.axhline(base[0][key], color=h.get_color(), alpha=0.35, linewidth=1)
    for ax, label in zip(axes, ("en→X off-target %", "en→X chrF++"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("target-language assistant tokens seen (estimated)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle("faint lines: the 5-shot base", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default=str(PRESET))
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated FLORES-200 codes")
    ap.add_argument("--budget", type=int, default=200_000, help="data.token_budget of the one SFT run")
    ap.add_argument("--save-steps", type=int, default=7, help="a checkpoint every N optimizer steps")
    ap.add_argument("--reward-at", default="", help="comma-separated checkpoint steps to run GRPO from ('' = none)")
    ap.add_argument("--offline-at", default="", help="checkpoint steps to run the offline variant (DPO) from")
    ap.add_argument("--out", default="runs/data_curve", help="run directories go here (finished work is reused)")
    ap.add_argument("--reuse-from", default="", help="comma-separated runs whose matching eval parts are copied")
    ap.add_argument("--json", default="bench/results/data_curve.json")
    ap.add_argument("--plot", default="bench/results/data_curve.png")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra override for every run")
    ap.add_argument("--eval-set", action="append", default=[], metavar="KEY=VALUE", help="extra eval override")
    ap.add_argument("--note", default="", help="what the numbers need beside them (kept in the JSON)")
    ap.add_argument("--smoke", metavar="TINY_MODEL_DIR", help="the whole path on a tiny model and the sample corpus")
    a = ap.parse_args(argv)
    load0 = tuple(os.getloadavg())
    targets = a.targets.split(",")
    budget, save_steps, extra, eval_extra = a.budget, a.save_steps, list(a.set), list(a.eval_set)
    if a.smoke:
        targets, budget, save_steps = ["zho_Hans", "deu_Latn"], 4000, 1
        extra = [
            f"model.name_or_path={a.smoke}", "model.dtype=float32", "data.source=sample", "data.split_by=auto",
            "data.heldout=6", "data.fewshot=4", f"data.tokenizer={a.smoke}", "data.instructions=[sample]",
            "data.pivot_languages=[eng_Latn]", "train.max_steps=4", "train.report_to=[]",
            "train.reward.max_steps=1", "train.reward.max_prompts=4", "train.reward.max_new_tokens=6", *extra,
        ]  # fmt: skip
        eval_extra = ["eval.max_sentences=2", "eval.max_new_tokens=6", "eval.batch_size=2", *eval_extra]
    reward_at = [int(s) for s in a.reward_at.split(",") if s]
    offline_at = [int(s) for s in a.offline_at.split(",") if s]
    reuse = [r for r in a.reuse_from.split(",") if r]
    t0 = time.time()
    out = Path(a.out)
    sft_dir = out / "sft"
    args = ["run", a.preset, "name=data_curve_sft", *run_overrides(targets, budget, save_steps, sft_dir), *extra]
    if bayling(args) != 0:
        print(f"data_curve: run failed: bayling {' '.join(args)}", file=sys.stderr)
        return 1
    stats = json.loads((sft_dir / "data" / "stats.json").read_text(encoding="utf-8"))
    tokens = stats.get("tokens", {}).get("assistant_by_language", {})
    ckpts = checkpoints(sft_dir)
    last = max(ckpts)
    chosen = geometric(list(ckpts))
    model = _model(sft_dir, extra)
    from bayling.evaluate.stage import pipeline_systems

    points: list[dict[str, Any]] = []
    # Seconds of each step when it was computed (a rerun reuses finished work and keeps the first timing)
    timing_file = out / "timings.json"
    timings: dict[str, float] = json.loads(timing_file.read_text(encoding="utf-8")) if timing_file.is_file() else {}

    def took(key: str, since: float) -> None:
        timings.setdefault(key, round(time.time() - since, 1))
        timing_file.write_text(json.dumps(timings, indent=2), encoding="utf-8")

    took("sft_run", t0)
    stages_after: dict[str, dict[str, Any]] = {}

    base_metrics: dict[str, Any] = {}

    def add_points(cond: str, step: int, run_dir: Path, adapter: Path | None, name: str) -> None:
        """Score one model (the base when ``adapter`` is None) into ``out/name`` and add its points at ``step``;
        a tuned model's carry Δ chrF++ against the base with its paired-bootstrap interval."""
        t = time.time()
        systems = pipeline_systems(model, adapter, adapter is None, ["fewshot"])
        system = next(iter(systems))
        m = score(run_dir, systems, out / name, targets, [*extra, *eval_extra], reuse)
        took(name, t)
        deltas = {}
        if adapter is None:
            base_metrics.update(m)
        else:
            deltas = delta_vs_base(m, out / name, base_metrics, out / "eval_base", targets)
        for r in rows(m, system, targets, out / name):
            seen = round(tokens.get(r["target"], 0) * step / last)
            points.append(
                {"condition": cond, "step": step, "assistant_tokens": seen, **r, **deltas.get(r["target"], {})}
            )

    add_points("base", 0, sft_dir, None, "eval_base")
    for step in chosen:
        add_points("sft", step, sft_dir, ckpts[step], f"eval_sft_{step}")
    after = [("sft+offline", s) for s in offline_at] + [("sft+reward", s) for s in reward_at]  # the cheaper first
    for cond, step in after:
        if step not in ckpts:
            print(f"data_curve: no checkpoint at step {step} (have {sorted(ckpts)})", file=sys.stderr)
            return 1
        t = time.time()
        kind = cond.split("+")[1]
        rdir = out / f"{kind}_{step}"
        clone_at_checkpoint(sft_dir, step, ckpts[step], rdir)
        args = ["run", a.preset, f"name=data_curve_{kind}", *run_overrides(targets, budget, save_steps, rdir)]
        args += [*extra, *AFTER_SFT[cond](targets)]
        if bayling(args) != 0:
            print(f"data_curve: run failed: bayling {' '.join(args)}", file=sys.stderr)
            return 1
        took(f"{kind}_{step}", t)
        stage = json.loads((rdir / "train" / "summary.json").read_text(encoding="utf-8"))["stages"]
        stage = stage.get("reward" if kind == "reward" else "preference", {})
        stages_after[f"{kind}_{step}"] = {k: v for k, v in stage.items() if isinstance(v, int | float | str)}
        add_points(cond, step, rdir, rdir / "train" / "final", f"eval_{kind}_{step}")
    report = {
        "benchmark": "data_curve",
        **provenance(load0),
        "note": a.note,
        "preset": str(a.preset),
        "targets": targets,
        "budget": budget,
        "save_steps": save_steps,
        "steps": last,
        "assistant_tokens_in_data": {t: tokens.get(t) for t in targets},
        "tokens_seen_is_estimate": "data tokens x step / last step (the trainer shuffles: not a tally)",
        "learning_rate_schedule": "constant_with_warmup (a checkpoint is the model at the same rate, undecayed)",
        "smoke": bool(a.smoke),
        "seconds_this_invocation": round(time.time() - t0, 1),
        "timings": timings,
        "after_sft": {c: AFTER_SFT[c](targets) for c in AFTER_SFT},
        "stages_after_sft": stages_after,
        "points": points,
    }
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot(points, Path(a.plot))
    print(f"data_curve: {len(points)} points -> {a.json}, {a.plot}")
    return 0


def _model(run_dir: Path, extra: list[str]) -> Any:
    from bayling.config import load_config
    from bayling.pipeline import RunConfig

    return load_config(RunConfig, run_dir / "config.yaml", extra).model


if __name__ == "__main__":
    sys.exit(main())
