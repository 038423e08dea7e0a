"""The package's layers: a module imports only its own layer or lower ones, and no import
cycle exists, counting imports inside functions too (read with ``ast``, nothing imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import ml_switcheroo

PACKAGE = Path(ml_switcheroo.__file__).resolve().parent
# Lowest first. A module's layer is its first package component below ml_switcheroo.
LAYERS: dict[str, int] = {
    "__init__": -1,  # the package root imports nothing
    "optax_torch": -1,  # the runtime of --exact output: standalone
    "spec": 0,
    "analysis": 1,
    "model": 2,
    "targets": 3,
    "rewrite": 4,
    "app": 5,
    "codemods": 5,
    "convert": 5,
    "cli": 5,
    "__main__": 5,
    "core": 6,  # the seed's import paths, re-exported
    "plugins": 6,
}


def module_name(path: Path) -> str:
    """``ml_switcheroo.spec.template`` for ``ml_switcheroo/spec/template.py``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``path`` imports anywhere in its body (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules and name != "ml_switcheroo"}


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imported_modules(path, modules) for name, path in modules.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``importer -> imported`` for every import of a higher layer."""
    return sorted(
        f"{importer} -> {imported}"
        for importer, targets in graph.items()
        for imported in targets
        if layer_of(imported) > layer_of(importer)
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_belongs_to_a_layer() -> None:
    unknown = [
        name
        for name in package_modules()
        if name.split(".")[1:2] and name.split(".")[1] not in LAYERS
    ]
    assert unknown == []


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports(import_graph()) == []


def test_the_package_has_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_an_upward_import_is_found_inside_a_function(tmp_path: Path) -> None:
    spec = tmp_path / "spec.py"
    spec.write_text("def late():\n    from ml_switcheroo.rewrite import engine\n")
    modules = {"ml_switcheroo.rewrite.engine": spec}
    graph = {"ml_switcheroo.spec.x": imported_modules(spec, modules)}
    assert upward_imports(graph) == ["ml_switcheroo.spec.x -> ml_switcheroo.rewrite.engine"]


def test_a_deferred_import_that_closes_a_loop_is_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
