"""Language ID on FLORES-200 devtest references: false off-target and unknown rates for all 204 languages.

Every reference is a genuine sentence of its language, so every ``off`` verdict on it is a false
off-target (or a FLORES sentence left untranslated). Rates are given on the *held-out* lines (those a
FLORES preset holds out or keeps for few-shot prompts: what experiments score, never calibrated on,
``bench/data_lid_calibrate.py``) and, separately, on the calibration lines. To show that real off-target
output is still caught, ``english_caught`` is the share of held-out English sentences (a copied English
source) called ``off`` for each target, and ``pairs`` does the same for close and plausible pairs.

Run as (about 3 minutes on 2 cores)::

    nice -n 10 python bench/lid_report.py [--flores ../shared/data/flores200] [--out bench/results/lid_flores200.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bayling.languages import LANGUAGES
from bayling.lid import OFF, OFF_TARGET, UNKNOWN, calibration, decide
from bayling.records import read_columns

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_lid_calibrate import PAIRS, ROOT, calibration_lines, provenance  # noqa: E402


def rates(texts: list[str], code: str) -> dict[str, float | int]:
    status = [decide(t, code).status for t in texts]
    n = len(status)
    return {
        "n": n,
        "off_target": round(100 * status.count(OFF) / n, 2),
        "unknown": round(100 * status.count(UNKNOWN) / n, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flores", default=str(ROOT.parent / "shared" / "data" / "flores200"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "lid_flores200.json"))
    ap.add_argument("--english", type=int, default=100, help="held-out English sentences per target")
    args = ap.parse_args()
    t0 = time.time()
    codes = sorted(LANGUAGES)
    cols = read_columns(args.flores, codes)
    calib, _ = calibration_lines(Path(args.flores))
    test = sorted(set(range(len(cols["eng_Latn"]))) - set(calib))
    english = [cols["eng_Latn"][i] for i in test[: args.english]]
    cal = calibration("py3langid")
    per = {}
    for code in codes:
        per[code] = {
            "status": cal[code].status,
            "heldout": rates([cols[code][i] for i in test], code),
            "calibration": rates([cols[code][i] for i in calib], code),
            "english_caught": None if LANGUAGES[code].group == "eng" else rates(english, code)["off_target"],
        }
    pairs = {f"{a}->{b}": rates([cols[a][i] for i in test], b)["off_target"] for a, b in PAIRS}
    worst = max(codes, key=lambda c: per[c]["heldout"]["off_target"])
    out = {
        **provenance(),
        "what": "FLORES-200 devtest references judged against their own language: every off verdict is false",
        "backend": "py3langid",
        "policy": asdict(OFF_TARGET),
        "split": f"heldout = the {len(test)} lines some FLORES preset holds out or keeps for few-shot prompts "
        f"(never used for calibration); calibration = the other {len(calib)}",
        "summary": {
            "languages": len(codes),
            "max_false_off_target_heldout": per[worst]["heldout"]["off_target"],
            "worst_language": worst,
            "languages_over_0.5pct_heldout": [c for c in codes if per[c]["heldout"]["off_target"] > 0.5],
            "languages_over_0.5pct_calibration": [c for c in codes if per[c]["calibration"]["off_target"] > 0.5],
            "mean_unknown_heldout": round(sum(p["heldout"]["unknown"] for p in per.values()) / len(codes), 2),
            "english_caught_below_90pct": {
                c: p["english_caught"]
                for c, p in per.items()
                if p["english_caught"] is not None and p["english_caught"] < 90
            },
        },
        "pairs_caught_off_target_pct": pairs,
        "languages": per,
        "seconds": round(time.time() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out["summary"], indent=1), json.dumps(pairs, indent=1), f"{out['seconds']}s", sep="\n")


if __name__ == "__main__":
    main()
