"""An optimizer a module holds over its own parameters (issue 13: the forward-forward example's
``class Layer(nn.Linear)``: ``self.opt = Adam(self.parameters(), ...)`` in ``__init__``,
``self.opt.step()`` in ``Layer.train``).

The step's ``self`` is then the model the optimizer trains: the object whose method runs the
step holds in ``self.opt`` the optimizer its own ``__init__`` built over its own parameters.
Proven when the stepped ``self.opt`` and the ``self`` of ``self.parameters()`` are each the
first parameter, bound once, of an undecorated method defined in the body of one class of this
file; the file stores ``.opt`` (any object's) once, that store being ``self.opt = ...`` in the
method building the optimizer; no class of the file derives from the class (a subclass adds
parameters after its base's ``__init__`` built the optimizer) and no other file names it.
Anything else is not proven.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import Scope

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.signature import code_of


@dataclass(frozen=True)
class OwnFacts:
    """What the proof reads of the file."""

    module: cst.Module
    parents: Mapping[cst.CSTNode, cst.CSTNode]
    scopes: Mapping[cst.CSTNode, Scope | None]
    attribute_writes: Callable[[str], int]  # places that may set `<anything>.<name>`
    mentioned_elsewhere: Callable[[str], bool] | None


def own_optimizer_problem(
    stepped: cst.Attribute, constructor: cst.Call, trained: cst.Name, facts: OwnFacts
) -> str | None:
    """Why ``stepped`` (``self.opt`` where the step runs) may hold an optimizer built over
    another object than the step's ``self`` (``constructor``: the one value stored in it,
    over ``trained.parameters()``); None: proven."""
    if not isinstance(stepped.value, cst.Name):
        return f"`{code_of(stepped).strip()}` is not an attribute of `self`"
    stepping = _method_self(stepped.value, facts)
    building = _method_self(trained, facts)
    if isinstance(stepping, str):
        return stepping
    if isinstance(building, str):
        return building
    if stepping[0] is not building[0]:
        return "the optimizer is built in a method of another class than the step's"
    klass = stepping[0]
    attribute = stepped.attr.value
    if facts.attribute_writes(attribute) != 1:
        return f"the file sets `.{attribute}` more than once"
    store = _store_of(constructor, facts.parents)
    if store is None or not _stores_self_attribute(store, trained.value, attribute):
        return (
            f"`{code_of(constructor).strip()}` is not stored by `{trained.value}.{attribute} = ...`"
        )
    if _enclosing_function(store, facts.parents) is not building[1]:
        return "the optimizer is stored in another method than the one building it"
    name = klass.name.value
    if any(
        isinstance(n, cst.ClassDef) and any(name in _names(b.value) for b in n.bases)
        for n in cst_walk.walk(facts.module)
    ):
        return f"a class of the file derives from `{name}`"
    if facts.mentioned_elsewhere is not None and facts.mentioned_elsewhere(name):
        return f"another file names `{name}`"
    return None


def _method_self(name: cst.Name, facts: OwnFacts) -> tuple[cst.ClassDef, cst.FunctionDef] | str:
    """The class and method whose first parameter ``name`` reads, bound once, or why not."""
    function = _enclosing_function(name, facts.parents)
    klass = facts.parents.get(facts.parents.get(function)) if function is not None else None  # type: ignore[arg-type]
    shown = f"`{name.value}`"
    if function is None or not isinstance(klass, cst.ClassDef):
        return f"{shown} is not in a method"
    if function.decorators or function.asynchronous:
        return f"{shown} is in a decorated or asynchronous method"
    params = function.params.params
    if not params or params[0].name.value != name.value:
        return f"{shown} is not the first parameter of its method"
    scope = facts.scopes.get(name)
    if scope is None or len(scope.assignments[name.value]) != 1:
        return f"{shown} is bound more than once in its method"
    if not any(s is function for s in klass.body.body):
        return f"{shown} is not in a method of its class"
    return klass, function


def _enclosing_function(
    node: cst.CSTNode, parents: Mapping[cst.CSTNode, cst.CSTNode]
) -> cst.FunctionDef | None:
    current = parents.get(node)
    while current is not None and not isinstance(current, (cst.FunctionDef, cst.Lambda)):
        current = parents.get(current)
    return current if isinstance(current, cst.FunctionDef) else None


def _store_of(
    constructor: cst.Call, parents: Mapping[cst.CSTNode, cst.CSTNode]
) -> cst.Assign | None:
    parent = parents.get(constructor)
    return parent if isinstance(parent, cst.Assign) and parent.value is constructor else None


def _stores_self_attribute(store: cst.Assign, self_name: str, attribute: str) -> bool:
    if len(store.targets) != 1:
        return False
    target = store.targets[0].target
    return (
        isinstance(target, cst.Attribute)
        and isinstance(target.value, cst.Name)
        and target.value.value == self_name
        and target.attr.value == attribute
    )


def _names(node: cst.CSTNode) -> set[str]:
    return {n.value for n in cst_walk.walk(node) if isinstance(n, cst.Name)}
