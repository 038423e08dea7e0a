"""An optimizer returned by a method of the model's own class, defined in the same file, and
stepped by the caller (build-nanogpt: ``model = GPT(...)``, ``optimizer =
model.configure_optimizers(...)``, ``optimizer.step()`` in the script's loop; issue 12).

The method's constructor becomes ``nnx.Optimizer(self, tx, wrt=...)`` (``self`` the instance
the method runs on), so the caller's step trains the call's receiver. This holds only when
the receiver is one instance of a module-level class of the file, built by ``X(...)``, whose
one method of that name (no other class of the file defines it, not decorated) reads ``self``
only as ``self.parameters()`` / ``self.named_parameters()`` (it changes no state of the model,
adds no parameter after the optimizer), ends in its only ``return`` of the name its one
constructor call binds, that constructor translated over ``self``, the file calls the
method nowhere else, and the receiver changes nowhere after the call in its scope
(``changed_models.changed_after``). The repository facts that the method is defined once and
every caller only steps and zeroes the value are ``CrossFile.method_call_type``'s (the
receiver's type).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.targets.hooks import HookContext, Untranslatable
from ml_switcheroo.targets.nnx.model import trained_model

PARAMETER_READS = frozenset({"parameters", "named_parameters"})


@dataclass(frozen=True)
class MethodBuilt:
    """The map constructor the method returns and the call's receiver (the trained model)."""

    constructor: cst.Call
    model: cst.Name


def method_built(call: cst.Call, ctx: HookContext) -> MethodBuilt:
    """``call`` (``model.configure_optimizers(...)``) as the constructor its method returns
    and the model it trains, or Untranslatable naming why not."""
    func = call.func
    if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)):
        raise Untranslatable(f"`{_code(func)}` is not a method called on a name")
    receiver, name = func.value, func.attr.value
    module = _module_of(call, ctx)
    cls = _receiver_class(receiver, module, ctx)
    method = _one_method(cls, name, module)
    calls = [
        n for n in cst_walk.walk(module) if isinstance(n, cst.Attribute) and n.attr.value == name
    ]
    if len(calls) != 1:
        raise Untranslatable(
            f"the file names `.{name}` {len(calls)} times (called once: not proven)"
        )
    constructor = _returned_constructor(method, ctx)
    _check_unchanged_after(call, ctx)
    return MethodBuilt(constructor, receiver)


def _check_unchanged_after(call: cst.Call, ctx: HookContext) -> None:
    """The receiver changes nowhere in the call's scope but provably before the call
    (``changed_models.changed_after``: ``model.head = nn.Linear(...)`` after it would be
    trained by the nnx.Optimizer, not by torch's)."""
    owner: cst.CSTNode | None = ctx.parent_of(call)
    while owner is not None and not isinstance(owner, (cst.FunctionDef, cst.Module)):
        owner = ctx.parent_of(owner)
    if owner is None:
        raise Untranslatable("the call's scope is not known")
    change = ctx.model_changed_after(call, owner)
    if change:
        raise Untranslatable(
            f"the model changes after the optimizer took its parameters (`{change}`): torch's "
            "optimizer keeps training the tensors it was given, nnx.Optimizer every nnx.Param "
            "the model holds"
        )


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node).strip()


def _module_of(node: cst.CSTNode, ctx: HookContext) -> cst.Module:
    parent: cst.CSTNode | None = node
    while parent is not None and not isinstance(parent, cst.Module):
        parent = ctx.parent_of(parent)
    if parent is None:
        raise Untranslatable("the call's module is not known")
    return parent


def _receiver_class(receiver: cst.Name, module: cst.Module, ctx: HookContext) -> cst.ClassDef:
    """The module-level class whose one ``X(...)`` call is the receiver's one value."""
    values = ctx.origins(receiver)
    value = values[0] if values is not None and len(values) == 1 else None
    if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Name)):
        raise Untranslatable(f"`{receiver.value}` is not bound once to an instance `X(...)`")
    name = value.func.value
    classes = [s for s in module.body if isinstance(s, cst.ClassDef) and s.name.value == name]
    binders = [n for n in cst_walk.walk(module) if _binds(n, name)]
    if len(classes) != 1 or len(binders) != 1:
        raise Untranslatable(
            f"the optimizer comes from a method of `{receiver.value}`, and `{name}` is not one "
            "class of this file bound once (the NNX step follows a method of its own file)"
        )
    return classes[0]


def _binds(node: cst.CSTNode, name: str) -> bool:
    """``node`` binds ``name`` (a class, a function, an assignment, an import alias)."""
    if isinstance(node, (cst.ClassDef, cst.FunctionDef)):
        return node.name.value == name
    if isinstance(node, (cst.AssignTarget, cst.AugAssign, cst.AnnAssign, cst.For)):
        target = node.target
        return any(isinstance(n, cst.Name) and n.value == name for n in cst_walk.walk(target))
    if isinstance(node, cst.ImportAlias):
        bound = node.asname.name if node.asname is not None else node.name
        return isinstance(bound, cst.Name) and bound.value == name
    return False


def _one_method(cls: cst.ClassDef, name: str, module: cst.Module) -> cst.FunctionDef:
    """The one ``def name`` of ``cls``, not decorated, defined by no other class of the file."""
    defined = [
        (c, f)
        for c in cst_walk.walk(module)
        if isinstance(c, cst.ClassDef)
        for f in c.body.body  # type: ignore[union-attr]
        if isinstance(f, cst.FunctionDef) and f.name.value == name
    ]
    if len(defined) != 1 or defined[0][0] is not cls:
        raise Untranslatable(f"`{name}` is defined {len(defined)} times in the file's classes")
    method = defined[0][1]
    if method.decorators or method.asynchronous or not method.params.params:
        raise Untranslatable(f"`{name}` is decorated, asynchronous or has no `self`")
    return method


def _returned_constructor(method: cst.FunctionDef, ctx: HookContext) -> cst.Call:
    """The translated constructor over ``self`` the method's one, last ``return`` returns."""
    shown = method.name.value
    own = method.params.params[0].name.value
    _check_self_reads(method, own, ctx)
    returns = [n for n in cst_walk.walk(method.body) if isinstance(n, cst.Return)]
    last = method.body.body[-1] if method.body.body else None
    if len(returns) != 1 or not (
        isinstance(last, cst.SimpleStatementLine) and last.body[-1] is returns[0]
    ):
        raise Untranslatable(f"`{shown}` does not end in its only `return`")
    value = returns[0].value
    origins = ctx.origins(value) if isinstance(value, cst.Name) else None
    constructor = origins[0] if origins is not None and len(origins) == 1 else None
    if not (isinstance(constructor, cst.Call) and ctx.translates(constructor)):
        raise Untranslatable(f"`{shown}` does not return one translated optimizer")
    model = trained_model(constructor, ctx)
    if not (isinstance(model, cst.Name) and model.value == own):
        raise Untranslatable(f"`{shown}`'s optimizer trains `{_code(model)}`, not `{own}`")
    return constructor


def _check_self_reads(method: cst.FunctionDef, own: str, ctx: HookContext) -> None:
    """``self`` read only as ``self.parameters()`` or ``self.named_parameters()``."""
    for node in cst_walk.walk(method.body):
        if not (isinstance(node, cst.Name) and node.value == own):
            continue
        attribute = ctx.parent_of(node)
        call = ctx.parent_of(attribute) if attribute is not None else None
        if not (
            isinstance(attribute, cst.Attribute)
            and attribute.value is node
            and attribute.attr.value in PARAMETER_READS
            and isinstance(call, cst.Call)
            and call.func is attribute
            and not call.args
        ):
            raise Untranslatable(
                f"`{method.name.value}` uses `{own}` other than through its parameters "
                f"(`{_code(attribute or node)}`: it may change the model)"
            )
