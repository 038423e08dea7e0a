"""The NNX training step's rendering: the loss function ``loss_fn(model)``, its ``has_aux`` outputs
(the values read after the step), snapshots, the gradient and update lines, and the norms of
folded clips (``_render``, ``_aux_names``...).

Split from ``training_step.py`` by ``tools/split_training_step.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.analysis.statements import if_branches
from ml_switcheroo.model.hygiene import fresh_name
from ml_switcheroo.model.translate import BoundCall, render_value
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.learning_rate import lr_write
from ml_switcheroo.targets.nnx.other_models import OtherModels, read_undetached
from ml_switcheroo.targets.nnx.pullback import Pullback, fresh_gradient
from ml_switcheroo.targets.nnx.snapshots import renamed, snapshot_line
from ml_switcheroo.targets.nnx.step_syntax import (
    _assigned_call,
    _lone_small,
    _names_of,
    _region_ids,
    _scope,
    _target_names,
    _tuple,
    _variable_names,
    _variables_of,
)
from ml_switcheroo.targets.nnx.wrappers import unwrapping

GRADIENT = "{loss}, {grads} = nnx.value_and_grad({loss_fn})({model})"


GRADIENT_AUX = "({loss}, {aux}), {grads} = nnx.value_and_grad({loss_fn}, has_aux=True)({model})"


UPDATE = "{optimizer}.update({model}, {grads})"


# the running sum of a micro-step loop's gradients (torch sums the k backward passes in .grad)
SUMMED = "{total} = {grads} if {total} is None else jax.tree.map(jnp.add, {total}, {grads})"


def _render(
    region: Region,
    forward: list[cst.BaseStatement],
    after_backward: list[cst.BaseStatement],
    model: cst.BaseExpression,
    optimizer: str,
    ctx: HookContext,
    tail: Sequence[cst.BaseStatement] = (),
    summed: Sequence[str] = (),
    running: str | None = None,
    others: OtherModels | None = None,
    snapshots: Mapping[int, list[str]] = MappingProxyType({}),
    pullbacks: Mapping[int, Pullback] = MappingProxyType({}),
    pulled: Pullback | None = None,
    path: Sequence[str] = (),
) -> list[cst.BaseStatement]:
    """``def loss_fn(model)``, the gradient, the statements of the step that do not feed the
    loss (``tail``), a clip's norm read after it, and the update. With losses of earlier
    backward passes (``summed``) the loss function returns the sum of all, under a fresh name
    (each loss read after the step comes out as aux). With ``running`` (a micro-step loop) the
    gradients are added to that running sum, which the clip's norms and the update read.
    Other models the loss calls (``others.called``) are parameters after the model, passed
    as themselves: ``nnx.value_and_grad`` differentiates the first argument only. A statement
    of ``tail`` with ``snapshots`` reads fresh names the loss function binds where torch ran
    it and returns as aux (``snapshots.py``). A forward line of ``pullbacks`` computes its
    output through ``nnx.vjp`` and returns the pullback as aux; with ``pulled`` the gradient
    is the loss's with respect to that output, pulled back to the model's parameters. With
    ``path`` (the optimizer's submodule of the model: ``("encoder",)``) the update and the
    clips' norms take that submodule's part of the gradient."""
    model_text = code_of(model).strip()
    parameter = model_text if isinstance(model, cst.Name) else "model"
    taken = _names_of([_scope(region)]) | ctx.visible_names(region.anchor.call)
    if parameter != model_text and parameter in _variables_of(forward):
        raise Untranslatable(f"the forward pass already uses the name `{parameter}`")
    passed = [n for n in others.called if n in _variables_of(forward)] if others else []
    if parameter in passed:
        raise Untranslatable(f"another model the loss calls is named `{parameter}`")
    loss_fn, grads = fresh_name("loss_fn", taken), fresh_name("grads", taken)
    loss, total = region.loss, region.loss
    if summed:
        loss, total = (
            fresh_name("loss", taken | {loss_fn, grads}),
            " + ".join([*summed, region.loss]),
        )
    bound = _check_bound_before_read(forward, region, ctx)
    aux = _aux_names(forward, region, ctx, tail, returned=None if summed else region.loss)
    _check_bound_at_return([*summed, region.loss, *aux], bound, forward, ctx)
    _check_no_deferred_aux(forward, aux, model_text)
    aux += [p.name for p in pullbacks.values()]
    unwrapped = _unwrapped_reads(forward, model_text, ctx)
    body = [pullbacks[id(s)].vjp_line() if id(s) in pullbacks else s for s in forward]
    body = [_with_model(s, model_text, parameter, unwrapped) for s in body]
    if others is not None:
        body = [others.without_detach(s) for s in body]
    taken |= {loss_fn, grads, loss}
    body, tail = _with_snapshots(body, forward, region, tail, snapshots, taken, aux)
    tail = [_added_undetached(_lr_written(s, ctx), {loss, *aux}) for s in tail]
    first = body[0]
    returned = total if not aux else f"{total}, {_tuple(aux)}"
    body[0] = first.with_changes(leading_lines=())
    body.append(cst.parse_statement(f"return {returned}\n"))
    function = cst.FunctionDef(
        name=cst.Name(loss_fn),
        params=cst.Parameters([cst.Param(cst.Name(p)) for p in (parameter, *passed)]),
        body=cst.IndentedBlock(body=body),
        leading_lines=first.leading_lines,  # type: ignore[attr-defined]
    )
    arguments = ", ".join([model_text, *passed])
    differentiated = fresh_gradient(pulled, taken) if pulled is not None else grads
    names = {"loss": loss, "grads": differentiated, "loss_fn": loss_fn, "model": arguments}
    template = GRADIENT_AUX if aux else GRADIENT
    gradient = template.format(aux=_tuple(aux), **names)
    applied = (running or grads) + "".join(f"[{name!r}]" for name in path)
    updated = pulled.model if pulled is not None else model_text
    if path:
        if pulled is not None or passed:
            raise Untranslatable(
                f"the optimizer trains `{'.'.join([model_text, *path])}` only, a submodule of "
                "the model the loss calls; not rendered with other models in the loss"
            )
        updated = ".".join([model_text, *path])
    update = UPDATE.format(optimizer=optimizer, model=updated, grads=applied)
    norms = _clip_norms(after_backward, applied, ctx, ctx.add_import)
    summing = []
    if running is not None:
        summing = [cst.parse_statement(SUMMED.format(total=running, grads=grads) + "\n")]
        ctx.add_import("jax")
        ctx.add_import("jnp")
    pulling = [cst.parse_statement(pulled.pull(grads, differentiated) + "\n")] if pulled else []
    return [
        function,
        cst.parse_statement(gradient + "\n"),
        *pulling,
        *tail,
        *summing,
        *norms,
        cst.parse_statement(update + "\n"),
    ]


def _lr_written(statement: cst.BaseStatement, ctx: HookContext) -> cst.BaseStatement:
    """A learning-rate write through ``param_groups`` (``logged.py`` moved it after the
    gradient) as the write of the stored learning rate; any other statement as it is."""
    written = lr_write(statement, ctx)
    return statement if written is None else written[0]


def _added_undetached(statement: cst.BaseStatement, returned: set[str]) -> cst.BaseStatement:
    """``loss_accum += loss.detach()`` after the gradient adds ``loss``: a value the gradient
    returned is a JAX array, recorded by no tape (and without ``.detach()``). Only the value
    added is rewritten: ``acc = loss.detach()`` would share the tensor's storage in torch."""
    small = _lone_small(statement)
    if not isinstance(small, cst.AugAssign):
        return statement
    value = read_undetached(small.value, returned)
    return statement.with_changes(body=[small.with_changes(value=value)])


def _with_snapshots(
    body: list[cst.BaseStatement],
    forward: list[cst.BaseStatement],
    region: Region,
    tail: Sequence[cst.BaseStatement],
    snapshots: Mapping[int, list[str]],
    taken: set[str],
    aux: list[str],
) -> tuple[list[cst.BaseStatement], list[cst.BaseStatement]]:
    """The loss function's ``body`` with ``fresh = name`` where torch ran each statement of
    ``tail`` with ``snapshots`` (after the forward statements before it), ``tail`` with those
    statements reading the fresh names, and the fresh names added to ``aux``."""
    moved = list(tail)
    order = {id(s): i for i, s in enumerate(region.statements)}
    inserts: dict[int, list[cst.BaseStatement]] = {}  # before the k-th statement of the body
    for index, statement in enumerate(tail):
        names = snapshots.get(id(statement))
        if not names:
            continue
        fresh = {}
        for name in names:
            fresh[name] = fresh_name(name, taken)
            taken.add(fresh[name])
            aux.append(fresh[name])
        before = sum(1 for f in forward if order[id(f)] < order[id(statement)])
        inserts.setdefault(before, []).extend(snapshot_line(fresh[n], n) for n in names)
        moved[index] = renamed(statement, fresh)
    result: list[cst.BaseStatement] = []
    for k, statement in enumerate(body):
        result.extend(inserts.get(k, []))
        result.append(statement)
    result.extend(inserts.get(len(body), []))
    return result, moved


def _aux_names(
    forward: list[cst.BaseStatement],
    region: Region,
    ctx: HookContext,
    tail: Sequence[cst.BaseStatement] = (),
    returned: str | None = None,
) -> list[str]:
    """Names the forward pass binds (besides the loss it ``returned``) that may be read after
    the region or by the statements run after the gradient (``tail``)."""
    moved = {id(n) for s in tail for n in cst_walk.walk(s)}
    inside = _region_ids(region) - moved
    reads = {}
    for statement in forward:
        for node in cst_walk.walk(statement):
            if isinstance(node, cst.Name):
                reads.setdefault(node.value, []).append(node)
    found: list[str] = []
    for statement in forward:
        for target in _target_names(statement):
            if target.value == returned or target.value in found:
                continue
            seen = [n for n in reads.get(target.value, []) if n is not target] or [target]
            variable = ctx.variable(seen[-1])
            if variable is None or any(id(read[0]) not in inside for read in variable.reads):
                found.append(target.value)
    return found


# builtins whose result reads its arguments only when iterated (after the gradient, in aux)
DEFERRING_BUILTINS = frozenset({"map", "filter", "zip", "iter", "reversed", "enumerate"})


def _check_no_deferred_aux(forward: list[cst.BaseStatement], aux: list[str], model: str) -> None:
    """An aux output must not hold code that reads the loss function's values when run later
    (``show = lambda: out.sum()``, ``(o for o in outs)``, ``map(f, outs)``): torch runs it on the
    tensors of the step, the translation on the loss function's traced values, which JAX
    refuses outside the transformation (an UnexpectedTracerError)."""
    inner = {t.value for s in forward for t in _target_names(s)} | {model.split(".")[0]}
    for statement in forward:
        if not {t.value for t in _target_names(statement)} & set(aux):
            continue
        for node in _kept_deferred(statement):
            read = sorted((_variable_names(node) - _own_names(node)) & inner)
            if read:
                raise Untranslatable(
                    f"`{code_of(node).strip()}` is kept after the step and reads `{read[0]}` "
                    "when it runs: there it would read the loss function's traced value "
                    "(JAX raises an UnexpectedTracerError), not the tensor of the step"
                )


def _deferring(node: cst.CSTNode) -> bool:
    """A lambda, a generator expression or a call of a builtin iterating its arguments lazily."""
    return isinstance(node, cst.Lambda | cst.GeneratorExp) or (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value in DEFERRING_BUILTINS
    )


def _kept_deferred(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The deferring nodes under ``node`` (``_deferring``) that are not run where they are
    written: not an argument of a call that runs them (``sum(o.sum() for o in outs)``,
    ``sorted(xs, key=lambda v: -v)``), nor the iterable of a ``for`` statement or of a list,
    set or dict comprehension (``for f, t in zip(fs, ts):``, run right there)."""
    if _deferring(node):
        return [node]
    run_here: set[int] = set()
    if isinstance(node, cst.Call):
        run_here = {id(a) for a in node.args if _deferring(a.value)}
    elif isinstance(node, cst.For | cst.CompFor) and _deferring(node.iter):
        run_here = {id(node.iter)}
    return [
        found
        for child in node.children
        if id(child) not in run_here
        for found in _kept_deferred(child)
    ]


def _own_names(node: cst.CSTNode) -> set[str]:
    """The names a lambda's parameters or a generator expression's ``for`` targets bind."""
    if isinstance(node, cst.Lambda):
        return {p.name.value for p in cst_walk.walk(node.params) if isinstance(p, cst.Param)}
    if isinstance(node, cst.GeneratorExp):
        return {
            n.value
            for f in cst_walk.walk(node)
            if isinstance(f, cst.CompFor)
            for n in cst_walk.walk(f.target)
            if isinstance(n, cst.Name)
        }
    return set()


def _check_bound_before_read(
    forward: Sequence[cst.BaseStatement], region: Region, ctx: HookContext
) -> set[str]:
    """A name the forward pass binds must not be read in it before (it would be local); in a
    ``for`` loop of plain assignments (``statements.loss_loop_names``) its iterable is read
    before its target is bound, and its body in order in the first pass (a later pass reads no
    name the first did not bind); in an ``if`` of them (``statements.loss_branch_names``) its
    tests are read before its branches, each branch in order. Returns the names bound on every
    path to the ``return``: a loop's own names only when it provably runs
    (``Region.nonempty_loops``), an ``if``'s only when every branch binds them (an ``else:``).
    """
    assigned = {t.value for s in forward for t in _target_names(s)}
    # bound only by an earlier loop that may run zero times, or on some branches of an `if`
    maybe: dict[str, cst.For | cst.If] = {}

    def check(reads: set[str], bound: set[str]) -> None:
        early = sorted((reads & assigned) - bound)
        if early and early[0] in maybe:
            raise Untranslatable(_maybe_reason(early[0], maybe[early[0]], ctx, "read after it"))
        if early:
            raise Untranslatable(f"`{early[0]}` is read before the loss computes it")

    def through(statements: Sequence[cst.BaseStatement], bound: set[str]) -> set[str]:
        bound = set(bound)
        for statement in statements:
            if isinstance(statement, cst.For):
                check(_variable_names(statement.iter), bound)
                targets = {
                    n.value for n in cst_walk.walk(statement.target) if isinstance(n, cst.Name)
                }
                inside = through(statement.body.body, bound | targets)  # type: ignore[attr-defined]
                if any(statement is loop for loop in region.nonempty_loops):
                    bound = inside
                else:
                    maybe.update({name: statement for name in inside - bound})
                continue
            branches = if_branches(statement) if isinstance(statement, cst.If) else None
            if branches is not None:
                tests, bodies, complete = branches
                check({n for test in tests for n in _variable_names(test)}, bound)
                after = [through(body, bound) for body in bodies] + ([] if complete else [bound])
                every = set.intersection(*after)
                maybe.update({name: statement for name in set().union(*after) - every})
                bound = every
                continue
            targets = {t.value for t in _target_names(statement)}
            small = statement.body[0]  # type: ignore[attr-defined]
            value = getattr(small, "value", None)
            reads = _variable_names(value) if value else set()
            if isinstance(small, cst.AugAssign):
                reads |= targets
            check(reads, bound)
            bound |= targets
        return bound

    return through(forward, set())


def _check_bound_at_return(
    names: Sequence[str],
    bound: set[str],
    forward: Sequence[cst.BaseStatement],
    ctx: HookContext,
) -> None:
    """The loss and the aux values the loss function returns are bound on every path to its
    ``return``: not a name only a ``for`` loop binds that may run zero times, nor one only some
    branches of an ``if`` bind (torch would read the value it held before; the loss function
    has none)."""
    for name in names:
        binding = _partial_binding(name, forward) if name not in bound else None
        if binding is not None:
            raise Untranslatable(_maybe_reason(name, binding, ctx, "read after the step"))


def _partial_binding(name: str, forward: Sequence[cst.BaseStatement]) -> cst.For | cst.If | None:
    """A ``for`` loop or ``if`` of the forward pass (or in one) that binds ``name``."""
    return next(
        (
            node
            for statement in forward
            for node in cst_walk.walk(statement)
            if isinstance(node, cst.For | cst.If)
            and any(t.value == name for t in _target_names(node))
        ),
        None,
    )


def _maybe_reason(name: str, node: cst.For | cst.If, ctx: HookContext, read: str) -> str:
    """Why a name only a loop that may run zero times, or only some branches of an ``if``,
    bind is not read after it."""
    where = ctx.place(node)
    at = f" ({where})" if where else ""
    if isinstance(node, cst.If):
        return (
            f"`{name}` is bound only on some branches of `if {code_of(node.test).strip()}:`{at} "
            f"of the loss and {read}: on a path that does not bind it torch would read the "
            "value the name held before, the loss function has none"
        )
    shown = f"for {code_of(node.target).strip()} in {code_of(node.iter).strip()}"
    return (
        f"`{name}` is bound only by the loop `{shown}`{at} of the "
        f"loss and {read}, and that loop may run zero times (it is not over `range(k)` with "
        "`k` an integer constant >= 1): torch would then read the value the name held before, "
        "the loss function has none"
    )


def _unwrapped_reads(
    forward: list[cst.BaseStatement], model: str, ctx: HookContext
) -> frozenset[int]:
    """The ids of the ``model.module`` reads of the forward pass that are the model the
    wrapper ``model`` wraps (``wrappers.unwrapping``): the loss function's parameter."""
    return frozenset(
        id(node)
        for statement in forward
        for node in cst_walk.walk(statement)
        if isinstance(node, cst.Attribute)
        and dotted_name(node.value) == model
        and unwrapping(node, ctx) is not None
    )


def _with_model(
    statement: cst.BaseStatement, model: str, parameter: str, unwrapped: frozenset[int]
) -> cst.BaseStatement:
    """``statement`` with the model expression, and the reads of the wrapped model through
    it (``unwrapped``: ids of ``model.module`` nodes), read through the loss function's
    parameter."""
    if model == parameter and not unwrapped:
        return statement

    class Rename(cst.CSTTransformer):
        def leave_Attribute(
            self, original: cst.Attribute, updated: cst.Attribute
        ) -> cst.BaseExpression:
            if id(original) in unwrapped or dotted_name(original) == model:
                return cst.Name(parameter)
            return updated

    return statement.visit(Rename())  # type: ignore[return-value]


def _norm_lines(region: Region, ctx: HookContext) -> list[str]:
    """For a suggestion: what each ``norm = clip(...)`` of the region becomes."""
    try:
        norms = _clip_norms(region.statements, "grads", ctx, lambda key: None)
    except Untranslatable:
        return []
    return [code_of(norm).strip() + "  # the norm before clipping" for norm in norms]


def _clip_norms(
    statements: Sequence[cst.BaseStatement],
    grads: str,
    ctx: HookContext,
    request_import: Callable[[str], None],
) -> list[cst.BaseStatement]:
    """``norm = clip(...)`` between backward and step (a clip folded into the chain whose
    value is read): ``norm = <the map's value of the call, from the gradients>``."""
    rendered = []
    for statement in statements:
        call = _assigned_call(statement)
        entry = ctx.semantic_map.apis.get(next(iter(ctx.qualify(call.func)), "")) if call else None
        if call is None or entry is None or entry.role != roles.CLIP:
            continue
        value = render_value(
            BoundCall.bind(entry, call), ctx.exact, cst.parse_expression(grads), ctx.add_import
        )
        if value is None:
            raise Untranslatable(
                f"`{code_of(statement).strip()}`: the map has no value of this call from the "
                "gradients for these arguments"
            )
        small = statement.body[0]  # type: ignore[attr-defined]
        rendered.append(statement.with_changes(body=[small.with_changes(value=value)]))
    return rendered
