"""Hygiene of a rendered translation: no captured names, arguments evaluated once, at construction.

A translation mixes template code (``lambda count: ...``) with *user expressions*: argument
nodes of the torch calls, reused by identity. ``hygienic`` makes the mix mean what torch meant:

* a user expression at a *deferred* position (a lambda body, or a comprehension anywhere but
  its first iterable) whose value may change over time (anything but a literal or a
  default-less lambda), and an impure one the result evaluates more than once, is *bound*: the
  result becomes ``(lambda lr: <result with lr>)(<the expression>)``, so the expression is
  evaluated once, where torch evaluated it. When anything is bound, every impure user
  expression is bound too, in source order, so that side effects keep torch's order;
* names the template introduces (lambda parameters, comprehension variables) are renamed to
  fresh ones (``count_1``) when they collide with a name visible where the result lands or a
  name a user expression uses; the binding lambda's parameters are fresh as well.

Pure function of the expression, the user expressions and the names taken at the landing site.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.purity import is_pure
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import NotALiteral, code_of, literal_value

_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


@dataclass(frozen=True)
class UserExpression:
    """A node of the user's source that a translation may reuse.

    ``hint`` names the binding parameter (the torch argument's name), ``order`` is its place in
    source order, ``shared`` says that another statement of the output evaluates it too."""

    node: cst.BaseExpression
    hint: str
    order: int
    shared: bool = False


@dataclass
class _Use:
    """Where a user expression occurs in the result."""

    user: UserExpression
    count: int = 0
    deferred: bool = False


def hygienic(
    expression: cst.BaseExpression,
    users: Sequence[UserExpression],
    taken: Collection[str],
    binds: Callable[[str], bool] = lambda name: False,
) -> cst.BaseExpression:
    """``expression`` with deferred or repeated user expressions bound and template names fresh.

    Raises ``Untranslatable`` when an impure user expression is also evaluated by another
    statement (``shared``): no shape of this one expression evaluates it once; and when the
    template reads a Python builtin (``next``, ``float``, ``max``) that the user's code binds
    where the result lands, or may (``binds``: ``float = int``, a star import)."""
    index = _UserIndex(users)
    uses = _survey(expression, index)
    _check_shared(uses)
    bound = _to_bind(uses)
    user_names = set().union(*(_names(use.user.node) for use in uses.values()))
    template_names = _names(expression, skip=index)
    _check_builtins(template_names - _introduced(expression, index), binds)
    forbidden = set(taken) | user_names
    renames = _fresh_template_names(_introduced(expression, index), forbidden, template_names)
    if not bound and not renames:
        return expression
    parameters = _parameter_names(bound, forbidden | template_names | set(renames.values()))
    result = expression.visit(_Rewrite(index, parameters, renames))
    if not bound:
        return result
    return _bind(result, [(parameters[id(use.user.node)], use.user.node) for use in bound])


_BUILTINS = frozenset(dir(builtins)) - {"True", "False", "None"}  # keywords: never rebound


def unevaluated(
    expression: cst.BaseExpression,
    values: Sequence[cst.BaseExpression],
    harmless: Callable[[cst.BaseExpression], bool],
) -> list[cst.BaseExpression]:
    """The user argument ``values`` of which ``expression`` (a rendered translation, before
    ``hygienic``) evaluates nothing, neither the node nor any node inside it, and that
    ``harmless`` does not excuse: dropping one drops what its calls do (probe s35O F3)."""
    rendered = {id(node) for node in cst_walk.walk(expression)}
    return [
        value
        for value in values
        if not any(id(node) in rendered for node in cst_walk.walk(value)) and not harmless(value)
    ]


def _check_builtins(names: set[str], binds: Callable[[str], bool]) -> None:
    """Refuse a template that reads a builtin the user's code binds where it lands."""
    shadowed = sorted(name for name in names & _BUILTINS if binds(name))
    if shadowed:
        name = shadowed[0]
        raise Untranslatable(
            f"the translation calls Python's builtin `{name}`, and this code binds `{name}` "
            "where the translation lands (or may: a star import), so it would call that instead",
            f"rename this code's `{name}`",
        )


def _check_shared(uses: dict[int, _Use]) -> None:
    """Refuse an impure user expression that another statement of the output evaluates too."""
    for use in uses.values():
        if use.user.shared and not _repeatable(use.user.node):
            raise Untranslatable(
                f"`{code_of(use.user.node).strip()}` would be evaluated by two statements of "
                f"the translation, and it may have side effects or cost",
                "assign it to a variable first and pass the variable",
            )


def _parameter_names(bound: list[_Use], used: set[str]) -> dict[int, str]:
    """A fresh parameter name for each bound user expression (by node id), from its hint."""
    parameters: dict[int, str] = {}
    for use in bound:
        name = _fresh(use.user.hint, used, allow_base=True)
        used.add(name)
        parameters[id(use.user.node)] = name
    return parameters


class _UserIndex:
    """Finds user expressions in a rendered tree: by identity, or as a parenthesized copy
    (a template puts parentheses around a user expression by copying its outer node)."""

    def __init__(self, users: Sequence[UserExpression]) -> None:
        self.by_id = {id(user.node): user for user in users}
        self.by_type: dict[type, list[UserExpression]] = {}
        for user in users:
            self.by_type.setdefault(type(user.node), []).append(user)

    def match(self, node: cst.CSTNode) -> UserExpression | None:
        found = self.by_id.get(id(node))
        if found is not None or not getattr(node, "lpar", None):
            return found
        for user in self.by_type.get(type(node), ()):
            if _is_copy(node, user.node):
                return user
        return None


def _is_copy(node: cst.CSTNode, original: cst.CSTNode) -> bool:
    """``node`` is ``original`` with other parentheses: every other field is the same object."""
    shares_a_child = False
    for field in dataclasses.fields(node):
        if field.name in ("lpar", "rpar"):
            continue
        mine, theirs = getattr(node, field.name), getattr(original, field.name)
        if mine is not theirs:
            return False
        shares_a_child = shares_a_child or isinstance(mine, cst.CSTNode)
    return shares_a_child


def _survey(expression: cst.CSTNode, index: _UserIndex) -> dict[int, _Use]:
    """Every user expression in ``expression``: how often it occurs, and whether deferred."""
    uses: dict[int, _Use] = {}

    def walk(node: cst.CSTNode, deferred: bool) -> None:
        user = index.match(node)
        if user is not None:
            use = uses.setdefault(id(user.node), _Use(user))
            use.count += 1
            use.deferred = use.deferred or deferred
            return
        for child, child_deferred in _children(node, deferred):
            walk(child, child_deferred)

    walk(expression, False)
    return uses


def _children(node: cst.CSTNode, deferred: bool) -> Iterator[tuple[cst.CSTNode, bool]]:
    """The children of ``node``, each with whether Python evaluates it later (or repeatedly)."""
    if isinstance(node, cst.Lambda):
        for param in _parameters(node.params):
            if param.default is not None:
                yield param.default, deferred
        yield node.body, True
        return
    if isinstance(node, _COMPREHENSIONS):
        first = node.for_in
        yield first.iter, deferred
        for child in cst_walk.children(first):
            if child is not first.iter:
                yield child, True
        for child in cst_walk.children(node):
            if child is not first:
                yield child, True
        return
    for child in cst_walk.children(node):
        yield child, deferred


def _parameters(params: cst.Parameters) -> list[cst.Param]:
    star = [params.star_arg] if isinstance(params.star_arg, cst.Param) else []
    kwarg = [params.star_kwarg] if params.star_kwarg is not None else []
    return [*params.posonly_params, *params.params, *star, *params.kwonly_params, *kwarg]


def is_time_invariant(node: cst.BaseExpression) -> bool:
    """A literal, or a lambda without defaults: evaluating it later gives the same value."""
    if isinstance(node, cst.Lambda):
        return all(param.default is None for param in _parameters(node.params))
    try:
        literal_value(node)
    except NotALiteral:
        return False
    return True


def _repeatable(node: cst.BaseExpression) -> bool:
    """Evaluating it again gives the same value and has no effect (``is_pure``, or a lambda)."""
    return is_pure(node) or is_time_invariant(node)


def _to_bind(uses: dict[int, _Use]) -> list[_Use]:
    """The user expressions to bind, in source order.

    ``uses`` is in the order the result evaluates them: impure ones evaluated in another
    order than the source's (a chain that puts ``weight_decay`` before ``eps``) are bound too,
    so that side effects keep torch's order."""
    needed = [
        use
        for use in uses.values()
        if (use.deferred and not is_time_invariant(use.user.node))
        or (use.count > 1 and not _repeatable(use.user.node))
    ]
    impure = [use.user.order for use in uses.values() if not _repeatable(use.user.node)]
    if needed or impure != sorted(impure):
        needed_ids = {id(use.user.node) for use in needed}
        needed += [
            use
            for use in uses.values()
            if id(use.user.node) not in needed_ids and not _repeatable(use.user.node)
        ]
    return sorted(needed, key=lambda use: use.user.order)


def _names(node: cst.CSTNode, skip: _UserIndex | None = None) -> set[str]:
    """Every variable name in ``node``, not attribute or keyword names (outside user
    expressions when ``skip`` is given)."""
    found: set[str] = set()

    def walk(current: cst.CSTNode) -> None:
        if skip is not None and skip.match(current) is not None:
            return
        if isinstance(current, cst.Name):
            found.add(current.value)
        for child in cst_walk.children(current):
            if not _is_member_name(current, child):
                walk(child)

    walk(node)
    return found


def _is_member_name(parent: cst.CSTNode, child: cst.CSTNode) -> bool:
    """``x`` in ``a.x`` or in ``f(x=1)``: a name that is not a variable."""
    if isinstance(parent, cst.Attribute):
        return child is parent.attr
    return isinstance(parent, cst.Arg) and child is parent.keyword


def _introduced(expression: cst.CSTNode, index: _UserIndex) -> set[str]:
    """Names the template part binds: lambda parameters and comprehension targets."""
    found: set[str] = set()

    def walk(node: cst.CSTNode) -> None:
        if index.match(node) is not None:
            return
        if isinstance(node, cst.Lambda):
            found.update(param.name.value for param in _parameters(node.params))
        if isinstance(node, cst.CompFor):
            found.update(_names(node.target))
        for child in cst_walk.children(node):
            walk(child)

    walk(expression)
    return found


def _fresh_template_names(
    introduced: set[str], forbidden: set[str], template_names: set[str]
) -> dict[str, str]:
    """New names for the introduced names that collide with ``forbidden`` (deterministic)."""
    renames: dict[str, str] = {}
    used = forbidden | template_names
    for name in sorted(introduced & forbidden):
        renames[name] = _fresh(name, used, allow_base=False)
        used.add(renames[name])
    return renames


def fresh_name(base: str, used: Collection[str]) -> str:
    """``base`` when free, else the first free ``base_1``, ``base_2``... (a generated name)."""
    return _fresh(base, used, allow_base=True)


def _fresh(base: str, used: Collection[str], *, allow_base: bool) -> str:
    """``base`` itself (when allowed and free), else the first free ``base_1``, ``base_2``..."""
    if not base.isidentifier():
        base = "value"
    if allow_base and base not in used:
        return base
    number = 1
    while f"{base}_{number}" in used:
        number += 1
    return f"{base}_{number}"


class _Rewrite(cst.CSTTransformer):
    """Replaces bound user expressions by their parameter and renames template names."""

    def __init__(
        self, index: _UserIndex, parameters: dict[int, str], renames: dict[str, str]
    ) -> None:
        super().__init__()
        self.index = index
        self.parameters = parameters
        self.renames = renames

    def on_visit(self, node: cst.CSTNode) -> bool:
        return self.index.match(node) is None

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode):  # type: ignore[no-untyped-def]
        user = self.index.match(original_node)
        if user is not None:
            name = self.parameters.get(id(user.node))
            return cst.Name(name) if name is not None else updated_node
        if isinstance(updated_node, cst.Name) and updated_node.value in self.renames:
            return updated_node.with_changes(value=self.renames[updated_node.value])
        if isinstance(updated_node, cst.Attribute):
            return updated_node.with_changes(attr=original_node.attr)  # type: ignore[attr-defined]
        if isinstance(updated_node, cst.Arg) and updated_node.keyword is not None:
            return updated_node.with_changes(keyword=original_node.keyword)  # type: ignore[attr-defined]
        return updated_node


def _bind(body: cst.BaseExpression, bindings: list[tuple[str, cst.BaseExpression]]) -> cst.Call:
    """``(lambda a, b: body)(x, y)``: each value evaluated once, here."""
    function = cst.Lambda(
        params=cst.Parameters(params=[cst.Param(cst.Name(name)) for name, _ in bindings]),
        body=body,
        lpar=[cst.LeftParen()],
        rpar=[cst.RightParen()],
    )
    return cst.Call(func=function, args=[cst.Arg(_as_argument(value)) for _, value in bindings])


def _as_argument(value: cst.BaseExpression) -> cst.BaseExpression:
    """A generator expression needs its own parentheses next to other arguments."""
    if isinstance(value, cst.GeneratorExp) and not value.lpar:
        return value.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return value
