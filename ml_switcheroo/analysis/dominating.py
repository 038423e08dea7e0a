"""The one assignment whose value a read of a name provably sees.

libcst's scope analysis is flow-insensitive: after ``model = make()`` and ``model = DDP(model)``
a read of ``model`` has both as bindings. ``dominating_assignment`` proves, from the tree alone,
that the read sees exactly one of them: ``name = value`` is a statement of a block whose later
statement holds the read (so it runs before the read on every path that reaches it), and no
statement of that block between them, nor the one holding the read, binds the name in any way
(so no path from the assignment to the read rebinds it; a path leaving the block reaches the
read again only through the assignment). The read is in the assignment's own scope (no
function, lambda, class or comprehension between them: a delayed or separate scope), and no
``global``/``nonlocal`` of the name is written anywhere in the module (another function could
rebind it). Unsure: None.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

import libcst as cst

from ml_switcheroo.analysis import cst_walk, stepping
from ml_switcheroo.analysis.reaching import NESTED_SCOPES

ParentOf = Callable[[cst.CSTNode], cst.CSTNode | None]


def dominating_assignment(read: cst.Name, parent_of: ParentOf) -> cst.Assign | None:
    """The ``name = value`` statement whose value ``read`` holds on every path reaching it
    (see the module's docstring); None when that is not proven."""
    name = read.value
    child: cst.CSTNode = read
    parent = parent_of(read)
    while parent is not None:
        if isinstance(parent, NESTED_SCOPES):
            return None
        body = _statements(parent)
        index = next((i for i, s in enumerate(body or ()) if s is child), None)
        if body is not None and index is not None:
            earlier = [i for i in range(index) if _binds(body[i], name)]
            if earlier:
                return _proven(body, earlier[-1], index, name, parent_of)
        child, parent = parent, parent_of(parent)
    return None


def _proven(
    body: list[cst.BaseStatement], at: int, read_at: int, name: str, parent_of: ParentOf
) -> cst.Assign | None:
    """``body[at]`` when it is ``name = value`` alone on its line, nothing in ``body[at + 1 :
    read_at + 1]`` binds ``name`` and the module declares no ``global``/``nonlocal`` of it."""
    statement = body[at]
    assign = stepping.lone_assignment(statement, name)
    if assign is None:
        return None
    if any(_binds(s, name) for s in body[at + 1 : read_at + 1]):
        return None
    module = module_of(statement, parent_of)
    if module is None or declared_global(module, name):
        return None
    return assign


def _statements(node: cst.CSTNode) -> list[cst.BaseStatement] | None:
    """The statements of a block (an indented block, the module); None for other nodes."""
    if isinstance(node, (cst.IndentedBlock, cst.Module)):
        return list(node.body)  # type: ignore[arg-type]
    return None


def _binds(node: cst.CSTNode, name: str) -> bool:
    """Whether anything in ``node`` binds (or deletes) ``name`` in ``node``'s scope, counting
    also the targets of comprehensions (conservative)."""
    return any(name in bound_names(n) for n in _walk_scope(node))


def bound_names(node: cst.CSTNode) -> list[str]:
    """The plain names a binding node binds (or deletes); [] for other nodes."""
    targets: list[cst.CSTNode] = []
    if isinstance(node, cst.Assign):
        targets = [t.target for t in node.targets]
    elif isinstance(
        node, (cst.AnnAssign, cst.AugAssign, cst.For, cst.CompFor, cst.NamedExpr, cst.Del)
    ):
        targets = [node.target]
    elif isinstance(node, cst.AsName):
        targets = [node.name]
    elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        return [node.name.value]
    elif isinstance(node, cst.ImportAlias):
        return _import_names(node)
    elif isinstance(node, (cst.MatchAs, cst.MatchStar)) and node.name is not None:
        return [node.name.value]
    return [e.value for t in targets for e in _flat(t) if isinstance(e, cst.Name)]


def _import_names(alias: cst.ImportAlias) -> list[str]:
    """The name an import binds (``import a.b`` binds ``a``)."""
    if alias.asname is not None:
        return [e.value for e in _flat(alias.asname.name) if isinstance(e, cst.Name)]
    node: cst.BaseExpression = alias.name
    while isinstance(node, cst.Attribute):
        node = node.value
    return [node.value] if isinstance(node, cst.Name) else []


def _flat(target: cst.CSTNode) -> list[cst.CSTNode]:
    """The elements of a (nested) tuple, list or starred target."""
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for e in target.elements for n in _flat(e.value)]
    if isinstance(target, cst.StarredElement):
        return _flat(target.value)
    return [target]


def _walk_scope(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """``node`` and what it holds, not the bodies of nested functions, lambdas and classes
    (their names and decorators are of this scope)."""
    return cst_walk.walk(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda))


def declared_global(module: cst.Module, name: str) -> bool:
    """Whether a ``global`` or ``nonlocal`` statement of the module names ``name``."""
    return stepping.names_declared_shared(module, name)


def module_of(node: cst.CSTNode, parent_of: ParentOf) -> cst.Module | None:
    current: cst.CSTNode | None = node
    while current is not None and not isinstance(current, cst.Module):
        current = parent_of(current)
    return current


def unrebound_after(
    statement: cst.BaseStatement,
    read: cst.Name,
    names: Collection[str],
    kept: Collection[str],
    parent_of: ParentOf,
) -> bool:
    """Whether each of ``names`` holds at ``read`` the object it held when ``statement`` ran
    last, on every path: ``statement`` is a statement of a block (a function's, a loop's, the
    module's) whose later statement holds ``read`` in the same scope (no function, lambda,
    class or comprehension between them), so every path reaching ``read`` ran it before; no
    statement of that block from ``statement`` to the one holding ``read`` binds (or deletes)
    one of ``names``, but ``statement`` itself may bind those of ``kept``; and no
    ``global``/``nonlocal`` of one of them is written in the module (another function could
    rebind it). A path leaving the block reaches ``read`` again only through ``statement``."""
    return rebinding_after(statement, read, names, kept, parent_of) is None


def rebinding_after(
    statement: cst.BaseStatement,
    read: cst.Name,
    names: Collection[str],
    kept: Collection[str],
    parent_of: ParentOf,
) -> cst.BaseStatement | str | None:
    """Why ``unrebound_after`` does not hold: the first statement of the block that binds one
    of ``names`` in between, or the reason as a clause; None when it holds."""
    block = parent_of(statement)
    body = _statements(block) if block is not None else None
    start = next((i for i, s in enumerate(body or ()) if s is statement), None)
    if body is None or start is None:
        return "the optimizer's line is not a statement of a block"
    child: cst.CSTNode = read
    parent = parent_of(read)
    while parent is not None and parent is not block:
        if isinstance(parent, NESTED_SCOPES):
            return "it is read in another scope than the optimizer's line"
        child, parent = parent, parent_of(parent)
    end = next((i for i, s in enumerate(body) if s is child), None) if parent is not None else None
    if end is None or end <= start:
        return "it is not read after the optimizer's line in the same block"
    if any(_binds(statement, name) for name in names if name not in kept):
        return statement
    for later in body[start + 1 : end + 1]:
        if any(_binds(later, name) for name in names):
            return later
    module = module_of(statement, parent_of)
    if module is None or any(declared_global(module, name) for name in names):
        return "a `global` or `nonlocal` statement of the module names it"
    return None
