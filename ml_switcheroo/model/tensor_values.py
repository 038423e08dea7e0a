"""Torch values as hyper-parameters: ``lr=torch.tensor(1e-3)`` means ``lr=1e-3``.

A functional optimizer takes Python numbers (or JAX arrays); a torch tensor passed to it fails
at run time. A
tensor made from one number literal (the map's ``tensor_values.literals``) is replaced by the
number; any other argument whose value is a torch tensor escapes. The dtype matters: a float
literal not exactly representable in float32 is rounded when torch's default dtype is float32,
which the codemod cannot see (the conversion happens with a warning; see ``_rounding``).

A tensor of an expression through a call that copies its data (``tensor_values.copies``:
``torch.tensor(cfg.lr, device=device)``) becomes ``float(cfg.lr)``: torch's value exactly when
the expression is an int, a float64 number or tensor, or the default dtype is float64; a Python
float under float32 default dtype is rounded and computed with in float32 (a warning, see
``_expression_rounding``). Escapes: an expression that is no single number (a list, a string),
that is a torch tensor (its shape and in-place writes are not followed), or a call that may
return the expression itself (``torch.as_tensor``: torch's optimizer would hold that tensor).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import libcst as cst

from ml_switcheroo.analysis.parameters import Names
from ml_switcheroo.analysis.purity import is_pure
from ml_switcheroo.model.translate import BoundCall
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding, Render
from ml_switcheroo.spec.semantic_map import SemanticMap, TensorValueSpec
from ml_switcheroo.spec.signature import NotALiteral, Parameter, Signature, code_of, literal_value

DTYPE = "dtype"  # the argument of a literal tensor call that sets its dtype
_MAX_DEPTH = 8  # names followed through assignments
_INT64 = 2**63
FLOAT = "float"  # the builtin an expression's tensor becomes a number through
# Expressions that are no single number: `torch.tensor([lr])`, `torch.tensor("1e-3")`.
_NOT_SCALARS = (
    cst.List,
    cst.Tuple,
    cst.Set,
    cst.Dict,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
    cst.SimpleString,
    cst.ConcatenatedString,
    cst.FormattedString,
    cst.Lambda,
)


def replace_tensor_literals(
    call: BoundCall,
    names: Names,
    semantic_map: SemanticMap,
    skip: Iterable[str] = (),
    *,
    render: Render,
) -> list[str]:
    """Override each argument that is (or holds, in a tuple) a tensor of a number literal with
    the number; raise ``Untranslatable`` for any other tensor-valued argument. Returns warnings
    (findings and warnings are worded by ``render``, the target's).

    Calls the map knows (optimizers, schedulers: ``SequentialLR(opt, [warmup, cosine])``) are
    not tensors."""
    spec = semantic_map.tensor_values
    names = replace(names, qualified=_unless_mapped(names.qualified, semantic_map))
    warnings: list[str] = []
    skipped = set(skip) | call.entry.ignore
    for name, arg in call.args.items():
        if name in skipped or name in call.overrides:
            continue
        _check_array_not_written(name, arg.value, names, spec, render)
        value = _replaced(arg.value, names, spec, warnings, render)
        found = _tensor_source(value, names, spec, 0)
        if found is not None:
            raise _tensor_escape(name, arg.value, *found, render)
        if value is not arg.value:
            call.overrides[name] = value
    return warnings


def _check_array_not_written(
    name: str, value: cst.BaseExpression, names: Names, spec: TensorValueSpec, render: Render
) -> None:
    """A hyper-parameter naming a NumPy array (the map's ``arrays``) that the code reads
    elsewhere than as a torch call's argument may be written in place between steps: raise
    the finding (``Names.other_read`` finds the read)."""
    if not isinstance(value, cst.Name) or not spec.arrays:
        return
    bound = names.value(value)
    if not isinstance(bound, cst.Call) or not set(names.qualified(bound.func)) & spec.arrays:
        return
    read = names.other_read(value)
    if read is not None:
        shown = " ".join(code_of(read).split())[:60]
        values = {"name": name, "shown": value.value, "read": f"`{shown}`"}
        raise render(Finding(findings.ARRAY_WRITTEN, values))


def _unless_mapped(
    qualify: Callable[[cst.BaseExpression], list[str]], semantic_map: SemanticMap
) -> Callable[[cst.BaseExpression], list[str]]:
    """``qualify``, where an API the map wires counts as no torch call."""

    def qualified(node: cst.BaseExpression) -> list[str]:
        found = qualify(node)
        known = [n for n in found if n in semantic_map.apis]
        return [] if known else found

    return qualified


def _replaced(
    value: cst.BaseExpression,
    names: Names,
    spec: TensorValueSpec,
    warnings: list[str],
    render: Render,
) -> cst.BaseExpression:
    """``value`` with literal tensors (itself, or elements of a tuple/list) made numbers."""
    if isinstance(value, cst.Call):
        number = _number(value, names, spec, warnings, render)
        return value if number is None else number
    if isinstance(value, (cst.Tuple, cst.List)):
        elements = [
            e.with_changes(value=_replaced(e.value, names, spec, warnings, render))
            if isinstance(e, cst.Element)
            else e
            for e in value.elements
        ]
        if any(
            new.value is not old.value for new, old in zip(elements, value.elements, strict=True)
        ):
            return value.with_changes(elements=elements)
    return value


def _number(
    node: cst.Call, names: Names, spec: TensorValueSpec, warnings: list[str], render: Render
) -> cst.BaseExpression | None:
    """The number of ``torch.tensor(<number>, ...)`` (``float(<expression>)`` for a tensor
    of an expression, see ``_expression``); None for any other call."""
    api = next((n for n in names.qualified(node.func) if n in spec.literals), None)
    if api is None:
        return None
    shown = _code(node)
    signature = spec.literals[api]
    try:
        bound = signature.bind(node)
    except Untranslatable as exc:
        raise Untranslatable(f"`{shown}` is a torch tensor, and {exc.reason}") from None
    data = bound[signature.parameters[0].name].value
    number = _literal(data)
    if number is _NOT_A_LITERAL and not _not_a_scalar(data, names, 0):
        return _expression(node, api, data, names, spec, warnings, render)
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise render(Finding(findings.TENSOR_NOT_A_NUMBER, {"shown": shown, "data": _code(data)}))
    dtype = _checked_dtype(shown, signature, bound, names, spec, render)
    warning = _rounding(shown, number, dtype, render)
    if warning:
        warnings.append(warning)
    return data


def _checked_dtype(
    shown: str,
    signature: Signature,
    bound: dict[str, cst.Arg],
    names: Names,
    spec: TensorValueSpec,
    render: Render,
) -> str | None:
    """The tensor's dtype (see ``_dtype``), once its other arguments keep the number."""
    for parameter in signature.parameters[1:]:
        if parameter.name in bound and parameter.name != DTYPE:
            value = bound[parameter.name].value
            _check_neutral(shown, parameter.name, value, parameter, spec, render)
    return _dtype(shown, bound.get(DTYPE), names, spec)


def _expression(
    node: cst.Call,
    api: str,
    data: cst.BaseExpression,
    names: Names,
    spec: TensorValueSpec,
    warnings: list[str],
    render: Render,
) -> cst.BaseExpression:
    """``float(<data>)`` for ``torch.tensor(<data>, ...)`` of an expression that may be one
    number; escapes when it is a torch tensor, when the call may return it uncopied, or when
    ``float`` is the file's name there."""
    shown, data_code = _code(node), _code(data)
    values = {"shown": shown, "data": data_code}
    found = _tensor_source(data, names, spec, 0)
    if found is not None:
        raise render(Finding(findings.TENSOR_OF_TENSOR, {**values, "origin": found[1]}))
    if api not in spec.copies:
        raise render(Finding(findings.TENSOR_MAY_ALIAS, {**values, "api": api}))
    if names.binds(node, FLOAT):
        raise render(Finding(findings.TENSOR_FLOAT_SHADOWED, values))
    signature = spec.literals[api]
    dtype = _checked_dtype(shown, signature, signature.bind(node), names, spec, render)
    if dtype != "float64":
        rounding = _expression_rounding(data_code, dtype)
        finding = Finding(findings.TENSOR_OF_EXPRESSION, {**values, **rounding})
        warnings.append(render(finding).reason)
    return cst.Call(cst.Name(FLOAT), [cst.Arg(data)])


def _expression_rounding(data: str, dtype: str | None) -> dict[str, str]:
    """The warning's words on what torch rounds: a float32 tensor, or under the default dtype."""
    if dtype == "float32":
        return {"rounding": "torch rounds it to float32 and computes with it in float32"}
    return {
        "rounding": f"torch's value when `{data}` is an int, a float64 number or tensor, or "
        "torch's default dtype is float64; a Python float under float32 default dtype (torch's "
        "usual) is rounded to float32 and computed with in float32"
    }


def _not_a_scalar(node: cst.BaseExpression, names: Names, depth: int) -> bool:
    """``node`` (or the one value a name holds) is a container, a string or a literal that is
    no number: its tensor is no single number torch's optimizer takes as ``float()`` does."""
    if isinstance(node, _NOT_SCALARS):
        return True
    literal = _literal(node)
    if literal is not _NOT_A_LITERAL:
        return isinstance(literal, bool) or not isinstance(literal, (int, float))
    if isinstance(node, (cst.Name, cst.Attribute)) and depth < _MAX_DEPTH:
        value = names.value(node)
        if value is not None and value is not node:
            return _not_a_scalar(value, names, depth + 1)
    return False


def _check_neutral(
    shown: str,
    name: str,
    value: cst.BaseExpression,
    parameter: Parameter,
    spec: TensorValueSpec,
    render: Render,
) -> None:
    """An argument other than the value and dtype must not change the number."""
    if name in spec.ignore:
        if is_pure(value):
            return
        raise Untranslatable(
            f"`{shown}`: its `{name}=` argument would be dropped, and it is not a plain value"
        )
    given, default = _literal(value), _literal(parameter.default_node)
    if given != default or type(given) is not type(default):
        values = {"shown": shown, "name": name, "value": _code(value)}
        raise render(Finding(findings.TENSOR_ARGUMENT_CHANGES_NUMBER, values))


def _dtype(shown: str, arg: cst.Arg | None, names: Names, spec: TensorValueSpec) -> str | None:
    """ "float64"/"float32" for a known dtype, None when omitted (torch's default dtype)."""
    if arg is None or _literal(arg.value) is None:
        return None
    for name in names.qualified(arg.value):
        if name in spec.dtypes:
            return spec.dtypes[name]
    raise Untranslatable(
        f"`{shown}` is a torch tensor of dtype `{_code(arg.value)}`; only "
        f"{', '.join(sorted(spec.dtypes))} (or no dtype) are read as Python numbers",
        "pass the Python number the optimizer should use",
    )


def _rounding(shown: str, number: int | float, dtype: str | None, render: Render) -> str | None:
    """A warning when torch may round the number (float32), else None; escape on overflow."""
    if dtype == "float64" or (dtype is None and isinstance(number, int)):
        if isinstance(number, int) and not -_INT64 <= number < _INT64:
            raise Untranslatable(f"`{shown}`: {number} does not fit a torch int64 tensor")
        return None
    try:
        rounded = struct.unpack("f", struct.pack("f", float(number)))[0]
    except OverflowError:
        raise Untranslatable(f"`{shown}`: {number} overflows a float32 tensor") from None
    if rounded == number or number != number:
        return None
    where = "a float32 tensor" if dtype else "a float32 tensor under torch's default dtype"
    values = {
        "shown": shown,
        "where": where,
        "rounded": repr(rounded),
        "number": repr(number),
        "relative": f"{abs(rounded - number) / abs(number):.0e}",
    }
    return render(Finding(findings.TENSOR_ROUNDED, values)).reason


def _tensor_source(
    node: cst.BaseExpression, names: Names, spec: TensorValueSpec, depth: int
) -> tuple[str, str] | None:
    """(the part of ``node`` that is a torch tensor, where the tensor comes from), or None."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(node, cst.Call):
        return _call_tensor(node, names, spec, depth)
    if isinstance(node, (cst.Name, cst.Attribute)):
        value = names.value(node)
        if value is not None and value is not node:
            found = _tensor_source(value, names, spec, depth + 1)
            return (_code(node), found[1]) if found else None
        if isinstance(node, cst.Attribute) and not names.qualified(node):
            found = _tensor_source(node.value, names, spec, depth + 1)
            return (_code(node), found[1]) if found else None
        return None
    if isinstance(node, cst.Subscript):  # the element is the tensor: `float(box[0])`
        found = _tensor_source(node.value, names, spec, depth + 1)
        return (_code(node), found[1]) if found else None
    for child in _operands(node):
        found = _tensor_source(child, names, spec, depth + 1)
        if found is not None:
            return found
    return None


def _call_tensor(
    node: cst.Call, names: Names, spec: TensorValueSpec, depth: int
) -> tuple[str, str] | None:
    func = node.func
    if isinstance(func, cst.Attribute) and func.attr.value in spec.python_methods:
        return None
    qualified = names.qualified(func)
    if qualified:
        into_torch = [n for n in qualified if n.partition(".")[0] in spec.packages]
        if into_torch and not any(n in spec.python_values for n in into_torch):
            return _code(node), _code(node)
        return None
    if isinstance(func, cst.Attribute):  # a method of a tensor is a tensor: `t.sqrt()`
        found = _tensor_source(func.value, names, spec, depth + 1)
        return (_code(node), found[1]) if found else None
    return None


def _operands(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The sub-expressions whose tensor-ness the value of ``node`` inherits."""
    if isinstance(node, (cst.BinaryOperation, cst.BooleanOperation)):
        return [node.left, node.right]
    if isinstance(node, cst.UnaryOperation):
        return [node.expression]
    if isinstance(node, cst.IfExp):
        return [node.body, node.orelse]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [e.value for e in node.elements]
    return []


def _tensor_escape(
    name: str, value: cst.BaseExpression, shown: str, origin: str, render: Render
) -> Untranslatable:
    if shown == origin:
        detail = f"`{shown}` is one"
    elif shown.endswith("]"):  # an element of a tensor, or of a container holding one
        detail = f"`{shown}` is read from `{origin}`"
    else:
        detail = f"`{shown}` is `{origin}`"
    values = {"name": name, "value": _code(value), "detail": detail, "shown": shown}
    return render(Finding(findings.TENSOR_HYPERPARAMETER, values))


def _literal(node: cst.BaseExpression) -> Any:
    try:
        return literal_value(node)
    except NotALiteral:
        return _NOT_A_LITERAL


_NOT_A_LITERAL = object()


def _code(node: cst.CSTNode) -> str:
    return " ".join(code_of(node).split())
