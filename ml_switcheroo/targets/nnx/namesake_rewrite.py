"""Calls of the map's ``array_namesakes`` that its ``exact`` template writes in JAX with the
same numbers (``_, pred = out.max(1)`` in the NNX step: ``(jnp.take_along_axis(out,
out.argmax(axis=1, keepdims=True), axis=1).squeeze(1), out.argmax(axis=1))``): which calls may
be written so, and the rewrite."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from typing import Any

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.semantic_map import ArrayNamesake
from ml_switcheroo.spec.signature import code_of, dotted_name


def exact_text(
    call: cst.Call,
    namesakes: Mapping[str, ArrayNamesake],
    arrays: set[str],
    qualify: Callable[[cst.BaseExpression], list[str]],
    after_update: bool = False,
    read: Set[int] = frozenset(),
    outputs: Set[int] = frozenset(),
) -> str | None:
    """The JAX text of ``x.<namesake>(...)`` with ``x`` one of ``arrays`` (or a receiver in
    ``outputs``, by id: a call of the model, ``self.forward(x_pos)``) and every argument a
    literal of the entry's ``params`` (None: the call keeps the namesake's escape), inside the
    step or (``after_update``) in the statements after it; not for a call in ``read`` (an
    attribute of its result is read: ``attribute_receivers``) whose template is a tuple."""
    func = call.func
    if not isinstance(func, cst.Attribute):
        return None
    receiver = func.value
    namesake = namesakes.get(func.attr.value)
    template = namesake.template(after_update) if namesake is not None else None
    if namesake is None or template is None:
        return None
    if isinstance(receiver, cst.Name) and (receiver.value in arrays or namesake.any_array):
        x = receiver.value
    elif id(receiver) in outputs:
        x = code_of(receiver).strip()
    else:
        return None
    if qualify(func):
        return None
    bound = _bound(call.args, dict(namesake.params), namesake.operands)
    if bound is None:
        return None
    return _filled(template, x, bound, id(call) in read)


def after_text(
    node: cst.CSTNode,
    x: str,
    namesakes: Mapping[str, ArrayNamesake],
    attributes: Mapping[str, ArrayNamesake],
    read: Set[int],
) -> str | None:
    """The JAX text after the update of ``<receiver>.<namesake>(...)`` (every argument a
    literal of the entry's ``params``) or ``<receiver>.<attribute>`` (``out.data``), the
    receiver written ``x`` (None: it keeps the escape; ``read``: as in ``exact_text``)."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        entry, args = namesakes.get(node.func.attr.value), list(node.args)
    elif isinstance(node, cst.Attribute):
        entry, args = attributes.get(node.attr.value), []
    else:
        return None
    template = entry.template(after_update=True) if entry is not None else None
    if entry is None or template is None:
        return None
    bound = _bound(args, dict(entry.params), entry.operands)
    return None if bound is None else _filled(template, x, bound, id(node) in read)


def any_array_read(
    node: cst.CSTNode,
    namesakes: Mapping[str, ArrayNamesake],
    attributes: Mapping[str, ArrayNamesake],
) -> bool:
    """Whether ``node`` calls (reads) an entry whose template is torch's value on any array
    (``any_array``: ``x.size(0)``), so that it is written on a receiver of any binding."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        entry = namesakes.get(node.func.attr.value)
    elif isinstance(node, cst.Attribute):
        entry = attributes.get(node.attr.value)
    else:
        return False
    return entry is not None and entry.any_array


def _filled(template: str, x: str, bound: Mapping[str, str], attribute_read: bool) -> str | None:
    """``template`` with the receiver and the arguments; None for a tuple an attribute of which
    is read (torch's named fields: ``out.max(1).indices``)."""
    text = template.format(x=x, **bound)
    if attribute_read and isinstance(cst.parse_expression(text), cst.Tuple):
        return None
    return text


def _bound(
    args: Sequence[cst.Arg], params: dict[str, Any], operands: Sequence[str] = ()
) -> dict[str, str] | None:
    """Each parameter's literal text (its default's when not given), or None when an argument
    is not a literal of its parameter's type (a required one: an int), starred or unknown; an
    ``operands`` parameter takes a name, a dotted name or a number too (written as is)."""
    names = list(params)
    given: dict[str, cst.BaseExpression] = {}
    for index, arg in enumerate(args):
        if arg.star or (arg.keyword is None and index >= len(names)):
            return None
        name = arg.keyword.value if arg.keyword is not None else names[index]
        if name not in params or name in given:
            return None
        given[name] = arg.value
    result = {}
    for name, default in params.items():
        if name not in given:
            if default is None:
                return None
            result[name] = repr(default)
            continue
        if name in operands and _operand(given[name]):
            result[name] = code_of(given[name]).strip()
            continue
        value = _literal(given[name])
        wanted = int if default is None else type(default)
        if value is None or type(value) is not wanted:
            return None
        result[name] = repr(value)
    return result


def _operand(node: cst.BaseExpression) -> bool:
    """``y``, ``batch.y``, ``2``, ``-1.5``: read as written, nothing computed in it."""
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        node = node.expression
    return isinstance(node, (cst.Integer, cst.Float)) or dotted_name(node) is not None


def _literal(node: cst.BaseExpression) -> int | bool | None:
    """``1``, ``-1``, ``True``, ``False`` (None: anything else)."""
    if isinstance(node, cst.Integer):
        return int(node.value, 0)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = _literal(node.expression)
        return -inner if type(inner) is int else None
    if isinstance(node, cst.Name) and node.value in ("True", "False"):
        return node.value == "True"
    return None


def attribute_receivers(statements: Iterable[cst.CSTNode]) -> set[int]:
    """Ids of the calls whose result an attribute is read of (``out.max(1).indices``): a tuple
    has none of torch's named fields, so these keep the escape when written as one."""
    return {
        id(n.value)
        for s in statements
        for n in cst_walk.walk(s)
        if isinstance(n, cst.Attribute) and isinstance(n.value, cst.Call)
    }


class ExactNamesakes(cst.CSTTransformer):
    """Writes each call or attribute read equal to one of ``texts`` (source code -> JAX
    text)."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        super().__init__()
        self.texts = texts

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        text = self.texts.get(code_of(original).strip())
        return cst.parse_expression(text) if text is not None else updated

    def leave_Attribute(
        self, original: cst.Attribute, updated: cst.Attribute
    ) -> cst.BaseExpression:
        text = self.texts.get(code_of(original).strip())
        return cst.parse_expression(text) if text is not None else updated
