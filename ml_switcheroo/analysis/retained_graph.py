"""Whether torch's ``loss.backward(retain_graph=True)`` as a step's last backward pass leaves
a graph nothing differentiates again (s36, issue 13: MorvanZhou's 406_GAN ``D_loss.backward(
retain_graph=True)``).

``retain_graph=True`` changes no gradient of the backward pass it is given: it only keeps the
graph's buffers for another backward pass through it. The NNX step computes its forward pass in
a loss function, and what leaves it (the aux outputs) carries no graph. The two agree when no
later backward pass of the program reaches this step's graph, which torch then walks a second
time (a hidden state carried to the next iteration, `h = model(x, h)`: its gradient flows into
the earlier steps in torch, not in JAX). The proof here:

- every name the step's forward pass binds is read elsewhere in the step's scope only through
  a detaching read (``x.data``, ``x.detach()``, ``x.item()``, ``x.shape``: the map's
  ``graph_free_reads``) or after a plain assignment rebinds it, in the same block or one around
  it, before the read and inside the loop holding the step (the next iteration's value is then
  the new one); no function, lambda or class of the scope names it, no ``global``/``nonlocal``;
- every module the forward pass calls by name keeps no tensor between calls: bound once to a
  class of the map's ``graph_free_modules`` packages (``torch.nn.Linear``) or a container of them
  (``torch.nn.Sequential(...)``, the map's ``graph_free_containers``). A model of the file's own
  class may store an output (``self.h = out``) the next call reads: not proven.

Returned: the reason the graph may be walked again, or None (proven unused)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.signature import code_of

_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)
_LOOPS = (cst.For, cst.While)


def retained_graph_problem(
    forward: Sequence[cst.BaseStatement],
    scope: cst.CSTNode,
    module: cst.Module,
    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None],
    one_value: Callable[[cst.BaseExpression], cst.BaseExpression | None],
    qualify: Callable[[cst.BaseExpression], list[str]],
    detaching: Collection[str],
    modules: Collection[str],
    containers: Collection[str],
    backward: cst.CSTNode,
    trained: cst.BaseExpression | None = None,
) -> str | None:
    """Why the graph ``forward`` builds may be walked by a later backward pass (None: it is
    not). ``scope``: the function (or module) holding the step; ``one_value``: the one value
    reaching a name; ``detaching``, ``modules``, ``containers``: the map's lists;
    ``backward``: the step's backward statement (its read of the loss is the one walk);
    ``trained``: the model the step trains (``self.model`` too, called through an attribute)."""
    bound = {n for s in forward for n in _bound(s)}
    inside = {id(n) for s in forward for n in cst_walk.walk(s)}
    skipped = {id(n) for n in cst_walk.walk(backward)}
    for node in cst_walk.walk(module):
        if isinstance(node, (cst.Global, cst.Nonlocal)):
            declared = {n.name.value for n in node.names} & bound
            if declared:
                return f"`{sorted(declared)[0]}` is declared `global`/`nonlocal`"
    body = scope.body if isinstance(scope, cst.FunctionDef) else scope
    for node in cst_walk.walk(body):
        if not isinstance(node, cst.Name) or node.value not in bound or id(node) in skipped:
            continue
        if _not_a_read(node, parent_of):
            continue
        if _under_scope(node, body, parent_of):
            return f"`{node.value}` is read by a function, lambda or class of the step's scope"
        if _detached(node, parent_of, detaching):
            continue
        problem = _fresh(node, forward, inside, body, parent_of)
        if problem is not None:
            return problem
    if trained is not None and not isinstance(trained, cst.Name):
        value = one_value(trained)
        if not (
            isinstance(value, cst.Call) and _graph_free_module(value, qualify, modules, containers)
        ):
            return (
                f"the model `{code_of(trained).strip()}` is not proven to keep no tensor "
                "between calls (a torch.nn layer or a container of such)"
            )
    for call in (n for s in forward for n in cst_walk.walk(s) if isinstance(n, cst.Call)):
        if isinstance(call.func, cst.Name) and not qualify(call.func):
            problem = _graph_free(call.func, one_value, qualify, modules, containers)
            if problem is not None:
                return problem
    return None


def _bound(node: cst.CSTNode) -> set[str]:
    """The names a statement binds (assignments, loops, ``with ... as``, ``del``, ``:=``)."""
    names: set[str] = set()
    for inner in cst_walk.walk(node):
        targets: list[cst.BaseExpression] = []
        if isinstance(inner, cst.Assign):
            targets = [t.target for t in inner.targets]
        elif isinstance(
            inner, (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor, cst.Del, cst.NamedExpr)
        ):
            targets = [inner.target]
        elif isinstance(inner, cst.AsName):
            targets = [inner.name]  # type: ignore[list-item]
        for target in targets:
            names |= _target_names(target)
    return names


def _target_names(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        return {n for e in target.elements for n in _target_names(e.value)}
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return set()


def _not_a_read(node: cst.Name, parent_of: Callable[[cst.CSTNode], cst.CSTNode | None]) -> bool:
    """An attribute's name, a keyword, or a plain binding target (not a read of the value)."""
    parent = parent_of(node)
    if isinstance(parent, cst.Attribute) and parent.attr is node:
        return True
    if isinstance(parent, cst.Arg) and parent.keyword is node:
        return True
    child: cst.CSTNode = node
    while isinstance(parent, (cst.Tuple, cst.List, cst.Element, cst.StarredElement)):
        child, parent = parent, parent_of(parent)
    if isinstance(parent, cst.AssignTarget) and parent.target is child:
        return True
    if isinstance(parent, (cst.For, cst.CompFor, cst.AnnAssign)) and parent.target is child:
        return True
    return isinstance(parent, (cst.AsName, cst.NamedExpr)) and parent.children[0] is child


def _under_scope(
    node: cst.CSTNode, body: cst.CSTNode, parent_of: Callable[[cst.CSTNode], cst.CSTNode | None]
) -> bool:
    parent = parent_of(node)
    while parent is not None and parent is not body:
        if isinstance(parent, _SCOPES):
            return True
        parent = parent_of(parent)
    return False


def _detached(
    node: cst.Name,
    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None],
    detaching: Collection[str],
) -> bool:
    """``x.data``, ``x.detach()``, ``x.item()``, ``x.shape``: no graph in what is read."""
    parent = parent_of(node)
    return (
        isinstance(parent, cst.Attribute)
        and parent.value is node
        and (parent.attr.value in detaching)
    )


def _fresh(
    node: cst.Name,
    forward: Sequence[cst.BaseStatement],
    inside: set[int],
    body: cst.CSTNode,
    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None],
) -> str | None:
    """None when the value ``node`` reads is bound by a plain assignment other than the
    forward pass's (or, inside the forward pass, by its own earlier statement), in its block or
    one around it, before it and inside every loop holding the step."""
    name = node.value
    statement = _statement_of(node, parent_of)
    shown = f"`{name}` (bound by the forward pass)"
    while statement is not None and statement is not body:
        block = parent_of(statement)
        siblings = list(getattr(block, "body", ()))
        index = next((i for i, s in enumerate(siblings) if s is statement), None)
        if index is None:
            return f"{shown} is read where no block is known"
        for sibling in reversed(siblings[:index]):
            if name not in _bound(sibling):
                continue
            own = any(sibling is s for s in forward)
            if own and id(node) in inside:
                return None  # (the forward pass's own value, in its graph)
            if own or not _plain_assignment(sibling, name):
                return (
                    f"{shown} is read at `{code_of(statement).strip()[:60]}` where its value "
                    "may be the one this step's graph computed: torch's retained graph would be "
                    "walked again by a later backward pass"
                )
            return None
        outer = parent_of(block) if block is not None else None
        while outer is not None and not isinstance(outer, cst.BaseStatement):
            outer = parent_of(outer)
        if isinstance(outer, _LOOPS) and forward and _holds(outer, forward[0]):
            return (
                f"{shown} is read at `{code_of(statement).strip()[:60]}`, where the next pass "
                "of the loop may read the value of this step's graph (torch's retained graph "
                "would be walked again)"
            )
        statement = outer
    return None


def _holds(outer: cst.CSTNode, node: cst.CSTNode) -> bool:
    return any(inner is node for inner in cst_walk.walk(outer))


def _statement_of(
    node: cst.CSTNode, parent_of: Callable[[cst.CSTNode], cst.CSTNode | None]
) -> cst.BaseStatement | None:
    parent = parent_of(node)
    while parent is not None and not isinstance(parent, cst.BaseStatement):
        parent = parent_of(parent)
    return parent


def _plain_assignment(statement: cst.BaseStatement, name: str) -> bool:
    """``name = <value>`` (or a tuple of names), alone on its line."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    assign = statement.body[0]
    return isinstance(assign, cst.Assign) and any(
        name in _target_names(t.target) for t in assign.targets
    )


def _graph_free(
    callee: cst.Name,
    one_value: Callable[[cst.BaseExpression], cst.BaseExpression | None],
    qualify: Callable[[cst.BaseExpression], list[str]],
    modules: Collection[str],
    containers: Collection[str],
) -> str | None:
    """None when ``callee`` is a function of the file or a module keeping no tensor between
    calls (a class of ``modules``, a container of ``containers`` of such)."""
    value = one_value(callee)
    if isinstance(value, (cst.FunctionDef, cst.Lambda)):
        return None  # (a loss helper of the file: proven pure by loss_helpers)
    if isinstance(value, cst.Call) and _graph_free_module(value, qualify, modules, containers):
        return None
    return (
        f"the forward pass calls `{callee.value}`, not proven to keep no tensor between calls "
        "(a class of the file may store an output its next call reads, through torch's "
        "retained graph)"
    )


def _graph_free_module(
    call: cst.Call,
    qualify: Callable[[cst.BaseExpression], list[str]],
    modules: Collection[str],
    containers: Collection[str],
) -> bool:
    names = qualify(call.func)
    if any(n in containers for n in names):
        return all(
            not a.star
            and a.keyword is None
            and isinstance(a.value, cst.Call)
            and _graph_free_module(a.value, qualify, modules, containers)
            for a in call.args
        )
    return any(
        package in modules and name[:1].isupper()
        for package, _, name in (n.rpartition(".") for n in names)
    )
