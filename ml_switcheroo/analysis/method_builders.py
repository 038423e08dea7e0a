"""Methods that build and return an optimizer, called on an instance of their class (issue 12:
nanoGPT's ``optimizer = model.configure_optimizers(...)`` in ``train.py`` with ``model =
GPT(conf)``, the method in ``model.py``), read from the repository index with ``ast``.

A method is followed only when that is certain: its name is defined once in the whole
repository (no subclass override, no other class's method of that name), directly in the body
of a module-level class, not decorated; it returns one map constructor on every path
(``RepositoryIndex.returned_by``); and every use of its name in the repository is a call
``x.method(...)`` whose receiver ``x`` is bound, in the scope of the call, only to calls of
that class (``x = GPT(conf)`` on every branch) or of a ``@classmethod`` of it returning
``cls(...)``/``GPT(...)`` (``GPT.from_pretrained(...)``), rebound to nothing else (no
``global``/``nonlocal`` of it), not a parameter, with the value assigned to a name bound once
and used only through the rewritten methods (``step()``, ``zero_grad()``: the function
builders' rule), or written the learning rate of every group (``for g in
opt.param_groups: g["lr"] = lr``, ``lr_write_loop``: issue 13) in the method's own file.
Anything else is an
``Unknown`` naming the place (``train.py:185 binds `model` to `GPT.from_pretrained(...)```),
worded in the method's ``return`` escape.

A binding of the receiver that can only run after the call (a later statement of the call's
scope than the one holding the call: nanoGPT's ``model = torch.compile(model)`` and ``model =
DDP(model)`` after ``configure_optimizers``) does not decide. A binding before it may keep the
instance: ``x = x.to(device)`` / ``GPT(conf).to(device)`` (the map's ``modules: self_methods``,
return the module itself, when no file of the repository defines a method of that name) and
``x = torch.compile(x)`` (the map's ``modules: forwarding``: the wrapper's attribute lookup
reaches ``x`` for a method name it does not answer itself, nor one with a leading underscore).

NOT DONE YET: ``self.method()`` inside the class is ``builders.py``'s (called once, in the same
file); a receiver rebound through a wrapper that does not forward (``DDP(model)``) before the
call escapes; a caller whose other uses would each escape on their own
(``optimizer.state_dict()``, lr writes through ``param_groups[0]``) keeps the method's ``return``
escape, as for function builders. (A caller of the same file may name its value like a local
of the method: ``_returned_use`` skips the names local to a nested function.)
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from ml_switcheroo.analysis import ast_nodes
from ml_switcheroo.analysis.repository import (
    Constructed,
    FileFacts,
    Place,
    RepositoryIndex,
    Unknown,
    _bindings,
    _enclosing_scope,
    _is_getattr_of,
    _own_nodes,
    _params,
    _qualified,
    _returned_call,
    _text,
    is_selecting,
)
from ml_switcheroo.spec.semantic_map import ModuleSpec


@dataclass(frozen=True)
class MethodBuilder:
    """The one definition of a method name in the repository, in a module-level class."""

    path: str
    module: str
    owner: str  # the class's name
    definition: ast.FunctionDef
    facts: FileFacts  # of its file


def method_builder(index: RepositoryIndex, method: str) -> MethodBuilder | Unknown | None:
    """The module-level class method named ``method`` when the repository defines that name
    once; an ``Unknown`` at the second definition (or a file that fails to parse); None when
    no module-level class defines it (or the repository is not indexed)."""
    if not index.complete:
        return None
    found: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
    spelt = method.encode() if method.isascii() else None
    for path in _candidates(index, method):
        if spelt is not None and spelt not in _defined_names(path, index.source(path)):
            continue  # no `def method(` in the bytes: the file defines no function of that name
        facts = index.facts(path)
        if facts.tree is None:
            return facts.error
        found.extend((path, node) for node in facts.definitions.get(method, ()))
        if len(found) > 1:
            break  # the second definition decides
    if not found:
        return None
    if len(found) > 1:
        second = found[1]
        why = f"defines `{method}` again (an override or another class's method)"
        return Unknown(Place(second[0], second[1].lineno), why)
    path, definition = found[0]
    facts = index.facts(path)
    owner = next(
        (name for name, c in facts.classes.items() if definition in c.body),
        None,
    )
    if owner is None or not isinstance(definition, ast.FunctionDef):
        return None
    if definition.decorator_list or not definition.args.args:
        return Unknown(Place(path, definition.lineno), f"`{method}` is decorated or static")
    return MethodBuilder(path, facts.module, owner, definition, facts)


def _candidates(index: RepositoryIndex, method: str) -> list[str]:
    """The files that may define ``method``: those holding the word; while the pre-filter
    stages select files (``repository.selecting``: only whether a fact is positive matters,
    which is the same in any order), the smallest first (a name defined twice is then known
    from the two smallest files defining it)."""
    found = index.with_word(method)
    if is_selecting():
        return sorted(found, key=lambda path: len(index.source(path)))
    return found


# ``def name(`` (or ``def name[T](``), any spacing and line continuations: a file without it
# for ``name`` defines no function of that name. A name that is not ASCII is not looked for
# (a file in another encoding spells it with other bytes: every file with the word is parsed).
_DEFINITION = re.compile(rb"\bdef[\s\\]+([A-Za-z0-9_]+)[\s\\]*[(\[]")
_DEFINED: dict[str, tuple[bytes, frozenset[bytes]]] = {}  # path -> (its bytes, the names)


def _defined_names(path: str, data: bytes) -> frozenset[bytes]:
    """The ASCII names ``data``, the bytes of ``path``, spells a ``def`` of (found once for the
    last bytes of each file: every method asked about reads the same table)."""
    known = _DEFINED.get(path)
    if known is None or known[0] is not data:
        known = (data, frozenset(_DEFINITION.findall(data)))
        _DEFINED[path] = known
    return known[1]


def method_returned(index: RepositoryIndex, builder: MethodBuilder) -> Constructed | Unknown:
    """The one constructor call ``builder`` returns on every path, or where it differs."""
    return index.returned_by(builder.path, builder.definition, builder.definition.name)


def method_calls(
    index: RepositoryIndex,
    builder: MethodBuilder,
    methods: frozenset[str],
    modules: ModuleSpec,
) -> int | Unknown:
    """How many calls of ``builder`` the repository makes, each on an instance of its class
    (or a wrapper of one forwarding the method, through the map's ``modules``) with the value
    bound to a name used only through ``methods``; else the first use that is not one."""
    name = builder.definition.name
    calls = 0
    for path in index.with_word(name):
        facts = index.facts(path)
        if facts.tree is None:
            assert facts.error is not None
            return facts.error
        parents = facts.nodes().parents
        for node in ast_nodes.walk(facts.tree):
            problem = _name_problem(node, name)
            if problem is not None:
                return Unknown(Place(path, getattr(node, "lineno", 0)), problem)
            if isinstance(node, ast.Attribute) and node.attr == name:
                misuse = _call_problem(index, facts, node, parents, builder, methods, modules)
                if misuse is not None:
                    return misuse
                calls += 1
    return calls


def _name_problem(node: ast.AST, name: str) -> str | None:
    """Why ``node`` may reach the method other than by ``x.method(...)``."""
    if _is_getattr_of(node, name):
        return f"reaches `{name}` through `{_text(node)}`"
    if isinstance(node, ast.Name) and node.id == name:
        return f"names `{name}` other than as a method of an instance"
    if isinstance(node, ast.Constant) and node.value == name:  # `setattr(m, "name", f)`
        return f"names `{name}` in a string"
    return None


def _call_problem(
    index: RepositoryIndex,
    facts: FileFacts,
    node: ast.Attribute,
    parents: dict[int, ast.AST],
    builder: MethodBuilder,
    methods: frozenset[str],
    modules: ModuleSpec,
) -> Unknown | None:
    """Why ``node`` (``x.method``) is not a call on an instance of the builder's class whose
    value is used only through ``methods``, at the place that decided."""
    call = parents.get(id(node))
    if not isinstance(call, ast.Call) or call.func is not node:
        return Unknown(Place(facts.path, node.lineno), f"uses `{_text(node)}` without calling it")
    kept = _Kept(index, facts, builder, modules)
    receiver = _receiver_problem(facts, node, parents, kept)
    if receiver is not None:
        return receiver
    # lr writes only in the method's own file: a target follows the value there alone
    # (``analysis/built_by_method.py``); a write in another file keeps the method's escape
    same_file = facts.path == builder.path
    return index._returned_use(facts, node, parents, methods, lr_write_loop if same_file else None)


PARAM_GROUPS = "param_groups"
LR_KEY = "lr"  # torch's key of the learning rate in a param group


def lr_write_loop(node: ast.Name, parents: dict[int, ast.AST]) -> bool:
    """``node`` is ``opt`` of ``for g in opt.param_groups: g["lr"] = value`` (one statement,
    no ``else``; ``value`` reads neither ``g`` nor a ``param_groups``): a write of the
    learning rate of every group, which a target may translate (NNX: the injected
    hyper-parameter of the method's optimizer)."""
    groups = parents.get(id(node))
    loop = parents.get(id(groups)) if groups is not None else None
    if not (
        isinstance(groups, ast.Attribute)
        and groups.attr == PARAM_GROUPS
        and isinstance(loop, ast.For)
        and loop.iter is groups
        and isinstance(loop.target, ast.Name)
        and not loop.orelse
        and len(loop.body) == 1
        and isinstance(loop.body[0], ast.Assign)
    ):
        return False
    assign = loop.body[0]
    target = assign.targets[0] if len(assign.targets) == 1 else None
    group = loop.target.id
    if not (
        isinstance(target, ast.Subscript)
        and isinstance(target.value, ast.Name)
        and target.value.id == group
        and isinstance(target.slice, ast.Constant)
        and target.slice.value == LR_KEY
    ):
        return False
    reads = ast.walk(assign.value)
    return not any(
        (isinstance(n, ast.Name) and n.id == group)
        or (isinstance(n, ast.Attribute) and n.attr == PARAM_GROUPS)
        for n in reads
    )


def _receiver_problem(
    facts: FileFacts, node: ast.Attribute, parents: dict[int, ast.AST], kept: _Kept
) -> Unknown | None:
    """None when the receiver of ``node`` is a name bound in the call's scope, before the
    call, only to instances of the builder's class (``_Kept``); else why not, at the binding
    (or the call) that decided."""
    receiver = node.value
    here = Place(facts.path, node.lineno)
    owner = kept.builder.owner
    if not isinstance(receiver, ast.Name):
        return Unknown(here, f"calls `{_text(node)}` on `{_text(receiver)}`, not a name")
    scope = _enclosing_scope(node, parents, facts.tree)
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)) and receiver.id in _params(scope):
        why = f"calls `{_text(node)}` on the parameter `{receiver.id}`, not proven a `{owner}`"
        return Unknown(here, why)
    bindings = _bindings(scope, receiver.id)
    if not bindings:
        return Unknown(here, f"calls `{_text(node)}` on `{receiver.id}`, not bound in its scope")
    declared = _declared_elsewhere(scope, receiver.id)
    if declared is not None:
        why = f"may rebind `{receiver.id}` (`global`/`nonlocal`), the receiver of `{_text(node)}`"
        return Unknown(Place(facts.path, declared.lineno), why)
    reaching = [b for b in bindings if not _runs_only_after(b, node, scope, parents)]
    for binding in sorted(reaching, key=lambda b: getattr(b, "lineno", 0)):
        if kept.instance(binding, receiver.id, node.attr):
            continue
        why = (
            f"binds `{receiver.id}` to `{_text(binding)}`, not proven a `{owner}` "
            f"(the receiver of `{_text(node)}(...)`, line {node.lineno})"
        )
        return Unknown(Place(facts.path, getattr(binding, "lineno", 0)), why)
    return None


def _declared_elsewhere(scope: ast.AST, name: str) -> ast.stmt | None:
    """A ``global name`` or ``nonlocal name`` in a function nested in ``scope``: it may rebind
    ``name`` where ``_bindings`` does not look."""
    for node in ast.walk(scope):
        if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            return node
    return None


def _runs_only_after(
    binding: ast.AST, call: ast.AST, scope: ast.AST, parents: dict[int, ast.AST]
) -> bool:
    """Whether ``binding`` can only run after ``call``: it sits in a later statement of
    ``scope``'s body than the one holding the call (the body runs once per call of the
    function, with fresh locals; ``global`` is checked apart)."""
    body = getattr(scope, "body", None)
    call_top, binding_top = _top(call, scope, parents), _top(binding, scope, parents)
    if not isinstance(body, list) or call_top is None or binding_top is None:
        return False
    order = {id(statement): i for i, statement in enumerate(body)}
    return order.get(id(call_top), -1) < order.get(id(binding_top), -1)


def _top(node: ast.AST, scope: ast.AST, parents: dict[int, ast.AST]) -> ast.AST | None:
    """The statement of ``scope``'s body holding ``node``."""
    while True:
        parent = parents.get(id(node))
        if parent is None:
            return None
        if parent is scope:
            return node
        node = parent


@dataclass(frozen=True)
class _Kept:
    """Which values of a receiver are an instance of the builder's class for a method call:
    ``X(...)`` (``_builds_an_instance``), or what the map's ``modules`` keep it through."""

    index: RepositoryIndex
    facts: FileFacts
    builder: MethodBuilder
    modules: ModuleSpec

    def instance(self, value: ast.AST, receiver: str, method: str) -> bool:
        """Whether ``value``, bound to ``receiver`` before the call of ``method`` on it,
        answers ``method`` with the builder's class's: ``X(...)``, ``receiver``/``X(...)``
        through self-returning methods, or inside a forwarding wrapper that does not answer
        ``method`` itself."""
        if _builds_an_instance(self.facts, value, self.builder):
            return True
        inner = self._passed_through(value, method)
        if inner is None:
            return False
        return (isinstance(inner, ast.Name) and inner.id == receiver) or self.instance(
            inner, receiver, method
        )

    def _passed_through(self, value: ast.AST, method: str) -> ast.AST | None:
        """``x`` of ``x.to(device)`` (a self method no file redefines) or of
        ``torch.compile(x)`` (a forwarding wrapper not answering ``method``)."""
        if not isinstance(value, ast.Call):
            return None
        func = value.func
        if isinstance(func, ast.Attribute) and func.attr in self.modules.self_methods:
            return None if self._redefined(func.attr) else func.value
        answered = self.modules.forwarding.get(_qualified(func, self.facts) or "")
        if answered is None or method in answered or method.startswith("_") or not value.args:
            return None
        return value.args[0]

    def _redefined(self, method: str) -> bool:
        """Whether a file of the repository may define a function named ``method``."""
        if not method.isascii():
            return True
        spelt = method.encode()
        return any(
            spelt in _defined_names(path, self.index.source(path))
            for path in self.index.with_word(method)
        )


def _builds_an_instance(facts: FileFacts, value: ast.AST, builder: MethodBuilder) -> bool:
    """Whether ``value`` is ``X(...)`` of the builder's class ``X``, or ``X.m(...)`` of a
    classmethod ``m`` of ``X`` that returns ``cls(...)`` or ``X(...)`` on every path."""
    if not isinstance(value, ast.Call):
        return False
    qualified = f"{builder.module}.{builder.owner}"
    called = _qualified(value.func, facts)
    if called == qualified:
        return True
    prefix, _, name = (called or "").rpartition(".")
    return prefix == qualified and _returns_cls(builder, name)


def _returns_cls(builder: MethodBuilder, name: str) -> bool:
    """Whether the class's own ``name`` is a ``@classmethod`` (defined once in its body, no
    other decorator) whose body ends in a ``return`` and every ``return`` is ``cls(...)`` or
    ``X(...)`` (directly, or a name bound once to it), with no ``yield``."""
    definitions = [
        node
        for node in _class_body(builder)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name
    ]
    if len(definitions) != 1 or not isinstance(definitions[0], ast.FunctionDef):
        return False
    method = definitions[0]
    decorators = method.decorator_list
    classmethod = len(decorators) == 1 and isinstance(decorators[0], ast.Name)
    if not classmethod or decorators[0].id != "classmethod" or not method.args.args:  # type: ignore[attr-defined]
        return False
    nodes = list(_own_nodes(method))
    if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in nodes):
        return False
    returns = [n for n in nodes if isinstance(n, ast.Return)]
    if not returns or not isinstance(method.body[-1], ast.Return):
        return False
    cls = method.args.args[0].arg
    qualified = f"{builder.module}.{builder.owner}"
    for node in returns:
        call = _returned_call(node, method)
        func = call.func if call is not None else None
        if not isinstance(func, ast.Name):
            return False
        if func.id != cls and _qualified(func, builder.facts) != qualified:
            return False
    return True


def _class_body(builder: MethodBuilder) -> list[ast.stmt]:
    owner = builder.facts.classes.get(builder.owner)
    return owner.body if owner is not None else []
