"""The NNX training step's region: the forward pass up to the loss, the backward pass, summed
losses and backward passes, snapshots, the micro-step loop, and the forward pass a generator
step reaches (``_forward``, ``_loss_slice``, ``_micro_loop``, ``_pullbacks``...).

Split from ``training_step.py`` by ``tools/split_training_step.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.dominating import bound_names
from ml_switcheroo.analysis.forward_links import link, next_step
from ml_switcheroo.analysis.plan import Region, changed_in_place
from ml_switcheroo.analysis.statements import loss_branch_names, loss_loop_names
from ml_switcheroo.model.hygiene import fresh_name
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.learning_rate import lr_write
from ml_switcheroo.targets.nnx.model import trained_model
from ml_switcheroo.targets.nnx.other_models import OtherModels
from ml_switcheroo.targets.nnx.pullback import Pullback
from ml_switcheroo.targets.nnx.snapshots import snapshot_ready
from ml_switcheroo.targets.nnx.step_models import (
    _another_callee,
    _may_be_a_model,
    _model_value,
    _trains,
)
from ml_switcheroo.targets.nnx.step_syntax import (
    _bound_names,
    _callees,
    _calls_method,
    _contains,
    _is_assignment,
    _is_method_call,
    _is_zero_grad,
    _lone_call,
    _lone_small,
    _names_of,
    _one_value,
    _planned_first,
    _scope,
    _shown,
    _stepped_optimizer,
    _target_names,
    _variables_of,
)


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


def with_leading_tail(
    region: Region,
    prefix: list[cst.BaseStatement],
    forward: list[cst.BaseStatement],
    tail: list[cst.BaseStatement],
    model: cst.BaseExpression,
    ctx: HookContext,
) -> tuple[list[cst.BaseStatement], list[cst.BaseStatement]]:
    """``prefix`` and ``tail`` with the statements of ``tail`` that torch runs before the loss
    function's first statement moved into ``prefix``, in the region's order (``feature.t_(),
    target.sub_(1)`` before ``if args.cuda: feature = ...`` and the model's call): they run
    before the loss function, in torch's order, not after the gradient. Not one using the
    model (``model.eval()``: a mode switch in the step escapes, as on main), calling a
    backward method or writing a learning rate (``_check_tail`` decides)."""
    if not forward:
        return prefix, tail
    order = {id(s): i for i, s in enumerate(region.statements)}
    first = order.get(id(forward[0]))
    root = (dotted_name(model) or "").split(".")[0]
    backward = ctx.semantic_map.backward_methods
    early = [
        s
        for s in tail
        if first is not None
        and order.get(id(s), first) < first
        and root not in _variables_of([s])
        and not any(_calls_method(s, method) for method in backward)
        and lr_write(s, ctx) is None
    ]
    if not early:
        return prefix, tail
    merged = sorted([*prefix, *early], key=lambda s: order.get(id(s), -1))
    return merged, [s for s in tail if not any(s is e for e in early)]


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
    """A statement of the loss function's body (no walrus: its name would stay local to the
    loss function): an assignment to names, an in-place change
    the loss function takes in (``_in_place_for_loss``), or a ``for`` loop of plain
    assignments (``statements.loss_loop_names``: it runs traced, unrolled, as torch runs it)."""
    walrus = next((n for n in cst_walk.walk(statement) if isinstance(n, cst.NamedExpr)), None)
    if walrus is not None:
        raise Untranslatable(
            f"`{code_of(walrus).strip()}` in the forward pass binds a name no assignment target "
            "names: the loss function would keep it local, a read after the step would not see it"
        )
    if loss_loop_names(statement) is not None or loss_branch_names(statement) is not None:
        return  # (an `if`: its tests are checked untraced, ``step_lines.check_untraced_tests``)
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
    line = region.backward.statement if region.backward is not None else None
    if isinstance(line, cst.SimpleStatementLine) and len(line.body) > 1:
        return (
            f"the backward pass shares its line with other statements (`{_shown(line)}`): a "
            "line is split into the loss function's lines only when the backward pass is its "
            "last statement and the step is not on it"
        )
    block = _with_computing(region, ctx)
    if block is not None:
        return _under_with(block, region)
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


def _under_with(block: cst.With, region: Region) -> str:
    """Why a forward pass under ``with torch.autocast(...):`` is not translated."""
    items = ", ".join(code_of(item).strip().rstrip(",") for item in block.items)
    return (
        f"the forward pass that computes `{region.loss}` runs under `with {items}:`, which "
        "the NNX loss function does not carry (a context manager such as torch.autocast "
        "changes how torch computes the forward pass, its dtype: port it by hand)"
    )


def _with_computing(region: Region, ctx: HookContext) -> cst.With | None:
    """The ``with`` statement before the region, in its block, whose body binds the loss
    (``with torch.autocast(...): logits, loss = model(x, y)``), if any."""
    start = _planned_first(region) if region.statements else None
    holder = ctx.parent_of(start) if start is not None else None
    body = list(getattr(holder, "body", ()))
    first = next((i for i, s in enumerate(body) if s is start), 0)
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
        changed = _bound_anywhere(statement)
        changed.add(changed_in_place(statement, suffix) or "")
        if changed & needed:
            needed |= _variables_of([statement])
            slice_.insert(0, statement)
        else:
            tail.insert(0, statement)
    return slice_, tail


def _bound_anywhere(statement: cst.BaseStatement) -> set[str]:
    """The names ``statement`` binds anywhere in it: its targets, those of the branches of an
    ``if``, and walrus targets (``print((loss := loss * 2).item())``: on main such a line
    before the backward pass ran after the gradient, which then missed the doubling)."""
    if not isinstance(statement, cst.SimpleStatementLine | cst.If):
        return {t.value for t in _target_names(statement)}  # (a `with`: the step's checks)
    return {
        name
        for node in cst_walk.walk(statement)
        if not isinstance(node, cst.CompFor)  # (a comprehension's own variables)
        for name in bound_names(node)
    }


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
