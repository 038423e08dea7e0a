"""Walks of a parsed file made once (``ast_nodes.walk`` of a module), and the import graph
reading a file's imports from its statements alone
(``ast_nodes.statements``, ``repository._read_imports``): the same imports, in the same order,
as the full walk of ``_read_facts``."""

from __future__ import annotations

import ast
import gc
import weakref
from pathlib import Path

import pytest

from ml_switcheroo.analysis import ast_nodes
from ml_switcheroo.analysis.repository import FileImports, _read_facts, _read_imports

NESTED = """\
import os
try:
    import numpy as np
except ImportError:
    from . import fallback as np
else:
    import json
finally:
    import sys as np
def f(x):
    import a.b
    class C:
        from .sub import g
        def m(self):
            import c
    return x
match value:
    case 1:
        from d import e as f
    case _:
        with open(p) as handle:
            import gg
for i in range(3):
    import h
else:
    while x:
        import i
async def k():
    async with x:
        import j
if x:
    from pkg.mod import *
elif y:
    import os.path as op
lam = lambda: __import__("z")
"""
_STATEMENT_KINDS = (ast.stmt, ast.excepthandler, ast.match_case)


def test_statements_are_the_walks_statements_in_its_order() -> None:
    tree = ast.parse(NESTED)
    expected = [n for n in ast_nodes.walk(tree) if isinstance(n, _STATEMENT_KINDS)]
    assert ast_nodes.statements(tree)[1:] == expected


def test_statements_of_the_repositorys_own_sources_are_the_walks() -> None:
    package = Path(ast_nodes.__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_bytes())
        expected = [n for n in ast_nodes.walk(tree) if isinstance(n, _STATEMENT_KINDS)]
        assert ast_nodes.statements(tree)[1:] == expected, path


def test_read_imports_are_the_facts_imports() -> None:
    data = NESTED.encode()
    facts = _read_facts("/r/pkg/mod.py", "pkg.mod", data)
    found = _read_imports("/r/pkg/mod.py", "pkg.mod", data)
    assert found == FileImports(facts.imports, facts.defines, tuple(facts.submodules))
    # `def f` defines a function, but `from d import e as f` under `match` binds `f` again:
    # no call of `pkg.mod.f` surely runs the `def` (probe s35O F1)
    assert facts.defines and "f" not in facts.functions
    assert "os.path" in found.submodules  # `import os.path` runs os/path.py too
    assert list(found.imports) == list(facts.imports)
    assert found.imports["np"] == "numpy"  # the first import of a name, as the full walk


def test_read_imports_of_a_package_init_are_relative_to_the_package() -> None:
    found = _read_imports("/r/pkg/__init__.py", "pkg", b"from .sub import g\n")
    assert found == FileImports({"g": "pkg.sub.g"}, False)


def test_read_imports_of_a_file_that_fails_to_parse_are_none() -> None:
    assert _read_imports("/r/pkg/m.py", "pkg.m", b"import a\ndef (:\n") == FileImports({}, False)


def test_a_modules_walk_is_made_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tree = ast.parse(NESTED)
    first = ast_nodes.walk(tree)
    expected = [n for n in ast.walk(tree) if not isinstance(n, ast.expr_context)]
    assert [id(n) for n in first] == [id(n) for n in expected]
    monkeypatch.setattr(ast_nodes, "walk_with_parents", None)  # a second walk would fail
    assert [id(n) for n in ast_nodes.walk(tree)] == [id(n) for n in first]


def test_a_walk_with_parents_is_the_modules_kept_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    tree = ast.parse(NESTED)
    order = ast_nodes.walk_with_parents(tree, {})
    monkeypatch.setattr(ast_nodes, "walk_with_parents", None)
    assert [id(n) for n in ast_nodes.walk(tree)] == [id(n) for n in order]


def test_a_walked_tree_is_freed_with_the_collector_paused() -> None:
    # the kept walk must not hold the tree itself: a cycle only the collector frees, and the
    # selection phase of a run parses thousands of files with it paused
    with ast_nodes.collector_paused():
        tree = ast_nodes.parse(NESTED)
        ast_nodes.walk(tree)
        alive = weakref.ref(tree)
        del tree
        assert alive() is None


def test_parse_and_a_paused_block_leave_the_collector_as_they_found_it() -> None:
    assert gc.isenabled()
    ast_nodes.parse("x = 1")
    assert gc.isenabled()
    with ast_nodes.collector_paused():
        ast_nodes.parse("x = 1")
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        ast_nodes.parse("x = 1")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_walk_below_the_module_is_made_again() -> None:
    function = ast.parse(NESTED).body[2]
    assert ast_nodes.walk(function) is not ast_nodes.walk(function)
    assert ast_nodes.walk(function) == ast_nodes.walk(function)
