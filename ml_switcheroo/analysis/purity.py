"""Which expressions are safe to evaluate more than once (used by the plan and by hygiene)."""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.spec.signature import NotALiteral, literal_value

_PURE_BUILTINS = frozenset({"len", "int", "float", "round", "abs", "min", "max"})


def pure_builtin(name: str) -> bool:
    """A builtin that reads its arguments and changes nothing (``len``, ``max``...)."""
    return name in _PURE_BUILTINS


def is_pure(node: cst.BaseExpression) -> bool:
    """Names, attribute chains, constant subscripts, literals, arithmetic on those and a few
    builtins (``len(loader)``): safe to evaluate more than once."""
    if isinstance(node, cst.Name):
        return True
    if isinstance(node, cst.BinaryOperation):
        return is_pure(node.left) and is_pure(node.right)
    if isinstance(node, cst.UnaryOperation):
        return is_pure(node.expression)
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value in _PURE_BUILTINS
        and all(arg.star == "" and is_pure(arg.value) for arg in node.args)
    ):
        return True
    if isinstance(node, cst.Attribute):
        return is_pure(node.value)
    if isinstance(node, cst.Subscript):
        return is_pure(node.value) and all(
            isinstance(element.slice, cst.Index) and is_pure(element.slice.value)
            for element in node.slice
        )
    try:
        literal_value(node)
    except NotALiteral:
        return False
    return True
