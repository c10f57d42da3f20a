"""The two numbers a throughput benchmark needs beside its own timing: this machine's matmul peak, measured in the
same run, and the FLOPs a piece of work executed (so a throughput can be read as a fraction of that peak)."""

from __future__ import annotations

import time
from typing import Any


def matmul_peak(dtype: str = "float32", n: int = 2048, repeats: int = 5) -> float:
    """Best ``torch.matmul`` rate (GFLOP/s) of an ``n x n`` product in ``dtype`` on this process's torch threads."""
    import torch

    dt = getattr(torch, dtype)
    a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
    torch.matmul(a, b)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


class LinearFlops:
    """Counts the FLOPs of every ``nn.Linear`` call of a model while active (``2 x rows x in x out``): cheap enough
    to leave on during a timed generation (a forward hook per layer, no dispatch mode)."""

    def __init__(self, model: Any) -> None:
        import torch

        from bayling.engines import decode

        self.flops = 0
        self._handles = [
            m.register_forward_hook(self._count) for m in model.modules() if isinstance(m, torch.nn.Linear)
        ]
        # the fast decode's output layer multiplies the head's weight directly (decode.argmax_rows), no module call
        self._decode, self._argmax_rows = decode, decode.argmax_rows

        def counted(weight: Any, hidden: Any, chunk: int | None = None) -> Any:
            self.flops += 2 * hidden.shape[0] * weight.shape[0] * weight.shape[1]
            return self._argmax_rows(weight, hidden, chunk)

        decode.argmax_rows = counted

    def _count(self, module: Any, args: Any, output: Any) -> None:
        self.flops += 2 * output.numel() * module.in_features

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._decode.argmax_rows = self._argmax_rows
