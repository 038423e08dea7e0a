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
change too (``Reads.imported``: ``foreign_change`` reads it with these rules; one a package
re-exports is followed to its file). So is a method called on an instance holding a model
(``surgeon = Surgeon(model)``; ``surgeon.replace_head()``, ``Trainer(model).fit()``) or
handed one, of a class of the file or of another file (``Reads.imported_method``): the
method and the methods it calls on ``self`` are read with these rules, ``self.<attr>`` (where
the class's ``__init__`` stores the model argument) and the parameter handed the model being
the model (``held_change``); ``Trainer(model, opt).fit()`` that only trains converts. So is
a model's own method (``model.reset_head()``, ``model = Net()``) of a class of the file or of
another file, or inherited from a base class of either (``own_method_change``): the method
and the methods it calls on ``self`` are read with these rules, ``self`` being the model
(s23e). Not seen: ``del m.layers[0]`` (``del policy.rewards[:]`` empties a list), other
appended values, a method of a model whose class is not known (``model = make_model()``) or
of a part (``model.encoder.reset()``), an instance bound more than once.
"""

from __future__ import annotations

import builtins
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
    # the class of the file a call's function names (``Surgeon`` of ``Surgeon(model)``)
    local_class: Callable[[cst.BaseExpression], cst.ClassDef | None] = lambda func: None
    # the first change the method ``call`` of an instance of another file's class makes to
    # the models it holds: (``Held``) -> its code and ``file:line``
    # (``CrossFile.imported_method_change``), or None
    imported_method: Callable[[Held], str | None] = lambda held: None
    # the first change the method ``name`` of a model built by the class ``qualified`` of
    # another file (or inherited from its base classes) makes to the model: its code and
    # ``file:line`` (``CrossFile.imported_own_method_change``), or None
    imported_own_method: Callable[[str, str], str | None] = lambda qualified, name: None
    # the map's ``modules.self_methods``: ``model = Net().to(device)`` is that ``Net()``
    self_methods: frozenset[str] = frozenset()
    # every value that may reach a name bound more than once (``net = Net(); net =
    # net.to(d)``), or None when one is unknown
    reaching: Callable[[cst.Name], list[cst.BaseExpression] | None] = lambda name: None
    # a value provably holding no parameter beyond literals (``args.threshold``, an option
    # of the command line: ``analysis/plain_values.py``)
    plain: Callable[[cst.BaseExpression], bool] = lambda value: False


@dataclass(frozen=True)
class Held:
    """A method call on an instance holding models: ``surgeon.replace_head(...)`` where
    ``surgeon = Surgeon(model)``."""

    construction: cst.Call  # ``Surgeon(model)``
    stored: tuple[cst.Arg, ...]  # its arguments that are models or parts of one
    call: cst.Call  # ``surgeon.replace_head(...)``
    handed: tuple[cst.Arg, ...]  # the method call's arguments that are models or parts


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


def changed_by_other_methods(
    owner_class: cst.ClassDef,
    method: cst.FunctionDef,
    calls: list[tuple[cst.Call, cst.CSTNode]],
    reads: Reads,
    spec: ParameterSpec,
) -> str | None:
    """Source of the first change, in a method of ``owner_class`` other than ``method`` (where
    the optimizer is built) and its ``__init__``, to a model of ``calls`` that is an attribute
    of ``self`` (``self.model.parameters()``; ``replace_head(self)`` storing
    ``self.model.out``): such a method may run after the optimizer took the parameters. None
    when there is none, ``method`` is no method of ``owner_class``, or no model is such an
    attribute (``self.parameters()``: the class is the model, whose own methods are not
    read)."""
    if method_of(owner_class, method.name.value) is not method:
        return None
    prefix = _self_name(method) + "."
    attributes = {
        model[len(prefix) :]
        for call, _ in calls
        if (model := _source(call.func.value)).startswith(prefix)  # type: ignore[attr-defined]
    }
    body = owner_class.body.body if isinstance(owner_class.body, cst.IndentedBlock) else []
    others = [
        s
        for s in body
        if isinstance(s, cst.FunctionDef) and s is not method and s.name.value != "__init__"
    ]
    for other in others if attributes else []:
        models = {f"{_self_name(other)}.{a}" for a in attributes}
        found = _changes(other, models, reads, spec, frozenset({id(other)}))
        if found:
            return _source(found[0])
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
            if stored and not _literal(node.value) and not reads.plain(node.value):
                found.append(node)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            value = node.value
            stored = _stores_into(node.target, inside, part)
            if value is not None and not _literal(value) and not reads.plain(value) and stored:
                found.append(node)

        def visit_Del(self, node: cst.Del) -> None:
            if _stores_into(node.target, inside):
                found.append(node)

        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in spec.structure_methods:
                if _source(func.value) in models or inside(func.value):
                    found.append(node)
            elif (called := reads.called(func)) in spec.structure_functions and node.args:
                first = node.args[0].value
                literal = called in spec.freeze_setters and _stores_literal(node)
                if (_source(first) in models or inside(first)) and not literal:
                    found.append(node)
            elif appends_module(func, node.args):
                found.append(node)
            handed = any(changes_parameter(node, a) for a in node.args)
            if handed or changes_held(node) or changes_itself(node):
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

    def changes_held(call: cst.Call) -> bool:
        """``call`` is ``h.m(...)`` on an instance of a class of the file, or of another file
        (``Reads.imported_method``), built with a model or part (``h = Surgeon(model)``,
        ``Trainer(model).fit()``) or handed one, and ``m`` (or a method it calls on ``self``)
        changes it (``held_change``)."""
        func = call.func
        if not isinstance(func, cst.Attribute):
            return False
        receiver = func.value
        built = receiver if isinstance(receiver, cst.Call) else reads.value(receiver)
        if not isinstance(built, cst.Call):
            return False
        stored = tuple(a for a in built.args if part(a.value))
        handed = tuple(a for a in call.args if part(a.value))
        if not stored and not handed:
            return False
        held = Held(built, stored, call, handed)
        owner_class = reads.local_class(built.func)
        if owner_class is None:
            place = reads.imported_method(held)
            if place is not None and elsewhere is not None:
                elsewhere[id(call)] = place
            return place is not None
        if id(owner_class) in entered:
            return False
        return held_change(owner_class, held, reads, spec, entered | {id(owner_class)}) is not None

    def changes_itself(call: cst.Call) -> bool:
        """``call`` is ``m.name(...)`` on a model built by a class of the file or of another
        file (``model = Net()``), whose method ``name`` (or one it inherits) changes the
        model (``own_method_change``)."""
        func = call.func
        if not isinstance(func, cst.Attribute) or _source(func.value) not in models:
            return False
        for built in _constructions(func.value, reads):
            change = own_method_change(built.func, func.attr.value, reads, spec, entered)
            if isinstance(change, str) and elsewhere is not None:
                elsewhere[id(call)] = change
            if change is not None:
                return True
        return False

    cst_walk.visit(owner, _Find())
    return found


def _constructions(model: cst.BaseExpression, reads: Reads, depth: int = 0) -> list[cst.Call]:
    """The calls a model's name may be bound to (``Net()`` of ``model = Net()``), names bound
    to names followed (``h = model``) and the map's ``self_methods`` to the module they are
    called on (``model = model.to(device)``, ``Net().to(device)``); a name bound more than once
    by each value reaching it (``net = Net(m); net = net.to(d)``: s23int); empty when none is
    known."""
    value: cst.BaseExpression | None = model
    for _ in range(_MAX_DEPTH):
        if isinstance(value, cst.Call) and _returns_itself(value, reads.self_methods):
            value = value.func.value  # type: ignore[attr-defined]
            continue
        if not isinstance(value, (cst.Name, cst.Attribute)):
            break
        bound = reads.value(value)
        if bound is None and isinstance(value, cst.Name) and depth < _MAX_DEPTH:
            reaching = reads.reaching(value) or []
            found = (_constructions(r, reads, depth + 1) for r in reaching if r is not value)
            return [c for calls in found for c in calls]
        if bound is None or bound is value:
            return []
        value = bound
    return [value] if isinstance(value, cst.Call) else []


def _returns_itself(call: cst.Call, self_methods: frozenset[str]) -> bool:
    """``m.to(device)``: a call of one of ``self_methods`` on a module."""
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in self_methods


def own_method_change(
    cls: cst.BaseExpression,
    name: str,
    reads: Reads,
    spec: ParameterSpec,
    entered: frozenset[int] = frozenset(),
) -> cst.CSTNode | str | None:
    """The first change the method ``name`` of an instance of the class ``cls`` names makes
    to the instance (``own_change``): the method defined by the class of the file, else
    looked up in its base classes (in order); for a class of another file, its code and
    ``file:line`` (``Reads.imported_own_method``). None when no class of the repository
    defines it (``model.train()``: torch's own) or it makes no change."""
    owner = reads.local_class(cls)
    if owner is None:
        qualified = reads.called(cls)
        return reads.imported_own_method(qualified, name) if qualified else None
    if id(owner) in entered:
        return None
    method = method_of(owner, name)
    if method is not None:
        return own_change(owner, method, reads, spec, entered | {id(owner)})
    for base in owner.bases:
        found = own_method_change(base.value, name, reads, spec, entered | {id(owner)})
        if found is not None:
            return found
    return None


def own_change(
    owner: cst.ClassDef,
    method: cst.FunctionDef,
    reads: Reads,
    spec: ParameterSpec,
    entered: frozenset[int] = frozenset(),
) -> cst.CSTNode | None:
    """The first change ``method`` of ``owner``, or a method of ``owner`` it calls on
    ``self``, makes to ``self`` (the model), by the rules of ``_changes``, or None."""
    for function in _self_called(owner, method):
        found = _changes(function, {_self_name(function)}, reads, spec, entered | {id(function)})
        if found:
            return found[0]
    return None


def foreign_own_method_change(
    module: cst.Module,
    name: str,
    method: str,
    imports: dict[str, str],
    spec: ParameterSpec,
    imported: Callable[[str, str], str | None],
) -> cst.CSTNode | str | None:
    """``own_method_change`` for the method ``method`` of the module-level class ``name`` of
    another file's ``module`` (names resolved through its ``imports``; ``imported``: the
    same for a class of yet another file), or None when it defines no such class."""
    owner = _tops(module)[1].get(name)
    if owner is None:
        return None
    reads = _foreign_reads(module, imports, imported)
    return own_method_change(cst.Name(name), method, reads, spec)


def held_change(
    owner: cst.ClassDef,
    held: Held,
    reads: Reads,
    spec: ParameterSpec,
    entered: frozenset[int] = frozenset(),
) -> cst.CSTNode | None:
    """The first change the method ``held.call`` calls on an instance of ``owner`` makes to a
    model the instance holds (``self.<attr>`` its ``__init__`` stores a model argument of
    ``held.construction`` in) or the method is handed, there or in a method of ``owner`` it
    calls on ``self``, by the rules of ``_changes``; None when it makes none."""
    name = held.call.func.attr.value  # type: ignore[attr-defined]
    method = method_of(owner, name)
    if method is None:
        return None
    attributes = _stored_attributes(owner, held)
    for function in _self_called(owner, method):
        models = {f"{_self_name(function)}.{a}" for a in attributes}
        if function is method:
            models |= _handed_names(method, held)
        found = _changes(function, models, reads, spec, entered | {id(function)}) if models else []
        if found:
            return found[0]
    return None


def _stored_attributes(owner: cst.ClassDef, held: Held) -> set[str]:
    """The attributes ``owner``'s ``__init__`` stores (``self.<attr> = param``) a parameter
    in that a model argument of ``held.construction`` binds."""
    init = init_of(owner)
    if init is None:
        return set()
    params = {
        p.name.value
        for a in held.stored
        if (p := bound_parameter(init, held.construction, a, method=True)) is not None
    }
    self_name = _self_name(init)
    found: set[str] = set()
    for node in cst_walk.walk(init):
        if isinstance(node, cst.Assign) and _source(node.value) in params:
            for t in node.targets:
                target = t.target
                if isinstance(target, cst.Attribute) and _source(target.value) == self_name:
                    found.add(target.attr.value)
    return found


def _handed_names(method: cst.FunctionDef, held: Held) -> set[str]:
    """The parameters of ``method`` that the model arguments of ``held.call`` bind."""
    return {
        p.name.value
        for a in held.handed
        if (p := bound_parameter(method, held.call, a, method=True)) is not None
    }


def _self_called(owner: cst.ClassDef, method: cst.FunctionDef) -> list[cst.FunctionDef]:
    """``method`` and the methods of ``owner`` it calls on ``self`` (``self.helper()``),
    and those they call, each once."""
    found = [method]
    for function in found:
        self_name = _self_name(function)
        for call in _calls(function):
            func = call.func
            if isinstance(func, cst.Attribute) and _source(func.value) == self_name:
                called = method_of(owner, func.attr.value)
                if called is not None and called not in found:
                    found.append(called)
    return found


def _self_name(function: cst.FunctionDef) -> str:
    """The name of the first parameter of a method (``self``)."""
    params = [*function.params.posonly_params, *function.params.params]
    return params[0].name.value if params else "self"


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


def _stores_literal(call: cst.Call) -> bool:
    """``setattr(m, name, v)`` (a ``freeze_setters`` function) with ``v`` a literal
    (``_literal``), as an assignment of one: three positional arguments, the last a literal
    (``prune.l1_unstructured(m, "weight", 0.5)`` is a change all the same)."""
    args = call.args
    return (
        len(args) == 3
        and all(a.keyword is None and not a.star for a in args)
        and _literal(args[2].value)
    )


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
    functions and classes followed), or None."""
    tops, classes = _tops(module)
    method = function in classes  # `Surgeon(model)`: its `__init__`
    defined = init_of(classes[function]) if method else tops.get(function)
    param = bound_parameter(defined, call, argument, method) if defined is not None else None
    if defined is None or param is None:
        return None
    reads = _foreign_reads(module, imports)
    found = _changes(defined, {param.name.value}, reads, spec, frozenset({id(defined)}))
    return found[0] if found else None


def foreign_method_change(
    module: cst.Module, name: str, held: Held, imports: dict[str, str], spec: ParameterSpec
) -> cst.CSTNode | None:
    """``held_change`` for the module-level class ``name`` of another file's ``module``
    (names resolved through that file's ``imports``), or None when it defines no such class."""
    owner = _tops(module)[1].get(name)
    if owner is None:
        return None
    return held_change(owner, held, _foreign_reads(module, imports), spec, frozenset({id(owner)}))


def _tops(module: cst.Module) -> tuple[dict[str, cst.FunctionDef], dict[str, cst.ClassDef]]:
    """The module-level functions and classes of ``module`` by name."""
    tops = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
    classes = {s.name.value: s for s in module.body if isinstance(s, cst.ClassDef)}
    return tops, classes


def _foreign_reads(
    module: cst.Module,
    imports: dict[str, str],
    imported_own_method: Callable[[str, str], str | None] = lambda qualified, name: None,
) -> Reads:
    """Name resolution in another file: its ``imports`` (local name -> qualified name), its
    module-level functions and classes, a builtin the file does not bind at module level
    (``setattr``: ``builtins.setattr``), ``imported_own_method`` for a class it imports; no
    value of a name."""
    tops, classes = _tops(module)
    bound = _module_names(module)

    def called(func: cst.BaseExpression) -> str | None:
        head, dot, rest = _source(func).partition(".")
        if head in imports:
            return imports[head] + dot + rest
        builtin = head not in bound and head in vars(builtins)
        return f"builtins.{head}{dot}{rest}" if builtin else None

    def handed(inner: cst.Call, arg: cst.Arg) -> tuple[cst.FunctionDef, str] | None:
        target = tops.get(inner.func.value) if isinstance(inner.func, cst.Name) else None
        bound = bound_parameter(target, inner, arg) if target is not None else None
        return (target, bound.name.value) if target is not None and bound else None

    def local_class(func: cst.BaseExpression) -> cst.ClassDef | None:
        return classes.get(func.value) if isinstance(func, cst.Name) else None

    return Reads(
        lambda node: None,
        called,
        handed,
        local_class=local_class,
        imported_own_method=imported_own_method,
    )


def _module_names(module: cst.Module) -> set[str]:
    """The names the module-level statements of ``module`` bind (definitions, imports,
    assignments, anything else a name is stored to at module level)."""
    found: set[str] = set()
    for statement in module.body:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            found.add(statement.name.value)
            continue
        for node in cst_walk.walk(statement):
            if isinstance(node, cst.ImportAlias):
                found.add(_source(node.asname.name if node.asname else node.name).split(".")[0])
            elif isinstance(node, (cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For)):
                target = node.target
                found |= {n.value for n in cst_walk.walk(target) if isinstance(n, cst.Name)}
            elif isinstance(node, cst.ImportStar):
                found |= set(vars(builtins))  # anything may be rebound
    return found


def init_of(owner: cst.ClassDef) -> cst.FunctionDef | None:
    """The one ``__init__`` defined in the body of ``owner``."""
    return method_of(owner, "__init__")


def method_of(owner: cst.ClassDef, name: str) -> cst.FunctionDef | None:
    """The one method ``name`` defined in the body of ``owner``."""
    body = owner.body.body if isinstance(owner.body, cst.IndentedBlock) else []
    found = [s for s in body if isinstance(s, cst.FunctionDef) and s.name.value == name]
    return found[0] if len(found) == 1 else None
