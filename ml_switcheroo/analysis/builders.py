"""Builders of this file: functions and methods that build an optimizer (or scheduler) and
return it, called once.

``def build(model, cfg): opt = SGD(...); sched = StepLR(opt, ...); return opt, sched`` with
``opt, sched = build(model, cfg)`` in ``fit``, or ``self.opt = self.configure_optimizers()``
with ``def configure_optimizers(self): return AdamW(...)``: the caller's names hold the values
the constructor calls in the builder build, so the planner and the receiver checks follow them
as if the calls were written at the caller.

A builder is followed only when that is certain: one definition of its name in the file (no
override by a subclass of the file), not decorated, not async, not a generator, one ``return``
(the last statement of its body) of a call of the map, or a name bound once to one, or a tuple
of those; its name used only by one call, ``f(...)`` for a module-level function or
``self.f(...)`` in its own class, whose value is assigned to a name or ``self.x`` (a tuple of
names for a tuple); and (when the repository is known) no other file names it. Anything else
keeps today's answer (the builder's ``return`` is a torch-only use of the value). A builder
that returns a scheduler built on its optimizer parameter is a scheduler factory
(``factories.py``); ``call_of`` gives its one call.

A module-level builder called more than once (a GAN trainer's ``opt_g = build(model_g, cfg)``,
``opt_d = build(model_d, cfg)``) is not followed here: with a repository (a file on disk), the
repository index types each call's value instead when the builder returns one constructor on
every path and every call's value is a name used only through ``step()``/``zero_grad()``
(``CrossFile.builder_type``, ``Resolver._own_builder``); the one translation serves every call.

NOT DONE YET (issue 12): a builder called more than once whose callers attach a scheduler or a
clip to what it returns (each call would need its own chain: escape), or without a repository
(a source string: escape); a tuple returned by a builder of another file, a scheduler built in
the caller for the builder's optimizer (it escapes: not built in the same block).

A method reached through an instance other than ``self`` (nanoGPT's ``optimizer =
model.configure_optimizers(...)`` with ``model = GPT(conf)``, in this file or another) is
followed with the repository index, not here: ``method_builders.py``
(``CrossFile.method_call_type``, ``Resolver._method_builder_type``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.factories import returns_of

MentionedElsewhere = Callable[[str], bool]  # another file of the repository names the word


@dataclass
class Builders:
    """What the file's builders return, keyed by ``id`` of the caller's nodes."""

    by_call: dict[int, cst.Call] = field(default_factory=dict)  # caller's `f(...)` -> built
    by_target: dict[int, cst.Call] = field(default_factory=dict)  # a tuple's Name -> built
    # id(the builder's return statement) -> {element index: the caller's target} for each
    # returned element that is a built value (the others are not followed)
    targets: dict[int, dict[int, cst.BaseExpression]] = field(default_factory=dict)
    # id(the builder's return statement) -> the class of the method that calls it (or None)
    callers: dict[int, cst.ClassDef | None] = field(default_factory=dict)
    arguments: dict[int, cst.BaseExpression] = field(default_factory=dict)  # id(param) -> passed
    # id(the builder's FunctionDef) -> (the one call of it, the builder's return statement)
    by_function: dict[int, tuple[cst.Call, cst.Return]] = field(default_factory=dict)

    def passed(self, param: cst.Param) -> cst.BaseExpression | None:
        """What the one call of a builder passes for its parameter ``param``."""
        return self.arguments.get(id(param))

    def call_of(self, function: cst.CSTNode | None) -> tuple[cst.Call, cst.Return] | None:
        """The one call of builder ``function`` and the builder's return statement."""
        return self.by_function.get(id(function)) if function is not None else None

    def built(self, value: object, binding: cst.CSTNode | None = None) -> cst.BaseExpression | None:
        """The constructor call ``value`` (or the tuple target ``binding``) stands for."""
        if binding is not None and id(binding) in self.by_target:
            return self.by_target[id(binding)]
        if isinstance(value, cst.Call) and id(value) in self.by_call:
            return self.by_call[id(value)]
        return value if isinstance(value, cst.BaseExpression) else None


def find_builders(
    module: cst.Module,
    bound_value: Callable[[cst.Name], cst.BaseExpression | None],
    is_built: Callable[[cst.Call], bool],
    mentioned_elsewhere: MentionedElsewhere | None,
    functions: Iterable[cst.FunctionDef] | None = None,
) -> Builders:
    """The builders of ``module`` (``bound_value``: the one value a name of the builder is
    bound to; ``is_built``: a call of the map's constructors or schedulers; ``functions``:
    every function of the module, when known: the module is walked only when one of them
    may return a built value)."""
    if functions is not None and not any(
        _may_return_built(f, bound_value, is_built) for f in functions
    ):
        return Builders()
    walk = _Walk()
    cst_walk.visit(module, walk)
    found = Builders()
    for name, definitions in walk.definitions.items():
        uses = walk.uses.get(name, [])
        if len(definitions) != 1 or len(uses) != 1:
            continue
        function, owner = definitions[0]
        call, use_owner, statement = uses[0]
        if call is None or not _called_as_builder(call, function, owner, use_owner):
            continue
        returned = _returned(function, bound_value, is_built)
        if returned is None:
            continue
        targets = _targets(statement, call, len(returned[1]) if returned[2] else None)
        # the repository's word index last: other files are read only for a builder
        if targets is None or (mentioned_elsewhere and mentioned_elsewhere(name)):
            continue
        _record(found, returned, call, targets)
        found.arguments.update(_arguments(function, call, method=owner is not None))
        found.callers[id(returned[0])] = use_owner[0] if isinstance(use_owner, tuple) else None
        found.by_function[id(function)] = (call, returned[0])
    return found


def _record(
    found: Builders,
    returned: tuple[cst.Return, list[cst.Call | None], bool],
    call: cst.Call,
    targets: list[cst.BaseExpression],
) -> None:
    statement, calls, is_tuple = returned
    built = {i: (targets[i], c) for i, c in enumerate(calls) if c is not None}
    found.targets[id(statement)] = {i: target for i, (target, _) in built.items()}
    for target, value in built.values():
        if is_tuple:
            found.by_target[id(target)] = value
        else:
            found.by_call[id(call)] = value


def _returned(
    function: cst.FunctionDef,
    bound_value: Callable[[cst.Name], cst.BaseExpression | None],
    is_built: Callable[[cst.Call], bool],
) -> tuple[cst.Return, list[cst.Call | None], bool] | None:
    """The return statement, the calls it returns (None for an element that is not a
    value of the map: ``return model, opt, sched``) and whether it returns a tuple."""
    if function.decorators or function.asynchronous is not None:
        return None
    body = function.body
    if not isinstance(body, cst.IndentedBlock) or not body.body:
        return None
    last = body.body[-1]
    returns = returns_of(function)
    if len(returns) != 1 or not _is_statement_of(last, returns[0]) or _yields(function):
        return None
    calls = _returned_calls(returns[0], bound_value, is_built)
    return (returns[0], calls, isinstance(returns[0].value, cst.Tuple)) if calls else None


def _may_return_built(
    function: cst.FunctionDef,
    bound_value: Callable[[cst.Name], cst.BaseExpression | None],
    is_built: Callable[[cst.Call], bool],
) -> bool:
    """What ``_returned`` asks of ``function`` without walking its body (its last statement
    returns a built value): False when ``_returned`` is surely None."""
    if function.decorators or function.asynchronous is not None:
        return False
    body = function.body
    if not isinstance(body, cst.IndentedBlock) or not body.body:
        return False
    last = body.body[-1]
    if not isinstance(last, cst.SimpleStatementLine) or len(last.body) != 1:
        return False
    small = last.body[0]
    return isinstance(small, cst.Return) and bool(_returned_calls(small, bound_value, is_built))


def _returned_calls(
    statement: cst.Return,
    bound_value: Callable[[cst.Name], cst.BaseExpression | None],
    is_built: Callable[[cst.Call], bool],
) -> list[cst.Call | None] | None:
    """The built call of each element ``statement`` returns (None for one that is not);
    None when none is, or an element is starred."""
    value = statement.value
    elements = list(value.elements) if isinstance(value, cst.Tuple) else [value]
    calls: list[cst.Call | None] = []
    for element in elements:
        if isinstance(element, cst.StarredElement):
            return None
        node = element.value if isinstance(element, cst.Element) else element
        if isinstance(node, cst.Name):
            node = bound_value(node)
        calls.append(node if isinstance(node, cst.Call) and is_built(node) else None)
    if all(c is None for c in calls):
        return None
    return calls


def _called_as_builder(
    call: cst.Call, function: cst.FunctionDef, owner: cst.ClassDef | None, use_owner: object
) -> bool:
    """``f(...)`` of a module-level ``f``, or ``self.f(...)`` in a method of ``f``'s class."""
    func = call.func
    if owner is None:
        return isinstance(func, cst.Name)
    if not isinstance(func, cst.Attribute) or not isinstance(func.value, cst.Name):
        return False
    if not isinstance(use_owner, tuple):
        return False
    use_class, self_name = use_owner
    return use_class is owner and func.value.value == self_name and self_name is not None


def _targets(
    statement: cst.CSTNode | None, call: cst.Call, arity: int | None
) -> list[cst.BaseExpression] | None:
    """The caller's targets: one Name or ``self.x`` (``arity`` None), or a tuple of
    ``arity`` Names."""
    if not isinstance(statement, cst.Assign) or statement.value is not call:
        return None
    if len(statement.targets) != 1:
        return None
    target = statement.targets[0].target
    if arity is None:
        return [target] if isinstance(target, (cst.Name, cst.Attribute)) else None
    if not isinstance(target, (cst.Tuple, cst.List)) or len(target.elements) != arity:
        return None
    names = [e.value for e in target.elements if isinstance(e, cst.Element)]
    return names if all(isinstance(n, cst.Name) for n in names) and len(names) == arity else None


def _arguments(
    function: cst.FunctionDef, call: cst.Call, method: bool
) -> dict[int, cst.BaseExpression]:
    """id(parameter) -> the argument ``call`` binds to it (none with star arguments)."""
    params = function.params
    starred = isinstance(params.star_arg, cst.Param) or params.star_kwarg is not None
    if starred or any(a.star for a in call.args):
        return {}
    positional = [*params.posonly_params, *params.params][1 if method else 0 :]
    named = {p.name.value: p for p in [*positional, *params.kwonly_params]}
    found: dict[int, cst.BaseExpression] = {}
    for index, arg in enumerate(a for a in call.args if a.keyword is None):
        if index < len(positional):
            found[id(positional[index])] = arg.value
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in named:
            found[id(named[arg.keyword.value])] = arg.value
    return found


def _yields(function: cst.FunctionDef) -> bool:
    found = False

    class _Yields(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is function

        def visit_Yield(self, node: cst.Yield) -> None:
            nonlocal found
            found = True

    cst_walk.visit(function, _Yields())
    return found


def _is_statement_of(statement: cst.BaseStatement, small: cst.Return) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and list(statement.body) == [small]


class _Walk(cst.CSTVisitor):
    """Every definition of a function name (with its class), and every other use of it."""

    def __init__(self) -> None:
        super().__init__()
        self.definitions: dict[str, list[tuple[cst.FunctionDef, cst.ClassDef | None]]] = {}
        # name -> (the call it is the callee of, or None; (class, self name); its statement)
        self.uses: dict[str, list[tuple[cst.Call | None, object, cst.CSTNode | None]]] = {}
        self._classes: list[cst.ClassDef | None] = []  # None: a function's body
        self._self: list[str | None] = []
        self._statements: list[cst.CSTNode] = []
        self._callees: set[int] = set()
        self._calls: dict[int, cst.Call] = {}
        self._definition_names: set[int] = set()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        owner = self._classes[-1] if self._classes else None
        self.definitions.setdefault(node.name.value, []).append((node, owner))
        self._definition_names.add(id(node.name))
        params = node.params.params
        self._self.append(params[0].name.value if owner is not None and params else None)
        self._classes.append(None)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._classes.pop()
        self._self.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        self._statements.append(node)

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._statements.pop()

    def visit_Call(self, node: cst.Call) -> None:
        self._calls[id(node.func)] = node

    def visit_Name(self, node: cst.Name) -> None:
        if id(node) in self._definition_names:
            return
        call = self._calls.get(id(node))
        self._use(node.value, call)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        value = node.evaluated_value
        if isinstance(value, str) and value.isidentifier():  # `getattr(self, "build")`
            self._use(value, None)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        call = self._calls.get(id(node))
        self._use(node.attr.value, call)
        cst_walk.visit(node.value, self)
        return False

    def _use(self, name: str, call: cst.Call | None) -> None:
        owner = (self._method_class(), self._self[-1] if self._self else None)
        statement = self._statements[-1] if self._statements else None
        self.uses.setdefault(name, []).append((call, owner, statement))

    def _method_class(self) -> cst.ClassDef | None:
        """The class of the method the walk is in (directly in its body)."""
        if len(self._classes) >= 2 and self._classes[-1] is None:
            return self._classes[-2]
        return None
