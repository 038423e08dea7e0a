"""Which optimizer ``x.m(...)`` returns when ``m`` is a method of ``x``'s class of this file
(build-nanogpt: ``model = GPT(...)``, ``optimizer = model.configure_optimizers(...)``; issue
12): the planner's fact ``BuiltByMethod``, or why it is not one.

It is one when the receiver is one instance of a module-level class of the file, built by
``X(...)`` (``X`` bound once in the file), whose one method of that name (no other class of the
file defines it; not decorated, not asynchronous, with a ``self``) reads ``self`` only as
``self.parameters()`` / ``self.named_parameters()`` (it changes no state of the model, adds
no parameter after the optimizer), ends in its only ``return`` of a name one call reaches (the
constructor), and the file names the method nowhere else. Whether that constructor translates
and trains ``self`` is the target's question; the model's changes after the call are
``changed_models``' (``BuiltByMethod.change``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.signature import code_of

PARAMETER_READS = frozenset({"parameters", "named_parameters"})

# the values reaching a node read in a method of the class (None: unknown)
Origins = Callable[[cst.BaseExpression, cst.ClassDef | None], list[cst.BaseExpression] | None]
# the first change to the model ``call`` reads in ``owner`` not provably before it (None: none)
ChangedAfter = Callable[[cst.Call, cst.FunctionDef | cst.Module, cst.ClassDef | None], str | None]


@dataclass(frozen=True)
class BuiltByMethod:
    """``call`` (``receiver.method(...)``) returns the optimizer ``constructor`` builds in
    ``method`` of the file's class ``owner`` (``self_name``: the method's ``self``); ``change``:
    the first change to the receiver after the call in its scope (None: none); ``target``: the
    name the call's value is assigned to (None: none)."""

    call: cst.Call
    receiver: cst.Name
    owner: cst.ClassDef
    method: cst.FunctionDef
    self_name: str
    constructor: cst.Call
    change: str | None
    target: cst.Name | None = None  # ``opt`` of ``opt = call``


@dataclass(frozen=True)
class FileFacts:
    """What the fact reads of the file: its tree, the parents of its nodes, the values
    reaching a name, and the model's changes after a call (``changed_models``)."""

    module: cst.Module
    parents: Mapping[cst.CSTNode, cst.CSTNode]
    origins: Origins
    changed_after: ChangedAfter


class NotBuiltByMethod(Exception):
    """Why a call is not ``BuiltByMethod`` (the reason, in words for an escape)."""


def built_by_method(call: cst.Call, facts: FileFacts) -> BuiltByMethod | str:
    """``call``'s ``BuiltByMethod``, or the reason it is not one."""
    try:
        return _built_by_method(call, _enclosing_class(call, facts.parents), facts)
    except NotBuiltByMethod as exc:
        return str(exc)


def method_caller(
    constructor: cst.Call,
    parents: Mapping[cst.CSTNode, cst.CSTNode],
    module: cst.Module,
    fact_of: Callable[[cst.Call], BuiltByMethod | str],
) -> BuiltByMethod | None:
    """The ``BuiltByMethod`` of the file's one call ``x.m(...)`` of the method ``m`` of a
    class holding ``constructor``, when ``constructor`` is the one it returns (None: none)."""
    method: cst.CSTNode | None = parents.get(constructor)
    while method is not None and not isinstance(method, cst.FunctionDef):
        method = parents.get(method)
    block = parents.get(method) if method is not None else None
    if not (isinstance(method, cst.FunctionDef) and isinstance(parents.get(block), cst.ClassDef)):  # type: ignore[arg-type]
        return None
    name = method.name.value
    named = [
        n for n in cst_walk.walk(module) if isinstance(n, cst.Attribute) and n.attr.value == name
    ]
    call = parents.get(named[0]) if len(named) == 1 else None
    if not (isinstance(call, cst.Call) and call.func is named[0]):
        return None
    fact = fact_of(call)
    return fact if isinstance(fact, BuiltByMethod) and fact.constructor is constructor else None


def _enclosing_class(
    node: cst.CSTNode, parents: Mapping[cst.CSTNode, cst.CSTNode]
) -> cst.ClassDef | None:
    """The innermost class holding ``node`` (the planner's ``Site.enclosing_class``)."""
    owner = parents.get(node)
    while owner is not None and not isinstance(owner, cst.ClassDef):
        owner = parents.get(owner)
    return owner


def _built_by_method(
    call: cst.Call, enclosing: cst.ClassDef | None, facts: FileFacts
) -> BuiltByMethod:
    func = call.func
    if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)):
        raise NotBuiltByMethod(f"`{_code(func)}` is not a method called on a name")
    receiver, name = func.value, func.attr.value
    owner = _receiver_class(receiver, enclosing, facts)
    method = _one_method(owner, name, facts.module)
    calls = [
        n
        for n in cst_walk.walk(facts.module)
        if isinstance(n, cst.Attribute) and n.attr.value == name
    ]
    if len(calls) != 1:
        raise NotBuiltByMethod(
            f"the file names `.{name}` {len(calls)} times (called once: not proven)"
        )
    own = method.params.params[0].name.value
    constructor = _returned_constructor(method, own, owner, facts)
    scope = _scope_of(call, facts.parents)
    change = facts.changed_after(call, scope, enclosing)
    target = _assigned_name(call, facts.parents)
    return BuiltByMethod(call, receiver, owner, method, own, constructor, change, target)


def _assigned_name(call: cst.Call, parents: Mapping[cst.CSTNode, cst.CSTNode]) -> cst.Name | None:
    """``opt`` of ``opt = call`` (one target, a name), else None."""
    assign = parents.get(call)
    if not (isinstance(assign, cst.Assign) and assign.value is call and len(assign.targets) == 1):
        return None
    target = assign.targets[0].target
    return target if isinstance(target, cst.Name) else None


def _code(node: cst.CSTNode) -> str:
    return code_of(node).strip()


def _scope_of(node: cst.CSTNode, parents: Mapping[cst.CSTNode, cst.CSTNode]) -> cst.CSTNode:
    """The function (or the module) whose body holds ``node``."""
    owner: cst.CSTNode | None = parents.get(node)
    while owner is not None and not isinstance(owner, (cst.FunctionDef, cst.Module)):
        owner = parents.get(owner)
    if owner is None:
        raise NotBuiltByMethod("the call's scope is not known")
    return owner


def _receiver_class(
    receiver: cst.Name, enclosing: cst.ClassDef | None, facts: FileFacts
) -> cst.ClassDef:
    """The module-level class whose one ``X(...)`` call is the receiver's one value."""
    values = facts.origins(receiver, enclosing)
    value = values[0] if values is not None and len(values) == 1 else None
    if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Name)):
        raise NotBuiltByMethod(f"`{receiver.value}` is not bound once to an instance `X(...)`")
    name = value.func.value
    module = facts.module
    classes = [s for s in module.body if isinstance(s, cst.ClassDef) and s.name.value == name]
    binders = [n for n in cst_walk.walk(module) if _binds(n, name)]
    if len(classes) != 1 or len(binders) != 1:
        raise NotBuiltByMethod(
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
        raise NotBuiltByMethod(f"`{name}` is defined {len(defined)} times in the file's classes")
    method = defined[0][1]
    if method.decorators or method.asynchronous or not method.params.params:
        raise NotBuiltByMethod(f"`{name}` is decorated, asynchronous or has no `self`")
    return method


def _returned_constructor(
    method: cst.FunctionDef, own: str, owner: cst.ClassDef, facts: FileFacts
) -> cst.Call:
    """The one call reaching the name the method's one, last ``return`` returns."""
    shown = method.name.value
    _check_self_reads(method, own, facts.parents)
    returns = [n for n in cst_walk.walk(method.body) if isinstance(n, cst.Return)]
    last = method.body.body[-1] if method.body.body else None
    if len(returns) != 1 or not (
        isinstance(last, cst.SimpleStatementLine) and last.body[-1] is returns[0]
    ):
        raise NotBuiltByMethod(f"`{shown}` does not end in its only `return`")
    value = returns[0].value
    origins = facts.origins(value, owner) if isinstance(value, cst.Name) else None
    constructor = origins[0] if origins is not None and len(origins) == 1 else None
    if not isinstance(constructor, cst.Call):
        raise NotBuiltByMethod(f"`{shown}` does not return one translated optimizer")
    return constructor


def _check_self_reads(
    method: cst.FunctionDef, own: str, parents: Mapping[cst.CSTNode, cst.CSTNode]
) -> None:
    """``self`` read only as ``self.parameters()`` or ``self.named_parameters()``."""
    for node in cst_walk.walk(method.body):
        if not (isinstance(node, cst.Name) and node.value == own):
            continue
        attribute = parents.get(node)
        call = parents.get(attribute) if attribute is not None else None
        if not (
            isinstance(attribute, cst.Attribute)
            and attribute.value is node
            and attribute.attr.value in PARAMETER_READS
            and isinstance(call, cst.Call)
            and call.func is attribute
            and not call.args
        ):
            raise NotBuiltByMethod(
                f"`{method.name.value}` uses `{own}` other than through its parameters "
                f"(`{_code(attribute or node)}`: it may change the model)"
            )
