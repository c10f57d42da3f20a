"""The data-mix ablation table: tuned arms against the few-shot base, grouped by resource tier and direction.

BayLing's claim is that interactive dialogues and cross-lingual instructions teach more than plain translation
pairs. ``configs/experiments/ablation_{a,b,c}.yaml`` spend the same token budget on (a) pairs, (b) + dialogues,
(c) + cross-lingual instructions and are scored on the same held-out FLORES articles; this script reads their
``eval/metrics.json`` and prints one Markdown table (means of chrF++, off-target and copy rates over the
directions of each group) plus a JSON file, so the README's table is recomputed from the runs, never by hand.

    python bench/ablation_table.py --base runs/flores_alignment \\
        --arm a=runs/ablation_a --arm b=runs/ablation_b --arm c=runs/flores_alignment \\
        --json bench/results/ablation.json

``--per-direction`` prints instead the README's per-direction table of the first arm (base-fewshot, base-chat when
``--base`` scored it, tuned, Δ, tuned off-target / copy)::

    python bench/ablation_table.py --base runs/flores_alignment --arm c=runs/flores_alignment --per-direction

The base system (``base-fewshot``) is read from ``--base``: the ablation presets do not score the base again.
Arms whose run is missing are left out with a note, so a partial ablation still prints what was measured.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from bayling.languages import get_language  # noqa: E402


def load_system(run: Path, system: str) -> tuple[dict, dict]:
    """``systems.<system>`` of ``run/eval/metrics.json`` (``{direction: {chrf, off_target, copy, ...}}``, the
    ``average`` row left out), and the whole metrics for the run-level fields."""
    metrics = json.loads((run / "eval" / "metrics.json").read_text(encoding="utf-8"))
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


def mean(system: dict, ks: list[str], key: str) -> float:
    vals = [system[k]["chrf"]["score"] if key == "chrf" else system[k][key] for k in ks]
    return sum(vals) / len(vals)


def per_direction(base: dict, base_metrics: dict, tuned: dict, directions: list[str], pivot: str) -> None:
    """The per-direction Markdown table (chrF++, Δ vs few-shot, tuned off-target / copy), then the averages."""
    chat = {d: v for d, v in base_metrics["systems"].get("base-chat", {}).items() if "-" in d}
    cols = ["base-fewshot"] + (["base-chat"] if chat else []) + ["tuned"]
    head = ["direction", "tier"] + [f"chrF++ {c}" for c in cols] + ["Δ vs few-shot", "tuned off-target / copy"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    systems = {"base-fewshot": base, "base-chat": chat, "tuned": tuned}

    def chrf(c: str, d: str) -> float:
        return systems[c][d]["chrf"]["score"]

    for d in directions:
        src, tgt = d.split("-")
        delta = chrf("tuned", d) - chrf("base-fewshot", d)
        cells = [d, get_language(tgt if src == pivot else src).tier[:4].replace("medi", "mid")]
        cells += [f"{chrf(c, d):.1f}" for c in cols]
        cells += [f"{delta:+.1f}" if delta >= 0 else f"**−{-delta:.1f}**"]
        cells += [f"{tuned[d]['off_target']:.0f} % / {tuned[d]['copy']:.0f} %"]
        print("| " + " | ".join(cells) + " |")
    avg = [f"{mean(systems[c], directions, 'chrf'):.1f}" for c in cols]
    delta = mean(tuned, directions, "chrf") - mean(base, directions, "chrf")
    off, cp = mean(tuned, directions, "off_target"), mean(tuned, directions, "copy")
    print(f"| average ({len(directions)}) | | " + " | ".join(avg) + f" | {delta:+.1f} | {off:.1f} % / {cp:.1f} % |")
    wins = sum(chrf("tuned", d) > chrf("base-fewshot", d) for d in directions)
    print(f"\ntuned ahead of base-fewshot in {wins} of {len(directions)} directions")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="run directory that scored base-fewshot")
    ap.add_argument("--arm", action="append", default=[], help="NAME=RUN_DIR, in table order")
    ap.add_argument("--pivot", default="eng_Latn")
    ap.add_argument("--json", type=Path, help="also write the table as JSON here")
    ap.add_argument("--per-direction", action="store_true", help="one row per direction for the first arm")
    args = ap.parse_args(argv)

    base, base_metrics = load_system(args.base, "base-fewshot")
    arms: dict[str, dict] = {}
    info: dict[str, dict] = {}
    for spec in args.arm:
        name, _, run = spec.partition("=")
        path = Path(run)
        if not (path / "eval" / "metrics.json").is_file():
            print(f"note: arm {name}: {path}/eval/metrics.json not found, left out", file=sys.stderr)
            continue
        arms[name], m = load_system(path, "tuned")
        info[name] = {"run": str(path), "perplexity": m.get("perplexity", {}).get("tuned", {})}
    directions = [d for d in base if all(d in a for a in arms.values())]
    if not directions:
        raise SystemExit("no direction scored by the base and every arm")
    n = base_metrics.get("sentences_per_direction")
    if args.per_direction:
        per_direction(base, base_metrics, arms[next(iter(arms))], directions, args.pivot)
        return 0

    names = list(arms)
    head = ["group", "directions", "chrF++ base-fewshot"] + [f"chrF++ ({a})" for a in names]
    head += ["off-target " + " / ".join(f"({a})" for a in names), "copy " + " / ".join(f"({a})" for a in names)]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    table = []
    for gname, ks in groups(directions, args.pivot):
        row = {"group": gname, "directions": len(ks), "base-fewshot": {"chrf": round(mean(base, ks, "chrf"), 2)}}
        for a in names:
            row[a] = {k: round(mean(arms[a], ks, k), 2) for k in ("chrf", "off_target", "copy")}
        table.append(row)
        cells = [gname, str(len(ks)), f"{row['base-fewshot']['chrf']:.1f}"]
        cells += [f"{row[a]['chrf']:.1f}" for a in names]
        cells += [" / ".join(f"{row[a]['off_target']:.1f} %" for a in names)]
        cells += [" / ".join(f"{row[a]['copy']:.1f} %" for a in names)]
        print("| " + " | ".join(cells) + " |")
    wins = {a: sum(arms[a][d]["chrf"]["score"] > base[d]["chrf"]["score"] for d in directions) for a in names}
    print(f"\n{n} sentences per direction; chrF++ signature {base[directions[0]]['chrf']['signature']}")
    print("directions ahead of base-fewshot: " + ", ".join(f"({a}) {w}/{len(directions)}" for a, w in wins.items()))
    for a in names:
        ppl = {lang: v.get("perplexity") for lang, v in info[a]["perplexity"].items()}
        if ppl:
            print(f"perplexity after ({a}): " + ", ".join(f"{k} {v:.1f}" for k, v in ppl.items() if v is not None))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {"sentences_per_direction": n, "directions": directions, "rows": table, "wins_vs_fewshot": wins}
        out["arms"] = info
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
