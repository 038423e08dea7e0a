"""Whether a binding of a function's own scope may run before a read of the same name.

libcst's referents of a read are the assignments written before it (not those of a loop that
runs again), so a read that libcst sees bound only by the parameter is proven to hold what the
caller passed only when every other binding of the name in the function provably runs after
it: later in source order, outside any loop holding both, not in a nested scope, not a walrus
(``:=`` binds inside an expression, whose evaluation order is not source order), or the
target of the very assignment whose right side holds the read (``m = train(m, ...)``: Python
evaluates the right side first).
"""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.analysis import cst_walk

_LOOPS = (cst.For, cst.While)
# Nodes that open a scope of their own (their code may run at another time, or apart).
NESTED_SCOPES = (
    cst.FunctionDef,
    cst.Lambda,
    cst.ClassDef,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
)


class _Index:
    """The parent and the pre-order rank of every node under the root a walk of ``owner``
    starts from (its body for a function, the module itself), from one walk: what each
    ``runs_after`` of the same owner asks (a walk per question before)."""

    __slots__ = ("owner", "parents", "ranks")

    def __init__(self, owner: cst.FunctionDef | cst.Module) -> None:
        self.owner = owner  # held: the ids below stay its nodes' while it is cached
        root = owner.body if isinstance(owner, cst.FunctionDef) else owner
        parents: dict[int, cst.CSTNode | None] = {}
        ranks: dict[int, int] = {}
        pending: list[tuple[cst.CSTNode, cst.CSTNode | None]] = [(root, None)]
        children = cst_walk.children
        while pending:
            node, parent = pending.pop()
            parents[id(node)] = parent
            ranks[id(node)] = len(ranks)
            found = children(node)
            found.reverse()
            pending.extend((child, node) for child in found)
        self.parents = parents
        self.ranks = ranks

    def path(self, node: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
        """The ancestors of ``node`` from the walk's root down to its parent."""
        chain: list[cst.CSTNode] = []
        parent = self.parents[id(node)]
        while parent is not None:
            chain.append(parent)
            parent = self.parents[id(parent)]
        chain.reverse()
        return tuple(chain)


_INDEXES: dict[int, _Index] = {}  # id(owner) -> its index, the few owners asked last
_KEPT = 8


def forget() -> None:
    """Drop the kept indexes (and the trees they hold): a file's conversion is over."""
    _INDEXES.clear()


def _index(owner: cst.FunctionDef | cst.Module) -> _Index:
    found = _INDEXES.pop(id(owner), None)
    if found is None or found.owner is not owner:
        found = _Index(owner)
        while len(_INDEXES) >= _KEPT:
            del _INDEXES[next(iter(_INDEXES))]
    _INDEXES[id(owner)] = found  # the most recent last
    return found


def runs_after(
    owner: cst.FunctionDef | cst.Module, read: cst.CSTNode, binding: cst.CSTNode
) -> bool:
    """Whether ``binding`` (a node libcst records as an assignment of the name in the scope
    of ``owner``, a function or the module) provably runs after ``read`` in each run of
    ``owner``, never before it: False whenever unsure."""
    index = _index(owner)
    if id(read) not in index.ranks or id(binding) not in index.ranks:
        return False
    read_path, binding_path = index.path(read), index.path(binding)
    if any(isinstance(n, NESTED_SCOPES) for n in (*read_path, *binding_path)):
        return False  # a nested scope may run at any time
    if binding_path and isinstance(binding_path[-1], cst.NamedExpr):
        return False
    read_ids = {id(n) for n in read_path}
    if any(isinstance(n, _LOOPS) and id(n) in read_ids for n in binding_path):
        return False  # a loop holding both runs the binding before the read's next run
    if _assigned_from_read(binding, binding_path, read, read_ids):
        return True
    return index.ranks[id(binding)] > index.ranks[id(read)]


def _assigned_from_read(
    binding: cst.CSTNode,
    binding_path: tuple[cst.CSTNode, ...],
    read: cst.CSTNode,
    read_ids: set[int],
) -> bool:
    """``binding = <value holding the read>``: one plain assignment, its target the name."""
    if len(binding_path) < 2 or not isinstance(binding_path[-2], cst.Assign):
        return False
    assign = binding_path[-2]
    target = binding_path[-1]
    return (
        isinstance(target, cst.AssignTarget)
        and target.target is binding
        and (assign.value is read or id(assign.value) in read_ids)
    )
