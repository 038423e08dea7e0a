"""Whether the model an optimizer took its parameters from may change after it took them.

torch's optimizer keeps the tensors ``m.parameters()`` returned when it was built: a head
assigned later (``m.fc = nn.Linear(...)``), a layer deleted, a ``m.apply(fn)`` replacing
tensors are not what it trains. An optax or NNX optimizer updates every leaf of the params (the
model) it is handed at each step, so it would train the new head. A change is a store (of
anything but a literal: ``_literal``) or ``del`` of an attribute of the model or of a part of
it, or a call of the map's ``structure_methods`` / ``structure_functions`` on them, in the
scope of the optimizer, that does not provably run before every ``parameters()`` call the
optimizer's argument reaches (``analysis/reaching.runs_after``). A name bound to a model
(``h = model``) is that model; a call of a function of the file handing it a model (or a part)
is a change when that function changes its parameter (``replace_head(model)``). An item store
into a model or a part (``m.layers[1] = ...``, anything but a literal) is a change, and so is a
``container_methods`` call on one whose argument calls a constructor of ``module_packages``
(``m.layers.append(nn.Linear(...))``; ``m.rewards.append(r)`` is a plain list's bookkeeping).
A module-level function of another file of the repository that changes its parameter is a
change too (``Reads.imported``: ``foreign_change`` reads it with these rules). Not seen:
``del m.layers[0]`` (``del policy.rewards[:]`` empties a list), other appended values, methods
of classes of other files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.reaching import runs_after
from ml_switcheroo.spec.semantic_map import ParameterSpec
from ml_switcheroo.spec.signature import code_of

_MAX_DEPTH = 8  # names followed from the optimizer's argument
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)

Owner = cst.FunctionDef | cst.Module


@dataclass(frozen=True)
class Reads:
    """Name resolution of the file: the one value a name is bound to, a call's function."""

    value: Callable[[cst.BaseExpression], cst.BaseExpression | None]
    called: Callable[[cst.BaseExpression], str | None]
    # the function of the file and the name of its parameter an argument of a call binds
    handed: Callable[[cst.Call, cst.Arg], tuple[cst.FunctionDef, str] | None]
    # the first change a function of another file makes to the parameter an argument of a
    # call binds: its code and ``file:line`` (``CrossFile.imported_change``), or None
    imported: Callable[[cst.Call, cst.Arg], str | None] = lambda call, argument: None


def parameter_calls(
    argument: cst.BaseExpression, reads: Reads, spec: ParameterSpec
) -> list[tuple[cst.Call, cst.CSTNode]]:
    """The ``m.parameters()`` / ``m.named_parameters()`` calls ``argument`` reaches, its names
    followed to the values bound to them, each with the node whose evaluation runs it
    (``_evaluated_by``)."""
    found: list[tuple[cst.Call, cst.CSTNode]] = []
    pending: list[tuple[cst.CSTNode, int]] = [(argument, 0)]
    seen: set[int] = set()
    while pending:
        node, depth = pending.pop()
        if id(node) in seen or depth > _MAX_DEPTH:
            continue
        seen.add(id(node))
        for call, anchor in _evaluated_by(node):
            if isinstance(call.func, cst.Attribute) and call.func.attr.value in spec.module_methods:
                found.append((call, anchor))
        for name in _references(node):
            value = reads.value(name)
            if value is not None and value is not name:
                pending.append((value, depth + 1))
    return found


def _evaluated_by(
    node: cst.CSTNode, anchor: cst.CSTNode | None = None
) -> list[tuple[cst.Call, cst.CSTNode]]:
    """Each call under ``node`` with the node whose evaluation runs it: the outermost
    comprehension holding it (its code runs when the comprehension is evaluated), else
    itself (in a lambda: itself, a nested scope ``runs_after`` never proves)."""
    found: list[tuple[cst.Call, cst.CSTNode]] = []
    if isinstance(node, cst.Call):
        found.append((node, anchor or node))
    if isinstance(node, cst.Lambda):
        return [(c, c) for c in _calls(node)]
    if anchor is None and isinstance(node, _COMPREHENSIONS):
        anchor = node
    for child in cst_walk.children(node):
        found.extend(_evaluated_by(child, anchor))
    return found


def changed_after(
    owner: Owner,
    calls: list[tuple[cst.Call, cst.CSTNode]],
    reads: Reads,
    spec: ParameterSpec,
) -> str | None:
    """Source of the first change to a model of ``calls`` (``parameter_calls``) in ``owner``
    that does not provably run before each of them, or None."""
    models = {_source(call.func.value) for call, _ in calls}  # type: ignore[attr-defined]
    elsewhere: dict[int, str] = {}
    for change in _changes(owner, models, reads, spec, elsewhere=elsewhere):
        if not all(runs_after(owner, change, anchor) for _, anchor in calls):
            place = elsewhere.get(id(change))
            return _source(change) + (f"`, which runs `{place}" if place else "")
    return None


def _changes(
    owner: Owner,
    models: set[str],
    reads: Reads,
    spec: ParameterSpec,
    entered: frozenset[int] = frozenset(),
    elsewhere: dict[int, str] | None = None,
) -> list[cst.CSTNode]:
    """Statements and calls of ``owner`` that change one of ``models`` (by source, or a name
    bound to one: ``_aliases``); ``entered``: the functions being read (recursion);
    ``elsewhere``: filled with the change in another file a call runs (``Reads.imported``)."""
    found: list[cst.CSTNode] = []
    models = _aliases(owner, models)

    def inside(target: cst.BaseExpression) -> bool:
        """``target`` is an attribute of a model or of a part of it: ``m.x``, ``m.x.y``."""
        while isinstance(target, cst.Attribute):
            target = target.value
            if _source(target) in models:
                return True
        return False

    class _Find(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            stored = any(_stores_into(t.target, inside, part) for t in node.targets)
            if stored and not _literal(node.value):
                found.append(node)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            value = node.value
            stored = _stores_into(node.target, inside, part)
            if value is not None and not _literal(value) and stored:
                found.append(node)

        def visit_Del(self, node: cst.Del) -> None:
            if _stores_into(node.target, inside):
                found.append(node)

        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in spec.structure_methods:
                if _source(func.value) in models or inside(func.value):
                    found.append(node)
            elif reads.called(func) in spec.structure_functions and node.args:
                first = node.args[0].value
                if _source(first) in models or inside(first):
                    found.append(node)
            elif appends_module(func, node.args):
                found.append(node)
            if any(changes_parameter(node, a) for a in node.args):
                found.append(node)

    def part(node: cst.BaseExpression) -> bool:
        """``node`` is a model or a part of one."""
        return _source(node) in models or inside(node)

    def appends_module(func: cst.BaseExpression, args: Sequence[cst.Arg]) -> bool:
        """``m.layers.append(nn.Linear(...))``: a ``container_methods`` call on a model or a
        part whose argument calls a constructor of the map's ``module_packages``."""
        if not isinstance(func, cst.Attribute) or func.attr.value not in spec.container_methods:
            return False
        called = [reads.called(c.func) or "" for a in args for c in _calls(a.value)]
        return part(func.value) and any(c.startswith(spec.module_packages) for c in called)

    def changes_parameter(call: cst.Call, argument: cst.Arg) -> bool:
        """``argument`` is a model or part of one that a function of the file, or of another
        file (``Reads.imported``), changes."""
        value = argument.value
        if not part(value):
            return False
        handed = reads.handed(call, argument)
        if handed is None:
            place = reads.imported(call, argument)
            if place is not None and elsewhere is not None:
                elsewhere[id(call)] = place
            return place is not None
        if id(handed[0]) in entered:
            return False
        function, name = handed
        return bool(_changes(function, {name}, reads, spec, entered | {id(function)}))

    cst_walk.visit(owner, _Find())
    return found


def _aliases(owner: Owner, models: set[str]) -> set[str]:
    """``models`` and the names ``owner`` binds to one of them or to a part of one
    (``h = model``, ``layers = model.layers``, ``for layer in model.layers``)."""
    found = set(models)
    bindings = [
        (n.target, n.iter) if isinstance(n, cst.For) else (t.target, n.value)
        for n in cst_walk.walk(owner)
        if isinstance(n, (cst.Assign, cst.For))
        for t in (n.targets if isinstance(n, cst.Assign) else [n])
    ]
    while True:
        more = {
            target.value
            for target, value in bindings
            if isinstance(target, cst.Name) and _rooted(value, found)
        }
        if more <= found:
            return found
        found |= more


def _rooted(node: cst.BaseExpression, models: set[str]) -> bool:
    """``node`` is one of ``models`` or attributes and items of one (``m.layers[0].fc``)."""
    while isinstance(node, (cst.Attribute, cst.Subscript)) and _source(node) not in models:
        node = node.value
    return _source(node) in models


def _stores_into(
    target: cst.BaseExpression,
    inside: Callable[[cst.BaseExpression], bool],
    part: Callable[[cst.BaseExpression], bool] | None = None,
) -> bool:
    """A store target (or a tuple of them) that is a part of a model; with ``part``, an item
    of a model or of a part (``m.layers[0] = ...``: a ModuleList's item is a submodule)."""
    if isinstance(target, (cst.Tuple, cst.List)):
        return any(_stores_into(e.value, inside, part) for e in target.elements)
    if part is not None and isinstance(target, cst.Subscript):
        return part(target.value)
    return inside(target)


def _literal(value: cst.BaseExpression) -> bool:
    """A value that holds no parameter: a number, a string, a display of such values,
    ``None``/``True``/``False`` (a list kept on the model, ``model.rewards = []``)."""
    if isinstance(value, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)):
        return True
    if isinstance(value, cst.Name):
        return value.value in ("None", "True", "False")
    if isinstance(value, (cst.List, cst.Tuple, cst.Set)):
        return all(isinstance(e, cst.Element) and _literal(e.value) for e in value.elements)
    if isinstance(value, cst.Dict):
        return not value.elements
    return False


def _calls(node: cst.CSTNode) -> list[cst.Call]:
    return [n for n in cst_walk.walk(node) if isinstance(n, cst.Call)]


def _references(node: cst.CSTNode) -> list[cst.BaseExpression]:
    """Names (not an attribute's name) and attributes read in ``node``: what may be bound."""
    attributes = [n for n in cst_walk.walk(node) if isinstance(n, cst.Attribute)]
    named = {id(a.attr) for a in attributes}
    names = [n for n in cst_walk.walk(node) if isinstance(n, cst.Name) and id(n) not in named]
    return [*names, *attributes]


def _source(node: cst.CSTNode) -> str:
    return code_of(node).strip()


def bound_parameter(
    function: cst.FunctionDef, call: cst.Call, argument: cst.Arg, method: bool = False
) -> cst.Param | None:
    """The parameter of ``function`` that ``argument`` of ``call`` binds, when that is certain
    (no star arguments on either side); ``method``: its first parameter is ``self``."""
    params = function.params
    if params.star_kwarg is not None or any(a.star for a in call.args):
        return None
    positional = [*params.posonly_params, *params.params][1 if method else 0 :]
    if argument.keyword is None:
        index = [a for a in call.args if a.keyword is None].index(argument)
        return positional[index] if index < len(positional) else None
    named = [*params.params, *params.kwonly_params]
    return next((p for p in named if p.name.value == argument.keyword.value), None)


def foreign_change(
    module: cst.Module,
    function: str,
    call: cst.Call,
    argument: cst.Arg,
    imports: dict[str, str],
    spec: ParameterSpec,
) -> cst.CSTNode | None:
    """The first change the module-level ``function`` (or class: its ``__init__``) of another
    file's ``module`` makes to the parameter ``argument`` of ``call`` binds (names resolved
    through that file's ``imports``: local name -> qualified name; its own module-level
    functions followed), or None."""
    tops = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
    classes = {s.name.value: s for s in module.body if isinstance(s, cst.ClassDef)}
    method = function in classes  # `Surgeon(model)`: its `__init__`
    defined = init_of(classes[function]) if method else tops.get(function)
    param = bound_parameter(defined, call, argument, method) if defined is not None else None
    if defined is None or param is None:
        return None

    def called(func: cst.BaseExpression) -> str | None:
        head, dot, rest = _source(func).partition(".")
        return imports[head] + dot + rest if head in imports else None

    def handed(inner: cst.Call, arg: cst.Arg) -> tuple[cst.FunctionDef, str] | None:
        target = tops.get(inner.func.value) if isinstance(inner.func, cst.Name) else None
        bound = bound_parameter(target, inner, arg) if target is not None else None
        return (target, bound.name.value) if target is not None and bound else None

    reads = Reads(lambda node: None, called, handed)
    found = _changes(defined, {param.name.value}, reads, spec, frozenset({id(defined)}))
    return found[0] if found else None


def init_of(owner: cst.ClassDef) -> cst.FunctionDef | None:
    """The one ``__init__`` defined in the body of ``owner``."""
    body = owner.body.body if isinstance(owner.body, cst.IndentedBlock) else []
    found = [s for s in body if isinstance(s, cst.FunctionDef) and s.name.value == "__init__"]
    return found[0] if len(found) == 1 else None
