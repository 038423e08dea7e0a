"""Values that hold no parameter: stored on a model after its optimizer took its parameters,
they do not change what the optimizer trains (issue 13: the forward-forward example's
``self.threshold = args.threshold`` after ``self.opt = Adam(self.parameters(), ...)``).

A value holds no parameter (nor a tensor or a module) when it is a literal, arithmetic,
a comparison or a boolean operation of such values, or an option of the command line:
``X.name`` with ``X`` bound once, to ``P.parse_args()``, ``P`` bound once to a parser of the
map's ``option_parsers`` (``argparse.ArgumentParser``), where every ``P.add_argument(...)``
passes string literals and only the map's ``option_keywords``, its ``type=`` a builtin of
``option_types`` (not rebound), its ``action=`` a string of ``option_actions``, its
``default=`` and ``const=`` literals; every other read of ``P`` is ``P.parse_args()``, every
read of ``X`` an attribute load ``X.name`` that is neither stored into, deleted, subscripted
nor read further (``X.name.append(t)``); the file rebinds no global by name; another file does
not name ``X`` unless ``X`` is bound under ``if __name__ == "__main__":`` (a script's options,
bound only when it runs as the program). Anything else may hold a parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import BuiltinAssignment, Scope

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.signature import NotALiteral, literal_value

_DEPTH = 8


@dataclass(frozen=True)
class OptionFacts:
    """What the proof reads of the file and of the map."""

    module: cst.Module
    parents: Mapping[cst.CSTNode, cst.CSTNode]
    scopes: Mapping[cst.CSTNode, Scope | None]
    value: Callable[[cst.Name], cst.BaseExpression | None]  # the one value bound to a name
    qualify: Callable[[cst.BaseExpression], list[str]]
    mentioned_elsewhere: Callable[[str], bool] | None
    globals_rebound: bool
    parsers: frozenset[str]
    types: frozenset[str]
    actions: frozenset[str]
    keywords: frozenset[str]


def holds_no_parameter(value: cst.BaseExpression, facts: OptionFacts, depth: int = 0) -> bool:
    """Whether ``value`` is provably a plain Python value (no tensor, Parameter or module)."""
    if depth > _DEPTH:
        return False
    if _literal(value):
        return True
    if isinstance(value, cst.BinaryOperation):
        return holds_no_parameter(value.left, facts, depth + 1) and holds_no_parameter(
            value.right, facts, depth + 1
        )
    if isinstance(value, cst.UnaryOperation):
        return holds_no_parameter(value.expression, facts, depth + 1)
    if isinstance(value, cst.BooleanOperation):
        return holds_no_parameter(value.left, facts, depth + 1) and holds_no_parameter(
            value.right, facts, depth + 1
        )
    if isinstance(value, cst.Comparison):
        operands = [value.left, *(c.comparator for c in value.comparisons)]
        return all(holds_no_parameter(o, facts, depth + 1) for o in operands)
    if isinstance(value, cst.Attribute) and isinstance(value.value, cst.Name):
        return _option(value.value, facts)
    return False


def _option(options: cst.Name, facts: OptionFacts) -> bool:
    """``options`` is ``P.parse_args()`` of a parser whose options are plain values."""
    if facts.globals_rebound:
        return False
    parsed = facts.value(options)
    if not (
        isinstance(parsed, cst.Call)
        and not parsed.args
        and isinstance(parsed.func, cst.Attribute)
        and parsed.func.attr.value == "parse_args"
        and isinstance(parsed.func.value, cst.Name)
    ):
        return False
    parser = parsed.func.value
    built = facts.value(parser)
    if not isinstance(built, cst.Call) or not set(facts.qualify(built.func)) & facts.parsers:
        return False
    if _named_elsewhere((options.value, parser.value), parsed, facts):
        return False
    names = [n for n in cst_walk.walk(facts.module) if isinstance(n, cst.Name)]
    return all(_plain_read(n, parsed, facts) for n in names if n.value == options.value) and all(
        _parser_read(n, built, facts) for n in names if n.value == parser.value
    )


def _named_elsewhere(names: tuple[str, ...], parsed: cst.Call, facts: OptionFacts) -> bool:
    """Another file names one of ``names`` and they are not a script's options (bound under
    ``if __name__ == "__main__":``, only when the file runs as the program)."""
    elsewhere = facts.mentioned_elsewhere
    if elsewhere is None or _under_main_guard(parsed, facts.parents):
        return False
    return any(elsewhere(name) for name in names)


def _plain_read(name: cst.Name, parsed: cst.Call, facts: OptionFacts) -> bool:
    """The binding ``X = P.parse_args()`` or a plain load ``X.name``."""
    if _binding_of(name, parsed, facts.parents):
        return True
    attribute = facts.parents.get(name)
    if not isinstance(attribute, cst.Attribute) or attribute.value is not name:
        return False
    holder = facts.parents.get(attribute)
    if isinstance(holder, (cst.AssignTarget, cst.Del, cst.Attribute, cst.Subscript)):
        return False
    if isinstance(holder, (cst.AugAssign, cst.AnnAssign, cst.For)) and holder.target is attribute:
        return False
    return not (isinstance(holder, cst.Call) and holder.func is attribute)


def _parser_read(name: cst.Name, built: cst.Call, facts: OptionFacts) -> bool:
    """The binding ``P = ArgumentParser(...)``, ``P.parse_args()`` or a plain option."""
    if _binding_of(name, built, facts.parents):
        return True
    attribute = facts.parents.get(name)
    call = facts.parents.get(attribute) if attribute is not None else None
    if not (
        isinstance(attribute, cst.Attribute)
        and attribute.value is name
        and isinstance(call, cst.Call)
        and call.func is attribute
    ):
        return False
    if attribute.attr.value == "parse_args":
        return not call.args
    return attribute.attr.value == "add_argument" and _plain_argument(call, facts)


def _plain_argument(call: cst.Call, facts: OptionFacts) -> bool:
    """``add_argument("--x", type=float, default=2, help="...")`` of plain values only."""
    for arg in call.args:
        if arg.star:
            return False
        if arg.keyword is None:
            if not isinstance(arg.value, (cst.SimpleString, cst.ConcatenatedString)):
                return False
            continue
        keyword = arg.keyword.value
        if keyword not in facts.keywords:
            return False
        if keyword == "type" and not _builtin_type(arg.value, facts):
            return False
        if keyword == "action" and not (
            isinstance(arg.value, cst.SimpleString) and _string(arg.value) in facts.actions
        ):
            return False
        if keyword in ("default", "const") and not _literal(arg.value):
            return False
    return True


def _builtin_type(node: cst.BaseExpression, facts: OptionFacts) -> bool:
    """A builtin of ``types`` the file does not rebind."""
    if not isinstance(node, cst.Name) or node.value not in facts.types:
        return False
    scope = facts.scopes.get(node)
    if scope is None:
        return False
    referents = [r for a in scope.accesses[node.value] if a.node is node for r in a.referents]
    return len(referents) == 1 and isinstance(referents[0], BuiltinAssignment)


def _binding_of(
    name: cst.Name, value: cst.Call, parents: Mapping[cst.CSTNode, cst.CSTNode]
) -> bool:
    target = parents.get(name)
    assign = parents.get(target) if target is not None else None
    return (
        isinstance(target, cst.AssignTarget)
        and target.target is name
        and isinstance(assign, cst.Assign)
        and assign.value is value
    )


def _under_main_guard(node: cst.CSTNode, parents: Mapping[cst.CSTNode, cst.CSTNode]) -> bool:
    """``node`` is in the body of a module-level ``if __name__ == "__main__":``."""
    current = parents.get(node)
    while current is not None:
        if isinstance(current, cst.If) and _main_test(current.test):
            return isinstance(parents.get(current), cst.Module)
        if isinstance(current, (cst.FunctionDef, cst.ClassDef)):
            return False
        current = parents.get(current)
    return False


def _main_test(test: cst.BaseExpression) -> bool:
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    comparison = test.comparisons[0]
    sides = {_text(test.left), _text(comparison.comparator)}
    return isinstance(comparison.operator, cst.Equal) and sides == {"__name__", "__main__"}


def _text(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.SimpleString):
        return _string(node)
    return None


def _string(node: cst.SimpleString) -> str | None:
    value = node.evaluated_value
    return value if isinstance(value, str) else None


def _literal(node: cst.BaseExpression) -> bool:
    try:
        literal_value(node)
    except NotALiteral:
        return False
    return True
