"""The NNX training step's syntax helpers: the names a statement binds or reads, its lone call, the
callees of statements, the one value a name holds (``_target_names``, ``_variables_of``,
``_lone_call``, ``_one_value``...), answered from the syntax and the bindings alone.

Split from ``training_step.py`` by ``tools/split_training_step.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.analysis.statements import loss_branch_names, loss_loop_names
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext


def _is_method_call(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)


def _stepped_optimizer(region: Region) -> cst.BaseExpression:
    """``opt`` of ``opt.step()`` or ``scaler.step(opt)``: no closure, not under a condition."""
    anchor = region.anchor
    scaled = anchor.role == roles.SCALER_STEP
    arguments = anchor.call.args[1:] if scaled else anchor.call.args
    if arguments:
        raise Untranslatable(
            "`step(closure)` re-evaluates the loss inside the optimizer (LBFGS); "
            "nnx.Optimizer.update takes gradients"
        )
    optimizer = anchor.call.args[0].value if scaled and anchor.call.args else anchor.receiver
    if optimizer is None or dotted_name(optimizer) is None:
        raise Untranslatable("the stepped optimizer is not a name or `self.x`")
    return optimizer


def _shown(statement: cst.BaseStatement) -> str:
    """A statement's code for a reason: without its comments, shortened."""
    return _short(code_of(statement.with_changes(leading_lines=())).strip())


_NESTED = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


def _is_scaler_call(node: cst.CSTNode, region: Region, method: str | None) -> bool:
    """``scaler.<method>(...)`` of the region's GradScaler."""
    return (
        method is not None
        and isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == method
        and dotted_name(node.func.value) == region.scaler
    )


def _planned_first(region: Region) -> cst.BaseStatement:
    """The region's first statement in the file (``Region.planned``: before a reshaping)."""
    return (region.planned or region.statements)[0]


def _region_ids(region: Region) -> set[int]:
    """The ids of the nodes of the region's statements, as planned and as reshaped."""
    return {id(n) for s in [*region.statements, *region.planned] for n in cst_walk.walk(s)}


def _scope(region: Region) -> cst.CSTNode:
    """The function holding the step, else the outermost loop (a step in no loop escapes)."""
    function = region.anchor.function
    if function is not None:
        return function
    if not region.anchor.controls:
        raise Untranslatable("a step outside any loop or function")
    return region.anchor.controls[0]


def _statement_of(call: cst.Call, ctx: HookContext) -> cst.BaseStatement | None:
    """The line ``call`` is alone on (``loss.backward()``), else None."""
    expression = ctx.parent_of(call)
    line = ctx.parent_of(expression) if isinstance(expression, cst.Expr) else None
    return line if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1 else None


def _is_constructor(call: cst.Call, ctx: HookContext) -> bool:
    entries = (ctx.semantic_map.apis.get(q) for q in ctx.qualify(call.func))
    return any(e is not None and e.role == roles.CONSTRUCTOR for e in entries)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


def _one_value(node: cst.BaseExpression, ctx: HookContext) -> cst.BaseExpression | None:
    """The one value that reaches a Name or ``self.x`` (through callers' arguments: one
    value two call sites pass counts once)."""
    values = _distinct(ctx.origins(node))
    return values[0] if values is not None and len(values) == 1 else None


def _distinct(values: list[cst.BaseExpression] | None) -> list[cst.BaseExpression] | None:
    """``values`` without repeats of one node."""
    if values is None:
        return None
    return list({id(value): value for value in values}.values())


def _tuple(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"


# ---------------------------------------------------------------------- small helpers


def _contains(statement: cst.CSTNode, inner: cst.CSTNode) -> bool:
    return any(n is inner for n in cst_walk.walk(statement))


def _assigned_call(statement: cst.BaseStatement) -> cst.Call | None:
    """The call of ``name = call(...)`` alone on its line."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Name)
            and isinstance(small.value, cst.Call)
        ):
            return small.value
    return None


def _lone_small(statement: cst.BaseStatement) -> cst.BaseSmallStatement | None:
    """The one small statement of a line holding only it."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        return statement.body[0]
    return None


def _lone_call(statement: cst.BaseStatement) -> cst.Call | None:
    small = _lone_small(statement)
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        return small.value
    return None


def _is_zero_grad(statement: cst.BaseStatement, ctx: HookContext) -> bool:
    """``x.zero_grad()`` alone on its line, or a line ``reset_grad()`` calling a function of
    the file that only zeroes gradients (``HookContext.zero_call``)."""
    call = _lone_call(statement)
    return (
        call is not None
        and isinstance(call.func, cst.Attribute)
        and call.func.attr.value == "zero_grad"
    ) or ctx.zero_call(statement) is not None


def _is_optimizer(call: cst.Call, ctx: HookContext) -> bool:
    """An optimizer constructor of the map."""
    entries = (ctx.semantic_map.apis.get(q) for q in ctx.qualify(call.func))
    return any(e is not None and e.role == roles.CONSTRUCTOR for e in entries)


def _is_assignment(statement: cst.BaseStatement) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
        return False
    return bool(_target_names(statement)) and all(isinstance(t, cst.Name) for t in _targets(small))


def _targets(small: cst.BaseSmallStatement) -> list[cst.BaseExpression]:
    if isinstance(small, cst.Assign):
        raw = [t.target for t in small.targets]
    elif isinstance(small, (cst.AugAssign, cst.AnnAssign)):
        raw = [small.target]
    else:
        return []
    flat: list[cst.BaseExpression] = []
    while raw:
        target = raw.pop()
        if isinstance(target, (cst.Tuple, cst.List)):
            raw.extend(e.value for e in target.elements)
        else:
            flat.append(target)
    return flat


def _target_names(statement: cst.BaseStatement) -> list[cst.Name]:
    """The names an assignment line binds, or a ``for`` loop of plain assignments
    (``statements.loss_loop_names``: its target's and its body's) or an ``if`` of them
    (``statements.loss_branch_names``: its branches'); [] for other statements."""
    if isinstance(statement, cst.For):
        return loss_loop_names(statement) or []
    if isinstance(statement, cst.If):
        return loss_branch_names(statement) or []
    if not isinstance(statement, cst.SimpleStatementLine):
        return []
    return [t for s in statement.body for t in _targets(s) if isinstance(t, cst.Name)]


def _bound_names(statement: cst.BaseStatement) -> list[cst.Name]:
    """The names an assignment statement binds, walrus targets (``t = (s := 2)``) included."""
    walrus = [
        n.target
        for n in cst_walk.walk(statement)
        if isinstance(n, cst.NamedExpr) and isinstance(n.target, cst.Name)
    ]
    return _target_names(statement) + walrus


def _calls_method_named(node: cst.CSTNode, name: str) -> bool:
    """``node`` is itself a call of a method ``name`` (``x.detach()``)."""
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == name
    )


def _calls_method(node: cst.CSTNode, name: str) -> bool:
    return any(
        isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and n.func.attr.value == name
        for n in cst_walk.walk(node)
    )


def _callees(statements: Sequence[cst.BaseStatement]) -> Iterator[cst.BaseExpression]:
    for statement in statements:
        for node in cst_walk.walk(statement):
            if isinstance(node, cst.Call) and isinstance(node.func, (cst.Name, cst.Attribute)):
                yield node.func
                if isinstance(node.func, cst.Attribute):
                    yield node.func.value


def _names_of(statements: Sequence[cst.BaseStatement]) -> set[str]:
    return {n.value for s in statements for n in cst_walk.walk(s) if isinstance(n, cst.Name)}


def _variables_of(statements: Sequence[cst.BaseStatement]) -> set[str]:
    """Names read or bound as variables in ``statements`` (``_variable_names``)."""
    return {name for s in statements for name in _variable_names(s)}


def _variable_names(node: cst.CSTNode) -> set[str]:
    """Names read or bound as variables under ``node``: not the ``attr`` of ``x.attr`` (HF's
    ``loss = outputs.loss``) nor the keyword of ``f(loss=...)``."""
    nodes = list(cst_walk.walk(node))
    not_variables = {id(n.attr) for n in nodes if isinstance(n, cst.Attribute)} | {
        id(n.keyword) for n in nodes if isinstance(n, cst.Arg) and n.keyword is not None
    }
    return {n.value for n in nodes if isinstance(n, cst.Name) and id(n) not in not_variables}
