"""Time a FLORES-200 grid evaluation and check its HTML report renders in headless Chromium.

Runs ``configs/eval/flores_grid.yaml`` (10 languages x 2 directions, English pivot) on the given model,
prints the wall time and the mean chrF++ / off-target rate per resource tier, then screenshots
``report.html`` with headless Chromium (``apt-get install -y chromium``) and checks the plots drew pixels.

Run as (needs ../shared/data or $BAYLING_EVAL_DATA)::

    nice -n 10 python bench/eval_flores_grid.py --model gemma-3-270m --sentences 3 --out /tmp/flores_grid
    nice -n 10 python bench/eval_flores_grid.py --screenshot-only /tmp/flores_grid   # just the screenshot
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def screenshot(eval_dir: Path, width: int = 1200, height: int = 2600) -> Path:
    """Render ``eval_dir/report.html`` headless; returns the PNG path."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    png = eval_dir / "report.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            (eval_dir / "report.html").resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[:, :, :3]
    print(f"screenshot {png}: {img.shape[1]}x{img.shape[0]}, dark-pixel share {(img.mean(axis=2) < 0.5).mean():.3f}")
    return png


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--sentences", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--out", default="/tmp/bayling_flores_grid")
    ap.add_argument("--screenshot-only", metavar="EVAL_DIR")
    args = ap.parse_args()
    if args.screenshot_only:
        screenshot(Path(args.screenshot_only))
        return
    from bayling.evaluate.eval_only import run_eval_config

    t0 = time.time()
    m = run_eval_config(
        REPO / "configs" / "eval" / "flores_grid.yaml",
        [
            f"out_dir={args.out}",
            f"systems.base={args.model}",
            f"eval.data_dir={args.data}",
            f"eval.max_sentences={args.sentences}",
            f"eval.max_new_tokens={args.max_new_tokens}",
        ],
    ).metrics
    secs = time.time() - t0
    report = json.loads((Path(args.out) / "report.json").read_text(encoding="utf-8"))
    n = len(m["directions"]) * m["sentences_per_direction"]
    print(
        f"{len(m['directions'])} directions x {m['sentences_per_direction']} sentences = {n} translations "
        f"in {secs:.0f}s ({n / secs:.2f}/s)"
    )
    per = m["systems"]["base"]
    print("tier means (chrF++):", report["languages"]["systems"]["base"]["tiers"])
    print(f"off-target: {sum(v.get('off_target', 0) for v in per.values()) / len(per):.1f}% of outputs")
    screenshot(Path(args.out))


if __name__ == "__main__":
    main()
