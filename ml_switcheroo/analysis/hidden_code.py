"""Code a class of another file of the repository runs without a call written (probe s37 H1).

A ``@property``, ``__getattr__``, ``__getitem__`` or an operator dunder runs when an attribute
is read, an item taken or an operator applied: ``y = hp.bump`` between an optimizer and its
schedule may write ``hp.lr``, which the schedule moved up past it reads (1.76 relative off
torch); ``clip_grad_norm_(params, cfg.clip)`` folded into the optimizer's chain reads a
getter once where torch reads it at every clip (0.82). ``plan_walks.defines_hidden_code`` and
``computed_attributes`` see the classes of the file converted; this module reads those of
the repository's other files (their ``ast``), each answer kept per content of the file.

Not every such method is a reason to escape: a repository's ``Dataset`` has a ``__getitem__``
that calls a transform, and a schedule built after ``steps = len(loader) * epochs`` must not
escape for it. So each method is keyed by what runs it (``HiddenMethod.key``: the attribute
name of a decorated method, a dunder's name), and a statement runs only the keys its syntax
can reach (``fired``): ``__getitem__`` an item access, ``__add__`` an operator, ``bump`` a read
of ``.bump``. A dunder whose reach is not listed here is reached by any statement that may run
code (``plan_walks.may_run_code``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.purity import pure_builtin

# dunders run by the construction of an object: a call is written
_CONSTRUCTORS = frozenset({"__init__", "__new__", "__post_init__"})
# any attribute read may run these (``__get__``: a descriptor stored as a class attribute)
_ON_ATTRIBUTE = frozenset(
    {"__getattr__", "__getattribute__", "__get__", "__setattr__", "__set__", "__delattr__"}
)
_ON_SUBSCRIPT = frozenset(
    {
        "__getitem__",
        "__setitem__",
        "__delitem__",
        "__class_getitem__",
        "__missing__",
        "__index__",
        "__hash__",
        "__eq__",
    }
)
_ON_TRUTH = frozenset({"__bool__", "__len__"})
_ON_ITERATION = frozenset(
    {"__iter__", "__next__", "__aiter__", "__anext__", "__len__", "__length_hint__"}
    | {"__getitem__"}
)
_ON_WITH = frozenset({"__enter__", "__exit__", "__aenter__", "__aexit__"})
_ON_FORMAT = frozenset({"__format__", "__str__", "__repr__"})
_ON_DISPLAY = frozenset({"__hash__", "__eq__"})  # a dict or set display hashes its keys
_ON_BINDING = frozenset({"__del__", "__delete__"})  # the old value of a rebound name may go
_ON_AWAIT = frozenset({"__await__"})
# reached by a call only (``__call__``, the pickling and copying protocols, ``dir``...) or by a
# class statement (``__init_subclass__``, ``__set_name__``): a statement that runs one of those
# reaches every method (``_Reached.everything``)
_ON_CALL = frozenset(
    {"__call__", "__getstate__", "__setstate__", "__reduce__", "__reduce_ex__", "__copy__"}
    | {"__deepcopy__", "__dir__", "__reversed__", "__sizeof__", "__array__", "__fspath__"}
    | {"__torch_function__", "__instancecheck__", "__subclasscheck__", "__getnewargs__"}
    | {"__getnewargs_ex__", "__init_subclass__", "__set_name__", "__prepare__", "__bytes__"}
    | {"__mro_entries__", "__complex__"}
)
_UNARY = frozenset({"__neg__", "__pos__", "__invert__", "__bool__", "__len__"})
_OPERATORS = "add sub mul matmul truediv floordiv mod divmod pow lshift rshift and xor or"
_BINARY = frozenset(
    f"__{prefix}{name}__" for name in _OPERATORS.split() for prefix in ("", "r", "i")
)
_COMPARISON = (
    frozenset(
        {"__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__", "__contains__", "__bool__"}
    )
    | _ON_ITERATION
)  # `in` iterates (`__iter__`, `__getitem__`) without `__contains__`
# what each builtin ``is_pure`` lets run between the optimizer and its schedule calls
_BUILTIN_CALLS = {
    "len": frozenset({"__len__"}),
    "int": frozenset({"__int__", "__index__", "__trunc__"}),
    "float": frozenset({"__float__", "__index__"}),
    "round": frozenset({"__round__"}),
    "abs": frozenset({"__abs__"}),
    "min": _COMPARISON,
    "max": _COMPARISON,
}
_KNOWN = (
    _ON_ATTRIBUTE
    | _ON_SUBSCRIPT
    | _ON_TRUTH
    | _ON_ITERATION
    | _ON_WITH
    | _ON_FORMAT
    | _ON_DISPLAY
    | _ON_BINDING
    | _ON_AWAIT
    | _ON_CALL
    | _UNARY
    | _BINARY
    | _COMPARISON
    | frozenset().union(*_BUILTIN_CALLS.values())
)


@dataclass(frozen=True)
class HiddenMethod:
    """A method a read, an item access or an operator may run (``key``: the attribute name
    of a decorated method or of a class attribute a call builds, or the dunder's name),
    where it is (``place``: ``file:line``, ``owner``: its class), and whether its body may
    change a value (``changes``: more than a ``return`` of reads) or only compute one."""

    key: str
    owner: str
    place: str
    changes: bool

    def shown(self) -> str:
        return f"`{self.owner}.{self.key}` ({self.place})"


def _dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _plain_return(body: list[ast.stmt]) -> bool:
    """One ``return`` (after a docstring) of an expression that runs no call but ``is_pure``'s
    builtins (``return len(self.items)``) and binds nothing: it cannot change a value."""
    statements = [
        s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
    ]
    if len(statements) != 1 or not isinstance(statements[0], ast.Return):
        return False
    value = statements[0].value
    if value is None:
        return True
    for node in ast.walk(value):
        if isinstance(node, ast.NamedExpr | ast.Await | ast.Yield | ast.YieldFrom | ast.Lambda):
            return False
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and pure_builtin(node.func.id)
        ):
            return False
    return True


def _class_body(statements: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a class body, also under its ``if``/``try``/``with`` blocks."""
    for statement in statements:
        yield statement
        for block in ("body", "orelse", "finalbody"):
            if isinstance(statement, ast.If | ast.Try | ast.With) and hasattr(statement, block):
                yield from _class_body(getattr(statement, block))
        for handler in getattr(statement, "handlers", ()):
            yield from _class_body(handler.body)


def _targets(statement: ast.stmt) -> list[str]:
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets = [statement.target]
    else:
        return []
    return [t.id for t in targets if isinstance(t, ast.Name)]


def hidden_methods(tree: ast.Module, path: str) -> tuple[HiddenMethod, ...]:
    """Every method of a class of ``tree`` (at any depth) that attribute or item access, an
    operator, a truth test, iteration or a ``with`` may run without a call written: decorated
    methods (a ``@property``; any decorator may make a descriptor), dunders but the
    constructors, class attributes a call builds (``clip = property(get)``,
    ``__getattr__ = dict.__getitem__``: what runs is not seen, so they may change a value),
    and a module-level ``__getattr__`` (PEP 562)."""
    found: list[HiddenMethod] = []
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef) and statement.name in (
            "__getattr__",
            "__dir__",
        ):
            place = f"{path}:{statement.lineno}"
            found.append(
                HiddenMethod(statement.name, "<module>", place, not _plain_return(statement.body))
            )
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in _class_body(node.body):
            place = f"{path}:{statement.lineno}"
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                name = statement.name
                if name in _CONSTRUCTORS or not (_dunder(name) or statement.decorator_list):
                    continue
                changes = not _plain_return(statement.body)
                found.append(HiddenMethod(name, node.name, place, changes))
                continue
            value = getattr(statement, "value", None)
            for name in _targets(statement):
                runs = value is not None and any(
                    isinstance(n, ast.Call | ast.Lambda) for n in ast.walk(value)
                )
                if (_dunder(name) and name not in _CONSTRUCTORS) or runs:
                    found.append(HiddenMethod(name, node.name, place, True))
    return tuple(found)


def attribute_write_line(tree: ast.Module, key: str) -> int:
    """The line of the first write in ``tree`` of an attribute or global named ``key`` (see
    ``CrossFile.attribute_written_elsewhere``), or 0."""
    initializers: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            initializers.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.Global | ast.Nonlocal) and key in node.names:
            return node.lineno
        if isinstance(node, ast.Attribute) and node.attr == key:
            stored = isinstance(node.ctx, ast.Store | ast.Del)
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            if stored and not (on_self and id(node) in initializers):
                return node.lineno
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Store | ast.Del)
            and isinstance(node.slice, ast.Constant)
            and node.slice.value == key
        ):
            return node.lineno
        if isinstance(node, ast.Call) and any(
            isinstance(a, ast.Constant) and a.value == key for a in node.args[1:2]
        ):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in ("setattr", "__setattr__"):
                return node.lineno
    return 0


def mode_write_line(tree: ast.Module, flags: frozenset[str], methods: frozenset[str]) -> int:
    """Probe s37 M2: the line of the first place in ``tree`` that sets a torch module's mode
    in a form an NNX module takes quietly, or 0: a store of an attribute of ``flags``
    (``m.training = False``, on any object), a ``setattr``/``__setattr__`` naming one, an item
    of ``x.__dict__``/``vars(x)`` named by one or their ``update``, or a method of ``methods``
    (``train``) called with the keyword ``mode`` (flax's ``train(**attributes)`` takes it as
    one more attribute: a positional flag raises, loud)."""

    def names_flag(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and node.value in flags

    def namespace(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr == "__dict__"
        return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "vars"

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in flags:
            if isinstance(node.ctx, ast.Store | ast.Del):
                return node.lineno
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
            if namespace(node.value) and names_flag(node.slice):
                return node.lineno
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            arguments = [*node.args, *(k.value for k in node.keywords)]
            if name in ("setattr", "__setattr__") and any(names_flag(a) for a in arguments):
                return node.lineno
            if name in methods and any(k.arg == "mode" for k in node.keywords):
                return node.lineno
            if (
                name == "update"
                and isinstance(func, ast.Attribute)
                and namespace(func.value)
                and (
                    any(k.arg in flags or k.arg is None for k in node.keywords)
                    or any(
                        not isinstance(a, ast.Dict) or any(map(names_flag, a.keys))
                        for a in node.args
                    )
                )
            ):
                return node.lineno
    return 0


def fired(statement: cst.CSTNode, methods: Iterable[HiddenMethod]) -> HiddenMethod | None:
    """The first of ``methods`` whose body may change a value that evaluating ``statement``
    may run without a call written for it (``fires``)."""
    changing = [m for m in methods if m.changes]
    if not changing:
        return None
    keys = _keys_run(statement)
    for method in changing:
        if method.key in keys.attributes or (_dunder(method.key) and keys.dunder(method.key)):
            return method
    return None


@dataclass
class _Reached:
    """What a statement's syntax may run: the attributes it reads or writes, the dunders it
    reaches, and whether it reaches any (a call other than ``is_pure``'s builtins, a class
    body, an import: then every method)."""

    attributes: set[str]
    dunders: set[str]
    everything: bool = False
    runs_code: bool = False

    def dunder(self, name: str) -> bool:
        if self.everything or name in self.dunders:
            return True
        return name not in _KNOWN and self.runs_code  # a dunder whose reach is not listed


_TRUTH_TESTS = (cst.BooleanOperation, cst.If, cst.While, cst.IfExp, cst.Assert, cst.CompIf)


def _keys_run(statement: cst.CSTNode) -> _Reached:
    from ml_switcheroo.analysis.plan_walks import may_run_code

    reached = _Reached(set(), set(), runs_code=may_run_code(statement))
    for node in cst_walk.walk(statement, stop=(cst.FunctionDef, cst.Lambda)):
        if isinstance(node, cst.Attribute):
            reached.attributes.add(node.attr.value)
            reached.dunders |= _ON_ATTRIBUTE
        elif isinstance(node, cst.Subscript):
            reached.dunders |= _ON_SUBSCRIPT
        elif isinstance(node, cst.BinaryOperation | cst.AugAssign):
            reached.dunders |= _BINARY | _ON_BINDING
        elif isinstance(node, cst.Comparison):
            reached.dunders |= _COMPARISON
        elif isinstance(node, cst.UnaryOperation):
            reached.dunders |= _UNARY
        elif isinstance(node, _TRUTH_TESTS):
            reached.dunders |= _ON_TRUTH
        elif isinstance(node, cst.For | cst.CompFor | cst.StarredElement | cst.Yield):
            reached.dunders |= _ON_ITERATION | _ON_BINDING
        elif isinstance(node, cst.StarredDictElement):
            reached.dunders |= _ON_ITERATION | _ON_SUBSCRIPT
        elif isinstance(node, cst.With):
            reached.dunders |= _ON_WITH
        elif isinstance(node, cst.FormattedString):
            reached.dunders |= _ON_FORMAT
        elif isinstance(node, cst.Dict | cst.Set | cst.DictComp | cst.SetComp):
            reached.dunders |= _ON_DISPLAY
        elif isinstance(node, cst.Assign | cst.AnnAssign | cst.Del):
            reached.dunders |= _ON_BINDING
            targets = [t.target for t in getattr(node, "targets", ())]
            if any(isinstance(t, cst.Tuple | cst.List) for t in targets):
                reached.dunders |= _ON_ITERATION  # `a, b = x` unpacks
        elif isinstance(node, cst.Await):
            reached.dunders |= _ON_AWAIT
        elif isinstance(node, cst.Call):
            func = node.func
            name = func.value if isinstance(func, cst.Name) else None
            if name is not None and name in _BUILTIN_CALLS:
                reached.dunders |= _BUILTIN_CALLS[name]
            else:
                reached.everything = True
        elif isinstance(node, cst.ClassDef | cst.Decorator | cst.Import | cst.ImportFrom):
            reached.everything = True
        elif isinstance(node, cst.FunctionDef | cst.Lambda) and may_run_code(node):
            reached.everything = True  # its decorators, defaults or annotations run
    return reached
