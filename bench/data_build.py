"""Wall time and peak memory of ``bayling data build``.

Two measurements:

* ``preset``: the 100-language FLORES build (``configs/data/flores-100langs.yaml``, ~100k examples);
* ``scale``: a synthetic two-language TSV and growing ``data.total``, to show that peak memory stays flat
  while the output grows (examples are streamed through hash buckets, never held all at once).

Each build runs in a fresh subprocess under ``nice -n 10`` so its peak RSS is its own. Run as::

    python bench/data_build.py preset [--set data.tokenizer=null ...]
    python bench/data_build.py scale --totals 50000 200000 400000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DRIVER = "import sys; from bayling.cli import main; sys.exit(main(sys.argv[1:]))"


def run(preset: Path, out: Path, overrides: list[str]) -> dict:
    t0 = time.time()
    rss = out.parent / f"{out.name}.rss"
    cmd = [
        "/usr/bin/time",
        "-o",
        str(rss),
        "-f",
        "%M %U %S",
        "nice",
        "-n",
        "10",
        sys.executable,
        "-c",
        DRIVER,
        "data",
        "build",
        str(preset),
        "-o",
        str(out),
        *overrides,
    ]
    subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "BAYLING_NO_PROGRESS": "1"})
    wall = time.time() - t0
    peak_kib, user, system = rss.read_text().split()[-3:]  # peak RSS of the largest process; CPU of the tree
    stats = json.loads((out / "stats.json").read_text())
    return {
        "examples": stats["examples"],
        "wall_s": round(wall, 1),
        "build_s": stats["seconds"],
        "peak_rss_mb": round(int(peak_kib) / 1024),
        "cpu_s": round(float(user) + float(system), 1),
        "examples_per_s": round(stats["examples"] / wall),
        "languages": stats["languages_count"],
        "directions": stats["directions_count"],
        "dropped": stats["dropped"],
        "tokens": (stats.get("tokens") or {}).get("total"),
    }


def synthetic_tsv(path: Path, n: int) -> None:
    words = (
        "river mountain station train morning city market teacher library garden winter summer bridge "
        "window music letter doctor museum forest island"
    ).split()
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as f:
        f.write("id\teng_Latn\tdeu_Latn\n")
        for i in range(n):
            en = " ".join(rng.choice(words) for _ in range(12))
            f.write(f"r{i}\tThe {en} number {i} is here today.\tDas {en} Nummer {i} ist heute hier.\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["preset", "scale"])
    ap.add_argument("--preset", default=str(REPO / "configs" / "data" / "flores-100langs.yaml"))
    ap.add_argument("--set", nargs="*", default=[], help="overrides for the preset run")
    ap.add_argument("--totals", nargs="*", type=int, default=[50_000, 200_000])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.what == "preset":
            print(json.dumps(run(Path(args.preset), Path(tmp) / "out", args.set), indent=2))
            return
        tsv = Path(tmp) / "synthetic.tsv"
        synthetic_tsv(tsv, 50_000)
        for total in args.totals:
            res = run(
                REPO / "configs" / "data" / "sample.yaml",
                Path(tmp) / f"t{total}",
                [
                    f"data.source={tsv}",
                    "data.languages=[eng_Latn,deu_Latn]",
                    "data.heldout=100",
                    f"data.total={total}",
                    "data.mix={crosslingual: 0.7, interactive: 0.3}",
                    "data.formats=[chat]",
                    "data.instructions=[]",
                    "data.filters.lid=false",
                ],
            )
            print(json.dumps({"total": total, **res}))


if __name__ == "__main__":
    main()
