"""Reads of the learning rate of an optimizer whose schedule is folded into its tx (NNX target):

    sched.get_last_lr()[0]      ->  float(sched(opt.step[...]))
    opt.param_groups[0]["lr"]   ->  float(sched(opt.step[...]))

The schedule is found as ``learning_rate=sched`` of the tx, of
``optax.inject_hyperparams(optax.<name>)(...)`` (OneCycleLR cycling the momentum too), or of
the one element of an ``optax.chain`` that takes it (weight decay, clipping at its head),
each stepped once per update; not inside ``optax.MultiSteps`` (flax 0.12.8 adds 1 to
``opt.step`` at every ``update``, a micro-batch there). The folded schedule gives update
``c + 1`` the lr torch uses after ``c`` updates (and the scheduler steps that follow
them), and ``opt.step`` is the nnx.Optimizer's count of updates: so wherever torch's
stored lr is not between ``opt.step()`` and ``sched.step()`` (where it changes), it is
``sched(opt.step[...])`` (checked on flax 0.12.8, optax 0.2.8). Only
``opt = torch.optim.X(...)`` and ``sched = Scheduler(opt, ...)`` bound once to names, each
stepped once, ``sched.step()`` after ``opt.step()`` in its block with no jump between, and the
read in their function and not between the two; anything else is left to the caller (escape).
"""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.analysis.stepping import jumps
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext

STEP = "step"
LEARNING_RATE = "learning_rate"
FLOAT = "float"
INT = "int"
READ = "float({schedule}(int({optimizer}.step[...])))"


def folded_lr(
    optimizer: cst.Name, scheduler: cst.Name | None, read: cst.CSTNode, ctx: HookContext
) -> cst.BaseExpression | None:
    """The expression of torch's current lr at ``read`` (``scheduler``: the scheduler read,
    None for a read through ``optimizer.param_groups``), or None when not provably exact."""
    schedule = _folded_schedule(optimizer, ctx)
    if schedule is None or (scheduler is not None and scheduler.value != schedule):
        return None
    if {FLOAT, INT} & ctx.visible_names(read):
        return None  # `float` or `int` is the user's name here: the read would call it
    scheduler_target = scheduler or _scheduler_of(optimizer, schedule, ctx)
    if scheduler_target is None:
        return None
    opt_step = _one_step(optimizer, ctx)
    sched_step = _one_step(scheduler_target, ctx)
    if (
        opt_step is None
        or sched_step is None
        or not _read_between_updates(opt_step, sched_step, read, ctx)
    ):
        return None
    text = READ.format(schedule=schedule, optimizer=optimizer.value)
    return cst.parse_expression(text)


def _folded_schedule(optimizer: cst.Name, ctx: HookContext) -> str | None:
    """``sched`` when the optimizer's translation is ``nnx.Optimizer(model,
    optax.<name>(learning_rate=sched, ...), ...)``."""
    origins = ctx.origins(optimizer)
    if not origins or len(origins) != 1 or not isinstance(origins[0], cst.Call):
        return None
    translation = ctx.translation_of(origins[0])
    if translation is None:
        return None
    call = cst.parse_expression(translation)
    if not isinstance(call, cst.Call) or len(call.args) < 2:
        return None
    tx = call.args[1].value
    found = [_learning_rate_of(c) for c in _chained(tx, ctx.semantic_map.chain_function)]
    named = [name for name in found if name is not None]
    return named[0] if len(named) == 1 else None


def _chained(tx: cst.BaseExpression, chain: str) -> list[cst.BaseExpression]:
    """The elements of ``tx`` when it is ``chain(...)`` of positional elements (a clip or
    weight decay at the head of the optimizer), else ``tx`` alone."""
    if isinstance(tx, cst.Call) and code_of(tx.func).strip() == chain:
        if any(a.keyword is not None or a.star for a in tx.args):
            return []
        return [a.value for a in tx.args]
    return [tx]


def _learning_rate_of(element: cst.BaseExpression) -> str | None:
    """``sched`` of ``optax.<name>(learning_rate=sched, ...)`` or of
    ``optax.inject_hyperparams(optax.<name>)(learning_rate=sched, ...)``."""
    if not isinstance(element, cst.Call):
        return None
    for arg in element.args:
        if arg.keyword is not None and arg.keyword.value == LEARNING_RATE:
            return arg.value.value if isinstance(arg.value, cst.Name) else None
    return None


def _scheduler_of(optimizer: cst.Name, schedule: str, ctx: HookContext) -> cst.Name | None:
    """The name ``schedule`` bound to a call that takes ``optimizer`` (``sched = X(opt, ...)``)."""
    variable = ctx.variable(optimizer)
    if variable is None:
        return None
    for read in variable.reads:
        if len(read) < 3 or not isinstance(read[1], cst.Arg) or not isinstance(read[2], cst.Call):
            continue
        target = ctx.assigned_to(read[2])
        if isinstance(target, cst.Name) and target.value == schedule:
            return target
    return None


def _one_step(name: cst.Name, ctx: HookContext) -> cst.Call | None:
    """The one ``name.step()`` of a name bound once, else None."""
    variable = ctx.variable(name)
    if variable is None or len(variable.values) != 1:
        return None
    steps = [
        read[2]
        for read in variable.reads
        if len(read) > 2
        and isinstance(read[1], cst.Attribute)
        and read[1].attr.value == STEP
        and isinstance(read[2], cst.Call)
        and read[2].func is read[1]
    ]
    return steps[0] if len(steps) == 1 else None


def _read_between_updates(
    opt_step: cst.Call, sched_step: cst.Call, read: cst.CSTNode, ctx: HookContext
) -> bool:
    """Whether ``sched.step()`` follows ``opt.step()`` in its block with no jump between,
    and ``read`` is in the same function and not from one to the other."""
    line = _parent(_parent(opt_step, ctx), ctx)
    block = _parent(line, ctx)
    if not isinstance(line, cst.SimpleStatementLine) or not isinstance(
        block, (cst.IndentedBlock, cst.Module)
    ):
        return False
    body = list(block.body)
    first = body.index(line)
    last = _index_in(block, sched_step, ctx)
    if last is None or last <= first or any(jumps(s) for s in body[first + 1 : last]):
        return False
    if _function_of(read, ctx) is not _function_of(line, ctx):
        return False
    at = _index_in(block, read, ctx)
    return at is None or not first <= at <= last


def _parent(node: cst.CSTNode | None, ctx: HookContext) -> cst.CSTNode | None:
    return ctx.parent_of(node) if node is not None else None


def _index_in(block: cst.CSTNode, node: cst.CSTNode, ctx: HookContext) -> int | None:
    """The index of the statement of ``block`` holding ``node`` (None: not inside it)."""
    current: cst.CSTNode | None = node
    while current is not None:
        parent = ctx.parent_of(current)
        if parent is block:
            body = list(block.body)  # type: ignore[attr-defined]
            return next((i for i, s in enumerate(body) if s is current), None)
        current = parent
    return None


def _function_of(node: cst.CSTNode, ctx: HookContext) -> cst.CSTNode | None:
    current = ctx.parent_of(node)
    while current is not None and not isinstance(current, (cst.FunctionDef, cst.Lambda)):
        current = ctx.parent_of(current)
    return current
