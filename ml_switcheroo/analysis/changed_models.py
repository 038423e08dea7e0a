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
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.semantic_map import ParameterSpec
from ml_switcheroo.spec.signature import Signature, code_of

_MAX_DEPTH = 8  # names followed from the optimizer's argument
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)

Owner = cst.FunctionDef | cst.Module


class NotDefined:
    """The answer for a method no class of the repository defines (``NOT_DEFINED``)."""

    def __repr__(self) -> str:
        return "NOT_DEFINED"


# ``own_method_change``'s third answer: no class of the repository defines the method (nor
# stores an attribute of that name): whether it keeps the parameters is the map's
# ``keeping_methods``' to say
NOT_DEFINED = NotDefined()
UNKNOWN_METHOD = (
    "`, a method no class of the repository defines, not one of the map's `keeping_methods"
)


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
    imported_own_method: Callable[[str, str], str | NotDefined | None] = lambda qualified, name: (
        NOT_DEFINED
    )
    # the map's ``modules.self_methods``: ``model = Net().to(device)`` is that ``Net()``
    self_methods: frozenset[str] = frozenset()
    # every value that may reach a name bound more than once (``net = Net(); net =
    # net.to(d)``), or None when one is unknown
    reaching: Callable[[cst.Name], list[cst.BaseExpression] | None] = lambda name: None
    # a value provably holding no parameter beyond literals (``args.threshold``, an option
    # of the command line: ``analysis/plain_values.py``)
    plain: Callable[[cst.BaseExpression], bool] = lambda value: False
    # the class of the file whose method holds the optimizer (``self`` is its instance)
    enclosing: cst.ClassDef | None = None


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
    submodule: bool = False,
    known: frozenset[str] = frozenset(),
) -> str | None:
    """Source of the first change to a model of ``calls`` (``parameter_calls``) in ``owner``
    that does not provably run before each of them, or None. ``submodule``: the optimizer
    takes a whole submodule's parameters (``model.encoder.parameters()``): a store of the
    submodule or of a module holding it counts too (``_holders``). ``known``: dotted
    submodules of the file (other optimizers'), whose calls on a holder are forward passes
    (``_holder_changes``)."""
    models = {_source(call.func.value) for call, _ in calls}  # type: ignore[attr-defined]
    elsewhere: dict[int, str] = {}
    own = _self_name(owner) if isinstance(owner, cst.FunctionDef) else None
    classes = {own: reads.enclosing} if own in models and reads.enclosing is not None else {}
    held = _holders(models, own) if submodule else frozenset()
    changes = _changes(owner, models, reads, spec, elsewhere=elsewhere, classes=classes, held=held)  # type: ignore[arg-type]
    changes += _holder_changes(owner, held, models | known, reads, spec, elsewhere)
    for change in changes:
        if not all(runs_after(owner, change, anchor) for _, anchor in calls):
            return _source(change) + elsewhere.get(id(change), "")
    return None


def changed_by_other_methods(
    owner_class: cst.ClassDef,
    method: cst.FunctionDef,
    calls: list[tuple[cst.Call, cst.CSTNode]],
    reads: Reads,
    spec: ParameterSpec,
    submodule: bool = False,
    known: frozenset[str] = frozenset(),
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
        held = _holders(models, _self_name(other)) if submodule else frozenset()
        found = _changes(other, models, reads, spec, frozenset({id(other)}), held=held)
        renamed = {_renamed_self(k, _self_name(other)) for k in known}
        found += _holder_changes(other, held, models | renamed, reads, spec)
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
    classes: dict[str, cst.ClassDef] | None = None,
    held: frozenset[str] = frozenset(),
) -> list[cst.CSTNode]:
    """Statements and calls of ``owner`` that change one of ``models`` (by source, or a name
    bound to one or to a part: ``_aliases``); ``entered``: the functions being read
    (recursion); ``elsewhere``: filled with what a call runs that is not written in it (a
    change in another file: ``Reads.imported``; a method no class of the repository defines);
    ``classes``: the class a model is an instance of when no construction says it (``self``);
    ``held``: the modules holding a submodule of ``models`` (``_holders``): a store into one
    (``model.encoder = ...``, or of one: ``self.net = ...``) or one handed to a function that
    changes it may replace the submodule (its calls are forward passes: not changes)."""
    found: list[cst.CSTNode] = []
    stored_paths = models | held
    direct = _aliases(owner, models, reads, spec, iterated=False)
    models = _aliases(owner, models, reads, spec)
    holders = _aliases(owner, set(held), reads, spec) if held else set()
    known = dict(classes or {})

    def part(node: cst.BaseExpression) -> bool:
        """``node`` is a model or a part of one (``_part``)."""
        return _part(node, models, reads, spec)

    def holder(node: cst.BaseExpression) -> bool:
        """``node`` is a module of ``held`` (or a part of one, ``_part``)."""
        return bool(holders) and _part(node, holders, reads, spec)

    def inside(target: cst.BaseExpression) -> bool:
        """``target`` is an attribute of a model or of a part of it: ``m.x``, ``m.x[0].y``;
        or of a module holding one."""
        return isinstance(target, cst.Attribute) and (part(target.value) or holder(target.value))

    def replaced(target: cst.BaseExpression) -> bool:
        """``target`` is an attribute of ``held`` or a submodule: ``model.encoder = ...``,
        ``self.net = ...`` for ``self.net.encoder`` (the optimizer keeps the parameters it
        took while the attribute names another module, s40)."""
        if isinstance(target, (cst.Tuple, cst.List)):
            return any(replaced(e.value) for e in target.elements)
        return bool(held) and isinstance(target, cst.Attribute) and _source(target) in stored_paths

    class _Find(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            stored = any(
                _stores_into(t.target, inside, part) or replaced(t.target) for t in node.targets
            )
            if stored and not _literal(node.value) and not reads.plain(node.value):
                found.append(node)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            value = node.value
            stored = _stores_into(node.target, inside, part) or replaced(node.target)
            if value is not None and not _literal(value) and not reads.plain(value) and stored:
                found.append(node)

        def visit_Del(self, node: cst.Del) -> None:
            if _stores_into(node.target, inside):
                found.append(node)

        def visit_Call(self, node: cst.Call) -> None:
            if structure_call(node) or appends_module(node.func, node.args):
                found.append(node)
                return
            handed = any(changes_parameter(node, a) for a in node.args)
            if handed or changes_held(node) or changes_itself(node):
                found.append(node)

    def structure_call(call: cst.Call) -> bool:
        """A ``structure_methods`` call on a model or part (``m.add_module(...)``), or a
        ``structure_functions`` call on one (``setattr(m, "fc", ...)``, ``weight_norm(m.fc)``;
        a ``freeze_setters`` one storing a literal is no change)."""
        func = call.func
        method = isinstance(func, cst.Attribute) and func.attr.value in spec.structure_methods
        if method and part(func.value):  # type: ignore[attr-defined]
            return True
        called = reads.called(func)
        if called not in spec.structure_functions or not call.args:
            return False
        literal = called in spec.freeze_setters and _stores_literal(call)
        return part(call.args[0].value) and not literal

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
        if not part(value) and not holder(value):
            return False
        handed = reads.handed(call, argument)
        if handed is None:
            place = reads.imported(call, argument)
            if place is not None and elsewhere is not None:
                elsewhere[id(call)] = f"`, which runs `{place}"
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
                elsewhere[id(call)] = f"`, which runs `{place}"
            return place is not None
        if id(owner_class) in entered:
            return False
        return held_change(owner_class, held, reads, spec, entered | {id(owner_class)}) is not None

    def changes_itself(call: cst.Call) -> bool:
        """``call`` is ``m.name(...)`` on a model or a part of one that may change it: the
        method of the class of the file or of another file the model is built by
        (``model = Net()``), or inherits, changes it (``own_method_change``); or no class of
        the repository defines it (a model of a class not known, a part; not a tensor:
        ``_tensor``) and it is no ``keeping_methods``; or it replaces the parameters by an
        argument (``replacing_arguments``: ``m.load_state_dict(sd, assign=True)``). The
        map's ``structure_methods`` and ``container_methods`` are read above;
        ``passing_methods`` read, a ``wrapped_module`` called is the model's forward."""
        func = call.func
        if not isinstance(func, cst.Attribute) or not _part(func.value, direct, reads, spec):
            return False
        name = func.attr.value
        read_above = name in spec.structure_methods or name in spec.container_methods
        if read_above or name in spec.passing_methods or _tensor(func.value, spec):
            return False  # `d.values()` of a name holding parts reads it
        if name in spec.wrapped_module:
            return False  # `ddp.module(x)`: the wrapped model called (its forward)
        if _replaces(call, name, spec):
            return True
        receiver = _source(func.value)
        answers: list[cst.CSTNode | str | NotDefined | None] = []
        if receiver in known:
            answers.append(_class_method_change(known[receiver], name, reads, spec, entered))
        elif receiver in models:
            for built in _constructions(func.value, reads):
                answers.append(own_method_change(built.func, name, reads, spec, entered))
        for change in answers or [NOT_DEFINED]:
            if change is NOT_DEFINED:
                if name in spec.keeping_methods:
                    continue
                if elsewhere is not None:
                    elsewhere[id(call)] = UNKNOWN_METHOD
                return True
            if isinstance(change, str) and elsewhere is not None:
                elsewhere[id(call)] = f"`, which runs `{change}"
            if change is not None:
                return True
        return False

    cst_walk.visit(owner, _Find())
    return found


def _part(node: cst.BaseExpression, models: set[str], reads: Reads, spec: ParameterSpec) -> bool:
    """``node`` is one of ``models`` or a part of one: its attributes and items
    (``m.blocks[0].fc``), a walrus binding one, the map's ``getter_functions`` and
    ``namespace_functions`` on one (``getattr(m, "fc")``, ``vars(m)``) and its
    ``part_methods`` (``m.get_submodule("fc")``)."""
    for _ in range(4 * _MAX_DEPTH):
        if _source(node) in models:
            return True
        if isinstance(node, (cst.Attribute, cst.Subscript, cst.NamedExpr)):
            node = node.value
        elif isinstance(node, cst.Call) and _part_method(node, spec):
            node = node.func.value  # type: ignore[attr-defined]
        elif isinstance(node, cst.Call) and node.args and not node.args[0].star:
            called = reads.called(node.func)
            if called not in spec.getter_functions | spec.namespace_functions:
                return False
            node = node.args[0].value
        else:
            return False
    return False


def _tensor(node: cst.BaseExpression, spec: ParameterSpec) -> bool:
    """``node`` ends in one of the map's ``tensor_attributes`` (through items):
    ``m.out.weight``, ``m.out.weight.grad``, ``m.emb.weight[0]``, a tensor, no module."""
    while isinstance(node, cst.Subscript):
        node = node.value
    return isinstance(node, cst.Attribute) and node.attr.value in spec.tensor_attributes


def _part_method(call: cst.Call, spec: ParameterSpec) -> bool:
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in spec.part_methods


def _holds_part(
    value: cst.BaseExpression, models: set[str], reads: Reads, spec: ParameterSpec
) -> bool:
    """``value`` is a part of one of ``models`` (``_part``) or may hold one: a display
    holding one (``[m.a, m.b]``, a dict's values), a call of the map's ``passing_functions``
    or ``passing_methods`` on one (``zip(layers, names)``, ``d.values()``), a comprehension
    over one, a walrus binding one."""
    if _part(value, models, reads, spec):
        return True
    if isinstance(value, cst.NamedExpr):
        return _holds_part(value.value, models, reads, spec)
    if isinstance(value, (cst.List, cst.Tuple, cst.Set)):
        return any(_holds_part(e.value, models, reads, spec) for e in value.elements)
    if isinstance(value, cst.Dict):
        return any(
            _holds_part(e.value, models, reads, spec)
            for e in value.elements
            if isinstance(e, (cst.DictElement, cst.StarredDictElement))
        )
    if isinstance(value, _COMPREHENSIONS):
        fors = [n for n in cst_walk.walk(value) if isinstance(n, cst.CompFor)]
        return any(_holds_part(f.iter, models, reads, spec) for f in fors)
    if not isinstance(value, cst.Call):
        return False
    func = value.func
    if isinstance(func, cst.Attribute) and func.attr.value in spec.passing_methods:
        return _holds_part(func.value, models, reads, spec)
    if reads.called(func) in spec.passing_functions:
        return any(_holds_part(a.value, models, reads, spec) for a in value.args)
    return False


def _replaces(call: cst.Call, name: str, spec: ParameterSpec) -> bool:
    """``call`` (a method ``name`` on a model) gives the argument of the map's
    ``replacing_arguments`` making it replace the parameters a value other than a literal
    False (``m.load_state_dict(sd, assign=True)``), or binds to its signature uncertainly."""
    for method, source, argument in spec.replacing_arguments:
        if method != name:
            continue
        try:
            bound = Signature.parse(source).bind(call)
        except Untranslatable:
            return True
        given = bound.get(argument)
        false = given is not None and isinstance(given.value, cst.Name)
        return given is not None and not (false and given.value.value == "False")  # type: ignore[attr-defined]
    return False


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
) -> cst.CSTNode | str | NotDefined | None:
    """The first change the method ``name`` of an instance of the class ``cls`` names makes
    to the instance (``_class_method_change``); for a class of another file, its code and
    ``file:line`` (``Reads.imported_own_method``); ``NOT_DEFINED`` when no class of the
    repository defines it (``model.train()``: torch's own; a class of another package)."""
    owner = reads.local_class(cls)
    if owner is None:
        qualified = reads.called(cls)
        return reads.imported_own_method(qualified, name) if qualified else NOT_DEFINED
    return _class_method_change(owner, name, reads, spec, entered)


def _class_method_change(
    owner: cst.ClassDef,
    name: str,
    reads: Reads,
    spec: ParameterSpec,
    entered: frozenset[int] = frozenset(),
) -> cst.CSTNode | str | NotDefined | None:
    """The first change the method ``name`` of an instance of ``owner`` makes to the instance
    (``own_change``): the method defined by ``owner``, else looked up in its base classes (in
    order). None when it makes no change, or ``owner`` stores an attribute of that name on
    ``self`` (``self.encoder = ...``: ``m.encoder(x)`` calls a part) or is being read;
    ``NOT_DEFINED`` when neither it nor a base class of the repository defines it."""
    if id(owner) in entered:
        return None
    method = method_of(owner, name)
    if method is not None:
        return own_change(owner, method, reads, spec, entered | {id(owner)})
    if name in _self_attributes(owner):
        return None
    for base in owner.bases:
        found = own_method_change(base.value, name, reads, spec, entered | {id(owner)})
        if found is not NOT_DEFINED:
            return found
    return NOT_DEFINED


def _self_attributes(owner: cst.ClassDef) -> frozenset[str]:
    """The attributes the methods of ``owner`` store on ``self`` (``self.out = ...``). Found
    once per class of the last ``_CLASSES_KEPT`` asked: torch's ``distributed_test.py`` asks
    9 times of ``DistributedDataParallel`` (a class of 2,400 lines), checkout-large's 122 files
    161 times of 37 classes (libcst's nodes do not change)."""
    kept = _SELF_ATTRIBUTES.get(id(owner))
    if kept is not None and kept[0] is owner:
        return kept[1]
    body = owner.body.body if isinstance(owner.body, cst.IndentedBlock) else []
    found: set[str] = set()
    for method in (s for s in body if isinstance(s, cst.FunctionDef)):
        self_name = _self_name(method)
        for node in cst_walk.walk(method):
            targets = node.targets if isinstance(node, cst.Assign) else []
            targets = [node] if isinstance(node, cst.AnnAssign) else targets
            for target in (t.target for t in targets):
                if isinstance(target, cst.Attribute) and _source(target.value) == self_name:
                    found.add(target.attr.value)
    if len(_SELF_ATTRIBUTES) >= _CLASSES_KEPT:
        _SELF_ATTRIBUTES.clear()
    _SELF_ATTRIBUTES[id(owner)] = (owner, frozenset(found))  # the class kept: its id not reused
    return _SELF_ATTRIBUTES[id(owner)][1]


_SELF_ATTRIBUTES: dict[int, tuple[cst.ClassDef, frozenset[str]]] = {}  # id -> (class, found)
_CLASSES_KEPT = 64  # a class keeps its whole subtree alive: few are kept


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
        self_name = _self_name(function)
        found = _changes(
            function,
            {self_name},
            reads,
            spec,
            entered | {id(function)},
            classes={self_name: owner},
        )
        if found:
            return found[0]
    return None


def foreign_own_method_change(
    module: cst.Module,
    name: str,
    method: str,
    imports: dict[str, str],
    spec: ParameterSpec,
    imported: Callable[[str, str], str | NotDefined | None],
) -> cst.CSTNode | str | NotDefined | None:
    """``own_method_change`` for the method ``method`` of the module-level class ``name`` of
    another file's ``module`` (names resolved through its ``imports``; ``imported``: the
    same for a class of yet another file), or ``NOT_DEFINED`` when it defines no such class
    (``make_model``, a function: the class of what it builds is not known)."""
    owner = _tops(module)[1].get(name)
    if owner is None:
        return NOT_DEFINED
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


def _aliases(
    owner: Owner, models: set[str], reads: Reads, spec: ParameterSpec, iterated: bool = True
) -> set[str]:
    """``models`` and the names ``owner`` binds to one of them, to a part of one or to a value
    that may hold parts (``_holds_part``): ``h = model``, ``layers = [model.a, model.b]``,
    ``for layer in model.layers``, ``for a, n in zip(layers, names)`` (every name of a
    target), a comprehension's target, a walrus. Not ``iterated``: the names a loop or a
    comprehension binds only over a part (``for layer in model.layers``) or a
    ``part_methods`` call (``for m in model.modules()``), not over what holds parts
    (``zip(model.saved_actions, returns)`` may pair a plain list's items: the methods the
    analysis reads on a name are those of such names, ``changes_itself``)."""
    found = set(models)
    bindings: list[tuple[cst.BaseExpression, cst.BaseExpression]] = []
    for node in _binders(owner):
        if isinstance(node, cst.Assign):
            bindings += [(t.target, node.value) for t in node.targets]
        elif isinstance(node, cst.AnnAssign):
            bindings.append((node.target, node.value))  # type: ignore[arg-type]
        elif isinstance(node, (cst.For, cst.CompFor)):
            if iterated or _module_items(node.iter, spec):
                bindings.append((node.target, node.iter))
        else:
            bindings.append((node.target, node.value))  # a walrus
    named = [(names, value) for target, value in bindings if (names := _target_names(target))]
    while True:
        more = {
            name
            for names, value in named
            if not names <= found and _holds_part(value, found, reads, spec)
            for name in names
        }
        if more <= found:
            return found
        found |= more


_BINDERS: dict[int, tuple[Owner, list[cst.CSTNode]]] = {}  # id(owner) -> its binders
_KEPT = 8  # owners kept (the last asked): each plan asks the few of its file many times


def forget() -> None:
    """Drop the kept binders (and the trees they hold): a file's conversion is over."""
    _BINDERS.clear()


# ``_binders``' tests, answered once per node type (``cst_walk.instance_test``)
_is_binder = cst_walk.instance_test((cst.Assign, cst.For, cst.CompFor, cst.NamedExpr))
_is_annotated = cst_walk.instance_test(cst.AnnAssign)


def _binders(owner: Owner) -> list[cst.CSTNode]:
    """The assignments (an annotated one with a value), loops, comprehension loops and walruses
    of ``owner``, in source order: what ``_aliases`` reads, from one walk per owner (it is
    asked twice per ``_changes``, and again for each optimizer of the same function)."""
    kept = _BINDERS.pop(id(owner), None)
    if kept is None or kept[0] is not owner:
        nodes = [
            node
            for node in cst_walk.walk(owner)
            if _is_binder(node) or (_is_annotated(node) and node.value is not None)  # type: ignore[attr-defined]
        ]
        kept = (owner, nodes)
        while len(_BINDERS) >= _KEPT:
            del _BINDERS[next(iter(_BINDERS))]
    _BINDERS[id(owner)] = kept  # the most recent last
    return kept[1]


def _module_items(node: cst.BaseExpression, spec: ParameterSpec) -> bool:
    """``node`` is iterated as a module's items: ``m.layers``, ``m.blocks[1:]`` (a chain of
    attributes and items of a name: ``_part`` decides whose), ``m.modules()``."""
    if isinstance(node, cst.Call):
        return _part_method(node, spec)
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        node = node.value
    return isinstance(node, cst.Name)


def _target_names(target: cst.BaseExpression) -> set[str]:
    """The names a binding target binds: ``a``, or those of ``a, (b, *c)``."""
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    if isinstance(target, (cst.Tuple, cst.List)):
        return {n for e in target.elements for n in _target_names(e.value)}
    return set()


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
    return [n for n in cst_walk.walk(node) if _is_call(n)]  # type: ignore[misc]


_is_call = cst_walk.instance_test(cst.Call)  # once per node type (libcst's nodes are ABCs)


def _references(node: cst.CSTNode) -> list[cst.BaseExpression]:
    """Names (not an attribute's name) and attributes read in ``node``: what may be bound."""
    attributes = [n for n in cst_walk.walk(node) if isinstance(n, cst.Attribute)]
    named = {id(a.attr) for a in attributes}
    names = [n for n in cst_walk.walk(node) if isinstance(n, cst.Name) and id(n) not in named]
    return [*names, *attributes]


def _source(node: cst.CSTNode) -> str:
    """``code_of(node).strip()``, written out once per node of the last ``_SOURCES_KEPT`` asked:
    checkout-large's 122 files asked 11,877 times of 3,975 nodes that are no plain name or
    attribute chain (each a code generation; libcst's nodes do not change)."""
    if isinstance(node, (cst.Name, cst.Attribute)):  # mostly read off their fields: not kept
        return code_of(node).strip()
    kept = _SOURCES.get(id(node))
    if kept is not None and kept[0] is node:
        return kept[1]
    text = code_of(node).strip()
    if len(_SOURCES) >= _SOURCES_KEPT:
        _SOURCES.clear()
    _SOURCES[id(node)] = (node, text)  # the node kept with it: its id is not reused meanwhile
    return text


_SOURCES: dict[int, tuple[cst.CSTNode, str]] = {}  # id(node) -> (node, its source)
_SOURCES_KEPT = 4096


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
    imported_own_method: Callable[[str, str], str | NotDefined | None] = (
        lambda qualified, name: NOT_DEFINED
    ),
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


def _holders(models: set[str], own: str | None) -> frozenset[str]:
    """The modules holding a submodule of ``models`` as written (``model`` and ``model.net``
    of ``model.net.encoder``), but not ``own`` (the method's ``self``, which is no model here:
    its other attributes change freely)."""
    held = set()
    for model in models:
        parts = model.split(".")
        held |= {".".join(parts[:i]) for i in range(1, len(parts))}
    return frozenset(held - {own, "self"} - models)


def _holder_changes(
    owner: Owner,
    held: frozenset[str],
    submodules: set[str] | frozenset[str],
    reads: Reads,
    spec: ParameterSpec,
    elsewhere: dict[int, str] | None = None,
) -> list[cst.CSTNode]:
    """The changes of a module holding the optimizer's submodule, read as a model's
    (``setattr(model, "encoder", ...)``, ``model.add_module(...)``, ``model._modules[...] =``,
    ``model.load_state_dict(sd, assign=True)``, ``model.apply(f)``, a method no class of the
    repository defines: s40 probe p40a 2), except a call of one of ``submodules`` through it
    (``model.encoder(x)``: its forward pass, not a method of the holder)."""
    if not held:
        return []
    notes: dict[int, str] = {}
    found = []
    for change in _changes(owner, set(held), reads, spec, elsewhere=notes):
        func = change.func if isinstance(change, cst.Call) else None
        called = _source(func) if isinstance(func, cst.Attribute) else None
        if notes.get(id(change)) == UNKNOWN_METHOD and called in submodules:
            continue
        if elsewhere is not None and id(change) in notes:
            elsewhere[id(change)] = notes[id(change)]
        found.append(change)
    return found


def _renamed_self(path: str, own: str) -> str:
    """``self.a.b`` with the method's own first parameter name for ``self``."""
    head, _, rest = path.partition(".")
    return f"{own}.{rest}" if head == "self" and rest else path
