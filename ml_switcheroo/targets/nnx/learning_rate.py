"""Manual learning-rate writes for the NNX target (nanoGPT style):

    for param_group in opt.param_groups:
        param_group["lr"] = lr

becomes ``opt.opt_state.hyperparams["learning_rate"][...] = lr`` and the optimizer's tx
``optax.inject_hyperparams(optax.<name>)(learning_rate=..., ...)``: the stored learning rate is
what the next ``update`` uses, so this is exact wherever and however often torch wrote it.
Only an optimizer bound once to a plain name, whose every ``param_groups`` use is such a write,
and whose tx is one ``optax.<name>(learning_rate=...)`` call (no schedule, no clipping chain)
is rewritten; any other use of ``param_groups`` escapes (reads: not done yet, issue 13 D4).
"""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext, ReplaceStatement
from ml_switcheroo.targets.optax.lr_scheduler import escape_scheduler_read

PARAM_GROUPS = "param_groups"
LR_KEY = "lr"  # torch's key of the learning rate in a param group
HYPERPARAMETER = "learning_rate"  # the optax argument (and inject_hyperparams key) it becomes
WRITE = '{state}.hyperparams["learning_rate"][...] = {value}\n'


def nnx_scheduler_read(node: cst.CSTNode, ctx: HookContext) -> cst.CSTNode | ReplaceStatement:
    """The NNX target's ``scheduler_read`` hook: in ``for g in opt.param_groups: g["lr"] = v``
    of an injected optimizer, ``opt.param_groups`` makes the loop a write to its state;
    anything else is the optax target's hook (an escape)."""
    if not ctx.receiver_translated():
        return node
    is_groups = isinstance(node, cst.Attribute) and node.attr.value == PARAM_GROUPS
    write = _write_of_injected(node, ctx) if is_groups else None  # type: ignore[arg-type]
    if write is None:
        return escape_scheduler_read(node, ctx)
    receiver = code_of(node.value).strip()  # type: ignore[attr-defined]
    text = WRITE.format(state=ctx.state_of(receiver), value=code_of(write).strip())
    return ReplaceStatement(cst.parse_statement(text))


def injected_tx(
    constructor: cst.Call, tx: cst.BaseExpression, ctx: HookContext
) -> cst.BaseExpression:
    """``tx`` wrapped in ``optax.inject_hyperparams`` when the optimizer ``constructor`` builds
    has manual lr writes that all translate and ``tx`` takes them; else ``tx`` unchanged."""
    if not manual_lr_writes(constructor, ctx) or not _injectable(tx, ctx):
        return tx
    assert isinstance(tx, cst.Call)
    function = ctx.semantic_map.inject_function
    ctx.add_import(function.partition(".")[0])
    return tx.with_changes(func=cst.Call(cst.parse_expression(function), [cst.Arg(tx.func)]))


def manual_lr_writes(constructor: cst.Call, ctx: HookContext) -> list[cst.For]:
    """The ``for g in opt.param_groups: g["lr"] = <value>`` loops of the optimizer built by
    ``constructor`` (``opt = constructor``, bound once); empty when there is none or when
    ``param_groups`` is used any other way (then nothing is rewritten)."""
    target = ctx.assigned_to(constructor)
    if not isinstance(target, cst.Name):
        return []
    variable = ctx.variable(target)
    if variable is None or len(variable.values) != 1 or variable.values[0] is not constructor:
        return []
    found: list[cst.For] = []
    for read in variable.reads:
        if len(read) < 2 or not _is_param_groups(read[1], read[0]):
            continue
        loop = read[2] if len(read) > 2 else None
        if not isinstance(loop, cst.For) or loop.iter is not read[1] or _lr_value(loop) is None:
            return []
        found.append(loop)
    return found


def _write_of_injected(node: cst.Attribute, ctx: HookContext) -> cst.BaseExpression | None:
    """The value written, when ``node`` is the loop of a manual lr write of an optimizer whose
    translation injects its hyper-parameters."""
    if not isinstance(node.value, cst.Name):
        return None
    origins = ctx.origins(node.value)
    if not origins or len(origins) != 1 or not isinstance(origins[0], cst.Call):
        return None
    constructor = origins[0]
    translation = ctx.translation_of(constructor)
    if translation is None or not _injects(cst.parse_expression(translation), ctx):
        return None
    loops = [loop for loop in manual_lr_writes(constructor, ctx) if loop.iter is node]
    return _lr_value(loops[0]) if loops else None


def _injects(translation: cst.BaseExpression, ctx: HookContext) -> bool:
    """``nnx.Optimizer(model, optax.inject_hyperparams(optax.<name>)(...), ...)``."""
    if not isinstance(translation, cst.Call) or len(translation.args) < 2:
        return False
    tx = translation.args[1].value
    return (
        isinstance(tx, cst.Call)
        and isinstance(tx.func, cst.Call)
        and dotted_name(tx.func.func) == ctx.semantic_map.inject_function
    )


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
    if _reads(assign.value, loop.target.value):
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


def _reads(node: cst.CSTNode, name: str) -> bool:
    if isinstance(node, cst.Name) and node.value == name:
        return True
    return any(_reads(child, name) for child in node.children)
