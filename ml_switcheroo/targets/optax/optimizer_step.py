"""Plugin for optimizer step translation.

Converts imperative PyTorch optimization (``torch.optim``) to functional Optax state updates.
The hooks are wired only: they run when the semantic map sends a call to them, and everything
they know about an API comes from that map entry.

1. Instantiation (``optimizer_constructor``): ``torch.optim.Adam(model.parameters(), lr=0.01)``
   becomes ``optax.adam(learning_rate=0.01)``. The parameters argument is dropped (optax
   transformations are stateless factories); the other arguments are bound by torch's
   signature and translated as the entry's ``chain`` says.
2. Step execution (``optimizer_step``): ``opt.step()`` becomes an escape hatch suggesting the
   functional update, written with the optimizer's real name.
3. Zero grad (``optimizer_zero_grad``): ``opt.zero_grad()`` is removed (functional gradients
   do not accumulate); in expression position it becomes ``None``.
"""

from __future__ import annotations

from dataclasses import replace

import libcst as cst

from ml_switcheroo.analysis.parameters import PART, UNKNOWN, select
from ml_switcheroo.analysis.plan import SchedulePlan, Site
from ml_switcheroo.model.hygiene import UserExpression
from ml_switcheroo.model.tensor_values import replace_tensor_literals
from ml_switcheroo.model.translate import (
    BoundCall,
    active_links,
    check_escapes,
    render_chain,
    render_text,
)
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext, register_hook
from ml_switcheroo.targets.optax.clipping import clip_expression
from ml_switcheroo.targets.optax.lr_scheduler import (
    attaches_to_chain,
    momentum_schedule,
    render_schedule,
)

PARAMS = "params"


@register_hook("optimizer_constructor", requires=("signature",), role=roles.CONSTRUCTOR)
def transform_optimizer_init(node: cst.Call, ctx: HookContext) -> cst.Call:
    """Hook to rewrite optimizer instantiation: drop the parameters, translate the rest.

    The file's plan may attach a scheduler (its schedule becomes ``learning_rate``, or joins the
    chain) and clip calls (they head the chain); each is folded only if it translates.
    """
    call = BoundCall.bind(ctx.entry, node)
    _check_param_groups(call, ctx)
    ctx.warnings.extend(replace_tensor_literals(call, ctx.names(), ctx.semantic_map, (PARAMS,)))
    check_escapes(call, ctx.exact)
    _check_parameter_subset(call, ctx)
    schedule, clips = ctx.plan if ctx.plan else (None, [])
    head = [link for link in (_clip_link(site, ctx) for site in clips) if link is not None]
    tail: list[cst.BaseExpression] = []
    inject = None
    if schedule is not None and _schedule_translates(schedule, ctx):
        target = cst.parse_expression(code_of(schedule.outer.target).strip())
        if attaches_to_chain(schedule):
            tail.append(target)
            _fold_schedule(schedule, ctx)
        elif _takes_schedule(call, ctx):
            call.overrides[ctx.entry.learning_rate] = target  # type: ignore[index]
            momentum = momentum_schedule(schedule, ctx)
            if momentum is None or ctx.entry.momentum_argument:
                if momentum is not None:
                    key = ctx.entry.momentum_argument
                    assert key is not None
                    call.overrides[key] = momentum
                    call.injected = frozenset({key})
                    inject = _injector(ctx)
                _fold_schedule(schedule, ctx)
            else:
                del call.overrides[ctx.entry.learning_rate]  # type: ignore[arg-type]
    expression = render_chain(
        call,
        ctx.exact,
        ctx.semantic_map.chain_function,
        ctx.add_import,
        head=head,
        tail=tail,
        inject=inject,
    )
    # A momentum schedule repeats the scheduler's arguments, which its own statement evaluates.
    shared = [site.call for site in schedule.calls] if schedule is not None else []
    return ctx.hygienic(expression, node, shared=shared)  # type: ignore[return-value]


def _clip_link(site: Site, ctx: HookContext) -> cst.BaseExpression | None:
    """The optax transform of a clip call, or None when it does not translate."""
    try:
        expression = clip_expression(site.call, site.entry, ctx)  # type: ignore[arg-type]
    except Untranslatable:
        return None
    ctx.fold(site.call)
    return expression


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
        links = active_links(call, ctx.exact)
    except Untranslatable:
        return False
    return all(
        placeholder.in_safe_position
        for link in links
        for placeholder in link.emit.placeholders.values()
        if placeholder.name == argument
    )


def _injector(ctx: HookContext):  # type: ignore[no-untyped-def]
    """``optax.sgd(...)`` -> ``optax.inject_hyperparams(optax.sgd)(...)``."""
    function = ctx.semantic_map.inject_function

    def inject(expression: cst.BaseExpression) -> cst.BaseExpression:
        if not isinstance(expression, cst.Call):
            return expression
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
    check_escapes(call, ctx.exact, names)
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
    check_escapes(call, ctx.exact, _receiver_names(ctx))
    return cst.Name("None")


def _receiver_names(ctx: HookContext) -> dict[str, str]:
    receiver = ctx.receiver or "opt"
    return {"receiver": receiver, "state": f"{receiver}_state"}


def _check_param_groups(call: BoundCall, ctx: HookContext) -> None:
    """Param groups with options of their own cannot be one optax transformation: escape."""
    if not call.given(PARAMS):
        return
    params = call.value(PARAMS)
    if isinstance(params, cst.Name):
        params = ctx.assigned_value(params) or params
    groups = _group_dicts(params)
    if groups is None:
        return
    options = [_group_options(group) for group in groups]
    if not any(options):
        return
    raise Untranslatable(
        "param groups with their own options ("
        + ", ".join(sorted({k for o in options for k in o}))
        + ") need one optax transformation per group",
        _multi_transform_suggestion(call, ctx, options),
    )


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
            check_escapes(group_call, ctx.exact)
            expression = render_chain(
                group_call, ctx.exact, ctx.semantic_map.chain_function, lambda _: None
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


def _check_parameter_subset(call: BoundCall, ctx: HookContext) -> None:
    """An optimizer over part of a model escapes: optax updates every leaf it is given."""
    if not call.given(PARAMS):
        return
    params = call.value(PARAMS)
    shown = " ".join(code_of(params).split())
    selection = select(params, ctx.names(), ctx.semantic_map.parameters)
    if selection.kind == UNKNOWN:
        ctx.warn(
            f"`{shown}` is taken as a plain parameter list; if it holds param groups with "
            f"their own options, or only part of a model's parameters, the translation differs"
        )
    if selection.kind != PART:
        return
    try:
        expression = render_chain(
            call, ctx.exact, ctx.semantic_map.chain_function, lambda key: None
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
