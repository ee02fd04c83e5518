"""The package's imports: no cycle, and layers that point one way (the table in ``docs/architecture.md``).

Every module of ``ast_deploy/`` is parsed (not imported): its imports at module level *and* inside
functions, absolute or relative, count; ``from . import x`` counts as an import of the submodule ``x``
where there is one. What sits under ``if TYPE_CHECKING:`` does not run, so it does not count. The
runtime registry's ``importlib`` loading of the runtime modules is data, not an import statement: it
is not seen here (those modules import the registry, not the other way round).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "ast_deploy"
ARCHITECTURE = REPO_ROOT / "docs" / "architecture.md"
LAYERS_HEADING = "## Layers, bottom up"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module of the package
    line: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line})"


def package_modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (a package: ``__init__.py`` is the package)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: anywhere in the tree, but not in ``if TYPE_CHECKING:`` bodies."""
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for statement in child.orelse:
                    visit_statement(statement)
                continue
            visit_statement(child)

    def visit_statement(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        visit(node)

    visit(tree)
    return found


def module_imports(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """The imports of module ``name`` that land on modules of the package (itself excluded)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # ``from pkg import sub`` imports the submodule where there is one, else a name of ``pkg``.
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        for target in targets:
            while target and target not in modules:  # ``import a.b.c`` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                out.append(Import(name, target, node.lineno))
    return out


def import_graph(root: Path) -> dict[str, list[Import]]:
    modules = package_modules(root)
    return {name: module_imports(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, list[Import]]) -> list[list[Import]]:
    """One cycle (as its imports, in order) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan; the package has well under 1000 modules of nesting
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for edge in graph[v]:
            w = edge.target
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(group, graph) for group in groups]


def _cycle_in(group: set[str], graph: dict[str, list[Import]]) -> list[Import]:
    """A shortest cycle through the first module of ``group`` (breadth first, inside the group)."""
    start = min(group)
    paths: dict[str, list[Import]] = {start: []}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for edge in graph[v]:
                if edge.target == start:
                    return [*paths[v], edge]
                if edge.target in group and edge.target not in paths:
                    paths[edge.target] = [*paths[v], edge]
                    following.append(edge.target)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")


# --- the layer table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    rank: int  # 0 at the bottom
    name: str
    paths: tuple[str, ...]  # relative to ast_deploy/: "x.py" a module, "x/" a package and all it holds


def layer_table(text: str) -> list[Layer]:
    """The rows of the first table under :data:`LAYERS_HEADING`, bottom up; the second column's
    backticked paths are the layer's modules."""
    section = text.split(LAYERS_HEADING, 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    body = [r for r in rows[1:] if not set("".join(r)) <= set("-: ")]  # without the header and its rule
    return [Layer(i, row[0], tuple(re.findall(r"`([^`]+)`", row[1]))) for i, row in enumerate(body)]


def layer_of(file: str, layers: list[Layer]) -> Layer | None:
    """The layer whose most specific path holds ``file`` (relative to the package: ``export/manifest.py``
    is in the layer that lists it, not in the one that lists ``export/``)."""
    best, best_length = None, -1
    for layer in layers:
        for path in layer.paths:
            holds = file == path or (path.endswith("/") and file.startswith(path))
            if holds and len(path) > best_length:
                best, best_length = layer, len(path)
    return best


def module_layers(root: Path, layers: list[Layer]) -> dict[str, Layer | None]:
    """Module name -> its layer (``None``: in no layer)."""
    return {m: layer_of(path.relative_to(root).as_posix(), layers) for m, path in package_modules(root).items()}


def upward_imports(graph: dict[str, list[Import]], placed: dict[str, Layer]) -> list[str]:
    """Every import of a module of a higher layer than the importer's, as a line naming both layers."""
    return [
        f"{e}: {placed[e.source].name} imports {placed[e.target].name}"
        for edges in graph.values()
        for e in edges
        if placed[e.target].rank > placed[e.source].rank
    ]


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Import]]:
    return import_graph(PACKAGE)


@pytest.fixture(scope="module")
def layers() -> list[Layer]:
    return layer_table(ARCHITECTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def placed(layers) -> dict[str, Layer | None]:
    return module_layers(PACKAGE, layers)


def test_the_package_has_no_import_cycle(graph):
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(
        " -> ".join([c[0].source, *(f"{e.target} (line {e.line} of {e.source})" for e in c)]) for c in found
    )


def test_every_module_is_in_one_layer_of_the_architecture_table(layers, placed):
    assert len(layers) >= 5, f"no layer table under {LAYERS_HEADING!r} in {ARCHITECTURE}"
    listed = [p for layer in layers for p in layer.paths]
    assert len(listed) == len(set(listed)), f"paths listed twice: {sorted({p for p in listed if listed.count(p) > 1})}"
    missing = [p for p in listed if not (PACKAGE / p).exists() or p.endswith("/") != (PACKAGE / p).is_dir()]
    assert not missing, f"the layer table lists what ast_deploy/ does not have: {missing}"
    unplaced = sorted(m for m, layer in placed.items() if layer is None)
    assert not unplaced, f"modules in no layer of {ARCHITECTURE.name}'s table: {unplaced}"


def test_imports_point_down_the_layers(graph, placed):
    assert None not in placed.values(), "every module needs a layer first (the test above)"
    upward = upward_imports(graph, placed)
    assert not upward, "imports of a higher layer (docs/architecture.md, 'Layers, bottom up'):\n" + "\n".join(upward)


def test_the_walk_sees_function_level_relative_and_submodule_imports(graph):
    """What the checks above rely on, on imports this package is known to have."""
    edges = {(e.source, e.target) for es in graph.values() for e in es}
    assert ("ast_deploy.artifacts", "ast_deploy.export.manifest") in edges  # module level, relative
    assert ("ast_deploy.export", "ast_deploy.parity.compare") in edges  # inside a function
    assert ("ast_deploy.export", "ast_deploy.export.openvino") in edges  # ``from . import openvino``
    assert ("ast_deploy.export", "ast_deploy") in edges  # ``from .. import __version__``: the package itself
    assert len(graph) > 80 and len(edges) > 300


def test_the_walk_finds_cycles_and_skips_type_checking(tmp_path):
    """The checker on a package made for it: a cycle through a function-level ``from . import``, another
    through ``import pkg.x``, and a ``TYPE_CHECKING`` import that would close a third but does not run."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from . import b\n",
        "b.py": "from .sub import c\nfrom .a import f\n",
        "sub/__init__.py": "",
        "sub/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..b import x\nelse:\n    import pkg.d\n",
        "d.py": "import pkg.sub.c\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = import_graph(pkg)
    assert {(e.source, e.target) for es in graph.values() for e in es} == {
        ("pkg.a", "pkg.b"),
        ("pkg.b", "pkg.sub.c"),
        ("pkg.b", "pkg.a"),
        ("pkg.sub.c", "pkg.d"),
        ("pkg.d", "pkg.sub.c"),
    }
    found = sorted([e.source for e in cycle] for cycle in cycles(graph))
    assert found == [["pkg.a", "pkg.b"], ["pkg.d", "pkg.sub.c"]]
    layers = [Layer(0, "low", ("sub/", "d.py")), Layer(1, "high", ("a.py", "__init__.py")), Layer(2, "b", ("b.py",))]
    placed = {m: layer.name for m, layer in module_layers(pkg, layers).items()}
    assert placed == {
        "pkg": "high",
        "pkg.a": "high",
        "pkg.b": "b",
        "pkg.d": "low",
        "pkg.sub": "low",
        "pkg.sub.c": "low",
    }
    # a (high) importing b (the top layer) points up; d and sub.c share a layer: a cycle, but nothing upward
    assert upward_imports(graph, module_layers(pkg, layers)) == ["pkg.a -> pkg.b (line 2): high imports b"]
    assert layer_of("b.py", [Layer(0, "a package b", ("b/",))]) is None
    assert layer_of("sub/c.py", [Layer(0, "all of sub", ("sub/",)), Layer(1, "just c", ("sub/c.py",))]).name == "just c"
