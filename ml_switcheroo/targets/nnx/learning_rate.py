"""Learning-rate writes and reads through ``param_groups`` for the NNX target (nanoGPT style):

    for g in opt.param_groups:   ->  opt.opt_state.hyperparams["learning_rate"][...] = lr
        g["lr"] = lr
    opt.param_groups[0]["lr"] = lr  ->  (the same write; one param group only: ``_one_group``)
    opt.param_groups[0]["lr"]       ->  float(opt.opt_state.hyperparams["learning_rate"][...])

and the optimizer's tx becomes ``optax.inject_hyperparams(optax.<name>)(learning_rate=...)``:
the stored learning rate is what the next ``update`` uses (checked on flax 0.12.8, optax
0.2.8), so this is exact wherever and however often torch wrote it; a read gives what was last
stored (float64 with jax x64; in float32 the stored value is rounded to float32).
Only an optimizer bound once to a plain name and built from ``model.parameters()`` (one param
group), whose every ``param_groups`` use is such a write or read, and whose tx is one
``optax.<name>(learning_rate=...)`` call (no schedule folded into it) is rewritten; any other
use of ``param_groups`` escapes. When its steps clip (a clip folded: ``optax.chain(clip,
<name>)``), the chain's element after the clip is the injected one and the writes and reads
are of ``opt.opt_state[i]`` (``injected_index``; ``optimizer._lr_written_with_clips``).
Reads of a folded schedule's lr (``get_last_lr()[0]``, ``param_groups[0]["lr"]``): see
``scheduled_lr.py``. Schedulers stepped once per epoch: see ``epoch_lr.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.built_by_method import BuiltByMethod
from ml_switcheroo.analysis.param_groups import one_group
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.findings import Finding
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import (
    HookContext,
    HookResult,
    ReplaceEnclosing,
    ReplaceStatement,
)
from ml_switcheroo.targets.nnx.messages import render
from ml_switcheroo.targets.nnx.scheduled_lr import folded_lr
from ml_switcheroo.targets.optax.lr_scheduler import escape_scheduler_read
from ml_switcheroo.targets.optax.optimizer_step import scheduled_lr, static_args

PARAM_GROUPS = "param_groups"
LAST_LR = "get_last_lr"
LR_KEY = "lr"  # torch's key of the learning rate in a param group
HYPERPARAMETER = "learning_rate"  # the optax argument (and inject_hyperparams key) it becomes
WRITE = '{state}.hyperparams["learning_rate"][...] = {value}\n'
FLOAT = "float"
READ = "float({state}.hyperparams[{quote}learning_rate{quote}][...])"  # the user's quote


def nnx_scheduler_read(node: cst.CSTNode, ctx: HookContext) -> cst.CSTNode | HookResult:
    """The NNX target's ``scheduler_read`` hook: ``opt.param_groups`` in a learning-rate write
    or read of an injected optimizer becomes a write or read of its stored learning rate;
    anything else is the optax target's hook (an escape)."""
    if not ctx.receiver_translated():
        return node
    scheduled = _scheduled_read(node, ctx)
    if scheduled is not None:
        return scheduled
    is_groups = isinstance(node, cst.Attribute) and node.attr.value == PARAM_GROUPS
    use = _use_of_injected(node, ctx) if is_groups else None  # type: ignore[arg-type]
    if use is None:
        return escape_scheduler_read(node, ctx, _escaped_state(node, ctx))
    state = ctx.state_of(code_of(node.value).strip()) + use.element  # type: ignore[attr-defined]
    if use.value is None:
        quote = use.node.slice[0].slice.value.quote  # type: ignore[attr-defined]
        read = cst.parse_expression(READ.format(state=state, quote=quote))
        return ReplaceEnclosing(use.node, read)  # type: ignore[arg-type]
    return ReplaceStatement(_written(use, state))


def _escaped_state(node: cst.CSTNode, ctx: HookContext) -> str | None:
    """Where the escape's suggestion stores the lr of ``opt`` of ``opt.param_groups``
    (``lr_state``)."""
    return lr_state(node.value, ctx) if isinstance(node, cst.Attribute) else None


def lr_state(optimizer: cst.BaseExpression, ctx: HookContext) -> str | None:
    """Where the learning rate of the translated optimizer ``optimizer`` (a name) is stored
    once injected: its state, or ``opt.opt_state[i]`` when its tx is a chain whose ``i``-th
    element alone takes the learning rate (weight decay or a clip before it; a tuple state
    has no ``hyperparams``). None: not known here."""
    if not isinstance(optimizer, cst.Name):
        return None
    origins = ctx.origins(optimizer)
    if not origins or len(origins) != 1 or not isinstance(origins[0], cst.Call):
        return None
    constructor = _method_constructor(origins[0], ctx) or origins[0]
    tx = _tx_of(ctx.translation_of(constructor))
    if tx is None:
        return None
    state = ctx.state_of(optimizer.value)
    index = lr_element(tx, ctx.semantic_map.chain_function)
    return state if index is None else f"{state}[{index}]"


def _tx_of(translation: str | None) -> cst.BaseExpression | None:
    """The tx of ``nnx.Optimizer(model, tx, ...)`` (the constructor's translation)."""
    expression = cst.parse_expression(translation) if translation else None
    if not isinstance(expression, cst.Call) or len(expression.args) < 2:
        return None
    return expression.args[1].value


def lr_element(tx: cst.BaseExpression, chain: str) -> int | None:
    """``i`` when ``tx`` is ``chain(...)`` (the map's ``optax.chain``) whose ``i``-th element
    alone is injected (``injected_index``), or else alone a call taking ``learning_rate=``
    (the optimizer: the element to inject)."""
    injected = injected_index(tx, chain)
    if injected is not None:
        return injected
    if not isinstance(tx, cst.Call) or code_of(tx.func).strip() != chain:
        return None
    taking = [i for i, a in enumerate(tx.args) if _takes_lr(a.value)]
    return taking[0] if len(taking) == 1 else None


def _takes_lr(value: cst.BaseExpression) -> bool:
    return isinstance(value, cst.Call) and any(
        a.keyword is not None and a.keyword.value == HYPERPARAMETER for a in value.args
    )


def _written(use: InjectedUse, state: str) -> cst.BaseStatement:
    """The write of ``use``'s value to the stored learning rate of ``state``."""
    text = WRITE.format(state=state, value=code_of(use.value).strip())  # type: ignore[arg-type]
    written = cst.parse_statement(text)
    if isinstance(use.node, cst.SimpleStatementLine):
        written = written.with_changes(trailing_whitespace=use.node.trailing_whitespace)
    return written


def lr_write(
    statement: cst.BaseStatement, ctx: HookContext
) -> tuple[cst.BaseStatement, list[cst.BaseExpression]] | None:
    """``statement`` with its learning-rate writes through ``param_groups`` of an injected,
    translated optimizer as writes of the stored learning rate, and what it reads (the user's
    nodes: the values written, an ``if``'s test), when it is such a write or an ``if`` (no
    ``else``) of only such writes; None otherwise."""
    if isinstance(statement, cst.If):
        if statement.orelse is not None or not isinstance(statement.body, cst.IndentedBlock):
            return None
        found = [_one_lr_write(s, ctx) for s in statement.body.body]
        if not found or any(f is None for f in found):
            return None
        body = statement.body.with_changes(body=[f[0] for f in found])  # type: ignore[index]
        return statement.with_changes(body=body), [statement.test, *(f[1] for f in found)]  # type: ignore[index]
    one = _one_lr_write(statement, ctx)
    return None if one is None else (one[0], [one[1]])


def _one_lr_write(
    statement: cst.BaseStatement, ctx: HookContext
) -> tuple[cst.BaseStatement, cst.BaseExpression] | None:
    """One learning-rate write statement as the write of the stored lr, and its value."""
    for node in cst_walk.walk(statement):
        if not (isinstance(node, cst.Attribute) and node.attr.value == PARAM_GROUPS):
            continue
        use = _use_of_injected(node, ctx)
        if use is None or use.value is None or use.node is not statement:
            return None
        state = ctx.state_of(code_of(node.value).strip()) + use.element
        return _written(use, state), use.value
    return None


def _scheduled_read(node: cst.CSTNode, ctx: HookContext) -> HookResult | None:
    """``sched.get_last_lr()[0]`` or ``opt.param_groups[0]["lr"]`` (only reads of it) of an
    optimizer whose schedule is folded into its tx, as the schedule at its update count."""
    if isinstance(node, cst.Call):
        item = ctx.parent_of(node)
        func = node.func
        if node.args or not isinstance(func, cst.Attribute) or func.attr.value != LAST_LR:
            return None
        if not (isinstance(item, cst.Subscript) and item.value is node and _one_index(item, _zero)):
            return None
        scheduler = func.value
        optimizer = (
            _scheduler_optimizer(scheduler, ctx) if isinstance(scheduler, cst.Name) else None
        )
        if optimizer is None:
            return None
        read = folded_lr(optimizer, scheduler, item, ctx)  # type: ignore[arg-type]
        read = read or _written_lr(optimizer, scheduler, item, ctx)  # type: ignore[arg-type]
    elif isinstance(node, cst.Attribute) and node.attr.value == PARAM_GROUPS:
        use = _lr_use(node, ctx)
        if use is None or use.value is not None or not isinstance(node.value, cst.Name):
            return None
        if not _only_reads(node.value, ctx):
            return None
        item, read = use.node, folded_lr(node.value, None, use.node, ctx)
    else:
        return None
    return ReplaceEnclosing(item, read) if read is not None else None  # type: ignore[arg-type]


def _written_lr(
    optimizer: cst.Name, scheduler: cst.Name, item: cst.Subscript, ctx: HookContext
) -> cst.BaseExpression | None:
    """``sched.get_last_lr()[0]`` as the optimizer's stored lr, when the scheduler translates
    and the optimizer's tx injects its lr with nothing folded: the scheduler's lr is then
    written to that state where it steps (per epoch), and torch's last lr is the one it set
    (the optimizer's initial lr before its first step); None otherwise."""
    found = [ctx.origins(name) for name in (scheduler, optimizer)]
    if not all(o is not None and len(o) == 1 and isinstance(o[0], cst.Call) for o in found):
        return None
    built, constructor = found[0][0], found[1][0]  # type: ignore[index]
    translation = ctx.translation_of(constructor)  # type: ignore[arg-type]
    if not ctx.translates(built) or translation is None:  # type: ignore[arg-type]
        return None
    element = _injected(cst.parse_expression(translation), ctx)
    if element is None or FLOAT in ctx.visible_names(item):
        return None
    state = ctx.state_of(optimizer.value) + element
    return cst.parse_expression(READ.format(state=state, quote='"'))


def _zero(value: cst.BaseExpression) -> bool:
    return isinstance(value, cst.Integer) and value.evaluated_value == 0


def _scheduler_optimizer(scheduler: cst.Name, ctx: HookContext) -> cst.Name | None:
    """``opt`` of ``sched = Scheduler(opt, ...)`` (``sched`` bound once)."""
    origins = ctx.origins(scheduler)
    if not origins or len(origins) != 1 or not isinstance(origins[0], cst.Call):
        return None
    args = origins[0].args
    first = args[0].value if args and args[0].keyword is None else None
    return first if isinstance(first, cst.Name) else None


def _only_reads(optimizer: cst.Name, ctx: HookContext) -> bool:
    """Whether every use of ``optimizer.param_groups`` is a read of ``[0]["lr"]``."""
    variable = ctx.variable(optimizer)
    if variable is None:
        return False
    for read in variable.reads:
        groups = read[1] if len(read) > 1 else None
        if not (isinstance(groups, cst.Attribute) and groups.value is read[0]):
            continue
        use = _lr_use(groups, ctx) if groups.attr.value == PARAM_GROUPS else None
        if groups.attr.value == PARAM_GROUPS and (use is None or use.value is not None):
            return False
    return True


def injected_tx(
    constructor: cst.Call, tx: cst.BaseExpression, ctx: HookContext
) -> cst.BaseExpression:
    """``tx`` wrapped in ``optax.inject_hyperparams`` when the optimizer ``constructor`` builds
    has learning-rate writes or reads that all translate and ``tx`` takes them; else ``tx``."""
    if not lr_uses(constructor, ctx):
        return tx
    lr = scheduled_lr(tx, ctx) if isinstance(tx, cst.Call) and not ctx.folded else None
    if lr is not None:  # inject_hyperparams would call it as a schedule at each update
        raise render(Finding(findings.INJECTED_LR_SCHEDULE, {"lr": lr}))
    if not _injectable(tx, ctx):
        return tx
    if FLOAT in ctx.visible_names(constructor):
        return tx  # `float` is the user's name here
    assert isinstance(tx, cst.Call)
    function = ctx.semantic_map.inject_function
    ctx.add_import(function.partition(".")[0])
    args = [_as_float(a) if _is_keyword(a, HYPERPARAMETER) else a for a in tx.args]
    injected = cst.Call(cst.parse_expression(function), [cst.Arg(tx.func), *_static(args, ctx)])
    return tx.with_changes(func=injected, args=args)


def _static(args: list[cst.Arg], ctx: HookContext) -> list[cst.Arg]:
    """``static_args=("mask",)`` for the map's ``inject_static_args`` among ``args`` (else
    none): inject_hyperparams reads a callable argument as a schedule of the step count."""
    static = [a.keyword.value for a in args if a.keyword is not None]
    static = [name for name in static if name in ctx.semantic_map.inject_static_args]
    return [static_args(static)] if static else []


def float_lr_in_chain(tx: cst.BaseExpression, ctx: HookContext) -> cst.BaseExpression:
    """``tx`` with the learning rate of its injected chain element as a float (``_as_float``;
    ``injected_index``); ``tx`` itself when it is no such chain."""
    index = injected_index(tx, ctx.semantic_map.chain_function)
    if index is None or FLOAT in ctx.visible_names(tx):
        return tx
    assert isinstance(tx, cst.Call)
    element = tx.args[index].value
    assert isinstance(element, cst.Call)
    args = [_as_float(a) if _is_keyword(a, HYPERPARAMETER) else a for a in element.args]
    chained = list(tx.args)
    chained[index] = chained[index].with_changes(value=element.with_changes(args=args))
    return tx.with_changes(args=chained)


def _is_keyword(arg: cst.Arg, name: str) -> bool:
    return arg.keyword is not None and arg.keyword.value == name


def _as_float(arg: cst.Arg) -> cst.Arg:
    """The learning rate as a float: inject_hyperparams stores it with the dtype it is given,
    and an integer one (``lr=1``) would truncate every later write (0.5 -> 0)."""
    value = arg.value
    if isinstance(value, cst.Float):
        return arg
    if isinstance(value, cst.Integer):
        return arg.with_changes(value=cst.Float(repr(float(value.evaluated_value))))
    return arg.with_changes(value=cst.Call(cst.Name(FLOAT), [cst.Arg(value)]))


@dataclass(frozen=True)
class LrUse:
    """A use of ``opt.param_groups`` (``groups``): a write of ``value`` (``node``: the
    statement, a loop or ``opt.param_groups[0]["lr"] = value``) or a read (``value`` None,
    ``node``: the expression ``opt.param_groups[0]["lr"]``)."""

    groups: cst.Attribute
    node: cst.CSTNode
    value: cst.BaseExpression | None


def lr_uses(constructor: cst.Call, ctx: HookContext) -> list[LrUse]:
    """The learning-rate writes and reads through ``param_groups`` of the optimizer built by
    ``constructor`` (``opt = constructor``, bound once); empty when there is none or when
    ``param_groups`` is used any other way (then nothing is rewritten)."""
    target = ctx.assigned_to(constructor)
    if not isinstance(target, cst.Name):
        return []
    variable = ctx.variable(target)
    if variable is None or len(variable.values) != 1 or variable.values[0] is not constructor:
        return []
    reads = list(variable.reads)
    caller = ctx.method_caller(constructor)
    if caller is not None:  # returned by its method: the caller's uses (``_caller_reads``)
        reads = _caller_reads(reads, caller, ctx)
    reads += [r for read in list(reads) for r in _helper_reads(read, ctx)]
    found: list[LrUse] = []
    for read in reads:
        groups = read[1] if len(read) > 1 else None
        if not (isinstance(groups, cst.Attribute) and groups.value is read[0]):
            continue
        if groups.attr.value != PARAM_GROUPS:
            continue
        use = _lr_use(groups, ctx)
        if use is None or (_first_group_write(use) and not _one_group(constructor, ctx)):
            return []
        found.append(use)
    return found


def _helper_reads(read: tuple[cst.CSTNode, ...], ctx: HookContext) -> list[tuple[cst.CSTNode, ...]]:
    """For a read that is a plain argument of a call of a module-level function of this file
    (``adjust_learning_rate(optimizer, epoch, args)``, MoCo's and the ImageNet example's),
    the reads of the parameter it is passed as: its ``param_groups`` uses are this
    optimizer's too (the helper rewrites them when every call passes this optimizer:
    ``_use_of_injected`` follows the parameter to its callers). Nothing otherwise."""
    arg = read[1] if len(read) > 1 else None
    call = read[2] if len(read) > 2 else None
    if not (isinstance(arg, cst.Arg) and isinstance(call, cst.Call) and arg.value is read[0]):
        return []
    if arg.star or not isinstance(call.func, cst.Name) or any(a.star for a in call.args):
        return []
    function = _module_function(call, ctx)
    if function is None:
        return []
    param = _parameter_for(function, call, arg)
    if param is None:
        return []
    named = (
        n
        for n in cst_walk.walk(function.body)
        if isinstance(n, cst.Name) and n.value == param.name.value
    )
    variable = next((v for v in map(ctx.variable, named) if v is not None), None)
    if variable is None or len(variable.values) != 1 or variable.values[0] is not None:
        return []  # the parameter is bound again in the function (or not read there)
    return list(variable.reads)


def _module_function(call: cst.Call, ctx: HookContext) -> cst.FunctionDef | None:
    """The one module-level ``def`` of this file the name ``call.func`` is bound to."""
    name = call.func
    assert isinstance(name, cst.Name)
    variable = ctx.variable(name)
    if variable is None or len(variable.values) != 1:
        return None
    module: cst.CSTNode | None = call
    while module is not None and not isinstance(module, cst.Module):
        module = ctx.parent_of(module)
    if module is None:
        return None
    found = [
        s for s in module.body if isinstance(s, cst.FunctionDef) and s.name.value == name.value
    ]
    if len(found) != 1 or found[0].decorators or found[0].asynchronous is not None:
        return None
    return found[0]


def _parameter_for(function: cst.FunctionDef, call: cst.Call, arg: cst.Arg) -> cst.Param | None:
    """The parameter of ``function`` the argument ``arg`` of ``call`` is passed as."""
    params = function.params
    if arg.keyword is not None:
        named = [*params.params, *params.kwonly_params]
        return next((p for p in named if p.name.value == arg.keyword.value), None)
    index = [a for a in call.args if a.keyword is None].index(arg)
    positional = [*params.posonly_params, *params.params]
    return positional[index] if index < len(positional) else None


def _first_group_write(use: LrUse) -> bool:
    """``opt.param_groups[0]["lr"] = value``: a write of the first group's lr alone."""
    return use.value is not None and not isinstance(use.node, cst.For)


def _one_group(constructor: cst.Call, ctx: HookContext) -> bool:
    """Whether the optimizer ``constructor`` builds surely has one param group: only then is
    a write of ``param_groups[0]["lr"]`` the write of every parameter's lr (s23d: GPT-style
    decay/no-decay groups, group 0's lr written alone, converted to one injected lr: 0.17
    relative off torch over 36 AdamW updates)."""
    first = constructor.args[0] if constructor.args else None
    if first is None or first.keyword is not None or first.star:
        first = next(
            (a for a in constructor.args if a.keyword and a.keyword.value == "params"), None
        )
    return first is not None and one_group(first.value, ctx.variable)


def _caller_reads(
    reads: list[tuple[cst.CSTNode, ...]], caller: BuiltByMethod, ctx: HookContext
) -> list[tuple[cst.CSTNode, ...]]:
    """For an optimizer its method returns (``opt = model.configure_optimizers(...)``, the
    planner's ``BuiltByMethod``): the method's reads but its ``return``, and the reads of the
    name the one caller binds once to the call's value; ``reads`` when that is not known."""
    returned = [r for r in reads if len(r) > 1 and isinstance(r[1], cst.Return)]
    variable = ctx.variable(caller.target) if caller.target is not None else None
    if len(returned) != 1 or variable is None:
        return reads
    if len(variable.values) != 1 or variable.values[0] is not caller.call:
        return reads
    return [r for r in reads if r is not returned[0]] + list(variable.reads)


def _lr_use(groups: cst.Attribute, ctx: HookContext) -> LrUse | None:
    """What ``opt.param_groups`` is used for, when it is a learning-rate write or read."""
    parent = ctx.parent_of(groups)
    if isinstance(parent, cst.For) and parent.iter is groups:
        value = _lr_value(parent)
        return LrUse(groups, parent, value) if value is not None else None
    item = _first_group_lr(groups, parent, ctx)
    if item is None:
        return None
    holder = ctx.parent_of(item)
    if isinstance(holder, cst.AssignTarget):
        return _item_write(groups, item, holder, ctx)
    if isinstance(holder, (cst.AugAssign, cst.AnnAssign, cst.Del, cst.For, cst.CompFor)):
        return None  # an update in place, a deletion, a loop target
    if isinstance(holder, (cst.WithItem, cst.AsName)):
        return None
    return LrUse(groups, item, None)


def _first_group_lr(
    groups: cst.Attribute, parent: cst.CSTNode | None, ctx: HookContext
) -> cst.Subscript | None:
    """``opt.param_groups[0]["lr"]`` around ``groups`` (the only group: the optimizer trains
    ``model.parameters()``)."""
    first = parent
    if not (isinstance(first, cst.Subscript) and first.value is groups):
        return None
    if not _one_index(first, lambda v: isinstance(v, cst.Integer) and v.evaluated_value == 0):
        return None
    holder = ctx.parent_of(first)
    item = holder if isinstance(holder, cst.Subscript) else None
    if item is None or item.value is not first:
        return None
    is_lr = lambda v: isinstance(v, cst.SimpleString) and v.evaluated_value == LR_KEY  # noqa: E731
    return item if _one_index(item, is_lr) else None


def _one_index(subscript: cst.Subscript, accepts: Callable[[cst.BaseExpression], bool]) -> bool:
    if len(subscript.slice) != 1:
        return False
    index = subscript.slice[0].slice
    return isinstance(index, cst.Index) and accepts(index.value)


def _item_write(
    groups: cst.Attribute, item: cst.Subscript, target: cst.AssignTarget, ctx: HookContext
) -> LrUse | None:
    """``opt.param_groups[0]["lr"] = value``, alone on its line."""
    assign = ctx.parent_of(target)
    line = ctx.parent_of(assign) if assign is not None else None
    if not (
        isinstance(assign, cst.Assign)
        and len(assign.targets) == 1
        and isinstance(line, cst.SimpleStatementLine)
        and len(line.body) == 1
        and not _reads_attribute(assign.value, PARAM_GROUPS)
    ):
        return None
    return LrUse(groups, line, assign.value)


@dataclass(frozen=True)
class InjectedUse:
    """A learning-rate use of an injected optimizer, whose state is ``element`` (``[i]``)
    of the nnx.Optimizer's ``opt_state`` (``""``: the state itself)."""

    use: LrUse
    element: str

    @property
    def node(self) -> cst.CSTNode:
        return self.use.node

    @property
    def value(self) -> cst.BaseExpression | None:
        return self.use.value


def _use_of_injected(node: cst.Attribute, ctx: HookContext) -> InjectedUse | None:
    """The learning-rate use ``node`` is part of, when its optimizer's translation injects
    its hyper-parameters (alone, or as the one injected element of a chain)."""
    if not isinstance(node.value, cst.Name):
        return None
    origins = ctx.origins(node.value)
    if not origins or len(origins) != 1 or not isinstance(origins[0], cst.Call):
        return None
    if ctx.callers_elsewhere(node.value) is not None:
        return None  # a helper's parameter another file may pass a torch optimizer
    constructor = _method_constructor(origins[0], ctx) or origins[0]
    translation = ctx.translation_of(constructor)
    element = None if translation is None else _injected(cst.parse_expression(translation), ctx)
    if element is None:
        return None
    use = next((use for use in lr_uses(constructor, ctx) if use.groups is node), None)
    return None if use is None else InjectedUse(use, element)


def _method_constructor(call: cst.Call, ctx: HookContext) -> cst.Call | None:
    """The constructor ``call`` (``model.configure_optimizers(...)``, not itself translated)
    returns through a method of the model's class (``ctx.built_by_method``), None else."""
    if ctx.translation_of(call) is not None or not isinstance(call.func, cst.Attribute):
        return None
    fact = ctx.built_by_method(call)
    return None if isinstance(fact, str) else fact.constructor


def _injected(translation: cst.BaseExpression, ctx: HookContext) -> str | None:
    """``""`` for ``nnx.Optimizer(model, optax.inject_hyperparams(optax.<name>)(...), ...)``,
    ``[i]`` when that is the ``i``-th element of a chain (``injected_index``), else None."""
    if not isinstance(translation, cst.Call) or len(translation.args) < 2:
        return None
    tx = translation.args[1].value
    if _is_inject_call(tx, ctx):
        return ""
    index = injected_index(tx, ctx.semantic_map.chain_function)
    if index is None or not _is_inject_call(tx.args[index].value, ctx):  # type: ignore[attr-defined]
        return None
    return f"[{index}]"


def _is_inject_call(tx: cst.BaseExpression, ctx: HookContext) -> bool:
    return (
        isinstance(tx, cst.Call)
        and isinstance(tx.func, cst.Call)
        and dotted_name(tx.func.func) == ctx.semantic_map.inject_function
    )


def injected_index(tx: cst.BaseExpression, chain: str) -> int | None:
    """``i`` when ``tx`` is ``chain(...)`` (the map's ``optax.chain``) of plain positional
    elements whose ``i``-th alone is injected (``optax.inject_hyperparams(...)(...)``): its
    state is ``state[i]``."""
    if not isinstance(tx, cst.Call) or code_of(tx.func).strip() != chain:
        return None
    if any(a.keyword is not None or a.star for a in tx.args):
        return None
    injected = [i for i, a in enumerate(tx.args) if _is_injected(a.value)]
    return injected[0] if len(injected) == 1 else None


def _is_injected(value: cst.BaseExpression) -> bool:
    """``inject(f)(...)`` holding a learning rate: given as ``learning_rate=``, or as the first
    positional argument of a named factory (``optax.scale_by_learning_rate(lr)``). One injecting
    other hyper-parameters (``eps=lambda count: ...``) or a template's lambda (``(lambda rate,
    decay: ...)(lr, wd)``) has no ``learning_rate`` to write or read."""
    if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Call)):
        return False
    if any(_is_keyword(arg, HYPERPARAMETER) for arg in value.args):
        return True
    factory = value.func.args[0].value if value.func.args else None
    positional = bool(value.args) and value.args[0].keyword is None
    return positional and factory is not None and not isinstance(factory, cst.Lambda)


def _injectable(tx: cst.BaseExpression, ctx: HookContext) -> bool:
    """One ``optax.<name>(learning_rate=<value>, ...)`` call, nothing folded into it."""
    if ctx.folded or not isinstance(tx, cst.Call):
        return False
    name = dotted_name(tx.func) or ""
    root = ctx.semantic_map.inject_function.partition(".")[0]
    keywords = [a.keyword.value for a in tx.args if a.keyword is not None]
    return (
        name.count(".") == 1
        and name.startswith(root + ".")
        and HYPERPARAMETER in keywords
        and len(keywords) == len(tx.args)
    )


def _is_param_groups(node: cst.CSTNode, receiver: cst.CSTNode) -> bool:
    return (
        isinstance(node, cst.Attribute)
        and node.value is receiver
        and node.attr.value == PARAM_GROUPS
    )


def _lr_value(loop: cst.For) -> cst.BaseExpression | None:
    """``value`` of ``for g in ...: g["lr"] = value`` (one statement, no ``else``, no comment
    inside, ``value`` not reading ``g``); None for any other loop."""
    if not isinstance(loop.target, cst.Name) or loop.orelse is not None or loop.asynchronous:
        return None
    smalls = _small_statements(loop.body)
    if smalls is None or len(smalls) != 1 or not isinstance(smalls[0], cst.Assign):
        return None
    assign = smalls[0]
    if len(assign.targets) != 1 or not _is_lr_item(assign.targets[0].target, loop.target.value):
        return None
    if _reads(assign.value, loop.target.value) or _reads_attribute(assign.value, PARAM_GROUPS):
        return None
    return assign.value


def _small_statements(body: cst.BaseSuite) -> list[cst.BaseSmallStatement] | None:
    """The one line of a loop body (indented, or a suite after the colon), with no comment."""
    if isinstance(body, cst.SimpleStatementSuite):
        return None if body.trailing_whitespace.comment is not None else list(body.body)
    assert isinstance(body, cst.IndentedBlock)
    if len(body.body) != 1 or body.footer or body.header.comment is not None:
        return None
    line = body.body[0]
    if not isinstance(line, cst.SimpleStatementLine) or line.leading_lines:
        return None
    return None if line.trailing_whitespace.comment is not None else list(line.body)


def _is_lr_item(target: cst.BaseExpression, group: str) -> bool:
    """``g["lr"]`` (or ``g['lr']``)."""
    if not (isinstance(target, cst.Subscript) and len(target.slice) == 1):
        return False
    index = target.slice[0].slice
    return (
        isinstance(target.value, cst.Name)
        and target.value.value == group
        and isinstance(index, cst.Index)
        and isinstance(index.value, cst.SimpleString)
        and index.value.evaluated_value == LR_KEY
    )


def _reads_attribute(node: cst.CSTNode, attribute: str) -> bool:
    if isinstance(node, cst.Attribute) and node.attr.value == attribute:
        return True
    return any(_reads_attribute(child, attribute) for child in cst_walk.children(node))


def _reads(node: cst.CSTNode, name: str) -> bool:
    if isinstance(node, cst.Name) and node.value == name:
        return True
    return any(_reads(child, name) for child in cst_walk.children(node))
