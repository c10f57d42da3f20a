"""The import graph of ``src/bayling``: a shared floor, four stages side by side, the pipeline and CLI on top.

* **floor**: every module directly under ``bayling/`` and ``bayling/engines/`` (config loader, digests and
  journals, I/O, run layout, records and test sets, languages, prompts, chat formats, models, engines...). It
  imports no stage.
* **stages**: ``bayling.data``, ``bayling.train``, ``bayling.evaluate``, ``bayling.serve``. Each imports the
  floor and itself only, never another stage.
* **top**: ``bayling.pipeline`` and ``bayling.cli``, which compose the stages, ``bayling.ablation`` (arms of a
  run, each a run of the pipeline) and ``bayling.card`` (the model card the pipeline and ``bayling push`` write
  from a whole run).

Imports are read with :mod:`ast`, including those inside functions (a lazy import is still a dependency);
imports under ``if TYPE_CHECKING:`` are annotations only and not counted between layers. Inside a stage they
are: a circle closed by a typing-only import is still a circle a reader has to follow (and the guard is there
only because the import would fail at run time). ``__main__`` modules are entry scripts (``python -m
bayling.train`` runs the CLI) and may import the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
STAGES = ("data", "train", "evaluate", "serve")
TOP = ("pipeline", "cli", "card", "ablation")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted((SRC / "bayling").rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, typing_too: bool = False) -> set[str]:
    """The ``bayling`` modules ``path`` imports (``from bayling import x`` counts as ``bayling.x`` when x is one);
    with ``typing_too``, also those under ``if TYPE_CHECKING:``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not typing_too:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "bayling")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "bayling":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in MODULES else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _owner(module: str) -> str:
    """``floor``, a stage name, or ``top``, for a ``bayling`` module name."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in STAGES:
        return parts[1]
    if len(parts) > 1 and parts[1] in TOP:
        return "top"
    return "floor"


GRAPH = {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}
TYPED_GRAPH = {m: {i for i in _imports(p, typing_too=True) if i in MODULES and i != m} for m, p in MODULES.items()}


def test_the_graph_is_read():
    assert "bayling.records" in GRAPH["bayling.testsets"]  # a top-level import
    assert "bayling.evaluate.report" in GRAPH["bayling.evaluate.stage"]  # an import inside a function
    assert "bayling.pipeline" in GRAPH["bayling.cli._common"]
    assert _owner("bayling.engines.factory") == "floor" and _owner("bayling.cli.data") == "top"
    assert {_owner(m) for m in MODULES} == {"floor", "top", *STAGES}


@pytest.mark.parametrize("layer", ["floor", *STAGES])
def test_no_layer_imports_a_stage_beside_it_or_anything_above_it(layer):
    """The floor imports no stage (and not the pipeline or CLI); a stage imports the floor and itself only."""
    bad = [
        f"{m} imports {i}"
        for m in sorted(MODULES)
        if _owner(m) == layer and not m.endswith("__main__")
        for i in sorted(GRAPH[m])
        if _owner(i) not in ("floor", layer)
    ]
    assert bad == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def test_no_import_cycle():
    """No module depends on itself through others (a package's ``__init__`` re-exporting its modules included)."""
    assert _cycles(GRAPH) == []


def test_cycles_are_found():
    """The cycle finder sees a circle closed by a typing-only import, and the typed graph holds such imports."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert "bayling.train.config" in TYPED_GRAPH["bayling.train.args"]  # under `if TYPE_CHECKING:` there
    assert "bayling.train.config" not in GRAPH["bayling.train.args"]


@pytest.mark.parametrize("stage", STAGES)
def test_no_import_cycle_inside_a_stage_even_through_typing_imports(stage):
    """Inside one stage, no module reaches itself, counting imports made for annotations only."""
    inside = {m: {i for i in TYPED_GRAPH[m] if _owner(i) == stage} for m in MODULES if _owner(m) == stage}
    assert _cycles(inside) == []


def test_each_stage_package_exports_its_entry_point():
    """``build``, ``train`` and ``evaluate`` are importable from their packages, with a typed result."""
    import dataclasses

    from bayling.data import DataResult, build
    from bayling.evaluate import EvalResult, evaluate
    from bayling.train import TrainResult, train

    assert callable(build) and callable(train) and callable(evaluate)
    assert all(dataclasses.is_dataclass(r) for r in (DataResult, TrainResult, EvalResult))
