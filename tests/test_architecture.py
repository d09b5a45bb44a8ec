"""The package's shape: layers that import only downwards, no import cycles, small modules, a short top level.

The import graph is read from the source (ast), every import statement counted, inside functions too:
a cycle is broken by moving the shared piece one layer down, not by hiding an import in a function.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("medimg_core", "medimg_app")
# lowest first: a module may import its own layer and the layers before it, never one after it
LAYERS = ("medimg_core.tasks", "medimg_core.io", "medimg_core.data", "medimg_core.models", "medimg_core.inference",
          "medimg_core.training", "medimg_core.reports", "medimg_core.cli", "medimg_core", "medimg_app")
MAX_TOP_LEVEL_MODULES = 12
MAX_LINES = 400


def module_files() -> dict[str, Path]:
    """Every module of the two packages by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = module_files()


def imported_modules(name: str, path: Path) -> set[str]:
    """The package modules a module imports (relative and absolute; `from x import y` counts x.y when y is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found |= {t for t in [target] + [f"{target}.{a.name}" for a in node.names] if t in MODULES}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
    return found - {name}


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def layer(name: str) -> int:
    """The index in LAYERS of the most specific layer a module belongs to."""
    matches = [i for i, prefix in enumerate(LAYERS) if name == prefix or name.startswith(prefix + ".")]
    return max(matches, key=lambda i: len(LAYERS[i]))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
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
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycles():
    assert cycles(GRAPH) == []


def test_no_module_imports_a_higher_layer():
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                    if layer(b) > layer(a) and not (a == "medimg_core" and b.startswith("medimg_core.")))
    assert upward == []


def test_the_library_never_imports_the_app():
    assert not [a for a, targets in GRAPH.items() if a.startswith("medimg_core") and any(
        t.startswith("medimg_app") for t in targets)]


def test_every_subpackage_says_what_it_holds_and_what_it_may_import():
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name.count(".") == 1:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "import" in doc.lower() and len(doc) > 80, f"{name}: the docstring must say what it holds and may import"


def test_the_top_level_of_the_library_is_short():
    top = [p for p in (ROOT / "medimg_core").glob("*.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, sorted(p.name for p in top)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_longer_than_400_lines(name):
    assert len(MODULES[name].read_text().splitlines()) <= MAX_LINES
