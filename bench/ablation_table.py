"""The data-mix ablation table: tuned arms against the few-shot base, grouped by resource tier and direction.

BayLing's claim is that interactive dialogues and cross-lingual instructions teach more than plain translation
pairs. ``configs/experiments/ablation_{a,b,c}.yaml`` spend the same token budget on (a) pairs, (b) + dialogues,
(c) + cross-lingual instructions and are scored on the same held-out FLORES articles; this script reads their
``eval/metrics.json`` and prints one Markdown table (means of chrF++, off-target and copy rates over the
directions of each group) plus a JSON file, so the README's table is recomputed from the runs, never by hand.

    python bench/ablation_table.py --base runs/flores_alignment \\
        --arm a=runs/ablation_a --arm b=runs/ablation_b --arm c=runs/flores_alignment \\
        --json bench/results/ablation.json

An arm may name the system it reads (``--arm need=runs/rec_offline:tuned-sft``: the SFT of a run whose ``tuned``
is a later stage); the default is ``tuned``.

``--per-direction`` prints instead the README's per-direction table of the first arm (base-fewshot, base-chat when
``--base`` scored it, tuned, Δ, tuned off-target / copy)::

    python bench/ablation_table.py --base runs/flores_alignment --arm c=runs/flores_alignment --per-direction

The base system (``base-fewshot``) is read from ``--base``: the ablation presets do not score the base again.
When it was drawn with several demonstration seeds, its cells are the mean over the draws with their min–max.
Every Δ (arm - base-fewshot, chrF++) gets the 95 % paired bootstrap interval of :mod:`bayling.evaluate.significance`
(sacreBLEU's resamples, recomputed from the runs' per-sentence outputs), and the wins are counted raw and
significant (interval excluding 0). An arm that scored other sentences than the base, or with another chrF
signature, is refused: its Δ would compare different things. Arms whose run is missing are left out with a note,
so a partial ablation still prints what was measured. The JSON records every arm's run name and directory and the
base run's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from bayling.errors import DataError  # noqa: E402
from bayling.evaluate.significance import (  # noqa: E402
    compare_direction,
    counts_text,
    direction_outputs,
    interval_text,
    summarize,
)
from bayling.languages import get_language  # noqa: E402

BASE = "base-fewshot"


def load_system(run: Path, system: str) -> tuple[dict, dict]:
    """``systems.<system>`` of ``run/eval/metrics.json`` (``{direction: {chrf, off_target, copy, ...}}``, the
    ``average`` row left out), and the whole metrics for the run-level fields."""
    metrics = json.loads((run / "eval" / "metrics.json").read_text(encoding="utf-8"))
    if system not in metrics.get("systems", {}):
        raise SystemExit(
            f"{run}/eval/metrics.json: no system {system!r} (has {', '.join(metrics.get('systems', {}))})"
        )
    return {d: v for d, v in metrics["systems"][system].items() if "-" in d}, metrics


def groups(directions: list[str], pivot: str) -> list[tuple[str, list[str]]]:
    """(name, directions) per tier and side of the pivot, then all directions: the README's rows."""
    rows = []
    for tier in ("high", "medium", "low"):
        for side in ("out", "in"):
            ks = []
            for d in directions:
                src, tgt = d.split("-")
                other = tgt if src == pivot else src
                if get_language(other).tier == tier and (src == pivot) == (side == "out"):
                    ks.append(d)
            if ks:
                arrow = "en→X" if side == "out" else "X→en"
                rows.append((f"{arrow}, {tier}", ks))
    rows.append((f"all {len(directions)}", directions))
    return rows


def mean(system: dict, ks: list[str], key: str) -> float | None:
    """Mean of chrF++ or a rate over ``ks``; None when a run did not record ``key`` (e.g. ``unknown``)."""
    vals = [system[k]["chrf"]["score"] if key == "chrf" else system[k].get(key) for k in ks]
    return None if any(v is None for v in vals) else sum(vals) / len(vals)


def draw_means(system: dict, ks: list[str]) -> list[float]:
    """chrF++ over ``ks`` of each demonstration draw (empty for a single draw)."""
    seeds = system[ks[0]].get("seeds") or {}
    return [sum(system[k]["seeds"][s]["chrf"]["score"] for k in ks) / len(ks) for s in seeds]


def check_arm(
    name: str, arm_dir: Path, arm: dict, base_dir: Path, base: dict, directions: list[str], system: str = "tuned"
) -> None:
    """Refuse an arm that scored other sentences, or with another chrF signature, than the base run."""
    for d in directions:
        a, b = arm[d]["chrf"].get("signature"), base[d]["chrf"].get("signature")
        if a != b:
            raise SystemExit(f"arm {name}: chrF signature differs from the base run's in {d} ({a} vs {b})")
        try:
            ids = direction_outputs(arm_dir / "eval" / system, d, arm[d])[0]
            base_ids = direction_outputs(base_dir / "eval" / BASE, d, base[d])[0]
        except DataError as e:
            raise SystemExit(f"arm {name}: sentence ids cannot be checked: {e}") from None
        if ids != base_ids:
            raise SystemExit(
                f"arm {name}: sentence ids differ from the base run's in {d} ({len(ids)} vs {len(base_ids)})"
            )


def intervals(
    arm_dir: Path, arm: dict, base_dir: Path, base: dict, directions: list[str], system: str = "tuned"
) -> dict:
    """chrF++ Δ of the arm against the base (mean over its draws) per direction: ``{direction: (Δ, resampled Δ)}``."""
    return {
        d: compare_direction(arm_dir / "eval" / system, arm[d], base_dir / "eval" / BASE, base[d], d)["chrf"]
        for d in directions
    }


def fmt(v: float | None, unit: str = "") -> str:
    return "n/a" if v is None else f"{v:.1f}{unit}"


def per_direction(
    base: dict, base_metrics: dict, tuned: dict, directions: list[str], pivot: str, deltas: dict
) -> None:
    """The per-direction Markdown table (chrF++, Δ vs few-shot with its 95 % interval, tuned off-target / LID
    unknown / copy), then the averages and the counts of (significant) wins."""
    chat = {d: v for d, v in base_metrics["systems"].get("base-chat", {}).items() if "-" in d}
    cols = [BASE] + (["base-chat"] if chat else []) + ["tuned"]
    head = ["direction", "tier"] + [f"chrF++ {c}" for c in cols]
    head += ["Δ vs few-shot [95 % CI]", "tuned off-target / unknown / copy"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    systems = {BASE: base, "base-chat": chat, "tuned": tuned}
    summary = summarize({d: {"chrf": deltas[d]} for d in directions}, ["chrf"])

    def chrf(c: str, d: str) -> str:
        v = systems[c][d]["chrf"]
        return f"{v['score']:.1f}" + (f" ({v['min']:.1f}–{v['max']:.1f})" if "min" in v else "")

    def rates(per: dict, ks: list[str]) -> str:
        return " / ".join(fmt(mean(per, ks, k), " %") for k in ("off_target", "unknown", "copy"))

    for d in directions:
        src, tgt = d.split("-")
        iv = summary["directions"][d]["chrf"]
        cells = [d, get_language(tgt if src == pivot else src).tier[:4].replace("medi", "mid")]
        cells += [chrf(c, d) for c in cols]
        text = interval_text(iv)
        if iv["delta"] < 0:  # a loss: its Δ in bold
            value, rest = text.split(" ", 1)
            text = f"**−{value[1:]}** {rest}"
        cells += [text]
        cells += [rates(tuned, [d])]
        print("| " + " | ".join(cells) + " |")
    avg = [fmt(mean(systems[c], directions, "chrf")) for c in cols]
    draws = draw_means(base, directions)
    if draws:
        avg[0] += f" ({min(draws):.1f}–{max(draws):.1f})"
    print(
        f"| average ({len(directions)}) | | " + " | ".join(avg) + f" | {interval_text(summary['average']['chrf'])} | "
        f"{rates(tuned, directions)} |"
    )
    print("\n" + counts_text(summary["counts"]["chrf"], "chrF++", BASE))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="run directory that scored base-fewshot")
    ap.add_argument(
        "--arm",
        action="append",
        default=[],
        help="NAME=RUN_DIR[:SYSTEM], in table order (SYSTEM: the run's system to read, default tuned; e.g.\n"
        "tuned-sft, the SFT of a run with a stage after it)",
    )
    ap.add_argument("--pivot", default="eng_Latn")
    ap.add_argument("--json", type=Path, help="also write the table as JSON here")
    ap.add_argument("--per-direction", action="store_true", help="one row per direction for the first arm")
    args = ap.parse_args(argv)

    base, base_metrics = load_system(args.base, BASE)
    arms: dict[str, dict] = {}
    info: dict[str, dict] = {}
    for spec in args.arm:
        name, _, run = spec.partition("=")
        system = "tuned"
        if ":" in run and "/" not in run.rsplit(":", 1)[1]:
            run, system = run.rsplit(":", 1)
        path = Path(run)
        if not (path / "eval" / "metrics.json").is_file():
            print(f"note: arm {name}: {path}/eval/metrics.json not found, left out", file=sys.stderr)
            continue
        arms[name], m = load_system(path, system)
        info[name] = {
            "name": m.get("name"),
            "run": str(path),
            "system": system,
            "perplexity": m.get("perplexity", {}).get(system, {}),
        }
    directions = [d for d in base if all(d in a for a in arms.values())]
    if not directions:
        raise SystemExit("no direction scored by the base and every arm")
    deltas = {}
    for a in arms:
        check_arm(a, Path(info[a]["run"]), arms[a], args.base, base, directions, info[a]["system"])
        deltas[a] = intervals(Path(info[a]["run"]), arms[a], args.base, base, directions, info[a]["system"])
    n = base_metrics.get("sentences_per_direction")
    if args.per_direction:
        first = next(iter(arms))
        per_direction(base, base_metrics, arms[first], directions, args.pivot, deltas[first])
        return 0

    names = list(arms)
    head = ["group", "directions", f"chrF++ {BASE}"] + [f"chrF++ ({a})" for a in names]
    head += [f"Δ ({a}) [95 % CI]" for a in names]
    head += [f"{k} " + " / ".join(f"({a})" for a in names) for k in ("off-target", "LID unknown", "copy")]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    table = []
    for gname, ks in groups(directions, args.pivot):
        row = {"group": gname, "directions": len(ks), BASE: {"chrf": round(mean(base, ks, "chrf"), 2)}}
        draws = draw_means(base, ks)
        if draws:
            row[BASE] |= {"min": round(min(draws), 2), "max": round(max(draws), 2)}
        cells = [gname, str(len(ks)), f"{row[BASE]['chrf']:.1f}"]
        if draws:
            cells[-1] += f" ({min(draws):.1f}–{max(draws):.1f})"
        for a in names:
            vals = {k: mean(arms[a], ks, k) for k in ("chrf", "off_target", "unknown", "copy")}
            row[a] = {k: None if v is None else round(v, 2) for k, v in vals.items()}
            row[a]["delta"] = summarize({d: {"chrf": deltas[a][d]} for d in ks}, ["chrf"])["average"]["chrf"]
        table.append(row)
        cells += [f"{row[a]['chrf']:.1f}" for a in names]
        cells += [interval_text(row[a]["delta"]) for a in names]
        for k in ("off_target", "unknown", "copy"):
            cells += [" / ".join(fmt(row[a][k], " %") for a in names)]
        print("| " + " | ".join(cells) + " |")
    counts = {a: summarize({d: {"chrf": deltas[a][d]} for d in directions}, ["chrf"])["counts"]["chrf"] for a in names}
    seeds = base_metrics.get("prompts", {}).get(BASE, {}).get("seeds")
    print(f"\n{n} sentences per direction; chrF++ signature {base[directions[0]]['chrf']['signature']}")
    if seeds:
        print(f"{BASE}: mean over demonstration seeds {', '.join(map(str, seeds))} (min–max of the draws in brackets)")
    print("Δ: 95 % paired bootstrap interval (sacreBLEU's resamples, 1000, seed 12345); *: excludes 0")
    for a in names:
        print(counts_text(counts[a], f"chrF++ ({a})", BASE))
    for a in names:
        ppl = {lang: v.get("perplexity") for lang, v in info[a]["perplexity"].items()}
        if ppl:
            print(f"perplexity after ({a}): " + ", ".join(f"{k} {v:.1f}" for k, v in ppl.items() if v is not None))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {
            "sentences_per_direction": n,
            "directions": directions,
            "base": {"name": base_metrics.get("name"), "run": str(args.base), "system": BASE, "seeds": seeds},
            "rows": table,
            "wins_vs_fewshot": {a: c["wins"] for a, c in counts.items()},
            "significant_wins_vs_fewshot": {a: c["significant_wins"] for a, c in counts.items()},
            "significant_losses_vs_fewshot": {a: c["significant_losses"] for a, c in counts.items()},
            "arms": info,
        }
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
