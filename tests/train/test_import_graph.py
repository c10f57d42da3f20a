"""The import graph inside ``bayling.train``: no cycle, and the stages meet only through their shared helpers.

Imports inside functions count too: the old ``sft`` <-> ``cpt`` <-> ``preference`` cycle was made of exactly
those (the orchestrator lived in ``sft`` and the stages took ``fit`` / ``stage_done`` from it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import bayling.train

TRAIN = Path(bayling.train.__file__).parent


def import_graph(package_dir: Path, package: str) -> dict[str, set[str]]:
    """``{module: modules of the same package it imports}`` for every ``.py`` file directly in ``package_dir``.

    Every ``import`` / ``from ... import`` statement counts, at module level or inside a function, relative
    ones resolved; ``from PACKAGE import name`` is an edge to the submodule ``name`` when there is one, else
    to the package's ``__init__``.
    """
    modules = {p.stem: p for p in package_dir.glob("*.py")}
    name_of = {stem: package if stem == "__init__" else f"{package}.{stem}" for stem in modules}
    known = set(name_of.values())
    graph: dict[str, set[str]] = {}
    for stem, path in sorted(modules.items()):
        me = name_of[stem]
        here = me if stem == "__init__" else me.rsplit(".", 1)[0]  # the package a relative import starts from
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")
                    anchor = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in known else base)
        graph[me] = {t for t in targets if t in known and t != me}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as ``[a, b, ..., a]``, or ``[]`` when the graph has none (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_the_helper_sees_function_level_and_relative_imports(tmp_path):
    """The graph builder finds a cycle hidden in function bodies and relative imports (it can fail)."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.b import g\n    return g()\n")
    (pkg / "b.py").write_text("from . import c\n\ndef g():\n    return c\n")
    (pkg / "c.py").write_text("import os\n\ndef h():\n    from .a import f\n    return f\n")
    (pkg / "d.py").write_text("from pkg import a\n")
    graph = import_graph(pkg, "pkg")
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}, "pkg.d": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    assert find_cycle({**graph, "pkg.c": set()}) == []


def test_no_import_cycle_inside_bayling_train():
    graph = import_graph(TRAIN, "bayling.train")
    assert len(graph) >= 10 and "bayling.train.sft" in graph
    assert find_cycle(graph) == []


def test_stages_share_helpers_and_never_import_each_other():
    """cpt, sft, preference and grpo each take the shared helpers; only the orchestrator knows them all."""
    graph = import_graph(TRAIN, "bayling.train")
    stages = {f"bayling.train.{s}" for s in ("cpt", "sft", "preference", "grpo")}
    for stage in stages:
        assert not graph[stage] & stages, f"{stage} imports another stage: {graph[stage] & stages}"
        assert "bayling.train.stage" in graph[stage], stage
        assert "bayling.train.orchestrator" not in graph[stage], stage
    assert graph["bayling.train.orchestrator"] >= stages
    # model loading stays apart from the distributed helpers, which sit below it
    assert "bayling.train.model" not in graph["bayling.train.distributed"]
    assert "bayling.train.distributed" in graph["bayling.train.model"]
