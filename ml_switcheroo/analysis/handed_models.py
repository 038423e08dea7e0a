"""A trained model followed across calls, by name (probe s42 c32, c77, c78; probe s43).

The gradient-skip rule (``gradient_skips``) reads the parts of a trained model by the model's
name in a file. Real code hands the model on: ``train_step(model, opt, x)`` runs
``net.heads[task](h)`` under the name ``net``; ``optimizer = build_optimizer(model)`` in the
loop's file builds the optimizer in a factory file, whose ``model`` is only a parameter. So
the names are spread, inside a file to a fixpoint and across linked files
(``CrossFile.gradient_skip_elsewhere``, to a fixpoint too):

- a call of a function the file defines with a trained name as an argument (also packed in a
  ``*args``: every parameter then): the function's parameter there is trained too; a class
  called with it hands it to its ``__init__``; ``functools.partial(f, model)`` (the map's
  ``binding_calls``) is a call of ``f``;
- a function building an optimizer over a parameter (``def build_optimizer(model)``,
  ``def build(params)`` given ``model.parameters()``, a class whose ``__init__`` builds one):
  what its callers pass there is trained too;
- a copy names the same model both ways: ``self.model = model``, ``net, crit = model, loss``,
  ``self.model = model.to(device)`` (the map's ``modules.self_methods``), ``model =
  DDP(model_without_ddp)`` and ``torch.compile(model)`` (``modules.wrappers``), ``net =
  model.module`` (``parameters.wrapped_module``);
- a callee is read through the file's import aliases (``from engine import train as fit``)
  and its copies (``step = train``, ``step = torch.compile(train)``);
- across files a ``Handed`` says which function and which argument, and a linked file finds
  its names with ``spread(tree, (), handed)``.

Names, not values: a trained name is trained anywhere in its file (a conservative reading of
the rule, whose signals only make optimizers escape). Not followed: a model stored in a
dict or a list and read back (``state["model"]``), ``**kwargs`` built elsewhere.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from ml_switcheroo.analysis import ast_nodes
from ml_switcheroo.analysis.ast_nodes import dotted
from ml_switcheroo.spec.semantic_map import SemanticMap

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class Handed:
    """A trained model crossing a call of ``function`` (the callee's last name) at its
    argument ``index`` (positional, a method's ``self`` not counted) or ``keyword`` (both
    None: any parameter, the model was packed in ``*args``): ``into`` the function (its
    parameter holds the model) or out of its callers (their argument there is the model, or
    its ``parameters()``)."""

    function: str
    index: int | None
    keyword: str | None
    into: bool
    # the model is this attribute of the argument (`train(args)` with `args.model = model`),
    # or, with ``subclass``, the attribute of ``self`` in the classes based on ``function``
    attribute: str = ""
    subclass: bool = False


# Handed along with the others when the file handing a model on calls it whole (with a
# gradient): in the files it is handed to, a part run only cut is then no skip by itself
# (probe s43 f02: a `@torch.no_grad()` feature extractor of another file).
WHOLE_HANDED = Handed("", None, None, False)


@dataclass(frozen=True)
class HandFacts:
    """The map's names the spreading reads."""

    keeping_methods: frozenset[str] = frozenset()  # `model.to(d)` is `model`
    wrappers: frozenset[str] = frozenset()  # `DDP(model)`: a wrapper sharing its parameters
    wrapped: frozenset[str] = frozenset()  # `ddp.module` is the wrapped model
    binders: frozenset[str] = frozenset()  # `functools.partial(f, model)` calls `f`
    module_methods: frozenset[str] = frozenset()  # `model.parameters()` is `model`'s


def hand_facts(semantic_map: SemanticMap) -> HandFacts:
    """``HandFacts`` of the map."""
    return HandFacts(
        semantic_map.modules.self_methods,
        semantic_map.modules.wrappers,
        semantic_map.parameters.wrapped_module,
        semantic_map.binding_calls,
        semantic_map.parameters.module_methods,
    )


@dataclass(frozen=True)
class _Call:
    """A call as the spreading reads it: the callee's last name, its arguments."""

    callee: str
    args: list[ast.expr]
    keywords: list[ast.keyword]
    receiver: str | None = None  # `model` of `model.configure_optimizers()`


def spread(
    tree: ast.Module,
    trained: Collection[str],
    handed: Collection[Handed] = (),
    builders: Collection[str] = (),
    facts: HandFacts = HandFacts(),
    building: Collection[str] = (),
) -> tuple[dict[str, str], frozenset[Handed]]:
    """The names of ``tree`` holding a trained model, each with the name it was spread from
    (``trained``'s own, or ``""`` for those ``handed`` gives): ``trained``, those ``handed``
    gives and those copies and calls of the file's own functions spread them to (to a
    fixpoint); and the ``Handed`` of each call crossing to another file (a callee the file
    does not define, or one of ``builders``, the functions building the optimizers, whose
    callers pass the model: ``def build_optimizer(model)``; ``building``: the classes whose
    methods build them). Only a builder's callers: the
    callers of any function with a parameter named like the model (``evaluate(model_ema)``
    for ``def evaluate(model)``) pass something else."""
    nodes = ast_nodes.walk(tree)
    aliases = _import_aliases(nodes)
    defs, classes = _definitions(tree)
    copies = _copies(nodes, aliases, facts)
    functions = _function_copies(nodes, aliases, facts, defs)
    calls = _calls(nodes, aliases, facts, functions)
    names: dict[str, str] = {name: name for name in trained}
    bodies = [n for n in nodes if isinstance(n, ast.ClassDef)]
    for name in _received(handed, defs, calls, facts, bodies):
        names.setdefault(name, "")
    out: set[Handed] = set()
    changed = True
    while changed:
        before = len(names)
        for a, b in copies:  # (both ways: `model_without_ddp = model`)
            if a in names and b not in names:
                names[b] = names[a]
            elif b in names and a not in names:
                names[a] = names[b]
        for call in calls:
            for index, keyword, value in _arguments(call):
                for attribute, root in _held(value, call, names):
                    if call.callee in defs:
                        for d, m in defs[call.callee]:
                            for p in _parameters_at(d, m, index, keyword):
                                names.setdefault(_join(p, attribute), root)
                    else:
                        out.add(Handed(call.callee, index, keyword, True, attribute))
        for name in builders:
            for function, method in defs.get(name, ()):
                owner = classes.get(id(function))
                if owner is not None and owner not in building:
                    continue  # (another class's method of that name)
                called = [name, *([owner] if name == "__init__" and owner else [])]
                if owner is not None and "self" in names:  # `model.configure_optimizers()`
                    for call in calls:
                        if call.callee == name and call.receiver not in (None, "self"):
                            names.setdefault(call.receiver, names["self"])  # type: ignore[arg-type]
                for index, parameter in enumerate(_parameters(function, method)):
                    if parameter not in names:
                        continue
                    for callee in called:
                        out.add(Handed(callee, index, parameter, False))
                        for passed in _passed(calls, callee, index, parameter, facts):
                            names.setdefault(passed, names[parameter])
        changed = len(names) != before
    receiving = _receiving_classes(names, handed, calls) | set(building)
    out.update(_subclassed(tree, names, receiving))
    return names, frozenset(out)


def _held(value: ast.AST | None, call: _Call, names: dict[str, str]) -> Iterator[tuple[str, str]]:
    """``(attribute, root)`` of each trained model an argument holds: itself (``""``), or an
    attribute of it (``args`` holding ``args.model``); a ``*args`` (``value`` None): any
    trained name packed in it."""
    if value is None:
        root = next((names[n] for n in _names_in(call) if n in names), None)
        if root is not None:
            yield "", root
        return
    name = dotted(value)
    if name is None:
        return
    if name in names:
        yield "", names[name]
    prefix = name + "."
    for held, root in list(names.items()):
        if held.startswith(prefix):
            yield held[len(prefix) :], root


def _join(name: str, attribute: str) -> str:
    return f"{name}.{attribute}" if attribute else name


def _receiving_classes(
    names: dict[str, str], handed: Collection[Handed], calls: list[_Call]
) -> set[str]:
    """The classes of the file that hold the trained model: called with it here
    (``Trainer(model)``) or from a file handing it (``Handed`` into the class); not every
    class with a ``self.model`` (probe s43b FE4)."""
    found = {h.function for h in handed if h.into and not h.subclass}
    for call in calls:
        if any(True for value in _arguments(call) for _ in _held(value[2], call, names)):
            found.add(call.callee)
    return found


def _subclassed(
    tree: ast.Module, names: dict[str, str], receiving: Collection[str]
) -> Iterator[Handed]:
    """A ``Handed`` for each trained ``self.A`` of a class of the file holding the trained
    model (``receiving``): the classes based on it in other files read it too
    (``self.model.heads[t]`` in a trainer's subclass)."""
    for node in ast_nodes.walk(tree):
        if not isinstance(node, ast.ClassDef) or node.name not in receiving:
            continue
        for inner in ast_nodes.walk(node):
            name = dotted(inner) if isinstance(inner, ast.Attribute) else None
            if name is not None and name.startswith("self.") and name in names:
                yield Handed(node.name, None, None, True, name, subclass=True)


def _based_on(node: ast.ClassDef, name: str) -> bool:
    """The class ``node`` names ``name`` (its last name) among its bases."""
    return any((dotted(b) or "").rpartition(".")[2] == name for b in node.bases)


def _received(
    handed: Collection[Handed],
    defs: dict[str, list[tuple[ast.AST, bool]]],
    calls: list[_Call],
    facts: HandFacts,
    classes: Collection[ast.ClassDef] = (),
) -> set[str]:
    """The names of a file a ``handed`` model arrives in: the parameter of a function it
    goes ``into`` (the file's ``def`` of that name), or the argument its callers pass."""
    names: set[str] = set()
    for h in handed:
        if h == WHOLE_HANDED:
            continue
        if h.subclass:
            if any(_based_on(c, h.function) for c in classes):
                names.add(h.attribute)
        elif h.into:
            for d, m in defs.get(h.function, ()):
                names.update(
                    _join(p, h.attribute) for p in _parameters_at(d, m, h.index, h.keyword)
                )
        else:
            names.update(_passed(calls, h.function, h.index, h.keyword, facts))
    return names


def _import_aliases(nodes: list[ast.AST]) -> dict[str, str]:
    """Local name -> the dotted name it imports (``fit`` -> ``engine.train`` of ``from engine
    import train as fit``; relative imports keep their dots)."""
    found: dict[str, str] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = "." * node.level + (node.module or "")
            for alias in node.names:
                found[alias.asname or alias.name] = f"{source}.{alias.name}"
    return found


def _qualified(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The dotted name ``node`` spells, its first name read through ``aliases``."""
    name = dotted(node)
    if name is None:
        return None
    first, _, rest = name.partition(".")
    if first in aliases:
        return aliases[first] + ("." + rest if rest else "")
    return name


def _copies(
    nodes: list[ast.AST], aliases: dict[str, str], facts: HandFacts
) -> list[tuple[str, str]]:
    """``(target, value)`` of each statement making a name the same model as another."""
    found: list[tuple[str, str]] = []
    for node in nodes:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        pairs = [(target, value)]
        if (
            isinstance(target, ast.Tuple)
            and isinstance(value, ast.Tuple)
            and len(target.elts) == len(value.elts)
        ):
            pairs = list(zip(target.elts, value.elts, strict=True))
        if isinstance(value, ast.IfExp):  # `net = model.module if ddp else model`
            pairs = [(target, value.body), (target, value.orelse)]
        for t, v in pairs:
            name, model = dotted(t), _same_model(v, aliases, facts)
            if name is not None and model is not None:
                found.append((name, model))
            if name is not None and isinstance(v, ast.Call):  # `TrainState(model=model)`
                for keyword in v.keywords:
                    held = dotted(keyword.value) if keyword.arg is not None else None
                    if held is not None:
                        found.append((f"{name}.{keyword.arg}", held))
    return found


def _same_model(value: ast.AST, aliases: dict[str, str], facts: HandFacts) -> str | None:
    """The dotted name of the model ``value`` is: itself, ``model.to(d)``, ``DDP(model)``,
    ``ddp.module``; None when it is no such expression."""
    name = dotted(value)
    if name is not None:
        if isinstance(value, ast.Attribute) and value.attr in facts.wrapped:
            return dotted(value.value)
        return name
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    if isinstance(func, ast.Attribute) and func.attr in facts.keeping_methods:
        return dotted(func.value)
    if value.args and _qualified(func, aliases) in facts.wrappers:
        return dotted(value.args[0])
    return None


def _function_copies(
    nodes: list[ast.AST],
    aliases: dict[str, str],
    facts: HandFacts,
    defs: dict[str, list[tuple[ast.AST, bool]]],
) -> dict[str, str]:
    """Local name -> the function it is a copy of (``step = train``, ``step =
    torch.compile(train)``), by the function's last name."""
    found: dict[str, str] = {}
    for node in nodes:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        if not isinstance(target, ast.Name):
            continue
        if isinstance(value, ast.Call) and value.args:
            if _qualified(value.func, aliases) not in facts.wrappers:
                continue
            value = value.args[0]
        name = _qualified(value, aliases)
        last = name.rpartition(".")[2] if name is not None else None
        if last is not None and (last in defs or name != last):
            found[target.id] = last
    return found


def _calls(
    nodes: list[ast.AST],
    aliases: dict[str, str],
    facts: HandFacts,
    functions: dict[str, str],
) -> list[_Call]:
    """Every call of the file with a callee name: ``partial(f, model)`` as a call of ``f``;
    the callee's last name read through import aliases and function copies."""
    found: list[_Call] = []
    bases = _bases_of_super_calls(nodes)
    for node in nodes:
        if not isinstance(node, ast.Call):
            continue
        func, args = node.func, list(node.args)
        if args and _qualified(func, aliases) in facts.binders:
            func, args = args[0], args[1:]
        if id(node) in bases:  # `super().__init__(model)`: the bases' `__init__`
            callees = bases[id(node)]
        else:
            callee = _callee(func, aliases, functions)
            callees = [callee] if callee is not None else []
        receiver = dotted(func.value) if isinstance(func, ast.Attribute) else None
        found.extend(_Call(c, args, list(node.keywords), receiver) for c in callees)
    return found


def _bases_of_super_calls(nodes: list[ast.AST]) -> dict[int, list[str]]:
    """By ``id``, each ``super().m(...)`` call in a class's methods -> what it calls: the
    bases' last names for ``__init__`` (a class's name stands for its ``__init__``), else
    ``m`` itself (probe s43b FE3: not every ``__init__`` of the file)."""
    found: dict[int, list[str]] = {}
    for node in nodes:
        if not isinstance(node, ast.ClassDef):
            continue
        names = [(dotted(b) or "").rpartition(".")[2] for b in node.bases]
        for inner in ast_nodes.walk(node):
            func = inner.func if isinstance(inner, ast.Call) else None
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Call)
                and dotted(func.value.func) == "super"
            ):
                found[id(inner)] = (
                    [n for n in names if n] if func.attr == "__init__" else [func.attr]
                )
    return found


def _callee(func: ast.AST, aliases: dict[str, str], functions: dict[str, str]) -> str | None:
    """The last name of the function ``func`` names."""
    if isinstance(func, ast.Name) and func.id in functions:
        return functions[func.id]
    name = _qualified(func, aliases)
    if name is not None:
        return name.rpartition(".")[2]
    return func.attr if isinstance(func, ast.Attribute) else None


def _definitions(
    tree: ast.Module,
) -> tuple[dict[str, list[tuple[ast.AST, bool]]], dict[int, str]]:
    """Function name -> each ``def`` of it at any depth, with whether it is a method (its
    first parameter is the bound instance: a ``def`` in a class body, not a staticmethod); a
    class's name -> its ``__init__`` (``Trainer(model, opt)``); and, by ``id``, the class of
    each method."""
    found: dict[str, list[tuple[ast.AST, bool]]] = {}
    classes: dict[int, str] = {}
    for node in ast_nodes.walk(tree):
        body = node.body if isinstance(node, ast.ClassDef) else None
        for statement in body or ():
            if isinstance(statement, _FUNCTIONS):
                static = any(dotted(d) == "staticmethod" for d in statement.decorator_list)
                found.setdefault(statement.name, []).append((statement, not static))
                classes[id(statement)] = node.name  # type: ignore[attr-defined]
                if statement.name == "__init__":
                    found.setdefault(node.name, []).append((statement, True))  # type: ignore[attr-defined]
        if isinstance(node, (ast.Module, *_FUNCTIONS)):
            for statement in node.body:
                if isinstance(statement, _FUNCTIONS):
                    found.setdefault(statement.name, []).append((statement, False))
    return found, classes


def _parameters(function: ast.AST, method: bool) -> list[str]:
    """The names of ``function``'s positional parameters, the bound instance left out."""
    arguments = function.args  # type: ignore[attr-defined]
    names = [a.arg for a in (*arguments.posonlyargs, *arguments.args)]
    return names[1:] if method else names


def _parameters_at(
    function: ast.AST, method: bool, index: int | None, keyword: str | None
) -> list[str]:
    """The parameters of ``function`` an argument at ``index`` or named ``keyword`` may bind
    (both None: every positional parameter and ``*args``)."""
    positional = _parameters(function, method)
    arguments = function.args  # type: ignore[attr-defined]
    if index is None and keyword is None:  # (a `*args` pack: never a keyword-only one)
        rest = [arguments.vararg.arg] if arguments.vararg is not None else []
        return [*positional, *rest]
    if keyword is not None:
        named = {*positional, *(a.arg for a in arguments.kwonlyargs)}
        if keyword in named:
            return [keyword]
        return [arguments.kwarg.arg] if arguments.kwarg is not None else []
    if index is not None and index < len(positional):
        return [positional[index]]
    return [arguments.vararg.arg] if arguments.vararg is not None else []


def _arguments(call: _Call) -> Iterator[tuple[int | None, str | None, ast.AST | None]]:
    """``(index, keyword, value)`` of each argument of ``call``; a ``*args`` (and what
    follows it) once, as ``(None, None, None)``."""
    for index, value in enumerate(call.args):
        if isinstance(value, ast.Starred):
            yield None, None, None
            break
        yield index, None, value
    for keyword in call.keywords:
        if keyword.arg is not None:
            yield None, keyword.arg, keyword.value


def _names_in(call: _Call) -> Iterator[str]:
    """The dotted names inside the starred arguments of ``call``."""
    for value in call.args:
        if isinstance(value, ast.Starred):
            for node in ast.walk(value):
                name = dotted(node)
                if name is not None:
                    yield name


def _passed(
    calls: Collection[_Call],
    function: str,
    index: int | None,
    keyword: str | None,
    facts: HandFacts,
) -> Iterator[str]:
    """The dotted names of the models calls of ``function`` pass as its parameter at
    ``index`` (positional, no ``*args`` before it) or ``keyword`` (by that name): the
    argument itself, or ``X`` of ``X.parameters()``."""
    for call in calls:
        if call.callee != function:
            continue
        for at, named, value in _arguments(call):
            if value is None:
                continue
            if (index is not None and at == index) or (keyword is not None and named == keyword):
                if (
                    isinstance(value, ast.Call)
                    and isinstance(value.func, ast.Attribute)
                    and value.func.attr in facts.module_methods
                ):
                    value = value.func.value
                name = dotted(value)
                if name is not None:
                    yield name
