"""The data-mix ablation table: tuned arms against the few-shot base, grouped by resource tier and direction.

BayLing's claim is that interactive dialogues and cross-lingual instructions teach more than plain translation
pairs. ``configs/experiments/ablation_{a,b,c}.yaml`` spend the same token budget on (a) pairs, (b) + dialogues,
(c) + cross-lingual instructions and are scored on the same held-out FLORES articles; this script reads their
``eval/metrics.json`` and prints one Markdown table (means of chrF++, off-target and copy rates over the
directions of each group) plus a JSON file, so the README's table is recomputed from the runs, never by hand.
The table itself is :mod:`bayling.evaluate.ablation`'s, which ``bayling run``'s ``ablation`` stage also writes for
the arms of one run; this script compares runs made apart.

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
sys.path.insert(0, str(REPO / "bench"))

from provenance import provenance  # noqa: E402

from bayling.errors import DataError  # noqa: E402
from bayling.evaluate.ablation import (  # noqa: E402
    BASE,
    Arm,
    compare,
    draw_means,
    fmt,
    mean,
    render,
    to_json,
)
from bayling.evaluate.significance import counts_text, interval_text, summarize  # noqa: E402
from bayling.languages import get_language  # noqa: E402


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

    arms = []
    for spec in args.arm:
        name, _, run = spec.partition("=")
        system = "tuned"
        if ":" in run and "/" not in run.rsplit(":", 1)[1]:
            run, system = run.rsplit(":", 1)
        path = Path(run)
        if not (path / "eval" / "metrics.json").is_file():
            print(f"note: arm {name}: {path}/eval/metrics.json not found, left out", file=sys.stderr)
            continue
        arms.append(Arm(name, path, system))
    try:
        table = compare(args.base, arms, args.pivot)
    except DataError as e:
        raise SystemExit(str(e)) from None
    if args.per_direction:
        first = next(iter(table.arms))
        per_direction(
            table.base, table.base_metrics, table.arms[first], table.directions, args.pivot, table.deltas[first]
        )
        return 0
    print(render(table))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(to_json(table) | provenance(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
