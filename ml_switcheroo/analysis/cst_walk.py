"""Walks of a libcst tree without libcst's per-node costs, with libcst's semantics.

libcst's ``node.children`` and ``node.visit(visitor)`` both go through the node's
``_visit_and_replace_children``, which builds a new copy of the node (and, for ``visit``, of the
whole tree below it) even when the visitor only reads; and ``CSTVisitor.on_visit``/``on_leave``
format a method name and look it up with ``getattr`` on every node, twice. Here:

- ``children(node)`` reads the node's fields in the order ``_visit_and_replace_children`` visits
  them (the lexical order: a decorator before its function's name, ``x if c else y`` as ``x``,
  ``c``, ``y``), known once per node class from that method's source;
- ``walk(node)`` is every node of the tree in preorder, ``node`` first (what a recursive walk
  over ``children`` yields); ``stop`` kinds are yielded but not entered;
- ``visit(tree, visitor)`` runs a ``cst.CSTVisitor`` as ``tree.visit(visitor)`` does (``visit_X``
  before the children, ``False`` skipping them, ``leave_X`` after them, also when skipped; an
  overridden ``on_visit``/``on_leave`` called instead), with each class's methods looked up once
  per node type; a visitor with attribute methods (``visit_X_attr``) is left to libcst;
- ``visit_method(visitor, node)``/``leave_method`` are those per-type lookups, for a
  ``CSTVisitor``'s or ``CSTTransformer``'s own ``on_visit``/``on_leave``;
- ``visit_in_place(node, visitor)`` is one step of ``node.visit(visitor)`` for a ``CSTVisitor``
  whose own methods call ``child.visit(self)`` (libcst's scope and expression-context
  visitors): the same events, the children visited through their own ``visit``, no copy made.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from typing import Any, TypeVar

import libcst as cst

_FIELDS: dict[type, tuple[str, ...] | None] = {}
_LIBCST_BASES = frozenset(cst.CSTVisitor.__mro__)  # libcst's and object: no attribute methods
_TABLE = "_cst_walk_methods"  # the attribute of a visitor class holding its ``_Methods``
_NO_OPS = cst.CSTVisitor.visit_Call.__module__  # libcst's typed no-op methods are defined there


def visited_fields(node_type: type) -> tuple[str, ...] | None:
    """The fields of ``node_type`` in the order its ``_visit_and_replace_children`` visits them
    (None when libcst's source cannot be read: then ``node.children`` is asked)."""
    if node_type in _FIELDS:
        return _FIELDS[node_type]
    try:
        source = textwrap.dedent(inspect.getsource(node_type._visit_and_replace_children))
    except (OSError, TypeError):
        names = None
    else:
        names = _visit_order(ast.parse(source))
    _FIELDS[node_type] = names
    return names


def _visit_order(tree: ast.AST) -> tuple[str, ...]:
    """The field names of the ``visit_*(self, "field", ...)`` calls of a method, in source order
    (each once)."""
    found = sorted(
        (call.lineno, call.col_offset, call.args[1].value)
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id.startswith("visit_")
        and len(call.args) >= 2
        and isinstance(call.args[1], ast.Constant)
        and isinstance(call.args[1].value, str)
    )
    return tuple(dict.fromkeys(name for _, _, name in found))


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """``node.children``: the nodes its fields hold, in lexical order, without copying ``node``."""
    try:
        return _CHILDREN[type(node)](node)
    except KeyError:
        return _children_of_class(type(node))(node)


_CHILDREN: dict[type, Callable[[cst.CSTNode], list[cst.CSTNode]]] = {}


def _children_of_class(node_type: type) -> Callable[[cst.CSTNode], list[cst.CSTNode]]:
    """``children`` for the nodes of ``node_type``: a function reading its ``visited_fields``
    one after the other, made once per class (no loop over the names, no ``getattr``)."""
    names = visited_fields(node_type)
    if names is None or not all(name.isidentifier() for name in names):
        found = _CHILDREN[node_type] = lambda node: list(node.children)
        return found
    lines = ["def children(node):", "    found = []"]
    for name in names:  # the commonest kinds tested first; an empty sequence left at once
        lines += [
            f"    value = node.{name}",
            "    kind = kinds(type(value))",
            "    if kind == 1:",
            "        found.append(value)",
            "    elif kind == 2:",
            "        if value:",
            "            found.extend(filter(is_node, value))",
            "    elif kind is None:",
            "        kind = kind_of(value)",
            "        if kind == 1:",
            "            found.append(value)",
            "        elif kind == 2:",
            "            found.extend(filter(is_node, value))",
        ]
    lines.append("    return found")
    scope: dict[str, Any] = {"kinds": _KINDS.get, "kind_of": _kind_of, "is_node": is_node}
    exec("\n".join(lines), scope)  # noqa: S102 - field names of libcst's own node classes
    found = _CHILDREN[node_type] = scope["children"]
    return found


def instance_test(kinds: type | tuple[type, ...]) -> Callable[[object], bool]:
    """``isinstance(value, kinds)`` answered once per type of value: libcst's node classes
    are ABCs, and an ``isinstance`` that does not hit the exact class is a Python-level call
    per class tested (some of the walks ask it of every node of the tree)."""
    known: dict[type, bool] = {}

    def test(value: object) -> bool:
        value_type = type(value)
        hit = known.get(value_type)
        if hit is None:
            hit = known[value_type] = issubclass(value_type, kinds)
        return hit

    return test


is_node = instance_test(cst.CSTNode)
is_sequence = instance_test((list, tuple))
_KINDS: dict[type, int] = {}  # type of a field's value -> 1: a node, 2: a sequence, 0: other


def _kind_of(value: object) -> int:
    """What ``children`` takes of a field holding ``value``: the node (1), the nodes of the
    sequence (2) or nothing (0); answered once per type."""
    found = _KINDS[type(value)] = 1 if is_node(value) else 2 if is_sequence(value) else 0
    return found


def walk(node: cst.CSTNode, stop: tuple[type, ...] = ()) -> Iterator[cst.CSTNode]:
    """``node`` and every node below it, in preorder (source order); a node of a ``stop`` kind
    is yielded, what it holds is not."""
    stopped = _stop_test(stop) if stop else None
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if stopped is None or not stopped(current):
            stack.extend(reversed(children(current)))


@cache
def _stop_test(stop: tuple[type, ...]) -> Callable[[object], bool]:
    """``isinstance(value, stop)`` for ``walk``, answered once per type (``instance_test``)."""
    return instance_test(stop)


class _Methods:
    """The visit and leave functions of one visitor class by node type, kept on the class (a
    class defined in a function goes with its table)."""

    __slots__ = ("cls", "visits", "leaves", "walkable", "attribute_kinds", "own_enter", "own_leave")

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.visits: dict[type, Callable[..., Any] | None] = {}
        self.leaves: dict[type, Callable[..., Any] | None] = {}
        self.walkable = _walkable(cls)
        self.attribute_kinds = _attribute_kinds(cls)
        self.own_enter = getattr(cls, "on_visit", None) is not cst.CSTVisitor.on_visit
        self.own_leave = getattr(cls, "on_leave", None) is not cst.CSTVisitor.on_leave

    def visit(self, kind: type) -> Callable[..., Any] | None:
        try:
            return self.visits[kind]
        except KeyError:
            return self._find(self.visits, "visit_", kind)

    def leave(self, kind: type) -> Callable[..., Any] | None:
        try:
            return self.leaves[kind]
        except KeyError:
            return self._find(self.leaves, "leave_", kind)

    def _find(
        self, table: dict[type, Callable[..., Any] | None], prefix: str, kind: type
    ) -> Callable[..., Any] | None:
        try:
            return table[kind]
        except KeyError:
            found = table[kind] = _own(getattr(self.cls, prefix + kind.__name__, None))
            return found


def _methods(cls: type) -> _Methods:
    last = _LAST_TABLE[0]  # the class asked last (libcst's walks ask once per node)
    if last is not None and last.cls is cls:
        return last
    found = vars(cls).get(_TABLE)
    if found is None:
        found = _Methods(cls)
        setattr(cls, _TABLE, found)
    if "<locals>" not in cls.__qualname__:  # a class made per call is not kept alive here
        _LAST_TABLE[0] = found
    return found


_LAST_TABLE: list[_Methods | None] = [None]  # of a class defined at a module's level


def visit_method(visitor: Any, node: cst.CSTNode) -> Callable[..., Any] | None:
    """The function ``visit_<type of node>`` of ``visitor``'s class (what libcst's ``on_visit``
    calls; None for libcst's no-op), looked up once per (class, node type)."""
    return _methods(type(visitor)).visit(type(node))


def leave_method(visitor: Any, node: cst.CSTNode) -> Callable[..., Any] | None:
    """The function ``leave_<type of node>`` of ``visitor``'s class, looked up once."""
    return _methods(type(visitor)).leave(type(node))


def lookups(
    visitor: Any,
) -> tuple[
    Callable[[type], Callable[..., Any] | None], Callable[[type], Callable[..., Any] | None]
]:
    """``visit_method`` and ``leave_method`` for ``visitor``'s class as two functions of a node
    type, the class's table found once: for a visitor whose own ``on_visit``/``on_leave`` run on
    every node."""
    methods = _methods(type(visitor))
    return methods.visit, methods.leave


def _own(method: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """``method``, or None for libcst's typed no-ops (``CSTVisitor.visit_Call`` does nothing and
    returns None; ``CSTTransformer.leave_Call`` returns the updated node)."""
    if method is not None and getattr(method, "__module__", None) == _NO_OPS:
        return None
    return method


def on_visit(visitor: Any, node: cst.CSTNode) -> bool:
    """``CSTVisitor.on_visit``/``CSTTransformer.on_visit``: whether to enter ``node``."""
    method = _methods(type(visitor)).visit(type(node))
    return method is None or method(visitor, node) is not False


def on_leave(visitor: Any, node: cst.CSTNode) -> None:
    """``CSTVisitor.on_leave``: ``leave_<type of node>``, when the class has one."""
    method = _methods(type(visitor)).leave(type(node))
    if method is not None:
        method(visitor, node)


def visit(tree: cst.CSTNode, visitor: cst.CSTVisitor) -> None:
    """``tree.visit(visitor)`` for a ``CSTVisitor``, without copying the tree."""
    cls = type(visitor)
    methods = _methods(cls)
    if not methods.walkable:
        tree.visit(visitor)
        return
    own_enter = cls.on_visit is not cst.CSTVisitor.on_visit
    own_leave = cls.on_leave is not cst.CSTVisitor.on_leave
    # a node to enter, or a 1-tuple holding a node to leave (pushed only when leaving it calls
    # something: ``on_leave`` of the visitor's own, or a ``leave_X`` of its class)
    pending: list[Any] = [tree]
    pop, push, extend = pending.pop, pending.append, pending.extend
    visit_of, leave_of = methods.visit, methods.leave
    while pending:
        node = pop()
        if type(node) is tuple:
            node = node[0]
            if own_leave:
                visitor.on_leave(node)
            else:
                leave_of(type(node))(visitor, node)  # type: ignore[misc]
            continue
        if own_enter:
            enter = visitor.on_visit(node)
        else:
            method = visit_of(type(node))
            enter = method is None or method(visitor, node) is not False
        if own_leave or leave_of(type(node)) is not None:
            push((node,))
        if enter:
            found = children(node)  # a list of its own
            found.reverse()
            extend(found)


def visit_in_place(
    node: cst.CSTNode, visitor: cst.CSTVisitor, libcst_visit: Callable[..., Any]
) -> cst.CSTNode:
    """``node.visit(visitor)`` for a ``CSTVisitor`` (``libcst_visit``: libcst's own
    ``CSTNode.visit``), without the copy of ``node`` libcst builds and drops: ``on_visit``, each
    child's ``visit`` when it returns true, ``on_leave``; ``node`` itself is returned, as libcst
    returns it to a visitor. A node whose type the visitor has attribute methods for
    (``visit_ClassDef_bases``), or a visitor with its own attribute hooks, goes to libcst."""
    methods = _methods(type(visitor))
    kinds = methods.attribute_kinds
    if kinds is None or type(node).__name__ in kinds:
        return libcst_visit(node, visitor)
    if methods.own_enter:
        enter = visitor.on_visit(node)
    else:
        method = methods.visit(type(node))
        enter = method is None or method(visitor, node) is not False
    if enter:
        for child in children(node):
            child.visit(visitor)
    if methods.own_leave:
        visitor.on_leave(node)
    elif (leave := methods.leave(type(node))) is not None:
        leave(visitor, node)
    return node


def _attribute_kinds(cls: type) -> frozenset[str] | None:
    """The node type names ``cls`` has attribute methods for (``visit_ClassDef_bases``:
    ``ClassDef``); None when it is no ``CSTVisitor`` or overrides libcst's attribute hooks."""
    if not (
        issubclass(cls, cst.CSTVisitor)
        and cls.on_visit_attribute is cst.CSTVisitor.on_visit_attribute
        and cls.on_leave_attribute is cst.CSTVisitor.on_leave_attribute
    ):
        return None
    return frozenset(
        name.partition("_")[2].partition("_")[0]
        for owner in cls.__mro__
        if owner not in _LIBCST_BASES
        for name in vars(owner)
        if _attribute_method(name)
    )


def _walkable(cls: type) -> bool:
    """Whether ``visit`` runs visitors of ``cls`` as libcst would: a ``CSTVisitor`` with no
    attribute methods (``visit_Call_func``) and libcst's own attribute hooks."""
    return (
        issubclass(cls, cst.CSTVisitor)
        and cls.on_visit_attribute is cst.CSTVisitor.on_visit_attribute
        and cls.on_leave_attribute is cst.CSTVisitor.on_leave_attribute
        and not any(
            _attribute_method(name)
            for owner in cls.__mro__
            if owner not in _LIBCST_BASES
            for name in vars(owner)
        )
    )


def _attribute_method(name: str) -> bool:
    """Whether ``name`` is a ``visit_<Node>_<attribute>``/``leave_<Node>_<attribute>`` method."""
    for prefix in ("visit_", "leave_"):
        if name.startswith(prefix):
            node, _, attribute = name[len(prefix) :].partition("_")
            return bool(attribute) and isinstance(getattr(cst, node, None), type)
    return False


_Scoped = TypeVar("_Scoped")  # a libcst Assignment or Access: what has a ``node``


def in_tree_order(scopes: Mapping[cst.CSTNode, object], items: Iterable[_Scoped]) -> list[_Scoped]:
    """libcst's assignments or accesses (kept in sets, whose order is the objects' memory
    addresses: a different one in every process) in the order of their nodes in the tree,
    ``scopes`` the scope metadata (every node of the file, in visit order): what is built from
    them (the first problem a reason names) is the same in every run. (``Resolver`` keeps the
    order once per file: ``Resolver.in_tree_order``.)"""
    found = list(items)
    if len(found) < 2:
        return found
    order = {id(node): place for place, node in enumerate(scopes)}
    return sorted(found, key=lambda item: order.get(id(getattr(item, "node", None)), -1))
