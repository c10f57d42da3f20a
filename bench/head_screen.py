"""Would a bf16 output layer, checked in float32, speed up the evaluation's greedy decoding? (Measured: with the
large channels split out, yes: :class:`bayling.engines.decode.ScreenedHead`; with one bound over the whole state, no.)

On a CPU with native bf16 the output layer's product, the largest matrix product of a decoding step for
Gemma-3-270M (640 x 262,144), runs about 3x faster in bf16 than in float32. Greedy decoding in float32 could use it
exactly: take the bf16 logits, bound their error against the float32 ones, and score again in float32 only the
tokens whose bf16 logit comes within twice the bound of the row's best. Rounding the hidden state ``h`` and the
weight rows ``w_j`` to bf16 moves a logit by at most ``(2u + u^2) sum_i |h_i w_ji|`` (``u = 2^-8``), plus the
float32 sums' own rounding, so with Cauchy-Schwarz ``bound = c ||h|| max_j ||w_j||`` (``c ~ 2u``).

This script measures whether that pays, on the hidden states the evaluation's fast path actually computes: it
runs :func:`bayling.evaluate.translation.translate` (5-shot base, ``decode: fast``, float32) on a slice of the
FLORES grid, keeps every last hidden state that reaches the output layer, then reports

* the norm of those states and their largest coordinate (Gemma's final states carry one large coordinate);
* the largest and the mean per-row error of the bf16 logits against float32, and how often the bf16 argmax
  differs from the float32 one;
* how many tokens a row must score again under the rigorous bound (mean, median, 99th percentile) and under
  a bound of 5x the error observed in that very row (not rigorous: the best case for a screen);
* the time of the float32 output layer (:func:`bayling.engines.decode.argmax_rows`) and of the bf16 product
  alone at the evaluation's batch size;
* the screen the decoding path uses (:class:`bayling.engines.decode.ScreenedHead`: the largest channels in two
  bf16 parts each, a per-row bound over the rest, every token within it rescored in float32): in how many rows
  its token differs from :func:`~bayling.engines.decode.argmax_rows`'s, how many tokens it rescores, how often it
  falls back to the float32 product, and its time at the same batch size.

Run as::

    python bench/head_screen.py --out bench/results/head_screen_cpu_gemma.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from eval_throughput import load_slice  # noqa: E402
from provenance import provenance  # noqa: E402

U = 2.0**-8
"""Unit roundoff of bf16 (8 significant bits)."""


def capture_states(model_dir: Path, bitexts: list[Any], demos: dict[str, list], batch_size: int) -> Any:
    """Every hidden state that reaches the fast path's output layer while the slice is translated."""
    import torch

    from bayling.engines import decode
    from bayling.engines.hf import TransformersEngine
    from bayling.evaluate.translation import translate

    engine = TransformersEngine(model_dir, dtype="float32", device="cpu", batch_size=batch_size, decode="fast")
    engine.screen_head = False  # every state through argmax_rows, where it is kept
    kept: list[Any] = []
    real = decode.argmax_rows

    def keep(weight: Any, hidden: Any, chunk: int | None = None) -> Any:
        kept.append(hidden.detach().clone())
        return real(weight, hidden, chunk)

    decode.argmax_rows = keep
    try:
        translate(engine, bitexts, 128, seed=0, fewshot=demos, length_rule=(3.0, 16), loop_span=32)
    finally:
        decode.argmax_rows = real
    return engine, torch.cat(kept)


def quantiles(x: Any) -> dict[str, float]:
    import torch

    q = torch.quantile(x.float(), torch.tensor([0.5, 0.9, 0.99]))
    return {
        "mean": round(float(x.float().mean()), 3),
        "median": round(float(q[0]), 3),
        "p90": round(float(q[1]), 3),
        "p99": round(float(q[2]), 3),
        "max": round(float(x.max()), 3),
    }


def best_of(fn: Any, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="gemma-3-270m")
    p.add_argument("--flores-dir", default=None)
    p.add_argument("--directions", default="eng_Latn-yor_Latn,eng_Latn-hin_Deva,eng_Latn-deu_Latn,fra_Latn-eng_Latn")
    p.add_argument("--sentences", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default=str(REPO / "bench/results/head_screen_cpu_gemma.json"))
    a = p.parse_args()

    import torch

    from bayling.engines.decode import ScreenedHead, argmax_rows
    from bayling.models import resolve_model

    load_start = os.getloadavg()
    flores = Path(
        a.flores_dir or os.environ.get("BAYLING_FLORES_DIR") or REPO.parent / "shared" / "data" / "flores200"
    )
    bitexts, demos = load_slice(flores, a.directions.split(","), a.sentences, 5)
    engine, states = capture_states(resolve_model(a.model), bitexts, demos, a.batch_size)
    weight = engine.model.get_output_embeddings().weight.detach()
    low = weight.to(torch.bfloat16)
    wmax = float(weight.norm(dim=1).max())
    errs, wrong, rigorous, observed = [], 0, [], []
    with torch.inference_mode():
        for i in range(0, len(states), 128):
            h = states[i : i + 128]
            exact = torch.mm(h, weight.t())
            approx = torch.mm(h.to(torch.bfloat16), low.t()).float()
            err = (approx - exact).abs().max(1).values
            errs.append(err)
            wrong += int((approx.argmax(1) != exact.argmax(1)).sum())
            best = approx.max(1).values
            for bound, out in (
                (1.25 * (2 * U + U * U) * h.norm(dim=1) * wmax, rigorous),
                (5 * err, observed),
            ):
                floor = best - 2 * bound - 2.1 * U * (best.abs() + 2 * bound)
                out.append((approx >= floor[:, None]).sum(1))
    err, rigorous_n, observed_n = torch.cat(errs), torch.cat(rigorous), torch.cat(observed)
    rows = min(a.batch_size, len(states))
    h = states[:rows].contiguous()
    t_fp32 = best_of(lambda: argmax_rows(weight, h))
    t_bf16 = best_of(lambda: torch.mm(h.to(torch.bfloat16), low.t()))
    screen = ScreenedHead(weight)
    screen_differs = 0
    with torch.inference_mode():
        screen(states[:rows].contiguous())  # its channels from the first batch, as in decoding
        screen.rescored = 0
        for i in range(0, len(states), rows):
            part = states[i : i + rows].contiguous()
            screen_differs += int((screen(part) != argmax_rows(weight, part)).sum())
        rescored, fallbacks = screen.rescored, screen.fallbacks
        t_screen = best_of(lambda: screen(h))
    report = {
        "benchmark": "head_screen",
        **provenance(load_start),
        "native_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "settings": {
            "model": a.model,
            "directions": a.directions.split(","),
            "sentences_per_direction": a.sentences,
            "shots": 5,
            "batch_size": a.batch_size,
            "path": "translate(), decode fast, float32, loop_span 32, limit min(128, 3 x source + 16)",
            "rigorous_bound": "1.25 (2u + u^2) ||h|| max_j ||w_j||, u = 2^-8; candidates: bf16 logit >= best - 2 bound"
            " - 2.1 u (|best| + 2 bound)",
        },
        "states": len(states),
        "hidden_norm": quantiles(states.norm(dim=1)),
        "hidden_largest_coordinate": quantiles(states.abs().max(1).values),
        "bf16_logit_error_per_row_max": quantiles(err),
        "bf16_argmax_differs": wrong,
        "candidates_rigorous_bound": quantiles(rigorous_n),
        "rows_rigorous_over_1024_candidates": int((rigorous_n > 1024).sum()),
        "candidates_5x_observed_error": quantiles(observed_n),
        "screened_head": {
            "channels_split": screen.split.tolist(),
            "rows_differing_from_float32_argmax": screen_differs,
            "tokens_rescored_per_row": round(rescored / len(states), 2),
            "fallbacks_to_float32": fallbacks,
        },
        "seconds_at_batch": {
            "rows": rows,
            "float32_argmax_rows": round(t_fp32, 4),
            "bf16_product_alone": round(t_bf16, 4),
            "screened_head": round(t_screen, 4),
        },
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine",)}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
