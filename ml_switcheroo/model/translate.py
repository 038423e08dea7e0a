"""Turning one bound call into the expression its map entry describes.

``BoundCall`` binds a call site to the entry's torch signature; ``render_chain`` evaluates the
entry's escape rules and chain links against the literal argument values and renders the
links' templates; ``render_text`` fills reasons and suggestions. Nothing here knows any API:
it all comes from the map entry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import libcst as cst

from ml_switcheroo.spec import findings
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding, Render
from ml_switcheroo.spec.semantic_map import GRADIENTS, ApiEntry, Condition, EscapeRule, Link
from ml_switcheroo.spec.signature import NotALiteral, code_of, literal_value
from ml_switcheroo.spec.template import _PLACEHOLDER, Placeholder, Template, parenthesize

_UNKNOWN = object()


@dataclass
class BoundCall:
    """A call bound to its entry's signature; argument values stay CST nodes."""

    entry: ApiEntry
    call: cst.Call
    args: dict[str, cst.Arg]
    overrides: dict[str, cst.BaseExpression] = field(default_factory=dict)
    # Overridden arguments whose links must be wrapped (the map's ``inject_hyperparams``).
    injected: frozenset[str] = frozenset()
    # Definitions (``=T`` slots): the user arguments each one evaluates.
    definitions: dict[str, Counter[str]] = field(default_factory=dict)

    @classmethod
    def bind(cls, entry: ApiEntry, call: cst.Call) -> BoundCall:
        return cls(entry, call, entry.signature.bind(call))

    def given(self, name: str, index: int | None = None) -> bool:
        """Whether the call passes ``name`` (positionally or by keyword), or it is overridden."""
        if index is not None and f"{name}[{index}]" in self.overrides:
            return True
        return name in self.args or name in self.overrides

    def value(self, name: str) -> cst.BaseExpression:
        """The argument's node, or torch's default when the call leaves it out."""
        if name in self.overrides:
            return self.overrides[name]
        if name in self.args:
            return self.args[name].value
        return self.entry.signature.parameter(name).default_node

    def literal(self, name: str) -> Any:
        """The argument's literal value, or ``_UNKNOWN`` when it is not a literal."""
        try:
            return _thaw(literal_value(self.value(name)))
        except NotALiteral:
            return _UNKNOWN

    def flags_not_bool(self, condition: Condition) -> list[str]:
        """``name=value`` of each argument ``condition`` compares with True or False that is
        a literal of another type (``amsgrad=1``, ``correct_bias=0``): torch takes a flag by
        its truth (``if amsgrad:``), the map's conditions by identity, so neither verdict of
        the condition is known for it."""
        return [
            f"{name}={self.code(name)}"
            for name, expected in (*condition.when, *condition.unless)
            if isinstance(expected, bool)
            and (value := self.literal(name)) is not _UNKNOWN
            and not isinstance(value, bool)
        ]

    def holds(self, condition: Condition) -> bool | None:
        """True/False, or None when an argument it tests is not a literal."""
        unknown = False
        for name, expected in condition.when:
            value = self.literal(name)
            if value is _UNKNOWN:
                unknown = unknown or name not in condition.unknown_ok
            elif not _equal(value, expected):
                return False
        for name, excluded in condition.unless:
            value = self.literal(name)
            if value is _UNKNOWN:
                unknown = unknown or name not in condition.unknown_ok
            elif _equal(value, excluded):
                return False
        return None if unknown else True

    def unknown_names(self, condition: Condition) -> list[str]:
        return sorted(
            n
            for n in condition.names
            if n not in condition.unknown_ok and self.literal(n) is _UNKNOWN
        )

    def code(self, name: str, index: int | None = None) -> str:
        """Source text of an argument (or an element of it), for reasons and suggestions."""
        value = self.value(name)
        if index is None:
            return code_of(value).strip()
        element = _element(value, index)
        if element is not None:
            return code_of(element).strip()
        return f"{code_of(parenthesize(value)).strip()}[{index}]"


def dispatched(
    entry: ApiEntry, call: cst.Call, apis: Mapping[str, ApiEntry]
) -> tuple[ApiEntry, cst.Call]:
    """The entry and call a dispatching call stands for (itself when it does not dispatch):
    ``get_scheduler("linear", opt, num_warmup_steps=w, scheduler_specific_kwargs={"a": 1})``
    is ``get_linear_schedule_with_warmup(opt, num_warmup_steps=w, a=1)``."""
    dispatch = entry.dispatch
    if dispatch is None:
        return entry, call
    bound = BoundCall.bind(entry, call)
    selector = bound.literal(dispatch.argument)
    if selector is _UNKNOWN:
        given = bound.code(dispatch.argument)
        shown = f" (`{given}`)" if given != dispatch.argument else ""
        raise Untranslatable(
            f"`{dispatch.argument}`{shown} is not a literal, so which API this call stands for is "
            "not known before the program runs",
            f"pass a literal `{dispatch.argument}`, or call the API it selects directly",
        )
    case = dispatch.cases.get(selector) if isinstance(selector, str) else None
    if case is None:
        raise Untranslatable(
            render_text(
                entry.reason or f"no translation for {dispatch.argument}={{{dispatch.argument}}}",
                bound,
            ),
            render_text(entry.suggest, bound) if entry.suggest else None,
        )
    args = [cst.Arg(bound.value(dispatch.forward))]
    args += [
        cst.Arg(bound.args[name].value, keyword=cst.Name(name))
        for name in case.passes
        if name in bound.args
    ]
    if case.keywords and dispatch.keywords and dispatch.keywords in bound.args:
        args += _keyword_items(bound.args[dispatch.keywords].value, dispatch.keywords)
    return apis[case.api], cst.Call(func=call.func, args=args)


def _keyword_items(value: cst.BaseExpression, name: str) -> list[cst.Arg]:
    """The items of a dict display with string keys, as keyword arguments (None: none)."""
    if isinstance(value, cst.Name) and value.value == "None":
        return []
    items: list[cst.Arg] = []
    elements = value.elements if isinstance(value, cst.Dict) else None
    for element in elements or ():
        key = element.key if isinstance(element, cst.DictElement) else None
        if not isinstance(key, cst.SimpleString) or not str(key.evaluated_value).isidentifier():
            elements = None
            break
        assert isinstance(element, cst.DictElement)
        items.append(cst.Arg(element.value, keyword=cst.Name(str(key.evaluated_value))))
    if elements is None:
        raise Untranslatable(
            f"`{name}` is not a dict display with string keys, so the arguments it passes on "
            "are not known before the program runs",
            f"write `{name}` as a dict literal, or call the API it selects directly",
        )
    return items


def mode_active(mode: str, exact: bool) -> bool:
    return mode == "any" or (mode == "exact") == exact


def check_escapes(
    call: BoundCall, exact: bool, extra: dict[str, str] | None = None, *, render: Render
) -> None:
    """Raise ``Untranslatable`` for the first escape rule that holds (or may hold); ``render``
    words the findings (the target's)."""
    check_per_group(call, render)
    check_kept(call, render)
    check_counts(call, render)
    for rule in call.entry.escapes:
        if not mode_active(rule.mode, exact):
            continue
        check_flags_bool(call, rule.condition, render)
        verdict = call.holds(rule.condition)
        if verdict is False:
            continue
        raise escape_for(call, rule, extra, unknown=verdict is None)


_SEQUENCES = (cst.List, cst.Tuple, cst.ListComp, cst.GeneratorExp, cst.Set, cst.SetComp)


def check_counts(call: BoundCall, render: Render) -> None:
    """Raise ``Untranslatable`` when an argument torch compares with its integer step count
    (``counts`` in the map) may not be an integer >= 0 (``_may_not_count``), or an element of
    it, written as a list or tuple."""
    for name in sorted(call.entry.counts):
        if name not in call.args:
            continue
        value = call.args[name].value
        parts = (
            [e.value for e in value.elements]
            if isinstance(value, (cst.List, cst.Tuple))
            else [value]
        )
        if any(_may_not_count(part) for part in parts):
            shown = code_of(value).strip()
            raise render(Finding(findings.STEP_COUNT_NOT_INTEGER, {"name": name, "value": shown}))


def _may_not_count(value: cst.BaseExpression) -> bool:
    """A number literal other than an integer >= 0, or an expression holding a true division,
    a float literal or a ``float()`` call (anything else, a name say, is taken as written)."""
    try:
        number = literal_value(value)
    except NotALiteral:
        number = None
    if number is not None:
        return isinstance(number, bool) or not isinstance(number, int) or number < 0
    return _FloatEvidence.holds(value)


class _FloatEvidence(cst.CSTVisitor):
    """Finds a true division, a float or imaginary literal or a ``float()`` call."""

    def __init__(self) -> None:
        self.found = False

    @classmethod
    def holds(cls, node: cst.CSTNode) -> bool:
        finder = cls()
        node.visit(finder)
        return finder.found

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.Float, cst.Imaginary)) or (
            isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide)
        ):
            self.found = True
        elif isinstance(node, cst.Call):
            called = code_of(node.func).strip()
            if called in _INTEGER_CALLS:
                return False  # an int whatever its arguments
            self.found = self.found or called == "float"
        return not self.found


# calls whose value is an int (or raises) whatever their arguments: a division inside is fine
_INTEGER_CALLS = frozenset({"int", "len", "math.ceil", "math.floor"})


def check_per_group(call: BoundCall, render: Render) -> None:
    """Raise ``Untranslatable`` when an argument torch also takes as a list (one value per
    param group, ``per_group`` in the map) is written as one: the template takes one value."""
    for name in sorted(call.entry.per_group):
        if name in call.args and isinstance(call.args[name].value, _SEQUENCES):
            first = call.code(name, 0)
            raise render(Finding(findings.PER_GROUP_SEQUENCE, {"name": name, "first": first}))


def check_kept(call: BoundCall, render: Render) -> None:
    """Raise ``Untranslatable`` when an argument the optimizer keeps as given and reads at
    every step (``kept`` in the map) is no literal nor a tuple written at the call (a new
    tuple, which no other code holds): code may change it after the construction
    (``bt[1] = 0.5``), which the translation, reading it once, would not see."""
    for name in sorted(call.entry.kept):
        if name not in call.args or isinstance(call.args[name].value, cst.Tuple):
            continue
        if call.literal(name) is _UNKNOWN:
            raise render(Finding(findings.ARGUMENT_KEPT, {"name": name, "shown": call.code(name)}))


def check_flags_bool(call: BoundCall, condition: Condition, render: Render) -> None:
    """Raise ``Untranslatable`` when a flag ``condition`` tests is a literal of another type
    than bool (``BoundCall.flags_not_bool``)."""
    flags = call.flags_not_bool(condition)
    if flags:
        shown = ", ".join(f"`{flag}`" for flag in flags)
        raise render(Finding(findings.FLAG_NOT_BOOL, {"flags": shown}))


def escape_for(
    call: BoundCall, rule: EscapeRule, extra: dict[str, str] | None, *, unknown: bool
) -> Untranslatable:
    reason = render_text(rule.reason, call, extra)
    if unknown:
        names = ", ".join(f"`{n}`" for n in call.unknown_names(rule.condition))
        reason = f"{reason} (assumed: {names} is not a literal)"
    suggestion = render_text(rule.suggest, call, extra) if rule.suggest else None
    return Untranslatable(reason, suggestion)


def render_text(text: str, call: BoundCall, extra: dict[str, str] | None = None) -> str:
    """Fill ``{arg}``, ``{arg[i]}``, ``{receiver}``... in a reason or suggestion."""
    extra = extra or {}

    def fill(match: Any) -> str:
        name, index = match.group(1), match.group(2)
        if name in extra:
            return extra[name]
        if name in call.entry.signature.names:
            return call.code(name, int(index) if index else None)
        return match.group(0)

    return _PLACEHOLDER.sub(fill, text)


def active_links(
    call: BoundCall, exact: bool, slots: frozenset[str] | None = None, *, render: Render
) -> list[Link]:
    """The chain links that apply to this call, in order; the first match wins in a slot.

    ``slots`` limits the links considered (None: every slot); ``render`` words the findings."""
    chosen: dict[str, Link | None] = {}
    for link in call.entry.chain:
        if slots is not None and link.slot not in slots:
            continue
        chosen.setdefault(link.slot, None)
        if not mode_active(link.mode, exact) or chosen[link.slot] is not None:
            continue
        check_flags_bool(call, link.condition, render)
        verdict = call.holds(link.condition)
        if verdict is None:
            names = ", ".join(f"`{n}`" for n in call.unknown_names(link.condition))
            raise render(Finding(findings.CONDITION_NOT_LITERAL, {"names": names}))
        if verdict:
            chosen[link.slot] = link
    links = [link for link in chosen.values() if link is not None]
    if not any(not is_definition(link) for link in links) and not (
        slots and all(s.startswith("=") for s in slots)
    ):
        entry = call.entry
        if entry.reason:
            raise Untranslatable(
                render_text(entry.reason, call),
                render_text(entry.suggest, call) if entry.suggest else None,
            )
        raise Untranslatable("the semantic map has no translation for these arguments")
    return links


def render_chain(
    call: BoundCall,
    exact: bool,
    chain_function: str,
    request_import: Callable[[str], None],
    *,
    slots: frozenset[str] | None = None,
    head: Sequence[cst.BaseExpression] = (),
    tail: Sequence[cst.BaseExpression] = (),
    inject: Callable[[cst.BaseExpression], cst.BaseExpression] | None = None,
    render: Render,
) -> cst.BaseExpression:
    """Render the applicable links; several links become ``chain_function(link, ...)``.

    ``head``/``tail`` are extra links (clipping first, a plateau transform last). Links that
    use an overridden element placeholder (a momentum schedule) are passed to ``inject``.
    """
    evaluations: Counter[str] = Counter()
    define(call, exact, evaluations, render=render)
    links = [
        link for link in active_links(call, exact, slots, render=render) if not is_definition(link)
    ]
    rendered = []
    for link in links:
        expression = _render(link.emit, call, evaluations)
        if inject is not None and _uses_injected(link.emit, call):
            expression = inject(expression)
        rendered.append(expression)
    for link in links:
        for name in sorted(link.emit.free_names):
            request_import(name)
    rendered = [*head, *rendered, *tail]
    if len(rendered) == 1:
        return rendered[0]
    request_import(chain_function.partition(".")[0])
    return cst.Call(
        func=cst.parse_expression(chain_function),
        args=[cst.Arg(expression) for expression in rendered],
    )


def render_value(
    call: BoundCall,
    exact: bool,
    gradients: cst.BaseExpression,
    request_import: Callable[[str], None],
) -> cst.BaseExpression | None:
    """What the call returns, from the update's ``gradients`` (the entry's ``value`` links:
    the first whose condition holds); None when no link holds for these arguments."""
    for link in call.entry.value:
        if mode_active(link.mode, exact) and call.holds(link.condition):
            bound = replace(call, overrides={**call.overrides, GRADIENTS: gradients})
            expression = _render(link.emit, bound, Counter())
            for name in sorted(link.emit.free_names):
                request_import(name)
            return expression
    return None


def is_definition(link: Link) -> bool:
    """A link whose slot starts with ``=`` defines a placeholder (``=T``) instead of a link."""
    return link.slot.startswith("=")


def define(call: BoundCall, exact: bool, evaluations: Counter[str], *, render: Render) -> None:
    """Render the entry's definitions (in order) into ``call.overrides``."""
    definitions = frozenset(link.slot for link in call.entry.chain if is_definition(link))
    if not definitions:
        return
    for link in active_links(call, exact, definitions, render=render):
        used: Counter[str] = Counter()
        call.overrides[link.slot[1:]] = _render(link.emit, call, used)
        call.definitions[link.slot[1:]] = used


def _uses_injected(template: Template, call: BoundCall) -> bool:
    """Whether the template uses an argument a schedule overrides (``momentum``, ``betas[0]``)."""
    for placeholder in template.placeholders.values():
        key = placeholder.name
        if placeholder.index is not None:
            key = f"{key}[{placeholder.index}]"
        if key in call.injected:
            return True
    return False


def _render(template: Template, call: BoundCall, evaluations: Counter[str]) -> cst.BaseExpression:
    def resolve(placeholder: Placeholder) -> cst.BaseExpression | None:
        name, index = placeholder.name, placeholder.index
        if placeholder.optional and not call.given(name, index):
            return None
        if index is not None and f"{name}[{index}]" in call.overrides:
            return call.overrides[f"{name}[{index}]"]
        if name in call.definitions:
            evaluations.update(call.definitions[name])  # each use evaluates its arguments again
            return call.overrides[name]
        if name not in call.overrides and name not in call.entry.signature.names:
            raise _undefined(call, name)
        value = call.value(name)
        if index is None:
            if call.given(name):
                evaluations[name] += 1
            return value
        element = _element(value, index)
        if element is not None:
            return element
        if call.given(name):
            evaluations[name] += 1
        return cst.Subscript(
            value=parenthesize(value),
            slice=[cst.SubscriptElement(cst.Index(cst.Integer(str(index))))],
        )

    return template.render(resolve)


def _undefined(call: BoundCall, name: str) -> Untranslatable:
    """A definition (``=name`` slot) none of whose cases applies to these arguments."""
    entry = call.entry
    if entry.reason:
        return Untranslatable(
            render_text(entry.reason, call),
            render_text(entry.suggest, call) if entry.suggest else None,
        )
    return Untranslatable(f"the semantic map has no case of `{name}` for these arguments")


def _element(value: cst.BaseExpression, index: int) -> cst.BaseExpression | None:
    """Element ``index`` of a tuple/list display without starred items, else None."""
    if isinstance(value, (cst.Tuple, cst.List)):
        elements: Sequence[cst.BaseElement] = value.elements
        if all(isinstance(e, cst.Element) for e in elements) and index < len(elements):
            return elements[index].value
    return None


def _thaw(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_thaw(v) for v in value)
    return value


def _equal(value: Any, expected: Any) -> bool:
    if isinstance(expected, tuple) or isinstance(value, tuple):
        return (
            isinstance(value, tuple)
            and isinstance(expected, tuple)
            and len(value) == len(expected)
            and all(_equal(v, e) for v, e in zip(value, expected, strict=True))
        )
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(value) is type(expected) and value == expected
    return value == expected
