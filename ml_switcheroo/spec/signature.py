"""Torch call signatures written in the semantic map, and binding call sites to them.

A signature is written in the map the way Python writes it, e.g.
``"params, lr=1e-3, momentum=0, *, maximize=False"``; defaults are Python literals.
Binding never evaluates user code: argument values stay CST nodes.

``removed`` names arguments older torch took and torch 2.13 no longer has, which never
changed the numbers (the schedulers' ``verbose``, which only printed the lr): binding drops
one given by keyword with a value whose evaluation runs no code (a literal or a plain name).
Given by position, or with any other value (``verbose=f()``), the call escapes: dropping it
would lose the value, or what computing it does.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import libcst as cst

from ml_switcheroo.spec.errors import Untranslatable

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Parameter:
    """One parameter of a torch signature."""

    name: str
    keyword_only: bool
    default_source: str | None  # None: the parameter is required

    @property
    def default_node(self) -> cst.BaseExpression:
        assert self.default_source is not None
        return cst.parse_expression(self.default_source)


@dataclass(frozen=True)
class Signature:
    """A parsed torch signature: ordered parameters."""

    source: str
    parameters: tuple[Parameter, ...]
    # arguments older torch took that torch 2.13 removed and that never changed the math
    removed: tuple[str, ...] = ()

    @classmethod
    def parse(cls, source: str, removed: tuple[str, ...] = ()) -> Signature:
        """Parse ``source``; raise ``ValueError`` with a readable message on bad input
        (``removed`` naming one of its parameters, too)."""
        try:
            body = ast.parse(f"def _sig({source}):\n    pass\n").body
        except SyntaxError as exc:
            raise ValueError(f"not a Python parameter list: {exc.msg}") from None
        fn = body[0]
        if len(body) != 1 or not isinstance(fn, ast.FunctionDef) or len(fn.body) != 1:
            raise ValueError("not a Python parameter list (it closes the parameter list)")
        args = fn.args
        if args.vararg or args.kwarg or args.posonlyargs:
            raise ValueError("*args, **kwargs and positional-only markers are not supported")
        text = f"def _sig({source}):\n    pass\n"
        params: list[Parameter] = []
        positional_defaults = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
        for arg, default in zip(args.args, positional_defaults, strict=True):
            params.append(Parameter(arg.arg, False, _default_source(text, default)))
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            params.append(Parameter(arg.arg, True, _default_source(text, default)))
        names = {p.name for p in params}
        for name in removed:
            if not name.isidentifier():
                raise ValueError(f"removed argument {name!r} is not an identifier")
            if name in names:
                raise ValueError(f"removed argument `{name}` is a parameter of the signature")
            if removed.count(name) > 1:
                raise ValueError(f"removed argument `{name}` is listed twice")
        return cls(source, tuple(params), tuple(removed))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def parameter(self, name: str) -> Parameter:
        for param in self.parameters:
            if param.name == name:
                return param
        raise KeyError(name)

    def bind(self, call: cst.Call) -> dict[str, cst.Arg]:
        """Map parameter names to the call's ``Arg`` nodes, as Python would bind them.

        Raises ``Untranslatable`` for ``*args``/``**kwargs`` at the call site, unknown
        keywords, too many positional arguments or a missing required argument. A ``removed``
        argument given by keyword with a literal or a plain name is left out (not bound);
        given otherwise it escapes (``_check_removed``).
        """
        positional = [p for p in self.parameters if not p.keyword_only]
        bound: dict[str, cst.Arg] = {}
        dropped: set[str] = set()
        position = 0
        for arg in call.args:
            if arg.star == "**":
                raise Untranslatable(
                    "`**` keyword unpacking cannot be bound statically; "
                    "its keys and values are only known at run time"
                )
            if arg.star == "*":
                raise Untranslatable("`*` argument unpacking cannot be bound statically")
            if arg.keyword is None:
                if position >= len(positional):
                    raise Untranslatable(self._too_many_positional(arg))
                bound[positional[position].name] = arg
                position += 1
                continue
            name = arg.keyword.value
            if name in self.removed:
                self._check_removed(name, arg)
                if name in dropped:
                    raise Untranslatable(f"argument `{name}` given twice")
                dropped.add(name)
                continue
            if name not in self.names:
                raise Untranslatable(
                    f"unknown argument `{name}` (not in the map's signature: {self.source})"
                )
            if name in bound:
                raise Untranslatable(f"argument `{name}` given twice")
            bound[name] = arg
        for param in self.parameters:
            if param.default_source is None and param.name not in bound:
                raise Untranslatable(f"required argument `{param.name}` is missing")
        return bound

    def _too_many_positional(self, arg: cst.Arg) -> str:
        reason = f"too many positional arguments (signature: {self.source})"
        if not self.removed:
            return reason
        names = ", ".join(f"`{name}`" for name in self.removed)
        return (
            f"{reason}; older torch took {names} there, which torch 2.13 removed: it is "
            f"dropped only when given by keyword (`{self.removed[0]}=...`), since a value "
            f"passed by position (`{_shown(arg.value)}`) would be lost unseen"
        )

    def _check_removed(self, name: str, arg: cst.Arg) -> None:
        """Escape a removed argument whose value dropping would lose: anything but a
        literal or a plain name may run code (``verbose=f()``, ``verbose=self.flag``)."""
        if isinstance(arg.value, cst.Name):
            return
        try:
            literal_value(arg.value)
        except NotALiteral:
            raise Untranslatable(
                f"argument `{name}` was removed in torch 2.13 (older torch took it and it "
                f"never changed the numbers); it is dropped only when its value is a literal "
                f"or a plain name: dropping `{name}={_shown(arg.value)}` would lose "
                f"the value and whatever computing it does"
            ) from None


def _shown(node: cst.BaseExpression, limit: int = 60) -> str:
    text = " ".join(code_of(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _default_source(text: str, node: ast.expr | None) -> str | None:
    if node is None:
        return None
    source = ast.get_source_segment(text, node)
    assert source is not None
    try:
        literal_value(cst.parse_expression(source))
    except NotALiteral:
        raise ValueError(f"default `{source}` is not a Python literal") from None
    return source


class NotALiteral(Exception):
    """The expression's value is not known without running the program."""


_EMPTY_MODULE = cst.Module(body=())


def code_of(node: cst.CSTNode) -> str:
    """Source text of a node, formatting and comments included."""
    plain = _plain_code(node)
    return plain if plain is not None else _EMPTY_MODULE.code_for_node(node)


def _plain_code(node: cst.CSTNode) -> str | None:
    """The source of a name or a chain of attributes on one written without parentheses or
    anything but spaces around its dots (``model``, ``self.model.fc``), read off its fields:
    exactly what libcst's code generation writes for it, without its per-node state (the
    analysis asks for the text of every name and callee of a file). None for another node."""
    kind = type(node)
    if kind is cst.Name:
        return None if node.lpar or node.rpar else node.value  # type: ignore[attr-defined]
    if kind is not cst.Attribute or node.lpar or node.rpar:  # type: ignore[attr-defined]
        return None
    dot, attr = node.dot, node.attr  # type: ignore[attr-defined]
    before, after = dot.whitespace_before, dot.whitespace_after
    if not (
        type(dot) is cst.Dot
        and type(before) is cst.SimpleWhitespace
        and type(after) is cst.SimpleWhitespace
        and type(attr) is cst.Name
        and not attr.lpar
        and not attr.rpar
    ):
        return None
    base = _plain_code(node.value)  # type: ignore[attr-defined]
    return None if base is None else f"{base}{before.value}.{after.value}{attr.value}"


def dotted_name(node: cst.BaseExpression | None) -> str | None:
    """``a.b.c`` for a Name or a chain of attributes on one, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base is not None else None
    return None


def literal_value(node: cst.BaseExpression) -> Any:
    """The value of a literal expression (numbers, strings, tuples, ``float('inf')``...).

    Raises ``NotALiteral`` when the value depends on names or calls.
    """
    if isinstance(node, cst.Call) and _is_float_special(node):
        arg = node.args[0].value
        assert isinstance(arg, cst.SimpleString)
        return float(arg.evaluated_value)
    try:
        value = ast.literal_eval(code_of(node).strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise NotALiteral(code_of(node)) from None
    return value


def _is_float_special(node: cst.Call) -> bool:
    return (
        isinstance(node.func, cst.Name)
        and node.func.value == "float"
        and len(node.args) == 1
        and node.args[0].keyword is None
        and isinstance(node.args[0].value, cst.SimpleString)
        and str(node.args[0].value.evaluated_value).strip().lower()
        in {"inf", "+inf", "-inf", "infinity", "-infinity", "nan"}
    )
