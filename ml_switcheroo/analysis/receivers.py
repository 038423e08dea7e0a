"""Attribute-granular facts about a value read through a method's receiver (``self``) or a
name bound to what a function of the file returns (``args = parse_args()``).

A clip folded into the optimizer's chain reads its ``max_norm`` once, where the optimizer is
built; torch reads it at every clip call. ``self.max_grad_norm`` read in ``update`` is the value
``__init__`` stored before it built ``self.optimizer`` when ``self`` is the same instance in
both methods and no code writes that attribute afterwards. These helpers say which stores are
the instance's set-up (they run before any other method of the instance can) and which
aliases only hand an object back to a name of the same text (``return args`` of
``parse_args``, whose every call is ``args = parse_args()``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.signature import code_of

Parents = Mapping[cst.CSTNode, cst.CSTNode]


@dataclass(frozen=True)
class Instance:
    """The instance a method's receiver ``name`` holds: the one whose method of ``klass``
    runs the optimizer's ``construction``."""

    name: str
    klass: cst.ClassDef
    construction: cst.CSTNode


def _text(node: cst.CSTNode) -> str:
    return " ".join(code_of(node).split())


def enclosing_function(node: cst.CSTNode, parents: Parents) -> cst.FunctionDef | None:
    """The innermost ``def`` holding ``node`` (a lambda or a class in between: None)."""
    current: cst.CSTNode | None = parents.get(node)
    while current is not None:
        if isinstance(current, cst.FunctionDef):
            return current
        if isinstance(current, cst.Lambda | cst.ClassDef):
            return None
        current = parents.get(current)
    return None


def method_class(function: cst.FunctionDef, parents: Parents) -> cst.ClassDef | None:
    """The class whose body holds ``function`` directly (None: not a plain method)."""
    block = parents.get(function)
    owner = parents.get(block) if isinstance(block, cst.IndentedBlock) else None
    return owner if isinstance(owner, cst.ClassDef) else None


def receiver(function: cst.FunctionDef, parents: Parents) -> str | None:
    """The name of the instance a plain method of a class runs on (its first parameter):
    no decorator (``@staticmethod``, ``@classmethod``, a wrapper may rebind it), a class of
    the file holding it directly."""
    if function.decorators or method_class(function, parents) is None:
        return None
    params = function.params
    first = [*params.posonly_params, *params.params][:1]
    return first[0].name.value if first else None


def same_instance(
    read: cst.CSTNode,
    construction: cst.CSTNode,
    target: cst.BaseExpression | None,
    parents: Parents,
) -> str | None:
    """The receiver name when ``read`` (in a method of class C) and the optimizer
    ``construction`` run on the same instance: in the same method (its receiver parameter
    bound once: the caller checks the bindings), or in two methods of C with the same
    receiver name, the optimizer stored as ``<receiver>.<attr>`` (the optimizer stepped
    through it is the one that instance built). None otherwise."""
    reading = enclosing_function(read, parents)
    building = enclosing_function(construction, parents)
    if reading is None or building is None:
        return None
    name = receiver(reading, parents)
    if name is None or receiver(building, parents) != name:
        return None
    if reading is building:
        return name
    if method_class(reading, parents) is not method_class(building, parents):
        return None
    if not (
        isinstance(target, cst.Attribute)
        and isinstance(target.value, cst.Name)
        and target.value.value == name
    ):
        return None
    return name


def _top_statement(node: cst.CSTNode, body: cst.IndentedBlock, parents: Parents) -> int | None:
    """The index in ``body`` of the statement holding ``node`` (None: not under it)."""
    current: cst.CSTNode | None = node
    while current is not None:
        parent = parents.get(current)
        if parent is body:
            return next((i for i, s in enumerate(body.body) if s is current), None)
        current = parent
    return None


def _mentions(node: cst.CSTNode, name: str) -> bool:
    return any(isinstance(n, cst.Name) and n.value == name for n in cst_walk.walk(node))


def setup_store(target: cst.BaseExpression, instance: Instance, parents: Parents) -> bool:
    """Whether the store ``target`` (``<name>.<attr> = ...``) sets up the instance before
    the optimizer ``construction`` (in a method of ``klass``) can read it, and never runs
    again on that instance: a statement of the body of ``klass.__init__`` itself (not under
    a branch or a loop) whose value does not read the instance, after statements that do
    not reach it either (no method of it can run first); when the construction is in that
    ``__init__``, before it. An explicit ``__init__`` call on a built instance runs it again:
    ``reinitialized`` answers for those."""
    name, klass, construction = instance.name, instance.klass, instance.construction
    if not _plain_class(klass):
        return False  # a base's `__init__` or `__new__` may run the instance's methods first
    if not (
        isinstance(target, cst.Attribute)
        and isinstance(target.value, cst.Name)
        and target.value.value == name
    ):
        return False
    function = enclosing_function(target, parents)
    if (
        function is None
        or function.name.value != "__init__"
        or method_class(function, parents) is not klass
        or receiver(function, parents) != name
        or not isinstance(function.body, cst.IndentedBlock)
    ):
        return False
    body = function.body
    index = _top_statement(target, body, parents)
    if index is None or not _plain_store(body.body[index], name):
        return False
    if any(not _plain_store(s, name) for s in body.body[:index]):
        return False
    built_at = _top_statement(construction, body, parents)
    if enclosing_function(construction, parents) is function:
        return built_at is not None and index < built_at
    return True


def _plain_store(statement: cst.BaseStatement, name: str) -> bool:
    """``a = v`` / ``<name>.a = v`` lines whose values do not read ``name`` (the instance)."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    for small in statement.body:
        if not isinstance(small, cst.Assign | cst.AnnAssign):
            return False
        if small.value is None or _mentions(small.value, name):
            return False
        targets = (
            [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
        )
        for target in targets:
            if isinstance(target, cst.Name):
                continue
            if isinstance(target, cst.Attribute) and _text(target.value) == name:
                continue
            return False
    return True


def reinitialized(module: cst.Module, parents: Parents) -> cst.Call | None:
    """A call of ``<x>.__init__(...)`` outside an ``__init__`` (a built instance set up
    again: its set-up stores run after its methods did), or None."""
    for node in cst_walk.walk(module):
        if not (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "__init__"
        ):
            continue
        function = enclosing_function(node, parents)
        if function is None or function.name.value != "__init__":
            return node
    return None


def returned_to_namesakes(
    alias: cst.CSTNode, holders: set[str], module: cst.Module, parents: Parents
) -> cst.FunctionDef | None:
    """The function of the module whose ``return <name>`` ``alias`` is, when the object it
    returns can only reach names of the same text: ``<name>`` is a holder and a plain name,
    and every use of the function's name in the module is a call bound alone to that name
    (``args = parse_args()``). A change through those names is found by their text (the
    caller asks ``other_file_reaches`` about the function's name). None otherwise."""
    if not (isinstance(alias, cst.Return) and isinstance(alias.value, cst.Name)):
        return None
    name = alias.value.value
    function = enclosing_function(alias, parents)
    if name not in holders or function is None or method_class(function, parents) is not None:
        return None
    if not isinstance(parents.get(function), cst.Module):
        return None
    called = function.name.value
    uses = [n for n in cst_walk.walk(module) if isinstance(n, cst.Name) and n.value == called]
    for use in uses:
        holder = parents.get(use)
        if use is function.name or (isinstance(holder, cst.Attribute) and holder.attr is use):
            continue
        call = parents.get(use)
        if not (isinstance(call, cst.Call) and call.func is use):
            return None
        assign = parents.get(call)
        if not (
            isinstance(assign, cst.Assign)
            and len(assign.targets) == 1
            and isinstance(assign.targets[0].target, cst.Name)
            and assign.targets[0].target.value == name
        ):
            return None
    return function


def _plain_class(klass: cst.ClassDef) -> bool:
    """A class deriving from nothing but ``object``, with no metaclass or keyword."""
    return not klass.keywords and all(_text(base.value) == "object" for base in klass.bases)


def own_call(klass: cst.ClassDef, name: str) -> bool:
    """Whether ``<receiver>.name(...)`` on an instance of ``klass`` runs code this file shows
    or none that is handed the instance: ``klass`` derives from nothing (or ``object``) and
    ``name`` is a plain method of its body (its body is in this file), or nothing of its
    body names ``name`` (an instance attribute: a call of what it holds is not handed the
    instance)."""
    if not _plain_class(klass):
        return False
    body = klass.body.body if isinstance(klass.body, cst.IndentedBlock) else ()
    for statement in body:
        if isinstance(statement, cst.FunctionDef) and statement.name.value == name:
            return not statement.decorators
        if isinstance(statement, cst.ClassDef) and statement.name.value == name:
            return False
        if not isinstance(statement, cst.FunctionDef) and any(
            isinstance(n, cst.Name) and n.value == name for n in cst_walk.walk(statement)
        ):
            return False
    return True


def _namespace(node: cst.BaseExpression) -> bool:
    """``x.__dict__`` or ``vars(x)``: the object's attributes as a dict."""
    if isinstance(node, cst.Attribute):
        return node.attr.value == "__dict__"
    return (
        isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "vars"
    )


def _names_key(node: cst.BaseExpression | None, key: str) -> bool:
    """An attribute name given as ``node``: ``key`` itself or one not known (computed)."""
    if node is None:
        return True
    if isinstance(node, cst.SimpleString):
        return node.evaluated_value == key
    return True


# names through which code sets attributes by a name it computes: a read of one that is not
# its call may reach it unnamed
_SETTERS = frozenset({"setattr", "__setattr__", "__dict__", "builtins", "__builtins__"})


def written_by_name(module: cst.Module, key: str | None) -> cst.CSTNode | None:
    """The first place of ``module`` that may write the attribute ``key`` of any object by
    its name as a value (``setattr(x, k, v)``, ``object.__setattr__(x, "clip", v)``,
    ``x.__dict__[k] = v``, ``vars(x)[k] = v``) or several at once (``x.__dict__.update(d)``,
    ``vars(x).update(d)``, ``x.__dict__ = d``); a name other than ``key`` written as a string
    literal does not count. Any other read of an object's ``__dict__`` counts too
    (``ns = args.__dict__``, ``getattr(args, "__dict__")`` or a ``getattr`` by a computed
    name: the dict may be written through the name it is bound to; probe s40 R2). None: no
    such place. So does a setter reached by another way than a call of its name
    (``put = setattr``, ``getattr(builtins, "setattr")``, ``builtins`` named: probe s40 R3)."""
    nodes = list(cst_walk.walk(module))
    called_names = {id(n.func) for n in nodes if isinstance(n, cst.Call)}
    for node in nodes:
        if isinstance(node, cst.Attribute) and node.attr.value == "__dict__":
            return node
        if isinstance(node, cst.Name) and node.value in _SETTERS and id(node) not in called_names:
            return node  # the setter itself as a value, or the builtins module
        if isinstance(node, cst.Call):
            func = node.func
            called = func.value if isinstance(func, cst.Name) else getattr(func, "attr", None)
            called = getattr(called, "value", called)
            if called == "getattr" and len(node.args) > 1:
                named = node.args[1].value
                if not isinstance(named, cst.SimpleString) or named.evaluated_value in _SETTERS:
                    return node
            if called in ("setattr", "__setattr__"):
                index = 1 if isinstance(func, cst.Name) or _text(func.value) == "object" else 0
                named = node.args[index].value if len(node.args) > index else None
                if key is None or _names_key(named, key):
                    return node
            if (
                isinstance(func, cst.Attribute)
                and func.attr.value in ("update", "setdefault", "__setitem__")
                and _namespace(func.value)
            ):
                return node
        if isinstance(node, cst.AssignTarget | cst.AugAssign | cst.AnnAssign | cst.Del):
            target = node.target
            if isinstance(target, cst.Attribute) and target.attr.value == "__dict__":
                return node
            if isinstance(target, cst.Subscript) and _namespace(target.value):
                index = target.slice[0].slice if len(target.slice) == 1 else None
                named = index.value if isinstance(index, cst.Index) else None
                if key is None or _names_key(named, key):
                    return node
    return None


def fresh_options(
    function: cst.FunctionDef,
    name: str,
    qualify: Callable[[cst.BaseExpression], list[str]],
    parsers: frozenset[str],
) -> bool:
    """Whether ``name`` is bound once in ``function``'s body, to ``P.parse_args()`` (or
    ``P.parse_args(argv)``: no ``namespace`` to fill), ``P`` bound once there to a call of
    one of ``parsers`` (``argparse.ArgumentParser(...)``): a new parser builds a new
    namespace, which no other object holds."""
    bound = _single_value(function, name)
    if not (
        isinstance(bound, cst.Call)
        and len(bound.args) <= 1
        and all(a.keyword is None and not a.star for a in bound.args)
        and isinstance(bound.func, cst.Attribute)
        and bound.func.attr.value == "parse_args"
        and isinstance(bound.func.value, cst.Name)
    ):
        return False
    parser = _single_value(function, bound.func.value.value)
    return isinstance(parser, cst.Call) and any(q in parsers for q in qualify(parser.func))


def _single_value(function: cst.FunctionDef, name: str) -> cst.BaseExpression | None:
    """The value of the one binding of ``name`` in ``function`` (a lone ``name = value``
    statement at the top of its body; no other binding of the name anywhere in it)."""
    values: list[cst.BaseExpression] = []
    for node in cst_walk.walk(function):
        if isinstance(node, cst.Name) and node.value == name and _binds(node, function):
            return None
        if isinstance(node, cst.Assign):
            targets = [t.target for t in node.targets]
            if any(isinstance(t, cst.Name) and t.value == name for t in targets):
                if len(targets) != 1:
                    return None
                values.append(node.value)
            elif any(_mentions_bound(t, name) for t in targets):
                return None
        elif isinstance(
            node, cst.AugAssign | cst.AnnAssign | cst.For | cst.WithItem | cst.NamedExpr
        ):
            if _mentions_bound(
                getattr(node, "target", None) or getattr(node, "asname", None), name
            ):
                return None
        elif isinstance(node, cst.Global | cst.Nonlocal) and any(
            n.name.value == name for n in node.names
        ):
            return None
    return values[0] if len(values) == 1 else None


def _binds(node: cst.Name, function: cst.FunctionDef) -> bool:
    """A parameter of ``function`` (or of a function in it) named like ``node``."""
    return any(isinstance(p, cst.Param) and p.name is node for p in cst_walk.walk(function.params))


def _mentions_bound(target: cst.CSTNode | None, name: str) -> bool:
    """Whether a binding target (``a, b``; ``as x``) binds ``name``."""
    if target is None:
        return False
    if isinstance(target, cst.Name):
        return target.value == name
    if isinstance(target, cst.AsName):
        return _mentions_bound(target.name, name)
    if isinstance(target, cst.Tuple | cst.List):
        return any(_mentions_bound(e.value, name) for e in target.elements)
    if isinstance(target, cst.StarredElement):
        return _mentions_bound(target.value, name)
    return False


# methods of the dict ``vars(x)`` returns that only read it
_READING_DICT_METHODS = frozenset({"items", "keys", "values", "get", "copy", "__contains__"})


def namespace_use(call: cst.Call, parents: Parents) -> cst.Call | bool | None:
    """For ``vars(x)`` (the object's own attribute dict): False when it is only read there
    (``vars(x).items()``, ``.keys()``, ``.get(k)``...), the call it is handed to when it is
    an argument (``wandb.init(config=vars(args))``: that call may write the dict); None for
    any other call (or use)."""
    if not _namespace(call) or not isinstance(call, cst.Call):
        return None
    parent = parents.get(call)
    if isinstance(parent, cst.Attribute) and parent.value is call:
        method = parent.attr.value
        caller = parents.get(parent)
        if method in _READING_DICT_METHODS and isinstance(caller, cst.Call):
            return False
        return None
    outer = parents.get(parent) if isinstance(parent, cst.Arg) else None
    return outer if isinstance(outer, cst.Call) else None
