"""Statements between the backward pass and the step that only record values (``train_loss
+= loss.item()``, ``losses.append(loss.item())``, ``print(...)``): the NNX step runs them
where torch does, after the gradient and before the update (issue 13, pytorch/examples' VAE).

Such a statement changes no gradient only when nothing it runs can reach one: it is one simple
statement (an expression, or an assignment to plain names), reads no gradient attribute
(``.grad``), runs no backward pass, and each call in it is a builtin, a function of a module
the map lists under ``recording_modules`` (``math.floor``, ``logging.info``: functions that only
read their arguments), or a method of a value the forward pass computed (``loss.item()``), of
a literal, of a name bound only to a list, dict or set display (``losses = []``), or one of
the map's ``recording_methods`` of a name bound only to a call of its class
(``pbar.set_description(...)`` of ``pbar = tqdm(loader)``). An ``if`` (``elif``, ``else``) of
such statements under a harmless test records values too (minDiffusion's loss EMA). A call of
a function of the file or of another module (``helpers.scale_grads()`` of the user's package,
``torch._foreach_mul_(grads, 0.5)``), or a method of another object (``self.log(...)``,
``tracker.update(...)``), may read or edit the gradients through what it holds (a global of
its module, its arguments): the step escapes. It must not
read a name a statement left in place between the backward pass and the step binds (a clip's
norm is computed after the moved statements in the NNX step); the moved ones keep their
order. The model, the optimizer and the map's APIs are the tail's rules
(``step_checks._check_tail``).

Two more kinds run there (build-nanogpt's order: clip, ``lr = get_lr(step)``, the lr written
through ``param_groups``, step): a call of a function of the file proven to change nothing
(``HookContext.helper_problem``: it reads its arguments, number constants of the module and the
recording modules) with number literals and ``for ... in range`` counters as arguments; and a
learning-rate write of an injected optimizer, or an ``if`` of only such writes
(``learning_rate.lr_write``), rendered as the write of its stored lr before the update (torch
reads the lr at ``step()``; the stored lr persists until the next write, as torch's does).
"""

from __future__ import annotations

import builtins

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.spec.signature import dotted_name
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.learning_rate import lr_write

_DISPLAYS = (cst.List, cst.Dict, cst.Set)


def logged_after_backward(
    region: Region,
    backward_index: int,
    step_statement: cst.BaseStatement,
    computed: set[str],
    ctx: HookContext,
) -> list[cst.BaseStatement]:
    """The statements between the backward pass and the step (not under an accumulation's
    condition) that only record values; ``computed``: names the forward pass binds."""
    if step_statement is not region.anchor.statement:
        return []
    end = next((i for i, s in enumerate(region.statements) if s is step_statement), None)
    if end is None:  # the step is nested in a statement of the region (a `match` case)
        return []
    between = region.statements[backward_index + 1 : end]
    found = list(between)
    while True:  # drop those reading a name a statement left in place binds, to a fixpoint
        left = [s for s in between if not any(s is f for f in found)]
        bound = bound_by(left)
        kept = [s for s in found if _records_values(s, computed, bound, ctx)]
        if len(kept) == len(found):
            return kept
        found = kept


def records_values(statement: cst.BaseStatement, computed: set[str], ctx: HookContext) -> bool:
    """Whether ``statement`` only records values (the module's rules; ``computed``: names the
    forward pass binds): an ``if`` of logging between the loss and the backward pass
    (``if i % 100 == 0: print(loss.item())``) runs after the gradient on that condition."""
    return _records_values(statement, computed, set(), ctx)


def _records_values(
    statement: cst.BaseStatement, computed: set[str], bound: set[str], ctx: HookContext
) -> bool:
    written = lr_write(statement, ctx)
    if written is not None:  # the stored lr the update reads: written before it, as in torch
        return all(_reads_harmlessly(read, computed, bound, ctx) for read in written[1])
    if isinstance(statement, cst.If):
        return _if_records_values(statement, computed, bound, ctx)
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, (cst.Expr, cst.Assign, cst.AugAssign)):
        return False
    if any(not isinstance(t, cst.Name) for t in _targets(small)):
        return False
    return _reads_harmlessly(statement, computed, bound, ctx)


def _if_records_values(
    statement: cst.If, computed: set[str], bound: set[str], ctx: HookContext
) -> bool:
    """``if loss_ema is None: loss_ema = loss.item() else: ...``: a harmless test, and
    branches (``elif`` and ``else`` too) of statements that each record values."""
    if not _reads_harmlessly(statement.test, computed, bound, ctx):
        return False
    blocks = [statement.body]
    orelse = statement.orelse
    if isinstance(orelse, cst.If):
        if not _if_records_values(orelse, computed, bound, ctx):
            return False
    elif orelse is not None:
        blocks.append(orelse.body)
    return all(
        isinstance(block, cst.IndentedBlock)
        and all(_records_values(s, computed, bound, ctx) for s in block.body)
        for block in blocks
    )


def _reads_harmlessly(
    checked: cst.CSTNode, computed: set[str], bound: set[str], ctx: HookContext
) -> bool:
    """No gradient attribute, no backward pass, no name ``bound`` in place, harmless calls."""
    hidden = {*ctx.semantic_map.gradient_attributes, *ctx.semantic_map.backward_methods}
    for node in cst_walk.walk(checked):
        if isinstance(node, cst.Attribute) and node.attr.value in hidden:
            return False
        if isinstance(node, cst.Name) and node.value in bound:
            return False
        if isinstance(node, cst.Call) and not (
            harmless_call(node.func, computed, ctx) or _proven_function_call(node, ctx)
        ):
            return False
    return True


def _proven_function_call(call: cst.Call, ctx: HookContext) -> bool:
    """``get_lr(step)``: a module-level function of the file proven to read only its
    arguments, number constants of the module and the recording modules, changing nothing
    (``HookContext.helper_problem``), called with number literals and counters of the ``for
    ... in range(...)`` loops around the call (no tensor, model or optimizer reaches it)."""
    if not isinstance(call.func, cst.Name):
        return False
    counters = _range_counters(call, ctx)
    for arg in call.args:
        if arg.star or not _counter_arithmetic(arg.value, counters):
            return False
    return ctx.helper_problem(call.func, frozenset(ctx.semantic_map.recording_modules)) is None


def _range_counters(node: cst.CSTNode, ctx: HookContext) -> set[str]:
    """The names the ``for NAME in range(...)`` loops around ``node`` count with."""
    counters: set[str] = set()
    parent = ctx.parent_of(node)
    while parent is not None:
        if (
            isinstance(parent, cst.For)
            and isinstance(parent.target, cst.Name)
            and isinstance(parent.iter, cst.Call)
            and isinstance(parent.iter.func, cst.Name)
            and parent.iter.func.value == "range"
            and ctx.variable(parent.iter.func) is None
        ):
            counters.add(parent.target.value)
        parent = ctx.parent_of(parent)
    return counters


def _counter_arithmetic(value: cst.BaseExpression, counters: set[str]) -> bool:
    """A number literal, a loop counter, or ``+ - *`` of those (``step + 1``)."""
    if isinstance(value, (cst.Integer, cst.Float)):
        return True
    if isinstance(value, cst.Name):
        return value.value in counters
    if isinstance(value, cst.BinaryOperation) and isinstance(
        value.operator, (cst.Add, cst.Subtract, cst.Multiply)
    ):
        return _counter_arithmetic(value.left, counters) and _counter_arithmetic(
            value.right, counters
        )
    return False


def harmless_call(func: cst.BaseExpression, computed: set[str], ctx: HookContext) -> bool:
    """A builtin, a function of a recording module, or a method of a computed value, a
    literal or a list/dict/set display (see the module's docstring)."""
    if isinstance(func, cst.Name):
        return hasattr(builtins, func.value) and ctx.variable(func) is None
    if not isinstance(func, cst.Attribute):
        return False
    root = func.value
    while isinstance(root, (cst.Attribute, cst.Call, cst.Subscript)):
        root = root.func if isinstance(root, cst.Call) else root.value
    if isinstance(root, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
        return True
    if not isinstance(root, cst.Name):
        return False
    if root.value in computed or _of_recording_module(func, ctx):
        return True
    if func.value is root and _of_recording_object(func, root, ctx):
        return True
    values = ctx.origins(root)
    return bool(values) and all(isinstance(v, _DISPLAYS) for v in values)  # type: ignore[union-attr]


def _of_recording_module(func: cst.Attribute, ctx: HookContext) -> bool:
    """Whether ``func`` is a function of a module of the map's ``recording_modules``."""
    modules = ctx.semantic_map.recording_modules
    qualified = ctx.qualify(func)
    return bool(qualified) and all(q.rpartition(".")[0] in modules for q in qualified)


def _of_recording_object(func: cst.Attribute, root: cst.Name, ctx: HookContext) -> bool:
    """``pbar.set_description(...)``: every value reaching ``pbar`` is a call of a class of
    the map's ``recording_methods`` that lists this method (``pbar = tqdm(loader)``)."""
    methods = ctx.semantic_map.recording_methods
    values = ctx.origins(root)
    if not values:
        return False
    for value in values:
        if not isinstance(value, cst.Call):
            return False
        qualified = ctx.qualify(value.func)
        if not qualified or any(func.attr.value not in methods.get(q, ()) for q in qualified):
            return False
    return True


def bound_by(statements: list[cst.BaseStatement]) -> set[str]:
    """Names the statements bind (a clip's norm, ``norm = clip_grad_norm_(...)``)."""
    names: set[str] = set()
    for statement in statements:
        for node in cst_walk.walk(statement):
            if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
                names |= {dotted_name(t) or "" for t in _targets(node)}
    return names - {""}


def _targets(small: cst.CSTNode) -> list[cst.BaseExpression]:
    if isinstance(small, cst.Assign):
        return [t.target for t in small.targets]
    if isinstance(small, (cst.AugAssign, cst.AnnAssign)):
        return [small.target]
    return []
