"""bf16 against fp32 matrix products on this CPU: whether bf16 weights can train (or evaluate) here at all.

On a CPU without native bf16 instructions (AVX2 only: no AVX512-BF16, no AMX) oneDNN has no fast bf16 GEMM, and
torch's fallback is far slower than fp32; bayling then trains LoRA on fp32 weights and computes the label-only head
in fp32 (``bayling.train.loss.fast_bf16_matmul``). The shapes are Gemma-3-270M's: a body projection for 512 tokens,
and the label-only head's backward ``[k, 262144] @ [262144, 640]``.

Run as::

    python bench/bf16_matmul.py --out bench/results/bf16_matmul_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from provenance import provenance  # noqa: E402

SHAPES = {
    "body [512, 640] @ [640, 2048]": (512, 640, 2048),
    "head backward [32, 262144] @ [262144, 640]": (32, 262144, 640),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(REPO / "bench/results/bf16_matmul_cpu.json"))
    a = p.parse_args()
    import torch

    load = os.getloadavg()
    rows = []
    for name, (m, k, n) in SHAPES.items():
        row = {"shape": name}
        for dtype in ("float32", "bfloat16"):
            dt = getattr(torch, dtype)
            x, w = torch.randn(m, k, dtype=dt), torch.randn(k, n, dtype=dt)
            t0 = time.perf_counter()
            torch.mm(x, w)
            row[f"{dtype}_seconds"] = round(time.perf_counter() - t0, 4)
        row["bf16_over_fp32"] = round(row["bfloat16_seconds"] / row["float32_seconds"], 1)
        rows.append(row)
        print(row)
    report = {
        "benchmark": "bf16_matmul",
        **provenance(load),
        "native_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "results": rows,
    }
    Path(a.out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
