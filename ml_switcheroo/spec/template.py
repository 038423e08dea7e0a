"""Expression templates of the semantic map, e.g. ``optax.adam(learning_rate={lr}, b1={b[0]?})``.

Placeholders name a torch parameter: ``{lr}`` is the call's argument (or torch's default),
``{betas[0]}`` an element of a tuple argument, and a trailing ``?`` on a keyword argument's
value means "leave this keyword out when the torch call leaves the argument out" (the map
author asserts that optax's default equals torch's there). Templates are parsed once, when the
map loads; rendering substitutes CST nodes, never text, and parenthesizes where precedence
needs it.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import libcst as cst

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?(\?)?\}")
_TOKEN_PREFIX = "__ms_"
_BUILTINS = frozenset(dir(builtins))
# The builtins a template may call: pure functions of their arguments. Everything else
# (``__import__``, ``eval``, ``exec``, ``compile``, ``open``, ``getattr``, ``globals``...) is
# refused: what a template writes into the user's file may only use the map's declared imports
# (where a reviewer sees them), these builtins, literals and the placeholders.
ALLOWED_BUILTINS = frozenset(
    {
        "abs", "all", "any", "bool", "complex", "dict", "divmod", "enumerate", "filter",
        "float", "frozenset", "int", "isinstance", "iter", "len", "list", "map", "max", "min",
        "next", "pow", "range", "reversed", "round", "set", "slice", "sorted", "str", "sum",
        "tuple", "zip",
    }
)  # fmt: skip
MAX_TEMPLATE_LENGTH = 2000  # characters; the shipped map's longest template has about 400
# Source-code control characters a template may hold (others could break the written file:
# a NUL makes it unloadable, a lone CR ends a line).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# Nodes that never need parentheses when substituted into a larger expression.
_ATOMIC = (
    cst.Name,
    cst.Attribute,
    cst.Call,
    cst.Subscript,
    cst.Integer,
    cst.Float,
    cst.Imaginary,
    cst.SimpleString,
    cst.FormattedString,
    cst.List,
    cst.Dict,
    cst.Set,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
    cst.Ellipsis,
)


@dataclass(frozen=True)
class Placeholder:
    """``{name}``, ``{name[index]}``, optionally with ``?``."""

    token: str
    name: str
    index: int | None
    optional: bool
    in_safe_position: bool  # an argument, element or the whole template: no parens needed


# Returns the node to substitute, or None to drop an optional keyword argument.
Resolver = Callable[[Placeholder], "cst.BaseExpression | None"]


@dataclass(frozen=True)
class Template:
    """A compiled expression template."""

    source: str
    expression: cst.BaseExpression
    placeholders: dict[str, Placeholder]
    free_names: frozenset[str]  # root names that must be imported (e.g. ``optax``)
    # names the template binds (lambda parameters, comprehension variables), e.g. ``count``
    introduced_names: frozenset[str] = frozenset()

    @classmethod
    def compile(cls, source: str) -> Template:
        """Parse ``source``; raise ``ValueError`` when it is not one Python expression."""
        if not isinstance(source, str) or not source.strip():
            raise ValueError("a template must be a non-empty string")
        if len(source) > MAX_TEMPLATE_LENGTH:
            raise ValueError(f"longer than {MAX_TEMPLATE_LENGTH} characters")
        control = _CONTROL.search(source)
        if control:
            raise ValueError(f"holds the control character {control.group()!r}")
        found: dict[str, tuple[str, int | None, bool]] = {}

        def to_token(match: re.Match[str]) -> str:
            name, index, optional = match.group(1), match.group(2), match.group(3)
            token = f"{_TOKEN_PREFIX}{name}" + (f"_{index}" if index else "")
            token += "_opt" if optional else ""
            found[token] = (name, int(index) if index else None, bool(optional))
            return token

        text = _PLACEHOLDER.sub(to_token, source.strip())
        if "{" in _strip_strings(text) or "}" in _strip_strings(text):
            # Dict/set displays are allowed; only malformed placeholders are rejected.
            leftovers = re.findall(r"\{[^{}:,]*\}", _strip_strings(text))
            if leftovers:
                raise ValueError(f"malformed placeholder {leftovers[0]!r}")
        try:
            tree = ast.parse(text, mode="eval")
        except (SyntaxError, ValueError) as exc:
            message = getattr(exc, "msg", None) or str(exc).splitlines()[0]
            raise ValueError(f"not a single Python expression ({message})") from None
        except (RecursionError, MemoryError):
            raise ValueError("nested too deeply") from None
        _check_constructs(tree, set(found))
        try:
            expression = cst.parse_expression(text)
        except cst.ParserSyntaxError as exc:
            message = str(exc).splitlines()[0]
            raise ValueError(f"not a single Python expression ({message})") from None
        except RecursionError:
            raise ValueError("nested too deeply") from None
        safe = _tokens_in_safe_positions(expression, set(found))
        placeholders = {
            token: Placeholder(token, name, index, optional, token in safe)
            for token, (name, index, optional) in found.items()
        }
        optional_misplaced = [
            p
            for p in placeholders.values()
            if p.optional and not _is_keyword_value(expression, p.token)
        ]
        if optional_misplaced:
            raise ValueError(
                f"`?` is only allowed on a keyword argument's value "
                f"({{{optional_misplaced[0].name}?}})"
            )
        free = _free_names(tree) - set(found) - _BUILTINS
        return cls(source, expression, placeholders, frozenset(free), _introduced_names(tree))

    @property
    def parameter_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.placeholders.values())

    def render(self, resolve: Resolver) -> cst.BaseExpression:
        """Substitute every placeholder with ``resolve(placeholder)``."""
        return self.expression.visit(_Substitute(self.placeholders, resolve))


class _Substitute(cst.CSTTransformer):
    def __init__(self, placeholders: dict[str, Placeholder], resolve: Resolver) -> None:
        super().__init__()
        self.placeholders = placeholders
        self.resolve = resolve
        self.dropped: set[str] = set()
        self.parents: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.parents.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        self.parents.pop()
        return super().on_leave(original_node, updated_node)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        placeholder = self.placeholders.get(original_node.value)
        if placeholder is None:
            return updated_node
        value = self.resolve(placeholder)
        if value is None:
            self.dropped.add(placeholder.token)
            return updated_node  # removed by leave_Arg
        if original_node.lpar:  # the template's own parentheses stay, where they matter
            if isinstance(value, _ATOMIC) or value.lpar:
                return value
            return value.with_changes(
                lpar=[*original_node.lpar, *value.lpar], rpar=[*value.rpar, *original_node.rpar]
            )
        # self.parents ends with this Name; the one before it is its parent.
        parent = self.parents[-1] if self.parents else None
        if not _safe_child(parent, original_node):
            value = parenthesize(value)
        return value

    def leave_Arg(
        self, original_node: cst.Arg, updated_node: cst.Arg
    ) -> cst.Arg | cst.RemovalSentinel:
        value = original_node.value
        if isinstance(value, cst.Name) and value.value in self.dropped:
            return cst.RemovalSentinel.REMOVE
        return updated_node

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        # Commas are recomputed so that dropping an optional argument leaves no `, )`.
        args = [arg.with_changes(comma=cst.MaybeSentinel.DEFAULT) for arg in updated_node.args]
        return updated_node.with_changes(args=args)


def _safe_child(parent: cst.CSTNode | None, child: cst.CSTNode) -> bool:
    """Whether any expression may stand at ``child``'s place in ``parent`` without parens."""
    if parent is None:
        return True
    if isinstance(parent, (cst.Arg, cst.Element)):
        return parent.value is child
    if isinstance(parent, cst.DictElement):
        return parent.value is child or parent.key is child
    return False


def parenthesize(node: cst.BaseExpression) -> cst.BaseExpression:
    """Wrap ``node`` in parentheses unless it is atomic or already parenthesized."""
    if isinstance(node, _ATOMIC) or node.lpar:
        return node
    if isinstance(node, cst.ConcatenatedString):
        return node
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _strip_strings(text: str) -> str:
    return re.sub(r"'[^']*'|\"[^\"]*\"", "''", text)


class _SafePositions(cst.CSTVisitor):
    """Finds placeholder tokens that sit where any expression is allowed without parens."""

    def __init__(self, tokens: set[str]) -> None:
        super().__init__()
        self.tokens = tokens
        self.safe: set[str] = set()

    def _mark(self, value: cst.BaseExpression) -> None:
        if isinstance(value, cst.Name) and value.value in self.tokens and not value.lpar:
            self.safe.add(value.value)

    def visit_Arg(self, node: cst.Arg) -> None:
        self._mark(node.value)

    def visit_Element(self, node: cst.Element) -> None:
        self._mark(node.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        self._mark(node.key)
        self._mark(node.value)


def _tokens_in_safe_positions(expression: cst.BaseExpression, tokens: set[str]) -> set[str]:
    visitor = _SafePositions(tokens)
    expression.visit(visitor)
    if isinstance(expression, cst.Name) and expression.value in tokens:
        visitor.safe.add(expression.value)
    return visitor.safe


def _is_keyword_value(expression: cst.BaseExpression, token: str) -> bool:
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Arg(self, node: cst.Arg) -> None:
            nonlocal found
            if node.keyword is not None and isinstance(node.value, cst.Name):
                found = found or node.value.value == token

    expression.visit(_Find())
    return found


def _check_constructs(tree: ast.Expression, tokens: set[str]) -> None:
    """Refuse what has no place in an expression written into someone's code: builtins other
    than ``ALLOWED_BUILTINS``, dunder names and attributes (``().__class__``), assignment
    expressions, ``yield`` and ``await``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.NamedExpr):
            raise ValueError("an assignment expression (`:=`) is not allowed in a template")
        if isinstance(node, (ast.Yield, ast.YieldFrom, ast.Await)):
            raise ValueError("`yield` and `await` are not allowed in a template")
        if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            raise ValueError(f"the attribute `{node.attr}` is not allowed in a template")
        if isinstance(node, ast.Name) and node.id not in tokens and node.id.startswith("__"):
            raise ValueError(f"the name `{node.id}` is not allowed in a template")
    for name in sorted(_free_names(tree) - tokens):
        if name in _BUILTINS and name not in ALLOWED_BUILTINS:
            raise ValueError(
                f"the builtin `{name}` is not allowed in a template (allowed builtins: "
                f"{', '.join(sorted(ALLOWED_BUILTINS))})"
            )


def _introduced_names(tree: ast.Expression) -> frozenset[str]:
    """Lambda parameters and comprehension targets of the expression."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, ast.comprehension):
            found.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
    return frozenset(found)


def _free_names(tree: ast.Expression) -> set[str]:
    """Root names loaded by the expression, minus lambda parameters and comprehension targets."""
    bound: set[str] = set()
    loaded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Lambda):
            args = node.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                bound.add(arg.arg)
            if args.vararg:
                bound.add(args.vararg.arg)
            if args.kwarg:
                bound.add(args.kwarg.arg)
        elif isinstance(node, ast.comprehension):
            for target in ast.walk(node.target):
                if isinstance(target, ast.Name):
                    bound.add(target.id)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loaded.add(node.id)
    return loaded - bound
