"""Which earlier forward pass a GAN's generator step reaches its model through (DCGAN, issue 13).

The discriminator's step computes ``fake = netG(noise)`` (and reads ``fake.detach()``); the
generator's step after it differentiates a loss reading that ``fake`` (``criterion(netD(fake),
label)``), so torch's backward pass reaches ``netG`` through that one forward pass. ``link``
decides, from the generator's step, whether that holds exactly: the loss reaches the trained
model only through one name bound once, by ``name = model(args)`` alone on its line in the same
block before the step; between that line and the step's end the model is named only by its
``zero_grad()``, the generator's optimizer not at all, the name is never bound again and read
only as ``name.detach()`` or as an argument of another optimizer's model (nothing changes it in
place); it is read nowhere else. Not done: a forward between the two steps, outside the
discriminator's step (no link). How a target computes the step from the link (the NNX
target: a pullback, ``targets/nnx/pullback.py``) is not this module's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.resolver import Variable
from ml_switcheroo.analysis.statements import STEP, Parents, is_detached, lone_method_call


class NameFlow(Parents, Protocol):
    """The file's name resolution the link reads (``HookContext`` answers it)."""

    variable: Callable[[cst.Name], Variable | None]
    origins: Callable[[cst.BaseExpression], list[cst.BaseExpression] | None]
    visible_names: Callable[[cst.CSTNode], frozenset[str]]


@dataclass(frozen=True)
class ForwardLink:
    """The generator's forward ``output = model(args)`` (``forward``: its line, before the
    step) whose value the generator's step reads; ``taken``: the names visible at that line
    and named in its block (a name the target binds there must avoid them)."""

    forward: cst.SimpleStatementLine
    output: str
    model: str
    taken: frozenset[str]


def link(
    forward: list[cst.BaseStatement],
    bound: set[str],
    trained: cst.BaseExpression,
    region_statements: list[cst.BaseStatement],
    optimizer: str,
    other_model: Callable[[cst.BaseExpression], bool],
    ctx: NameFlow,
) -> ForwardLink | str:
    """The forward pass the generator's step (``region_statements``, its ``forward`` binding
    ``bound``) reaches its model through, or why it has none (see the module's docstring)."""
    if not isinstance(trained, cst.Name):
        return f"the model `{_code(trained)}` is not a plain name"
    model = trained.value
    read = _read_output(forward, bound, model, region_statements[0], ctx)
    if isinstance(read, str):
        return read
    name, line = read
    block = ctx.parent_of(line)
    statements = list(getattr(block, "body", ()))
    first = _index(statements, region_statements[0])
    at = _index(statements, line)
    if first is None or at is None or at >= first:
        return f"`{_code(line)}` is not a line before the step in the step's block"
    span = statements[at + 1 : first + len(region_statements)]
    problem = _span_problem(span, first - at - 1, name, model, optimizer, other_model, ctx)
    if problem:
        return problem
    after, before = statements[first + len(region_statements) :], statements[:at]
    if _read_first([*after, *before], name) or _read_outside(block, name, ctx):
        return f"`{name}` may be read after the step with the value `{_code(line)}` gave it"
    taken = frozenset(ctx.visible_names(line)) | _names(statements)
    return ForwardLink(line, name, model, taken)


def next_step(statement: cst.BaseStatement, ctx: NameFlow) -> cst.BaseStatement | None:
    """The first line ``x.step()`` after ``statement`` in its block."""
    block = ctx.parent_of(statement)
    statements = list(getattr(block, "body", ()))
    at = _index(statements, statement)
    for statement in statements[at + 1 :] if at is not None else []:
        if _lone_step(statement) is not None:
            return statement
    return None


def _read_output(
    forward: list[cst.BaseStatement],
    bound: set[str],
    model: str,
    first: cst.BaseStatement,
    ctx: NameFlow,
) -> tuple[str, cst.SimpleStatementLine] | str:
    """The one name the loss reads that ``name = model(...)`` bound, and that line: the last
    such line before the step's ``first`` statement in its block (``link`` then proves that
    nothing binds the name between it and the step: it is the value the loss reads)."""
    found: dict[str, cst.SimpleStatementLine] = {}
    statements = list(getattr(ctx.parent_of(first), "body", ()))
    for node in (n for s in forward for n in cst_walk.walk(s)):
        if not isinstance(node, cst.Name) or node.value in bound or ctx.variable(node) is None:
            continue
        calls = [v for v in ctx.origins(node) or [] if _calls(v, model)]
        if not calls:
            continue
        end = _index(statements, first) or 0
        lines = [_line_of(c, ctx) for c in calls]
        places = [(_index(statements, x), x) for x in lines if x is not None]
        before = [(i, x) for i, x in places if i is not None and i < end]
        if not before:
            return f"`{node.value}` is not bound by `{node.value} = {model}(...)` in the block"
        found[node.value] = max(before, key=lambda pair: pair[0])[1]
    if len(found) != 1:
        return f"the loss reads {len(found)} outputs of `{model}`"
    name, line = next(iter(found.items()))
    if model in _names_read(line.body[0].value.args):  # type: ignore[attr-defined]
        return f"`{_code(line)}` passes `{model}` to itself"
    return name, line


def _read_first(statements: Sequence[cst.BaseStatement], name: str) -> bool | None:
    """Whether running ``statements`` in order may read ``name`` before binding it: True;
    False when every path binds it first (``name = ...`` on a line of its own); None when
    some path neither reads nor binds it."""
    for statement in statements:
        if isinstance(statement, cst.SimpleStatementLine):
            if name in _names_read(statement):
                return True
            if any(_binds(small, name) for small in statement.body):
                return False
            continue
        headers = [n for n in _header_nodes(statement) if name in _names_read(n)]
        if headers or not isinstance(statement, (cst.If, cst.With, cst.For, cst.While)):
            return True if headers or name in _names_read(statement) else None
        outcomes = [_read_first(block, name) for block in _blocks(statement)]
        if True in outcomes:
            return True
        if isinstance(statement, cst.With) and outcomes == [False]:
            return False
    return None


def _read_outside(block: cst.CSTNode | None, name: str, ctx: NameFlow) -> bool:
    """Whether ``name`` is named in the function (or module) holding ``block`` outside it."""
    scope: cst.CSTNode | None = block
    while scope is not None and not isinstance(scope, (cst.FunctionDef, cst.Module)):
        scope = ctx.parent_of(scope)
    inside = {id(n) for n in cst_walk.walk(block)} if block is not None else set()
    return (
        any(
            isinstance(n, cst.Name) and n.value == name and id(n) not in inside
            for n in cst_walk.walk(scope)
        )
        if scope is not None
        else True
    )


def _binds(small: cst.BaseSmallStatement, name: str) -> bool:
    return isinstance(small, cst.Assign) and any(
        isinstance(t.target, cst.Name) and t.target.value == name for t in small.targets
    )


def _header_nodes(statement: cst.BaseStatement) -> list[cst.CSTNode]:
    """The expressions a compound statement evaluates before its blocks."""
    if isinstance(statement, cst.If):
        return [statement.test]
    if isinstance(statement, cst.With):
        return list(statement.items)
    if isinstance(statement, cst.For):
        return [statement.iter, statement.target]
    if isinstance(statement, cst.While):
        return [statement.test]
    return []


def _blocks(statement: cst.BaseStatement) -> list[Sequence[cst.BaseStatement]]:
    """The statement lists of a compound statement's blocks (``elif``/``else`` too)."""
    found: list[Sequence[cst.BaseStatement]] = []
    part: cst.CSTNode | None = statement
    while part is not None:
        body = getattr(part, "body", None)
        if isinstance(body, cst.IndentedBlock):
            found.append(body.body)
        elif body is not None:
            found.append([cst.SimpleStatementLine(body=body.body)])  # a one-line block
        part = getattr(part, "orelse", None)
    return found


def _span_problem(
    span: list[cst.BaseStatement],
    between: int,
    name: str,
    model: str,
    optimizer: str,
    other_model: Callable[[cst.BaseExpression], bool],
    ctx: NameFlow,
) -> str:
    """Why the statements after the forward line up to the step's end (the first
    ``between`` of them before the step) break the link."""
    for index, statement in enumerate(span):
        stepped = optimizer if index < between else None
        for node in cst_walk.walk(statement):
            if isinstance(node, cst.Name) and not _is_attr(node, ctx):
                problem = _use_problem(node, statement, name, model, stepped, other_model, ctx)
                if problem:
                    return f"{problem} (`{_code(statement)}`)"
    return ""


def _use_problem(
    node: cst.Name,
    statement: cst.BaseStatement,
    name: str,
    model: str,
    optimizer: str | None,
    other_model: Callable[[cst.BaseExpression], bool],
    ctx: NameFlow,
) -> str:
    """Why one name of the span breaks the link ("" when it does not); ``optimizer``: the
    generator's, when the statement comes before its step."""
    if node.value == model and not _zeroes(statement, model):
        return f"`{model}` is used between its forward pass and its step"
    if node.value == optimizer:
        return f"`{optimizer}` is used between the forward pass and its step"
    if node.value != name:
        return ""
    if is_detached(node, ctx):
        return ""
    parent = ctx.parent_of(node)
    call = ctx.parent_of(parent) if isinstance(parent, cst.Arg) else None
    if (
        isinstance(parent, cst.Arg)
        and parent.keyword is None
        and isinstance(call, cst.Call)
        and other_model(call.func)
    ):
        return ""
    return f"`{name}` is used otherwise than as `{name}.detach()` or another model's input"


def _zeroes(statement: cst.BaseStatement, model: str) -> bool:
    """``model.zero_grad()`` alone on its line."""
    return lone_method_call(statement) == ("zero_grad", model)


def _lone_step(statement: cst.BaseStatement) -> cst.Call | None:
    small = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
    call = small.value if isinstance(small, cst.Expr) and len(statement.body) == 1 else None  # type: ignore[union-attr]
    if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute):
        return call if call.func.attr.value == STEP and not call.args else None
    return None


def _calls(value: cst.BaseExpression, model: str) -> bool:
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Name)
        and (value.func.value == model)
    )


def _line_of(call: cst.Call, ctx: NameFlow) -> cst.SimpleStatementLine | None:
    """The line ``name = call`` when the call is its whole value and ``name`` its one target."""
    assign = ctx.parent_of(call)
    line = ctx.parent_of(assign) if assign is not None else None
    if (
        isinstance(assign, cst.Assign)
        and assign.value is call
        and len(assign.targets) == 1
        and isinstance(assign.targets[0].target, cst.Name)
        and isinstance(line, cst.SimpleStatementLine)
        and len(line.body) == 1
    ):
        return line
    return None


def _is_attr(node: cst.Name, ctx: NameFlow) -> bool:
    parent = ctx.parent_of(node)
    keyword = isinstance(parent, cst.Arg) and parent.keyword is node
    return keyword or (isinstance(parent, cst.Attribute) and parent.attr is node)


def _names_read(node: cst.CSTNode | Sequence[cst.CSTNode]) -> set[str]:
    """The variables ``node`` reads (not the ``attr`` of ``x.attr``, a keyword's name or an
    assignment's target)."""
    nodes = [
        x for root in (node if isinstance(node, Sequence) else [node]) for x in cst_walk.walk(root)
    ]
    skipped = {id(n.attr) for n in nodes if isinstance(n, cst.Attribute)}
    skipped |= {id(n.keyword) for n in nodes if isinstance(n, cst.Arg) and n.keyword is not None}
    skipped |= {id(t.target) for n in nodes if isinstance(n, cst.Assign) for t in n.targets}
    return {n.value for n in nodes if isinstance(n, cst.Name) and id(n) not in skipped}


def _names(statements: list[cst.BaseStatement]) -> set[str]:
    return {n.value for s in statements for n in cst_walk.walk(s) if isinstance(n, cst.Name)}


def _index(statements: list[cst.BaseStatement], statement: cst.CSTNode) -> int | None:
    return next((i for i, s in enumerate(statements) if s is statement), None)


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node).strip()
