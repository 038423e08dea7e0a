"""NNX constructor: ``torch.optim.X(model.parameters(), ...)`` ->
``nnx.Optimizer(model, <the optax target's translation>, wrt=nnx.Param)``."""

from __future__ import annotations

from dataclasses import replace

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.parameters import select
from ml_switcheroo.analysis.plan import SchedulePlan
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.findings import Finding
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.accumulation import Accumulation, accumulated_tx, accumulation
from ml_switcheroo.targets.nnx.counted_lr import counted, counter_name
from ml_switcheroo.targets.nnx.learning_rate import (
    float_lr_in_chain,
    injected_index,
    injected_tx,
    lr_uses,
)
from ml_switcheroo.targets.nnx.messages import render
from ml_switcheroo.targets.nnx.model import OPTIMIZER, trained_model
from ml_switcheroo.targets.nnx.plateau import (
    check_chained_plateau,
    check_plateau,
    written_plateau,
)
from ml_switcheroo.targets.nnx.wrappers import check_wrapped_constructor_model
from ml_switcheroo.targets.optax.optimizer_step import transform_optimizer_init


def nnx_optimizer(node: cst.Call, ctx: HookContext) -> cst.BaseExpression:
    """The optax translation (schedule and clipping folded) as the ``tx`` of the model's
    ``nnx.Optimizer``; with its hyper-parameters injected when the code writes its lr; summed
    over k batches when the code steps it every k backward passes (gradient accumulation)."""
    trained = trained_model(node, ctx)
    check_wrapped_constructor_model(trained, ctx)  # the step's rule: one unwrapped model
    model = code_of(trained).strip()
    if _gathered_before(node, trained, ctx):
        ctx.warn(LEFT_OVER.format(model=model))
    schedule = ctx.plan[0] if isinstance(ctx.plan, tuple) else None
    if written_plateau(schedule):
        check_plateau(schedule, ctx)  # type: ignore[arg-type]
    elif isinstance(schedule, SchedulePlan):
        check_chained_plateau(schedule)
    if counted(schedule):  # the scheduler's hook needs a free counter name: ask it here too
        counter_name(schedule.outer.call, replace(ctx, plan=schedule))  # type: ignore[union-attr]
    if _lr_written_with_clips(node, ctx):
        translated = transform_optimizer_init(node, ctx, inject_lr=True)
        injected = float_lr_in_chain(translated, ctx)
    else:
        injected = injected_tx(node, transform_optimizer_init(node, ctx), ctx)
    if isinstance(schedule, SchedulePlan):
        _check_written_lr_reachable(schedule, injected, ctx)
    tx = code_of(_accumulating(node, injected, ctx)).strip()
    ctx.add_import("nnx")
    return cst.parse_expression(OPTIMIZER.format(model=model, tx=tx))


LEFT_OVER = (
    "the parameters of `{model}` are gathered before this line (a name holds them): that torch "
    "line stays, and the NNX model has no `.parameters()`: drop it once nothing else reads it"
)


def _gathered_before(node: cst.Call, trained: cst.BaseExpression, ctx: HookContext) -> bool:
    """The constructor's parameters are a name holding every parameter of ``trained``
    (``ps = [p for p in model.parameters() if p.requires_grad]; X(ps)``, s40)."""
    params = node.args[0].value if node.args and node.args[0].keyword is None else None
    if not isinstance(params, cst.Name) or any(n is trained for n in cst_walk.walk(node)):
        return False
    return select(params, ctx.names(), ctx.semantic_map.parameters).module is trained


def _lr_written_with_clips(node: cst.Call, ctx: HookContext) -> bool:
    """The code writes or reads the lr through ``param_groups`` (every use translates,
    ``lr_uses``) of an optimizer whose steps clip (clip calls attached, no schedule): its
    element of the chain after the clip is injected (``opt.opt_state[i]``, ``injected_index``)."""
    plan = ctx.plan
    return (
        isinstance(plan, tuple) and plan[0] is None and bool(plan[1]) and bool(lr_uses(node, ctx))
    )


def _check_written_lr_reachable(
    schedule: SchedulePlan, tx: cst.BaseExpression, ctx: HookContext
) -> None:
    """A schedule written where it steps writes ``opt.opt_state.hyperparams``: that is the
    state when ``tx`` is the injected optimizer itself; for a per-epoch write or a plateau's,
    also ``opt.opt_state[i]`` of a chain whose one injected element is its ``i``-th
    (``optax.chain(optax.add_decayed_weights(wd), optax.inject_hyperparams(optax.sgd)(...))``,
    a clip at its head too: ``injected_index``)."""
    if schedule.written is None or id(schedule.outer.call) not in ctx.folded:
        return
    if isinstance(tx, cst.Call) and isinstance(tx.func, cst.Call):
        return
    if injected_index(tx, ctx.semantic_map.chain_function) is None:
        raise render(Finding(findings.WRITTEN_LR_IN_CHAIN, {"tx": code_of(tx).strip()}))


def _accumulating(
    constructor: cst.Call, tx: cst.BaseExpression, ctx: HookContext
) -> cst.BaseExpression:
    """``tx`` in ``optax.MultiSteps`` when the optimizer accumulates exactly so and nothing but
    the clip calls of its step's condition and a schedule stepped once per update (its count
    is the inner tx's: one per applied update) is folded into ``tx``, nothing injected (an lr
    write: not done); else ``tx``."""
    found = accumulation(constructor, ctx)
    if not isinstance(found, Accumulation):
        return tx
    clips = {id(call) for call in found.clips}
    schedule = ctx.plan[0] if isinstance(ctx.plan, tuple) else None
    scheduled: set[int] = set()
    if isinstance(schedule, SchedulePlan) and schedule.written is None:  # folded per update
        scheduled = {id(site.call) for site in (schedule.outer, *schedule.calls)}
    folded = set(ctx.folded) - scheduled
    if not folded <= clips or not clips <= set(ctx.folded):
        return tx  # a clip of the condition not in the chain (or not in the condition)
    if isinstance(tx, cst.Call) and isinstance(tx.func, cst.Call):
        return tx  # optax.inject_hyperparams(...)(...): its hyperparams would move inside
    return accumulated_tx(tx, found.k, ctx)
