"""Schedulers whose ``step()`` calls can be counted where they run (issue 13, NNX).

After its ``k``-th ``step()`` torch's scheduler has set the optimizer's lr to the schedule's
value at ``k`` (``last_epoch=-1``: its construction is step 0), however the steps are spread
over loops, conditions and the functions that run the optimizer's updates. A target that
writes the lr where the scheduler steps can keep ``k`` itself, in a counter set to 0 next to
the scheduler's construction and incremented at each ``step()``, when every ``step()`` of that
scheduler object is one the translation sees and rewrites, and nothing else changes the lr:

- the scheduler and its optimizer are plain names, each bound once in one scope (no other
  assignment, ``global``/``nonlocal`` rebinding, ``del``, loop or ``with`` target); at module
  level, names no other file of the repository mentions (it could import them);
- every read of the scheduler's name is the receiver of its ``step()`` or of a method that
  only reads it (``sched.get_last_lr()``; not ``load_state_dict``, which changes the count):
  not handed to a call, stored, returned or aliased, where its
  steps would not be counted; its ``step()`` calls run in that same scope (a nested function
  would need the counter as ``nonlocal``), each a statement of its own (in any loop,
  ``while`` too: the counter counts the steps that run, however many iterations run);
- the optimizer's name is read as a method receiver, an attribute (``opt.param_groups`` only
  as ``opt.param_groups[0]["lr"]``: a write there changes what torch's scheduler multiplies),
  or handed to a function of this file that reads its parameter the same ways.

``count_problem`` answers with why not (naming the place), or None.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import NamedTuple

import libcst as cst
from libcst.metadata import Access, Assignment, GlobalScope, Scope

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.resolver import Resolver

PARAM_GROUPS = "param_groups"


@dataclass(frozen=True)
class CountFacts:
    """What ``count_problem`` reads of the file: its tree, names and the step methods."""

    module: cst.Module
    resolver: Resolver
    step_methods: Collection[str]
    reads: Collection[str]  # the scheduler's methods that read it (``get_last_lr``)
    place: Callable[[cst.CSTNode], str]  # ``file.py:line``
    # whether ``module`` uses ``groups`` (``opt.param_groups``) but to read ``groups[0]["lr"]``
    lr_written: Callable[[str], bool]
    # whether another file of the repository holds the identifier (it may import it)
    named_elsewhere: Callable[[str], bool]
    # every store or deletion of ``<anything>.<attribute>`` in the file; None when something
    # else may set it (``setattr``, ``vars``, ``__dict__``, a property of that name)
    attribute_stores: Callable[[str], list[cst.CSTNode] | None] = lambda attribute: None
    # ``file:line`` of a call of one of the functions in another file of the repository
    called_elsewhere: Callable[[Collection[str]], str | None] = lambda functions: None
    # ``file:line`` of a use of an attribute named one of these in another file of the
    # repository (``t.opt``, ``getattr(t, "opt")``: ``CrossFile.attribute_used_elsewhere``)
    used_elsewhere: Callable[[Collection[str]], str | None] = lambda attributes: None


class _Uses(cst.CSTVisitor):
    """Names read as a method's receiver (``x.m(...)``), as an attribute's value (``x.a``)
    and as a call's argument (``f(x)``), by node id."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: dict[int, tuple[str, cst.Call]] = {}
        self.attributes: set[int] = set()
        self.arguments: dict[int, tuple[cst.Call, cst.Arg]] = {}

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            self.methods[id(func.value)] = (func.attr.value, node)
        for argument in node.args:
            if isinstance(argument.value, cst.Name) and not argument.star:
                self.arguments[id(argument.value)] = (node, argument)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if isinstance(node.value, cst.Name):
            self.attributes.add(id(node.value))


class Step(NamedTuple):
    """A ``step()`` call of the scheduler and where it sits."""

    call: cst.Call
    alone: bool  # an expression statement alone on its line


class Counted(NamedTuple):
    """A scheduler: its construction call, the names it and its optimizer are bound to."""

    built: cst.Call
    scheduler: cst.BaseExpression | None
    optimizer: cst.BaseExpression | None


def count_problem(counted: Counted, steps: list[Step], facts: CountFacts) -> str | None:
    """Why the ``step()`` calls ``steps`` of the scheduler ``counted`` cannot be counted
    where they run (see the module); None when they can."""
    scheduler, optimizer = counted.scheduler, counted.optimizer
    if not isinstance(scheduler, cst.Name) or not isinstance(optimizer, cst.Name):
        return "the scheduler and its optimizer are not both plain names, each bound once"
    uses = _Uses()
    cst_walk.visit(facts.module, uses)
    scope = facts.resolver.scopes.get(scheduler)
    if scope is None or facts.resolver.scopes.get(optimizer) is not scope:
        return f"`{optimizer.value}` is not built in the scope that builds `{scheduler.value}`"
    problem = _one_binding(scheduler, scope, facts) or _one_binding(optimizer, scope, facts)
    if problem is not None:
        return problem
    for name in (scheduler, optimizer):
        if isinstance(scope, GlobalScope) and facts.named_elsewhere(name.value):
            return (
                f"`{name.value}` is a module-level name another file of the repository "
                "mentions (it may import it, and step it or change its lr there)"
            )
    stepped = {id(step.call) for step in steps}
    for access in _references(scheduler, scope, facts.resolver):
        problem = _scheduler_read(access, scope, stepped, uses, facts)
        if problem is not None:
            return problem
    problem = _step_problem(scheduler.value, steps, facts)
    if problem is not None:
        return problem
    for access in _references(optimizer, scope, facts.resolver):
        if uses.arguments.get(id(access.node), (None,))[0] is counted.built:
            continue  # the scheduler's own optimizer argument
        problem = _optimizer_read(access.node, optimizer.value, uses, facts, handed=True)
        if problem is not None:
            return problem
    return None


def _step_problem(name: str, steps: list[Step], facts: CountFacts) -> str | None:
    """Why one of ``steps`` cannot be rewritten as a counted write."""
    for step in steps:
        if not step.alone:
            return f"`{name}.step()` at {facts.place(step.call)} is not a statement of its own"
    return None


def _references(name: cst.Name, scope: Scope, resolver: Resolver) -> list[Access]:
    """The reads of the one assignment of ``name`` in ``scope`` (any nested scope too), in
    the order of the tree: the first problem found, named in the reason, is the same in every
    run (libcst keeps them in a set ordered by memory addresses)."""
    return resolver.in_tree_order(
        access for assignment in scope.assignments[name.value] for access in assignment.references
    )


def _one_binding(name: cst.Name, scope: Scope, facts: CountFacts) -> str | None:
    """Why ``name`` is not bound once in ``scope``, by the statement that binds ``name``."""
    for assignment in facts.resolver.in_tree_order(scope.assignments[name.value]):
        if not isinstance(assignment, Assignment) or assignment.node is not name:
            return f"`{name.value}` is bound again at {facts.place(assignment.node)}"
    return None


def _scheduler_read(
    access: Access, scope: Scope, stepped: set[int], uses: _Uses, facts: CountFacts
) -> str | None:
    """Why the read ``access`` of the scheduler's name keeps its count from being kept."""
    node = access.node
    name = node.value  # type: ignore[attr-defined]
    called = uses.methods.get(id(node))
    if called is None:
        return (
            f"`{name}` is used at {facts.place(node)} otherwise than by calling its methods "
            "(handed on, stored or aliased there, its steps would not be counted)"
        )
    method, call = called
    if method in facts.reads:
        return None
    if method not in facts.step_methods:
        return (
            f"`{name}.{method}()` at {facts.place(node)} may change its step count "
            "(`load_state_dict`) or hand it on"
        )
    if access.scope is not scope:
        return (
            f"`{name}` steps at {facts.place(node)}, in another function than the one that "
            "builds it"
        )
    if id(call) not in stepped:
        return f"`{name}.{method}(...)` at {facts.place(node)} is not a step of its own"
    return None


def _optimizer_read(
    node: cst.CSTNode, name: str, uses: _Uses, facts: CountFacts, *, handed: bool
) -> str | None:
    """Why a read of the optimizer (or of a parameter it is handed to, ``handed=False``)
    may change its lr otherwise than through the counted scheduler."""
    if id(node) in uses.methods:
        return None
    if id(node) in uses.attributes:
        groups = f"{name}.{PARAM_GROUPS}"
        if facts.lr_written(groups):
            return f"`{groups}` is used otherwise than to read `{groups}[0]['lr']`"
        return None
    argument = uses.arguments.get(id(node))
    parameter = facts.resolver.local_parameter(*argument) if argument and handed else None
    if parameter is None:
        return (
            f"`{name}` is used at {facts.place(node)} where its learning rate may be changed "
            "(handed to a call the translation does not follow, or stored)"
        )
    for read in facts.resolver.parameter_uses(parameter):
        problem = _optimizer_read(read, parameter.name.value, uses, facts, handed=False)
        if problem is not None:
            return problem
    return None
