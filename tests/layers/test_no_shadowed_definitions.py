"""No module or class defines the same function or class name twice.

A later ``def`` silently replaces an earlier one of the same name. Merging two branches once
left two module-level ``_parameters_of`` functions in ``analysis/plan.py``, and the later one
broke twelve tests. Ruff's F811 does not report it when the first definition is used before
the second appears.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ml_switcheroo"
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _twice_defined(body: list[ast.stmt]) -> list[str]:
    """Names defined by two statements of ``body`` (properties' setters excepted)."""
    names = Counter(
        node.name
        for node in body
        if isinstance(node, DEFINITIONS)
        and not any(
            isinstance(d, ast.Attribute) and d.attr in {"setter", "deleter"}
            for d in getattr(node, "decorator_list", [])
        )
    )
    return sorted(name for name, count in names.items() if count > 1)


def _shadowed(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [f"{path.name}: {name}" for name in _twice_defined(tree.body)]
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            found += [f"{path.name}: {node.name}.{name}" for name in _twice_defined(node.body)]
    return found


def test_no_definition_is_shadowed_by_a_later_one() -> None:
    shadowed = [name for path in sorted(PACKAGE.rglob("*.py")) for name in _shadowed(path)]
    assert shadowed == []


def test_the_check_finds_a_shadowed_function() -> None:
    body = ast.parse("def f():\n    pass\nx = f()\ndef f():\n    return 1\n").body
    assert _twice_defined(body) == ["f"]
