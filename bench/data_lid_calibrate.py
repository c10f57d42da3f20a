"""Calibrate the language-ID backends on FLORES-200 devtest and write ``src/bayling/data/lid_labels.tsv``.

For every FLORES-200 language and backend, the backend labels all 1012 devtest sentences. The accepted labels
are the fewest most frequent ones (at most 3) that cover at least 90% of them; the language is ``unchecked``
when no such set exists or when it includes English's or Chinese's own label (a check that passes English
text is no check). ``own`` means every accepted label names the language itself; ``shared`` means the backend
lumps it with a neighbour.

Run as (needs ../shared/data/flores200; heliport is optional)::

    nice -n 10 python bench/data_lid_calibrate.py [--flores ../shared/data/flores200] [--backends py3langid,heliport]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from bayling.data.lid import _backend
from bayling.data.parallel import aligned_files, iter_aligned
from bayling.errors import UnknownLanguageError
from bayling.languages import LANGUAGES, get_language

COVER, MAX_LABELS = 0.90, 3
OUT = Path(__file__).resolve().parents[1] / "src" / "bayling" / "data" / "lid_labels.tsv"


def same_language(label: str, code: str) -> bool:
    try:
        lang = get_language(label)
    except UnknownLanguageError:
        return False
    own = get_language(code)
    return lang.iso639_3 == own.iso639_3 or lang.code == own.code


def calibrate(preds: dict[str, list[str]]) -> dict[str, tuple[list[str], str, float]]:
    top = {c: Counter(p).most_common(1)[0][0] for c, p in preds.items()}
    pivots = {top[c] for c in ("eng_Latn", "zho_Hans") if c in top}
    out = {}
    for code, p in preds.items():
        counts, n = Counter(p).most_common(), len(p)
        labels, covered = [], 0
        for label, k in counts[:MAX_LABELS]:
            labels.append(label)
            covered += k
            if covered / n >= COVER:
                break
        acc = covered / n
        is_pivot = code in ("eng_Latn", "zho_Hans", "zho_Hant")
        if acc < COVER or (not is_pivot and any(lbl in pivots and not same_language(lbl, code) for lbl in labels)):
            status = "unchecked"
        elif all(same_language(lbl, code) for lbl in labels):
            status = "own"
        else:
            status = "shared"
        out[code] = (labels, status, round(acc, 4))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flores", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "flores200"))
    ap.add_argument("--backends", default="py3langid,heliport")
    args = ap.parse_args()
    codes = sorted(LANGUAGES)
    aligned_files(Path(args.flores), codes, "devtest")  # fail early when a language is missing
    cols: dict[str, list[str]] = {c: [] for c in codes}
    for rec in iter_aligned(args.flores, codes, "devtest"):
        for c in codes:
            cols[c].append(rec.texts[c])
    rows = []
    for backend in args.backends.split(","):
        try:
            impl = _backend(backend)
        except ImportError as e:
            print(f"skip {backend}: {e}")
            continue
        t0 = time.time()
        preds = {c: impl.identify(cols[c]) for c in codes}
        secs = time.time() - t0
        cal = calibrate(preds)
        n_sent = sum(len(v) for v in cols.values())
        status = Counter(s for _, s, _ in cal.values())
        print(f"{backend}: {n_sent} sentences in {secs:.1f}s ({n_sent / secs:.0f}/s); {dict(status)}")
        print(f"  unchecked: {' '.join(c for c, (_, s, _) in cal.items() if s == 'unchecked')}")
        rows += [(backend, c, ",".join(lbl), s, a) for c, (lbl, s, a) in cal.items()]
    if not rows:
        raise SystemExit("no backend available")
    old = OUT.read_text(encoding="utf-8").splitlines()[1:] if OUT.is_file() else []
    done = {r[0] for r in rows}
    kept = [line for line in old if line.split("\t")[0] not in done]  # keep rows of backends not run now
    lines = ["backend\tcode\tlabels\tstatus\taccuracy"] + kept + ["\t".join(map(str, r)) for r in rows]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(lines) - 1} rows)")


if __name__ == "__main__":
    main()
