"""Loss helpers copied into the NNX loss function (issue 13, s26d: pytorch/examples' VAE).

``loss = loss_function(recon_batch, data, mu, logvar)`` calls a function of the file whose body
calls torch tensor methods a JAX array lacks or computes otherwise (``mu.pow(2)``,
``logvar.exp()``): run unchanged on JAX arrays it would raise or compute other numbers. When the
analysis proves the function pure but for those calls (``HookContext.copied_helper``), a copy of
it is written at the top of ``loss_fn``, under the same name (the module's function stays for
its other callers), with each such call the map's ``exact`` template writes (``(mu ** 2)``,
``jnp.exp(logvar)``) on a value known to be a torch tensor (``analysis/torch_tensors.py``): a
parameter every call of the loss passes a tensor, or a local computed from one. Any other such
call (on a NumPy array, a Python value, a parameter given something else), a ``.item()``, or
parameters other than plain ones escape the step with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.loss_helpers import namesake_problem, rejecting_call
from ml_switcheroo.analysis.torch_tensors import is_tensor, known_tensors
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.namesake_rewrite import (
    ExactNamesakes,
    attribute_receivers,
    exact_text,
    rendered_by_code,
)


def helper_copies(
    forward: Sequence[cst.BaseStatement],
    libraries: frozenset[str],
    tensors: set[str],
    model_call: Callable[[cst.Call], bool],
    ctx: HookContext,
) -> tuple[list[cst.FunctionDef], list[str]]:
    """The copies of the functions the loss calls that do not run unchanged but may be copied
    (each once, in the order of their first call), and the JAX texts they write (for the
    imports); ``tensors``: the names of the loss known to be torch tensors, ``model_call``:
    whether a call makes one."""
    calls: dict[str, list[cst.Call]] = {}
    functions: dict[str, cst.FunctionDef] = {}
    for call in (n for s in forward for n in cst_walk.walk(s) if isinstance(n, cst.Call)):
        func = call.func
        if not isinstance(func, cst.Name) or ctx.helper_problem(func, libraries) is None:
            continue
        function = ctx.copied_helper(func, libraries)
        if isinstance(function, cst.FunctionDef):
            functions.setdefault(func.value, function)
            calls.setdefault(func.value, []).append(call)
    copies, texts = [], []
    computed = _stored_names(forward)
    for name, function in functions.items():
        copy, written = _copy(name, function, calls[name], tensors, model_call, ctx, computed)
        copies.append(copy)
        texts.extend(written)
    return copies, texts


def _copy(
    name: str,
    function: cst.FunctionDef,
    calls: list[cst.Call],
    tensors: set[str],
    model_call: Callable[[cst.Call], bool],
    ctx: HookContext,
    computed: frozenset[str] = frozenset(),
) -> tuple[cst.FunctionDef, list[str]]:
    """The copy of ``function`` with its namesake calls written, and their JAX texts;
    ``computed``: the names the loss function's statements bind (a parameter any call site
    gives a value reading one, or a call, may carry a gradient: with every local of the copy,
    it counts as computed for the templates' ``undifferentiated`` parameters, s37)."""
    where = f"`{name}`, copied into the loss function,"
    params = function.params
    if params.star_arg is not cst.MaybeSentinel.DEFAULT or params.kwonly_params:
        raise Untranslatable(f"{where} has parameters other than plain ones")
    if params.star_kwarg is not None or params.posonly_params:
        raise Untranslatable(f"{where} has parameters other than plain ones")
    names = [p.name.value for p in params.params]
    spec = ctx.semantic_map.tensor_values
    given = [_arguments(call, names, where) for call in calls]
    entry = {
        n: all(
            (a := g.get(n)) is not None and is_tensor(a, tensors, model_call, ctx.qualify, spec)
            for g in given
        )
        for n in names
    }
    body = list(function.body.body) if isinstance(function.body, cst.IndentedBlock) else []
    if not body:
        raise Untranslatable(f"{where} is not a block of statements")
    inside = known_tensors(body, lambda call: False, ctx.qualify, spec, entry=entry)
    carried = {
        n
        for n in names
        if any(
            (a := g.get(n)) is None or _may_carry_gradient(a, computed, model_call) for g in given
        )
    }
    carried |= _stored_names(body)
    nodes = [n for s in body for n in cst_walk.walk(s)]
    read = attribute_receivers(body)
    namesakes = ctx.semantic_map.array_namesakes
    functions = ctx.semantic_map.array_functions  # `torch.sum(...)`, `torch.cat(...)`: s37
    texts: dict[str, str] = {}
    render = rendered_by_code(texts)  # (an argument's own calls first: `torch.sum(torch.cat(...))`)
    concrete = ctx.semantic_map.concrete_methods
    for call in reversed([n for n in nodes if isinstance(n, cst.Call)]):
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in concrete:
            method = call.func.attr.value
            raise Untranslatable(f"{where} calls `.{method}()` (a traced value has no number)")
        text = exact_text(
            call,
            namesakes,
            inside,
            ctx.qualify,
            read=read,
            functions=functions,
            render=render,
            computed=frozenset(carried),
        )
        if text is not None:
            texts[code_of(call).strip()] = text
            continue
        rejecting = rejecting_call(call, ctx.qualify, ctx.semantic_map.tracer_rejecting_packages)
        if rejecting is not None:
            raise Untranslatable(f"{where} calls {rejecting}")
        problem = namesake_problem(call, namesakes, ctx.qualify)
        if problem is not None:
            raise Untranslatable(f"{where} {_not_known(call, inside)}: {problem}")
    copy = function.with_changes(leading_lines=())
    copy = copy.visit(ExactNamesakes(texts)) if texts else copy
    return copy, list(texts.values())  # type: ignore[return-value]


def _stored_names(statements: Sequence[cst.CSTNode]) -> frozenset[str]:
    """Every name the statements store into (assignments, loop targets, walrus, ``with ...
    as``), at any depth."""
    found: set[str] = set()
    for node in (n for s in statements for n in cst_walk.walk(s)):
        targets: list[cst.CSTNode] = []
        stores = (cst.AssignTarget, cst.AugAssign, cst.AnnAssign, cst.For, cst.NamedExpr)
        if isinstance(node, stores):
            targets = [node.target]
        elif isinstance(node, cst.AsName):
            targets = [node.name]
        for target in targets:
            found |= {n.value for n in cst_walk.walk(target) if isinstance(n, cst.Name)}
    return frozenset(found)


def _may_carry_gradient(
    node: cst.BaseExpression, computed: frozenset[str], model_call: Callable[[cst.Call], bool]
) -> bool:
    """Whether an argument reads a name the loss function binds, an attribute (``model.weight``)
    or calls anything (a model, a function): its value may carry a gradient torch follows."""
    reads = (cst.Call, cst.Attribute)
    return any(
        (isinstance(n, cst.Name) and n.value in computed) or isinstance(n, reads)
        for n in cst_walk.walk(node)
    )


def _arguments(call: cst.Call, names: list[str], where: str) -> dict[str, cst.BaseExpression]:
    """Each parameter's argument at ``call`` (a starred argument escapes)."""
    found: dict[str, cst.BaseExpression] = {}
    for index, arg in enumerate(call.args):
        if arg.star:
            raise Untranslatable(f"{where} is called with a starred argument")
        if arg.keyword is not None:
            found[arg.keyword.value] = arg.value
        elif index < len(names):
            found[names[index]] = arg.value
    return found


def _not_known(call: cst.Call, tensors: set[str]) -> str:
    """Why the namesake call stays: its receiver is not known to be a torch tensor."""
    receiver = call.func.value if isinstance(call.func, cst.Attribute) else call.func
    shown = code_of(receiver).strip()
    if isinstance(receiver, cst.Name) and receiver.value not in tensors:
        return f"calls a torch method on `{shown}`, not known to be a torch tensor"
    return f"calls `{code_of(call.func).strip()}`, which no template writes there"


def with_copies(
    rendered: list[cst.BaseStatement], copies: Sequence[cst.FunctionDef]
) -> list[cst.BaseStatement]:
    """``rendered`` with ``copies`` at the top of its first function (the loss function)."""
    index = next(i for i, s in enumerate(rendered) if isinstance(s, cst.FunctionDef))
    loss_fn = rendered[index]
    assert isinstance(loss_fn, cst.FunctionDef) and isinstance(loss_fn.body, cst.IndentedBlock)
    body = loss_fn.body.with_changes(body=[*copies, *loss_fn.body.body])
    return [*rendered[:index], loss_fn.with_changes(body=body), *rendered[index + 1 :]]
