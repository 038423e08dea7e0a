"""ReduceLROnPlateau stepped once per epoch (NNX target): its state is kept next to it and
driven where torch calls ``step(metric)``, and the learning rate it gives is written to the
optimizer's injected hyper-parameter there:

    sched = ReduceLROnPlateau(opt, factor=0.5)
        -> sched = optax.contrib.reduce_on_plateau(factor=0.5, patience=10 + 1, ...)
           sched_state = sched.init(nnx.state(model, nnx.Param))
    sched.step(val_loss)  # once per epoch
        -> sched_state = sched.update(None, sched_state, value=val_loss)[1]
           opt.opt_state.hyperparams["learning_rate"][...] = 0.1 * sched_state.scale

Measured (torch 2.13, optax 0.2.8, float64): optax's ``patience`` is torch's + 1 (the map's
entry); rel/abs thresholds, cooldown and ``min_lr`` (as ``min_scale``) match; torch's ``eps``
skips a reduction whose decrement is ``<= eps``, and as decrements shrink, torch's lr stops
for good at the first such one: a floor computed here from literal lr, factor, min_lr and eps
and given to optax as ``min_lr`` (so ``min_scale = floor / lr``). The optimizer's lr is
injected as written (``optax/optimizer_step.py``), not chained with the plateau transform;
with clipping or weight decay at the head of its chain, the write goes to the injected
element's state (``opt.opt_state[i]``, ``injected_index``).
``init``/``update(updates, state, value=)``/``state.scale`` checked on optax 0.2.8; the state
is initialised with the parameters so that its dtype is theirs (as a chain's would be).
"""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.analysis.plan import SchedulePlan
from ml_switcheroo.model.translate import BoundCall
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.findings import Finding
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext, HookResult, ReplaceStatement
from ml_switcheroo.targets.nnx.counted_lr import counted, counted_scheduler
from ml_switcheroo.targets.nnx.learning_rate import WRITE
from ml_switcheroo.targets.nnx.messages import render
from ml_switcheroo.targets.nnx.model import trained_model
from ml_switcheroo.targets.optax.lr_scheduler import (
    EPS,
    FACTOR,
    MIN_LR,
    attaches_to_chain,
    constant_number,
    eps_floor,
    finite_number,
    optimizer_lr,
    render_schedule,
    translate_lr_scheduler,
)

STATE = "{scheduler}_state"
INIT = "{state} = {scheduler}.init(nnx.state({model}, nnx.Param))"
UPDATE = "{state} = {scheduler}.update(None, {state}, value={metric})[1]"
LEARNING_RATE = "{lr} * {state}.scale"
# mode='max' (threshold_mode='abs'; nnx.yaml): optax minimises the negated metric
NEGATED = "-({metric})"
MODE, MIN, MAX = "mode", "min", "max"


def written_plateau(schedule: object) -> bool:
    """Whether ``schedule`` is a ReduceLROnPlateau whose lr is written where it steps."""
    return (
        isinstance(schedule, SchedulePlan)
        and schedule.written is not None
        and attaches_to_chain(schedule)
    )


def nnx_lr_scheduler(node: cst.Call, ctx: HookContext) -> cst.BaseExpression | HookResult:
    """A written ReduceLROnPlateau: the optax transformation (its floor from torch's ``eps``)
    and its state; any other scheduler: the optax target's hook."""
    schedule = ctx.plan
    if isinstance(schedule, SchedulePlan) and not written_plateau(schedule):
        check_chained_plateau(schedule)
    if counted(schedule) and node is schedule.outer.call:  # type: ignore[union-attr]
        return counted_scheduler(node, translate_lr_scheduler(node, ctx), _line_of(node, ctx), ctx)
    if not written_plateau(schedule) or node is not schedule.outer.call:  # type: ignore[union-attr]
        return translate_lr_scheduler(node, ctx)
    assert isinstance(schedule, SchedulePlan)
    scheduler = code_of(schedule.outer.target).strip()  # type: ignore[arg-type]
    state, floor, line = check_plateau(schedule, ctx)
    overrides = {} if floor is None else {MIN_LR: cst.parse_expression(repr(floor))}
    transformation = render_schedule(node, schedule, ctx, overrides)
    assignment = line.body[0].with_changes(value=transformation)
    built = line.with_changes(body=[assignment], leading_lines=[])  # the engine keeps them
    model = code_of(trained_model(schedule.optimizer.call, ctx)).strip()
    init = INIT.format(state=state, scheduler=scheduler, model=model)
    ctx.add_import("nnx")
    return ReplaceStatement(
        built.with_changes(trailing_whitespace=cst.TrailingWhitespace()),
        (cst.parse_statement(init).with_changes(trailing_whitespace=line.trailing_whitespace),),
    )


def check_chained_plateau(schedule: SchedulePlan) -> None:
    """A plateau in the optimizer's chain (not written per epoch) watches the metric as optax
    does, to minimise: ``Untranslatable`` unless torch's mode is literally ``min``."""
    if not attaches_to_chain(schedule):
        return
    mode = _mode(schedule)
    if mode != MIN:
        raise render(Finding(findings.PLATEAU_MAX_IN_CHAIN, {"mode": repr(mode)}))


def _mode(schedule: SchedulePlan) -> object:
    """The literal ``mode`` of the scheduler (``None``-like unknown when not a literal)."""
    return BoundCall.bind(schedule.outer.entry, schedule.outer.call).literal(MODE)  # type: ignore[arg-type]


def check_plateau(
    schedule: SchedulePlan, ctx: HookContext
) -> tuple[str, float | None, cst.SimpleStatementLine]:
    """What rendering the written plateau needs (its state's name, the eps floor, its line),
    or ``Untranslatable``; the constructor checks it too, so that the optimizer is not built
    for a plateau that stays torch code."""
    node = schedule.outer.call
    scheduler = code_of(schedule.outer.target).strip()  # type: ignore[arg-type]
    if _mode(schedule) not in (MIN, MAX):  # the metric's sign depends on it
        raise render(Finding(findings.PLATEAU_NOT_LITERAL, {"names": _listed([MODE])}))
    return _state_name(scheduler, node, ctx), _eps_floor(schedule, node, ctx), _line_of(node, ctx)


def plateau_step(
    node: cst.Call, schedule: SchedulePlan, ctx: HookContext, element: str = ""
) -> HookResult:
    """``sched.step(metric)``: the plateau state updated with the metric, and the lr it gives
    written to the optimizer's stored learning rate (``element``: ``[i]``, the injected
    optimizer's place in a chain with clipping or weight decay at its head)."""
    line = ctx.line_alone(node)
    if line is None:
        raise render(Finding(findings.PLATEAU_LINE_NOT_ALONE, {"shown": code_of(node).strip()}))
    scheduler = code_of(schedule.outer.target).strip()  # type: ignore[arg-type]
    optimizer = code_of(schedule.optimizer.target).strip()  # type: ignore[arg-type]
    state = STATE.format(scheduler=scheduler)
    metric = code_of(node.args[0].value).strip()
    if _mode(schedule) == MAX:  # the map's entry escapes the rel threshold in this mode
        metric = NEGATED.format(metric=metric)
    lr = code_of(optimizer_lr(schedule, ctx)).strip()
    update = UPDATE.format(state=state, scheduler=scheduler, metric=metric)
    value = LEARNING_RATE.format(lr=lr, state=state)
    write = WRITE.format(state=ctx.state_of(optimizer) + element, value=value)
    return ReplaceStatement(
        cst.parse_statement(update),
        (cst.parse_statement(write).with_changes(trailing_whitespace=line.trailing_whitespace),),
    )


def _state_name(scheduler: str, node: cst.Call, ctx: HookContext) -> str:
    """``sched_state``, when no code here uses that name."""
    state = STATE.format(scheduler=scheduler)
    if state in ctx.visible_names(node):
        raise render(Finding(findings.PLATEAU_NAME_TAKEN, {"name": state}))
    return state


def _line_of(node: cst.Call, ctx: HookContext) -> cst.SimpleStatementLine:
    """The line ``sched = ReduceLROnPlateau(...)`` alone."""
    assign = ctx.parent_of(node)
    line = ctx.parent_of(assign) if isinstance(assign, cst.Assign) else None
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        raise render(Finding(findings.PLATEAU_LINE_NOT_ALONE, {"shown": code_of(node).strip()}))
    return line


def _eps_floor(schedule: SchedulePlan, node: cst.Call, ctx: HookContext) -> float | None:
    """The lowest lr torch reaches when it differs from ``min_lr`` (None: it is ``min_lr``):
    torch reduces ``lr`` to ``max(lr * factor, min_lr)`` only while the decrement is
    ``> eps``, in Python floats as here."""
    call = BoundCall.bind(schedule.outer.entry, node)  # type: ignore[arg-type]
    values = {name: call.literal(name) for name in (FACTOR, MIN_LR, EPS)}
    values["lr"] = constant_number(optimizer_lr(schedule, ctx), ctx)
    unknown = [name for name, value in values.items() if not finite_number(value)]
    if unknown:
        raise render(Finding(findings.PLATEAU_NOT_LITERAL, {"names": _listed(unknown)}))
    return eps_floor(*(float(values[k]) for k in ("lr", FACTOR, MIN_LR, EPS)))


def _listed(names: list[str]) -> str:
    shown = ", ".join(f"`{name}`" for name in names)
    return f"{shown} is" if len(names) == 1 else f"{shown} are"
