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

from dataclasses import dataclass, field

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


@dataclass
class _Paths(cst.CSTVisitor):
    """The ancestors (the function first) of each wanted node, and its pre-order rank."""

    wanted: set[int]
    stack: list[cst.CSTNode] = field(default_factory=list)
    paths: dict[int, tuple[cst.CSTNode, ...]] = field(default_factory=dict)
    ranks: dict[int, int] = field(default_factory=dict)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if id(node) in self.wanted:
            self.paths[id(node)] = tuple(self.stack)
            self.ranks[id(node)] = len(self.ranks)
        self.stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()


def runs_after(
    owner: cst.FunctionDef | cst.Module, read: cst.CSTNode, binding: cst.CSTNode
) -> bool:
    """Whether ``binding`` (a node libcst records as an assignment of the name in the scope
    of ``owner``, a function or the module) provably runs after ``read`` in each run of
    ``owner``, never before it: False whenever unsure."""
    paths = _Paths({id(read), id(binding)})
    cst_walk.visit(owner.body if isinstance(owner, cst.FunctionDef) else owner, paths)
    if id(read) not in paths.paths or id(binding) not in paths.paths:
        return False
    read_path, binding_path = paths.paths[id(read)], paths.paths[id(binding)]
    if any(isinstance(n, NESTED_SCOPES) for n in (*read_path, *binding_path)):
        return False  # a nested scope may run at any time
    if binding_path and isinstance(binding_path[-1], cst.NamedExpr):
        return False
    read_ids = {id(n) for n in read_path}
    if any(isinstance(n, _LOOPS) and id(n) in read_ids for n in binding_path):
        return False  # a loop holding both runs the binding before the read's next run
    if _assigned_from_read(binding, binding_path, read, read_ids):
        return True
    return paths.ranks[id(binding)] > paths.ranks[id(read)]


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
