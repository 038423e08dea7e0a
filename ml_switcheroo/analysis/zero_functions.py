"""Functions of the file that only zero gradients (yunjey's GAN tutorial: ``def reset_grad():
d_optimizer.zero_grad(); g_optimizer.zero_grad()``, called where torch code calls
``zero_grad()``): a call ``reset_grad()`` alone on its line runs, where it is, exactly those
zero_grad() calls.

Proven only for a module-level ``def`` (not decorated, not asynchronous, no parameters) whose
name nothing else of the file binds (``global`` statements included), no other file names and
the file does not rebind by name (``exec``, ``globals()``): ``shared`` answers both; whose body
is, after an optional docstring, only lines ``R.m()`` (``m`` a zero method of the map, keyword
arguments only: ``set_to_none=...``), ``R`` a plain name; and whose every read in the file is
the callee of such a lone call without arguments (never passed on, stored or called with
arguments: each call is a place where those zeroes run). Anything else is not one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import Assignment, Scope

from ml_switcheroo.analysis.cst_walk import in_tree_order


@dataclass(frozen=True)
class ZeroFunction:
    """A function of the file whose body only zeroes gradients: its ``def``, the zero calls
    of its body in order (``d_optimizer.zero_grad()``) and the statements calling it."""

    definition: cst.FunctionDef
    zeroes: tuple[cst.Call, ...]
    calls: tuple[cst.SimpleStatementLine, ...]

    @property
    def receivers(self) -> frozenset[str]:
        """The names whose gradients a call zeroes (``d_optimizer``, ``G``)."""
        return frozenset(z.func.value.value for z in self.zeroes)  # type: ignore[attr-defined]


def zero_functions(
    module: cst.Module,
    scopes: Mapping[cst.CSTNode, Scope | None],
    zero_methods: frozenset[str],
    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None],
    shared: Callable[[str], bool],
) -> dict[int, ZeroFunction]:
    """The file's zero functions, keyed by the id of each statement calling one."""
    found: dict[int, ZeroFunction] = {}
    for statement in module.body:
        if not isinstance(statement, cst.FunctionDef):
            continue
        function = _zero_function(statement, scopes, zero_methods, parent_of, shared)
        for call in function.calls if function is not None else ():
            found[id(call)] = function  # type: ignore[assignment]
    return found


def _zero_function(
    definition: cst.FunctionDef,
    scopes: Mapping[cst.CSTNode, Scope | None],
    zero_methods: frozenset[str],
    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None],
    shared: Callable[[str], bool],
) -> ZeroFunction | None:
    if definition.decorators or definition.asynchronous or _has_parameters(definition):
        return None
    zeroes = _body_zeroes(definition, zero_methods)
    name = definition.name.value
    scope = scopes.get(definition)
    if not zeroes or scope is None or shared(name):
        return None
    assignments = list(scope.assignments[name])
    if len(assignments) != 1 or not isinstance(assignments[0], Assignment):
        return None
    if assignments[0].node is not definition:
        return None
    calls = []
    for access in in_tree_order(scopes, assignments[0].references):
        statement = _lone_call_statement(access.node, parent_of)
        if statement is None:
            return None
        calls.append(statement)
    return ZeroFunction(definition, tuple(zeroes), tuple(calls))


def _has_parameters(definition: cst.FunctionDef) -> bool:
    params = definition.params
    return bool(
        params.params
        or params.posonly_params
        or params.kwonly_params
        or not isinstance(params.star_arg, cst.MaybeSentinel)
        or params.star_kwarg is not None
    )


def _body_zeroes(definition: cst.FunctionDef, zero_methods: frozenset[str]) -> list[cst.Call]:
    """The zero calls that make up the body (besides a docstring); [] for any other body."""
    body = definition.body
    if not isinstance(body, cst.IndentedBlock):
        return []
    statements = list(body.body)
    if statements and definition.get_docstring() is not None:
        statements = statements[1:]
    zeroes = []
    for statement in statements:
        call = _lone_call(statement)
        if (
            call is None
            or not isinstance(call.func, cst.Attribute)
            or not isinstance(call.func.value, cst.Name)
            or call.func.attr.value not in zero_methods
            or any(argument.keyword is None for argument in call.args)
        ):
            return []
        zeroes.append(call)
    return zeroes


def _lone_call(statement: cst.CSTNode) -> cst.Call | None:
    """``f(...)`` alone on its line."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    return (
        small.value if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) else None
    )


def _lone_call_statement(
    node: cst.CSTNode, parent_of: Callable[[cst.CSTNode], cst.CSTNode | None]
) -> cst.SimpleStatementLine | None:
    """The line ``node()`` when ``node`` is the callee of a call without arguments alone on
    its line."""
    call = parent_of(node)
    if not isinstance(call, cst.Call) or call.func is not node or call.args:
        return None
    expression = parent_of(call)
    statement = parent_of(expression) if expression is not None else None
    if _lone_call(statement) is not call:  # type: ignore[arg-type]
        return None
    return statement  # type: ignore[return-value]
