"""A scheduler whose ``step()`` calls are counted where they run (NNX target; the planner's
proof: ``analysis/counted.py``, ``SchedulePlan.written == COUNTED``): a counter is kept next to
the schedule, and each ``step()`` adds one and writes the schedule's value there to the
optimizer's injected learning rate:

    sched = StepLR(opt, step_size=2)  ->  sched = optax.exponential_decay(...)
                                          sched_count = 0
    if i % k == 0:                        if i % k == 0:
        sched.step()                  ->      sched_count += 1
                                              opt.opt_state.hyperparams["learning_rate"][...] = (
                                                  sched(sched_count))

After its ``k``-th ``step()`` torch's scheduler has set the lr to the schedule at ``k`` (its
construction is step 0: the optimizer starts from ``float(sched(0))``), whatever loops,
conditions or functions run between the steps.
"""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.plan import COUNTED, SchedulePlan
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.findings import Finding
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext, HookResult, ReplaceStatement
from ml_switcheroo.targets.nnx.learning_rate import WRITE
from ml_switcheroo.targets.nnx.messages import render

COUNTER = "{scheduler}_count"
START = "{counter} = 0"
INCREMENT = "{counter} += 1"


def counted(schedule: object) -> bool:
    """Whether ``schedule`` is a scheduler whose step() calls the translation counts."""
    return isinstance(schedule, SchedulePlan) and schedule.written == COUNTED


def counted_scheduler(
    node: cst.Call, expression: cst.BaseExpression, line: cst.SimpleStatementLine, ctx: HookContext
) -> HookResult:
    """``sched = <expression>`` (the schedule ``node`` translates to, on its ``line``) and
    the counter set to 0 after it."""
    counter = counter_name(node, ctx)
    assignment = line.body[0].with_changes(value=expression)
    built = line.with_changes(body=[assignment], leading_lines=[])  # the engine keeps them
    start = cst.parse_statement(START.format(counter=counter))
    return ReplaceStatement(
        built.with_changes(trailing_whitespace=cst.TrailingWhitespace()),
        (start.with_changes(trailing_whitespace=line.trailing_whitespace),),
    )


def counted_step(
    node: cst.Call,
    schedule: SchedulePlan,
    line: cst.SimpleStatementLine,
    state: str,
    ctx: HookContext,
) -> HookResult:
    """``sched.step()`` (alone on ``line``): the counter incremented, and the schedule's value
    at it written to ``state``, the optimizer's injected hyper-parameters' holder."""
    counter = counter_name(node, ctx)
    scheduler = code_of(schedule.outer.target).strip()  # type: ignore[arg-type]
    write = WRITE.format(state=state, value=f"{scheduler}({counter})")
    return ReplaceStatement(
        cst.parse_statement(INCREMENT.format(counter=counter)),
        (cst.parse_statement(write).with_changes(trailing_whitespace=line.trailing_whitespace),),
    )


def counter_name(node: cst.Call, ctx: HookContext) -> str:
    """``sched_count`` for the scheduler of ``node``, when no code here uses that name
    (``self.sched_count`` for ``self.sched``: no attribute of that name in the file, nor a
    word of another file, where a subclass may use it)."""
    schedule = ctx.plan
    assert isinstance(schedule, SchedulePlan)
    target = schedule.outer.target
    counter = COUNTER.format(scheduler=code_of(target).strip())  # type: ignore[arg-type]
    if isinstance(target, cst.Attribute):
        attribute = COUNTER.format(scheduler=target.attr.value)
        taken = _attribute_used(node, attribute, ctx) or ctx.global_shared(attribute)
    else:
        taken = counter in ctx.visible_names(node)
    if taken:
        raise render(Finding(findings.COUNTER_NAME_TAKEN, {"name": counter}))
    return counter


def _attribute_used(node: cst.CSTNode, attribute: str, ctx: HookContext) -> bool:
    """Whether the module holding ``node`` has an ``<anything>.<attribute>`` or the name."""
    module: cst.CSTNode | None = node
    while module is not None and not isinstance(module, cst.Module):
        module = ctx.parent_of(module)
    if module is None:
        return True  # unknown: taken
    return any(
        isinstance(found, cst.Name) and found.value == attribute for found in cst_walk.walk(module)
    )
