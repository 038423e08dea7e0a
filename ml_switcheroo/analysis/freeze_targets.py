"""Which models a freeze may touch (s24g, issue 12).

A freeze in a method of a module-level class C on the instance itself
(``for p in self.parameters(): p.requires_grad = False``, ``self.requires_grad_(False)``)
touches only the parameters an instance of C holds (``self_frozen_class``). An optimizer over
``m.parameters()`` of a model ``m = T()`` built in its own function from a class T of the
repository, with constant arguments, and used there only as ``m(...)`` or through the module's
methods that hand none of its parameters on (``fresh_model_class``), trains no instance of C
when T's code names no function of the repository and no class but its own file's classes
of that kind, none of them C (``may_hold``). Anything else: unknown, the freeze counts.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from ml_switcheroo.analysis import ast_nodes

# names that find code by a computed name: a class whose code calls one may build anything
_DYNAMIC = frozenset(
    {"globals", "vars", "eval", "exec", "getattr", "__import__", "import_module", "locals"}
)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


@dataclass(frozen=True)
class ModelUses:
    """What the map says of a model's methods (``modules.self_methods`` and
    ``parameters.detached_methods``, ``module_methods``, ``freeze_methods`` /
    ``freeze_attributes``)."""

    self_methods: frozenset[str]  # `m.to(d)` returns `m`
    detached_methods: frozenset[str]  # `m.state_dict()` holds none of its parameters
    module_methods: frozenset[str]  # `m.parameters()`
    arguments: tuple[str, ...]  # the optimizer's argument holding the parameters
    freeze_methods: frozenset[str]  # `x.requires_grad_(v)`
    freeze_attributes: frozenset[str]  # `x.requires_grad = v`


def self_frozen_class(tree: ast.Module, node: ast.AST, uses: ModelUses) -> str | None:
    """The name of the module-level class C when ``node`` (a freeze) sits directly in the
    body of a method of C and freezes the instance itself: ``s(.a)*.requires_grad_(v)``,
    ``s(.a)*.requires_grad = v`` or either on ``p`` of a ``for`` of that method over
    ``s(.a)*.parameters()`` (``for n, p in ....named_parameters()``), ``s`` the method's first
    parameter, never rebound in it. None otherwise."""
    for owner in (s for s in tree.body if isinstance(s, ast.ClassDef)):
        for method in owner.body:
            if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if not any(n is node for n in _own_nodes(method)):
                continue
            names = [a.arg for a in (*method.args.posonlyargs, *method.args.args)]
            if not names or method.decorator_list or _rebinds(method, names[0]):
                return None
            target = _frozen_object(node, uses)
            if target is None:
                return None
            if _on_instance(target, names[0]) or _iterates_instance(method, target, names[0], uses):
                return owner.name
            return None
    return None


def _frozen_object(node: ast.AST, uses: ModelUses) -> ast.expr | None:
    """``x`` of ``x.requires_grad_(v)`` or ``x.requires_grad = v`` (one target)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.value if node.func.attr in uses.freeze_methods else None
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        if isinstance(target, ast.Attribute) and target.attr in uses.freeze_attributes:
            return target.value
    return None


def _on_instance(value: ast.expr, own: str) -> bool:
    """``s`` or ``s.a.b`` (attributes only)."""
    while isinstance(value, ast.Attribute):
        value = value.value
    return isinstance(value, ast.Name) and value.id == own


def _iterates_instance(
    method: ast.FunctionDef | ast.AsyncFunctionDef, target: ast.expr, own: str, uses: ModelUses
) -> bool:
    """``target`` is ``p``, bound only by ``for`` loops of ``method`` over
    ``s(.a)*.parameters()`` (``p`` the loop variable, or ``n, p`` of ``named_parameters()``)."""
    if not isinstance(target, ast.Name):
        return False
    binders = [n for n in _own_nodes(method) if _binds_name(n, target.id)]
    loops = [n for n in binders if isinstance(n, ast.For)]
    in_targets = {id(n) for loop in loops for n in ast.walk(loop.target)}
    if not loops or len(loops) != len([n for n in binders if id(n) not in in_targets]):
        return False
    return all(_over_own_parameters(loop, target.id, own, uses) for loop in loops)


def _over_own_parameters(loop: ast.For, name: str, own: str, uses: ModelUses) -> bool:
    iterated = loop.iter
    if not (
        isinstance(iterated, ast.Call)
        and isinstance(iterated.func, ast.Attribute)
        and iterated.func.attr in uses.module_methods
        and not iterated.args
        and _on_instance(iterated.func.value, own)
    ):
        return False
    target = loop.target
    if isinstance(target, ast.Name):
        return target.id == name and iterated.func.attr == "parameters"
    return (
        isinstance(target, ast.Tuple)
        and len(target.elts) == 2
        and isinstance(target.elts[1], ast.Name)
        and target.elts[1].id == name
        and iterated.func.attr == "named_parameters"
    )


def _binds_name(node: ast.AST, name: str) -> bool:
    """Whether ``node`` (a statement or expression of a function) may bind ``name``."""
    if isinstance(node, ast.For):
        return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node.target))
    if isinstance(node, ast.Name):
        return node.id == name and not isinstance(node.ctx, ast.Load)
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return name in node.names
    if isinstance(node, ast.arg):
        return node.arg == name
    if isinstance(node, ast.alias):
        return (node.asname or node.name.partition(".")[0]) == name
    if isinstance(node, ast.ExceptHandler):
        return node.name == name
    return False


def _rebinds(method: ast.FunctionDef | ast.AsyncFunctionDef, own: str) -> bool:
    """Whether ``method`` binds its first parameter again (or a nested scope names it)."""
    return any(
        _binds_name(n, own) and not isinstance(n, ast.arg) for n in _own_nodes(method)
    ) or any(
        isinstance(n, ast.Name) and n.id == own
        for inner in _inner_scopes(method)
        for n in ast.walk(inner)
    )


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``scope``'s body outside nested functions, classes and lambdas."""
    return ast_nodes.own_nodes(scope, _SCOPES)


def _inner_scopes(scope: ast.AST) -> Iterator[ast.AST]:
    return (n for n in _own_nodes(scope) if isinstance(n, _SCOPES))


def fresh_model_class(
    tree: ast.Module,
    constructor: ast.Call,
    uses: ModelUses,
    qualified: Callable[[str], str | None],
) -> str | None:
    """The qualified name of T when the optimizer ``constructor`` takes ``m.parameters()``
    of ``m`` bound once in the function holding it, to ``T(<constants>)`` (or that followed
    by ``self_methods``: ``.to(d)``), and every other use of ``m`` there is ``m(...)``, a
    ``detached_methods`` call or a ``self_methods`` call whose value is dropped or called
    on with those (``_safe_use``); ``qualified``: the dotted name a written name spells.
    None otherwise (also at module level: another file may reach ``m``)."""
    argument = _parameters_argument(constructor, uses)
    if not (
        isinstance(argument, ast.Call)
        and not argument.args
        and not argument.keywords
        and isinstance(argument.func, ast.Attribute)
        and argument.func.attr in uses.module_methods
        and isinstance(argument.func.value, ast.Name)
    ):
        return None
    name = argument.func.value.id
    scope = _enclosing_function(tree, constructor)
    if scope is None or any(
        isinstance(n, ast.Name) and n.id == name for s in _inner_scopes(scope) for n in ast.walk(s)
    ):
        return None
    binders = [n for n in _own_nodes(scope) if _binds_name(n, name)]
    if len(binders) != 1:
        return None
    bound = _bound_class(scope, binders[0], uses)
    if bound is None:
        return None
    parents = {id(c): p for p in _own_nodes(scope) for c in ast.iter_child_nodes(p)}
    loads = [n for n in _own_nodes(scope) if isinstance(n, ast.Name) and n.id == name]
    for load in loads:
        if load is binders[0] or load is argument.func.value:
            continue
        if not _safe_use(load, parents, uses):
            return None
    return qualified(bound)


def _parameters_argument(call: ast.Call, uses: ModelUses) -> ast.expr | None:
    named = [k.value for k in call.keywords if k.arg in uses.arguments]
    return named[0] if named else (call.args[0] if call.args else None)


def _enclosing_function(
    tree: ast.Module, node: ast.AST
) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The innermost function whose own body holds ``node``."""
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
            n is node for n in _own_nodes(function)
        ):
            return function
    return None


def _bound_class(scope: ast.AST, binder: ast.AST, uses: ModelUses) -> str | None:
    """``T`` as written when ``binder`` is the target of ``m = T(<constants>)[.to(d)...]``."""
    assign = next(
        (
            n
            for n in _own_nodes(scope)
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and n.targets[0] is binder
        ),
        None,
    )
    if assign is None:
        return None
    value = assign.value
    while (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in uses.self_methods
    ):
        value = value.func.value
    if not isinstance(value, ast.Call) or not isinstance(value.func, (ast.Name, ast.Attribute)):
        return None
    arguments = [*value.args, *(k.value for k in value.keywords)]
    if any(not isinstance(a, ast.Constant) for a in arguments) or any(
        k.arg is None for k in value.keywords
    ):
        return None
    return ast.unparse(value.func)


def _safe_use(load: ast.Name, parents: dict[int, ast.AST], uses: ModelUses) -> bool:
    """``m(...)``, ``m.<detached>(...)``, or ``m.<self method>(...)`` whose value is dropped
    (an expression statement) or itself so used."""
    parent = parents.get(id(load))
    if isinstance(parent, ast.Call) and parent.func is load:
        return True
    node: ast.AST = load
    while True:
        attribute = parents.get(id(node))
        call = parents.get(id(attribute)) if attribute is not None else None
        if not (
            isinstance(attribute, ast.Attribute)
            and isinstance(call, ast.Call)
            and call.func is attribute
        ):
            return False
        if attribute.attr in uses.detached_methods:
            return True
        if attribute.attr not in uses.self_methods:
            return False
        if isinstance(parents.get(id(call)), ast.Expr):
            return True
        node = call


def may_hold(
    tree: ast.Module,
    model: str,
    frozen: str,
    external: Callable[[str], bool],
) -> bool:
    """Whether an instance of the module-level class ``model`` of ``tree`` may be or hold an
    instance of the class ``frozen`` of the same file (None: of another file): False when
    the code of ``model`` and of the classes of the file it names (to a fixpoint) names
    only those classes, ``external`` names (an import of no repository module, a builtin)
    and its own locals, never ``frozen`` nor a name found by computing it (``_DYNAMIC``)."""
    classes = {s.name: s for s in tree.body if isinstance(s, ast.ClassDef)}
    others = _module_names(tree) - set(classes)
    seen: set[str] = set()
    frontier = [model]
    while frontier:
        name = frontier.pop()
        if name == frozen or name not in classes:
            return True
        seen.add(name)
        for word in _names_in(classes[name]):
            if word in _DYNAMIC:
                return True
            if word in classes:
                if word not in seen:
                    frontier.append(word)
            elif word in others and not external(word):
                return True
    return False


def _module_names(tree: ast.Module) -> set[str]:
    """The names bound at module level (imports, functions, classes, assignments)."""
    found: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            found.update((a.asname or a.name).partition(".")[0] for a in statement.names)
        else:
            found.update(
                n.id
                for n in ast.walk(statement)
                if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
            )
    return found


def _names_in(owner: ast.ClassDef) -> Collection[str]:
    """Every name and attribute name the class's code (bases, decorators, body) spells."""
    found: set[str] = set()
    for node in ast.walk(owner):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in _DYNAMIC:
            found.add(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found.add("__import__")  # a name imported in the class: not read here
    return found
