"""Statements between the backward pass and the step that only record values (``train_loss
+= loss.item()``, ``losses.append(loss.item())``, ``print(...)``): the NNX step runs them
where torch does, after the gradient and before the update (issue 13, pytorch/examples' VAE).

Such a statement changes no gradient only when nothing it runs can reach one: it is one simple
statement (an expression, or an assignment to plain names), reads no gradient attribute
(``.grad``), runs no backward pass, and each call in it is a builtin, a function of a module
the map lists under ``recording_modules`` (``math.floor``, ``logging.info``: functions that only
read their arguments), or a method of a value the forward pass computed (``loss.item()``), of
a literal, or of a name bound only to a list, dict or set display (``losses = []``). A call of
a function of the file or of another module (``helpers.scale_grads()`` of the user's package,
``torch._foreach_mul_(grads, 0.5)``), or a method of another object (``self.log(...)``,
``tracker.update(...)``), may read or edit the gradients through what it holds (a global of
its module, its arguments): the step escapes. It must not
read a name a statement left in place between the backward pass and the step binds (a clip's
norm is computed after the moved statements in the NNX step); the moved ones keep their
order. The model, the optimizer and the map's APIs are the tail's rules
(``training_step._check_tail``).
"""

from __future__ import annotations

import builtins

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.spec.signature import dotted_name
from ml_switcheroo.targets.hooks import HookContext

_DISPLAYS = (cst.List, cst.Dict, cst.Set)


def logged_after_backward(
    region: Region,
    backward_index: int,
    step_statement: cst.BaseStatement,
    computed: set[str],
    ctx: HookContext,
) -> list[cst.BaseStatement]:
    """The statements between the backward pass and the step (not under an accumulation's
    condition) that only record values; ``computed``: names the forward pass binds."""
    if step_statement is not region.anchor.statement:
        return []
    end = next((i for i, s in enumerate(region.statements) if s is step_statement), None)
    if end is None:  # the step is nested in a statement of the region (a `match` case)
        return []
    between = region.statements[backward_index + 1 : end]
    found = list(between)
    while True:  # drop those reading a name a statement left in place binds, to a fixpoint
        left = [s for s in between if not any(s is f for f in found)]
        bound = bound_by(left)
        kept = [s for s in found if _records_values(s, computed, bound, ctx)]
        if len(kept) == len(found):
            return kept
        found = kept


def _records_values(
    statement: cst.BaseStatement, computed: set[str], bound: set[str], ctx: HookContext
) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, (cst.Expr, cst.Assign, cst.AugAssign)):
        return False
    if any(not isinstance(t, cst.Name) for t in _targets(small)):
        return False
    hidden = {*ctx.semantic_map.gradient_attributes, *ctx.semantic_map.backward_methods}
    for node in cst_walk.walk(statement):
        if isinstance(node, cst.Attribute) and node.attr.value in hidden:
            return False
        if isinstance(node, cst.Name) and node.value in bound:
            return False
        if isinstance(node, cst.Call) and not harmless_call(node.func, computed, ctx):
            return False
    return True


def harmless_call(func: cst.BaseExpression, computed: set[str], ctx: HookContext) -> bool:
    """A builtin, a function of a recording module, or a method of a computed value, a
    literal or a list/dict/set display (see the module's docstring)."""
    if isinstance(func, cst.Name):
        return hasattr(builtins, func.value) and ctx.variable(func) is None
    if not isinstance(func, cst.Attribute):
        return False
    root = func.value
    while isinstance(root, (cst.Attribute, cst.Call, cst.Subscript)):
        root = root.func if isinstance(root, cst.Call) else root.value
    if isinstance(root, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
        return True
    if not isinstance(root, cst.Name):
        return False
    if root.value in computed or _of_recording_module(func, ctx):
        return True
    values = ctx.origins(root)
    return bool(values) and all(isinstance(v, _DISPLAYS) for v in values)  # type: ignore[union-attr]


def _of_recording_module(func: cst.Attribute, ctx: HookContext) -> bool:
    """Whether ``func`` is a function of a module of the map's ``recording_modules``."""
    modules = ctx.semantic_map.recording_modules
    qualified = ctx.qualify(func)
    return bool(qualified) and all(q.rpartition(".")[0] in modules for q in qualified)


def bound_by(statements: list[cst.BaseStatement]) -> set[str]:
    """Names the statements bind (a clip's norm, ``norm = clip_grad_norm_(...)``)."""
    names: set[str] = set()
    for statement in statements:
        for node in cst_walk.walk(statement):
            if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
                names |= {dotted_name(t) or "" for t in _targets(node)}
    return names - {""}


def _targets(small: cst.CSTNode) -> list[cst.BaseExpression]:
    if isinstance(small, cst.Assign):
        return [t.target for t in small.targets]
    if isinstance(small, (cst.AugAssign, cst.AnnAssign)):
        return [small.target]
    return []
