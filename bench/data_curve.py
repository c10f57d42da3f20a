"""The data curve: how much text in a language the model must see before it translates into it.

"How much text must I bring for my language?" is the first question of a user with a low-resource language.
This runs a preset (by default ``configs/experiments/alignment_reward_draft.yaml``) at several token budgets,
with only English, Chinese and the curve's target languages in the data (so the translation budget goes to those
targets), under two conditions: SFT alone, and SFT + the reward stage (GRPO with the language-gated reward). Each
point is scored on the held-out FLORES articles, en->X, and placed at the number of *target-language assistant
tokens* the data stage actually wrote (``stats.json`` ``tokens.assistant_by_language``), not at the budget asked for.

    python bench/data_curve.py --json bench/results/data_curve.json --plot bench/results/data_curve.png

Defaults: targets jav_Latn, asm_Beng, yor_Latn (low-resource, the base barely writes them) and heb_Hebr (mid);
budgets 6k, 20k, 50k and 140k tokens, which put ~1k to ~20k assistant tokens into each target (the training
articles hold ~20k per language). Each point is one full ``bayling run`` (data, train, eval of the tuned model
only), so the whole curve is hours on 2 cores: run it on idle cores. ``--smoke`` runs a 2-point curve on a tiny
model and the shipped sample corpus (targets zho_Hans, deu_Latn) in a couple of minutes, to check the script.

Output: a JSON file (command, commit, machine, every point: condition, budget, target, assistant tokens, chrF++,
off-target %, copy %) and a plot of en->X off-target rate and chrF++ against assistant tokens (log scale), one line
per target and condition.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from bayling.cli import main as bayling  # noqa: E402

PRESET = REPO / "configs" / "experiments" / "alignment_reward_draft.yaml"
TARGETS = ["jav_Latn", "asm_Beng", "yor_Latn", "heb_Hebr"]
BUDGETS = [6_000, 20_000, 50_000, 140_000]
CONDITIONS = {
    "sft": ["train.reward.method=none", "train.preference.method=none"],
    "sft+reward": ["train.reward.method=grpo", "train.preference.method=none"],
}


def overrides(targets: list[str], budget: int, condition: str, run_dir: Path) -> list[str]:
    """The ``bayling run`` overrides of one point: only en/zh + the targets, the budget, the condition."""
    langs = ",".join(["eng_Latn", "zho_Hans", *[t for t in targets if t not in ("eng_Latn", "zho_Hans")]])
    return [
        f"run_dir={run_dir}",
        f"data.languages=[{langs}]",
        f"data.token_budget={budget}",
        f"eval.translation.languages=[{','.join(targets)}]",
        "eval.compare_base=false",
        f"train.reward.targets=[{','.join(targets)}]",
        *CONDITIONS[condition],
    ]


def point(run_dir: Path, targets: list[str], pivot: str = "eng_Latn") -> list[dict[str, Any]]:
    """One run's en->X scores and target-language assistant tokens, per target."""
    stats = json.loads((run_dir / "data" / "stats.json").read_text(encoding="utf-8"))
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text(encoding="utf-8"))
    tuned = metrics["systems"]["tuned"]
    tokens = stats.get("tokens", {}).get("assistant_by_language", {})
    rows = []
    for t in targets:
        s = tuned.get(f"{pivot}-{t}", {})
        rows.append(
            {
                "target": t,
                "assistant_tokens": tokens.get(t),
                "chrf": (s.get("chrf") or {}).get("score"),
                "off_target": s.get("off_target"),
                "copy": s.get("copy"),
                "n": s.get("n"),
            }
        )
    return rows


def plot(points: list[dict[str, Any]], path: Path) -> None:
    """Off-target % and chrF++ against assistant tokens: one line per target x condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for target, cond in sorted({(p["target"], p["condition"]) for p in points}):
        pts = sorted(
            (p for p in points if p["target"] == target and p["condition"] == cond and p["assistant_tokens"]),
            key=lambda p: p["assistant_tokens"],
        )
        xs = [p["assistant_tokens"] for p in pts]
        line = "-" if cond == "sft+reward" else "--"
        for ax, key in zip(axes, ("off_target", "chrf"), strict=True):
            ax.plot(xs, [p[key] for p in pts], line, marker="o", label=f"{target} {cond}")
    for ax, label in zip(axes, ("en→X off-target %", "en→X chrF++"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("target-language assistant tokens in the training data")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def _commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default=str(PRESET))
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated FLORES-200 codes")
    ap.add_argument("--budgets", default=",".join(map(str, BUDGETS)), help="comma-separated data.token_budget values")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help=f"of {', '.join(CONDITIONS)}")
    ap.add_argument("--out", default="runs/data_curve", help="run directories go here (reused: finished stages skip)")
    ap.add_argument("--json", default="bench/results/data_curve.json")
    ap.add_argument("--plot", default="bench/results/data_curve.png")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra override for every run")
    ap.add_argument("--smoke", metavar="TINY_MODEL_DIR", help="a 2-point curve on a tiny model and the sample corpus")
    a = ap.parse_args(argv)
    targets, budgets = a.targets.split(","), [int(b) for b in a.budgets.split(",")]
    conditions = a.conditions.split(",")
    extra = list(a.set)
    if a.smoke:
        targets, budgets = ["zho_Hans", "deu_Latn"], [3000, 6000]
        extra = [
            f"model.name_or_path={a.smoke}", "model.dtype=float32", "data.source=sample", "data.split_by=auto",
            "data.heldout=6", "data.fewshot=4", f"data.tokenizer={a.smoke}", "data.instructions=[sample]",
            "data.pivot_languages=[eng_Latn]", "train.max_steps=2", "train.save_steps=0", "train.report_to=[]",
            "train.reward.max_steps=1", "train.reward.max_prompts=4", "train.reward.max_new_tokens=6",
            "eval.max_sentences=2", "eval.max_new_tokens=6", "eval.batch_size=2", "eval.perplexity.languages=[]",
            "eval.report=false", *extra,
        ]  # fmt: skip
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        ap.error(f"unknown condition(s) {unknown}; choose from {', '.join(CONDITIONS)}")
    t0 = time.time()
    points: list[dict[str, Any]] = []
    for budget in budgets:
        for cond in conditions:
            run_dir = Path(a.out) / f"{cond.replace('+', '_')}_{budget}"
            args = ["run", a.preset, f"name=curve_{cond.replace('+', '_')}_{budget}"]
            args += overrides(targets, budget, cond, run_dir) + extra
            start = time.time()
            if bayling(args) != 0:
                print(f"data_curve: run failed: bayling {' '.join(args)}", file=sys.stderr)
                return 1
            for row in point(run_dir, targets):
                points.append({"condition": cond, "budget": budget, **row, "seconds": round(time.time() - start, 1)})
    report = {
        "benchmark": "data_curve",
        "command": " ".join([sys.executable, *sys.argv]) if argv is None else f"data_curve {' '.join(argv)}",
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "load_avg": os.getloadavg()},
        "preset": a.preset,
        "targets": targets,
        "budgets": budgets,
        "smoke": bool(a.smoke),
        "seconds": round(time.time() - t0, 1),
        "points": points,
    }
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot(points, Path(a.plot))
    print(f"data_curve: {len(points)} points -> {a.json}, {a.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
