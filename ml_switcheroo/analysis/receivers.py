"""Writes of an object's attributes that no store of the attribute's own text shows: by a
name computed at run time (``setattr(x, k, v)``, ``x.__dict__[k] = v``, ``vars(x).update(...)``,
a setter reached unnamed) and through the object's attribute dict handed on
(``wandb.init(config=vars(args))``). A clip folded into the optimizer's chain reads its
``max_norm`` once, where the optimizer is built; torch reads it at every clip call, so any
such write keeps the clip out of the chain (``plan_clips``).
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.signature import code_of

Parents = Mapping[cst.CSTNode, cst.CSTNode]


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
