"""The NNX training step's model and criterion: which model the forward pass trains (the one the
optimizer was built over, through wrappers, parameters and other files), the calls a loss
function may make, and the criteria a step calls (``_model_in_step``, ``_trains``,
``_check_known_calls``, ``_is_criterion``...).

Split from ``training_step.py`` by ``tools/split_training_step.py``.
"""

from __future__ import annotations

import builtins

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.dominating import bound_names, rebinding_after, unrebound_after
from ml_switcheroo.analysis.forward_links import link
from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.model import trained_model
from ml_switcheroo.targets.nnx.other_models import OtherModels
from ml_switcheroo.targets.nnx.pullback import Pullback
from ml_switcheroo.targets.nnx.step_syntax import (
    _callees,
    _distinct,
    _one_value,
    _short,
    _target_names,
)
from ml_switcheroo.targets.nnx.wrappers import (
    one_origin_through_wrappers,
    under_self_methods,
    unwrapped_values,
)

# Libraries whose functions a loss function may call (the user ports torch's to jax).
LIBRARIES = frozenset({"torch", "jax", "jnp", "numpy", "math", "builtins", "optax"})


# how many self-returning moves (`criterion = criterion.cuda()`) a criterion is followed through
_CRITERION_MOVES = 4


def _same_model(
    receiver: cst.BaseExpression,
    model: cst.BaseExpression,
    trained: cst.BaseExpression | None,
    ctx: HookContext,
) -> bool:
    """``receiver`` is the model the step trains: by the step's own rule (``_trains``) for an
    optimizer built here (``trained``: its constructor's model), else the very parameter the
    forward pass calls (one value reaching both)."""
    if trained is not None:
        return _trains(receiver, trained, ctx)
    value = _one_value(receiver, ctx)
    return (
        dotted_name(receiver) == dotted_name(model)
        and value is not None
        and value is _one_value(model, ctx)
    )


def _model_in_step(
    forward: list[cst.BaseStatement],
    trained: cst.BaseExpression,
    ctx: HookContext,
    others: OtherModels | None = None,
    pulled: Pullback | None = None,
) -> cst.BaseExpression:
    """The expression the forward pass calls the trained model by (``model`` /
    ``self.model``, or a parameter bound to the same model): the one value that reaches it is
    the one that reaches the optimizer's model (a rebound name escapes); a call of another
    model escapes. With ``pulled`` (the model's output computed before the step, pulled back
    through its vjp), that output's name: the loss function's differentiated argument."""
    trained_text = code_of(trained).strip()
    bound = {t.value for s in forward for t in _target_names(s)}
    before = "" if pulled is not None else _read_before(forward, bound, trained, ctx)
    if before:  # (before another model's check: the reason the step is not rendered)
        raise Untranslatable(
            f"the forward pass does not call the trained model `{trained_text}`"
            + (_cut_by_compound(forward, ctx, calls=False) or before)
        )
    found: cst.BaseExpression | None = None
    for callee in _callees(forward):
        text = dotted_name(callee)
        if text is None or text.split(".")[0] in bound:
            continue  # a value the forward pass computes
        value = _model_value(callee, ctx)
        passed = _passed_loss(callee, ctx)
        if passed:
            continue  # every call site of the repository passes a loss of the map
        if _trains(callee, trained, ctx):
            if found is not None and code_of(found).strip() != text:
                raise Untranslatable(f"the model is called by two names (`{text}`)")
            found = callee
        elif passed is False:
            raise Untranslatable(
                f"the loss calls `{text}`: neither provably the model `{trained_text}` the "
                "optimizer was built over (one value reaching both) nor a torch loss of the map "
                "at every call site of the repository (several models in one loss, or an "
                "unknown loss)"
            )
        elif others is not None and others.accepts(callee, value):
            continue  # another model whose gradients torch discards, or its output
        elif isinstance(value, cst.Call) and _makes_batch_ahead(
            callee, value, forward, trained, ctx
        ):
            continue  # `x, y = loader.next_batch()` before the forward pass (``_split_prefix``)
        elif isinstance(value, cst.Call) and _may_be_a_model(value, ctx):
            raise Untranslatable(_another_callee(callee, value, forward, ctx, others))
    if found is None and pulled is not None:
        return cst.Name(pulled.output)
    if found is None:
        raise Untranslatable(
            f"the forward pass does not call the trained model `{trained_text}`"
            + (
                _passed_model(forward, trained, ctx)
                or _unbound_model(trained, ctx)
                or _not_unrebound(forward, bound, trained, ctx)
                or _rebound_models(forward, bound, ctx)
                or _cut_by_compound(forward, ctx)
                or _through_helper(forward, bound, ctx)
            )
        )
    return found


def _passed_model(
    forward: list[cst.BaseStatement], trained: cst.BaseExpression, ctx: HookContext
) -> str:
    """``: it passes it to `gp(D, real)` ...`` when the forward pass hands the trained model to
    a call (WGAN-GP's ``compute_gradient_penalty(discriminator, ...)``) instead of calling it,
    with why that function is not run as it is ("" when it passes it to none)."""
    for call in (n for s in forward for n in cst_walk.walk(s) if isinstance(n, cst.Call)):
        if any(_trains(a.value, trained, ctx) for a in call.args):
            return (
                f": it passes it to `{_short(code_of(call))}`; the step renders a loss that "
                "calls the model itself (a function given the model is not followed"
                + _helper_reason(call.func, ctx)
                + ")"
            )
    return ""


def _another_callee(
    callee: cst.BaseExpression,
    value: cst.Call,
    forward: list[cst.BaseStatement],
    ctx: HookContext,
    others: OtherModels | None = None,
) -> str:
    """Why the loss calling ``callee`` (bound to ``value``, possibly a model) escapes; for the
    receiver of a method (``fake_A_buffer.push_and_pop(fake_A)``: CycleGAN's replay buffer),
    that method's call: code the step cannot see into, not a call of the object itself; for
    a model called, why it is not one whose gradients no code reads (``others.unobserved``)."""
    text = dotted_name(callee)
    method = next(
        (
            n
            for s in forward
            for n in cst_walk.walk(s)
            if isinstance(n, cst.Call)
            and isinstance(n.func, cst.Attribute)
            and n.func.value is callee
        ),
        None,
    )
    if method is None:
        why = others.unobserved(callee) if others and isinstance(callee, cst.Name) else None
        return f"the loss calls `{text}` too (several models in one loss, or an unknown loss)" + (
            f": neither another optimizer's model nor one whose gradients no code reads ({why})"
            if why
            else ""
        )
    where = ctx.place(value)
    return (
        f"the loss calls `{_short(code_of(method))}`, a method of `{text}` (bound to "
        f"`{_short(code_of(value))}`{f' at {where}' if where else ''}, an object the map does "
        "not know): code the step cannot see into, which may run a model or keep "
        "state between steps, so it can neither run in the traced loss function nor move "
        "out of it, ahead of the model's forward pass"
    )


def _read_before(
    forward: list[cst.BaseStatement],
    bound: set[str],
    trained: cst.BaseExpression,
    ctx: HookContext,
) -> str:
    """``_computed_before`` when the forward pass does not call the trained model itself."""
    free = [c for c in _callees(forward) if (dotted_name(c) or ".").split(".")[0] not in bound]
    if any(_trains(c, trained, ctx) for c in free):
        return ""
    return _computed_before(forward, bound, trained, ctx)


def _generator_pullback(
    region: Region,
    forward: list[cst.BaseStatement],
    trained: cst.BaseExpression,
    others: OtherModels,
    optimizer: str,
    ctx: HookContext,
) -> Pullback | None:
    """The pullback a generator step's loss reaches its model through (the forward link,
    ``analysis/forward_links.py``, named and written by ``pullback.py``):
    None when the loss does not read an output of the model computed before the step; raises
    with the reason when it does and the link does not hold, or when the step computing that
    output does not render (its loss function would not return the pullback)."""
    bound = {t.value for s in forward for t in _target_names(s)}
    before = _read_before(forward, bound, trained, ctx)
    if not before:
        return None
    found = Pullback.of(
        link(forward, bound, trained, region.statements, optimizer, others.other_model, ctx)
    )
    if isinstance(found, Pullback):
        holder = ctx.region_at(found.forward)
        rendered = ctx.region_rendered(holder) if holder is not None else None
        if rendered is not None and found.returned_by(rendered):
            return found
        found = "the step computing it is not translated, or computes it outside its loss function"
    cut = _cut_by_compound(forward, ctx, calls=False)
    raise Untranslatable(
        f"the forward pass does not call the trained model `{code_of(trained).strip()}`"
        + (cut or f"{before} (not pulled back through `nnx.vjp`: {found})")
    )


def _computed_before(
    forward: list[cst.BaseStatement],
    bound: set[str],
    trained: cst.BaseExpression,
    ctx: HookContext,
) -> str:
    """Why a loss reading an output of the trained model computed before the step (DCGAN's
    generator step: ``output = netD(fake)``, ``fake = netG(noise)`` before the discriminator's
    step) is not rendered, as a clause of the escape's reason ("" when it reads none)."""
    for name in (n for s in forward for n in cst_walk.walk(s) if isinstance(n, cst.Name)):
        if name.value in bound or ctx.variable(name) is None:
            continue
        for value in _distinct(ctx.origins(name)) or []:
            if isinstance(value, cst.Call) and _trains(value.func, trained, ctx):
                where = ctx.place(value)
                return (
                    f": the loss reads `{name.value}`, which `{_short(code_of(value))}` computed "
                    f"before the step{f' ({where})' if where else ''}; its gradient reaches the "
                    "model through that value, and computing it again inside the loss function "
                    "would run the model's forward pass twice (a BatchNorm's running statistics "
                    "updated twice, new dropout masks and noise)"
                )
    return ""


def _enclosing_model(
    forward: list[cst.BaseStatement], trained: cst.BaseExpression, ctx: HookContext
) -> tuple[cst.BaseExpression, tuple[str, ...]]:
    """For an optimizer over a submodule (``model.encoder``) that the forward pass never calls
    itself but reaches through a model holding it (``model(x)``, the same object as the
    constructor's ``model``, ``_trains``): that model and the attributes from it to the
    submodule (``("encoder",)``). The loss function differentiates the model; the update
    applies the submodule's part of the gradient, as torch steps only the optimizer's
    parameters of the gradients its backward pass computes. Else ``trained`` and ()."""
    if not isinstance(trained, cst.Attribute):
        return trained, ()
    callees = [c for c in _callees(forward) if dotted_name(c) is not None]
    if any(_trains(c, trained, ctx) for c in callees):
        return trained, ()
    path: list[str] = []
    node: cst.BaseExpression = trained
    while isinstance(node, cst.Attribute):
        path.insert(0, node.attr.value)
        node = node.value
        text = dotted_name(node)
        if any(dotted_name(c) == text and _trains(c, node, ctx) for c in callees):
            return node, tuple(path)
    return trained, ()


def _trains(callee: cst.BaseExpression, trained: cst.BaseExpression, ctx: HookContext) -> bool:
    """``callee`` names the model ``trained`` (the optimizer constructor's ``model``): the one
    value that reaches it is the one reaching ``trained``, or both have one origin."""
    trained_value = _model_value(trained, ctx)
    value = _model_value(callee, ctx)
    return (
        (trained_value is not None and value is trained_value)
        or _one_object(callee, trained, ctx)
        or one_origin_through_wrappers(callee, trained, ctx)
        or _unrebound_since_built(callee, trained, ctx)
    )


def _unrebound_since_built(
    callee: cst.BaseExpression, trained: cst.BaseExpression, ctx: HookContext
) -> bool:
    """``callee`` names the object ``trained`` named where the optimizer was built, whatever
    value reached it (a model built on two branches, imagenet's ``if args.pretrained: model =
    A(pretrained=True) else: model = A()``): ``trained`` is the receiver of ``.parameters()``
    in ``opt = Optimizer(...)`` alone on its line, and ``callee`` reads the same name with
    neither it nor ``opt`` rebound on any path since that line (``dominating.
    unrebound_after``), or is a parameter of a module-level function every call of which (all
    in this module: ``HookContext.caller_arguments``) passes that name so. ``opt`` unrebound
    too: the optimizer stepped there is the one that line built last, over that object."""
    if not isinstance(trained, cst.Name) or not isinstance(callee, cst.Name):
        return False
    if not ctx.binds(trained, trained.value):  # a notebook's cell (``_unbound_model``)
        return False
    line = _optimizer_line(trained, ctx)
    if line is None:
        return False
    statement, optimizer = line
    names, kept = (trained.value, optimizer), (optimizer,)

    def unrebound(read: cst.Name) -> bool:
        return read.value == trained.value and unrebound_after(
            statement, read, names, kept, ctx.parent_of
        )

    if unrebound(callee):
        return True
    arguments = ctx.caller_arguments(callee)
    return bool(arguments) and all(
        isinstance(argument, cst.Name) and unrebound(argument)
        for argument in arguments  # type: ignore[union-attr]
    )


def _not_unrebound(
    forward: list[cst.BaseStatement], bound: set[str], trained: cst.BaseExpression, ctx: HookContext
) -> str:
    """`` (`model` holds more than one value, and ...)``: why a name the forward pass calls,
    the trained model's name or a parameter every call passes a name for, is not provably
    the object the optimizer was built over (``_unrebound_since_built``); "" for no such name."""
    line = _optimizer_line(trained, ctx) if isinstance(trained, cst.Name) else None
    if line is None:
        return ""
    statement, optimizer = line
    names, kept = (trained.value, optimizer), (optimizer,)  # type: ignore[attr-defined]
    where = ctx.place(statement)
    since = f"the optimizer's line{f' ({where})' if where else ''}"
    for callee in _callees(forward):
        if not isinstance(callee, cst.Name) or callee.value in bound:
            continue
        arguments = ctx.caller_arguments(callee)
        reads = [a for a in arguments or [] if isinstance(a, cst.Name)]
        if not reads and callee.value == trained.value:  # type: ignore[attr-defined]
            reads = [callee]
        if not reads:
            continue
        for read in reads:
            passed = "" if read is callee else _passed_at(read, callee, ctx)
            if read.value != trained.value:  # type: ignore[attr-defined]
                return f" ({passed}, not the optimizer's `{trained.value}`)"  # type: ignore[attr-defined]
            found = rebinding_after(statement, read, names, kept, ctx.parent_of)
            if isinstance(found, cst.BaseStatement):
                at = ctx.place(found)
                found = (
                    f"`{_short(code_of(found.with_changes(leading_lines=())))}`"
                    f"{f' at {at}' if at else ''} binds `{trained.value}` or `{optimizer}` "  # type: ignore[attr-defined]
                    f"on a path from {since} to it"
                )
            if found is not None:
                return (
                    f" ({f'{passed}; ' if passed else ''}`{trained.value}` holds more than one "  # type: ignore[attr-defined]
                    f"value, and {found}: not provably the object the optimizer was built over)"
                )
    return ""


def _passed_at(argument: cst.Name, parameter: cst.Name, ctx: HookContext) -> str:
    """``the call `train(...)` at f.py:9 passes `net` for `model``` (the call holding
    ``argument``)."""
    arg = ctx.parent_of(argument)
    call = ctx.parent_of(arg) if arg is not None else None
    shown = f"`{_short(code_of(call))}`" if isinstance(call, cst.Call) else "a call"
    where = ctx.place(call) if call is not None else ""
    return (
        f"the call {shown}{f' at {where}' if where else ''} passes `{argument.value}` for "
        f"`{parameter.value}`"
    )


def _optimizer_line(
    trained: cst.Name, ctx: HookContext
) -> tuple[cst.SimpleStatementLine, str] | None:
    """The line ``opt = <call>`` alone holding ``trained`` (the model of ``.parameters()`` in
    the call), and ``opt``; None for any other place."""
    node: cst.CSTNode | None = trained
    while node is not None and not isinstance(node, cst.BaseStatement):
        node = ctx.parent_of(node)
    small = node.body[0] if isinstance(node, cst.SimpleStatementLine) else None
    if (
        not isinstance(small, cst.Assign)
        or len(node.body) != 1  # type: ignore[union-attr]
        or len(small.targets) != 1
        or not isinstance(small.targets[0].target, cst.Name)
        or not isinstance(small.value, cst.Call)
        or not any(n is trained for n in cst_walk.walk(small.value))
    ):
        return None
    return node, small.targets[0].target.value  # type: ignore[return-value]


def _cut_by_compound(forward: list[cst.BaseStatement], ctx: HookContext, calls: bool = True) -> str:
    """``: it reads `style_loss`, computed by the `for` statement at file.py:89 ...`` when a
    statement right before the forward pass, or left out of it, is a compound one binding a
    name the forward pass reads (a style-loss loop with a ``break``), or a line calling a
    method of one (``terms.append(mse(model(x), y))``; not with ``calls`` false). A ``def`` in
    the step (``def crit(t): ...`` between ``out = model(x)`` and ``loss = crit(out)``) cuts
    the run too: before, the reason said ``out`` was computed before the step (probe s34)."""
    holder = ctx.parent_of(forward[0])
    body = list(getattr(holder, "body", ()))
    kept = {id(s) for s in forward}
    places = [i for i, s in enumerate(body) if id(s) in kept]
    if not places:
        return ""
    skipped = [s for s in body[max(places[0] - 1, 0) : places[-1]] if id(s) not in kept]
    read = {n.value for s in forward for n in cst_walk.walk(s) if isinstance(n, cst.Name)}
    for statement in skipped:
        where = ctx.place(statement)
        at = f" at {where}" if where else ""
        if isinstance(statement, cst.SimpleStatementLine):
            changed = sorted(_receivers_called(statement) & read) if calls else []
            if changed:
                return (
                    f": it reads `{changed[0]}`, changed by `{_short(code_of(statement))}`{at}, "
                    "which the forward pass the step translates does not take in (only "
                    "assignments)"
                )
            continue
        bound = sorted({n for node in cst_walk.walk(statement) for n in bound_names(node)} & read)
        if bound:
            kind = type(statement).__name__.lower()
            kind = {"functiondef": "def", "classdef": "class"}.get(kind, kind)
            return (
                f": it reads `{bound[0]}`, computed by the `{kind}` statement{at}, and the "
                "forward pass the step translates is a run of statements before the backward "
                f"pass: {_NOT_TAKEN}"
            )
    return _cut_before(body, places[0], read, ctx)


# the compound statements the loss function does not take in (``_cut_by_compound``)
_NOT_TAKEN = (
    "a `def`, a `with`, a `while` loop, a `for` loop or an `if` other than one of plain "
    "assignments to names (no jump, no `else:` on the loop, no call alone on its line, no item or "
    "attribute store; the `if` on a test the loss function does not compute) is not taken into "
    "the loss function"
)


def _cut_before(body: list[cst.BaseStatement], first: int, read: set[str], ctx: HookContext) -> str:
    """``: the run ... starts after the `with` statement at file.py:265`` when the statement
    right before the forward pass (``body[first]``) is a compound one and a name the forward
    pass reads is bound before it (cleanrl: ``newvalue`` of the model's call above a ``with
    torch.no_grad():``); "" otherwise."""
    statement = body[first - 1] if first > 0 else None
    if statement is None or isinstance(statement, cst.SimpleStatementLine):
        return ""
    before = {n for s in body[: first - 1] for n in _bound_by_line(s)} & read
    if not before:
        return ""
    where = ctx.place(statement)
    kind = type(statement).__name__.lower()
    kind = {"functiondef": "def", "classdef": "class"}.get(kind, kind)
    return (
        f": it reads `{sorted(before)[0]}`, computed before the `{kind}` statement"
        f"{f' at {where}' if where else ''}, which ends the run of statements before the "
        f"backward pass that the step translates: {_NOT_TAKEN}"
    )


def _bound_by_line(statement: cst.BaseStatement) -> list[str]:
    """The names a simple line binds (``_, logprob, entropy, value = agent(...)``)."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return []
    return [n for node in cst_walk.walk(statement) for n in bound_names(node)]


def _receivers_called(statement: cst.CSTNode) -> set[str]:
    """The names whose methods ``statement`` calls (``terms`` of ``terms.append(...)``)."""
    return {
        n.func.value.value
        for n in cst_walk.walk(statement)
        if isinstance(n, cst.Call)
        and isinstance(n.func, cst.Attribute)
        and isinstance(n.func.value, cst.Name)
    }


def _through_helper(forward: list[cst.BaseStatement], bound: set[str], ctx: HookContext) -> str:
    """``: it calls `self.compute_loss(x, y)` ...`` when the forward pass calls a method of
    ``self`` or a function of this file: the model may run in there, where the step does not
    follow (the loss function must call the model itself)."""
    for call in (n for s in forward for n in cst_walk.walk(s) if isinstance(n, cst.Call)):
        func = call.func
        own_method = (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == "self"
        )
        own_function = (
            isinstance(func, cst.Name)
            and func.value not in bound
            and any(isinstance(v, cst.FunctionDef) for v in ctx.origins(func) or ())
        )
        if own_method or own_function:
            return (
                f": it calls `{_short(code_of(call))}`, code of this file the step does not "
                "follow into (the loss function must call the model itself: inline the call)"
            )
    return ""


def _unbound_model(trained: cst.BaseExpression, ctx: HookContext) -> str:
    """`` (`model` is bound nowhere in this file ...)`` when the trained model's name is a
    free name of the file (a notebook's cell, names from elsewhere): no binding proves that the
    forward pass and the optimizer name one object."""
    if not isinstance(trained, cst.Name) or ctx.binds(trained, trained.value):
        return ""
    return (
        f" (`{trained.value}` is bound nowhere in this file, as in a notebook's cell: no "
        "binding proves that the forward pass and the optimizer name one object)"
    )


def _rebound_models(forward: list[cst.BaseStatement], bound: set[str], ctx: HookContext) -> str:
    """`` (`self.model` holds `DDP(self.model)` too, at file.py:37)``: the callees of the
    forward pass that hold more than one value (a wrapper stored over the model), where."""
    for callee in _callees(forward):
        text = dotted_name(callee)
        values = ctx.origins(callee) if isinstance(callee, cst.Attribute) else None
        if text is None or text.split(".")[0] in bound or values is None or len(values) < 2:
            continue
        shown = ", ".join(
            f"`{_short(code_of(v))}` at {ctx.place(v) or 'an unknown line'}" for v in values
        )
        return f" (`{text}` holds more than one object: {shown})"
    return ""


def _model_value(node: cst.BaseExpression, ctx: HookContext) -> cst.BaseExpression | None:
    """The one value that reaches a model expression, a rebinding of a name to itself through
    the map's self-returning module methods (``model = model.to(device)``: the same object in
    torch) not counted, and a wrapper of the map (``model = DDP(model)``, ``ddp =
    torch.compile(model)``) read as the model it wraps (``wrappers.unwrapped_values``: the NNX
    model is the unwrapped one; the wrapper's statement escapes in place)."""
    values = unwrapped_values(node, ctx)
    return values[0] if values is not None and len(values) == 1 else None


def _model_across_files(
    forward: list[cst.BaseStatement], optimizer: cst.BaseExpression, ctx: HookContext
) -> cst.BaseExpression:
    """The parameter the forward pass calls that every call site in the repository passes the
    model the optimizer parameter ``optimizer`` was built over (``HookContext.
    trains_across_files``); none, or two: untranslatable, with the call site that decided."""
    bound = {t.value for s in forward for t in _target_names(s)}
    found: cst.BaseExpression | None = None
    reasons: list[str] = []
    for callee in _callees(forward):
        text = dotted_name(callee)
        if text is None or text.split(".")[0] in bound or not _name_or_self_attribute(callee):
            continue
        if found is not None and text == code_of(found).strip():
            continue
        if not isinstance(_one_value(callee, ctx), cst.Name):
            continue  # not a parameter standing for itself (a builtin, an import, a value)
        reason = ctx.trains_across_files(optimizer, callee)
        if reason is not None:
            reasons.append(f"`{text}`: {reason}")
        elif found is not None:
            raise Untranslatable(f"the model is called by two names (`{text}`)")
        else:
            found = callee
    if found is None:
        why = f" ({reasons[0]})" if reasons else ""
        raise Untranslatable(
            f"the optimizer `{code_of(optimizer).strip()}` is not built in this file, and no "
            f"model the forward pass calls is provably the one it trains at every call site{why}"
            + _rebound_models(forward, bound, ctx)
        )
    return found


def _name_or_self_attribute(node: cst.BaseExpression) -> bool:
    """``model``, or ``self.model`` (one attribute of a name)."""
    return isinstance(node, cst.Name) or (
        isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name)
    )


def _one_object(callee: cst.BaseExpression, trained: cst.BaseExpression, ctx: HookContext) -> bool:
    """``self.model`` (stored once in the file, ``self.model = model``) and the constructor's
    ``model`` (bound once): one origin, one object (``HookContext.model_origin``)."""
    origin = ctx.model_origin(callee)
    return origin is not None and origin is ctx.model_origin(trained)


def _check_known_calls(
    body: list[cst.BaseStatement],
    model: cst.BaseExpression,
    ctx: HookContext,
    others: OtherModels | None = None,
) -> None:
    """Every call in the loss function is the model, a method of a value, a library function
    (torch, jax, builtins) or a torch loss module; anything else may use the model (or another)
    behind the loss function's parameter: an unknown loss escapes."""
    model_text = code_of(model).strip()
    root = model_text.split(".")[0]
    bound = {t.value for s in body for t in _target_names(s)}
    called = set(others.called) if others is not None else set()
    for node in (n for s in body for n in cst_walk.walk(s)):
        if isinstance(node, cst.Call) and dotted_name(node.func) in called:
            continue  # another model whose gradients torch discards (``OtherModels``)
        if isinstance(node, cst.Call) and not _known_call(node.func, model_text, bound, ctx):
            shown = code_of(node.func).strip()
            raise Untranslatable(
                f"the loss calls `{shown}`, an unknown function that may use the model outside "
                "the loss function's parameter (an unknown loss)" + _helper_reason(node.func, ctx)
            )
        if root != model_text and isinstance(node, cst.Attribute):
            text = dotted_name(node)
            if text is not None and model_text.startswith(text + "."):
                raise Untranslatable(f"the loss uses `{text}`, which holds the model")
        if root != model_text and isinstance(node, cst.Arg) and dotted_name(node.value) == root:
            raise Untranslatable(f"the loss passes `{root}`, which holds the model, to a call")


def _known_call(func: cst.BaseExpression, model: str, bound: set[str], ctx: HookContext) -> bool:
    text = dotted_name(func)
    if text is None or text == model or text.startswith(model + "."):
        return True  # a method of a computed value, the model or one of its methods
    head = text.split(".")[0]
    if any(q.split(".")[0] in LIBRARIES for q in ctx.qualify(func)):
        return True
    passed = _passed_loss(func, ctx)
    if passed is not None:
        return passed  # a parameter: what every call site of the repository passes decides
    if _one_criterion(func, ctx):
        return True
    if isinstance(func, cst.Name) and hasattr(builtins, func.value) and ctx.variable(func) is None:
        return True  # a builtin (not rebound)
    if isinstance(func, cst.Name):  # a function of the file proven to read only its arguments
        copied = ctx.copied_helper(func, LIBRARIES)  # or copied, its namesakes written
        return ctx.helper_problem(func, LIBRARIES) is None or not isinstance(copied, str)
    if head in bound or head != model.split(".")[0]:
        return not ctx.qualify(func)  # a method of a value (not of an imported module)
    return False  # `self.compute_loss(...)`: a method of the object holding the model


def _helper_reason(func: cst.BaseExpression, ctx: HookContext) -> str:
    """Why a function of the file the loss calls is not proven to read only its arguments
    (``HookContext.helper_problem``), as a clause of the escape's reason ("" for others)."""
    if not isinstance(func, cst.Name):
        return ""
    problem = ctx.helper_problem(func, LIBRARIES)
    return f": {problem}" if problem is not None else ""


def _check_no_mapped_api(body: list[cst.BaseStatement], optimizer: str, ctx: HookContext) -> None:
    """The loss function uses neither the optimizer nor an API of the map (a scheduler, a
    clip call): the region's statements are not translated one by one."""
    for node in (n for s in body for n in cst_walk.walk(s)):
        if isinstance(node, (cst.Name, cst.Attribute)) and dotted_name(node) == optimizer:
            raise Untranslatable(f"the loss reads the optimizer `{optimizer}`")
        if isinstance(node, cst.Call) and any(
            q in ctx.semantic_map.apis for q in ctx.qualify(node.func)
        ):
            raise Untranslatable(f"the loss calls `{code_of(node.func).strip()}` of the map")


def _rebuilt_constructor(
    stepped: cst.BaseExpression, region: Region, ctx: HookContext
) -> cst.Call | None:
    """The first of the constructions of an optimizer rebuilt as training goes (``optimizer =
    torch.optim.Adam(resnet.parameters(), lr=lr)`` after ``lr /= 3``: torch starts a new
    state, as does a new nnx.Optimizer) when every binding of the name is a translated
    constructor over one model and the name is read only as the receiver of ``step()`` and
    ``zero_grad()`` (no scheduler, lr access, clip or accumulation that would belong to one
    construction only); None otherwise."""
    variable = ctx.variable(stepped) if isinstance(stepped, cst.Name) else None
    if variable is None or len(variable.values) < 2 or region.clipped or region.gated:
        return None
    calls = [v for v in variable.values if isinstance(v, cst.Call) and ctx.translates(v)]
    if len(calls) != len(variable.values) or not all(_method_receiver(r) for r in variable.reads):
        return None
    try:
        models = [trained_model(call, ctx) for call in calls]
    except Untranslatable:
        return None
    return calls[0] if all(_trains(m, models[0], ctx) for m in models[1:]) else None


def _method_receiver(read: tuple[cst.CSTNode, ...]) -> bool:
    """A read (the node and its parents) that is the receiver of ``.step()``/``.zero_grad()``."""
    return (
        len(read) >= 3
        and isinstance(read[1], cst.Attribute)
        and read[1].value is read[0]
        and read[1].attr.value in ("step", "zero_grad")
        and isinstance(read[2], cst.Call)
        and read[2].func is read[1]
    )


def _may_be_a_model(value: cst.Call, ctx: HookContext) -> bool:
    """An object built by a call that is neither a torch loss module nor a torch function
    returning a tensor (``torch.randn``): possibly a model."""
    if _is_criterion(value, ctx):
        return False
    names = ctx.qualify(value.func)
    return not (
        names and all(n.startswith("torch.") and not n.startswith("torch.nn.") for n in names)
    )


def _passed_loss(func: cst.BaseExpression, ctx: HookContext) -> bool | None:
    """For a parameter of a module-level function the repository index follows: whether
    every call site passes a loss of the map (``criterion = nn.CrossEntropyLoss().to(device)``,
    in this file or another); None when the index does not tell (not such a parameter)."""
    names = ctx.passed_across_files(func) if isinstance(func, cst.Name) else None
    if names is None:
        return None
    losses = ctx.semantic_map.modules.losses
    return bool(names) and all(name is not None and name in losses for name in names)


def _one_criterion(node: cst.BaseExpression, ctx: HookContext) -> bool:
    """Every value reaching ``node`` is one loss module of the map: its constructor call, or
    a name holding only it moved by the map's self-returning methods (``criterion =
    criterion.cuda()`` under ``if cuda:``: the same object on both paths)."""
    built = _criteria_reaching(node, ctx, depth=0)
    return built is not None and len(built) == 1


def _criteria_reaching(
    node: cst.BaseExpression, ctx: HookContext, depth: int
) -> dict[int, cst.Call] | None:
    """The loss constructors of the map reaching ``node`` through names moved by
    self-returning methods; None when some value is anything else."""
    values = _distinct(ctx.origins(node))
    if not values or depth > _CRITERION_MOVES:
        return None
    found: dict[int, cst.Call] = {}
    for value in values:
        if isinstance(value, cst.Call) and _is_criterion(value, ctx):
            found[id(value)] = value
            continue
        inner = under_self_methods(value, ctx)
        moved = _criteria_reaching(inner, ctx, depth + 1) if inner is not value else None
        if not isinstance(inner, cst.Name) or moved is None:
            return None
        found.update(moved)
    return found


def _is_criterion(value: cst.Call, ctx: HookContext) -> bool:
    """A loss module of the map (``nn.MSELoss()``, ``nn.MSELoss().to(device)``: the map's
    self-returning module methods keep it), which the user ports with the model."""
    inner = under_self_methods(value, ctx)
    losses = ctx.semantic_map.modules.losses
    return isinstance(inner, cst.Call) and any(q in losses for q in ctx.qualify(inner.func))


def _model_output_calls(calls: list[cst.Call], model: cst.BaseExpression | None) -> frozenset[int]:
    """The calls of the model among ``calls`` (``model(x)``, ``self.forward(x_pos)``), by id,
    when the model is a Name: the loss function's parameter has its name, so their code is
    the same in the rendered body (``ExactNamesakes`` finds them by their code); the NNX
    model's output is a JAX array as ``out = model(x)`` is."""
    if not isinstance(model, cst.Name):
        return frozenset()
    return frozenset(
        id(call)
        for call in calls
        if (isinstance(call.func, cst.Name) and call.func.value == model.value)
        or (
            isinstance(call.func, cst.Attribute)
            and isinstance(call.func.value, cst.Name)
            and call.func.value.value == model.value
        )
    )


def _makes_batch_ahead(
    callee: cst.BaseExpression,
    value: cst.Call,
    forward: list[cst.BaseStatement],
    trained: cst.BaseExpression,
    ctx: HookContext,
) -> bool:
    """``callee`` is the receiver of a method call (``train_loader.next_batch()``) in a
    statement before the first that calls the trained model, and holds an object of a class of
    this file proven to reach no model (``HookContext.data_object_problem``): the call makes the
    batch, and runs before the loss function as before torch's forward pass."""
    if not isinstance(callee, cst.Name):
        return False
    first = next(
        (i for i, s in enumerate(forward) if any(_trains(c, trained, ctx) for c in _callees([s]))),
        None,
    )
    if first is None or not any(
        isinstance(n, cst.Attribute) and n.value is callee
        for s in forward[:first]
        for n in cst_walk.walk(s)
    ):
        return False
    variable = ctx.variable(callee)
    if variable is None or len(variable.values) != 1 or variable.values[0] is not value:
        return False
    modules = ctx.semantic_map.data_modules
    return ctx.data_object_problem(value, variable.reads, modules) is None
