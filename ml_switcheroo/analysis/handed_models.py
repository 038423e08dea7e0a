"""A trained model followed across calls, by name (probe s42 c32, c77, c78).

The gradient-skip rule (``gradient_skips``) reads the parts of a trained model by the model's
name in a file. Real code hands the model on: ``train_step(model, opt, x)`` runs
``net.heads[task](h)`` under the name ``net``; ``optimizer = build_optimizer(model)`` in the
loop's file builds the optimizer in a factory file, whose ``model`` is only a parameter. So
the names are spread, inside a file to a fixpoint and one call across files:

- a call of a function the file defines with a trained name as an argument: the function's
  parameter there is trained too;
- a function building an optimizer over a parameter (``def build_optimizer(model)``): what
  its callers in the file pass there is trained too;
- a plain copy (``self.model = model``, ``net = model``) is trained too; a class called with
  it hands it to its ``__init__``;
- either across files: a ``Handed`` says which function and which argument, and a linked file
  finds its names with ``received_names``.

Names, not values: a trained name is trained anywhere in its file (a conservative reading of
the rule, whose signals only make optimizers escape).
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from ml_switcheroo.analysis import ast_nodes
from ml_switcheroo.analysis.ast_nodes import dotted

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class Handed:
    """A trained model crossing a call of ``function`` (the callee's last name) at its
    argument ``index`` (positional, a method's ``self`` not counted) or ``keyword``: ``into``
    the function (its parameter holds the model) or out of its callers (their argument
    there is the model)."""

    function: str
    index: int | None
    keyword: str | None
    into: bool


def spread(
    tree: ast.Module,
    trained: Collection[str],
    handed: Collection[Handed] = (),
    builders: Collection[str] = (),
) -> tuple[frozenset[str], frozenset[Handed]]:
    """The names of ``tree`` holding a trained model: ``trained``, those ``handed`` gives
    (``received_names``) and those calls of the file's own functions spread them to (to a
    fixpoint); and the ``Handed`` of each call crossing to another file (a callee the file
    does not define, or one of ``builders``, the functions building the optimizers, whose
    callers pass the model: ``def build_optimizer(model)``). Only a builder's callers: the
    callers of any function with a parameter named like the model (``evaluate(model_ema)``
    for ``def evaluate(model)``) pass something else."""
    nodes = ast_nodes.walk(tree)
    defs = _definitions(tree)
    calls = [n for n in nodes if isinstance(n, ast.Call) and _callee(n) is not None]
    copies = [
        (dotted(n.targets[0]), dotted(n.value))
        for n in nodes
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and dotted(n.value) is not None
    ]
    names = set(trained) | received_names(tree, handed, defs, calls)
    out: set[Handed] = set()
    changed = True
    while changed:
        before = len(names)
        names.update(target for target, value in copies if value in names)  # `self.model = model`
        for call in calls:
            callee = _callee(call)
            for index, keyword, value in _arguments(call):
                if dotted(value) not in names:
                    continue
                if callee in defs:
                    names.update(_parameter(d, m, index, keyword) for d, m in defs[callee])
                else:
                    out.add(Handed(callee, index, keyword, True))  # type: ignore[arg-type]
        for name in builders:
            for function, method in defs.get(name, ()):
                for index, parameter in enumerate(_parameters(function, method)):
                    if parameter not in names:
                        continue
                    out.add(Handed(name, index, parameter, False))
                    names.update(_passed(calls, name, index, parameter))
        names.discard(None)  # type: ignore[arg-type]
        changed = len(names) != before
    return frozenset(names), frozenset(out)


def received_names(
    tree: ast.Module,
    handed: Collection[Handed],
    defs: dict[str, list[tuple[ast.AST, bool]]] | None = None,
    calls: list[ast.Call] | None = None,
) -> set[str]:
    """The names of ``tree`` a ``handed`` model arrives in: the parameter of a function it
    goes ``into`` (the file's ``def`` of that name), or the argument its callers pass."""
    if not handed:
        return set()
    defs = _definitions(tree) if defs is None else defs
    if calls is None:
        calls = [n for n in ast_nodes.walk(tree) if isinstance(n, ast.Call)]
    names: set[str] = set()
    for h in handed:
        if h.into:
            found = (_parameter(d, m, h.index, h.keyword) for d, m in defs.get(h.function, ()))
            names.update(n for n in found if n is not None)
        else:
            names.update(_passed(calls, h.function, h.index, h.keyword))
    return names


def _definitions(tree: ast.Module) -> dict[str, list[tuple[ast.AST, bool]]]:
    """Function name -> each ``def`` of it at any depth, with whether it is a method (its
    first parameter is the bound instance: a ``def`` in a class body, not a staticmethod); a
    class's name -> its ``__init__`` (``Trainer(model, opt)``)."""
    found: dict[str, list[tuple[ast.AST, bool]]] = {}
    for node in ast_nodes.walk(tree):
        body = node.body if isinstance(node, ast.ClassDef) else None
        for statement in body or ():
            if isinstance(statement, _FUNCTIONS):
                static = any(dotted(d) == "staticmethod" for d in statement.decorator_list)
                found.setdefault(statement.name, []).append((statement, not static))
                if statement.name == "__init__":
                    found.setdefault(node.name, []).append((statement, True))  # type: ignore[attr-defined]
        if isinstance(node, (ast.Module, *_FUNCTIONS)):
            for statement in node.body:
                if isinstance(statement, _FUNCTIONS):
                    found.setdefault(statement.name, []).append((statement, False))
    return found


def _parameters(function: ast.AST, method: bool) -> list[str]:
    """The names of ``function``'s positional parameters, the bound instance left out."""
    arguments = function.args  # type: ignore[attr-defined]
    names = [a.arg for a in (*arguments.posonlyargs, *arguments.args)]
    return names[1:] if method else names


def _parameter(
    function: ast.AST, method: bool, index: int | None, keyword: str | None
) -> str | None:
    """The parameter of ``function`` an argument at ``index`` or named ``keyword`` binds."""
    positional = _parameters(function, method)
    if keyword is not None:
        named = {*positional, *(a.arg for a in function.args.kwonlyargs)}  # type: ignore[attr-defined]
        return keyword if keyword in named else None
    return positional[index] if index is not None and index < len(positional) else None


def _callee(call: ast.Call) -> str | None:
    """The last name of what ``call`` calls (``train`` of ``engine.train(...)``)."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def _arguments(call: ast.Call) -> Iterator[tuple[int | None, str | None, ast.AST]]:
    """``(index, keyword, value)`` of each argument of ``call`` up to a ``*args``."""
    for index, value in enumerate(call.args):
        if isinstance(value, ast.Starred):
            break
        yield index, None, value
    for keyword in call.keywords:
        if keyword.arg is not None:
            yield None, keyword.arg, keyword.value


def _passed(
    calls: Collection[ast.Call], function: str, index: int | None, keyword: str | None
) -> Iterator[str]:
    """The dotted names calls of ``function`` pass as its parameter at ``index`` (positional,
    no ``*args`` before it) or ``keyword`` (by that name)."""
    for call in calls:
        if _callee(call) != function:
            continue
        for at, named, value in _arguments(call):
            if (index is not None and at == index) or (keyword is not None and named == keyword):
                name = dotted(value)
                if name is not None:
                    yield name
