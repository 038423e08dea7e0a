"""Plugin for LR schedulers: a torch scheduler becomes the optax schedule its optimizer uses.

In optax a schedule is the optimizer's ``learning_rate``. The file's plan (analysis/plan.py) links a
scheduler to the optimizer it wraps; then

* ``sched = StepLR(opt, ...)`` becomes ``sched = optax.exponential_decay(...)`` (the torch
  optimizer's lr is the schedule's base value, placeholder ``{optimizer_lr}``) and moves before
  the optimizer, which becomes ``opt = optax.sgd(learning_rate=sched, ...)``;
* schedules that cycle momentum (OneCycleLR, CyclicLR) also set the optimizer's momentum/beta1
  through ``optax.inject_hyperparams``;
* a scheduler that works on the update stream (ReduceLROnPlateau) is appended to the optimizer's
  chain instead;
* ``sched.step()`` is removed when it runs once per update; a per-epoch step translates only
  with ``--steps-per-epoch`` (a target that writes the lr per epoch, NNX, has the planner mark
  it ``SchedulePlan.written`` instead: ``targets/nnx/epoch_lr.py``); reads of the current lr
  get an escape hatch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from numbers import Real

import libcst as cst

from ml_switcheroo.analysis.factories import read_names, scheduler_call, substituted
from ml_switcheroo.analysis.plan import FoldedElsewhere, SchedulePlan
from ml_switcheroo.model.hygiene import UserExpression, is_time_invariant
from ml_switcheroo.model.tensor_values import replace_tensor_literals
from ml_switcheroo.model.translate import (
    BoundCall,
    check_escapes,
    dispatched,
    render_chain,
    render_text,
)
from ml_switcheroo.spec import findings, roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.escape_hatch import folded_step_note
from ml_switcheroo.spec.findings import Finding
from ml_switcheroo.spec.signature import NotALiteral, code_of, literal_value
from ml_switcheroo.spec.template import parenthesize
from ml_switcheroo.targets.hooks import HookContext, Remove, register_hook
from ml_switcheroo.targets.optax.messages import render

OPTIMIZER_LR = "optimizer_lr"
# ReduceLROnPlateau's arguments (its signature in the map) torch's eps floor is computed from
FACTOR, MIN_LR, EPS = "factor", "min_lr", "eps"
MOMENTUM = "momentum"  # the slot of a scheduler's momentum schedule


@register_hook(
    "lr_scheduler", requires=("signature",), placeholders=(OPTIMIZER_LR,), role=roles.SCHEDULER
)
def translate_lr_scheduler(node: cst.Call, ctx: HookContext) -> cst.BaseExpression:
    """Hook for a scheduler constructor: the optax schedule (or chain transform) it means."""
    schedule = ctx.plan
    if not isinstance(schedule, SchedulePlan):
        raise Untranslatable("this scheduler is not linked to a translated optimizer")
    return render_schedule(node, schedule, ctx)


FLOAT = "float"


def check_first_lr(schedule: SchedulePlan, ctx: HookContext) -> None:
    """A schedule written where it steps starts the optimizer's injected lr at
    ``float(sched(0))``: ``Untranslatable`` when ``float`` may not be the builtin where the
    optimizer is built (the schedule then does not fold, and the optimizer translates alone)."""
    if schedule.written is None:
        return
    if ctx.binds(schedule.optimizer.call, FLOAT):  # reading the builtin (`type=float`) is fine
        raise Untranslatable(
            f"`{FLOAT}` is a name of this code here (or may be: a star import), and the "
            f"learning rate written where the scheduler steps starts from "
            f"`{FLOAT}(<schedule>(0))`",
            f"rename that `{FLOAT}`",
        )


def render_schedule(
    node: cst.Call,
    schedule: SchedulePlan,
    ctx: HookContext,
    overrides: Mapping[str, cst.BaseExpression] | None = None,
) -> cst.BaseExpression:
    """The schedule expression of scheduler call ``node`` (the outer one or a component);
    ``overrides``: arguments rendered as given instead of as written (a target's hook)."""
    entry = schedule.outer.entry if node is schedule.outer.call else None
    entry = entry or _entry_of(node, schedule, ctx)
    source = scheduler_call(node, schedule.foreign)  # a factory of another file: its call
    entry, forwarded = dispatched(entry, source, ctx.semantic_map.apis)
    call = BoundCall.bind(entry, forwarded)
    _replace_tensor_literals(call, ctx)
    call.overrides[OPTIMIZER_LR] = optimizer_lr(schedule, ctx)
    call.overrides.update(overrides or {})
    check_escapes(call, ctx.exact, render=render)
    if node is schedule.outer.call and attaches_to_chain(schedule) and MIN_LR not in call.overrides:
        floor = _plateau_floor(call, ctx)
        if floor is not None:
            call.overrides[MIN_LR] = cst.parse_expression(repr(floor))
    if node is schedule.outer.call and not attaches_to_chain(schedule):
        check_first_lr(schedule, ctx)
    stepped_less_often = schedule.per_epoch or schedule.every or schedule.written
    if stepped_less_often and node is schedule.outer.call and momentum_schedule(schedule, ctx):
        raise Untranslatable(
            "it also cycles the optimizer's momentum (beta1), and stepped once per epoch (or "
            "every k updates) that schedule would need the same count as well, which is not "
            "translated",
            "step the scheduler once per update, or pass cycle_momentum=False and keep the "
            "momentum fixed",
        )
    slots = frozenset(link.slot for link in entry.chain if link.slot != MOMENTUM)
    expression = render_chain(
        call,
        ctx.exact,
        ctx.semantic_map.chain_function,
        ctx.add_import,
        slots=slots,
        render=render,
    )
    if ctx.exact and entry.status == "approximate" and entry.exact_status == "exact":
        wrapper = ctx.semantic_map.count_wrapper
        ctx.add_import(wrapper.partition(".")[0])
        expression = cst.Call(cst.parse_expression(wrapper), [cst.Arg(expression)])
    extra: list[UserExpression] = []
    if schedule.factory is not None:  # the returned scheduler or one it combines
        extra.extend(_factory_expressions(schedule, ctx))
    if schedule.per_epoch and node is schedule.outer.call:
        steps = cst.parse_expression(schedule.per_epoch)
        extra.append(UserExpression(steps, "steps_per_epoch", _AFTER_SOURCE))
        # A literal keeps its parentheses (as always); anything else is bound to a name.
        divisor = _parenthesized(steps) if is_time_invariant(steps) else parenthesize(steps)
        expression = per_epoch(expression, divisor)
    if schedule.every and node is schedule.outer.call:
        expression = every_k(expression, *schedule.every)
    if schedule.warmup and node is schedule.outer.call:
        warm, boundary = schedule.warmup
        assert warm.target is not None
        expression = joined(warm.target, expression, boundary, ctx)
    shared = [schedule.optimizer.call] if attaches_to_chain(schedule) else []
    return ctx.hygienic(expression, node, shared=shared, extra=extra)


_AFTER_SOURCE = 1 << 30  # source order of --steps-per-epoch: after every argument in the file


def inline_schedule(
    schedule: SchedulePlan, ctx: HookContext
) -> tuple[SchedulePlan, cst.BaseExpression]:
    """A factory's schedule as the caller's constructor evaluates it: the factory's
    parameters replaced by what its one call passes (``analysis/factories.py``), and that
    plan."""
    factory = schedule.factory
    assert factory is not None
    outer = replace(schedule.outer, call=substituted(schedule.outer.call, factory))
    inline = replace(
        schedule, outer=outer, members=[outer], calls=[outer], factory=replace(factory, inline=True)
    )
    combined = {
        key: render_schedule(
            substituted(call, factory), inline, replace(ctx, entry=_component_entry(call, schedule))
        )
        for key, call in factory.components.items()
    }
    call = substituted(
        schedule.outer.call, replace(factory, substitutions={**factory.substitutions, **combined})
    )
    outer = replace(outer, call=call)
    inline = replace(inline, outer=outer, members=[outer], calls=[outer])
    return inline, render_schedule(call, inline, replace(ctx, entry=outer.entry))


def _component_entry(call: cst.Call, schedule: SchedulePlan):  # type: ignore[no-untyped-def]
    """The map entry of a scheduler the factory's returned scheduler combines."""
    return next(site.entry for site in schedule.calls if site.call is call)


def factory_arguments(schedule: SchedulePlan) -> list[UserExpression]:
    """The caller's expressions an inlined factory schedule evaluates (hygiene binds them
    where the constructor is when the schedule defers them)."""
    if schedule.factory is None:
        return []
    return [
        UserExpression(value, hint, _AFTER_SOURCE - 1, shared=True)
        for hint, value in schedule.factory.arguments()
    ]


def _factory_expressions(schedule: SchedulePlan, ctx: HookContext) -> list[UserExpression]:
    """Inline: the caller's expressions. In the factory: none, but the optimizer's learning
    rate, which the schedule starts from, must mean the same there (a literal)."""
    assert schedule.factory is not None
    if schedule.factory.inline:
        return factory_arguments(schedule)
    lr = optimizer_lr(schedule, ctx)
    if read_names(lr):
        raise Untranslatable(
            f"the schedule starts from the optimizer's learning rate `{code_of(lr).strip()}`, "
            f"which is not visible in the factory that builds the scheduler (called at "
            f"{schedule.factory.where})",
            "pass the learning rate to the factory, or write it as a literal in the optimizer",
        )
    return []


_PER_EPOCH = cst.parse_expression("lambda count: (schedule)(count // (steps))")


def per_epoch(schedule: cst.BaseExpression, steps: cst.BaseExpression) -> cst.BaseExpression:
    """``lambda count: (schedule)(count // steps)``: the schedule indexed by epochs."""
    assert isinstance(_PER_EPOCH, cst.Lambda) and isinstance(_PER_EPOCH.body, cst.Call)
    call = _PER_EPOCH.body
    division = call.args[0].value
    assert isinstance(division, cst.BinaryOperation)
    body = call.with_changes(
        func=_parenthesized(schedule),
        args=[call.args[0].with_changes(value=division.with_changes(right=steps))],
    )
    return _PER_EPOCH.with_changes(body=body)


def every_k(schedule: cst.BaseExpression, k: int, offset: int) -> cst.BaseExpression:
    """``lambda count: (schedule)((count + offset) // k)``: the schedule stepped every ``k``
    updates (``offset``: see ``analysis.stepping.lr_index_offset``)."""
    shifted = f"(count + {offset})" if offset else "count"
    index = f"{shifted} // {k}" if k != 1 else f"count + {offset}"
    lambda_ = cst.parse_expression(f"lambda count: (schedule)({index})")
    assert isinstance(lambda_, cst.Lambda) and isinstance(lambda_.body, cst.Call)
    return lambda_.with_changes(body=lambda_.body.with_changes(func=_parenthesized(schedule)))


def joined(
    warm: cst.BaseExpression, main: cst.BaseExpression, boundary: int, ctx: HookContext
) -> cst.BaseExpression:
    """``optax.join_schedules([warm, main], [boundary])``: the warm-up's schedule below
    ``boundary`` updates, then the main schedule counted from there."""
    function = ctx.semantic_map.join_function
    ctx.add_import(function.partition(".")[0])
    template = cst.parse_expression(f"{function}([warm, main], [{boundary}])")
    assert isinstance(template, cst.Call) and isinstance(template.args[0].value, cst.List)
    elements = template.args[0].value.elements
    pair = template.args[0].value.with_changes(
        elements=[elements[0].with_changes(value=warm), elements[1].with_changes(value=main)]
    )
    return template.with_changes(args=[template.args[0].with_changes(value=pair), template.args[1]])


def _parenthesized(node: cst.BaseExpression) -> cst.BaseExpression:
    """``node`` inside one more pair of parentheses."""
    return node.with_changes(
        lpar=[cst.LeftParen(), *node.lpar], rpar=[*node.rpar, cst.RightParen()]
    )


def momentum_schedule(schedule: SchedulePlan, ctx: HookContext) -> cst.BaseExpression | None:
    """The momentum (beta1) schedule the scheduler imposes, or None when it leaves it alone."""
    entry = schedule.outer.entry
    assert entry is not None
    if not any(link.slot == MOMENTUM for link in entry.chain):
        return None
    call = BoundCall.bind(entry, scheduler_call(schedule.outer.call, schedule.foreign))
    _replace_tensor_literals(call, ctx)
    call.overrides[OPTIMIZER_LR] = optimizer_lr(schedule, ctx)
    try:
        return render_chain(
            call,
            ctx.exact,
            ctx.semantic_map.chain_function,
            ctx.add_import,
            slots=frozenset({MOMENTUM}),
            render=render,
        )
    except Untranslatable:
        return None  # no momentum link applies (e.g. cycle_momentum=False)


def eps_floor(lr: float, factor: float, min_lr: float, eps: float) -> float | None:
    """The lowest lr ReduceLROnPlateau reaches when it is above ``min_lr`` (None: it is
    ``min_lr``): torch reduces ``lr`` to ``max(lr * factor, min_lr)`` only while the
    decrement is ``> eps``, and as decrements shrink it stops there for good (Python floats,
    as torch computes them)."""
    while True:
        reduced = max(lr * factor, min_lr)
        if not lr - reduced > eps or reduced == lr:
            break
        lr = reduced
    return None if lr == min_lr else lr


def constant_number(node: cst.BaseExpression, ctx: HookContext) -> object:
    """The number ``node`` is: a literal, or a name whose variable has one binding, to a number
    literal, that no other file may change (``learning_rate = 0.1`` at module level); None."""
    try:
        return literal_value(node)
    except NotALiteral:
        pass
    if not isinstance(node, cst.Name):
        return None
    variable = ctx.variable(node)
    if variable is None or len(variable.values) != 1 or variable.values[0] is None:
        return None
    if ctx.global_shared(node.value):
        return None
    try:
        return literal_value(variable.values[0])
    except NotALiteral:
        return None


def _plateau_floor(call: BoundCall, ctx: HookContext) -> float | None:
    """``eps_floor`` of a plateau call bound with the optimizer's lr; ``Untranslatable`` when a
    value it needs is not a number (a literal, or a name bound once to one: ``constant_number``;
    optax.contrib.reduce_on_plateau has no eps rule: its ``min_scale`` must carry torch's
    floor)."""
    values = {name: call.literal(name) for name in (FACTOR, MIN_LR, EPS)}
    values[OPTIMIZER_LR] = constant_number(call.value(OPTIMIZER_LR), ctx)
    unknown = [name for name, value in values.items() if not finite_number(value)]
    if unknown:
        shown = ", ".join(f"`{'lr' if n == OPTIMIZER_LR else n}`" for n in unknown)
        raise render(Finding(findings.PLATEAU_EPS_FLOOR_UNKNOWN, {"names": shown}))
    lr, factor, min_lr, eps = (float(values[k]) for k in (OPTIMIZER_LR, FACTOR, MIN_LR, EPS))
    return eps_floor(lr, factor, min_lr, eps)


def finite_number(value: object) -> bool:
    """A finite int or float literal value (not a bool)."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def attaches_to_chain(schedule: SchedulePlan) -> bool:
    entry = schedule.outer.entry
    return entry is not None and entry.attaches_to_chain


def optimizer_lr(schedule: SchedulePlan, ctx: HookContext) -> cst.BaseExpression:
    """The torch optimizer's learning rate: the schedule's base value."""
    entry = schedule.optimizer.entry
    assert entry is not None
    if entry.learning_rate is None:
        raise Untranslatable(
            f"{entry.name} takes no learning-rate schedule in the map (its entry names no "
            "`learning_rate:` argument, the one a schedule replaces)"
        )
    call = BoundCall.bind(entry, schedule.optimizer.call)
    _replace_tensor_literals(call, ctx)
    return call.value(entry.learning_rate)


def _replace_tensor_literals(call: BoundCall, ctx: HookContext) -> None:
    """``torch.tensor(0.1)`` arguments become ``0.1``; other tensors escape (core.tensor_values)."""
    subjects = (*ctx.semantic_map.parameters.arguments, "optimizer")
    ctx.warnings.extend(
        replace_tensor_literals(call, ctx.names(), ctx.semantic_map, subjects, render=render)
    )


def _entry_of(node: cst.Call, schedule: SchedulePlan, ctx: HookContext):  # type: ignore[no-untyped-def]
    for member in schedule.members:
        if member.call is node and member.entry is not None:
            return member.entry
    return ctx.entry


@register_hook(
    "scheduler_step",
    requires=("signature",),
    placeholders=("optimizer",),
    role=roles.SCHEDULER_STEP,
)
def strip_scheduler_step(node: cst.Call, ctx: HookContext) -> cst.BaseExpression | Remove:
    """Hook for ``sched.step()``: the update count drives the schedule, so it is removed.

    A scheduler that joined the optimizer's chain (ReduceLROnPlateau) needs the metric at
    update time instead: escape with the suggestion.
    """
    schedule = ctx.plan
    if isinstance(schedule, FoldedElsewhere):  # another file folds it (stepped_together.py)
        return Remove(note=folded_step_note(ctx.receiver or "sched", schedule.optimizer))
    if not isinstance(schedule, SchedulePlan):
        return node  # a scheduler left as torch code keeps its step()
    call = BoundCall.bind(ctx.entry, node)
    names = {
        "receiver": ctx.receiver or "sched",
        "optimizer": code_of(schedule.optimizer.target).strip()
        if schedule.optimizer.target
        else "opt",
    }
    names["state"] = ctx.state_of(names["optimizer"])
    if attaches_to_chain(schedule) and not ctx.receiver_translated():
        shown = " ".join(code_of(schedule.outer.call.func).split())
        raise Untranslatable(  # no `value=` to pass: the scheduler is not in the chain
            f"its scheduler (`{shown}(...)`) is not translated (see the scheduler's "
            "statement), so this call stays torch code"
        )
    if attaches_to_chain(schedule):
        assert ctx.entry.reason and ctx.entry.suggest
        raise Untranslatable(
            render_text(ctx.entry.reason, call, names), render_text(ctx.entry.suggest, call, names)
        )
    check_escapes(call, ctx.exact, names, render=render)
    return cst.Name("None")


@register_hook("scheduler_read", requires=("reason", "suggest"), role=roles.MEMBER)
def escape_scheduler_read(
    node: cst.CSTNode, ctx: HookContext, state: str | None = None
) -> cst.CSTNode:
    """Hook for reads of the current lr (``sched.get_last_lr()``, ``opt.param_groups``);
    ``state``: where the suggestion reads the lr (default: the receiver's state)."""
    if not ctx.receiver_translated():
        return node  # still the torch object (its constructor is left as torch code)
    receiver = ctx.receiver or "sched"
    names = {"receiver": receiver, "state": state or ctx.state_of(receiver)}
    assert ctx.entry.reason and ctx.entry.suggest
    call = BoundCall(ctx.entry, node if isinstance(node, cst.Call) else cst.Call(cst.Name("_")), {})
    raise Untranslatable(
        render_text(ctx.entry.reason, call, names), render_text(ctx.entry.suggest, call, names)
    )
