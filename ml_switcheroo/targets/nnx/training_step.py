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
(``DDP(model)``, ``torch.compile(model)``) is the model it wraps (``wrappers.py``). A model
built on two branches (``if pretrained: model = A(pretrained=True) else: model = A()``) is
the optimizer's when the step reads the very name of ``opt = X(model.parameters())`` with
neither name rebound on any path since that line, in its scope or passed so at every call of
the step's function (``step_models._unrebound_since_built``). A loss summed in a ``for`` loop
of plain assignments (``style_loss += mse(gram(ft), gm)`` over ``zip(...)``) runs in the loss
function, unrolled as torch runs it (``statements.loss_loop_names``; a name only a loop that
may run zero times binds is not read after it). Not done: a criterion parameter passed on
through such a function is not followed.
The region is first put in the loss function's shape (``step_lines.py``, s40): one simple
statement per line, ``(a + b).backward()`` as ``loss = a + b`` then ``loss.backward()``; an
``if`` of plain assignments on a test the loss function does not compute stays in it
(``step_lines.check_untraced_tests``), an ``if`` of logging before the backward pass runs after
the gradient (``logged.records_values``).

The step is split by concern (``tools/split_training_step.py``): ``step_syntax`` (syntax
helpers), ``step_models`` (the model and criterion), ``step_loss_fn`` (rendering the loss
function and its outputs), ``step_shared`` (names and memory shared with the code around),
``step_region`` (forward and backward passes), ``step_checks`` (checks and escapes); this module
keeps the hook and the step's assembly and re-exports the names other modules import from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

import libcst as cst

from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext, HookResult, ReplaceRegion
from ml_switcheroo.targets.nnx.helper_copies import helper_copies, with_copies
from ml_switcheroo.targets.nnx.method_built import MethodBuilt, method_built
from ml_switcheroo.targets.nnx.model import trained_model
from ml_switcheroo.targets.nnx.namesake_rewrite import ExactNamesakes
from ml_switcheroo.targets.nnx.other_models import OtherModels
from ml_switcheroo.targets.nnx.pullback import Pullback
from ml_switcheroo.targets.nnx.step_checks import (
    _accumulated_check,
    _check_after_backward,
    _check_backward,
    _check_no_model_value_outside,
    _check_no_model_value_reaching,
    _check_no_torch_only_model_use,
    _check_not_under_with,
    _check_one_backward,
    _check_one_optimizer,
    _check_others_plain,
    _check_prefix_reads_no_forward_value,
    _check_prefix_untouched,
    _check_tail,
    _logged,
    _logged_before_check,
    _model_zeroed,
    _with_dropped_comments,
    _zero_before_region,
)
from ml_switcheroo.targets.nnx.step_lines import (
    check_scalar_loss,
    check_untraced_tests,
    lines_for_loss,
)
from ml_switcheroo.targets.nnx.step_loss_fn import GRADIENT as GRADIENT
from ml_switcheroo.targets.nnx.step_loss_fn import GRADIENT_AUX as GRADIENT_AUX
from ml_switcheroo.targets.nnx.step_loss_fn import SUMMED as SUMMED
from ml_switcheroo.targets.nnx.step_loss_fn import UPDATE as UPDATE
from ml_switcheroo.targets.nnx.step_loss_fn import _norm_lines, _render
from ml_switcheroo.targets.nnx.step_models import LIBRARIES as LIBRARIES
from ml_switcheroo.targets.nnx.step_models import (
    _check_known_calls,
    _check_no_mapped_api,
    _enclosing_model,
    _generator_pullback,
    _model_across_files,
    _model_in_step,
    _rebuilt_constructor,
    _trains,
)
from ml_switcheroo.targets.nnx.step_region import (
    _check_for_loss,
    _check_no_data_object_in_loss,
    _forward,
    _looped,
    _micro_loop,
    _pullbacks,
    _snapshots,
    _split_prefix,
    _summed_losses,
    with_leading_tail,
)
from ml_switcheroo.targets.nnx.step_shared import (
    _check_namesakes_after,
    _check_traceable,
    _loss_tensors,
)
from ml_switcheroo.targets.nnx.step_syntax import (
    _distinct,
    _is_zero_grad,
    _one_value,
    _short,
    _stepped_optimizer,
    _target_names,
)
from ml_switcheroo.targets.nnx.wrappers import check_no_wrapper_attribute
from ml_switcheroo.targets.optax.clipping import refused_clip

SUGGESTION = (
    "def loss_fn(model):  # the forward pass that computes `{loss}`\n"
    "    ...\n"
    "    return {loss}\n"
    "{loss}, grads = nnx.value_and_grad(loss_fn)({model})\n"
    "{optimizer}.update({model}, grads)"
)


CLIPPED = "# the gradient clipping here is now the head of `{optimizer}`'s tx: drop the clip call"


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
            statements = [_rendered_branch(region, region.branch, names, ctx, outside)]
    except Untranslatable as exc:
        suggestion = SUGGESTION.format(**names)
        if region.clipped and refused_clip(region.clip_sites, ctx) is None:
            suggestion += f"\n{CLIPPED.format(**names)}"
            suggestion += "".join(f"\n{line}" for line in _norm_lines(region, ctx))
        raise Untranslatable(exc.reason, suggestion) from None
    ctx.add_import("nnx")
    _request_template_imports(outside.values(), ctx)
    return ReplaceRegion(tuple(statements), outside)


def _rendered_branch(
    region: Region,
    branch: cst.If,
    names: dict[str, str],
    ctx: HookContext,
    outside: dict[int, str] | None = None,
) -> cst.If:
    """``if phase == 'train':`` with the step rendered from the forward pass before it and
    the backward and step in it, ``else:`` the forward pass as written (``Region.branch``):
    when the test is false torch runs the forward pass without a step, the same values (on
    JAX arrays: the map's templates of the loss function written there too)."""
    forward = region.statements[:-1]
    flat = replace(region, statements=[*forward, *branch.body.body], branch=None)  # type: ignore[attr-defined]
    exact: dict[str, str] = {}
    rendered = _rendered_step(flat, names, ctx, outside, exact)
    kept = [s for s in forward if not _is_zero_grad(s, ctx)]  # the nnx.Optimizer has none
    if exact:
        kept = [s.visit(ExactNamesakes(exact)) for s in kept]  # type: ignore[misc]
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
        across = ctx.returned_across_files(constructor)
        if across is not None:
            return (
                f"{reason}: `{_short(code_of(constructor))}`{f' ({where})' if where else ''}, "
                f"the one value reaching it, is not taken for an nnx.Optimizer: {across}"
            )
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
    written: dict[str, str] | None = None,
) -> list[cst.BaseStatement]:
    """The region's statements for NNX (``names``: filled in as the model is found;
    ``outside``: filled with the calls after the step the map's templates rewrite, by id;
    None: such calls escape the step; ``written``: filled with the calls the map's templates
    rewrite in the step, code to JAX text)."""
    micro = _micro_loop(region, ctx)
    if micro is not None:
        region = micro.region
    region = lines_for_loss(region, ctx)
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
    path: tuple[str, ...] = ()  # from the model differentiated to the optimizer's submodule
    others: OtherModels | None = None
    pulled: Pullback | None = None
    if isinstance(constructor, cst.Call) and built_here:
        step_statement, counted = _accumulated_check(region, constructor, ctx)
        forward, backward_index, tail = _forward(region, ctx)
        tail = [*tail, *_logged_before_check(region, backward_index, step_statement, counted)]
        tail = [*tail, *_logged(region, backward_index, step_statement, forward, ctx)]
        trained = built.model if built is not None else trained_model(constructor, ctx)
        trained = _stepping_self(trained, stepped, constructor, ctx)
        trained, path = _enclosing_model(forward, trained, ctx)
        others = OtherModels(region, ctx, lambda a, b: _trains(a, b, ctx), trained)
        if path and not _zeroed_before_backward(region, optimizer, ctx):
            raise Untranslatable(
                f"`{optimizer}` trains a submodule of `{code_of(trained).strip()}`, whose other "
                "uses (here or in another file) may leave gradients in it: its zero_grad() must "
                "come before the backward pass, in the same block (s40 probe p40a 4)"
            )
        why = others.other_optimizers_discard(constructor) if path else None
        if why is not None:
            raise Untranslatable(
                f"the loss fills the gradients of all of `{code_of(trained).strip()}`, which "
                f"holds `{optimizer}`'s submodule; another optimizer may step on some of them "
                f"({why})"
            )
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
    prefix, tail = with_leading_tail(region, prefix, forward, tail, model_node, ctx)
    _check_no_data_object_in_loss(forward, ctx)
    for statement in forward:  # (in-place lines before the model's first use stay before it)
        _check_for_loss(statement, region, ctx)
    _check_prefix_untouched(prefix, optimizer, ctx)
    if micro is not None:
        _check_prefix_reads_no_forward_value(prefix, forward)
    owned = ".".join([model, *path])  # the parameters the optimizer owns
    model_zeroed, kept = _model_zeroed(
        region, backward_index, model_node, trained, optimizer, ctx, owned
    )
    if path and model_zeroed and not region.zeroed:
        raise Untranslatable(
            f"`{model}.zero_grad()` zeroes more gradients than `{optimizer}` owns (those of "
            f"`{'.'.join([model, *path])}`): another optimizer may use the others"
        )
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
    clipped = ".".join([model, *path])  # the parameters a folded clip clips: the optimizer's
    _check_after_backward(
        region, backward_index, clipped, optimizer, step_statement, [*counted, *tail], ctx
    )
    _check_backward(region, ctx, forward, model_node)
    check_scalar_loss(forward, region.loss, ctx)
    check_untraced_tests(forward, model_node, frozenset(others.called if others else ()))
    summed = _summed_losses(region, backward_index, forward, ctx)
    pulled_output = frozenset({pulled.output}) if pulled is not None else frozenset()
    exact = _check_traceable(forward, ctx, others, model_node, pulled_output)
    tensors, makes_tensor = _loss_tensors(forward, model_node, others, ctx)
    copies, copied_texts = helper_copies(forward, LIBRARIES, tensors, makes_tensor, ctx)
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
        path,
    )
    if exact:
        rendered = [s.visit(ExactNamesakes(exact)) for s in rendered]  # type: ignore[misc]
        _request_template_imports(exact.values(), ctx)
    if written is not None:
        written.update(exact)
    if copies:  # at the top of the loss function, shadowing the module's functions
        rendered = with_copies(rendered, copies)
        _request_template_imports(copied_texts, ctx)
    written_prefix = [s.visit(ExactNamesakes(exact)) for s in prefix] if exact else prefix
    statements = [*written_prefix, *rendered, *counted, *kept]  # type: ignore[list-item]
    statements = _with_dropped_comments(
        statements, region, prefix, [*forward, *tail, *counted, *kept]
    )
    if micro is None:
        return statements
    return _looped(statements, micro, len(prefix) + 3 + len(tail))


def _zeroed_before_backward(region: Region, optimizer: str, ctx: HookContext) -> bool:
    """``optimizer.zero_grad()`` alone on a line before the region's backward pass in its
    block (the gradients the step applies are this backward's alone, whatever filled .grad
    before: another file's loss through the same model)."""
    backward = region.backward.statement if region.backward is not None else None
    block = ctx.parent_of(backward) if backward is not None else None
    statements = list(getattr(block, "body", ()))
    index = next((i for i, s in enumerate(statements) if s is backward), None)
    for statement in statements[:index] if index is not None else []:
        if _is_zero_grad(statement, ctx) and code_of(statement).strip().startswith(
            f"{optimizer}.zero_grad("
        ):
            return True
    return False


def _request_template_imports(texts: Iterable[str], ctx: HookContext) -> None:
    """The imports of the map's namesake templates (``jnp``) that ``texts`` use."""
    texts = list(texts)
    entries = [
        *ctx.semantic_map.array_namesakes.values(),
        *ctx.semantic_map.array_attributes.values(),
        *ctx.semantic_map.array_functions.values(),
    ]
    for key in sorted({k for n in entries for k in n.imports}):  # stable output: not set order
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
