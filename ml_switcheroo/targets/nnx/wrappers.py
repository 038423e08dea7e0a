"""Model wrappers (the map's ``modules: wrappers``: DistributedDataParallel, DataParallel,
torch.compile) under the NNX target.

In torch a wrapper shares the model's parameters (``DDP(m).parameters()`` yields the very
tensors of ``m.parameters()``: torch 2.13, checked for DDP, DataParallel and torch.compile's
OptimizedModule) and calls it in its forward pass; the NNX program trains the unwrapped model.
So a step calling ``model`` trains the optimizer's model when every value reaching ``model`` is
that model or a map wrapper of it (``unwrapped_values``), and the wrapper's statement itself
escapes in place (``nnx_model_wrapper``): it is torch code the NNX program cannot run, and its
meaning is not the identity (DDP averages the gradients across processes), so the map's text
says what the JAX program does instead.
A loss reading the wrapper's attribute that is the wrapped module itself (the map's
``modules: unwrapped_by``: ``model.module(x)`` when every value of ``model`` is a DDP or
DataParallel, ``._orig_mod`` of torch.compile) calls the model (``unwrapping``); the loss
function calls its parameter there. Not done: ``raw_model = model.module if ddp else model``
is no value followed (unknown: a step through ``raw_model`` escapes).
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.dominating import dominating_assignment
from ml_switcheroo.model.translate import BoundCall, render_text
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext, register_hook

DEPTH = 3  # wrappers followed through other names (``ddp = DDP(model)``) at most this deep


def wrapper_call(value: cst.BaseExpression, ctx: HookContext) -> cst.Call | None:
    """The map wrapper call a value is, under the map's self-returning module methods
    (``DataParallel(model).cuda()`` -> ``DataParallel(model)``); None: not a wrapper."""
    inner = under_self_methods(value, ctx)
    wrappers = ctx.semantic_map.modules.wrappers
    if isinstance(inner, cst.Call) and any(q in wrappers for q in ctx.qualify(inner.func)):
        return inner
    return None


def wrapped_model(call: cst.Call) -> cst.BaseExpression | None:
    """The model a wrapper call wraps: its one positional argument before any keyword (the
    first parameter of each wrapper of the map); None when it is not given so."""
    first = call.args[0] if call.args else None
    if first is None or first.keyword is not None or first.star:
        return None
    return first.value


def under_self_methods(value: cst.BaseExpression, ctx: HookContext) -> cst.BaseExpression:
    """``x`` of ``x.to(device).cuda()`` (the map's module methods returning the module)."""
    methods = ctx.semantic_map.modules.self_methods
    while (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in methods
    ):
        value = value.func.value
    return value


def rebound_to_itself(value: cst.BaseExpression, ctx: HookContext) -> bool:
    """``x = x.to(device)`` (the map's self-returning methods: the same object) or ``x =
    DDP(x, ...)`` / ``self.m = torch.compile(self.m)`` (a map wrapper of what ``x`` held):
    a binding whose value is what the name held before, or a wrapper of it."""
    inner = _innermost(value, ctx)  # torch.compile(DDP(x)) -> x
    receiver = under_self_methods(inner, ctx) if inner is not None else value
    if receiver is value or dotted_name(receiver) is None:
        return False
    assign = ctx.parent_of(value)
    return (
        isinstance(assign, cst.Assign)
        and len(assign.targets) == 1
        and dotted_name(assign.targets[0].target) == dotted_name(receiver)
    )


def unwrapped_values(
    node: cst.BaseExpression,
    ctx: HookContext,
    depth: int = 0,
    met: list[cst.Call] | None = None,
) -> list[cst.BaseExpression] | None:
    """Every value that reaches a model expression (a Name or ``self.x``), a binding to
    itself or to a map wrapper of itself not counted (``rebound_to_itself``), and a map
    wrapper or a self-returning method of another name replaced by the values of that name
    (``ddp = DDP(model)``, ``self.model = model.to(rank)``: the same model); None when
    unknown (a value that cannot be followed, too deep). ``met``: collects the wrapper calls
    met on the way."""
    values = _distinct(ctx.origins(node))
    if values is None:
        return None
    found: list[cst.BaseExpression] = []
    for value in values:
        if met is not None and (call := wrapper_call(value, ctx)) is not None:
            met.append(call)
        if rebound_to_itself(value, ctx):
            continue
        inner = _innermost(value, ctx)
        if inner is None:
            return None
        if inner is value or dotted_name(inner) is None:
            found.append(inner)  # the object built there (``DDP(make_model())``)
            continue
        if depth >= DEPTH:
            return None
        below = unwrapped_values(inner, ctx, depth + 1, met)
        if below is None:
            return None
        found.extend(below)
    return _distinct(found)


def _innermost(value: cst.BaseExpression, ctx: HookContext) -> cst.BaseExpression | None:
    """What nested map wrappers and self-returning methods leave (``torch.compile(DDP(
    model.to(rank)))`` -> ``model``); ``value`` itself when it is neither; None when a
    wrapper's model is not given positionally."""
    inner = under_self_methods(value, ctx)
    while (call := wrapper_call(inner, ctx)) is not None:
        model = wrapped_model(call)
        if model is None:
            return None
        inner = under_self_methods(model, ctx)
    return inner


def _distinct(values: list[cst.BaseExpression] | None) -> list[cst.BaseExpression] | None:
    """``values`` without repeats of one node."""
    if values is None:
        return None
    return list({id(value): value for value in values}.values())


def unwrapping(node: cst.BaseExpression, ctx: HookContext) -> cst.Name | None:
    """``model`` of ``model.module`` when the value ``model`` holds there is provably a map
    wrapper (``model = DDP(model)``, the one assignment the read sees:
    ``analysis.dominating``) whose attribute ``module`` is the module it wraps (the map's
    ``unwrapped_by``: ``DDP(m).module is m``): torch's ``model.module`` is then what the
    wrapper wraps; None otherwise (another attribute, another value on some path)."""
    if not isinstance(node, cst.Attribute) or not isinstance(node.value, cst.Name):
        return None
    assign = dominating_assignment(node.value, ctx.parent_of)
    call = wrapper_call(assign.value, ctx) if assign is not None else None
    names = ctx.qualify(call.func) if call is not None else []
    by = ctx.semantic_map.modules.unwrapped_by
    if not names or any(by.get(q) != node.attr.value for q in names):
        return None
    return node.value


def check_no_wrapper_attribute(
    statements: Sequence[cst.BaseStatement], model: cst.BaseExpression, ctx: HookContext
) -> None:
    """A step over a wrapped model (``model = DDP(model)``) whose loss reads an attribute of
    it (``model.config``: on the NNX model, the unwrapped one, a submodule of that name or
    nothing) escapes, unless the attribute is the wrapped model itself (``unwrapping``:
    ``model.module``, which the loss function reads as its parameter)."""
    met: list[cst.Call] = []
    unwrapped_values(model, ctx, met=met)
    if not met:
        return
    shown = code_of(model).strip()
    for node in (n for s in statements for n in _nodes(s)):
        if not isinstance(node, cst.Attribute) or dotted_name(node.value) != shown:
            continue
        if unwrapping(node, ctx) is None:
            raise Untranslatable(
                f"the loss reads `{code_of(node).strip()}` of `{shown}`, a wrapper "
                f"(`{' '.join(code_of(met[0]).split())}`, {ctx.place(met[0]) or 'this file'}): "
                "the NNX model is the unwrapped one, and reading the wrapper's attributes "
                "through it is not translated (only the wrapped model itself, "
                f"{_unwrapping_names(ctx)}, where `{shown}` provably holds that wrapper: "
                f"`{shown} = <wrapper>(...)` alone on its line, earlier in the block holding "
                "the read, nothing rebinding it in between)"
            )


def _unwrapping_names(ctx: HookContext) -> str:
    """```.module` of DataParallel, `._orig_mod` of torch.compile``: the map's
    ``unwrapped_by`` (a class by its last name, a function by its dotted name)."""
    by = ctx.semantic_map.modules.unwrapped_by
    shown = {f"`.{a}` of {_short_name(w)}": None for w, a in sorted(by.items())}
    return ", ".join(shown)


def _short_name(qualified: str) -> str:
    last = qualified.rsplit(".", 1)[-1]
    return last if last[:1].isupper() else qualified


def check_wrapped_constructor_model(model: cst.BaseExpression, ctx: HookContext) -> None:
    """An optimizer built over a model some value of which is a map wrapper of another name
    (``if ddp: model = DDP(other)`` before ``SGD(model.parameters())``): torch trains the
    wrapped object's parameters, so the nnx.Optimizer is right only once that line is ported
    as its escape says (``model = other``); deleted, it would train another model. The
    constructor converts when what every value unwraps to is one model (the step's rule,
    ``unwrapped_values``), else it escapes with the step. A wrapper rebinding the name to a
    wrapper of itself (``model = DDP(model)``) is the same model whether ported or deleted."""
    values = _distinct(ctx.origins(model)) or []
    wrapped = [v for v in values if wrapper_call(v, ctx) and not rebound_to_itself(v, ctx)]
    if not wrapped:
        return
    unwrapped = unwrapped_values(model, ctx)
    if unwrapped is not None and len(unwrapped) == 1:
        return
    shown = code_of(model).strip()
    raise Untranslatable(
        f"the model `{shown}` may be `{' '.join(code_of(wrapped[0]).split())}` "
        f"({ctx.place(wrapped[0]) or 'this file'}), a wrapper of another object: the "
        "nnx.Optimizer trains the unwrapped model, and what the values of "
        f"`{shown}` unwrap to is not provably one model",
        "port the model and the wrapper first; build "
        "`nnx.Optimizer(<the unwrapped model>, tx, wrt=nnx.Param)`",
    )


@register_hook(
    "model_wrapper",
    requires=("reason", "suggest"),
    placeholders=("name", "wrapped"),
    role=roles.TYPE,
)
def nnx_model_wrapper(node: cst.Call, ctx: HookContext) -> cst.Call:
    """Hook for a model wrapper of the map (``model = DDP(model, device_ids=[rank])``) in a
    file that translates an optimizer: the statement escapes in place with the map's text (what
    the NNX program does instead); elsewhere it is left as written."""
    if not _translates_an_optimizer(node, ctx):
        return node
    target, model = _assigned_target(node, ctx), wrapped_model(node)
    assign = ctx.parent_of(ctx.parent_of(target)) if target is not None else None  # type: ignore[arg-type]
    inner = _innermost(assign.value, ctx) if isinstance(assign, cst.Assign) else None
    if inner is None or inner is getattr(assign, "value", None):
        target = None  # not `x = <wrappers and self-methods of a model>`
    else:
        model = inner  # torch.compile(DDP(model)): the model
    names = {
        "name": code_of(target).strip() if target is not None else "model",
        "wrapped": code_of(model).strip() if model is not None else "the model",
    }
    call = BoundCall(ctx.entry, node, {})
    assert ctx.entry.reason and ctx.entry.suggest
    raise Untranslatable(
        render_text(ctx.entry.reason, call, names), render_text(ctx.entry.suggest, call, names)
    )


def _assigned_target(node: cst.Call, ctx: HookContext) -> cst.BaseExpression | None:
    """``x`` of ``x = <node>`` (through self-returning methods and other wrappers: ``x =
    DDP(m).cuda()``, ``x = torch.compile(DDP(m))``)."""
    parent = ctx.parent_of(node)
    while isinstance(parent, (cst.Attribute, cst.Call, cst.Arg)):
        parent = ctx.parent_of(parent)
    if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
        return parent.targets[0].target
    return None


def _translates_an_optimizer(node: cst.CSTNode, ctx: HookContext) -> bool:
    """Whether the file holding ``node`` has an optimizer constructor this command translates."""
    module = _module_of(node, ctx)
    if module is None:
        return False
    calls = (n for n in _nodes(module) if isinstance(n, cst.Call))
    return any(_translated_constructor(n, ctx) for n in calls)


def _translated_constructor(call: cst.Call, ctx: HookContext) -> bool:
    entries = (ctx.semantic_map.apis.get(q) for q in ctx.qualify(call.func))
    constructor = any(e is not None and e.role == roles.CONSTRUCTOR for e in entries)
    return constructor and ctx.translates(call)


def one_origin_through_wrappers(
    callee: cst.BaseExpression, trained: cst.BaseExpression, ctx: HookContext
) -> bool:
    """``self.model`` stored from a name and stored again as a map wrapper of itself
    (``self.model = model.to(rank)``, later ``self.model = DDP(self.model, ...)``): the one
    value it unwraps to (``unwrapped_values``) and the optimizer's model ``trained`` have one
    origin (``HookContext.model_origin``), every store of ``.model`` in the file being one of
    those the class makes (``_stores_seen``)."""
    if not isinstance(callee, cst.Attribute):
        return False
    stores = ctx.origins(callee)
    values = unwrapped_values(callee, ctx)
    if stores is None or values is None or len(values) != 1:
        return False
    if not isinstance(values[0], cst.Name) or not _stores_seen(callee.attr.value, stores, ctx):
        return False
    origin = ctx.model_origin(values[0])
    return origin is not None and origin is ctx.model_origin(trained)


_DYNAMIC = frozenset({"setattr", "delattr", "vars", "__dict__", "__setattr__", "exec"})


def _stores_seen(attribute: str, values: list[cst.BaseExpression], ctx: HookContext) -> bool:
    """Every place in the file that may set ``<anything>.<attribute>`` is an assignment of
    one of ``values`` (the class's stores): no other store, augmented or annotated store,
    deletion, loop or ``with`` target, definition of that name, nor ``setattr``/``__dict__``."""
    module = _module_of(values[0], ctx) if values else None
    if module is None:
        return False
    seen = {id(v) for v in values}
    for node in _nodes(module):
        if isinstance(node, cst.Name) and node.value in _DYNAMIC:
            return False
        if isinstance(node, cst.FunctionDef) and node.name.value == attribute:
            return False
        if isinstance(node, cst.ClassDef) and attribute in _class_level_names(node):
            return False
        if isinstance(node, cst.Assign):
            for target in node.targets:
                for element in _flat(target.target):
                    if _names_attribute(element, attribute) and id(node.value) not in seen:
                        return False
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For, cst.AsName, cst.Del)):
            target = node.name if isinstance(node, cst.AsName) else node.target
            if any(_names_attribute(e, attribute) for e in _flat(target)):
                return False
    return True


def _class_level_names(node: cst.ClassDef) -> set[str]:
    """Names a class body binds by assignment (``model = None`` at class level)."""
    names: set[str] = set()
    for statement in node.body.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            targets = [t.target for t in getattr(small, "targets", ())]
            if isinstance(small, (cst.AnnAssign, cst.AugAssign)):
                targets = [small.target]
            names |= {e.value for t in targets for e in _flat(t) if isinstance(e, cst.Name)}
    return names


def _names_attribute(node: cst.CSTNode, attribute: str) -> bool:
    return isinstance(node, cst.Attribute) and node.attr.value == attribute


def _flat(target: cst.CSTNode) -> list[cst.CSTNode]:
    """The targets of a (nested) tuple or list target."""
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for e in target.elements for n in _flat(e.value)]
    return [target]


def _module_of(node: cst.CSTNode, ctx: HookContext) -> cst.Module | None:
    current: cst.CSTNode | None = node
    while current is not None and not isinstance(current, cst.Module):
        current = ctx.parent_of(current)
    return current


def _nodes(node: cst.CSTNode) -> list[cst.CSTNode]:
    found: list[cst.CSTNode] = []
    stack = [node]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(cst_walk.children(current))
    return found
