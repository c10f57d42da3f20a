"""What every results file in ``bench/results/`` records beside its numbers: the command, the commit, the machine.

A number in the README or ``docs/`` stands on a results file; the file must say how to make the number again
(``command``), from which code (``commit``, and whether the tree had uncommitted changes), and on what (cores, the
threads torch used, the load average before and after: whether the cores were idle).
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def provenance(load_at_start: tuple[float, float, float] | None = None) -> dict[str, Any]:
    """``command``, ``commit``, ``dirty``, ``date`` and ``machine`` (platform, cores, torch threads, load average at
    the start, given, and now) for a results file."""
    threads = None
    if "torch" in sys.modules:
        threads = sys.modules["torch"].get_num_threads()
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "command": shlex.join(["python", *sys.argv]),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch_threads": threads,
            "load_avg_start": [round(x, 2) for x in load_at_start] if load_at_start else None,
            "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        },
    }
