"""Calls of the map's ``array_namesakes`` that its ``exact`` template writes in JAX with the
same numbers (``_, pred = out.max(1)`` in the NNX step: ``(jnp.take_along_axis(out,
out.argmax(axis=1, keepdims=True), axis=1).squeeze(1), out.argmax(axis=1))``): which calls may
be written so, and the rewrite."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from typing import Any

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.semantic_map import ArrayNamesake
from ml_switcheroo.spec.signature import code_of, dotted_name

# A parameter default in the map's ``params`` for an int that may be left out (torch's
# ``dim=None``: ``torch.sum(x)``): not given, the template gets ``None``.
OPTIONAL_INT = "None"


def exact_text(
    call: cst.Call,
    namesakes: Mapping[str, ArrayNamesake],
    arrays: set[str],
    qualify: Callable[[cst.BaseExpression], list[str]],
    after_update: bool = False,
    read: Set[int] = frozenset(),
    outputs: Set[int] = frozenset(),
    functions: Mapping[str, ArrayNamesake] | None = None,
    render: Callable[[cst.BaseExpression], str] | None = None,
    is_device: Callable[[cst.BaseExpression], bool] | None = None,
    computed: Set[str] = frozenset(),
) -> str | None:
    """The JAX text of ``x.<namesake>(...)`` with ``x`` one of ``arrays`` (or a receiver in
    ``outputs``, by id: a call of the model, ``self.forward(x_pos)``) and every argument a
    literal of the entry's ``params`` (None: the call keeps the namesake's escape), inside the
    step or (``after_update``) in the statements after it; not for a call in ``read`` (an
    attribute of its result is read: ``attribute_receivers``) whose template is a tuple. A
    call of one of ``functions`` (``torch.max(x, 1)``) the same, its first argument the
    array; an entry that ``detaches`` inside the step only on a name not in ``arrays``.
    ``render``: the text of an argument written as is (its own rewrites)."""
    parts = array_call(call, namesakes, qualify, functions)
    if parts is None:
        return None
    namesake, receiver, args = parts
    template = namesake.template(after_update, bare=not args)
    if template is None:
        return None
    if isinstance(receiver, cst.Name) and namesake.detaches and not after_update:
        if receiver.value in arrays or receiver.value in computed:
            return None  # (``computed``: names the loss binds; Variable cuts their gradient)
        x = receiver.value
    elif isinstance(receiver, cst.Name) and (receiver.value in arrays or namesake.any_array):
        x = receiver.value
    elif id(receiver) in outputs and not namesake.detaches and template.count("{x}") == 1:
        x = code_of(receiver).strip()  # (written twice, the model would run twice: BatchNorm
        # statistics move twice, dropout draws other masks for the values and the indices)
    elif qualify(call.func) and template.count("{x}") == 1 and not namesake.detaches:
        x = operand_text(receiver, render, template)  # `torch.sum((out - y) ** 2)`: read once
    else:
        return None
    variadic = any(name.startswith("*") for name, _ in namesake.params)
    if variadic and any(_qualified_operand(a.value, qualify) for a in args):
        return None  # `x.view(torch.float16)`: a dtype, not a size
    bound = _bound_or_bare(args, namesake, render)
    if bound is None or not _devices_proven(args, namesake, is_device):
        return None
    if not after_update and not _undifferentiated(args, namesake, arrays | computed, outputs):
        return None
    return _filled(template, x, bound, id(call) in read, _is_bare(args, namesake))


def _undifferentiated(
    args: Sequence[cst.Arg], entry: ArrayNamesake, computed: Set[str], outputs: Set[int]
) -> bool:
    """Whether every argument of an ``undifferentiated`` parameter of ``entry`` (the template
    gives it no gradient, torch one) reads no name of ``computed`` (the loss function's values)
    and calls only methods of the map's tensor entries (``x.view(-1, 784)``), none a model's
    output (``outputs``): torch's gradient through it is then none either (s37)."""
    if not entry.undifferentiated:
        return True
    names = [name for name, _ in entry.params]
    for index, arg in enumerate(args):
        name = arg.keyword.value if arg.keyword is not None else names[index]
        if name not in entry.undifferentiated:
            continue
        for node in cst_walk.walk(arg.value):
            if isinstance(node, cst.Name) and node.value in computed:
                return False
            if isinstance(node, cst.Call) and (
                id(node) in outputs
                or not isinstance(node.func, cst.Attribute)
                or node.func.attr.value not in _TENSOR_METHODS
            ):
                return False
    return True


# methods a tensor-valued argument may call and still carry no model: reshaping and type reads
_TENSOR_METHODS = frozenset({"view", "reshape", "view_as", "float", "double", "flatten"})


def _is_bare(args: Sequence[cst.Arg], entry: ArrayNamesake) -> bool:
    """Whether a call is written with the entry's ``bare_exact``: another type than torch's
    (a tuple for a torch.Size), an attribute of which (``x.size().numel()``) is not torch's."""
    return not args and entry.bare_exact is not None


def _bound_or_bare(
    args: Sequence[cst.Arg],
    entry: ArrayNamesake,
    render: Callable[[cst.BaseExpression], str] | None,
) -> dict[str, str] | None:
    """``_bound`` of ``args``, or nothing to fill for a call without arguments the entry's
    ``bare_exact`` writes (``x.size()`` -> ``x.shape``)."""
    if _is_bare(args, entry):
        return {}
    return _bound(
        args,
        dict(entry.params),
        entry.operands,
        render,
        entry.devices,
        entry.expressions,
        dict(entry.choices),
    )


def _devices_proven(
    args: Sequence[cst.Arg],
    entry: ArrayNamesake,
    is_device: Callable[[cst.BaseExpression], bool] | None,
) -> bool:
    """Whether every argument of a ``devices`` parameter of ``entry`` is a device
    (``is_device``: None, none is)."""
    if not entry.devices:
        return True
    names = [name for name, _ in entry.params]
    for index, arg in enumerate(args):
        name = arg.keyword.value if arg.keyword is not None else names[index]
        if name in entry.devices and (is_device is None or not is_device(arg.value)):
            return False
    return True


def operand_text(
    node: cst.BaseExpression,
    render: Callable[[cst.BaseExpression], str] | None,
    template: str = "",
) -> str:
    """An expression's text (after its own rewrites), parenthesized unless it is a name, an
    attribute read, a subscript or a call (``(out - y).sum()``, not ``out - y.sum()``), or
    ``template`` passes it as an argument (``jnp.sum({x}, ...)``)."""
    text = render(node) if render is not None else code_of(node).strip()
    try:
        written = cst.parse_expression(text)
    except cst.ParserSyntaxError:  # over several lines, an argument's (`torch.log(\n1\n+ ...)`)
        return f"({text})"
    if written.lpar or isinstance(written, (cst.Name, cst.Attribute, cst.Subscript, cst.Call)):
        return text
    if re.search(r"[(,] ?\{x\}[,)]", template) and not isinstance(written, cst.Tuple):
        return text
    return f"({text})"


def array_call(
    call: cst.Call,
    namesakes: Mapping[str, ArrayNamesake],
    qualify: Callable[[cst.BaseExpression], list[str]],
    functions: Mapping[str, ArrayNamesake] | None = None,
) -> tuple[ArrayNamesake, cst.BaseExpression, list[cst.Arg]] | None:
    """The entry of ``call``, the array it is called on and its other arguments: a method of
    ``namesakes`` on a value (``out.max(1)``: not a function of an imported module) or a
    function of ``functions`` by qualified name (``torch.max(out, 1)``: its first positional
    argument, not starred); None for any other call."""
    func = call.func
    qualified = qualify(func)
    if not qualified:
        if not isinstance(func, cst.Attribute) or func.attr.value not in namesakes:
            return None
        return namesakes[func.attr.value], func.value, list(call.args)
    entry = next((functions[q] for q in qualified if functions and q in functions), None)
    if entry is None or not call.args:
        return None
    first, *rest = call.args
    if first.keyword is not None or first.star:
        return None
    return entry, first.value, rest


def _qualified_operand(
    node: cst.BaseExpression, qualify: Callable[[cst.BaseExpression], list[str]]
) -> bool:
    """Whether an argument names something of an import (``torch.float16``, ``np.int64``)."""
    return isinstance(node, (cst.Name, cst.Attribute)) and bool(qualify(node))


def after_text(
    node: cst.CSTNode,
    x: str,
    namesakes: Mapping[str, ArrayNamesake],
    attributes: Mapping[str, ArrayNamesake],
    read: Set[int],
    entry_args: tuple[ArrayNamesake, list[cst.Arg]] | None = None,
    render: Callable[[cst.BaseExpression], str] | None = None,
    is_device: Callable[[cst.BaseExpression], bool] | None = None,
    once: bool = False,
) -> str | None:
    """The JAX text after the update of ``<receiver>.<namesake>(...)`` (every argument a
    literal of the entry's ``params``) or ``<receiver>.<attribute>`` (``out.data``), the
    receiver written ``x`` (None: it keeps the escape; ``read``: as in ``exact_text``);
    ``entry_args``: the entry and the other arguments of a function call (``array_call``);
    ``once``: only a template reading its receiver once, ``x`` being a call of the model."""
    if entry_args is not None:
        entry, args = entry_args[0], list(entry_args[1])
    elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        entry, args = namesakes.get(node.func.attr.value), list(node.args)
    elif isinstance(node, cst.Attribute):
        entry, args = attributes.get(node.attr.value), []
    else:
        return None
    template = entry.template(True, bare=not args) if entry is not None else None
    if entry is None or template is None or (once and template.count("{x}") != 1):
        return None
    bound = _bound_or_bare(args, entry, render)
    if bound is None or not _devices_proven(args, entry, is_device):
        return None
    return _filled(template, x, bound, id(node) in read, _is_bare(args, entry))


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


def _filled(
    template: str, x: str, bound: Mapping[str, str], attribute_read: bool, bare: bool = False
) -> str | None:
    """``template`` with the receiver and the arguments; None for a tuple an attribute of which
    is read (torch's named fields: ``out.max(1).indices``), or a ``bare`` template's
    (``x.size().numel()``: torch.Size's method, a tuple has none)."""
    text = template.format(x=x, **bound)
    if attribute_read and (bare or isinstance(cst.parse_expression(text), cst.Tuple)):
        return None
    return text


def _bound(
    args: Sequence[cst.Arg],
    params: dict[str, Any],
    operands: Sequence[str] = (),
    render: Callable[[cst.BaseExpression], str] | None = None,
    free: Sequence[str] = (),
    expressions: Sequence[str] = (),
    choices: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str] | None:
    """Each parameter's literal text (its default's when not given), or None when an argument
    is not a literal of its parameter's type (a required one: an int), starred or unknown; an
    ``operands`` parameter takes a name, a dotted name or a number too (written as is); a last
    ``*name`` parameter every further positional argument (at least one, keywords none), each
    written as is (``render``: after its own rewrites), joined by commas."""
    names = list(params)
    rest = names.pop() if names and names[-1].startswith("*") else None
    given: dict[str, cst.BaseExpression] = {}
    result = {}
    if rest is not None:
        extra = args[len(names) :]
        if not extra or any(a.keyword is not None or a.star == "**" for a in extra):
            return None
        shown = render or (lambda node: code_of(node).strip())
        result[rest[1:]] = ", ".join(f"{a.star}{shown(a.value)}" for a in extra)
        args = args[: len(names)]
        params = {name: params[name] for name in names}
    choices = choices or {}
    for index, arg in enumerate(args):
        if arg.star or (arg.keyword is None and index >= len(names)):
            return None
        name = arg.keyword.value if arg.keyword is not None else names[index]
        if name not in params or name in given:
            return None
        if name in choices and arg.keyword is None:
            return None  # (keyword only: torch's third positional is `weight`/`size_average`)
        given[name] = arg.value
    for name, default in params.items():
        if name in choices:  # `reduction="sum"` -> the word `sum` (s37)
            word = _string(given[name]) if name in given else default
            if word not in choices[name]:
                return None
            result[name] = word
            continue
        if name not in given:
            if default is None:
                return None
            result[name] = "None" if default == OPTIONAL_INT else repr(default)
            continue
        if name in free:  # (a device, proven by the caller: `_devices_proven`)
            result[name] = code_of(given[name]).strip()
            continue
        if name in expressions:  # any expression, read once by the template (s37)
            shown = render(given[name]) if render is not None else code_of(given[name]).strip()
            result[name] = shown
            continue
        if name in operands and _operand(given[name]):
            result[name] = code_of(given[name]).strip()
            continue
        written = render(given[name]) if render is not None and name in operands else None
        if written is not None and written != code_of(given[name]).strip():
            result[name] = f"({written})"  # `pred.eq(y.view_as(pred))`: its own rewrite
            continue
        value = _literal(given[name])
        wanted = int if default is None or default == OPTIONAL_INT else type(default)
        if value is None or type(value) is not wanted:
            return None
        result[name] = repr(value)
    return result


def _string(node: cst.BaseExpression) -> str | None:
    """The value of a plain string literal (``"sum"``; None for anything else)."""
    if isinstance(node, cst.SimpleString) and node.prefix.lower() in ("", "u"):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


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


def rendered_by_code(texts: Mapping[str, str]) -> Callable[[cst.BaseExpression], str]:
    """The text of an expression with the calls of ``texts`` (code -> JAX text) in it
    written (``ExactNamesakes``)."""
    return lambda node: code_of(node.visit(ExactNamesakes(texts))).strip()  # type: ignore[arg-type]


def rendered_by_id(texts: Mapping[int, str]) -> Callable[[cst.BaseExpression], str]:
    """The text of an expression with the calls and attribute reads of ``texts`` (by id of
    the node) in it written."""
    return lambda node: code_of(node.visit(_WrittenById(texts))).strip()  # type: ignore[arg-type]


class _WrittenById(cst.CSTTransformer):
    """Writes each call or attribute read whose id ``texts`` holds."""

    def __init__(self, texts: Mapping[int, str]) -> None:
        super().__init__()
        self.texts = texts

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> Any:  # type: ignore[override]
        text = self.texts.get(id(original))
        if text is not None and isinstance(original, (cst.Call, cst.Attribute)):
            return cst.parse_expression(text)
        return updated


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
