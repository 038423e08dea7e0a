"""The names a module re-exports through ``__all__``: their imports must stay.

``__all__`` is read when every mention of it is one of these forms, with string literals only:
``__all__ = [...]`` (or a tuple, a set, an annotated assignment), ``__all__ += [...]``,
``__all__.extend([...])`` and ``__all__.append("...")``. Any other mention (``__all__ =
base.__all__ + [...]``, a name in the list, ``__all__`` read anywhere) makes it unreadable, and
then no module-level import is removed: any of them may be re-exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import libcst as cst

from ml_switcheroo.analysis import cst_walk

ALL = "__all__"
_GROWERS = frozenset({"extend", "append"})


def exported_names(module: cst.Module, scopes: Mapping[Any, Any]) -> frozenset[str] | None:
    """Names listed in ``module``'s ``__all__`` (empty without one); None when unreadable.

    ``scopes`` (libcst's ``ScopeProvider`` metadata) tells first, cheaply, whether any scope
    binds or reads ``__all__`` at all; only then is the tree walked.
    """
    if not _mentioned(scopes):
        return frozenset()
    reader = _AllReader()
    cst_walk.visit(module, reader)
    if reader.unreadable or reader.mentions - reader.read:
        return None
    return frozenset(reader.names)


def _mentioned(scopes: Mapping[Any, Any]) -> bool:
    """Whether ``__all__`` is bound or read in any scope (``x.__all__`` is neither)."""
    found = {scope for scope in scopes.values() if scope is not None}
    return any(ALL in scope.assignments or ALL in scope.accesses for scope in found)


class _AllReader(cst.CSTVisitor):
    """Collects the strings of every recognised ``__all__`` form, and every mention of it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.mentions: set[int] = set()  # ids of every Name `__all__`
        self.read: set[int] = set()  # ids of those in a recognised form
        self.unreadable = False

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == ALL:
            self.mentions.add(id(node))

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1:
            self._take(node.targets[0].target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._take(node.target, node.value)
        elif _is_all(node.target):  # `__all__: list[str]` alone lists nothing
            self.read.add(id(node.target))

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.operator, cst.AddAssign):
            self._take(node.target, node.value)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not (
            isinstance(func, cst.Attribute)
            and func.attr.value in _GROWERS
            and _is_all(func.value)
            and len(node.args) == 1
            and not node.args[0].keyword
            and not node.args[0].star
        ):
            return
        value = node.args[0].value
        strings = _strings([value]) if func.attr.value == "append" else _sequence(value)
        self._record(func.value, strings)

    def _take(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if _is_all(target):
            self._record(target, _sequence(value))

    def _record(self, name: cst.BaseExpression, strings: list[str] | None) -> None:
        if strings is None:
            self.unreadable = True
            return
        self.read.add(id(name))
        self.names.update(strings)


def _is_all(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == ALL


def _sequence(value: cst.BaseExpression) -> list[str] | None:
    """The strings of a list, tuple or set literal of strings; None for anything else."""
    if not isinstance(value, (cst.List, cst.Tuple, cst.Set)):
        return None
    elements = value.elements
    if any(isinstance(element, cst.StarredElement) for element in elements):
        return None
    return _strings([element.value for element in elements])


def _strings(values: list[cst.BaseExpression]) -> list[str] | None:
    """The values of string literals; None when one is not a plain string literal."""
    strings = []
    for value in values:
        if not isinstance(value, (cst.SimpleString, cst.ConcatenatedString)):
            return None
        text = value.evaluated_value
        if not isinstance(text, str):  # bytes, or an f-string inside a concatenation
            return None
        strings.append(text)
    return strings
