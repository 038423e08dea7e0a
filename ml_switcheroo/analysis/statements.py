"""Shapes of single statements and reads of a torch program: what a line binds, the one method
call a line is, a read through ``x.detach()``.

``detach`` and ``step`` are torch method names read in code here, not yet map facts (like the
names of ``targets/nnx/other_models.py``, which uses these helpers too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import libcst as cst

from ml_switcheroo.analysis import cst_walk

DETACH = "detach"
STEP = "step"


class Parents(Protocol):
    """What answers the node holding a node of the file (``HookContext.parent_of``)."""

    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None]


def lone_method_call(statement: cst.BaseStatement) -> tuple[str, str | None] | None:
    """``(method, receiver name)`` of ``x.method(...)`` alone on its line."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    call = small.value if isinstance(small, cst.Expr) else None
    if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
        return None
    receiver = call.func.value
    return call.func.attr.value, receiver.value if isinstance(receiver, cst.Name) else None


def assigned_names(statement: cst.BaseStatement) -> list[cst.Name]:
    """The names a simple statement's assignments bind (``a, b = ...``)."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return []
    found: list[cst.Name] = []
    for small in statement.body:
        targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else []
        if isinstance(small, (cst.AnnAssign, cst.AugAssign)):
            targets = [small.target]
        while targets:
            target = targets.pop()
            if isinstance(target, cst.Name):
                found.append(target)
            elif isinstance(target, (cst.Tuple, cst.List)):
                targets.extend(e.value for e in target.elements)
    return found


def is_detached(read: cst.Name, parents: Parents) -> bool:
    """``read`` is ``x`` of ``x.detach()`` (no argument)."""
    attribute = parents.parent_of(read)
    call = parents.parent_of(attribute) if attribute is not None else None
    return (
        isinstance(attribute, cst.Attribute)
        and attribute.value is read
        and attribute.attr.value == DETACH
        and isinstance(call, cst.Call)
        and call.func is attribute
        and not call.args
    )


def _plain_names(target: cst.BaseExpression) -> list[cst.Name] | None:
    """The names of a target made of plain names only (``x``, ``x, (y, z)``); None when an
    item, attribute or starred element is stored."""
    if isinstance(target, cst.Name):
        return [target]
    if isinstance(target, (cst.Tuple, cst.List)):
        found: list[cst.Name] = []
        for element in target.elements:
            if not isinstance(element, cst.Element):
                return None  # (a starred element)
            inner = _plain_names(element.value)
            if inner is None:
                return None
            found.extend(inner)
        return found
    return None


def _assignment_line_names(statement: cst.BaseStatement) -> list[cst.Name] | None:
    """The names of a line holding one assignment to plain names only (``a = ...``, ``a, b =
    ...``, ``a += ...``, ``a: T = ...``); None for any other statement."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Assign):
        found: list[cst.Name] = []
        for target in small.targets:
            names = _plain_names(target.target)
            if names is None:
                return None
            found.extend(names)
        return found
    if isinstance(small, cst.AugAssign) or (
        isinstance(small, cst.AnnAssign) and small.value is not None
    ):
        return _plain_names(small.target)
    return None


def loss_loop_names(statement: cst.BaseStatement) -> list[cst.Name] | None:
    """For a ``for`` statement whose every step is a plain assignment (the shape a loss built
    in a loop has: ``for ft, gm in zip(fs, gms): g = gram(ft); style += mse(g, gm)``): the
    names it binds, its target's and then its body's in order; None for any other statement.
    Plain: not async, no ``else:``, its target plain names, its body lines of one assignment to
    plain names (``=``, ``+=``, ``x: T = ...``) or such loops; so no jump (``break``,
    ``continue``, ``return``), no definition, no item or attribute store, no bare call, and no
    walrus (``:=``) anywhere in it."""
    if (
        not isinstance(statement, cst.For)
        or statement.asynchronous is not None
        or statement.orelse is not None
        or not isinstance(statement.body, cst.IndentedBlock)
        or not statement.body.body
    ):
        return None
    found = _plain_names(statement.target)
    if found is None or any(isinstance(n, cst.NamedExpr) for n in cst_walk.walk(statement)):
        return None  # (a walrus binds a name only the passes that run bind)
    for inner in statement.body.body:
        names = _assignment_line_names(inner)
        if names is None:
            names = loss_loop_names(inner)
        if names is None:
            return None
        found = [*found, *names]
    return found


def if_branches(
    statement: cst.If,
) -> tuple[list[cst.BaseExpression], list[list[cst.BaseStatement]], bool] | None:
    """The tests of an ``if``/``elif`` chain, the statements of each branch (the ``else:``'s
    last), and whether it has an ``else:`` (some branch then always runs); None when a branch
    is not an indented block (``if c: x = 1`` on one line)."""
    tests: list[cst.BaseExpression] = []
    bodies: list[list[cst.BaseStatement]] = []
    node: cst.If = statement
    while True:
        if not isinstance(node.body, cst.IndentedBlock):
            return None
        tests.append(node.test)
        bodies.append(list(node.body.body))
        if isinstance(node.orelse, cst.If):
            node = node.orelse
            continue
        if isinstance(node.orelse, cst.Else):
            if not isinstance(node.orelse.body, cst.IndentedBlock):
                return None
            bodies.append(list(node.orelse.body.body))
            return tests, bodies, True
        return tests, bodies, False


def loss_branch_names(statement: cst.BaseStatement) -> list[cst.Name] | None:
    """For an ``if`` (``elif``, ``else``) whose every branch is plain assignments (cleanrl's
    ``if args.clip_vloss: v_loss = ... else: v_loss = ...``): the names its branches bind, in
    order; None for any other statement. Plain: each branch an indented block of lines of one
    assignment to plain names (``=``, ``+=``, ``x: T = ...``), ``for`` loops of such lines
    (``loss_loop_names``) or such ``if`` statements; no walrus (``:=``) anywhere in it. Whether
    its tests may run in the loss function (not traced) is the step's to decide."""
    if not isinstance(statement, cst.If) or any(
        isinstance(n, cst.NamedExpr) for n in cst_walk.walk(statement)
    ):
        return None
    branches = if_branches(statement)
    if branches is None:
        return None
    found: list[cst.Name] = []
    for inner in (s for body in branches[1] for s in body):
        names = _assignment_line_names(inner)
        if names is None:
            names = loss_loop_names(inner)
        if names is None:
            names = loss_branch_names(inner)
        if names is None:
            return None
        found = [*found, *names]
    return found
