"""The model an NNX optimizer trains: the receiver of ``.parameters()`` in its constructor."""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.parameters import select
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.semantic_map import ApiEntry
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.optax.optimizer_step import (
    PathMaskedGroups,
    plain_tx,
    rank_split_model,
    without_neutral_kwargs,
)

PARAMS = "params"
OPTIMIZER = "nnx.Optimizer({model}, {tx}, wrt=nnx.Param)"
# the paths of nnx.state(model, nnx.Param) end in `.value` and name NNX's leaves (`kernel`)
PATH_NOTE = (
    "  # n: the leaf's path in nnx.state(model, nnx.Param), e.g. `h.0.attn.kernel.value`, "
    "not the torch name: check the predicate against it"
)


def trained_model(constructor: cst.Call, ctx: HookContext) -> cst.BaseExpression:
    """``model`` of ``torch.optim.X(model.parameters(), ...)`` (a name or ``self.a.b``), or of
    param groups splitting every parameter of ``model`` by rank (the tx masks the option that
    differs); anything else (other param groups, a list, a filter) is untranslatable."""
    entry = _constructor_entry(constructor, ctx)
    bound = entry.signature.bind(without_neutral_kwargs(constructor, ctx, entry))
    argument = bound.get(PARAMS)
    value = argument.value if argument is not None else None
    if (
        isinstance(value, cst.Call)
        and not value.args
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value == "parameters"
        and dotted_name(value.func.value) is not None
    ):
        return value.func.value
    selected = _selected_module(constructor, value, ctx) if value is not None else None
    if selected is not None:
        return selected
    model = _rank_split_model(constructor, ctx, entry) if value is not None else None
    if model is not None and _bound_once(model, ctx):
        return model
    models = _chained_models(value, ctx) if value is not None else None
    if models is not None:
        raise _chained_models_escape(constructor, value, models, ctx, entry)  # type: ignore[arg-type]
    shown = " ".join(code_of(value).split()) if value is not None else "nothing"
    raise Untranslatable(
        f"nnx.Optimizer trains one model's parameters (`model.parameters()`); this optimizer "
        f"is given `{shown}` (param groups, a part or a list of parameters)",
        "nnx.Optimizer(model, tx, wrt=<an nnx filter selecting those parameters>)",
    )


def _selected_module(
    constructor: cst.Call, value: cst.BaseExpression, ctx: HookContext
) -> cst.BaseExpression | None:
    """The one module whose every parameter ``value`` selects (``Selection.module``: through
    ``list(...)``, a ``requires_grad`` filter, ``[p for p in m.parameters()]``), written in the
    constructor's argument or a name bound once (``_bound_once``: the same object where the
    constructor runs); else None."""
    module = select(value, ctx.names(), ctx.semantic_map.parameters).module
    if module is None:
        return None
    if any(node is module for node in cst_walk.walk(constructor)) or _bound_once(module, ctx):
        return module
    return None


def _parameters_receiver(node: cst.BaseExpression) -> str | None:
    """``model`` (a dotted name) of ``model.parameters()`` called without arguments."""
    if (
        isinstance(node, cst.Call)
        and not node.args
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "parameters"
    ):
        return dotted_name(node.func.value)
    return None


def _chained_models(value: cst.BaseExpression, ctx: HookContext) -> list[str] | None:
    """The models of ``itertools.chain(a.parameters(), b.parameters(), ...)`` (a function of
    the map's ``parameter_chains``, positional ``<model>.parameters()`` of two or more distinct
    dotted names); None for any other argument."""
    if not isinstance(value, cst.Call) or not any(
        name in ctx.semantic_map.parameter_chains for name in ctx.qualify(value.func)
    ):
        return None
    if any(arg.keyword is not None or arg.star for arg in value.args):
        return None
    models = [_parameters_receiver(arg.value) for arg in value.args]
    names = [m for m in models if m is not None]
    if len(names) != len(models) or len(set(names)) != len(names) or len(names) < 2:
        return None
    return names


def _chained_models_escape(
    constructor: cst.Call,
    value: cst.BaseExpression,
    models: list[str],
    ctx: HookContext,
    entry: ApiEntry,
) -> Untranslatable:
    """The escape of an optimizer over the chained parameters of several models: one
    nnx.Optimizer over a tuple of them is exact, with a loss function of the tuple."""
    tx = plain_tx(constructor, ctx, entry) or "<this optimizer's optax translation>"
    group = ", ".join(models)
    shown = " ".join(code_of(value).split())
    return Untranslatable(
        f"this optimizer trains the parameters of {len(models)} models (`{shown}`); one "
        f"nnx.Optimizer over the tuple `({group})` trains them exactly as torch does (its "
        "update is per parameter), but the step's loss must then be a function of that "
        "tuple, which this translation does not write",
        f"models = ({group}); optimizer = nnx.Optimizer(models, {tx}, wrt=nnx.Param); "
        f"in the step: loss, grads = nnx.value_and_grad(lambda models: <the loss, reading "
        f"{group} from `{group} = models`>)(models); optimizer.update(models, grads)",
    )


def _bound_once(model: cst.BaseExpression, ctx: HookContext) -> bool:
    """``model`` (read where the groups are built, not in the constructor) is a name bound
    once in its scope, or never in the file: the constructor's ``model`` is the same object."""
    if not isinstance(model, cst.Name):
        return False
    variable = ctx.variable(model)
    return variable is None or len(variable.values) == 1


def _rank_split_model(
    constructor: cst.Call, ctx: HookContext, entry: ApiEntry
) -> cst.BaseExpression | None:
    """``rank_split_model``; groups split by names escape suggesting the model's
    nnx.Optimizer over the optax target's tx with a path mask."""
    try:
        return rank_split_model(constructor, ctx, entry)
    except PathMaskedGroups as exc:
        if exc.tx is None or exc.receiver is None or dotted_name(exc.receiver) is None:
            raise
        model = code_of(exc.receiver).strip()
        suggestion = OPTIMIZER.format(model=model, tx=exc.tx) + PATH_NOTE
        raise Untranslatable(exc.reason, suggestion) from None


def _constructor_entry(constructor: cst.Call, ctx: HookContext) -> ApiEntry:
    """The map entry of an optimizer constructor call (``ctx.entry`` when it is the hook's)."""
    if ctx.entry.role == roles.CONSTRUCTOR:
        return ctx.entry
    for name in ctx.qualify(constructor.func):
        entry = ctx.semantic_map.apis.get(name)
        if entry is not None and entry.role == roles.CONSTRUCTOR:
            return entry
    raise Untranslatable(f"`{code_of(constructor.func).strip()}` is not an optimizer of the map")
