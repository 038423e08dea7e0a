"""NNX training step: the region from the forward pass to ``opt.step()`` becomes

    def loss_fn(model):
        <the forward pass, the model used through the parameter>
        return loss            # (or ``loss, aux``: values the code reads after the step)
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)

Only the plainest shape is rendered; anything else escapes with its reason (never a guess).
A GradScaler (``scaler.scale(loss).backward()``, ``unscale_``, ``step``, ``update``) goes away:
JAX needs no loss scaling (torch's scaling by a power of two is exact; its skipping of steps
with inf/nan gradients is float16 behaviour, which the ported model no longer has).
Gradient accumulation (the step every k backward passes) renders the same, the ``if`` gone:
the optimizer's tx is optax.MultiSteps (see ``accumulation.py``).
nanoGPT's micro-step loop (``for micro_step in range(k):`` holding the forward and backward
passes, the step after the loop): the loss function and the gradient inside the loop, a
running sum ``grads_sum`` of the k gradients (``SUMMED``; torch sums them in .grad) and one
update after it, when the loop provably runs (``Region.nonempty_loops``) and nothing in it
jumps, zeroes, steps or reads the gradients (``_micro_loop``). A clip under an ``if`` whose
test is always true (``if grad_clip != 0.0:``, a module constant: ``Region.true_guards``)
is folded like one without it.
Half-done (issue 13, D4): a forward pass under ``autocast`` (the escape names the ``with``),
and a clip call other than one folded into the optimizer's chain escape here.
A step in another file than its optimizer (``train_one_epoch(model, criterion, loader,
optimizer)``) renders when every call site in the repository passes a translated optimizer and
the very model it was built over (``HookContext.trains_across_files``; through functions that
pass both on, ``fit(model, opt)`` -> ``train_one_epoch(model, opt)``). A criterion is a loss
of the map's ``modules: losses`` (through its ``self_methods``: ``nn.CrossEntropyLoss().to(
device)``; one such module a name holds on every path, ``criterion = criterion.cuda()``
under ``if cuda:``); a criterion parameter of a module-level function must be one at every call site
of the repository (``HookContext.passed_across_files``). The model the step calls is the one
the optimizer was built over when one value reaches both, ``model = model.to(device)`` (a
self-method rebinding a name to itself) not counted; a wrapper of ``modules: wrappers``
(``DDP(model)``, ``torch.compile(model)``) is the model it wraps (``wrappers.py``). Not done:
a criterion parameter passed on through such a function is not followed, and a model built on
two branches (``if pretrained: model = A(pretrained=True) else: model = A()``) is two values
(both escaped).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from types import MappingProxyType

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.forward_links import link, next_step
from ml_switcheroo.analysis.loss_helpers import namesake_problem
from ml_switcheroo.analysis.plan import Region, changed_in_place
from ml_switcheroo.analysis.shared_names import read_elsewhere
from ml_switcheroo.analysis.statements import DETACH
from ml_switcheroo.model.hygiene import fresh_name
from ml_switcheroo.model.translate import BoundCall, render_value
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.semantic_map import ApiEntry
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext, HookResult, ReplaceRegion
from ml_switcheroo.targets.nnx.accumulation import Accumulation, accumulation, is_accumulated
from ml_switcheroo.targets.nnx.learning_rate import lr_write
from ml_switcheroo.targets.nnx.logged import logged_after_backward
from ml_switcheroo.targets.nnx.method_built import MethodBuilt, method_built
from ml_switcheroo.targets.nnx.model import trained_model
from ml_switcheroo.targets.nnx.namesake_rewrite import (
    ExactNamesakes,
    after_text,
    any_array_read,
    attribute_receivers,
    exact_text,
)
from ml_switcheroo.targets.nnx.other_models import OtherModels, read_undetached
from ml_switcheroo.targets.nnx.pullback import Pullback, fresh_gradient
from ml_switcheroo.targets.nnx.snapshots import renamed, snapshot_line, snapshot_ready
from ml_switcheroo.targets.nnx.wrappers import (
    check_no_wrapper_attribute,
    one_origin_through_wrappers,
    under_self_methods,
    unwrapped_values,
    unwrapping,
)
from ml_switcheroo.targets.optax.clipping import clip_expression

GRADIENT = "{loss}, {grads} = nnx.value_and_grad({loss_fn})({model})"
GRADIENT_AUX = "({loss}, {aux}), {grads} = nnx.value_and_grad({loss_fn}, has_aux=True)({model})"
UPDATE = "{optimizer}.update({model}, {grads})"
SUGGESTION = (
    "def loss_fn(model):  # the forward pass that computes `{loss}`\n"
    "    ...\n"
    "    return {loss}\n"
    "{loss}, grads = nnx.value_and_grad(loss_fn)({model})\n"
    "{optimizer}.update({model}, grads)"
)
# the running sum of a micro-step loop's gradients (torch sums the k backward passes in .grad)
SUMMED = "{total} = {grads} if {total} is None else jax.tree.map(jnp.add, {total}, {grads})"
CLIPPED = "# the gradient clipping here is now the head of `{optimizer}`'s tx: drop the clip call"
# Libraries whose functions a loss function may call (the user ports torch's to jax).
LIBRARIES = frozenset({"torch", "jax", "jnp", "numpy", "math", "builtins", "optax"})
# how many self-returning moves (`criterion = criterion.cuda()`) a criterion is followed through
_CRITERION_MOVES = 4


def nnx_training_step(node: cst.Call, ctx: HookContext) -> HookResult:
    """Hook for a training-step region (``ctx.plan``) of the NNX target."""
    region = ctx.plan
    if not isinstance(region, Region) or region.backward is None:
        raise Untranslatable("a step without its backward pass in the same function")
    names = {"loss": region.loss, "model": "model", "optimizer": _optimizer_text(region)}
    outside: dict[int, str] = {}
    try:
        if region.branch is None:
            statements = _rendered_step(region, names, ctx, outside)
        else:
            statements = [_rendered_branch(region, region.branch, names, ctx)]
    except Untranslatable as exc:
        suggestion = SUGGESTION.format(**names)
        if region.clipped and not _unfolded_clips(region, ctx):
            suggestion += f"\n{CLIPPED.format(**names)}"
            suggestion += "".join(f"\n{line}" for line in _norm_lines(region, ctx))
        raise Untranslatable(exc.reason, suggestion) from None
    ctx.add_import("nnx")
    _request_template_imports(outside.values(), ctx)
    return ReplaceRegion(tuple(statements), outside)


def _unfolded_clips(region: Region, ctx: HookContext) -> list[cst.Call]:
    """The clip calls of ``region`` the optimizer's chain cannot take."""
    found = []
    for statement in region.statements:
        call = _lone_call(statement) or _assigned_call(statement)
        entry = ctx.semantic_map.apis.get(next(iter(ctx.qualify(call.func)), "")) if call else None
        if (
            call is not None
            and entry is not None
            and entry.role == roles.CLIP
            and unfolded_clip(call, entry, ctx) is not None
        ):
            found.append(call)
    return found


def _rendered_branch(
    region: Region, branch: cst.If, names: dict[str, str], ctx: HookContext
) -> cst.If:
    """``if phase == 'train':`` with the step rendered from the forward pass before it and
    the backward and step in it, ``else:`` the forward pass as written (``Region.branch``):
    when the test is false torch runs the forward pass without a step, the same values."""
    forward = region.statements[:-1]
    flat = replace(region, statements=[*forward, *branch.body.body], branch=None)  # type: ignore[attr-defined]
    rendered = _rendered_step(flat, names, ctx)
    kept = [s for s in forward if not _is_zero_grad(s, ctx)]  # the nnx.Optimizer has none
    kept[0] = kept[0].with_changes(leading_lines=())  # (kept above the `if`)
    return branch.with_changes(
        body=branch.body.with_changes(body=rendered),
        orelse=cst.Else(body=cst.IndentedBlock(body=kept)),
    )


def _untranslated_optimizer(
    stepped: cst.BaseExpression, constructor: cst.BaseExpression | None, ctx: HookContext
) -> str:
    """Why the stepped optimizer is not an nnx.Optimizer of this file, naming what builds it:
    an escaped constructor (``Adam(itertools.chain(...))``), several values, or none here."""
    optimizer = code_of(stepped).strip()
    reason = f"the optimizer `{optimizer}` is not one built here and translated"
    if isinstance(constructor, cst.Call):
        where = ctx.place(constructor)
        return (
            f"{reason}: `{_short(code_of(constructor))}`{f' ({where})' if where else ''}, the "
            "one value reaching it, is not translated to an nnx.Optimizer"
        )
    values = _distinct(ctx.origins(stepped)) or []
    if len(values) > 1:
        shown = ", ".join(
            f"`{_short(code_of(v))}` at {ctx.place(v) or 'an unknown line'}" for v in values
        )
        return f"{reason}: `{optimizer}` holds more than one value ({shown})"
    variable = ctx.variable(stepped) if isinstance(stepped, cst.Name) else None
    unfollowed = sum(value is None for value in variable.values) if variable else 0
    if variable is not None and unfollowed:
        return (
            f"{reason}: no one value reaches `{optimizer}` (bound {len(variable.values)} "
            f"time(s) in its scope, {unfollowed} by a statement whose value is not followed: a "
            "tuple target such as `model, optimizer = accelerator.prepare(...)`, a parameter, a "
            "loop variable)"
        )
    return reason


def _optimizer_text(region: Region) -> str:
    """The stepped optimizer's source, for a suggestion (``opt`` when unclear)."""
    anchor = region.anchor
    if anchor.role == roles.SCALER_STEP:
        return code_of(anchor.call.args[0].value).strip() if anchor.call.args else "opt"
    return code_of(anchor.receiver).strip() if anchor.receiver is not None else "opt"


def _rendered_step(
    region: Region,
    names: dict[str, str],
    ctx: HookContext,
    outside: dict[int, str] | None = None,
) -> list[cst.BaseStatement]:
    """The region's statements for NNX (``names``: filled in as the model is found;
    ``outside``: filled with the calls after the step the map's templates rewrite, by id;
    None: such calls escape the step)."""
    micro = _micro_loop(region, ctx)
    if micro is not None:
        region = micro.region
    stepped = _stepped_optimizer(region)
    optimizer = code_of(stepped).strip()
    constructor = _one_value(stepped, ctx) or _rebuilt_constructor(stepped, region, ctx)
    built = _method_built(constructor, region, ctx)
    if built is not None:  # returned by a method of the model's class (build-nanogpt)
        constructor = built.constructor
    built_here = isinstance(constructor, cst.Call) and ctx.translates(constructor)
    # a parameter standing for itself (or stored in `self.x`, issue 12): maybe built in another
    # file (``_model_across_files``)
    parameter = isinstance(stepped, (cst.Name, cst.Attribute)) and isinstance(constructor, cst.Name)
    if not built_here and (region.gated or not parameter):
        raise Untranslatable(_untranslated_optimizer(stepped, constructor, ctx))
    trained: cst.BaseExpression | None = None
    others: OtherModels | None = None
    pulled: Pullback | None = None
    if isinstance(constructor, cst.Call) and built_here:
        step_statement, counted = _accumulated_check(region, constructor, ctx)
        forward, backward_index, tail = _forward(region, ctx)
        tail = [*tail, *_logged_before_check(region, backward_index, step_statement, counted)]
        tail = [*tail, *_logged(region, backward_index, step_statement, forward, ctx)]
        trained = built.model if built is not None else trained_model(constructor, ctx)
        trained = _stepping_self(trained, stepped, constructor, ctx)
        others = OtherModels(region, ctx, lambda a, b: _trains(a, b, ctx), trained)
        pulled = _generator_pullback(region, forward, trained, others, optimizer, ctx)
        if pulled is None:
            _check_not_under_with(region, forward, trained, ctx)
        model_node = _model_in_step(forward, trained, ctx, others, pulled)
        if pulled is not None:
            names["model"] = pulled.model
    else:  # a parameter: built in another file (``HookContext.trains_across_files``)
        step_statement, counted = region.anchor.statement, []
        forward, backward_index, tail = _forward(region, ctx)
        tail = [*tail, *_logged(region, backward_index, step_statement, forward, ctx)]
        model_node = _model_across_files(forward, stepped, ctx)  # type: ignore[arg-type]
    model = names["model"] = code_of(model_node).strip()
    prefix, forward = _split_prefix(forward, model_node)
    _check_no_data_object_in_loss(forward, ctx)
    for statement in forward:  # (in-place lines before the model's first use stay before it)
        _check_for_loss(statement, region, ctx)
    _check_prefix_untouched(prefix, optimizer, ctx)
    if micro is not None:
        _check_prefix_reads_no_forward_value(prefix, forward)
    model_zeroed, kept = _model_zeroed(region, backward_index, model_node, trained, optimizer, ctx)
    if not (region.zeroed or model_zeroed):
        raise Untranslatable(
            f"no `{optimizer}.zero_grad()` runs with each step (under the same loops and "
            "conditions): torch sums the gradients of several steps in .grad, nnx.value_and_grad "
            "computes fresh ones" + _zero_before_region(region, ctx)
        )
    if region.takes_metric:
        raise Untranslatable(
            f"`{optimizer}`'s chain ends in optax.contrib.reduce_on_plateau (ReduceLROnPlateau), "
            "which takes the metric at each update (`value=`) while torch gives it once per "
            "scheduler step; not rendered for NNX (measured, optax 0.2.8: its `patience` is "
            "torch's + 1, and torch skips a reduction smaller than `eps`, optax does not)"
        )
    _check_one_optimizer(region, optimizer, ctx, others)
    _check_one_backward(region, ctx, others, optimizer)
    _check_no_model_value_outside(region, forward, model_node, ctx)
    check_no_wrapper_attribute(forward, model_node, ctx)
    if others is not None:
        others.check_outputs(forward, {t.value for s in forward for t in _target_names(s)})
        others.computed_inside(forward, {t.value for s in forward for t in _target_names(s)})
        _check_others_plain(others, forward, region, micro is not None)
    pullbacks = _pullbacks(region, forward, others, ctx) if others is not None else {}
    for pullback in pullbacks.values():  # computed from a model the loss does not differentiate
        others.detached.add(pullback.output)  # type: ignore[union-attr]
    _check_after_backward(
        region, backward_index, model, optimizer, step_statement, [*counted, *tail], ctx
    )
    _check_backward(region, ctx)
    summed = _summed_losses(region, backward_index, forward, ctx)
    exact = _check_traceable(forward, ctx, others, model_node)
    exact.update(
        _check_namesakes_after(region, forward, tail, ctx, outside, prefix, model_node, others)
    )
    _check_no_torch_only_model_use(region, model_node, ctx)
    _check_known_calls(forward, model_node, ctx, others)
    _check_no_mapped_api(forward, optimizer, ctx)
    snapshots = _snapshots(tail, region, backward_index, ctx)
    _check_tail(tail, forward, region, model_node, optimizer, ctx, snapshots)
    _check_no_model_value_reaching(forward, model_node, ctx)
    after_backward = region.statements[backward_index + 1 :]
    running = micro.total if micro is not None else None
    rendered = _render(
        region,
        forward,
        after_backward,
        model_node,
        optimizer,
        ctx,
        tail,
        summed,
        running,
        others,
        snapshots,
        pullbacks,
        pulled,
    )
    if exact:
        rendered = [s.visit(ExactNamesakes(exact)) for s in rendered]  # type: ignore[misc]
        _request_template_imports(exact.values(), ctx)
    written_prefix = [s.visit(ExactNamesakes(exact)) for s in prefix] if exact else prefix
    statements = [*written_prefix, *rendered, *counted, *kept]  # type: ignore[list-item]
    statements = _with_dropped_comments(
        statements, region, prefix, [*forward, *tail, *counted, *kept]
    )
    if micro is None:
        return statements
    return _looped(statements, micro, len(prefix) + 3 + len(tail))


def _request_template_imports(texts: Iterable[str], ctx: HookContext) -> None:
    """The imports of the map's namesake templates (``jnp``) that ``texts`` use."""
    texts = list(texts)
    entries = [
        *ctx.semantic_map.array_namesakes.values(),
        *ctx.semantic_map.array_attributes.values(),
    ]
    for key in {k for n in entries for k in n.imports}:
        if any(re.search(rf"(?<![\w.]){key}\.", text) for text in texts):
            ctx.request_import(key)


def _method_built(
    value: cst.BaseExpression | None, region: Region, ctx: HookContext
) -> MethodBuilt | None:
    """For ``opt = model.method(...)``, a translated optimizer (``ctx.receiver_translated``)
    that a method of the model's class of this file returns: its constructor and the receiver
    (``method_built.py``); None for any other value. Not with a folded clip or a condition."""
    if not (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and not ctx.qualify(value.func)  # a method of a value, not a function of an import
        and not ctx.translates(value)
        and ctx.receiver_translated()
    ):
        return None
    if region.clipped or region.gated:
        raise Untranslatable(
            f"`{code_of(value.func).strip()}` returns the optimizer: a clip folded into its tx "
            "or a step under a condition is not done through a method"
        )
    return method_built(value, ctx)


@dataclass(frozen=True)
class _MicroLoop:
    """nanoGPT's micro-step loop: ``for micro_step in range(k):`` holding the forward and
    backward passes, the step after it. ``region``: the step's region with the loop's body in
    the loop's place (one micro step); ``total``: the name of the gradients' running sum."""

    loop: cst.For
    region: Region
    total: str
    first: bool  # the loop is the region's first statement
    # ``loss_accum = 0.0`` before the loop, summed in it (``_accumulator_start``): kept there
    starts: tuple[cst.BaseStatement, ...] = ()


def _micro_loop(region: Region, ctx: HookContext) -> _MicroLoop | None:
    """The micro-step loop holding the region's backward pass (directly in its body), when
    the backward pass is in a ``for`` statement of the region; None otherwise. Torch sums the
    backward passes of its iterations in .grad and steps once: exact as a running sum of the
    gradients when the loop runs at least once (``range(k)``, ``k`` an integer constant >= 1,
    ``Region.nonempty_loops``), has no ``else``, jump, zero_grad, step or gradient read, and
    only the optimizer's zero_grad() runs before it in the region."""
    backward = region.backward.statement  # type: ignore[union-attr]
    index = next((i for i, s in enumerate(region.statements) if _contains(s, backward)), None)
    loop = region.statements[index] if index is not None else None
    if not isinstance(loop, cst.For) or not isinstance(loop.body, cst.IndentedBlock):
        return None
    body = list(loop.body.body)
    if not any(s is backward for s in body):
        return None
    _check_micro_loop(loop, region, ctx)
    if region.gated:
        raise Untranslatable("a micro-step loop before a step under a condition: not translated")
    before = region.statements[:index]
    starts = tuple(s for s in before if _accumulator_start(s, body))
    for statement in before:
        if not _is_zero_grad(statement, ctx) and statement not in starts:
            raise Untranslatable(
                f"`{code_of(statement).strip()}` runs before the micro-step loop in the step: "
                "only a zero_grad() and a number a statement of the loop adds to "
                "(`loss_accum = 0.0`, `loss_accum += loss.item()`) are translated there"
            )
    zeroes = [s for s in before if s not in starts]
    flat = replace(region, statements=[*zeroes, *body, *region.statements[index + 1 :]])
    taken = _names_of([_scope(region)]) | ctx.visible_names(region.anchor.call)
    return _MicroLoop(loop, flat, fresh_name("grads_sum", taken), not before, starts)


def _accumulator_start(statement: cst.BaseStatement, body: list[cst.BaseStatement]) -> bool:
    """``loss_accum = 0.0`` before the micro-step loop whose body only adds to the name
    (``loss_accum += ...`` statements directly in it, the name read nowhere else in the loop,
    not even by what it adds): it runs once before the loop in both programs, and each
    addition reads the sum of the earlier ones whether it runs before the backward pass
    (torch) or after the gradient (NNX)."""
    small = _lone_small(statement)
    if not (
        isinstance(small, cst.Assign)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
        and isinstance(small.value, (cst.Integer, cst.Float))
    ):
        return False
    name = small.targets[0].target.value
    additions = [a for a in map(_lone_small, body) if _adds_to(a, name)]
    rest = [s for s in body if not _adds_to(_lone_small(s), name)]
    values = [a.value for a in additions]  # type: ignore[union-attr]
    return bool(additions) and name not in _names_of(rest) and name not in _names_of(values)


def _adds_to(small: cst.BaseSmallStatement | None, name: str) -> bool:
    """``name += ...``."""
    return (
        isinstance(small, cst.AugAssign)
        and isinstance(small.operator, cst.AddAssign)
        and isinstance(small.target, cst.Name)
        and small.target.value == name
    )


def _check_micro_loop(loop: cst.For, region: Region, ctx: HookContext) -> None:
    """The micro-step loop runs its body whole, at least once, and nothing in it zeroes,
    reads or applies the gradients summed so far."""
    shown = f"for {code_of(loop.target).strip()} in {code_of(loop.iter).strip()}"
    if loop.orelse is not None or loop.asynchronous is not None:
        raise Untranslatable(f"the micro-step loop `{shown}` has an `else:` or is async")
    if not any(loop is known for known in region.nonempty_loops):
        raise Untranslatable(
            f"the micro-step loop `{shown}` may run zero times (it is not over `range(k)` with "
            "`k` an integer constant >= 1): torch would step with no new gradient, the sum of "
            "the gradients would be empty"
        )
    zeroes = ctx.semantic_map.module_zero_grad_methods | {"zero_grad"}
    attributes = ctx.semantic_map.gradient_attributes
    for node in cst_walk.walk(loop.body):
        if isinstance(node, (cst.Break, cst.Continue, cst.Return, cst.Yield)):
            raise Untranslatable(
                f"`{code_of(node).strip()}` in the micro-step loop `{shown}`: not every "
                "iteration runs its backward pass"
            )
        method = node.func.attr.value if _is_method_call(node) else None  # type: ignore[attr-defined]
        if method in zeroes or method == "step":
            raise Untranslatable(
                f"`{code_of(node).strip()}` in the micro-step loop `{shown}`: the gradients "
                "are zeroed or applied between its backward passes"
            )
        if isinstance(node, cst.Attribute) and node.attr.value in attributes:
            raise Untranslatable(
                f"`{code_of(node).strip()}` is read in the micro-step loop `{shown}` (a "
                "partial sum of the gradients)"
            )


def _is_method_call(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)


def _check_prefix_reads_no_forward_value(
    prefix: list[cst.BaseStatement], forward: list[cst.BaseStatement]
) -> None:
    """In a micro-step loop, the statements before the loss function run in each iteration:
    none may read what the loss function computes (the last iteration's value in torch, a
    name local to the loss function in NNX)."""
    bound = {t.value for s in forward for t in _target_names(s)}
    read = bound & _variables_of(prefix)
    if read:
        raise Untranslatable(
            f"`{sorted(read)[0]}`, which the loss computes, is read before it in the "
            "micro-step loop"
        )


def _looped(
    statements: list[cst.BaseStatement], micro: _MicroLoop, inside: int
) -> list[cst.BaseStatement]:
    """``total = None``, then the micro-step loop with the first ``inside`` statements (the
    loss function, the gradient, the statements after it and the sum), the rest after it."""
    body, after = statements[:inside], statements[inside:]
    above = list(micro.region.statements[0].leading_lines)  # type: ignore[attr-defined]
    lines = list(body[0].leading_lines)  # type: ignore[attr-defined]
    if micro.first and above and lines[: len(above)] != above:
        body[0] = body[0].with_changes(leading_lines=[*above, *lines])
    outside = () if micro.first else micro.loop.leading_lines
    start = cst.parse_statement(f"{micro.total} = None\n").with_changes(leading_lines=outside)
    loop = micro.loop.with_changes(body=micro.loop.body.with_changes(body=body), leading_lines=())
    return [*micro.starts, start, loop, *after]


def _stepped_optimizer(region: Region) -> cst.BaseExpression:
    """``opt`` of ``opt.step()`` or ``scaler.step(opt)``: no closure, not under a condition."""
    anchor = region.anchor
    scaled = anchor.role == roles.SCALER_STEP
    arguments = anchor.call.args[1:] if scaled else anchor.call.args
    if arguments:
        raise Untranslatable(
            "`step(closure)` re-evaluates the loss inside the optimizer (LBFGS); "
            "nnx.Optimizer.update takes gradients"
        )
    optimizer = anchor.call.args[0].value if scaled and anchor.call.args else anchor.receiver
    if optimizer is None or dotted_name(optimizer) is None:
        raise Untranslatable("the stepped optimizer is not a name or `self.x`")
    return optimizer


def _accumulated_check(
    region: Region, constructor: cst.Call, ctx: HookContext
) -> tuple[cst.BaseStatement, list[cst.BaseStatement]]:
    """The region's statement holding the step: the step, or for a step every k backward
    passes the ``if`` around it, when the optimizer's tx accumulates them (optax.MultiSteps:
    the update then runs every batch and the ``if`` goes away); and the counter's increment
    when it runs between the backward pass and the ``if`` (kept after the update)."""
    if not region.gated:
        return region.anchor.statement, []
    found = accumulation(constructor, ctx)
    if not isinstance(found, Accumulation):
        reason = found or "the step runs under a condition that is not gradient accumulation"
        raise Untranslatable(reason)
    if not is_accumulated(ctx.translation_of(constructor), ctx):
        raise Untranslatable(
            "the step accumulates gradients, but the optimizer's tx is not optax.MultiSteps "
            "(a folded clipping outside the condition, or an lr write: not done with "
            "accumulation)"
        )
    if found.check is not region.statements[-1]:
        raise Untranslatable("the step's condition is not the region's last statement")
    inside = any(found.increment is s for s in region.statements)
    return found.check, [found.increment] if inside and found.increment is not None else []


def _model_zeroed(
    region: Region,
    backward_index: int,
    model: cst.BaseExpression,
    trained: cst.BaseExpression | None,
    optimizer: str,
    ctx: HookContext,
) -> tuple[bool, list[cst.BaseStatement]]:
    """Whether the region zeroes the trained model's gradients before its backward pass or
    right after its step (``model.zero_grad()``, a method of the map's
    ``module_zero_grad_methods``, on the very model the optimizer is built over: its gradients
    are exactly the optimizer's), and the zero after the step kept as written (another
    model's: torch code, after the update). The zero calls the loss function drops are the
    optimizer's and the trained model's only; another object's zero before the backward
    (another model, a model holding more than the optimizer's parameters) escapes, as does a
    model's zero where the step runs under a condition (accumulation)."""
    methods = ctx.semantic_map.module_zero_grad_methods
    zeroed = False
    after_step = _trailing_module_zero(region, ctx)
    kept: list[cst.BaseStatement] = []
    for statement in [*region.statements[:backward_index], *after_step]:
        call = _lone_call(statement)
        if call is None or not _is_zero_grad(statement, ctx):
            continue
        if ctx.zero_call(statement) is not None:
            problem = _zero_function_problem(statement, ctx)
            if problem is not None:
                raise Untranslatable(problem)
            continue  # region.zeroed tells whether it zeroes the stepped optimizer each step
        receiver = call.func.value  # type: ignore[attr-defined]
        if dotted_name(receiver) == optimizer:
            continue  # the stepped optimizer's own zero_grad()
        shown = code_of(statement).strip()
        trains = call.func.attr.value in methods and _same_model(receiver, model, trained, ctx)  # type: ignore[attr-defined]
        if not trains and any(statement is s for s in after_step):
            kept.append(statement)
            continue
        if not trains:
            raise Untranslatable(
                f"`{shown}` zeroes the gradients of `{code_of(receiver).strip()}`, not exactly "
                f"those of `{optimizer}` (the parameters of `{code_of(model).strip()}`): it is "
                "not the step's zero_grad, and the step's statements are not translated one by one"
            )
        if region.gated:
            raise Untranslatable(
                f"`{shown}` zeroes the gradients at every backward pass while the step runs "
                "under a condition: not gradient accumulation"
            )
        zeroed = True
    return zeroed, kept


def _zero_before_region(region: Region, ctx: HookContext) -> str:
    """`` (`netD.zero_grad()` runs before `noise.data.normal_(0, 1)`, ...)``: a zero_grad()
    earlier in the region's block, cut off from the step by the statement right before the
    region (one the loss function cannot take in); "" when there is none."""
    block = ctx.parent_of(region.statements[0])
    body = list(getattr(block, "body", ()))
    start = next((i for i, s in enumerate(body) if s is region.statements[0]), 0)
    zero = next((s for s in body[:start] if _is_zero_grad(s, ctx)), None)
    if zero is None:
        return ""
    return (
        f" (`{_shown(zero)}` runs earlier in this block, but the step's statements start "
        f"after `{_shown(body[start - 1])}`, which neither binds a name the loss reads (nor "
        "changes one in place, alone on its line) nor only records values: a change the loss "
        "function cannot take in, where it would run traced)"
    )


def _shown(statement: cst.BaseStatement) -> str:
    """A statement's code for a reason: without its comments, shortened."""
    return _short(code_of(statement.with_changes(leading_lines=())).strip())


def _changed_in_place(statement: cst.BaseStatement, read_later: set[str], ctx: HookContext) -> str:
    """Why an in-place method call on a name the loss reads after it stays out of the loss
    function (not ``_in_place_for_loss``: ``label.fill_(x.mean())``); "" for any other
    statement."""
    call = _lone_call(statement)
    suffix = ctx.semantic_map.in_place_suffix
    if call is None or not suffix or not isinstance(call.func, cst.Attribute):
        return ""
    root = (dotted_name(call.func.value) or "").split(".")[0]
    if not call.func.attr.value.endswith(suffix) or root not in read_later:
        return ""
    return (
        f"`{_shown(statement)}` changes `{root}` in place between forward passes of the loss "
        "that read it; the loss function takes in only an in-place change of a plain name "
        "(not a model) by names and numbers, and before or after it every pass would read one "
        f"value of `{root}`"
    )


def _trailing_module_zero(region: Region, ctx: HookContext) -> list[cst.BaseStatement]:
    """The region's last statement when it is a module's zero after the step
    (``opt.step(); model.zero_grad()``)."""
    last = region.statements[-1]
    call = _lone_call(last)
    if (
        last is region.anchor.statement
        or call is None
        or not isinstance(call.func, cst.Attribute)
        or call.func.attr.value not in ctx.semantic_map.module_zero_grad_methods
    ):
        return []
    return [last]


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


def _logged_before_check(
    region: Region,
    backward_index: int,
    step_statement: cst.BaseStatement,
    counted: list[cst.BaseStatement],
) -> list[cst.BaseStatement]:
    """For a step every k backward passes: the statements between the backward pass and the
    step's condition but the counter (``accumulation`` let only logging there: it runs after
    the gradient, before the update, as in torch after the backward and before the step)."""
    if step_statement is region.anchor.statement:
        return []
    between = region.statements[backward_index + 1 : -1]
    return [s for s in between if not any(s is kept for kept in counted)]


def _logged(
    region: Region,
    backward_index: int,
    step_statement: cst.BaseStatement,
    forward: list[cst.BaseStatement],
    ctx: HookContext,
) -> list[cst.BaseStatement]:
    """The statements between the backward pass and the step that only record values
    (``logged.logged_after_backward``): run after the gradient, before the update."""
    computed = {t.value for s in forward for t in _target_names(s)}
    return logged_after_backward(region, backward_index, step_statement, computed, ctx)


def _split_prefix(
    forward: list[cst.BaseStatement], model: cst.BaseExpression
) -> tuple[list[cst.BaseStatement], list[cst.BaseStatement]]:
    """The leading statements that do not use the model (``x = x.to(device)``) stay before
    the loss function; the rest is its body."""
    root = (dotted_name(model) or "").split(".")[0]
    for index, statement in enumerate(forward):
        if root in _variables_of([statement]):
            return forward[:index], forward[index:]
    return forward, []


def _check_prefix_untouched(
    prefix: list[cst.BaseStatement], optimizer: str, ctx: HookContext
) -> None:
    """The statements kept before the loss function are emitted as written: none may use the
    optimizer, an API of the map or a value one builds (``sched.get_last_lr()``)."""
    _check_no_mapped_api(prefix, optimizer, ctx)
    for node in (n for s in prefix for n in cst_walk.walk(s)):
        value = _one_value(node, ctx) if isinstance(node, cst.Name) else None
        if isinstance(value, cst.Call) and any(
            q in ctx.semantic_map.apis for q in ctx.qualify(value.func)
        ):
            raise Untranslatable(
                f"`{node.value}` (built by an API of the map) is used by a statement of the "
                "step before the loss; the step's statements are not translated one by one"
            )


def _check_traceable(
    forward: list[cst.BaseStatement],
    ctx: HookContext,
    others: OtherModels | None,
    model: cst.BaseExpression | None = None,
) -> dict[str, str]:
    """The loss function's body runs traced on JAX arrays: no ``.item()``, no method a JAX
    array has under a torch name with other numbers or lacks (the map's ``array_namesakes``,
    ``array_lacks``), but for the ``.detach()`` of other models' outputs the render drops, and
    a namesake the map's ``exact`` template writes on a name the loss function computes
    (returned: the call's code to its JAX text)."""
    if not forward:
        raise Untranslatable("the loss does not use the model")
    if any(_calls_method(statement, "item") for statement in forward):
        raise Untranslatable("`.item()` in the forward pass (a traced value has no number)")
    body = [others.without_detach(s) for s in forward] if others is not None else forward
    calls = [n for s in body for n in cst_walk.walk(s) if isinstance(n, cst.Call)]
    arrays = {t.value for s in forward for t in _target_names(s)}
    exact, written = _exact_texts(calls, body, arrays, ctx, _model_output_calls(calls, model))
    for call in (c for c in calls if id(c) not in written):
        problem = namesake_problem(call, ctx.semantic_map.array_namesakes, ctx.qualify)
        if problem is not None:
            raise Untranslatable(f"in the forward pass (the loss function): {problem}")
    nodes = [n for s in body for n in cst_walk.walk(s)]
    for node in (n for n in nodes if isinstance(n, cst.Attribute)):
        problem = _array_problem(node, nodes, ctx)
        if problem is not None and _variable_names(node.value) & arrays:
            raise Untranslatable(f"in the forward pass (the loss function): {problem}")
    return exact


def _exact_texts(
    calls: list[cst.Call],
    statements: Sequence[cst.BaseStatement],
    arrays: set[str],
    ctx: HookContext,
    outputs: frozenset[int] = frozenset(),
) -> tuple[dict[str, str], set[int]]:
    """The calls of ``array_namesakes`` on ``arrays`` the map's ``exact`` writes in JAX with
    torch's numbers (code -> JAX text, and their ids); none whose result an attribute is read
    of (``out.max(1).indices``: such a call with the same code escapes the step)."""
    read = attribute_receivers(statements)
    namesakes = ctx.semantic_map.array_namesakes
    texts, written = {}, set()
    for call in calls:
        text = exact_text(call, namesakes, arrays, ctx.qualify, read=read, outputs=outputs)
        if text is not None:
            texts[code_of(call).strip()] = text
            written.add(id(call))

    return texts, written


_NESTED = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


def _check_namesakes_after(
    region: Region,
    forward: list[cst.BaseStatement],
    tail: Sequence[cst.BaseStatement],
    ctx: HookContext,
    outside: dict[int, str] | None = None,
    prefix: Sequence[cst.BaseStatement] = (),
    model: cst.BaseExpression | None = None,
    others: OtherModels | None = None,
) -> dict[str, str]:
    """What the loss function computes comes out of the gradient as JAX arrays, and what it
    reads (the batch: ``_data_names``) is one too for the NNX model to run on it: a method of
    the map's ``array_namesakes`` called with other numbers on one of those names (or on a
    name assigned from one) in a statement the step runs after the gradient (``tail``:
    ``spread = out.std().item()``) or elsewhere in the step's scope, outside the step
    (``_, pred = out.max(1)`` after it), computes other numbers than torch (s22b); in
    ``tail`` unless the map's ``exact`` writes it (returned: the call's code to its JAX text);
    outside the step unless it comes after the step's first statement on a name every binding
    of which the loss function computes, and the map's template after the update writes it
    (put in ``outside`` by id: ``out.cpu()`` -> ``out``; s23a); one the map's ``array_lacks``
    raises. A ``x.detach()`` in another training step of the scope is not checked: a converted
    step reading ``fake.detach()`` reads ``fake`` (``OtherModels.without_detach``). A binding
    by a call of a ported model (this step's or another translated optimizer's: ``fake =
    netG(fixed_noise)`` after the steps, a JAX array) counts as one of the loss function's."""
    scope = _scope(region)
    inside = {id(n) for s in region.statements for n in cst_walk.walk(s)}
    roots = scope.body.body if isinstance(scope, cst.FunctionDef) else [scope]  # type: ignore[attr-defined]
    walked = [n for r in roots for n in cst_walk.walk(r, _NESTED)]
    start = next((i for i, n in enumerate(walked) if n is region.statements[0]), len(walked))
    outside_nodes = [n for n in walked if id(n) not in inside]
    later = {id(n) for n in walked[start:] if id(n) not in inside}
    prefix_nodes = [n for s in prefix for n in cst_walk.walk(s, _NESTED)]  # checked, not written
    computed = {t.value for s in forward for t in _target_names(s)} | {region.loss}
    rendered = [_added_undetached(s, computed) for s in tail]  # `acc += loss.detach()`: exact
    nodes = [*(n for s in rendered for n in cst_walk.walk(s, _NESTED)), *outside_nodes]
    nodes += prefix_nodes
    stepped = _in_other_steps(outside_nodes, ctx)
    undetached = {
        id(n) for n in outside_nodes if id(n) in stepped and _calls_method_named(n, DETACH)
    }
    stores = [(n, _stored_value(n)) for n in nodes]
    returned = _assigned_from(stores, computed)  # what the loss function computes, and values of it
    computed = _assigned_from(
        stores, computed | _sources(stores, _data_names(forward, model, ctx), ctx)
    )
    in_tail = [n for s in rendered for n in cst_walk.walk(s, _NESTED)]
    tail_texts = _after_update_texts(in_tail, lambda name: name.value in computed, ctx)
    prefix_texts = _any_array_texts(prefix_nodes, computed, ctx)  # `n = x.size(0)`
    tail_texts.update(prefix_texts)
    by_id = {id(n): n for n in [*in_tail, *prefix_nodes]}
    exact = {code_of(by_id[key]).strip(): text for key, text in tail_texts.items()}
    written = set(tail_texts)
    if outside is not None:
        after = [n for n in outside_nodes if id(n) in later and id(n) not in stepped]
        assigned = {id(n) for s in forward for n in cst_walk.walk(s)}
        assigned |= _before_backwards(walked, ctx)
        assigned |= _ported_outputs(walked, model, others)
        bound = partial(_bound_in, assigned=assigned, ctx=ctx, unpacked=_unpacked(walked))
        while True:  # `_, pred = out.max(1)` rewritten: `pred.eq(y)` may be, to a fixpoint
            texts = _after_update_texts(
                after,
                lambda n: n.value in computed and bound(n),
                ctx,
                lambda n: n.value in computed,
            )
            if set(texts) <= assigned:
                break
            assigned |= set(texts)
        outside.update(texts)
        before = [n for n in outside_nodes if id(n) not in later and id(n) not in stepped]
        outside.update(_any_array_texts(before, computed, ctx))
        written |= set(outside)
    skipped = written | undetached | _other_steps_any_array(nodes, stepped, ctx)
    for node in (n for n in nodes if id(n) not in skipped):
        problem = _array_problem(node, nodes, ctx)
        receiver = _receiver(node)
        # An attribute a JAX array lacks (`label.data`) on the batch only: a port feeding JAX
        # arrays raises there, one keeping torch buffers (the old DCGAN) runs as torch does;
        # never other numbers (s23int).
        arrays = returned if isinstance(node, cst.Attribute) else computed
        if problem is not None and receiver is not None and _variable_names(receiver) & arrays:
            raise Untranslatable(
                f"a value the loss function returns or reads is a JAX array: {problem}"
            )
    forward_nodes = [n for s in forward for n in cst_walk.walk(s, _NESTED)]
    _check_no_shared_change([*forward_nodes, *nodes], computed, ctx, returned)
    after_update = [*in_tail, *(n for n in outside_nodes if id(n) in later)]
    outputs = _assigned_from(stores, _model_output_names(forward, model) | {region.loss})
    _check_no_in_place_call(after_update, outputs, ctx)
    return exact


def _ported_outputs(
    nodes: Sequence[cst.CSTNode], model: cst.BaseExpression | None, others: OtherModels | None
) -> set[int]:
    """Ids of the values of ``nodes`` that call a model the translation ports to NNX by name
    (``model(x)``, the trained one, or ``netG(z)``, another translated optimizer's): JAX
    arrays wherever they are computed."""
    trained = model.value if isinstance(model, cst.Name) else None
    found: set[int] = set()
    for node in nodes:
        value = _stored_value(node)
        if not isinstance(value, cst.Call) or not isinstance(value.func, cst.Name):
            continue
        if value.func.value == trained or (others is not None and others.other_model(value.func)):
            found.add(id(value))
    return found


def _model_output_names(
    forward: Sequence[cst.BaseStatement], model: cst.BaseExpression | None
) -> set[str]:
    """The names the loss function's statements assign from a value calling the trained model
    (``out = model(x)``: JAX arrays once the step runs)."""
    root = (dotted_name(model) or "").partition(".")[0] if model is not None else ""
    found: set[str] = set()
    for node in (n for s in forward for n in cst_walk.walk(s, _NESTED)):
        value = _stored_value(node)
        calls = (n for n in cst_walk.walk(value) if isinstance(n, cst.Call)) if value else ()
        if root and any((dotted_name(c.func) or "").partition(".")[0] == root for c in calls):
            found |= _stored_names(node)
    return found


def _check_no_in_place_call(
    nodes: Sequence[cst.CSTNode], outputs: set[str], ctx: HookContext
) -> None:
    """An in-place method (the map's ``in_place_suffix``: ``out.add_(1)``, ``loss.clamp_(0,
    1)``, also through a view or an item: ``out[0].mul_(2)``) called after the update on the
    model's output or the loss (``outputs``, JAX arrays there: they have none) raised
    AttributeError when the translation ran (s24b): the step escapes naming the call."""
    suffix = ctx.semantic_map.in_place_suffix or "_"
    views = ctx.semantic_map.array_views
    for node in (n for n in nodes if isinstance(n, cst.Call)):
        changed = _shared_change_of(node, suffix, views)
        if changed is not None and changed in outputs:
            raise Untranslatable(
                f"`{code_of(node).strip()}` changes `{changed}` in place after the update; it"
                " is a JAX array there, which has no in-place methods: write"
                f" `{changed} = <the new value>` (a JAX array's `.at[...].set(...)` for an item)"
            )


def _assigned_from(
    stores: Sequence[tuple[cst.CSTNode, cst.BaseExpression | None]], names: set[str]
) -> set[str]:
    """``names`` and the names assigned from one of them, to a fixpoint."""
    found = set(names)
    while True:
        more = {
            name
            for node, value in stores
            if value is not None and _variable_names(value) & found
            for name in _stored_names(node)
        } - found
        if not more:
            return found
        found |= more


def _check_no_shared_change(
    nodes: Sequence[cst.CSTNode],
    computed: set[str],
    ctx: HookContext,
    returned: set[str] | None = None,
) -> None:
    """A name bound to a value of ``computed`` or to a view of one (the map's
    ``array_views``: ``keep = out.detach()``, ``row = out[0]``), or such a value, changed in
    place (``keep += 1``, ``keep[0] = 5``, ``keep.add_(1)``) changes the other too in torch,
    never with JAX arrays (s23int: ``keep = out.detach(); keep += 1`` after the step, ``out``
    recorded: 0.785 relative off torch over 36 updates). Bindings by a conditional, a walrus,
    a dict, a ``for`` loop or a comprehension (rows of a tensor are views of it) and values
    passed to a function (``torch.squeeze(out)``, ``list(out)``) count too (s24d: ``keep =
    out if c else None``, ``(keep := out.detach())``, ``d = {"o": out}`` then changed in place
    converted, 0.785 relative off torch each). A loop binds views only over ``returned``
    (values of the loss function): a batch of the loader is a new tensor (DCGAN's
    ``noise.normal_(0, 1)``). The step escapes naming the change."""
    views = ctx.semantic_map.array_views
    shared: set[str] = set()
    for node in nodes:
        value = None if isinstance(node, cst.AugAssign) else _stored_value(node)
        names = _shared_names(value, views) & computed if value is not None else set()
        if isinstance(node, (cst.For, cst.CompFor)):
            names &= returned if returned is not None else computed
        if names:
            shared |= names | _stored_names(node)
    if not shared:
        return
    suffix = ctx.semantic_map.in_place_suffix or "_"
    for node in nodes:
        changed = _shared_change_of(node, suffix, views)
        if changed is not None and changed in shared:
            raise Untranslatable(
                f"`{code_of(node).strip()}` changes `{changed}` in place, which shares its memory"
                " with a value of the step in torch (a view, `x.detach()`, the same tensor);"
                " JAX arrays are never changed in place: the other name would keep its value"
            )


def _shared_names(value: cst.BaseExpression, views: frozenset[str]) -> set[str]:
    """The variables ``value`` may share memory with: a name, an item (``x[0]``), a view
    (``x.detach()``, ``x.data``), each element of a tuple, list, set or dict, either branch of
    a conditional or ``or``, a walrus's value, what a comprehension iterates or yields, and
    the arguments of a view function (``torch.squeeze(out)``) or of a Python builtin
    (``max(out)``, ``list(out)``: items of a tensor are views). Not seen: a function of the
    user's returning its argument (a model's output is a new tensor: ``fake = netG(noise)``)."""
    if isinstance(value, cst.Name):
        return {value.value}
    if isinstance(value, (cst.Tuple, cst.List, cst.Set, cst.Dict)):
        return set().union(*(_shared_names(e.value, views) for e in value.elements))
    if isinstance(value, (cst.Subscript, cst.NamedExpr)):
        return _shared_names(value.value, views)
    if isinstance(value, cst.Attribute) and value.attr.value in views:
        return _shared_names(value.value, views)
    if isinstance(value, cst.IfExp):
        return _shared_names(value.body, views) | _shared_names(value.orelse, views)
    if isinstance(value, cst.BooleanOperation):
        return _shared_names(value.left, views) | _shared_names(value.right, views)
    if isinstance(value, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
        return _comprehension_shares(value, views)
    if isinstance(value, cst.Call):
        passed = set().union(*(_shared_names(a.value, views) for a in value.args))
        if isinstance(value.func, cst.Attribute) and value.func.attr.value in views:
            return _shared_names(value.func.value, views) | passed
        if isinstance(value.func, cst.Name) and hasattr(builtins, value.func.value):
            return passed  # `list(out)`, `next(iter(out))`, `max(out)`: its items, views
        return set()
    return set()


def _comprehension_shares(
    value: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp, views: frozenset[str]
) -> set[str]:
    """What a comprehension's items may share memory with: what it iterates (the rows of a
    tensor are views of it) and what its item reads as a view."""
    items = [value.key, value.value] if isinstance(value, cst.DictComp) else [value.elt]
    shared = set().union(*(_shared_names(item, views) for item in items))
    loop: cst.CompFor | None = value.for_in
    while loop is not None:
        shared |= _shared_names(loop.iter, views)
        loop = loop.inner_for_in
    return shared


def _shared_change_of(node: cst.CSTNode, suffix: str, views: frozenset[str]) -> str | None:
    """The variable an augmented assignment, an item or attribute store, or an in-place method
    (``x.add_(1)``: the map's ``in_place_suffix``) changes in place, through views of it
    (``x.detach().mul_(2)``); None: no such change."""
    targets: list[cst.BaseExpression] = []
    if isinstance(node, cst.AugAssign):
        targets = [node.target]
    elif isinstance(node, cst.Assign):
        stores = [t.target for t in node.targets]
        targets = [t for t in stores if isinstance(t, (cst.Subscript, cst.Attribute))]
    elif (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value.endswith(suffix)
        and not node.func.attr.value.startswith("__")
    ):
        targets = [node.func.value]
    for target in targets:
        while True:
            if isinstance(target, (cst.Subscript, cst.Attribute)):
                target = target.value
            elif isinstance(target, cst.Call) and _shared_names(target, views):
                target = target.func.value  # type: ignore[attr-defined]  # `x.detach().mul_(2)`
            else:
                break
        if isinstance(target, cst.Name):
            return target.value
    return None


def _array_problem(node: cst.CSTNode, nodes: Sequence[cst.CSTNode], ctx: HookContext) -> str | None:
    """What a call of the map's ``array_namesakes`` (``array_lacks``) or a read of one of its
    ``array_attributes`` (``out.data``) does on a JAX array (None: nothing the map names)."""
    if isinstance(node, cst.Call):
        return namesake_problem(node, ctx.semantic_map.array_namesakes, ctx.qualify)
    entry = (
        ctx.semantic_map.array_attributes.get(node.attr.value)
        if isinstance(node, cst.Attribute)
        else None
    )
    if entry is None or any(isinstance(n, cst.Call) and n.func is node for n in nodes):
        return None
    return f"`{code_of(node).strip()}` runs on JAX arrays there: {entry.reason}"


def _in_other_steps(nodes: Sequence[cst.CSTNode], ctx: HookContext) -> set[int]:
    """Ids of ``nodes`` inside a statement of another training-step region of the file."""
    found: set[int] = set()
    for node in nodes:
        if isinstance(node, cst.BaseStatement) and ctx.region_at(node) is not None:
            found.update(id(n) for n in cst_walk.walk(node))
    return found


def _before_backwards(nodes: Sequence[cst.CSTNode], ctx: HookContext) -> set[int]:
    """Ids of ``nodes`` inside a statement of a training step of the file before its backward
    pass (this step's or another's: ``d_loss`` of a GAN's other step, a JAX array once that
    step is converted or ported as its escape says; ``real_scores = real_out`` beside the
    loss)."""
    found: set[int] = set()
    for node in (n for n in nodes if isinstance(n, cst.BaseStatement)):
        other = ctx.region_at(node)
        if other is None or other.backward is None:
            continue
        backward = other.backward.statement
        index = next((i for i, s in enumerate(other.statements) if s is backward), None)
        if index is not None and any(s is node for s in other.statements[:index]):
            found.update(id(n) for n in cst_walk.walk(node))
    return found


def _after_update_texts(
    nodes: Sequence[cst.CSTNode],
    receivable: Callable[[cst.Name], bool],
    ctx: HookContext,
    covered: Callable[[cst.Name], bool] | None = None,
) -> dict[int, str]:
    """The calls and attribute reads of ``nodes`` (statements after the gradient) the map's
    templates after the update write (by id: their JAX text): on a ``receivable`` name (after
    the step: one whose every binding is an assignment of the loss function's statements,
    ``_bound_in``), or on such a read written as a name (``output.cpu().data`` -> ``output``),
    or, for a template of any array (``any_array``: ``y.size(0)``), on a ``covered`` name (one
    the step's check covers: the batch too); not a tuple read for an attribute
    (``out.max(1).indices``) nor a store (``out.data = y``)."""
    read = attribute_receivers(nodes)
    called = {id(n.func) for n in nodes if isinstance(n, cst.Call)}
    called |= {id(n) for t in _store_targets(nodes) for n in cst_walk.walk(t)}  # `out.data = y`
    namesakes = ctx.semantic_map.array_namesakes
    attributes = ctx.semantic_map.array_attributes
    texts: dict[int, str] = {}
    for node in reversed(nodes):  # (pre-order reversed: a receiver before what reads it)
        receiver = _receiver(node)
        if receiver is None or id(node) in called:
            continue
        x = _receiver_text(receiver, texts, receivable)
        if x is None and _any_array_receiver(receiver, node, covered, ctx):
            x = receiver.value  # type: ignore[attr-defined]  # a Name
        text = after_text(node, x, namesakes, attributes, read) if x is not None else None
        if text is not None:
            texts[id(node)] = text
    return texts


def _other_steps_any_array(
    nodes: Sequence[cst.CSTNode], stepped: set[int], ctx: HookContext
) -> set[int]:
    """Ids of the reads of an ``any_array`` template in another step's statements
    (``stepped``): that step writes them (``num = x.size(0)`` as its prefix) or escapes."""
    semantic_map = ctx.semantic_map
    namesakes, attributes = semantic_map.array_namesakes, semantic_map.array_attributes
    return {id(n) for n in nodes if id(n) in stepped and any_array_read(n, namesakes, attributes)}


def _any_array_texts(
    nodes: Sequence[cst.CSTNode], covered: set[str], ctx: HookContext
) -> dict[int, str]:
    """The reads of ``nodes`` (the step's scope before it) the map's templates of any array
    write (``num = x.size(0)`` -> ``num = x.shape[0]``: the same int on a torch tensor) on a
    name of ``covered``, by id."""
    return _after_update_texts(nodes, lambda name: False, ctx, lambda n: n.value in covered)


def _any_array_receiver(
    receiver: cst.BaseExpression,
    node: cst.CSTNode,
    covered: Callable[[cst.Name], bool] | None,
    ctx: HookContext,
) -> bool:
    """Whether ``node`` reads an ``any_array`` entry of the map on a ``covered`` name."""
    if covered is None or not isinstance(receiver, cst.Name) or not covered(receiver):
        return False
    semantic_map = ctx.semantic_map
    return any_array_read(node, semantic_map.array_namesakes, semantic_map.array_attributes)


def _store_targets(nodes: Sequence[cst.CSTNode]) -> list[cst.CSTNode]:
    """What the assignments, ``for`` loops and ``del`` statements of ``nodes`` store into."""
    targets: list[cst.CSTNode] = []
    for node in nodes:
        if isinstance(node, cst.Assign):
            targets.extend(t.target for t in node.targets)
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor, cst.Del)):
            targets.append(node.target)
    return targets


def _receiver(node: cst.CSTNode) -> cst.BaseExpression | None:
    """``x`` of ``x.m(...)`` or ``x.a`` (None for other nodes)."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        return node.func.value
    return node.value if isinstance(node, cst.Attribute) else None


def _receiver_text(
    receiver: cst.BaseExpression, texts: Mapping[int, str], receivable: Callable[[cst.Name], bool]
) -> str | None:
    """A ``receivable`` name, or a rewritten read whose text is a name."""
    if isinstance(receiver, cst.Name):
        return receiver.value if receivable(receiver) else None
    text = texts.get(id(receiver))
    return text if text is not None and text.isidentifier() else None


def _bound_in(
    name: cst.Name,
    *,
    assigned: set[int],
    ctx: HookContext,
    unpacked: Mapping[str, list[cst.BaseExpression]],
) -> bool:
    """Whether every binding of ``name``'s variable assigns a value among ``assigned``: its
    bindings by a value, and as many unpackings of its scope (``unpacked``: ``_, pred =
    out.max(1)``, a binding without a value of its own) as it has bindings without one."""
    variable = ctx.variable(name)
    if variable is None or not variable.values:
        return False
    values = [value for value in variable.values if value is not None]
    sites = unpacked.get(name.value, [])
    if len(variable.values) - len(values) != len(sites):
        return False  # a loop target, a parameter, an unpacking elsewhere...
    return all(id(value) in assigned for value in (*values, *sites))


def _unpacked(nodes: Sequence[cst.CSTNode]) -> dict[str, list[cst.BaseExpression]]:
    """For each name a flat tuple or list target of an assignment of ``nodes`` binds, the
    value of each such assignment (``_, pred = out.max(1)``: ``pred`` -> ``out.max(1)``)."""
    found: dict[str, list[cst.BaseExpression]] = {}
    for node in (n for n in nodes if isinstance(n, cst.Assign)):
        for target in (t.target for t in node.targets):
            if isinstance(target, (cst.Tuple, cst.List)):
                for element in target.elements:
                    if isinstance(element, cst.Element) and isinstance(element.value, cst.Name):
                        found.setdefault(element.value.value, []).append(node.value)
    return found


def _data_names(
    forward: Sequence[cst.BaseStatement], model: cst.BaseExpression | None, ctx: HookContext
) -> set[str]:
    """The variables the loss function reads but does not compute (the batch ``x``, ``y``):
    JAX (or NumPy) arrays for the translated step to run, so torch's namesakes on them
    compute other numbers anywhere (s23d: ``y.std()`` after the step 0.044 relative off
    torch). Not the model's root name (nor ``self``, a called function, an import)."""
    bound = {t.value for s in forward for t in _bound_names(s)}
    root = (dotted_name(model) or "").partition(".")[0] if model is not None else ""
    return set().union(*(_read_names(s, ctx) for s in forward)) - bound - {root}


def _read_names(node: cst.CSTNode, ctx: HookContext) -> set[str]:
    """Variables read under ``node`` (``_variable_names``) but the functions it calls by
    name, imports, builtins and ``self``."""
    nodes = list(cst_walk.walk(node, _NESTED))
    called = {id(n.func) for n in nodes if isinstance(n, cst.Call)}
    names = [n for n in nodes if isinstance(n, cst.Name) and id(n) not in called]
    kept = {n.value for n in names if not ctx.qualify(n)}
    return (kept & _variable_names(node)) - set(dir(builtins)) - {"self"}


def _sources(
    stores: Sequence[tuple[cst.CSTNode, cst.BaseExpression | None]],
    names: set[str],
    ctx: HookContext,
) -> set[str]:
    """``names`` and, to a fixpoint, the variables read by a value stored into one of them
    (``t = y.max(0)[0]`` before the step: ``y`` is an array if ``t`` is)."""
    found = set(names)
    while True:
        more = {
            name
            for node, value in stores
            if value is not None and _stored_names(node) & found
            for name in _read_names(value, ctx)
        } - found
        if not more:
            return found
        found |= more


def _check_no_torch_only_model_use(
    region: Region, model: cst.BaseExpression, ctx: HookContext
) -> None:
    """The step's scope reads no attribute of the model (or of a module of it) that an NNX
    module lacks (the map's ``torch_only_module_names``: ``model.parameters()``,
    ``model.out.weight``) but in a call of an API of the map (the optimizer's constructor, a
    clip), which the translation rewrites: the NNX program would raise there."""
    names = ctx.semantic_map.torch_only_module_names
    text = dotted_name(model)
    if not names or text is None:
        return
    scope = _scope(region)
    roots = scope.body.body if isinstance(scope, cst.FunctionDef) else [scope]  # type: ignore[attr-defined]
    nodes = [n for r in roots for n in cst_walk.walk(r, _NESTED)]
    apis = ctx.semantic_map.apis
    mapped = {
        id(inner)
        for call in nodes
        if isinstance(call, cst.Call) and any(q in apis for q in ctx.qualify(call.func))
        for inner in cst_walk.walk(call)
    }
    reads = [n for n in nodes if isinstance(n, cst.Attribute) and id(n) not in mapped]
    for node in (n for n in reads if n.attr.value in names):
        owner = dotted_name(node.value) or ""
        if owner == text or owner.startswith(f"{text}."):
            raise Untranslatable(
                f"`{code_of(node).strip()}` reads the model as a torch module: the NNX model "
                f"has no `{node.attr.value}` (the translation would raise there); port this "
                "use by hand (`nnx.state(model, nnx.Param)` holds the parameters)"
            )


def _stored_value(node: cst.CSTNode) -> cst.BaseExpression | None:
    """The value an assignment or a ``for`` loop stores (None for other nodes)."""
    if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.NamedExpr)):
        return node.value
    if isinstance(node, (cst.For, cst.CompFor)):
        return node.iter
    return None


def _stored_names(node: cst.CSTNode) -> set[str]:
    """The names an assignment or a ``for`` loop binds (in tuples too)."""
    targets: list[cst.CSTNode] = []
    if isinstance(node, cst.Assign):
        targets = [t.target for t in node.targets]
    elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.NamedExpr, cst.For, cst.CompFor)):
        targets = [node.target]
    return {
        n.value
        for t in targets
        for n in cst_walk.walk(t)
        if isinstance(n, cst.Name) and isinstance(t, (cst.Name, cst.Tuple, cst.List))
    }


def _with_dropped_comments(
    statements: list[cst.BaseStatement],
    region: Region,
    prefix: list[cst.BaseStatement],
    forward: list[cst.BaseStatement],
) -> list[cst.BaseStatement]:
    """The comments of the region's dropped statements (zero_grad, backward, step...) kept:
    those before the loss function's body above it, the others above the gradient. The lines
    above the region's first statement are left out: the engine puts them above the output."""
    kept = {id(s) for s in (*prefix, *forward)}
    before: list[cst.EmptyLine] = []
    after: list[cst.EmptyLine] = []
    seen_body = False
    for statement in region.statements:
        seen_body = seen_body or statement is forward[0]
        if id(statement) in kept:
            continue
        lines = _comment_lines(statement, leading=statement is not region.statements[0])
        (after if seen_body else before).extend(lines)
    index = len(prefix)  # the loss function
    statements[index] = _above(statements[index], before)
    statements[index + 1] = _above(statements[index + 1], after)
    first, above_region = statements[0], list(region.statements[0].leading_lines)  # type: ignore[attr-defined]
    lines = list(first.leading_lines)  # type: ignore[attr-defined]
    if above_region and lines[: len(above_region)] == above_region:
        statements[0] = first.with_changes(leading_lines=lines[len(above_region) :])
    return statements


def _above(statement: cst.BaseStatement, lines: list[cst.EmptyLine]) -> cst.BaseStatement:
    return statement.with_changes(leading_lines=[*statement.leading_lines, *lines])  # type: ignore[attr-defined]


def _comment_lines(statement: cst.BaseStatement, leading: bool) -> list[cst.EmptyLine]:
    """A dropped statement's comment lines (``leading``: those above it too), its end-of-line
    comment as a line of its own."""
    above = statement.leading_lines if leading else ()  # type: ignore[attr-defined]
    lines = [line for line in above if line.comment is not None]
    trailing = getattr(statement, "trailing_whitespace", None)
    if trailing is not None and trailing.comment is not None:
        lines.append(cst.EmptyLine(comment=trailing.comment))
    return lines


def _check_backward(region: Region, ctx: HookContext) -> None:
    """``loss.backward()`` or ``scaler.scale(loss).backward()`` with no argument (retain_graph,
    inputs, a gradient escape); ``loss`` a plain name."""
    backward = region.backward
    assert backward is not None
    call = backward.call
    if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "backward"):
        raise Untranslatable(f"`{code_of(call).strip()}` is not `loss.backward()`")
    if (
        call.args
        and call.args[0].keyword is None
        and region.loss != code_of(call.func.value).strip()
    ):
        raise Untranslatable(
            f"`{code_of(call).strip()}` is a framework's backward (accelerate, Fabric, "
            "Lightning): the framework owns the step; port its training loop first"
        )
    if call.args:
        shown = ", ".join(code_of(a).strip() for a in call.args)
        raise Untranslatable(
            f"`backward({shown})`: retain_graph, inputs= and a gradient for a non-scalar loss "
            "have no nnx.value_and_grad equivalent"
        )
    loss = call.func.value
    if region.scaler is not None and _is_scaler_call(
        loss, region, ctx.semantic_map.scaler_methods.scale
    ):
        loss = loss.args[0].value if len(loss.args) == 1 else loss  # type: ignore[attr-defined]
    if not (isinstance(loss, cst.Name) and loss.value == region.loss):
        raise Untranslatable(f"the loss `{code_of(loss).strip()}` is not a plain name")


def _is_scaler_call(node: cst.CSTNode, region: Region, method: str | None) -> bool:
    """``scaler.<method>(...)`` of the region's GradScaler."""
    return (
        method is not None
        and isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == method
        and dotted_name(node.func.value) == region.scaler
    )


def _forward(region: Region, ctx: HookContext) -> tuple[list[cst.BaseStatement], int]:
    """The statements before the backward (zero_grad calls dropped), each an assignment."""
    assert region.backward is not None
    index = next(
        i for i, s in enumerate(region.statements) if _contains(s, region.backward.statement)
    )
    if region.statements[index] is not region.backward.statement:
        raise Untranslatable("the backward pass is nested in another statement")
    summed = _summed_backwards(region, index, ctx)
    candidates = [
        s
        for s in region.statements[:index]
        if not _is_zero_grad(s, ctx) and not any(s is b for b in summed)
    ]
    suffix = ctx.semantic_map.in_place_suffix
    forward, tail = _loss_slice(candidates, [region.statements[index], *summed], suffix)
    tail = _run_after_gradient(tail, candidates, region, summed, ctx)
    forward = []
    for statement in candidates:
        if any(statement is t for t in tail):
            continue
        if changed_in_place(statement, suffix) is None:  # (kept before the loss: _split_prefix)
            _check_for_loss(statement, region, ctx)
        forward.append(statement)
    if not forward:
        raise Untranslatable(_forward_missing(region, ctx))
    return forward, index, tail


def _check_for_loss(statement: cst.BaseStatement, region: Region, ctx: HookContext) -> None:
    """A statement of the loss function's body: an assignment to names or an in-place change
    the loss function takes in (``_in_place_for_loss``)."""
    if not (_is_assignment(statement) or _in_place_for_loss(statement, region, ctx)):
        changed = changed_in_place(statement, ctx.semantic_map.in_place_suffix)
        why = _changed_in_place(statement, {changed} if changed else set(), ctx)
        raise Untranslatable(
            why
            or f"`{code_of(statement).strip()}` in the forward pass is not an assignment to "
            "names (it would run traced inside the loss function)"
        )


def _forward_missing(region: Region, ctx: HookContext) -> str:
    """Why the step has no forward pass: in general, not in the step's block; under an ``if``
    whose body starts with the backward (``if phase == 'train': loss.backward(); opt.step()``
    after a forward that also runs for the other phase) not of the shape translated
    (``Planner._branch_region``), which shape is."""
    missing = f"the forward pass that computes `{region.loss}` is not in the step"
    block = _with_computing(region, ctx)
    if block is not None:
        items = ", ".join(code_of(item).strip().rstrip(",") for item in block.items)
        return (
            f"the forward pass that computes `{region.loss}` runs under `with {items}:`, which "
            "the NNX loss function does not carry (a context manager such as torch.autocast "
            "changes how torch computes the forward pass, its dtype: port it by hand)"
        )
    controls = region.anchor.controls
    guard = controls[-1] if controls else None
    if not isinstance(guard, cst.If) or region.first != 0:
        return missing
    condition = code_of(guard.test).strip()
    return (
        f"{missing}: the backward pass and the step run under `if {condition}:`, after a "
        "forward pass that also runs when the condition is false (a validation phase); "
        "translated only when they are the whole body of that `if` (no `else:`), in a loop "
        "or `with torch.set_grad_enabled(<the same test>):`"
    )


def _check_not_under_with(
    region: Region,
    forward: list[cst.BaseStatement],
    trained: cst.BaseExpression,
    ctx: HookContext,
) -> None:
    """Escape naming the ``with`` when the step calls the trained model only under one
    (build-nanogpt's micro step: ``with torch.autocast(...): logits, loss = model(x, y)``):
    the loss function would compute the forward pass without it."""
    model = code_of(trained).strip()
    if any(_trains(callee, trained, ctx) for callee in _callees(forward)):
        return
    for statement in region.statements:
        if not isinstance(statement, cst.With):
            continue
        calls = [n for n in cst_walk.walk(statement.body) if isinstance(n, cst.Call)]
        if any(dotted_name(call.func) == model for call in calls):
            items = ", ".join(code_of(item).strip().rstrip(",") for item in statement.items)
            raise Untranslatable(
                f"the forward pass calls the trained model `{model}` under `with {items}:`, "
                "which the NNX loss function does not carry (a context manager such as "
                "torch.autocast changes how torch computes the forward pass, its dtype: port "
                "it by hand)"
            )


def _with_computing(region: Region, ctx: HookContext) -> cst.With | None:
    """The ``with`` statement before the region, in its block, whose body binds the loss
    (``with torch.autocast(...): logits, loss = model(x, y)``), if any."""
    holder = ctx.parent_of(region.statements[0]) if region.statements else None
    body = list(getattr(holder, "body", ()))
    first = next((i for i, s in enumerate(body) if s is region.statements[0]), 0)
    for statement in body[:first]:
        if not isinstance(statement, cst.With):
            continue
        lines = [n for n in cst_walk.walk(statement) if isinstance(n, cst.SimpleStatementLine)]
        if any(name.value == region.loss for line in lines for name in _bound_names(line)):
            return statement
    return None


def _run_after_gradient(
    tail: list[cst.BaseStatement],
    candidates: list[cst.BaseStatement],
    region: Region,
    summed: list[cst.BaseStatement],
    ctx: HookContext,
) -> list[cst.BaseStatement]:
    """``tail`` without the assignments that read a name a later statement of the loss reads
    (``_, preds = torch.max(outputs, 1)`` between ``outputs = model(x)`` and the loss): those
    stay in the loss function where torch runs them, their names come out as aux (after the
    gradient, a later in-place change of the name would be seen; ``_check_tail``). After an
    earlier backward pass summed into the step, one reading those names only through methods
    (``D_x = output.mean().item()``) runs after the gradient on snapshots (``_snapshots``)."""
    kept = []
    for statement in tail:
        position = next(i for i, s in enumerate(candidates) if s is statement)
        later = [s for s in candidates[position + 1 :] if not any(s is t for t in tail)]
        shared = _variables_of([statement]) & _variables_of(_before_backward(later, region))
        in_loss = shared and (
            _is_assignment(statement) or _in_place_for_loss(statement, region, ctx)
        )
        if not in_loss or _snapshot_names(statement, later, region, summed, ctx):
            kept.append(statement)
    return kept


def _in_place_for_loss(statement: cst.BaseStatement, region: Region, ctx: HookContext) -> bool:
    """An in-place method call (the map's ``in_place_suffix``) alone on its line, on a plain
    name or its ``.data`` (DCGAN's ``label.fill_(fake_label)`` between its forward passes)
    that the region never calls (no model), with arguments of names and numbers only: in the
    loss function it runs once per step where torch runs it, changing what the later forward
    passes read, as in torch."""
    call = _lone_call(statement)
    suffix = ctx.semantic_map.in_place_suffix
    if call is None or not suffix or not isinstance(call.func, cst.Attribute):
        return False
    receiver = call.func.value
    if isinstance(receiver, cst.Attribute) and receiver.attr.value == "data":
        receiver = receiver.value
    simple = (cst.Name, cst.Integer, cst.Float, cst.UnaryOperation)
    return (
        isinstance(receiver, cst.Name)
        and call.func.attr.value.endswith(suffix)
        and all(a.keyword is None and a.star == "" for a in call.args)
        and all(isinstance(a.value, simple) for a in call.args)
        and not any(
            isinstance(n, cst.Call) and dotted_name(n.func) == receiver.value
            for s in region.statements
            for n in cst_walk.walk(s)
        )
    )


def _snapshot_names(
    statement: cst.BaseStatement,
    later: list[cst.BaseStatement],
    region: Region,
    summed: list[cst.BaseStatement],
    ctx: HookContext,
) -> list[str]:
    """The names ``statement`` reads that statements of the loss after it (``later``) use,
    when it runs after the gradient on snapshots of them (``snapshots.snapshot_ready``): an
    assignment after one of the ``summed`` backward passes; else none."""
    position = next(i for i, s in enumerate(region.statements) if s is statement)
    if not _is_assignment(statement) or not any(
        b is s for b in summed for s in region.statements[:position]
    ):
        return []
    shared = _variables_of([statement]) & _variables_of(_before_backward(later, region))
    bound = {t.value for t in _target_names(statement)}
    if not snapshot_ready(statement, shared, bound, ctx.semantic_map):
        return []
    return sorted(shared)


def _snapshots(
    tail: list[cst.BaseStatement], region: Region, backward_index: int, ctx: HookContext
) -> dict[int, list[str]]:
    """For the statements of ``tail`` run on snapshots (``_snapshot_names``): the names."""
    summed = _summed_backwards(region, backward_index, ctx)
    found = {}
    for statement in tail:
        position = next((i for i, s in enumerate(region.statements) if s is statement), None)
        if position is None:
            continue  # (logged after the backward pass: not in the loss)
        later = [
            s
            for s in region.statements[position + 1 :]
            if not any(s is t for t in [*tail, *summed]) and not _is_zero_grad(s, ctx)
        ]
        names = _snapshot_names(statement, later, region, summed, ctx)
        if names:
            found[id(statement)] = names
    return found


def _summed_backwards(region: Region, index: int, ctx: HookContext) -> list[cst.BaseStatement]:
    """The backward passes of the region before its last one (``index``): ``l1.backward()``
    alone on its line, whose gradients torch sums into the same step."""
    methods = ctx.semantic_map.backward_methods
    found = []
    for statement in region.statements[:index]:
        call = _lone_call(statement)
        if (
            call is not None
            and isinstance(call.func, cst.Attribute)
            and call.func.attr.value in methods
        ):
            found.append(statement)
    return found


def _summed_losses(
    region: Region, backward_index: int, forward: list[cst.BaseStatement], ctx: HookContext
) -> list[str]:
    """The losses of the region's earlier backward passes (``l1`` of ``l1.backward()``), whose
    gradients torch adds to the last one's: the loss function returns their sum, exact. Each
    is ``l.backward()`` (``retain_graph=True`` allowed: it keeps torch's graph, the gradients
    are the same) of a name the forward pass computes; no GradScaler, no accumulation, and no
    gradient read (``p.grad``) in the region before the last backward."""
    summed = _summed_backwards(region, backward_index, ctx)
    if not summed:
        return []
    if region.scaler is not None or region.gated:
        raise Untranslatable(
            "several backward passes before one step, with a GradScaler or gradient "
            "accumulation: not translated"
        )
    bound = {t.value for s in forward for t in _target_names(s)}
    losses = []
    for statement in summed:
        call = _lone_call(statement)
        loss = call.func.value  # type: ignore[union-attr]
        shown = code_of(statement).strip()
        if not all(_retains_graph(a) for a in call.args):  # type: ignore[union-attr]
            raise Untranslatable(
                f"`{shown}`: only `retain_graph=True` is translated on a backward pass summed "
                "into the step (inputs=, a gradient for a non-scalar loss: no equivalent)"
            )
        if not isinstance(loss, cst.Name) or loss.value not in bound:
            raise Untranslatable(
                f"`{shown}`: the loss is not a name the step's forward pass computes"
            )
        if loss.value in losses or loss.value == region.loss:
            raise Untranslatable(f"`{loss.value}.backward()` runs twice before the step")
        losses.append(loss.value)
    attributes = ctx.semantic_map.gradient_attributes
    for node in (n for s in region.statements[:backward_index] for n in cst_walk.walk(s)):
        if isinstance(node, cst.Attribute) and node.attr.value in attributes:
            raise Untranslatable(
                f"`{code_of(node).strip()}` is read between backward passes summed into one "
                "step (a partial sum of the gradients)"
            )
    return losses


def _retains_graph(argument: cst.Arg) -> bool:
    return (
        argument.keyword is not None
        and argument.keyword.value == "retain_graph"
        and isinstance(argument.value, cst.Name)
        and argument.value.value == "True"
    )


def _before_backward(
    statements: list[cst.BaseStatement], region: Region
) -> list[cst.BaseStatement]:
    """``statements`` up to the region's backward pass (the rest runs after the gradient)."""
    backward = region.backward.statement  # type: ignore[union-attr]
    index = next((i for i, s in enumerate(statements) if _contains(s, backward)), len(statements))
    return statements[:index]


def _loss_slice(
    statements: list[cst.BaseStatement], backwards: list[cst.BaseStatement], suffix: str | None
) -> tuple[list[cst.BaseStatement], list[cst.BaseStatement]]:
    """The statements the backwards' losses depend on (through the names they bind, or change
    in place: ``noise.data.resize_(batch_size, nz)``), and the others (logging, accuracy: run
    after the gradient, before the update, where the model's parameters are still the ones
    they saw)."""
    needed = _variables_of(backwards)
    slice_: list[cst.BaseStatement] = []
    tail: list[cst.BaseStatement] = []
    for statement in reversed(statements):
        changed = {t.value for t in _target_names(statement)}
        changed.add(changed_in_place(statement, suffix) or "")
        if changed & needed:
            needed |= _variables_of([statement])
            slice_.insert(0, statement)
        else:
            tail.insert(0, statement)
    return slice_, tail


def _check_tail(
    tail: list[cst.BaseStatement],
    forward: list[cst.BaseStatement],
    region: Region,
    model: cst.BaseExpression,
    optimizer: str,
    ctx: HookContext,
    snapshots: Mapping[int, list[str]] = MappingProxyType({}),
) -> None:
    """The statements moved after the gradient: they must not read the model (its parameters
    change at the update), run a backward pass or use the optimizer or an API of the map, nor
    use a name a later statement of the loss reads (it may mutate it); before a statement of
    the loss function (``forward``), neither call nor store into an object (a global or an
    alias the loss reads may change). A statement run on ``snapshots`` of names the loss reads
    after it (``_snapshots``) reads the snapshots, and calls only their methods."""
    root = (dotted_name(model) or "").split(".")[0]
    backward = ctx.semantic_map.backward_methods
    for statement in tail:
        shown = code_of(statement).strip()
        written = lr_write(statement, ctx)  # the optimizer's stored lr, read at the update
        used = (
            _variables_of([statement])
            if written is None
            else {name for read in written[1] for name in _variable_names(read)}
        )
        if root in used:
            raise Untranslatable(f"`{shown}` uses the model between the loss and the backward")
        if any(_calls_method(statement, method) for method in backward):
            raise Untranslatable(f"`{shown}` runs another backward pass")
        position = next(i for i, s in enumerate(region.statements) if s is statement)
        later = [s for s in region.statements[position + 1 :] if not any(s is t for t in tail)]
        snapshot = set(snapshots.get(id(statement), ()))
        read_later = (used - snapshot) & _variables_of(_before_backward(later, region))
        if read_later:
            raise Untranslatable(
                _changed_in_place(statement, read_later, ctx)
                or f"`{shown}` uses a name the loss reads after it (it would run after the loss "
                "function)"
            )
        crosses = any(s is f for s in region.statements[position + 1 :] for f in forward)
        if crosses and not snapshot and written is None and _may_change_other_values(statement):
            raise Untranslatable(
                f"`{shown}` may change what the loss reads after it, through a call or a "
                "store into an object (it would run after the loss function)"
            )
        shared = read_elsewhere(
            _bound_names(statement), ctx.parent_of, ctx.variable, ctx.global_shared
        )
        if crosses and shared is not None:
            raise Untranslatable(
                f"`{shown}` rebinds `{shared.value}`, which code of another scope may read (a "
                "global the model's forward reads), before the loss computes it (it would run "
                "after the loss function)"
            )
    _check_prefix_untouched([r for s in tail for r in _lr_reads_or(s, ctx)], optimizer, ctx)


def _lr_reads_or(statement: cst.BaseStatement, ctx: HookContext) -> list[cst.BaseStatement]:
    """For a learning-rate write through ``param_groups``, lines holding only what it reads
    (the user's nodes: those are checked, not the optimizer it writes to); else the statement."""
    written = lr_write(statement, ctx)
    if written is None:
        return [statement]
    return [cst.SimpleStatementLine([cst.Expr(read)]) for read in written[1]]


def _may_change_other_values(statement: cst.BaseStatement) -> bool:
    """Whether ``statement`` may change a value other than the names it binds: it calls
    something, stores through an attribute or a subscript, deletes, or updates in place."""
    if not _is_assignment(statement):
        return True
    return any(isinstance(n, (cst.Call, cst.AugAssign)) for n in cst_walk.walk(statement))


def _check_after_backward(
    region: Region,
    backward_index: int,
    model: str,
    optimizer: str,
    step_statement: cst.BaseStatement,
    kept: list[cst.BaseStatement],
    ctx: HookContext,
) -> None:
    """Between backward and step: only the GradScaler's ``unscale_(opt)``, clip calls folded
    into the chain (a zero_grad there would zero the gradients the step uses) and the
    statements ``kept`` (moved after the gradient: ``logged.py``, an accumulation's counter
    and logging); after the step only the GradScaler's ``update()``."""
    methods = ctx.semantic_map.scaler_methods
    last = len(region.statements) - 1 - len(_trailing_module_zero(region, ctx))
    if region.scaler is not None and _is_scaler_call(
        _lone_call(region.statements[last]), region, methods.update
    ):
        last -= 1
    if region.statements[last] is not step_statement:
        raise Untranslatable("a statement after the step belongs to it")
    for statement in region.statements[backward_index + 1 : last]:
        if any(statement is k for k in kept):
            continue  # moved after the gradient, or the accumulation's counter
        if _folded_or_unscale(statement, region, model, optimizer, ctx):
            continue
        if any(statement is guard for guard in region.true_guards) and all(
            _lone_call(inner) is not None
            and _folded_or_unscale(inner, region, model, optimizer, ctx)
            for inner in statement.body.body  # type: ignore[attr-defined]
        ):
            continue  # `if grad_clip != 0.0:` always true (a module constant): the same calls
        raise Untranslatable(
            f"`{code_of(statement).strip()}` runs between backward and step (gradients read or "
            "edited by hand)"
        )


def _folded_or_unscale(
    statement: cst.BaseStatement, region: Region, model: str, optimizer: str, ctx: HookContext
) -> bool:
    """A clip folded into the chain, or the GradScaler's ``unscale_(opt)``."""
    if region.clipped and _is_folded_clip(statement, model, ctx):
        return True
    call = _lone_call(statement)
    return (
        region.scaler is not None
        and _is_scaler_call(call, region, ctx.semantic_map.scaler_methods.unscale)
        and [code_of(a.value).strip() for a in call.args] == [optimizer]  # type: ignore[union-attr]
    )


def _scope(region: Region) -> cst.CSTNode:
    """The function holding the step, else the outermost loop (a step in no loop escapes)."""
    function = region.anchor.function
    if function is not None:
        return function
    if not region.anchor.controls:
        raise Untranslatable("a step outside any loop or function")
    return region.anchor.controls[0]


def _check_one_optimizer(
    region: Region, optimizer: str, ctx: HookContext, others: OtherModels | None = None
) -> None:
    """No other optimizer is stepped where this one is (one backward for several), unless
    torch discards the gradients this backward leaves in its model (``others``: a GAN's
    other step, ``analysis/other_models.discarded``)."""
    for node in cst_walk.walk(_scope(region)):
        if not (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "step"
        ):
            continue
        receiver = node.func.value
        if dotted_name(receiver) in (None, optimizer):
            continue
        value = _one_value(receiver, ctx)
        if isinstance(value, cst.Call) and _is_constructor(value, ctx):
            name = dotted_name(receiver) or ""
            why = others.optimizer_discards(value, name) if others is not None else ""
            if why is None:
                continue  # this backward's gradients in its model are zeroed before it steps
            raise Untranslatable(
                f"`{dotted_name(receiver)}` is stepped here too: one backward feeding several "
                "optimizers" + (f" ({why})" if why else "")
            )


def _check_one_backward(
    region: Region, ctx: HookContext, others: OtherModels | None = None, optimizer: str = ""
) -> None:
    """No other backward pass where this step is (its gradients would add up in torch),
    unless torch zeroes what it leaves in the trained model before this optimizer steps
    (``others``: a GAN's other step)."""
    methods = ctx.semantic_map.backward_methods
    inside = {id(n) for s in region.statements for n in cst_walk.walk(s)}
    for node in cst_walk.walk(_scope(region)):
        if (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in methods
            and id(node) not in inside
        ):
            statement = _statement_of(node, ctx)
            why = (
                others.backward_discarded(statement, optimizer)
                if others is not None and statement is not None
                else ""
            )
            if why is None:
                continue  # what it leaves in the trained model is zeroed before the step
            raise Untranslatable(
                f"another backward pass (`{code_of(node).strip()}`) runs where this step is: "
                "torch adds up the gradients of both" + (f" ({why})" if why else "")
            )


def _statement_of(call: cst.Call, ctx: HookContext) -> cst.BaseStatement | None:
    """The line ``call`` is alone on (``loss.backward()``), else None."""
    expression = ctx.parent_of(call)
    line = ctx.parent_of(expression) if isinstance(expression, cst.Expr) else None
    return line if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1 else None


def _check_others_plain(
    others: OtherModels, forward: list[cst.BaseStatement], region: Region, micro: bool
) -> None:
    """Another model in the loss: only for one backward pass and one update per step."""
    if not (others.called or others.detached):
        return
    if micro or region.gated or region.scaler is not None:
        raise Untranslatable(
            "the loss reaches another model, in a micro-step loop, gradient accumulation or "
            "with a GradScaler: not translated"
        )


def _is_constructor(call: cst.Call, ctx: HookContext) -> bool:
    entries = (ctx.semantic_map.apis.get(q) for q in ctx.qualify(call.func))
    return any(e is not None and e.role == roles.CONSTRUCTOR for e in entries)


def _check_no_model_value_outside(
    region: Region, forward: list[cst.BaseStatement], model: cst.BaseExpression, ctx: HookContext
) -> None:
    """A name the loss reads but does not compute must not be computed from the model (or
    by any call through ``self``) elsewhere: its gradient would be lost (and, read once
    before the loop, it would keep the parameters of the first update). A binding of the
    model's own name (``model = DDP(model)``) is not such a name: the model is the loss
    function's parameter, proven the optimizer's (``_model_in_step``)."""
    bound = {t.value for s in forward for t in _target_names(s)}
    free = _variables_of(forward) - bound
    inside = {id(n) for s in region.statements for n in cst_walk.walk(s)}
    root = dotted_name(model).split(".")[0]  # type: ignore[union-attr]
    for node in cst_walk.walk(_scope(region)):
        if id(node) in inside or not isinstance(node, cst.SimpleStatementLine):
            continue
        names = {t.value for t in _target_names(node)} & free
        if {t.value for t in _target_names(node)} == {root}:
            continue  # the model's own binding (``model = DDP(model)``): the identity proof's
        if names and root in _variables_of([node]):
            raise Untranslatable(
                f"`{sorted(names)[0]}`, which the loss reads, is computed from the model "
                "outside the step (its gradient would be lost)"
            )


def _check_no_model_value_reaching(
    forward: list[cst.BaseStatement], model: cst.BaseExpression, ctx: HookContext
) -> None:
    """The values reaching a name the loss reads but does not compute (through the flow: a
    module-level ``batch = {"x": model.weight}`` before the loop the step is in, a global a
    function reads) must not read the model (the last check: other reasons say more)."""
    bound = {t.value for s in forward for t in _target_names(s)}
    root = (dotted_name(model) or "").split(".")[0]
    for name in (n for s in forward for n in cst_walk.walk(s) if isinstance(n, cst.Name)):
        if name.value in bound or name.value == root or ctx.variable(name) is None:
            continue
        for value in ctx.origins(name) or []:
            if root in _variable_names(value) and value is not name:
                raise Untranslatable(
                    f"`{name.value}`, which the loss reads, is computed from the model "
                    f"outside the step (`{_short(code_of(value))}`: its gradient would be lost)"
                )


def _is_folded_clip(statement: cst.BaseStatement, model: str, ctx: HookContext) -> bool:
    """A clip call alone on its line (or ``norm = clip(...)``, see ``_clip_norm``), of
    ``model.parameters()`` (it heads the chain); a clip the constructor cannot fold (the map
    escapes it: ``norm_type=inf`` without --exact) escapes the step."""
    call = _lone_call(statement) or _assigned_call(statement)
    if call is None:
        return False
    entry = ctx.semantic_map.apis.get(next(iter(ctx.qualify(call.func)), ""))
    if entry is None or entry.role != roles.CLIP or not call.args:
        return False
    if " ".join(code_of(call.args[0].value).split()) != f"{model}.parameters()":
        return False
    problem = unfolded_clip(call, entry, ctx)
    if problem is not None:
        raise Untranslatable(
            f"`{code_of(statement).strip()}` is not in the optimizer's tx ({problem}), and the "
            "step would drop it"
        )
    return True


def unfolded_clip(call: cst.Call, entry: ApiEntry, ctx: HookContext) -> str | None:
    """Why the optimizer's chain cannot take clip ``call`` (the map's escapes), or None."""
    try:
        clip_expression(call, entry, replace(ctx, request_import=lambda key: None, warnings=[]))
    except Untranslatable as exc:
        return exc.reason
    return None


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
            f"the forward pass does not call the trained model `{trained_text}`{before}"
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
            raise Untranslatable(_another_callee(callee, value, forward, ctx))
    if found is None and pulled is not None:
        return cst.Name(pulled.output)
    if found is None:
        raise Untranslatable(
            f"the forward pass does not call the trained model `{trained_text}`"
            + (
                _passed_model(forward, trained, ctx)
                or _unbound_model(trained, ctx)
                or _rebound_models(forward, bound, ctx)
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
) -> str:
    """Why the loss calling ``callee`` (bound to ``value``, possibly a model) escapes; for the
    receiver of a method (``fake_A_buffer.push_and_pop(fake_A)``: CycleGAN's replay buffer),
    that method's call: code the step cannot see into, not a call of the object itself."""
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
        return f"the loss calls `{text}` too (several models in one loss, or an unknown loss)"
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
    raise Untranslatable(
        f"the forward pass does not call the trained model `{code_of(trained).strip()}`{before}"
        f" (not pulled back through `nnx.vjp`: {found})"
    )


def _pullbacks(
    region: Region, forward: list[cst.BaseStatement], others: OtherModels, ctx: HookContext
) -> dict[int, Pullback]:
    """The forward lines of ``region`` (``fake = netG(noise)``, another model's) whose
    pullback the next step of the block reads (``analysis/forward_links.py``), by id."""
    step = next_step(region.statements[-1], ctx)
    item = ctx.region_at(step) if step is not None else None
    if item is None or item.backward is None:
        return {}
    found = _link_of(item, ctx)
    lines = {id(s) for s in forward}
    if isinstance(found, Pullback) and id(found.forward) in lines and found.model in others.called:
        return {id(found.forward): found}
    return {}


def _link_of(region: Region, ctx: HookContext) -> Pullback | str:
    """``forward_links.link`` of another region of the file (a generator step after this one),
    as its pullback."""
    stepped = _stepped_optimizer(region)
    constructor = _one_value(stepped, ctx)
    if not isinstance(constructor, cst.Call) or not ctx.translates(constructor):
        return "its optimizer is not one built here and translated"
    try:
        trained = trained_model(constructor, ctx)
        forward = _forward(region, ctx)[0]
    except Untranslatable as exc:
        return exc.reason
    bound = {t.value for s in forward for t in _target_names(s)}
    others = OtherModels(region, ctx, lambda a, b: _trains(a, b, ctx), trained)
    optimizer = code_of(stepped).strip()
    found = link(forward, bound, trained, region.statements, optimizer, others.other_model, ctx)
    return Pullback.of(found)


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


def _trains(callee: cst.BaseExpression, trained: cst.BaseExpression, ctx: HookContext) -> bool:
    """``callee`` names the model ``trained`` (the optimizer constructor's ``model``): the one
    value that reaches it is the one reaching ``trained``, or both have one origin."""
    trained_value = _model_value(trained, ctx)
    value = _model_value(callee, ctx)
    return (
        (trained_value is not None and value is trained_value)
        or _one_object(callee, trained, ctx)
        or one_origin_through_wrappers(callee, trained, ctx)
    )


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


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


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
        return ctx.helper_problem(func, LIBRARIES) is None
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


def _one_value(node: cst.BaseExpression, ctx: HookContext) -> cst.BaseExpression | None:
    """The one value that reaches a Name or ``self.x`` (through callers' arguments: one
    value two call sites pass counts once)."""
    values = _distinct(ctx.origins(node))
    return values[0] if values is not None and len(values) == 1 else None


def _distinct(values: list[cst.BaseExpression] | None) -> list[cst.BaseExpression] | None:
    """``values`` without repeats of one node."""
    if values is None:
        return None
    return list({id(value): value for value in values}.values())


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
    is the loss's with respect to that output, pulled back to the model's parameters."""
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
    _check_bound_before_read(forward)
    aux = _aux_names(forward, region, ctx, tail, returned=None if summed else region.loss)
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
    applied = running or grads
    updated = pulled.model if pulled is not None else model_text
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


def _tuple(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else "(" + ", ".join(names) + ")"


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
    inside = {id(n) for s in region.statements for n in cst_walk.walk(s)} - moved
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


def _check_bound_before_read(forward: list[cst.BaseStatement]) -> None:
    """A name the forward pass binds must not be read in it before (it would be local)."""
    bound: set[str] = set()
    assigned = {t.value for s in forward for t in _target_names(s)}
    for statement in forward:
        targets = {t.value for t in _target_names(statement)}
        small = statement.body[0]  # type: ignore[attr-defined]
        value = getattr(small, "value", None)
        reads = _variable_names(value) if value else set()
        if isinstance(small, cst.AugAssign):
            reads |= targets
        early = (reads & assigned) - bound
        if early:
            raise Untranslatable(f"`{sorted(early)[0]}` is read before the loss computes it")
        bound |= targets


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


# ---------------------------------------------------------------------- small helpers


def _contains(statement: cst.CSTNode, inner: cst.CSTNode) -> bool:
    return any(n is inner for n in cst_walk.walk(statement))


def _assigned_call(statement: cst.BaseStatement) -> cst.Call | None:
    """The call of ``name = call(...)`` alone on its line."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Name)
            and isinstance(small.value, cst.Call)
        ):
            return small.value
    return None


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
            BoundCall.bind(entry, call), ctx.exact, cst.Name(grads), ctx.add_import
        )
        if value is None:
            raise Untranslatable(
                f"`{code_of(statement).strip()}`: the map has no value of this call from the "
                "gradients for these arguments"
            )
        small = statement.body[0]  # type: ignore[attr-defined]
        rendered.append(statement.with_changes(body=[small.with_changes(value=value)]))
    return rendered


def _lone_small(statement: cst.BaseStatement) -> cst.BaseSmallStatement | None:
    """The one small statement of a line holding only it."""
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        return statement.body[0]
    return None


def _lone_call(statement: cst.BaseStatement) -> cst.Call | None:
    small = _lone_small(statement)
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        return small.value
    return None


def _is_zero_grad(statement: cst.BaseStatement, ctx: HookContext) -> bool:
    """``x.zero_grad()`` alone on its line, or a line ``reset_grad()`` calling a function of
    the file that only zeroes gradients (``HookContext.zero_call``)."""
    call = _lone_call(statement)
    return (
        call is not None
        and isinstance(call.func, cst.Attribute)
        and call.func.attr.value == "zero_grad"
    ) or ctx.zero_call(statement) is not None


def _zero_function_problem(statement: cst.BaseStatement, ctx: HookContext) -> str | None:
    """Why the line ``reset_grad()`` (a function of the file that only zeroes gradients) may
    not go with the step: each zero_grad() it runs must be that of an optimizer of the map
    bound once and translated here (the plan then drops it from the function's body, and
    nnx.value_and_grad computes fresh gradients); None when it may."""
    for call in ctx.zero_call(statement) or ():
        receiver = call.func.value  # type: ignore[attr-defined]
        value = _one_value(receiver, ctx)
        translated = (
            isinstance(value, cst.Call) and _is_optimizer(value, ctx) and ctx.translates(value)
        )
        if not translated:
            return (
                f"`{_shown(statement)}` runs `{code_of(call).strip()}`, whose receiver is not "
                "one optimizer built and translated here: the zero of a torch object stays "
                "torch code"
            )
    return None


def _is_optimizer(call: cst.Call, ctx: HookContext) -> bool:
    """An optimizer constructor of the map."""
    entries = (ctx.semantic_map.apis.get(q) for q in ctx.qualify(call.func))
    return any(e is not None and e.role == roles.CONSTRUCTOR for e in entries)


def _is_assignment(statement: cst.BaseStatement) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
        return False
    return bool(_target_names(statement)) and all(isinstance(t, cst.Name) for t in _targets(small))


def _targets(small: cst.BaseSmallStatement) -> list[cst.BaseExpression]:
    if isinstance(small, cst.Assign):
        raw = [t.target for t in small.targets]
    elif isinstance(small, (cst.AugAssign, cst.AnnAssign)):
        raw = [small.target]
    else:
        return []
    flat: list[cst.BaseExpression] = []
    while raw:
        target = raw.pop()
        if isinstance(target, (cst.Tuple, cst.List)):
            raw.extend(e.value for e in target.elements)
        else:
            flat.append(target)
    return flat


def _target_names(statement: cst.BaseStatement) -> list[cst.Name]:
    if not isinstance(statement, cst.SimpleStatementLine):
        return []
    return [t for s in statement.body for t in _targets(s) if isinstance(t, cst.Name)]


def _bound_names(statement: cst.BaseStatement) -> list[cst.Name]:
    """The names an assignment statement binds, walrus targets (``t = (s := 2)``) included."""
    walrus = [
        n.target
        for n in cst_walk.walk(statement)
        if isinstance(n, cst.NamedExpr) and isinstance(n.target, cst.Name)
    ]
    return _target_names(statement) + walrus


def _calls_method_named(node: cst.CSTNode, name: str) -> bool:
    """``node`` is itself a call of a method ``name`` (``x.detach()``)."""
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == name
    )


def _calls_method(node: cst.CSTNode, name: str) -> bool:
    return any(
        isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and n.func.attr.value == name
        for n in cst_walk.walk(node)
    )


def _callees(statements: Sequence[cst.BaseStatement]) -> Iterator[cst.BaseExpression]:
    for statement in statements:
        for node in cst_walk.walk(statement):
            if isinstance(node, cst.Call) and isinstance(node.func, (cst.Name, cst.Attribute)):
                yield node.func
                if isinstance(node.func, cst.Attribute):
                    yield node.func.value


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


def _stepping_self(
    trained: cst.BaseExpression,
    stepped: cst.BaseExpression,
    constructor: cst.Call,
    ctx: HookContext,
) -> cst.BaseExpression:
    """The step's own ``self`` when the optimizer ``self.opt`` it steps is the one its class's
    method built over ``self.parameters()`` (``HookContext.own_optimizer_problem``: the
    forward-forward example's ``Layer``), else ``trained`` (the ``self`` of that method names
    another call's object)."""
    if (
        isinstance(trained, cst.Name)
        and isinstance(stepped, cst.Attribute)
        and isinstance(stepped.value, cst.Name)
        and trained is not stepped.value
        and ctx.own_optimizer_problem(stepped, constructor, trained) is None
    ):
        return stepped.value
    return trained


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


def _check_no_data_object_in_loss(forward: list[cst.BaseStatement], ctx: HookContext) -> None:
    """No call of a method of an object ``_makes_batch_ahead`` let pass is left in the loss
    function's body (it runs ahead of the forward pass only before the model's first use)."""
    bound = {t.value for s in forward for t in _target_names(s)}
    for callee in _callees(forward):
        if not isinstance(callee, cst.Name) or callee.value in bound:
            continue
        value = _model_value(callee, ctx)
        modules = ctx.semantic_map.data_modules
        variable = ctx.variable(callee)
        if (
            isinstance(value, cst.Call)
            and variable is not None
            and _may_be_a_model(value, ctx)
            and ctx.data_object_problem(value, variable.reads, modules) is None
        ):
            raise Untranslatable(_another_callee(callee, value, forward, ctx))


def _names_of(statements: Sequence[cst.BaseStatement]) -> set[str]:
    return {n.value for s in statements for n in cst_walk.walk(s) if isinstance(n, cst.Name)}


def _variables_of(statements: Sequence[cst.BaseStatement]) -> set[str]:
    """Names read or bound as variables in ``statements`` (``_variable_names``)."""
    return {name for s in statements for name in _variable_names(s)}


def _variable_names(node: cst.CSTNode) -> set[str]:
    """Names read or bound as variables under ``node``: not the ``attr`` of ``x.attr`` (HF's
    ``loss = outputs.loss``) nor the keyword of ``f(loss=...)``."""
    nodes = list(cst_walk.walk(node))
    not_variables = {id(n.attr) for n in nodes if isinstance(n, cst.Attribute)} | {
        id(n.keyword) for n in nodes if isinstance(n, cst.Arg) and n.keyword is not None
    }
    return {n.value for n in nodes if isinstance(n, cst.Name) and id(n) not in not_variables}
