"""An ``if`` whose test is always true: a comparison of module-level number constants
(``grad_clip = 1.0`` at module level, ``if grad_clip != 0.0:`` in a function).

A name counts as a constant when every binding of it is one module-level assignment of a
number literal or of integer arithmetic (``+ - * // %``) on literals and such constants
(build-nanogpt's ``grad_accum_steps = total_batch_size // (B * T)``; libcst lists every global
assignment, those of ``global`` statements in functions too), read in a function or in the
module's own code after that assignment, the module calls nothing that rebinds globals by
name (``exec``, ``globals()``...), and no other file of the repository mentions it (it might
assign ``module.name``). Anything else is not known to be true.

Whether the module rebinds globals by name is a fact of the whole file: the caller computes it
once (``rebinds_globals``) and passes it to every question as ``globals_rebound``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

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

# integer arithmetic whose result is exact: a zero divisor gives no value
_INTEGER_OPERATIONS: dict[type, Callable[[int, int], int]] = {
    cst.Add: operator.add,
    cst.Subtract: operator.sub,
    cst.Multiply: operator.mul,
    cst.FloorDivide: operator.floordiv,
    cst.Modulo: operator.mod,
}
# arithmetic whose result is a number when its operands are (`max_lr * 0.1`, `it / n`)
_ARITHMETIC = frozenset(
    {cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power}
)
# how many constants deep a value may name others (`a = b * 2`, `b = c // 3`...)
_DEPTH = 8

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


def number_constant(
    name: cst.Name,
    scopes: dict[cst.CSTNode, Scope | None],
    module: cst.Module,
    mentioned_elsewhere: Callable[[str], bool] | None,
    globals_rebound: bool,
) -> bool:
    """Whether ``name`` reads a module-level constant bound once to number literals and such
    constants under arithmetic (``min_lr = max_lr * 0.1``; float arithmetic too: only that
    it is a number is known, not its value)."""
    reading = _Reading(scopes, module, mentioned_elsewhere, globals_rebound)
    return _numeric(name, reading, _DEPTH)


def _numeric(node: cst.BaseExpression, reading: _Reading, depth: int) -> bool:
    """A number literal, a number constant, or arithmetic of them."""
    if depth == 0:
        return False
    if isinstance(node, cst.Name):
        statement = _constant_assignment(node, reading)
        return statement is not None and _numeric(statement.value, reading, depth - 1)
    if isinstance(node, cst.BinaryOperation) and type(node.operator) in _ARITHMETIC:
        return _numeric(node.left, reading, depth - 1) and _numeric(node.right, reading, depth - 1)
    return _literal_number(node) is not None


def _number(
    node: cst.BaseExpression,
    scopes: dict[cst.CSTNode, Scope | None],
    module: cst.Module,
    mentioned_elsewhere: Callable[[str], bool] | None,
    globals_rebound: bool,
) -> float | None:
    """The number a literal (``1.0``, ``-2``) or a module-level constant name holds."""
    value = _value(node, _Reading(scopes, module, mentioned_elsewhere, globals_rebound), _DEPTH)
    try:
        return None if value is None else float(value)
    except OverflowError:  # an integer beyond any float
        return None


@dataclass(frozen=True)
class _Reading:
    """What a constant's value is read against: the file's scopes, the module, whether
    another file mentions a name, whether the module rebinds globals by name."""

    scopes: dict[cst.CSTNode, Scope | None]
    module: cst.Module
    mentioned_elsewhere: Callable[[str], bool] | None
    globals_rebound: bool

    @cached_property
    def walrus_names(self) -> frozenset[str]:
        """The names a ``(name := ...)`` binds anywhere in the module: in a comprehension it
        binds the enclosing scope's ``name``, which libcst's scopes do not list."""
        return frozenset(
            node.target.value
            for node in cst_walk.walk(self.module)
            if isinstance(node, cst.NamedExpr) and isinstance(node.target, cst.Name)
        )


def _value(node: cst.BaseExpression, reading: _Reading, depth: int) -> int | float | None:
    """A literal, a module constant, or integer arithmetic of them (``total // (B * T)``)."""
    if depth == 0:
        return None
    if isinstance(node, cst.Name):
        return _constant(node, reading, depth - 1)
    if isinstance(node, cst.BinaryOperation):
        operation = _INTEGER_OPERATIONS.get(type(node.operator))
        left = _value(node.left, reading, depth - 1)
        right = _value(node.right, reading, depth - 1)
        if operation is None or type(left) is not int or type(right) is not int:
            return None
        divides = isinstance(node.operator, (cst.FloorDivide, cst.Modulo))
        return None if divides and right == 0 else operation(left, right)
    return _literal_number(node)


def _literal_number(node: cst.BaseExpression) -> int | float | None:
    """``1.0``, ``4``, ``-2``."""
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = _literal(node.expression)
        return None if inner is None else -inner
    return _literal(node)


def _literal(node: cst.BaseExpression) -> int | float | None:
    if isinstance(node, (cst.Integer, cst.Float)) and not node.lpar:
        return node.evaluated_value
    return None


def _constant(name: cst.Name, reading: _Reading, depth: int) -> int | float | None:
    """The value of ``name = <value>``, the one binding of a module-level ``name``, read in a
    function (libcst lists every assignment there) or in the module's own code after it."""
    statement = _constant_assignment(name, reading)
    return _value(statement.value, reading, depth) if statement is not None else None


def _constant_assignment(name: cst.Name, reading: _Reading) -> cst.Assign | None:
    """``name = <value>``, the one binding of module-level ``name`` the read sees, when no
    other file and nothing of the module rebinds it by name."""
    scope = reading.scopes.get(name)
    if reading.mentioned_elsewhere is not None and reading.mentioned_elsewhere(name.value):
        return None  # another file may assign `module.name` (no repository: the file alone)
    if reading.globals_rebound:
        return None
    referent = _one_module_binding(name, scope)
    if referent is None or name.value in reading.walrus_names:
        return None
    return module_assignment(reading.module, referent.node)


def _one_module_binding(name: cst.Name, scope: Scope | None) -> Assignment | None:
    """The one assignment of module-level ``name`` that the read ``name`` sees: in a function
    every binding of the module reaches it; in the module's own code libcst lists only the
    earlier ones, so the module must hold no other binding of it (a later one in a loop
    would change it for the next iteration)."""
    if not isinstance(scope, (FunctionScope, GlobalScope)):
        return None
    referents = [r for a in scope.accesses[name.value] if a.node is name for r in a.referents]
    if len(referents) != 1 or not isinstance(referents[0], Assignment):
        return None
    referent = referents[0]
    if not isinstance(referent.scope, GlobalScope):
        return None
    if isinstance(scope, GlobalScope) and len(scope.assignments[name.value]) != 1:
        return None
    return referent


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
