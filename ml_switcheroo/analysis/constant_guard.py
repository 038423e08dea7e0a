"""An ``if`` whose test is always true: a comparison of module-level number constants
(``grad_clip = 1.0`` at module level, ``if grad_clip != 0.0:`` in a function).

A name counts as a constant when every binding of it is one module-level assignment of a
number literal (libcst lists every global assignment, those of ``global`` statements in
functions too, for a read inside a function), the module calls nothing that rebinds globals
by name (``exec``, ``globals()``...), and no other file of the repository mentions it (it might
assign ``module.name``). Anything else is not known to be true.

Whether the module rebinds globals by name is a fact of the whole file: the caller computes it
once (``rebinds_globals``) and passes it to every question as ``globals_rebound``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import libcst as cst
from libcst.metadata import Assignment, FunctionScope, GlobalScope, Scope

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.signature import dotted_name

# calls that may rebind a module's globals by name
_REBINDERS = frozenset({"exec", "eval", "globals", "vars", "setattr", "__import__", "execfile"})
# what reaches a module object by its name, whose attributes are the module's globals
# (`sys.modules[__name__].SCALE` in a model's forward, `importlib.import_module(__name__)`)
_MODULE_LOOKUPS = frozenset({"sys.modules"})
_MODULE_IMPORTERS = frozenset({"import_module", "reload"})

_COMPARISONS: dict[type, Callable[[float, float], bool]] = {
    cst.Equal: operator.eq,
    cst.NotEqual: operator.ne,
    cst.LessThan: operator.lt,
    cst.LessThanEqual: operator.le,
    cst.GreaterThan: operator.gt,
    cst.GreaterThanEqual: operator.ge,
}


def always_true(
    test: cst.BaseExpression,
    scopes: dict[cst.CSTNode, Scope | None],
    module: cst.Module,
    mentioned_elsewhere: Callable[[str], bool] | None,
    globals_rebound: bool,
) -> bool:
    """Whether ``test`` (read in a function of ``module``) is a number constant or a
    comparison of two whose value is provably true (False whenever unsure)."""
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        target = test.comparisons[0]
        compare = _COMPARISONS.get(type(target.operator))
        left = _number(test.left, scopes, module, mentioned_elsewhere, globals_rebound)
        right = _number(target.comparator, scopes, module, mentioned_elsewhere, globals_rebound)
        if compare is None or left is None or right is None:
            return False
        return compare(left, right)
    value = _number(test, scopes, module, mentioned_elsewhere, globals_rebound)
    return value is not None and value != 0


def positive_count(
    node: cst.BaseExpression,
    scopes: dict[cst.CSTNode, Scope | None],
    module: cst.Module,
    mentioned_elsewhere: Callable[[str], bool] | None,
    globals_rebound: bool,
) -> bool:
    """Whether ``node`` is an integer literal or module-level integer constant >= 1."""
    value = _number(node, scopes, module, mentioned_elsewhere, globals_rebound)
    return value is not None and value >= 1 and value.is_integer()


def _number(
    node: cst.BaseExpression,
    scopes: dict[cst.CSTNode, Scope | None],
    module: cst.Module,
    mentioned_elsewhere: Callable[[str], bool] | None,
    globals_rebound: bool,
) -> float | None:
    """The number a literal (``1.0``, ``-2``) or a module-level constant name holds."""
    if isinstance(node, cst.Name):
        return _constant(node, scopes, module, mentioned_elsewhere, globals_rebound)
    return _literal_number(node)


def _literal_number(node: cst.BaseExpression) -> float | None:
    """``1.0``, ``4``, ``-2``."""
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = _literal(node.expression)
        return None if inner is None else -inner
    return _literal(node)


def _literal(node: cst.BaseExpression) -> float | None:
    if isinstance(node, (cst.Integer, cst.Float)) and not node.lpar:
        return float(node.evaluated_value)
    return None


def _constant(
    name: cst.Name,
    scopes: dict[cst.CSTNode, Scope | None],
    module: cst.Module,
    mentioned_elsewhere: Callable[[str], bool] | None,
    globals_rebound: bool,
) -> float | None:
    """The number of ``name = <number>``, the one binding of a module-level ``name`` read in
    a function (not in the module's own code, where libcst lists only earlier assignments)."""
    scope = scopes.get(name)
    if not isinstance(scope, FunctionScope):
        return None
    if mentioned_elsewhere is not None and mentioned_elsewhere(name.value):
        return None  # another file may assign `module.name` (no repository: the file alone)
    if globals_rebound:
        return None
    referents = [r for a in scope.accesses[name.value] if a.node is name for r in a.referents]
    if len(referents) != 1 or not isinstance(referents[0], Assignment):
        return None
    referent = referents[0]
    if not isinstance(referent.scope, GlobalScope):
        return None
    statement = module_assignment(module, referent.node)
    value = statement.value if statement is not None else None
    return _literal_number(value) if value is not None else None


def module_assignment(module: cst.Module, target: cst.CSTNode) -> cst.Assign | None:
    """``name = value`` at the top level of the module, ``target`` its one target."""
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            continue
        small = statement.body[0]
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and small.targets[0].target is target
        ):
            return small
    return None


def rebinds_globals(module: cst.Module) -> bool:
    """Whether the module calls a builtin that may rebind its globals by name, or reaches a
    module object by name (``sys.modules``, ``importlib.import_module``: its own, whose
    attributes are its globals), by text (one walk of the whole module: compute it once per
    file)."""
    found = False

    class Finder(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            nonlocal found
            found = found or (isinstance(node.func, cst.Name) and node.func.value in _REBINDERS)
            name = dotted_name(node.func)
            found = found or (name is not None and name.split(".")[-1] in _MODULE_IMPORTERS)

        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal found
            found = found or dotted_name(node) in _MODULE_LOOKUPS

    cst_walk.visit(module, Finder())
    return found
