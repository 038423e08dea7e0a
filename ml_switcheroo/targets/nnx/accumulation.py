"""Gradient accumulation for the NNX target (issue 13, D4):

    opt = torch.optim.X(model.parameters(), ...)      opt = nnx.Optimizer(model, optax.MultiSteps(
    for i, (x, y) in enumerate(loader):                   <tx>, every_k_schedule=k,
        loss = loss_fn(model(x), y) / k                   use_grad_mean=False,
        loss.backward()                          ->       accumulator_dtype=None), wrt=nnx.Param)
        if (i + 1) % k == 0:                          (the step: value_and_grad and
            opt.step()                                 ``opt.update(model, grads)`` every batch)
            opt.zero_grad()

torch adds the gradient of every ``backward()`` into ``.grad`` and steps with the sum of the
last k; MultiSteps with ``use_grad_mean=False`` adds the gradients of k ``update`` calls in the
same order and applies the tx to the sum (zero updates in between), whatever the loss is divided
by; ``accumulator_dtype=None`` accumulates in the parameters' dtype (checked on optax 0.2.8).
Exact only when the k-th, 2k-th... backward since the optimizer was built is where torch steps:
the counter is the index of ``enumerate`` over a loop in the optimizer's block (it never
restarts) or a name set once to an integer there and incremented once per backward; one step,
its zero_grad right after it under the same ``if``, no other zero_grad but before the loop,
no jump in the loop body; between the backward pass and the ``if`` only the counter's increment
and logging (one simple statement reading neither the optimizer, the model, the condition's
names, a loss scaler nor ``.grad``: the NNX step runs it after the gradient). Clip calls
right before the step under the same ``if`` clip the sum: they head the chain inside
MultiSteps (only when the constructor folded them). Anything else is a reason (the step
escapes). A scheduler built over the optimizer must step in the condition
after the step (then the planner folds it: its count inside MultiSteps is the applied
updates'). A GradScaler: ``scaler.scale(loss).backward()`` every batch, and in the condition
``scaler.unscale_(opt)`` first (the clips after it), ``scaler.step(opt)`` and
``scaler.update()`` right after it, no other use of the scaler (its scale stays one power of
two over the k backward passes, so the unscaled sum is torch's exactly). Not done: an
optimizer held by ``self.x`` or passed to a function.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis import cst_walk, stepping
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.logged import bound_by, harmless_call

STEP = "step"
ZERO_GRAD = "zero_grad"
BACKWARD = "backward"
RENDER = "{function}({tx}, every_k_schedule={k}, use_grad_mean=False, accumulator_dtype=None)"


@dataclass(frozen=True)
class Accumulation:
    """An optimizer stepped every ``k`` backward passes under ``check`` (``if ...:``), the
    counter incremented by ``increment`` (None: the index of ``enumerate``)."""

    k: int
    check: cst.If
    increment: cst.BaseStatement | None = None
    clips: tuple[cst.Call, ...] = ()  # clip calls in ``check`` before the step (in the chain)


def accumulated_tx(tx: cst.BaseExpression, k: int, ctx: HookContext) -> cst.BaseExpression:
    """``tx`` wrapped in the map's accumulating transformation (``optax.MultiSteps``)."""
    function = ctx.semantic_map.accumulate_function
    ctx.add_import(function.partition(".")[0])
    return cst.parse_expression(RENDER.format(function=function, tx=code_of(tx).strip(), k=k))


def is_accumulated(translation: str | None, ctx: HookContext) -> bool:
    """Whether a constructor's translation (``nnx.Optimizer(model, tx, ...)``) accumulates."""
    if translation is None:
        return False
    call = cst.parse_expression(translation)
    if not isinstance(call, cst.Call) or len(call.args) < 2:
        return False
    tx = call.args[1].value
    function = ctx.semantic_map.accumulate_function
    return isinstance(tx, cst.Call) and dotted_name(tx.func) == function


def accumulation(constructor: cst.Call, ctx: HookContext) -> Accumulation | str | None:
    """How the optimizer ``constructor`` builds is stepped: every k backward passes exactly as
    MultiSteps does (an ``Accumulation``), under a condition that is not that (why), or under
    no condition (None)."""
    uses = _optimizer_uses(constructor, ctx)
    if uses is None:
        return None
    steps, zero_grads, others = uses
    checks = [_check_of(step, ctx) for step in steps]
    if not any(check is not None for check in checks):
        return None
    name = code_of(constructor_target(constructor, ctx)).strip()
    if len(steps) != 1:
        return (
            f"`{name}` is stepped {len(steps)} times (a step after the loop flushes a partial "
            "accumulation, which optax.MultiSteps never applies)"
        )
    schedulers = [other for other in others if _is_scheduler_of(other, ctx)]
    others = [other for other in others if not _is_scheduler_of(other, ctx)]
    others = [o for o in others if _scaler_method(o, ctx) != ScalerCall.UNSCALE]
    if others:
        shown = code_of(others[0]).strip()
        return f"`{name}` is used otherwise too (`{shown}`), so its steps may not all be seen"
    check = checks[0]
    assert check is not None
    reason = _check_body(check, steps[0], zero_grads, name, ctx)
    reason = reason or _schedulers_in_check(schedulers, check, name, ctx)
    reason = reason or _scaler_outside(steps[0], check, ctx)
    if reason is not None:
        return reason
    return _every_k(constructor, check, zero_grads, ctx)


def _schedulers_in_check(
    schedulers: list[cst.CSTNode], check: cst.If, name: str, ctx: HookContext
) -> str | None:
    """Why a scheduler built over the optimizer breaks the accumulation (it does not step
    once per update: in the step's condition, after the step), or None."""
    lines = check.body.body if isinstance(check.body, cst.IndentedBlock) else ()
    stepped = {
        code_of(line.body[0].value.func.value).strip()  # type: ignore[attr-defined]
        for line in lines
        if _scheduler_step(line, name, ctx)
    }
    for scheduler in schedulers:
        if _component(scheduler, ctx):
            continue  # SequentialLR(opt, [LinearLR(opt, ...), ...]): the outer one steps
        target = ctx.assigned_to(scheduler)  # type: ignore[arg-type]
        shown = code_of(target).strip() if target is not None else code_of(scheduler).strip()
        if shown not in stepped:
            return (
                f"`{shown}`, a scheduler of `{name}`, does not step in the step's condition "
                "(once per update): its steps do not follow the accumulated updates"
            )
    return None


def constructor_target(constructor: cst.Call, ctx: HookContext) -> cst.BaseExpression | None:
    return ctx.assigned_to(constructor)


def _optimizer_uses(
    constructor: cst.Call, ctx: HookContext
) -> tuple[list[cst.Call], list[cst.Call], list[cst.CSTNode]] | None:
    """The ``opt.step()`` calls, the ``opt.zero_grad()`` calls and the other reads of the
    optimizer ``opt = constructor`` (a name bound once); None for any other optimizer."""
    target = ctx.assigned_to(constructor)
    if not isinstance(target, cst.Name):
        return None
    variable = ctx.variable(target)
    if variable is None or len(variable.values) != 1 or variable.values[0] is not constructor:
        return None
    steps: list[cst.Call] = []
    zero_grads: list[cst.Call] = []
    others: list[cst.CSTNode] = []
    for read in variable.reads:
        method = read[1] if len(read) > 2 else None
        call = read[2] if len(read) > 2 else None
        if (
            isinstance(method, cst.Attribute)
            and method.value is read[0]
            and isinstance(call, cst.Call)
            and call.func is method
        ):
            if method.attr.value == STEP:
                steps.append(call)
                continue
            if method.attr.value == ZERO_GRAD:
                zero_grads.append(call)
                continue
        argument = len(read) > 2 and isinstance(read[1], cst.Arg)
        if argument and _scaler_method(read[2], ctx) == ScalerCall.STEP:
            steps.append(read[2])  # type: ignore[arg-type]  # `scaler.step(opt)`
            continue
        others.append(read[2] if argument else read[1] if len(read) > 1 else read[0])
    return steps, zero_grads, others


class ScalerCall:
    """What a call of a loss scaler (GradScaler) is to the accumulation."""

    STEP = "step"  # `scaler.step(opt)`: unscales (unless done) and steps `opt`
    UNSCALE = "unscale"  # `scaler.unscale_(opt)`
    UPDATE = "update"  # `scaler.update()`
    OTHER = "other"


def _scaler_method(node: cst.CSTNode, ctx: HookContext) -> str | None:
    """For ``scaler.<method>(...)`` with ``scaler`` a name bound once to a loss scaler of the
    map (a type with a ``scaler_step`` method): what the call is; None for any other node."""
    if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)):
        return None
    if _scaler_of(node.func.value, ctx) is None:
        return None
    method, names = node.func.attr.value, ctx.semantic_map.scaler_methods
    if method == names.unscale:
        return ScalerCall.UNSCALE
    if method == names.update:
        return ScalerCall.UPDATE
    return ScalerCall.STEP if method == STEP else ScalerCall.OTHER


def _scaler_of(receiver: cst.BaseExpression, ctx: HookContext) -> cst.Name | None:
    """``receiver`` when it is a name bound once to a loss scaler of the map."""
    if not isinstance(receiver, cst.Name):
        return None
    origins = ctx.origins(receiver)
    built = origins[0] if origins is not None and len(origins) == 1 else None
    if not isinstance(built, cst.Call):
        return None
    for name in ctx.qualify(built.func):
        type_name = ctx.semantic_map.canonical_type(name)
        entry = ctx.semantic_map.method(type_name, STEP) if type_name else None
        if entry is not None and entry.role == roles.SCALER_STEP:
            return receiver
    return None


def _check_of(step: cst.Call, ctx: HookContext) -> cst.If | None:
    """The ``if`` whose indented body holds the line of ``step``, else None."""
    line = ctx.line_alone(step)
    block = ctx.parent_of(line) if line is not None else None
    check = ctx.parent_of(block) if isinstance(block, cst.IndentedBlock) else None
    return check if isinstance(check, cst.If) else None


def _check_body(
    check: cst.If, step: cst.Call, zero_grads: list[cst.Call], name: str, ctx: HookContext
) -> str | None:
    """Why the ``if`` is not exactly ``if <test>: opt.step(); opt.zero_grad()`` (no else, no
    comment, no argument), or None."""
    shape = f"`if ...: {name}.step(); {name}.zero_grad()` alone"
    body = check.body
    if check.orelse is not None or not isinstance(body, cst.IndentedBlock):
        return f"the condition of the step has an else branch or is not {shape}"
    lines = list(body.body)
    lines = lines[len(_unscale_lines(check, ctx)) + len(_clip_calls(check, ctx)) :]
    zero_lines = [ctx.line_alone(z) for z in zero_grads]
    steps = [line for line in lines if _scheduler_step(line, name, ctx)]
    if steps and lines.index(steps[0]) == 0:
        return f"a scheduler steps before `{name}.step()` in the step's condition"
    lines = [line for line in lines if line not in steps]
    if len(lines) > 1 and _scaler_line(lines[1], ctx) == ScalerCall.UPDATE:
        lines.pop(1)  # `scaler.update()` right after `scaler.step(opt)`: the step's
    if (
        len(lines) != 2
        or lines[0] is not ctx.line_alone(step)
        or lines[1] not in zero_lines
        or len(step.args) != (1 if _scaler_method(step, ctx) == ScalerCall.STEP else 0)
    ):
        return (
            f"the step's condition does not hold exactly {shape}, the zero_grad right after "
            "the step (torch then steps with other gradients than the sum of the last k)"
        )
    comments = body.header.comment is not None or body.footer
    comments = comments or any(
        line.leading_lines or line.trailing_whitespace.comment is not None  # type: ignore[union-attr]
        for line in lines
    )
    if comments:
        return "a comment inside the step's condition (it would be lost)"
    return None


def _scaler_line(line: cst.BaseStatement, ctx: HookContext) -> str | None:
    """What ``line`` is when it is a call of a loss scaler alone on it (else None)."""
    small = line.body[0] if isinstance(line, cst.SimpleStatementLine) else None
    if not isinstance(small, cst.Expr) or len(line.body) != 1:  # type: ignore[union-attr]
        return None
    return _scaler_method(small.value, ctx)


def _unscale_lines(check: cst.If, ctx: HookContext) -> list[cst.BaseStatement]:
    """``scaler.unscale_(opt)`` as the first line of ``check``'s body (the clips after it see
    the true summed gradients), or nothing."""
    lines = check.body.body if isinstance(check.body, cst.IndentedBlock) else ()
    first = lines[0] if lines else None
    unscale = first is not None and _scaler_line(first, ctx) == ScalerCall.UNSCALE
    return [first] if unscale else []  # type: ignore[list-item]


def _scaler_outside(step: cst.Call, check: cst.If, ctx: HookContext) -> str | None:
    """For ``scaler.step(opt)``: why a use of ``scaler`` breaks the accumulation (one outside
    the step's condition but ``scaler.scale(loss)`` of the backward pass), or None."""
    scaler = _scaler_of(step.func.value, ctx) if isinstance(step.func, cst.Attribute) else None
    variable = ctx.variable(scaler) if scaler is not None else None
    if scaler is None:
        return None
    if variable is None:
        return f"the uses of the loss scaler `{scaler.value}` are not known"
    scale = ctx.semantic_map.scaler_methods.scale
    for read in variable.reads:
        call = read[2] if len(read) > 2 else None
        if _inside(read[0], check, ctx):
            continue
        if isinstance(call, cst.Call) and call.func is read[1] and _scaler_scales(call, scale):
            continue
        shown = code_of(call if isinstance(call, cst.Call) else read[0]).strip()
        return (
            f"`{shown}` uses the loss scaler outside the accumulation's condition (torch "
            "updates or reads its scale there; the translation drops the scaler)"
        )
    return None


def _component(scheduler: cst.CSTNode, ctx: HookContext) -> bool:
    """A scheduler built inside the arguments of another scheduler of the map."""
    current = ctx.parent_of(scheduler)
    while current is not None and not isinstance(current, cst.BaseStatement):
        if current is not scheduler and _is_scheduler_of(current, ctx):
            return True
        current = ctx.parent_of(current)
    return False


def _scaler_scales(call: cst.Call, scale: str | None) -> bool:
    """``scaler.scale(loss)`` whose value is the receiver of ``.backward()``."""
    return isinstance(call.func, cst.Attribute) and call.func.attr.value == scale


def _inside(node: cst.CSTNode, outer: cst.CSTNode, ctx: HookContext) -> bool:
    current: cst.CSTNode | None = node
    while current is not None:
        if current is outer:
            return True
        current = ctx.parent_of(current)
    return False


def _is_scheduler_of(node: cst.CSTNode, ctx: HookContext) -> bool:
    """``Scheduler(opt, ...)``: a scheduler of the map built over the optimizer (whether it
    steps once per update is the planner's: the constructor folds it only then)."""
    if not isinstance(node, cst.Call):
        return False
    entries = (ctx.semantic_map.apis.get(q) for q in ctx.qualify(node.func))
    return any(e is not None and e.role == roles.SCHEDULER for e in entries)


def _scheduler_step(line: cst.BaseStatement, optimizer: str, ctx: HookContext) -> bool:
    """``sched.step()`` alone on ``line``, ``sched`` bound once to a scheduler of the map
    built over ``optimizer``."""
    small = line.body[0] if isinstance(line, cst.SimpleStatementLine) else None
    call = small.value if isinstance(small, cst.Expr) and len(line.body) == 1 else None  # type: ignore[union-attr]
    if not (
        isinstance(call, cst.Call)
        and not call.args
        and isinstance(call.func, cst.Attribute)
        and call.func.attr.value == STEP
        and isinstance(call.func.value, cst.Name)
    ):
        return False
    origins = ctx.origins(call.func.value)
    built = origins[0] if origins is not None and len(origins) == 1 else None
    return (
        isinstance(built, cst.Call)
        and _is_scheduler_of(built, ctx)
        and bool(built.args)
        and dotted_name(built.args[0].value) == optimizer
    )


def _every_k(
    constructor: cst.Call, check: cst.If, zero_grads: list[cst.Call], ctx: HookContext
) -> Accumulation | str:
    """The ``Accumulation`` when ``check.test`` is true exactly at the k-th, 2k-th... backward
    pass since the optimizer was built; else why not."""
    test = " ".join(code_of(check.test).split())
    condition = stepping.every_k(check.test)
    k = _integer_of(condition.k, ctx) if condition is not None else None
    if condition is None or k is None or k < 1:
        return (
            f"the step runs under `if {test}:`, not `counter % k == 0` with k an integer "
            "literal (or a name bound once to one, which no `exec`/`globals()` of the file "
            "nor another file may rebind)"
        )
    block = ctx.parent_of(check)
    loop = ctx.parent_of(block) if isinstance(block, cst.IndentedBlock) else None
    if not isinstance(loop, cst.For) or loop.orelse is not None:
        return f"`if {test}:` is not directly in the body of a for loop"
    assert isinstance(block, cst.IndentedBlock)
    before = list(block.body)[: list(block.body).index(check)]
    if sum(_is_backward(statement) for statement in before) != 1:
        return f"not exactly one `loss.backward()` runs before `if {test}:` in the loop body"
    if stepping.jumps(block):
        return (
            "a `continue`, `break`, `return` or `raise` in the loop body may skip a backward "
            "pass or the check while the counter goes on"
        )
    backward = next(i for i, line in enumerate(before) if _is_backward(line))
    held = _held_names(constructor, check, ctx)
    computed = bound_by(before[:backward])
    for line in before[backward + 1 :]:
        if stepping.increment(line, condition.counter.value) or _logs_only(
            line, held, computed, ctx
        ):
            continue
        return (
            f"`{code_of(line).strip()}` runs between the backward pass and the step's "
            "condition (gradients read or edited on every batch)"
        )
    home = _home_block(constructor, ctx)
    if home is None:
        return "the optimizer is not built by a statement of its own"
    counter = _counter(condition.counter, loop, block, check, home, ctx)
    if isinstance(counter, str):
        return counter
    reason = _zero_grads_outside(zero_grads, check, home, ctx)
    if reason is not None:
        return reason
    first = counter.start + condition.offset + int(counter.incremented_before_check) - 1
    if first % k != 0:
        return (
            f"`if {test}:` is first true after {(-first) % k or k} backward passes, not after "
            f"{k} (off by one: torch steps with fewer gradients first)"
        )
    increments = [s for s in block.body if stepping.increment(s, condition.counter.value)]
    increment = increments[0] if increments else None
    return Accumulation(k, check, increment, tuple(_clip_calls(check, ctx)))


def _held_names(constructor: cst.Call, check: cst.If, ctx: HookContext) -> set[str]:
    """The names a statement between the backward pass and the step's condition must not
    read: the optimizer, the trained model's root and every name the condition reads."""
    names = {n.value for n in _names_in(check)}
    target = constructor_target(constructor, ctx)
    if target is not None:
        names.add(code_of(target).strip().split(".")[0])
    params = constructor.args[0].value if constructor.args else None
    if isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute):
        names.add(code_of(params.func.value).strip().split(".")[0])
    return names


def _logs_only(
    line: cst.BaseStatement, held: set[str], computed: set[str], ctx: HookContext
) -> bool:
    """``losses.append(loss.item())`` / ``total += loss.item()``: one simple statement that
    reads none of ``held`` (the optimizer, the model, the condition's names, a loss scaler),
    no ``.grad``, runs no backward pass and calls only what cannot reach a gradient
    (``logged.harmless_call``; ``computed``: names the forward pass binds): it changes no
    gradient (the NNX step runs it after the gradient, before the update). A function of
    the file (``scale_grads()``) may edit the gradients through a global model."""
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        return False
    if isinstance(line.body[0], (cst.Return, cst.Raise, cst.Global, cst.Nonlocal, cst.Del)):
        return False
    backward = ctx.semantic_map.backward_methods
    for node in cst_walk.walk(line):
        if isinstance(node, cst.Name) and node.value in held:
            return False
        if isinstance(node, cst.Attribute) and node.attr.value in {"grad", *backward}:
            return False
        if isinstance(node, cst.Name) and _scaler_of(node, ctx) is not None:
            return False
        if isinstance(node, cst.Call) and not harmless_call(node.func, computed, ctx):
            return False
    return True


def _names_in(node: cst.CSTNode) -> list[cst.Name]:
    return [n for n in cst_walk.walk(node) if isinstance(n, cst.Name)]


def _clip_calls(check: cst.If, ctx: HookContext) -> list[cst.Call]:
    """The clip calls of the map alone on the first lines of ``check``'s body (the accumulated
    gradients are clipped before the step: the optimizer's chain does it on the sum)."""
    found: list[cst.Call] = []
    lines = check.body.body if isinstance(check.body, cst.IndentedBlock) else ()
    for line in lines[len(_unscale_lines(check, ctx)) :]:
        small = line.body[0] if isinstance(line, cst.SimpleStatementLine) else None
        call = small.value if isinstance(small, cst.Expr) else None
        if not isinstance(call, cst.Call) or len(line.body) != 1:  # type: ignore[union-attr]
            break
        entries = (ctx.semantic_map.apis.get(q) for q in ctx.qualify(call.func))
        if not any(e is not None and e.role == roles.CLIP for e in entries):
            break
        found.append(call)
    return found


def _integer_of(node: cst.BaseExpression, ctx: HookContext) -> int | None:
    """An integer literal, or a name bound once (in its scope) to one that no other code may
    rebind by name (``ctx.global_shared``: the file's ``exec``/``globals()``, another file
    naming it)."""
    if not isinstance(node, cst.Name):
        return stepping.integer(node)
    variable = ctx.variable(node)
    if variable is None or len(variable.values) != 1 or variable.values[0] is None:
        return None
    if ctx.global_shared(node.value):
        return None
    return stepping.integer(variable.values[0])


def _shared_reason(name: str) -> str:
    """Why a counter other code may rebind by name is not the count of backward passes."""
    return (
        f"`{name}` may be rebound by name outside what this file's code shows (the file uses "
        "`exec`/`globals()`/`setattr` on its module, or another file names it): it is not "
        "provably the count of backward passes"
    )


def _home_block(
    constructor: cst.Call, ctx: HookContext
) -> tuple[cst.IndentedBlock | cst.Module, cst.BaseStatement] | None:
    """The block holding ``opt = constructor`` and that statement."""
    assign = ctx.parent_of(constructor)
    line = ctx.parent_of(assign) if isinstance(assign, cst.Assign) else None
    block = ctx.parent_of(line) if isinstance(line, cst.SimpleStatementLine) else None
    if not isinstance(block, (cst.IndentedBlock, cst.Module)):
        return None
    assert isinstance(line, cst.SimpleStatementLine)
    return block, line


def _top_statement(
    node: cst.CSTNode, home: tuple[cst.IndentedBlock | cst.Module, cst.BaseStatement], ctx
) -> cst.BaseStatement | None:
    """The statement of the optimizer's block, after its construction, that holds ``node``."""
    block, constructed = home
    body = list(block.body)
    current: cst.CSTNode | None = node
    while current is not None:
        parent = ctx.parent_of(current)
        if parent is block:
            index = next((i for i, s in enumerate(body) if s is current), None)
            after = index is not None and index > body.index(constructed)
            return current if after else None  # type: ignore[return-value]
        current = parent
    return None


def _counter(
    name: cst.Name,
    loop: cst.For,
    block: cst.IndentedBlock,
    check: cst.If,
    home: tuple[cst.IndentedBlock | cst.Module, cst.BaseStatement],
    ctx: HookContext,
) -> stepping.Counter | str:
    """``name`` as the count of backward passes since the optimizer was built: the index of
    ``enumerate`` over ``loop`` in the optimizer's block, or a name set once to an integer in
    the optimizer's block and incremented once in ``block``."""
    text = name.value
    variable = ctx.variable(name)
    if variable is None:
        return f"`{text}` is not a variable of this scope"
    if ctx.global_shared(text):
        return _shared_reason(text)
    start = stepping.enumerated_start(loop, text)
    if start is not None and len(variable.values) == 1:
        if _top_statement(check, home, ctx) is not loop:
            return (
                f"`{text}` restarts with each pass of an outer loop (an epoch): torch carries "
                "the gradients of a last partial accumulation into the next epoch's first step "
                "(unless the batches per epoch are a multiple of k, unknown here), "
                "optax.MultiSteps counts across epochs"
            )
        return stepping.Counter(start, incremented_before_check=False)
    return _incremented_counter(text, variable, block, check, home, ctx)


def _incremented_counter(
    text: str,
    variable: object,
    block: cst.IndentedBlock,
    check: cst.If,
    home: tuple[cst.IndentedBlock | cst.Module, cst.BaseStatement],
    ctx: HookContext,
) -> stepping.Counter | str:
    """``text = <int>`` before the loop in the optimizer's block and ``text += 1`` in the loop
    body ``block``, its only two bindings."""
    reason = (
        f"`{text}` is not provably the count of backward passes: a counter is set once to an "
        f"integer literal before the loop, next to the optimizer, and incremented once with "
        f"`{text} += 1` in the loop body that runs the backward pass"
    )
    values = getattr(variable, "values", ())
    increments = [i for i, s in enumerate(block.body) if stepping.increment(s, text)]
    owner, _ = home
    starts = [s for s in owner.body if stepping.initial_value(s, text) is not None]
    if len(values) != 2 or len(increments) != 1 or len(starts) != 1:
        return reason
    top = _top_statement(check, home, ctx)
    body = list(owner.body)
    if top is None or body.index(starts[0]) > body.index(top):
        return reason
    initial = stepping.initial_value(starts[0], text)
    assert initial is not None
    before = increments[0] < list(block.body).index(check)
    return stepping.Counter(initial, incremented_before_check=before)


def _zero_grads_outside(
    zero_grads: list[cst.Call],
    check: cst.If,
    home: tuple[cst.IndentedBlock | cst.Module, cst.BaseStatement],
    ctx: HookContext,
) -> str | None:
    """Why a zero_grad other than the one in ``check`` breaks the accumulation, or None: each
    other one must be alone on a line of the optimizer's block, before the loop."""
    owner, _ = home
    body = list(owner.body)
    top = _top_statement(check, home, ctx)
    assert top is not None
    for call in zero_grads:
        line = ctx.line_alone(call)
        if line is not None and ctx.parent_of(line) is check.body:
            continue
        if line is not None and line in body and body.index(line) < body.index(top):
            continue
        return (
            f"`{code_of(call).strip()}` runs outside the step's condition: torch then drops "
            "gradients optax.MultiSteps keeps (or the reverse)"
        )
    return None


def _is_backward(statement: cst.BaseStatement) -> bool:
    """``<x>.backward(...)`` alone on its line."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    return (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and isinstance(small.value.func, cst.Attribute)
        and small.value.func.attr.value == BACKWARD
    )
