"""Plugin for optimizer step translation.

Converts imperative PyTorch optimization (``torch.optim``) to functional Optax state updates.
The hooks are wired only: they run when the semantic map sends a call to them, and everything
they know about an API comes from that map entry.

1. Instantiation (``optimizer_constructor``): ``torch.optim.Adam(model.parameters(), lr=0.01)``
   becomes ``optax.adam(learning_rate=0.01)``. The parameters argument is dropped (optax
   transformations are stateless factories); the other arguments are bound by torch's
   signature and translated as the entry's ``chain`` says. Two param groups that split one
   model by rank and differ only in weight decay give the decay a ``mask=``
   (``analysis/param_groups.py``); ``**extra_args`` of options the entry ignores is dropped.
2. Step execution (``optimizer_step``): ``opt.step()`` becomes an escape hatch suggesting the
   functional update, written with the optimizer's real name.
3. Zero grad (``optimizer_zero_grad``): ``opt.zero_grad()`` is removed (functional gradients
   do not accumulate); in expression position it becomes ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import libcst as cst

from ml_switcheroo.analysis import cst_walk, param_groups
from ml_switcheroo.analysis.parameters import (
    PART,
    UNKNOWN,
    WHOLE,
    Selection,
    is_module_class,
    select,
    whole_module,
)
from ml_switcheroo.analysis.plan import SchedulePlan, Site
from ml_switcheroo.analysis.purity import is_pure
from ml_switcheroo.model.hygiene import UserExpression, is_time_invariant, unevaluated
from ml_switcheroo.model.tensor_values import replace_tensor_literals
from ml_switcheroo.model.translate import (
    BoundCall,
    active_links,
    check_escapes,
    render_chain,
    render_text,
)
from ml_switcheroo.spec import findings, roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding
from ml_switcheroo.spec.semantic_map import ApiEntry, ParameterSpec
from ml_switcheroo.spec.signature import NotALiteral, code_of, literal_value
from ml_switcheroo.targets.hooks import HookContext, register_hook
from ml_switcheroo.targets.optax.clipping import clip_expression, refused_clip
from ml_switcheroo.targets.optax.lr_scheduler import (
    FLOAT,
    attaches_to_chain,
    factory_arguments,
    inline_schedule,
    momentum_schedule,
    render_schedule,
)
from ml_switcheroo.targets.optax.messages import render

PARAMS = "params"
OPTAX_LR = "learning_rate"  # optax's learning-rate argument (inject_hyperparams' key)


@register_hook("optimizer_constructor", requires=("signature",), role=roles.CONSTRUCTOR)
def transform_optimizer_init(node: cst.Call, ctx: HookContext, inject_lr: bool = False) -> cst.Call:
    """Hook to rewrite optimizer instantiation: drop the parameters, translate the rest.

    The file's plan may attach a scheduler (its schedule becomes ``learning_rate``, or joins the
    chain) and clip calls (they head the chain); each is folded only if it translates.
    ``inject_lr`` (NNX: the code writes the lr, no schedule attached): the optimizer's element
    of the chain gets its learning rate injected (``optax.inject_hyperparams``).
    """
    call = BoundCall(ctx.entry, node, ctx.entry.signature.bind(without_neutral_kwargs(node, ctx)))
    mask = _check_param_groups(call, ctx)
    ctx.warnings.extend(
        replace_tensor_literals(call, ctx.names(), ctx.semantic_map, (PARAMS,), render=render)
    )
    check_escapes(call, ctx.exact, render=render)
    if mask is None:
        _check_parameter_subset(call, ctx)
    schedule, clips = ctx.plan if ctx.plan else (None, [])
    head = _clip_links(clips, ctx)
    tail: list[cst.BaseExpression] = []
    inject = None
    if schedule is not None:
        _check_lr_in_decay(schedule, ctx)
    folded = _folded_schedule(schedule, ctx) if schedule is not None else None
    if schedule is not None and folded is not None:
        rendered, target = folded
        if attaches_to_chain(schedule) and schedule.written is not None:
            # written where it steps (NNX, targets/nnx/plateau.py): the lr as given, injected
            call.injected = frozenset({ctx.entry.learning_rate})  # type: ignore[arg-type]
            inject = _injector(ctx)
            _fold_schedule(schedule, ctx)
        elif attaches_to_chain(schedule):
            tail.append(target)
            _fold_schedule(schedule, ctx)
        elif _takes_schedule(call, ctx):
            call.overrides[ctx.entry.learning_rate] = _scheduled_lr(target, schedule, node, ctx)  # type: ignore[index]
            if schedule.written is not None:  # written where it steps: injected, not folded
                call.injected = frozenset({ctx.entry.learning_rate})  # type: ignore[arg-type]
                inject = _injector(ctx)
            momentum = momentum_schedule(rendered, ctx)
            if momentum is None or ctx.entry.momentum_argument:
                if momentum is not None:
                    key = ctx.entry.momentum_argument
                    assert key is not None
                    call.overrides[key] = momentum
                    call.injected = call.injected | {key}
                    inject = _injector(ctx)
                _fold_schedule(schedule, ctx)
            else:
                del call.overrides[ctx.entry.learning_rate]  # type: ignore[arg-type]
    if (
        inject_lr
        and schedule is None
        and ctx.entry.learning_rate is not None
        and not ctx.entry.lr_in_decay
    ):
        call.injected = frozenset({ctx.entry.learning_rate})
        inject = _injector(ctx)
    expression = render_chain(
        call,
        ctx.exact,
        ctx.semantic_map.chain_function,
        ctx.add_import,
        head=head,
        tail=tail,
        inject=inject,
        render=render,
    )
    folded_schedule = schedule if schedule is not None and folded is not None else None
    _check_nothing_dropped(expression, call, clips if head else [], folded_schedule, ctx)
    if mask is not None:
        expression = _attach_mask(expression, mask, ctx)
    # A momentum schedule repeats the scheduler's arguments, which its own statement evaluates.
    shared = [site.call for site in schedule.calls] if schedule is not None else []
    extra = factory_arguments(schedule) if schedule is not None and folded is not None else []
    return ctx.hygienic(expression, node, shared=shared, extra=extra)  # type: ignore[return-value]


def _check_lr_in_decay(schedule: SchedulePlan, ctx: HookContext) -> None:
    """An optimizer whose lr also scales a decay of the updated parameters (the map's
    ``lr_in_decay``: transformers.AdamW) takes a schedule only as its learning-rate argument:
    a transform scaling the whole update (ReduceLROnPlateau's chain tail) or an lr written
    where the scheduler steps (one injected element) is not its lr."""
    if ctx.entry.lr_in_decay and (attaches_to_chain(schedule) or schedule.written is not None):
        raise render(Finding(findings.LR_IN_DECAY, {"optimizer": ctx.entry.name}))


def _check_nothing_dropped(
    expression: cst.BaseExpression,
    call: BoundCall,
    clips: list[Site],
    schedule: SchedulePlan | None,
    ctx: HookContext,
) -> None:
    """Escape when an argument of the constructor or of a clip folded into it (their
    parameters aside) is neither in the translation nor in the folded schedule's statement
    (which takes the optimizer's lr) and its expression may do something: an option optax
    does not have (``foreach=flag()``), an lr a folded schedule replaces without reading it
    (``lr=pick()`` under OneCycleLR). Torch evaluates it; dropping it drops its effects."""
    spec = ctx.semantic_map.parameters
    bound = [call.args]
    for site in clips:
        if site.entry is not None:
            bound.append(site.entry.signature.bind(site.call))
    for args in bound:
        values = [arg.value for name, arg in args.items() if name not in spec.arguments]
        dropped = unevaluated(expression, values, lambda v: _harmless(v, ctx))
        if dropped and schedule is not None:
            dry = replace(ctx, request_import=lambda key: None, folded=[])
            for site in schedule.calls:
                rendered = render_schedule(site.call, schedule, replace(dry, entry=site.entry))
                dropped = unevaluated(rendered, dropped, lambda v: False)
        for value in dropped:
            name = next(n for n, arg in args.items() if arg.value is value)
            shown = " ".join(code_of(value).split())
            raise render(Finding(findings.ARGUMENT_DROPPED, {"name": name, "shown": shown}))


def _harmless(value: cst.BaseExpression, ctx: HookContext) -> bool:
    """Evaluating ``value`` does nothing but compute it: ``is_pure``, a literal or a lambda,
    or a call of the map's ``pure_calls`` / ``tensor_values.python_values``
    (``torch.cuda.is_available()``) of such arguments."""
    if is_pure(value) or is_time_invariant(value):
        return True
    if not isinstance(value, cst.Call):
        return False
    names = ctx.qualify(value.func)
    values = ctx.semantic_map.tensor_values
    known = ctx.semantic_map.pure_calls | set(values.python_values) | set(values.literals)
    return (
        bool(names)
        and all(name in known for name in names)
        and all(arg.star == "" and _harmless(arg.value, ctx) for arg in value.args)
    )


def _scheduled_lr(
    schedule_name: cst.BaseExpression, schedule: SchedulePlan, node: cst.Call, ctx: HookContext
) -> cst.BaseExpression:
    """The optimizer's ``learning_rate``: the schedule itself (the update count drives it), or
    ``float(sched(0))``, its first value, when the lr is written where the scheduler steps
    (``SchedulePlan.written``): folding it there would give each update a different lr
    (``float`` is the builtin there: ``check_first_lr``, in the schedule's dry run)."""
    if schedule.written is None:
        return schedule_name
    first = cst.Call(schedule_name, [cst.Arg(cst.Integer("0"))])
    return cst.Call(cst.Name(FLOAT), [cst.Arg(first)])


def _clip_links(clips: list[Site], ctx: HookContext) -> list[cst.BaseExpression]:
    """The optax transforms of the clip calls feeding the optimizer's steps, folded; none
    when the map escapes one of them (``refused_clip``: all or none)."""
    if refused_clip(clips, ctx) is not None:
        return []
    links = []
    for site in clips:
        links.append(clip_expression(site.call, site.entry, ctx))  # type: ignore[arg-type]
        ctx.fold(site.call)
    return links


def _folded_schedule(
    schedule: SchedulePlan, ctx: HookContext
) -> tuple[SchedulePlan, cst.BaseExpression] | None:
    """The plan to render the schedule's momentum with and the learning rate the
    constructor takes: the scheduler's name, or a factory's schedule inlined; None when the
    schedule does not translate."""
    if not _schedule_translates(schedule, ctx):
        return None
    if schedule.factory is None:
        return schedule, cst.parse_expression(code_of(schedule.outer.target).strip())
    try:
        inline_schedule(schedule, replace(ctx, request_import=lambda key: None, folded=[]))
    except Untranslatable:
        return None
    return inline_schedule(schedule, ctx)


def _schedule_translates(schedule: SchedulePlan, ctx: HookContext) -> bool:
    """Dry run: every scheduler call of the schedule renders (so folding it is safe)."""
    dry = replace(ctx, request_import=lambda key: None, folded=[])
    try:
        for site in schedule.calls:
            render_schedule(site.call, schedule, replace(dry, entry=site.entry))
    except Untranslatable:
        return False
    return True


def _fold_schedule(schedule: SchedulePlan, ctx: HookContext) -> None:
    for site in schedule.calls:
        ctx.fold(site.call)


def _takes_schedule(call: BoundCall, ctx: HookContext) -> bool:
    """The entry names its learning-rate argument and uses it only as a call argument."""
    argument = ctx.entry.learning_rate
    if argument is None:
        return False
    try:
        links = active_links(call, ctx.exact, render=render)
    except Untranslatable:
        return False
    return all(
        placeholder.in_safe_position
        for link in links
        for placeholder in link.emit.placeholders.values()
        if placeholder.name == argument
    )


def scheduled_lr(tx: cst.Call, ctx: HookContext) -> str | None:
    """The text of ``tx``'s learning rate when the map's template made it a function of the
    update count (``learning_rate=lambda count: ...``: Adagrad's ``lr_decay``), else None."""
    for arg in tx.args:
        keyword = arg.keyword.value if arg.keyword is not None else None
        if keyword == OPTAX_LR and isinstance(arg.value, cst.Lambda):
            return " ".join(code_of(arg.value).split())
    return None


def _injector(ctx: HookContext):  # type: ignore[no-untyped-def]
    """``optax.sgd(...)`` -> ``optax.inject_hyperparams(optax.sgd)(...)``."""
    function = ctx.semantic_map.inject_function

    def inject(expression: cst.BaseExpression) -> cst.BaseExpression:
        if not isinstance(expression, cst.Call):
            return expression
        lr = scheduled_lr(expression, ctx)
        if lr is not None:  # inject_hyperparams would call it as a schedule at each update
            raise render(Finding(findings.INJECTED_LR_SCHEDULE, {"lr": lr}))
        ctx.add_import(function.partition(".")[0])
        wrapped = cst.Call(cst.parse_expression(function), [cst.Arg(expression.func)])
        return expression.with_changes(func=wrapped)

    return inject


@register_hook("optimizer_step", requires=("reason", "suggest"), role=roles.STEP)
def transform_optimizer_step(node: cst.Call, ctx: HookContext) -> cst.Call:
    """Hook to rewrite ``optimizer.step()``: always an escape hatch with the functional update.

    Updating needs names the call does not carry (params, grads, opt_state), so the hook
    explains and suggests instead of guessing.
    """
    call = BoundCall.bind(ctx.entry, node)
    names = _receiver_names(ctx)
    check_escapes(call, ctx.exact, names, render=render)
    assert ctx.entry.reason is not None and ctx.entry.suggest is not None
    ctx.escape(
        render_text(ctx.entry.reason, call, names), render_text(ctx.entry.suggest, call, names)
    )
    return node


@register_hook("optimizer_zero_grad", role=roles.ZERO_GRAD)
def strip_zero_grad(node: cst.Call, ctx: HookContext) -> cst.BaseExpression:
    """Hook for ``optimizer.zero_grad()``: a no-op in functional code.

    Returns ``None``; as a statement the engine removes it.
    """
    call = BoundCall.bind(ctx.entry, node)
    check_escapes(call, ctx.exact, _receiver_names(ctx), render=render)
    return cst.Name("None")


def _receiver_names(ctx: HookContext) -> dict[str, str]:
    receiver = ctx.receiver or "opt"
    return {"receiver": receiver, "state": ctx.state_of(receiver)}


def _check_param_groups(call: BoundCall, ctx: HookContext) -> Mask | None:
    """Param groups with options of their own escape, unless they differ only in the map's
    ``masked_option`` and split one model by rank: then that option gets a mask."""
    if not call.given(PARAMS):
        return None
    params = call.value(PARAMS)
    _check_groups_not_shared(params, ctx)
    list_name = params if isinstance(params, cst.Name) else None
    if isinstance(params, cst.Name):
        params = ctx.assigned_value(params) or params
    groups = _group_dicts(_named_groups_read(params, ctx))
    if groups is None:
        return None
    options = [_group_options(group) for group in groups]
    if not any(options):
        return None
    mask = _masked_groups(call, ctx, groups, options, list_name)
    if mask is not None:
        return mask
    raise Untranslatable(
        "param groups with their own options ("
        + ", ".join(sorted({k for o in options for k in o}))
        + ") need one optax transformation per group",
        _multi_transform_suggestion(call, ctx, options),
    )


def _named_groups_read(params: cst.BaseExpression, ctx: HookContext) -> cst.BaseExpression:
    """``params`` with each element that is a name bound to a param-group dict replaced by that
    dict (``SGD([group])``: its options count like a dict written in the call), and
    ``Untranslatable`` where an element may be a param group whose options cannot be read: a
    ``dict(...)`` call, a comprehension of dicts, a starred list holding dicts, or a call or
    subscript whose value is not known to be parameters (``[make_group(params)]``)."""
    if isinstance(params, (cst.ListComp, cst.GeneratorExp)) and _may_be_group(params.elt, ctx):
        raise _unread_group(params.elt)
    if not isinstance(params, (cst.List, cst.Tuple)):
        return params
    elements = []
    for element in params.elements:
        value = element.value
        if isinstance(element, cst.StarredElement):
            inner = ctx.assigned_value(value) if isinstance(value, cst.Name) else value
            if isinstance(inner, (cst.List, cst.Tuple)) and any(
                _may_be_group(e.value, ctx) for e in inner.elements
            ):
                raise _unread_group(value)
        elif isinstance(value, cst.Name):
            bound = ctx.assigned_value(value)
            if isinstance(bound, cst.Dict):
                element = element.with_changes(value=bound)
            elif bound is not None and _is_group(bound):
                raise _unread_group(value)
            elif bound is None and any(_is_group(o) for o in ctx.origins(value) or ()):
                raise _unread_group(value)  # a parameter some caller passes a dict
        elif not isinstance(value, cst.Dict) and _may_be_group(value, ctx):
            raise _unread_group(value)  # a literal dict is read by ``_group_dicts``
        elements.append(element)
    return params.with_changes(elements=elements)


def _is_group(value: cst.BaseExpression) -> bool:
    """A dict display, a dict comprehension or a ``dict(...)`` call."""
    if isinstance(value, (cst.Dict, cst.DictComp)):
        return True
    return isinstance(value, cst.Call) and code_of(value.func).strip() == "dict"


def _may_be_group(value: cst.BaseExpression, ctx: HookContext) -> bool:
    """``_is_group``, or a subscript, or a call that is neither known to select parameters nor
    a function of torch (a tensor): either may hold a param group dict."""
    if _is_group(value) or isinstance(value, cst.Subscript):
        return True
    if not isinstance(value, cst.Call):
        return False
    names = ctx.names()
    if any(q.startswith("torch.") for q in names.qualified(value.func)):
        return False
    return select(value, names, ctx.semantic_map.parameters).kind == UNKNOWN


def _unread_group(value: cst.BaseExpression) -> Untranslatable:
    shown = " ".join(code_of(value).split())
    return Untranslatable(
        f"`{shown}` may be a param group (a dict with options of its own, `lr` say) that the "
        "translation cannot read; torch applies its options to that group, a single optax "
        "transformation would not",
        "write the param groups as dicts in the call, or give the optimizer the parameters "
        "alone (`model.parameters()`) and express per-group options with optax masks",
    )


def _check_groups_not_shared(params: cst.BaseExpression, ctx: HookContext) -> None:
    """Param groups given by name (``SGD([group])``, ``SGD(groups)``): torch keeps those very
    dicts as the optimizer's ``param_groups``, so a write through the name, before the call or
    after it (``group["lr"] *= 0.9``), changes the optimizer, and the translation reads only
    the literal the name is bound to: ``Untranslatable`` when the name is read anywhere else."""
    named = [params] if isinstance(params, cst.Name) else []
    for holder in (params, ctx.assigned_value(params) if named else None):
        if isinstance(holder, (cst.List, cst.Tuple)):
            named += [e.value for e in holder.elements if isinstance(e.value, cst.Name)]
    for name in named:
        value = ctx.assigned_value(name)
        holds_groups = isinstance(value, cst.Dict) or (
            isinstance(value, (cst.List, cst.Tuple))
            and any(isinstance(e.value, (cst.Dict, cst.Name)) for e in value.elements)
        )
        if not holds_groups:
            continue
        variable = ctx.variable(name)  # type: ignore[arg-type]
        others = None if variable is None else [r[0] for r in variable.reads if r[0] is not name]
        if others is None or others:
            groups = "param group" if isinstance(value, cst.Dict) else "param groups"
            read = f"is read again at {ctx.place(others[0])}" if others else "may be read"
            raise Untranslatable(
                f"the {groups} given by name, `{code_of(name)}`, {read}: torch keeps those "
                "very dicts as the optimizer's param_groups, so a write through "
                f'`{code_of(name)}` (its "lr", say) changes the optimizer, and the '
                "translation would not see it",
                "build the groups in the call itself, or port the writes with "
                "optax.inject_hyperparams (the lr in `opt_state.hyperparams`)",
            )


def rank_split_model(
    node: cst.Call, ctx: HookContext, entry: ApiEntry
) -> cst.BaseExpression | None:
    """The model (the receiver of ``.named_parameters()``/``.parameters()``) whose parameters
    the param groups of the constructor ``node`` split by rank, the groups the translation
    gives one mask; None for no such groups. Raises ``Untranslatable`` where the translation
    escapes the groups."""
    bound = entry.signature.bind(without_neutral_kwargs(node, ctx, entry))
    mask = _check_param_groups(BoundCall(entry, node, bound), ctx)
    return mask.model if mask is not None else None


@dataclass(frozen=True)
class Mask:
    """The value of the masked option and the mask (a function of the params pytree); the
    receiver of ``.parameters()`` the groups split (None: not known as one, or a suggestion)."""

    value: cst.BaseExpression
    mask: cst.BaseExpression
    model: cst.BaseExpression | None = None


def _masked_groups(
    call: BoundCall,
    ctx: HookContext,
    groups: list[cst.Dict],
    options: list[dict[str, cst.BaseExpression]],
    list_name: cst.Name | None,
) -> Mask | None:
    """Two groups that differ only in the masked option, one of them 0: the option's value
    and its mask (escape when the split is not by rank). None: not such groups."""
    spec = ctx.semantic_map.parameters
    option = spec.masked_option
    if option is None or spec.mask is None or len(groups) != 2:
        return None
    if option not in call.entry.signature.names or not _same_other_options(call, options, option):
        return None
    if list_name is None and not isinstance(call.value(PARAMS), (cst.List, cst.Tuple)):
        return None  # groups held by an attribute: what else changes them is not known here
    values = [group.get(option, call.value(option)) for group in options]
    zero = [_is_zero(value) for value in values]
    if not any(zero):
        return None
    decay = zero.index(False) if not all(zero) else 0
    context = param_groups.Context(ctx.names(), spec, ctx.variable, render)
    parameters = [_group_parameters(group) for group in groups]
    try:
        split = param_groups.rank_mask(parameters, decay, context, list_name)
    except param_groups.NotASplit:
        return None
    except param_groups.NameBased as exc:
        tx = _path_mask_tx(call, ctx, options, decay, exc)
        suggestion = exc.suggestion if tx is None else tx + PATH_NOTE
        raise PathMaskedGroups(exc.reason, suggestion, exc.receiver, tx) from None
    value = values[decay]
    written = {id(node) for node in cst_walk.walk(call.call)}  # dicts named elsewhere: not
    inline = list_name is None and all(id(group) in written for group in groups)
    _check_evaluated_alike(value, context, inline=inline)
    _override_group_options(call, options[0], option, value)
    mask = cst.parse_expression(spec.mask.replace("{comparison}", split.comparison))
    ctx.warn(RANK_MASK_WARNING.format(comparison=split.comparison))
    return Mask(value, mask, split.receiver)


# A rank mask means torch's split only when the port keeps each parameter's rank (probe s30 F7).
RANK_MASK_WARNING = (
    "the mask `p.ndim {comparison}` assumes each parameter keeps its rank in the JAX port of "
    "the model: flax's nnx.MultiHeadAttention (the port of nn.MultiheadAttention) has 2-D "
    "q/k/v biases and 3-D kernels, which it would select otherwise than torch's groups"
)


def _override_group_options(
    call: BoundCall, options: dict[str, cst.BaseExpression], masked: str, value: cst.BaseExpression
) -> None:
    """The groups' options (the same in both) replace the optimizer call's own."""
    for key, other in options.items():
        if key != masked:
            call.overrides[key] = other
    call.overrides[masked] = value


PATH_NOTE = "  # n: the leaf's path, written as the torch name; check it against the port"


class PathMaskedGroups(Untranslatable):
    """Groups split by parameter names escape; ``tx`` is the optimizer with a mask on the
    leaves' paths (text; None when it does not render) for the model ``receiver`` (the
    receiver of ``.named_parameters()``, None: not one), for a target's own suggestion."""

    def __init__(
        self,
        reason: str,
        suggestion: str | None,
        receiver: cst.BaseExpression | None,
        tx: str | None,
    ) -> None:
        super().__init__(reason, suggestion)
        self.receiver, self.tx = receiver, tx


def _path_mask_tx(
    call: BoundCall,
    ctx: HookContext,
    options: list[dict[str, cst.BaseExpression]],
    decay: int,
    found: param_groups.NameBased,
) -> str | None:
    """The optimizer with the groups' decay and a mask on the leaves' paths, as text (None
    when it does not render)."""
    option = ctx.semantic_map.parameters.masked_option
    assert option is not None
    value = options[decay].get(option, call.value(option))
    grouped = BoundCall(call.entry, call.call, call.args, dict(call.overrides))
    _override_group_options(grouped, options[0], option, value)
    try:
        check_escapes(grouped, ctx.exact, render=render)
        expression = render_chain(
            grouped, ctx.exact, ctx.semantic_map.chain_function, lambda _: None, render=render
        )
        mask = Mask(value, cst.parse_expression(found.mask))
        expression = _attach_mask(expression, mask, ctx, suggestion=True)
    except Untranslatable:
        return None
    return code_of(expression).strip()


def plain_tx(constructor: cst.Call, ctx: HookContext, entry: ApiEntry) -> str | None:
    """The optimizer's optax translation alone (no schedule, clip or mask folded), as text for
    a suggestion; None when it does not translate."""
    call = BoundCall(
        entry, constructor, entry.signature.bind(without_neutral_kwargs(constructor, ctx, entry))
    )
    try:
        check_escapes(call, ctx.exact, render=render)
        expression = render_chain(
            call, ctx.exact, ctx.semantic_map.chain_function, lambda _: None, render=render
        )
    except Untranslatable:
        return None
    return code_of(expression).strip()


def _same_other_options(
    call: BoundCall, options: list[dict[str, cst.BaseExpression]], masked: str
) -> bool:
    """The groups' other options are the same literals, arguments of the optimizer, and
    not its learning rate (a scheduler starts from the optimizer's own)."""
    keys = [set(group) - {masked} for group in options]
    if any(k != keys[0] for k in keys) or call.entry.learning_rate in keys[0]:
        return False
    for key in keys[0]:
        if key not in call.entry.signature.names:
            return False
        try:
            found = {repr(literal_value(group[key])) for group in options}
        except NotALiteral:
            return False
        if len(found) != 1:
            return False
    return True


def _is_zero(value: cst.BaseExpression) -> bool:
    try:
        found = literal_value(value)
    except NotALiteral:
        return False
    return type(found) in (int, float) and found == 0


def _group_parameters(group: cst.Dict) -> cst.BaseExpression:
    for element in group.elements:
        key = element.key if isinstance(element, cst.DictElement) else None
        if isinstance(key, cst.SimpleString) and key.evaluated_value == PARAMS:
            return element.value
    raise Untranslatable("a param group without `params`")


def _check_evaluated_alike(
    value: cst.BaseExpression, context: param_groups.Context, *, inline: bool
) -> None:
    """The masked option's value moves from its group to the optimizer call: only a literal,
    a variable bound once, or (groups written in the call) a pure expression keeps its value."""
    try:
        literal_value(value)
        return
    except NotALiteral:
        pass
    if param_groups.single_binding(value, context) or (inline and is_pure(value)):
        return
    shown = " ".join(code_of(value).split())
    raise Untranslatable(
        f"the group option `{shown}` is evaluated where the param groups are built; moved to "
        "the optimizer call it may have another value",
        "assign it to a variable once, before the param groups, and use the variable",
    )


def _attach_mask(
    expression: cst.BaseExpression, mask: Mask, ctx: HookContext, *, suggestion: bool = False
) -> cst.BaseExpression:
    """``mask=`` on every call of the map's ``masked_calls`` that takes the masked value;
    escape when the translation uses the value anywhere else (imports unless ``suggestion``)."""
    attach = _MaskAttacher(
        mask, ctx.semantic_map.parameters.masked_calls, ctx.semantic_map.inject_function
    )
    result = expression.visit(attach)
    if attach.other_uses:
        raise Untranslatable(
            "the translation uses the group option outside a transformation that takes a mask"
        )
    for key in ctx.semantic_map.imports:
        if not suggestion and key in _root_names(mask.mask):
            ctx.add_import(key)
    return result  # type: ignore[return-value]


class _MaskAttacher(cst.CSTTransformer):
    """Adds ``mask=`` to the masked calls that take the value (``optax.adamw(...)``, or the
    injected ``optax.inject_hyperparams(optax.adamw)(...)``, whose ``static_args`` then name
    ``mask``: inject_hyperparams reads a callable argument as a schedule of the step count);
    counts other uses of it."""

    def __init__(self, mask: Mask, calls: frozenset[str], inject: str = "") -> None:
        super().__init__()
        self.mask, self.calls, self.inject = mask, calls, inject
        self.masked: set[int] = set()  # ids of the arguments of masked calls
        self.other_uses = 0

    def _masked_call(self, node: cst.Call) -> bool:
        """``f(...)`` or ``inject(f)(...)`` with ``f`` one of the masked calls."""
        func = node.func
        if isinstance(func, cst.Call) and self.inject and code_of(func.func).strip() == self.inject:
            return len(func.args) == 1 and code_of(func.args[0].value).strip() in self.calls
        return code_of(func).strip() in self.calls

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.Call) and self._masked_call(node):
            self.masked.update(id(arg.value) for arg in node.args)
        if node is self.mask.value:
            self.other_uses += id(node) not in self.masked
            return False
        return True

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        if not self._masked_call(original_node):
            return updated_node
        if not any(arg.value is self.mask.value for arg in original_node.args):
            return updated_node
        argument = cst.Arg(self.mask.mask, keyword=cst.Name(MASK), equal=_NO_SPACE)
        func = updated_node.func
        if isinstance(func, cst.Call):  # injected: the mask passes through as it is
            func = func.with_changes(args=[*func.args, static_args([MASK])])
        return updated_node.with_changes(func=func, args=[*updated_node.args, argument])


MASK = "mask"
_NO_SPACE = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))


def static_args(names: Sequence[str]) -> cst.Arg:
    """``static_args=("mask",)``: arguments ``optax.inject_hyperparams`` passes through as
    they are (it reads a callable argument as a schedule of the step count)."""
    elements = [cst.Element(cst.SimpleString(f'"{name}"')) for name in names]
    return cst.Arg(cst.Tuple(elements), keyword=cst.Name("static_args"), equal=_NO_SPACE)


def _root_names(node: cst.CSTNode) -> set[str]:
    """The names at the root of attribute chains in ``node`` (``jax`` of ``jax.tree_util``)."""
    found: set[str] = set()
    if isinstance(node, cst.Attribute):
        return _root_names(node.value)
    if isinstance(node, cst.Name):
        return {node.value}
    for child in cst_walk.children(node):
        found |= _root_names(child)
    return found


def without_neutral_kwargs(
    node: cst.Call, ctx: HookContext, entry: ApiEntry | None = None
) -> cst.Call:
    """``opt(..., **extra_args)`` without the ``**`` argument when it is a dict literal (or a
    choice between dict literals) of options the map's ``ignore`` drops (``fused``) for
    ``entry`` (the hook's entry by default)."""
    entry = entry or ctx.entry
    starred = [arg for arg in node.args if arg.star == "**"]
    if len(starred) != 1:
        return node
    value = starred[0].value
    inline = not isinstance(value, cst.Name)
    if isinstance(value, cst.Name):
        variable = ctx.variable(value)
        if (
            variable is None
            or len(variable.values) != 1
            or variable.values[0] is None
            or any(read[0] is not value for read in variable.reads)
        ):
            return node
        value = variable.values[0]
    keys = _literal_dict_keys(value, ctx, inline=inline)
    given = {arg.keyword.value for arg in node.args if arg.keyword is not None}
    if keys is None or not keys <= set(entry.ignore) or keys & given:
        return node
    return node.with_changes(args=[arg for arg in node.args if arg is not starred[0]])


def _literal_dict_keys(
    value: cst.BaseExpression, ctx: HookContext, *, inline: bool
) -> set[str] | None:
    """The keys of ``{"fused": True}``, ``dict(fused=True)`` or ``a if c else b`` of those
    (None when it is anything else). Written in the call, every part must be pure: dropping
    it must not drop a side effect."""
    if isinstance(value, cst.IfExp):
        if inline and not is_pure(value.test):
            return None
        body = _literal_dict_keys(value.body, ctx, inline=inline)
        orelse = _literal_dict_keys(value.orelse, ctx, inline=inline)
        return None if body is None or orelse is None else body | orelse
    if isinstance(value, cst.Dict):
        pairs = [
            (element.key, element.value)
            for element in value.elements
            if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString)
        ]
        if len(pairs) != len(value.elements):
            return None
        keys = {str(key.evaluated_value) for key, _ in pairs}  # type: ignore[union-attr]
        values = [v for _, v in pairs]
    elif isinstance(value, cst.Call) and "builtins.dict" in _called(value.func, ctx):
        if any(arg.keyword is None for arg in value.args):
            return None
        keys = {arg.keyword.value for arg in value.args if arg.keyword is not None}
        values = [arg.value for arg in value.args]
    else:
        return None
    if inline and not all(is_pure(v) for v in values):
        return None
    return keys


def _called(func: cst.BaseExpression, ctx: HookContext) -> set[str]:
    """Qualified names of the callee; a Name neither imported nor bound here is a builtin."""
    found = set(ctx.qualify(func))
    if isinstance(func, cst.Name) and not found and ctx.variable(func) is None:
        found.add(f"builtins.{func.value}")
    return found


def _group_dicts(params: cst.BaseExpression) -> list[cst.Dict] | None:
    if not isinstance(params, (cst.List, cst.Tuple)) or not params.elements:
        return None
    values = [e.value if isinstance(e, cst.Element) else None for e in params.elements]
    dicts = [v for v in values if isinstance(v, cst.Dict)]
    if not dicts:
        return None
    if len(dicts) != len(values):
        raise Untranslatable("a parameter list mixing param-group dicts and other items")
    return dicts


def _group_options(group: cst.Dict) -> dict[str, cst.BaseExpression]:
    options: dict[str, cst.BaseExpression] = {}
    for element in group.elements:
        if not isinstance(element, cst.DictElement) or not isinstance(
            element.key, cst.SimpleString
        ):
            raise Untranslatable("a param group whose keys are not all string literals")
        key = str(element.key.evaluated_value)
        if key != PARAMS:
            options[key] = element.value
    return options


def _multi_transform_suggestion(
    call: BoundCall, ctx: HookContext, options: list[dict[str, cst.BaseExpression]]
) -> str:
    lines = ["optax.multi_transform(", "    {"]
    for index, group in enumerate(options):
        label = f"group_{index}"
        try:
            unknown = [k for k in group if k not in call.entry.signature.names]
            if unknown:
                raise Untranslatable(
                    f"option `{unknown[0]}` is not an argument of {call.entry.name}"
                )
            group_call = BoundCall(call.entry, call.call, call.args, dict(group))
            check_escapes(group_call, ctx.exact, render=render)
            expression = render_chain(
                group_call,
                ctx.exact,
                ctx.semantic_map.chain_function,
                lambda _: None,
                render=render,
            )
            options = [UserExpression(v, k, i) for i, (k, v) in enumerate(group.items())]
            text = code_of(ctx.hygienic(expression, call.call, extra=options)).strip()
        except Untranslatable as exc:
            text = f"...,  # no exact translation: {exc.reason}"
            lines.append(f"        {label!r}: {text}")
            continue
        lines.append(f"        {label!r}: {text},")
    lines += [
        "    },",
        "    param_labels,  # pytree like params: each leaf labelled with its torch group",
        ")",
    ]
    return "\n".join(lines)


def _params_unknown(call: BoundCall, ctx: HookContext, shown: str, problem: str) -> None:
    """Raise the escape of an optimizer whose ``params`` the program does not show to be
    every parameter of one model, with the translation it has when they are."""
    try:
        expression = render_chain(
            call, ctx.exact, ctx.semantic_map.chain_function, lambda key: None, render=render
        )
        translation = code_of(expression).strip()
    except Untranslatable:
        translation = None
    raise Untranslatable(
        f"nothing shows that `{shown}` holds every parameter of one model and no param group "
        f"({problem}); torch applies a param group's own options (`weight_decay=0.0` for "
        "biases, say) and trains only the parameters it is given, one optax transformation "
        "updates every leaf with one set",
        (
            f"when it holds plain parameters: `{translation}`; param groups: one "
            "transformation per group with `optax.multi_transform`"
            if translation
            else "give the optimizer `model.parameters()`, or express groups with optax masks"
        ),
    )


def _part_passed_for_the_model(params: cst.BaseExpression, ctx: HookContext) -> str | None:
    """For ``m.parameters()`` with ``m`` a name: a part of a model that reaches ``m`` (through
    this file's calls when ``m`` is a parameter: ``def make(m, lr): return SGD(m.parameters(),
    lr)`` called as ``make(model.head, lr)``, ``make(model[2], lr)``,
    ``make(model.get_submodule("fc"), lr)``; or a binding among several: ``m = m[2]`` in a
    loop), probe s31 G2: 1.31 relative off torch; None when every value reaching ``m`` is a
    whole model or nothing shows one."""
    spec = ctx.semantic_map.parameters
    for node in cst_walk.walk(params):
        func = node.func if isinstance(node, cst.Call) else None
        if not (
            isinstance(func, cst.Attribute)
            and func.attr.value in spec.module_methods
            and isinstance(func.value, cst.Name)
        ):
            continue
        for value in ctx.free_origins(func.value) or []:
            part = _part_of_a_model(value, spec, ctx)
            if part is not None:
                where = ctx.place(value) or "this file"
                return f"only `{part}`'s parameters (reaching `{func.value.value}` from {where})"
    return None


def _part_of_a_model(
    value: cst.BaseExpression, spec: ParameterSpec, ctx: HookContext
) -> str | None:
    """``value`` as written when it is part of a model: ``model.head`` (not ``self.model`` of
    a class that is no model, nor a DDP wrapper's ``.module``), ``model[2]``,
    ``model.get_submodule("fc")``."""
    shown = " ".join(code_of(value).split())
    if isinstance(value, cst.Subscript):
        return shown
    if isinstance(value, cst.Attribute):
        owner: cst.CSTNode | None = value
        while owner is not None and not isinstance(owner, cst.ClassDef):
            owner = ctx.parent_of(owner)
        module_self = is_module_class(owner, ctx.qualify, spec)  # type: ignore[arg-type]
        return None if whole_module(value, spec, module_self) else shown
    func = value.func if isinstance(value, cst.Call) else None
    if isinstance(func, cst.Attribute) and func.attr.value in spec.part_methods:
        return shown
    return None


SUBMODULE_TRAINED = (
    "this optimizer trains every parameter of `{module}` and no other: its state and updates "
    "are over the params of `{module}` (that subtree, not the whole model's)"
)


def _check_parameter_subset(call: BoundCall, ctx: HookContext) -> None:
    """An optimizer over part of a model escapes: optax updates every leaf it is given. Over
    a whole submodule (``model.encoder.parameters()``) it is the same transformation of that
    subtree (a clip joins its chain only when it clips the same parameters: ``plan_clips``)."""
    if not call.given(PARAMS):
        return
    params = call.value(PARAMS)
    shown = " ".join(code_of(params).split())
    selection = select(params, ctx.names(), ctx.semantic_map.parameters)
    if selection.kind == UNKNOWN:
        problem = ctx.params_problem(params)
        if problem is not None:
            _params_unknown(call, ctx, shown, problem)
        return
    if selection.kind == WHOLE:
        part = _part_passed_for_the_model(params, ctx)
        if part is None:
            return
        selection = Selection(PART, selection.key, part)
    if selection.kind != PART:
        return
    if selection.module is not None:  # a whole submodule: the tx is the same over its subtree
        ctx.warn(SUBMODULE_TRAINED.format(module=code_of(selection.module).strip()))
        return
    try:
        expression = render_chain(
            call, ctx.exact, ctx.semantic_map.chain_function, lambda key: None, render=render
        )
        translation = code_of(expression).strip()
    except Untranslatable:
        translation = "<the optax optimizer>"
    # Not optax.masked: it passes the masked-out gradients through as updates (they would
    # still train); optax.set_to_zero() freezes them.
    raise Untranslatable(
        f"{selection.reason} are trained here; an optax transformation applies to the whole "
        f"params tree it is given (JAX has no requires_grad: every leaf gets a gradient)",
        f"optax.multi_transform({{'trained': {translation}, 'frozen': optax.set_to_zero()}}, "
        f"param_labels)  # param_labels: a pytree like params, 'trained' on the leaves of "
        f"`{shown}` and 'frozen' elsewhere; or keep {translation} and give it only that "
        f"subtree of params",
    )
