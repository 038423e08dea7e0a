"""Conditions on the update count under which a scheduler steps (issue 12, deliverable 2).

``if step % k == 0: sched.step()`` after ``opt.step()`` advances the schedule every ``k``
updates; ``if step < warmup: warm.step() else: main.step()`` switches schedules at an update.
This module reads such conditions (pure syntax); ``analysis/plan.py`` proves that the counter
is the update count and decides.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import NotALiteral, Signature, literal_value


class EveryK(NamedTuple):
    """``(counter + offset) % k == 0``, as written."""

    counter: cst.Name
    offset: int  # the literal added to the counter (``(step + 1) % k``), else 0
    k: cst.BaseExpression  # an integer literal or a name (the planner resolves it)


class Counter(NamedTuple):
    """The update counter: its first value and where it is incremented relative to a check."""

    start: int
    incremented_before_check: bool


def integer(node: cst.BaseExpression) -> int | None:
    """The value of a (possibly negated, parenthesized) decimal integer literal, or None."""
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        inner = integer(node.expression)
        return -inner if inner is not None else None
    if isinstance(node, cst.Integer) and node.value.isdigit():
        return int(node.value)
    return None


def every_k(test: cst.BaseExpression) -> EveryK | None:
    """``c % k == 0`` or ``(c + a) % k == 0`` (``c`` a name; ``a`` an integer literal, ``k``
    one or a name), also written ``not c % k`` (the same test on the integer counter the
    planner proves), or None for any other condition."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return _modulo(test.expression)
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return None
    (comparison,) = test.comparisons
    if not isinstance(comparison.operator, cst.Equal) or integer(comparison.comparator) != 0:
        return None
    return _modulo(test.left)


def _modulo(modulo: cst.BaseExpression) -> EveryK | None:
    """``c % k`` or ``(c + a) % k``, as in :func:`every_k`."""
    if not isinstance(modulo, cst.BinaryOperation) or not isinstance(modulo.operator, cst.Modulo):
        return None
    if integer(modulo.right) is None and not isinstance(modulo.right, cst.Name):
        return None
    counted = _counter_plus_offset(modulo.left)
    if counted is None:
        return None
    return EveryK(counted[0], counted[1], modulo.right)


def is_modulo_test(test: cst.BaseExpression) -> bool:
    """Whether ``test`` computes a ``%`` anywhere (a stepping frequency, maybe not literal)."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
            nonlocal found
            found = found or isinstance(node.operator, cst.Modulo)

    cst_walk.visit(test, _Find())
    return found


def _counter_plus_offset(node: cst.BaseExpression) -> tuple[cst.Name, int] | None:
    if isinstance(node, cst.Name):
        return node, 0
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        offset = integer(node.right)
        if isinstance(node.left, cst.Name) and offset is not None:
            return node.left, offset
    return None


def increment(statement: cst.BaseStatement, name: str) -> bool:
    """Whether ``statement`` is exactly ``name += 1`` or ``name = name + 1`` (one small
    statement on its line)."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target, value = small.targets[0].target, small.value
        return (
            isinstance(target, cst.Name)
            and target.value == name
            and isinstance(value, cst.BinaryOperation)
            and isinstance(value.operator, cst.Add)
            and isinstance(value.left, cst.Name)
            and value.left.value == name
            and integer(value.right) == 1
        )
    return (
        isinstance(small, cst.AugAssign)
        and isinstance(small.operator, cst.AddAssign)
        and isinstance(small.target, cst.Name)
        and small.target.value == name
        and integer(small.value) == 1
    )


def enumerated_start(loop: cst.For, name: str) -> int | None:
    """``s`` when ``loop`` is ``for name, x in enumerate(it[, s]):`` (``s`` an integer literal,
    0 when left out), else None."""
    target, iterated = loop.target, loop.iter
    if not isinstance(target, (cst.Tuple, cst.List)) or len(target.elements) != 2:
        return None
    index = target.elements[0].value
    if not isinstance(index, cst.Name) or index.value != name:
        return None
    if not isinstance(iterated, cst.Call) or not isinstance(iterated.func, cst.Name):
        return None
    if iterated.func.value != "enumerate" or any(a.star for a in iterated.args):
        return None
    if len(iterated.args) == 1 and iterated.args[0].keyword is None:
        return 0
    if len(iterated.args) == 2 and iterated.args[0].keyword is None:
        keyword = iterated.args[1].keyword
        if keyword is None or keyword.value == "start":
            return integer(iterated.args[1].value)
    return None


def lone_assignment(statement: cst.BaseStatement, name: str) -> cst.Assign | None:
    """The assignment when ``statement`` is exactly ``name = value`` alone on its line."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if not isinstance(small, cst.Assign) or len(small.targets) != 1:
        return None
    target = small.targets[0].target
    if not isinstance(target, cst.Name) or target.value != name:
        return None
    return small


def initial_value(statement: cst.BaseStatement, name: str) -> int | None:
    """``v`` when ``statement`` is exactly ``name = v`` (an integer literal), else None."""
    assignment = lone_assignment(statement, name)
    return None if assignment is None else integer(assignment.value)


def lr_index_offset(condition: EveryK, k: int, counter: Counter) -> int:
    """``r`` in ``schedule((count + r) // k)``, the lr torch uses at optax's update ``count``.

    After update ``u`` (1-based) the check reads ``counter = start + u`` (incremented before
    the check) or ``start + u - 1``; with ``e = start + offset + [before] - 1`` the scheduler
    steps after the updates ``u`` with ``(u + e) % k == 0``. The lr of update ``count + 1`` is
    the schedule at the number of those among ``1..count``: ``(count + e) // k - e // k``,
    which is ``(count + e mod k) // k`` (``k`` the value of ``condition.k``)."""
    e = counter.start + condition.offset + int(counter.incremented_before_check) - 1
    return e % k


_SHARED: dict[int, tuple[cst.CSTNode, frozenset[str]]] = {}  # id(module) -> its shared names


def names_declared_shared(module: cst.Module, name: str) -> bool:
    """Whether a ``global name`` or ``nonlocal name`` statement appears anywhere in ``module``
    (the names of a module's statements found by one walk, kept until ``forget``)."""
    kept = _SHARED.get(id(module))
    if kept is None or kept[0] is not module:
        kept = _SHARED[id(module)] = (module, _shared_names(module))
    return name in kept[1]


def _shared_names(module: cst.CSTNode) -> frozenset[str]:
    """Every name of a ``global`` or ``nonlocal`` statement of ``module``."""
    found: set[str] = set()

    class _Find(cst.CSTVisitor):
        def visit_Global(self, node: cst.Global) -> None:
            found.update(item.name.value for item in node.names)

        def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
            found.update(item.name.value for item in node.names)

    cst_walk.visit(module, _Find())
    return frozenset(found)


def forget() -> None:
    """Drop the kept names (and the trees they hold): a file's conversion is over."""
    _SHARED.clear()


class WarmupTest(NamedTuple):
    """``counter < bound``, as written."""

    counter: cst.Name
    bound: cst.BaseExpression


def warmup_test(test: cst.BaseExpression) -> WarmupTest | None:
    """``c < w`` (``c`` a name), or None for any other condition."""
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return None
    (comparison,) = test.comparisons
    if not isinstance(comparison.operator, cst.LessThan) or not isinstance(test.left, cst.Name):
        return None
    return WarmupTest(test.left, comparison.comparator)


def warmup_boundary(bound: int, counter: Counter) -> int:
    """The update count at which the main schedule takes over from the warm-up.

    After update ``u`` (1-based) the check reads ``start + u - 1 + [incremented before]``, so
    the warm-up steps after the updates ``u <= bound - start - [before]`` and the main
    scheduler after the later ones: torch's lr at optax's ``count`` is ``warm(count)`` below
    that boundary, ``main(count - boundary)`` from it (given that the warm-up is back at the
    base lr there, which the planner checks)."""
    return bound - counter.start - int(counter.incremented_before_check)


def argument_holds(
    signature: Signature, call: cst.Call, when: tuple[tuple[str, Any], ...], unless: tuple
) -> bool:
    """Whether every ``when`` argument of ``call`` is that literal and every ``unless`` one
    is a literal other than that (a non-literal argument: False)."""
    try:
        bound = signature.bind(call)
    except Untranslatable:
        return False
    for name, expected, equal in (
        *((n, v, True) for n, v in when),
        *((n, v, False) for n, v in unless),
    ):
        node = bound[name].value if name in bound else signature.parameter(name).default_node
        try:
            value = literal_value(node)
        except NotALiteral:
            return False
        same = type(value) is type(expected) if isinstance(expected, bool) else True
        if (same and value == expected) != equal:
            return False
    return True


class _OwnCode(cst.CSTVisitor):
    """Visits a statement's own code: not the functions, classes and lambdas defined in it."""

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


def jumps(statement: cst.CSTNode) -> bool:
    """Whether ``statement`` holds a ``continue``/``break``/``return``/``raise`` (outside
    functions and classes defined in it)."""
    found = False

    class _Find(_OwnCode):
        def on_visit(self, node: cst.CSTNode) -> bool:
            nonlocal found
            if isinstance(node, (cst.Continue, cst.Break, cst.Return, cst.Raise)):
                found = True
            return not found and super().on_visit(node)

    cst_walk.visit(statement, _Find())
    return found


def suspends(statement: cst.CSTNode) -> bool:
    """Whether ``statement`` holds a ``yield`` or an ``await`` (outside functions and classes
    defined in it): the code after it runs only if whoever drives the generator or coroutine
    resumes it."""
    found = False

    class _Find(_OwnCode):
        def on_visit(self, node: cst.CSTNode) -> bool:
            nonlocal found
            if isinstance(node, (cst.Yield, cst.Await)):
                found = True
            return not found and super().on_visit(node)

    cst_walk.visit(statement, _Find())
    return found


def leaves_loop(statement: cst.CSTNode) -> bool:
    """Whether ``statement``, a statement of a loop's body, holds a jump that leaves that
    loop or the rest of its body: a ``return``/``raise`` anywhere, or a ``break``/``continue``
    that is not inside the body of a loop nested in ``statement`` (one in a nested loop's
    ``else:`` belongs to the outer loop). Functions and classes defined in it do not count."""
    return _LeavesLoop.holds(statement, nested=False)


class _LeavesLoop(_OwnCode):
    """Finds a jump out of the loop whose body is visited (``nested``: inside an inner loop's
    body, where ``break``/``continue`` stay in that inner loop)."""

    def __init__(self, nested: bool) -> None:
        self.nested = nested
        self.found = False

    @classmethod
    def holds(cls, node: cst.CSTNode, *, nested: bool) -> bool:
        finder = cls(nested)
        cst_walk.visit(node, finder)
        return finder.found

    def visit_For(self, node: cst.For) -> bool:
        self._loop(node.body, node.orelse)
        return False

    def visit_While(self, node: cst.While) -> bool:
        self._loop(node.body, node.orelse)
        return False

    def _loop(self, body: cst.BaseSuite, orelse: cst.Else | None) -> None:
        """An inner loop: its body's ``break``/``continue`` are its own, its ``else:``'s not."""
        self.found = self.found or _LeavesLoop.holds(body, nested=True)
        if orelse is not None:
            self.found = self.found or _LeavesLoop.holds(orelse, nested=self.nested)

    def on_visit(self, node: cst.CSTNode) -> bool:
        leaves_function = isinstance(node, (cst.Return, cst.Raise))
        if leaves_function or (isinstance(node, (cst.Continue, cst.Break)) and not self.nested):
            self.found = True
        return not self.found and super().on_visit(node)
