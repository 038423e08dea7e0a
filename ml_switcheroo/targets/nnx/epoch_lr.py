"""Schedulers stepped once per epoch (NNX target): the learning rate is written where torch
steps the scheduler, instead of folding the schedule into the optimizer's tx:

    sched = StepLR(opt, step_size=2)  ->  sched = optax.exponential_decay(...)
    opt = torch.optim.SGD(...)        ->  opt = nnx.Optimizer(model,
                                              optax.inject_hyperparams(optax.sgd)(
                                                  learning_rate=float(sched(0)), ...), ...)
    for epoch in range(n):               for epoch in range(n):
        ...                                  ...
        sched.step()                  ->     opt.opt_state.hyperparams["learning_rate"][...] = (
                                                 sched(epoch + 1))

The stored learning rate is what the next ``update`` uses, and after its ``k``-th ``step()``
torch's scheduler gives ``schedule(k)``; the planner proves ``k`` (``SchedulePlan.written``:
``for epoch in range(n)`` in the scheduler's block, the step alone and unconditional in it, no
jump out of the epoch loop (an inner loop's ``break`` is fine), ``epoch`` not rebound).
The optimizer's ``learning_rate`` is the schedule's first value
(``targets/optax/optimizer_step.py``, ``_scheduled_lr``): folding the schedule as well would
advance it every update, silently wrong.
"""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.analysis.plan import SchedulePlan
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext, HookResult, ReplaceStatement
from ml_switcheroo.targets.nnx.counted_lr import counted, counted_step
from ml_switcheroo.targets.nnx.learning_rate import WRITE
from ml_switcheroo.targets.nnx.optimizer import injected_index
from ml_switcheroo.targets.nnx.plateau import plateau_step, written_plateau
from ml_switcheroo.targets.optax.lr_scheduler import strip_scheduler_step


def nnx_scheduler_step(node: cst.Call, ctx: HookContext) -> cst.BaseExpression | HookResult:
    """``sched.step()`` of a scheduler whose lr is written per epoch: the write of its next
    value to the optimizer's stored learning rate; any other: the optax target's hook."""
    schedule = ctx.plan
    if not isinstance(schedule, SchedulePlan) or schedule.written is None:
        return strip_scheduler_step(node, ctx)
    if not ctx.receiver_translated():
        return node  # its construction escaped (`float` may be shadowed): torch code, as it
    if written_plateau(schedule):
        return plateau_step(node, schedule, ctx, _chain_element(schedule, ctx))
    line = ctx.line_alone(node)
    optimizer, scheduler = schedule.optimizer.target, schedule.outer.target
    if line is None or optimizer is None or scheduler is None:
        raise Untranslatable("the scheduler's step() is not a statement of its own")
    names = schedule.step_names or (code_of(optimizer).strip(), code_of(scheduler).strip())
    state = ctx.state_of(names[0]) + _chain_element(schedule, ctx)
    if counted(schedule):
        return counted_step(node, schedule, line, state, ctx)
    value = f"{names[1]}({schedule.written})"
    text = WRITE.format(state=state, value=value)
    written = cst.parse_statement(text).with_changes(trailing_whitespace=line.trailing_whitespace)
    return ReplaceStatement(written)


def _chain_element(schedule: SchedulePlan, ctx: HookContext) -> str:
    """``[i]`` when the optimizer's tx is a chain whose ``i``-th element is the injected
    optimizer (``nnx/optimizer.injected_index``: weight decay at its head), else ``""``."""
    translation = ctx.translation_of(schedule.optimizer.call)
    if translation is None:
        raise Untranslatable("the scheduler's optimizer is not translated")
    optimizer = cst.parse_expression(translation)
    if not isinstance(optimizer, cst.Call) or len(optimizer.args) < 2:
        raise Untranslatable("the scheduler's optimizer is not an nnx.Optimizer(model, tx)")
    tx = optimizer.args[1].value
    if isinstance(tx, cst.Call) and isinstance(tx.func, cst.Call):
        return ""
    index = injected_index(tx, ctx.semantic_map.chain_function)
    if index is None:
        raise Untranslatable("the optimizer's injected learning rate is not reachable")
    return f"[{index}]"
