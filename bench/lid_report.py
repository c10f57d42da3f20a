"""Language ID on FLORES-200 devtest references: false off-target and unknown rates for all 204 languages.

Every reference is a genuine sentence of its language, so every ``off`` verdict on it is a false
off-target (or a FLORES sentence left untranslated). Rates are given on the *test half* (the documents
``bench/data_lid_calibrate.py`` never saw, :func:`bayling.lid.flores_halves`) and, for completeness, on
all 1012 sentences (which include the calibration half). To show that real off-target output is still
caught, ``english_caught`` is the share of test-half English sentences (a copied English source) called
``off`` for each target, and ``pairs`` does the same for a few close language pairs.

Run as (about 3 minutes on 2 cores)::

    nice -n 10 python bench/lid_report.py [--flores ../shared/data/flores200] [--out bench/results/lid_flores200.json]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import time
from dataclasses import asdict
from pathlib import Path

from bayling.languages import LANGUAGES
from bayling.lid import OFF, OFF_TARGET, UNKNOWN, calibration, decide, flores_halves
from bayling.records import read_columns

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [
    ("eng_Latn", "deu_Latn"), ("deu_Latn", "zho_Hans"), ("eng_Latn", "jpn_Jpan"), ("zho_Hans", "jpn_Jpan"),
    ("rus_Cyrl", "ukr_Cyrl"), ("ukr_Cyrl", "rus_Cyrl"), ("spa_Latn", "por_Latn"), ("por_Latn", "spa_Latn"),
    ("fra_Latn", "ita_Latn"), ("hin_Deva", "mar_Deva"), ("arb_Arab", "pes_Arab"), ("ces_Latn", "slk_Latn"),
]  # fmt: skip
"""(language of the output, expected language): wrong-language answers that must be caught."""


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
    ap.add_argument("--english", type=int, default=100, help="test-half English sentences per target")
    args = ap.parse_args()
    t0 = time.time()
    codes = sorted(LANGUAGES)
    cols = read_columns(args.flores, codes)
    _, test = flores_halves(args.flores)
    english = [cols["eng_Latn"][i] for i in test[: args.english]]
    cal = calibration("py3langid")
    per = {}
    for code in codes:
        per[code] = {
            "status": cal[code].status,
            "test_half": rates([cols[code][i] for i in test], code),
            "all": rates(cols[code], code),
            "english_caught": None if LANGUAGES[code].group == "eng" else rates(english, code)["off_target"],
        }
    pairs = {f"{a}->{b}": rates([cols[a][i] for i in test], b)["off_target"] for a, b in PAIRS}
    worst = max(codes, key=lambda c: per[c]["test_half"]["off_target"])
    out = {
        "what": "FLORES-200 devtest references judged against their own language: every off verdict is false",
        "backend": "py3langid " + importlib.metadata.version("py3langid"),
        "policy": asdict(OFF_TARGET),
        "split": "test_half = odd documents of metadata_devtest.tsv (never used for calibration); "
        "all = 1012 sentences including the calibration half",
        "summary": {
            "languages": len(codes),
            "max_false_off_target_test_half": per[worst]["test_half"]["off_target"],
            "worst_language": worst,
            "languages_over_0.5pct_test_half": [c for c in codes if per[c]["test_half"]["off_target"] > 0.5],
            "languages_over_0.5pct_all": [c for c in codes if per[c]["all"]["off_target"] > 0.5],
            "mean_unknown_test_half": round(sum(p["test_half"]["unknown"] for p in per.values()) / len(codes), 2),
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
