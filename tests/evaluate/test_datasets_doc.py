"""``docs/datasets.md`` lists every benchmark of the registry and every named test set, each with its source."""

from __future__ import annotations

from pathlib import Path

from bayling.evaluate.benchmarks import REGISTRY
from bayling.testsets import TESTSETS

DOC = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"


def test_every_set_bayling_reads_has_a_row():
    rows = {
        line.split("|")[1].strip(): line
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith("| `")
    }
    for name, b in REGISTRY.items():
        assert f"`{name}`" in rows, name
        assert b.source.rstrip("/") in rows[f"`{name}`"], (name, b.source)  # Hub id or data-root folder
    for name in TESTSETS:
        assert f"`{name}`" in rows, name
