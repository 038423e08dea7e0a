"""Another file of the repository reading a module-level variable of this one.

``opt = torch.optim.SGD(...)`` at module level (or in a function declaring ``global opt``) is
an attribute of its module: a file doing ``from pkg.main import opt`` (a re-export too),
``main.opt.step()``, ``getattr(main, "opt")`` or ``from pkg.main import *`` keeps its torch
calls on what this file turns into a functional optimizer. ``module_global_reader`` finds the
first such place; the constructor's file then escapes the value, naming it.
"""

from __future__ import annotations

import ast

from ml_switcheroo.analysis import ast_nodes
from ml_switcheroo.analysis.repository import (
    Place,
    RepositoryIndex,
    Unknown,
    _absolute,
    _is_getattr_of,
)


def module_global_reader(index: RepositoryIndex, path: str, name: str) -> Place | Unknown | None:
    """The first place another file of the repository may read ``path``'s module-level
    ``name`` (its import of it, star import of the module, ``getattr`` reaching ``name`` in a
    file importing the module; in any file naming the module: an attribute named ``name`` on
    anything, ``module.name``, ``sys.modules[...].name``, ``import_module(...).name``, or
    ``vars(x)["name"]``); a file that fails to parse and may hold one is an ``Unknown``. None:
    no other file reads it."""
    module = index.module_of(path)
    last = module.rpartition(".")[2]
    holding = set(index.with_word(name)) & set(index.with_word(last)) if last else set()
    for other in sorted(holding - {path}):
        facts = index.facts(other)
        if facts.error is not None or facts.tree is None:
            return facts.error or Unknown(Place(other, 0), "cannot be read")
        line = _reading_line(facts.tree, facts.module, other, module, name)
        if line is not None:
            return Place(other, line)
    return None


def _reading_line(tree: ast.Module, own: str, path: str, module: str, name: str) -> int | None:
    """The line of ``tree``'s first read of ``module.name`` (see ``module_global_reader``)."""
    package = own if path.endswith("__init__.py") else own.rpartition(".")[0]
    imports_module = False
    for node in ast_nodes.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imports_module |= alias.name == module or alias.name.startswith(module + ".")
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, package)
            for alias in node.names:
                if source == module and alias.name in (name, "*"):
                    return node.lineno
                imports_module |= f"{source}.{alias.name}" == module
            imports_module |= source == module
    for node in ast_nodes.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == name:
            return node.lineno  # `T.sched`, `sys.modules[...].sched`, `import_module(...).sched`
        if _vars_item(node, name) or (imports_module and _is_getattr_of(node, name)):
            return node.lineno
    return None


def _vars_item(node: ast.AST, name: str) -> bool:
    """``vars(x)["name"]`` or ``x.__dict__["name"]``."""
    if not isinstance(node, ast.Subscript):
        return False
    key = node.slice
    if not isinstance(key, ast.Constant) or key.value != name:
        return False
    value = node.value
    is_vars = isinstance(value, ast.Call) and ast.unparse(value.func) == "vars"
    return is_vars or (isinstance(value, ast.Attribute) and value.attr == "__dict__")
