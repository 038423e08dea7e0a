"""Scheduler factories: a function or method of this file that receives the optimizer as a
parameter and returns the scheduler it builds on it.

``def get_lr_scheduler(optimizer, warmup, total): return LambdaLR(optimizer, ...)`` called
once as ``sched = get_lr_scheduler(opt, 100, 1000)`` next to ``opt = AdamW(...)``: the
schedule folds into ``opt``'s constructor with the factory's parameters replaced by what the
caller passes (``Substitution``), and the factory's own scheduler call becomes the same schedule
in the factory's terms. The planner (``plan.py``, ``Planner._factory_schedule``) decides when
that is certain; this module holds the substitution, shared with the rendering hooks.

Followed only when: the factory is a builder of the file (``builders.py``: one definition,
one call, one ``return`` at its end, no other file naming it); the optimizer it is passed is
one translated constructor, and the call comes after it in the same block; the optimizer
parameter is used only as the scheduler's optimizer; every name the scheduler's arguments read
is a parameter of the factory bound once (or a builtin not shadowed at the call); what the
call passes has no calls, no names rebound after the constructor and no attribute assigned in
the file; the caller steps the scheduler once per update or every k updates; the optimizer's
learning rate is a literal (the factory's own copy of the schedule starts from it).

A factory of another file of the repository (issue 12): ``sched = build_scheduler(opt, 300)``
with ``from pkg.sched import build_scheduler`` whose whole body is ``return <map scheduler>(
optimizer, ...)`` (``repository.factory_body``): the caller's call is wired to the scheduler's
entry and stands for the factory's scheduler call with the caller's arguments in the
parameters' places (``FactoryCall.scheduler``, ``scheduler_call``); it then folds as a
scheduler built in the caller's block (its statement becomes the schedule and moves before the
optimizer; every k updates and ``--steps-per-epoch`` as there). The factory's file is not
changed (its torch scheduler stays for callers that do not fold), so each file's output depends
only on the other's original ``ast``, whichever file libcst's runner writes first.

A factory of this file may combine schedulers (litgpt's ``get_lr_scheduler``: ``scheduler1 =
LambdaLR(optimizer, ...)``, ``scheduler2 = CosineAnnealingLR(optimizer, ...)``, ``return
SequentialLR(optimizer, [scheduler1, scheduler2], ...)``): each combined scheduler is a name
bound once in the block of the ``return`` and read only in the returned call, or a call nested
in it (``FactoryCall.components``); the inlined schedule renders each in its place, its own
names substituted too (``Planner._factory_members``).

NOT DONE YET (issue 12): a factory of another file that combines several schedulers, a
combined scheduler that itself combines others, a learning rate that is not a literal in the
same-file case (``lr=cfg.lr``: the factory cannot see it), per-epoch stepping with
``--steps-per-epoch`` in the same-file case (its expression names the caller's values), a
factory called once per run through a loop of another function. Across files: a factory body
with more than its ``return`` (``sched = LambdaLR(...); return sched``, helper functions,
``math`` or other module globals: escape), an optimizer passed as ``self.x`` (only a name bound
to the map's constructors is followed), a method factory of another file's class, and the
factory's own ``return`` rendered as the schedule (it stays torch).
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field

import libcst as cst

from ml_switcheroo.analysis import cst_walk

BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass(frozen=True, eq=False)
class FactoryCall:
    """The one call of a scheduler factory and what its scheduler's names become there."""

    call: cst.Call  # the caller's `get_lr_scheduler(opt, 100, 1000)`
    where: str  # `file:line` of that call
    # id(a Name of the factory's scheduler call) -> the caller's expression for its parameter
    substitutions: dict[int, cst.BaseExpression] = field(default_factory=dict)
    hints: dict[int, str] = field(default_factory=dict)  # id(caller's expression) -> parameter
    inline: bool = False  # rendering the copy at the caller's constructor (not the factory's)
    # a factory of another file (issue 12): its scheduler call, parsed from that file; the
    # caller's call stands for it (``scheduler_call``)
    scheduler: cst.Call | None = None
    # id(a Name or a nested call of the factory's returned scheduler call) -> the call of the
    # scheduler it combines (``scheduler1 = LambdaLR(optimizer, ...)`` in ``SequentialLR(
    # optimizer, [scheduler1, scheduler2], ...)``): the inlined schedule renders it in its place
    components: dict[int, cst.Call] = field(default_factory=dict)

    def arguments(self) -> list[tuple[str, cst.BaseExpression]]:
        """The caller's expressions that the inlined schedule evaluates, once each."""
        seen: dict[int, cst.BaseExpression] = {}
        for value in self.substitutions.values():
            seen.setdefault(id(value), value)
        return [(self.hints.get(key, "factory_argument"), value) for key, value in seen.items()]


def scheduler_call(node: cst.Call, foreign: FactoryCall | None) -> cst.Call:
    """The scheduler call ``node`` means: itself, or (the call of a factory of another file)
    the factory's scheduler call with its parameters replaced by the caller's arguments."""
    if foreign is None or foreign.scheduler is None or node is not foreign.call:
        return node
    return substituted(foreign.scheduler, foreign)


def substituted(call: cst.Call, factory: FactoryCall) -> cst.Call:
    """``call`` with every Name the factory's parameters bind replaced by the caller's
    expression (the nodes themselves, so that hygiene knows them)."""
    replaced = call.visit(_Substitute(factory.substitutions))
    assert isinstance(replaced, cst.Call)
    return replaced


class _Substitute(cst.CSTTransformer):
    def __init__(self, substitutions: dict[int, cst.BaseExpression]) -> None:
        super().__init__()
        self.substitutions = substitutions

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:  # type: ignore[override]
        return self.substitutions.get(id(original_node), updated_node)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:  # type: ignore[override]
        value = self.substitutions.get(id(original_node))
        if value is None:
            return updated_node
        return (
            value.with_changes(
                lpar=[*original_node.lpar, cst.LeftParen(), *value.lpar],
                rpar=[*value.rpar, cst.RightParen(), *original_node.rpar],
            )
            if _needs_parentheses(value)
            else value
        )


def _needs_parentheses(value: cst.BaseExpression) -> bool:
    """A caller expression that is not atomic keeps its meaning inside ``a * (b + c)``."""
    return (
        not isinstance(
            value,
            (
                cst.Name,
                cst.Attribute,
                cst.Integer,
                cst.Float,
                cst.SimpleString,
                cst.Call,
                cst.Subscript,
            ),
        )
        and not value.lpar
    )


def read_names(node: cst.CSTNode) -> list[cst.Name]:
    """Names ``node`` reads as variables (not attribute names, keywords or lambda
    parameters' own Name nodes)."""
    found: list[cst.Name] = []

    class _Names(cst.CSTVisitor):
        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            cst_walk.visit(attribute.value, self)
            return False

        def visit_Arg(self, arg: cst.Arg) -> bool:
            cst_walk.visit(arg.value, self)
            return False

        def visit_Param(self, param: cst.Param) -> bool:
            if param.default is not None:
                cst_walk.visit(param.default, self)
            return False

        def visit_Name(self, name: cst.Name) -> None:
            found.append(name)

    cst_walk.visit(node, _Names())
    return found


def lambda_parameters(node: cst.CSTNode) -> set[str]:
    """The names of every lambda parameter inside ``node``."""
    found: set[str] = set()

    class _Params(cst.CSTVisitor):
        def visit_Param(self, param: cst.Param) -> None:
            found.add(param.name.value)

    cst_walk.visit(node, _Params())
    return found


def every_param(params: cst.Parameters) -> list[cst.Param]:
    """Every parameter of ``params``: positional-only, positional, keyword-only, ``*a``, ``**k``."""
    return [
        *params.posonly_params,
        *params.params,
        *params.kwonly_params,
        *(p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)),
    ]


def parameter_of(binding: cst.CSTNode, function: cst.FunctionDef) -> cst.Param | None:
    """The parameter of ``function`` that ``binding`` (a Param or its Name) is."""
    for param in every_param(function.params):
        if binding is param or binding is param.name:
            return param
    return None


def returns_of(function: cst.FunctionDef) -> list[cst.Return]:
    """The ``return`` statements of ``function`` itself (not of nested functions or lambdas)."""
    found: list[cst.Return] = []

    class _Returns(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is function

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            return False

        def visit_Return(self, node: cst.Return) -> None:
            found.append(node)

    cst_walk.visit(function, _Returns())
    return found


def bound_arguments(
    call: cst.Call, params: tuple[str, ...]
) -> dict[str, cst.BaseExpression] | None:
    """Parameter name -> the argument ``call`` binds to it (None with star arguments, an
    unknown keyword or too many positional arguments)."""
    found: dict[str, cst.BaseExpression] = {}
    positional = [a for a in call.args if a.keyword is None]
    if any(a.star for a in call.args) or len(positional) > len(params):
        return None
    for param, arg in zip(params, positional, strict=False):
        found[param] = arg.value
    for arg in call.args:
        if arg.keyword is not None:
            if arg.keyword.value not in params or arg.keyword.value in found:
                return None
            found[arg.keyword.value] = arg.value
    return found
