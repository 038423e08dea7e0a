"""What a scheduler's function argument reads (``LambdaLR(opt, f)``, ``MultiplicativeLR``).

torch calls the function at construction and at each ``sched.step()``; the optax schedule calls
it at each update (once, when traced under jit). Both read the same values only when every
value the function reads is fixed once the scheduler is built. The function is read through
lambdas, ``def``s of the file and ``functools.partial`` over them: each name it reads freely
must be an import of a module the map lists under ``fixed_modules`` (``math``; the
repository's own modules' globals may change: ``config.DECAY = 0.5``), a builtin, another such
function, or a variable every assignment of which comes before the scheduler in the file,
outside any loop holding the scheduler, and in the variable's own scope (no ``global`` write
from a function called later), not reachable by name from other files or ``globals()``.
Attribute and item reads (``cfg.decay``, ``decays[0]``) of anything but a module read an
object that may change in place, and any other callable (``obj.f``, a value a call returned)
cannot be read: both are problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import Assignment, BuiltinAssignment, GlobalScope, ImportAssignment

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.dominating import bound_names
from ml_switcheroo.analysis.factories import every_param, lambda_parameters, read_names
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.signature import code_of

_PARTIAL = "functools.partial"


@dataclass(frozen=True)
class FunctionFacts:
    """What the reader asks of the file: scopes, source order, imports, shared globals."""

    module: cst.Module
    scopes: dict[cst.CSTNode, object]
    order: dict[int, int]
    imported_names: Callable[[cst.BaseExpression], list[str]]
    global_shared: Callable[[str], bool]
    fixed_modules: frozenset[str] = frozenset()  # the map's: what their globals hold is fixed


@dataclass(frozen=True)
class Problem:
    """A finding kind, its values, and the node whose place the finding names (if any)."""

    kind: str
    values: dict[str, str]
    node: cst.CSTNode | None = None


def function_problem(
    value: cst.BaseExpression, built: int | None, facts: FunctionFacts, traced: bool = False
) -> Problem | None:
    """The first problem with the function ``value`` a scheduler built at preorder position
    ``built`` is given; None when everything it reads is fixed from then on. ``traced``: the
    translation calls it with a traced value, so it (and every function it reaches) must not
    branch in Python (``_python_branch``)."""
    return _Reader(facts, built, _text(value), traced).function(value, set())


class _Reader:
    """Walks one scheduler argument and the functions it reaches."""

    def __init__(
        self, facts: FunctionFacts, built: int | None, shown: str, traced: bool = False
    ) -> None:
        self.facts = facts
        self.built = built
        self.shown = shown
        self.traced = traced
        self.loops: list[tuple[int, int]] | None = None

    def function(self, value: cst.BaseExpression, seen: set[int]) -> Problem | None:
        """A problem with the callable ``value``."""
        if isinstance(value, cst.Lambda):
            return self.body(value.body, lambda_parameters(value), seen)
        if isinstance(value, cst.Call) and _PARTIAL in self.facts.imported_names(value.func):
            if not value.args or value.args[0].keyword is not None:
                return self.unread(value)
            return self.function(value.args[0].value, seen) or self.values(value, seen)
        if isinstance(value, cst.Name):
            return self.named(value, seen)
        if isinstance(value, (cst.List, cst.Tuple)):  # one function per group
            problems = (self.function(e.value, seen) for e in value.elements)
            return next((p for p in problems if p is not None), None)
        return self.unread(value)

    def named(self, name: cst.Name, seen: set[int], called: bool = True) -> Problem | None:
        """A problem with the name ``name`` read or called: its variable rebound, or the
        function it means (a def, a lambda bound once) reading something that may change; a
        called name meaning anything else cannot be read."""
        bindings = self.assignments(name)
        if bindings is None:
            return self.unread(name)
        problem = self.variable(name, bindings)
        if problem is not None:
            return problem
        if all(isinstance(b, (ImportAssignment, BuiltinAssignment)) for b in bindings):
            return self.imported(name, name)
        function = _function_bound(bindings, self.facts.module)
        if function is None:
            return self.unread(name) if called else None
        if id(function) in seen:
            return None
        seen.add(id(function))
        if isinstance(function, cst.FunctionDef):
            parameters = {param.name.value for param in every_param(function.params)}
            return self.body(function.body, parameters, seen)
        return self.function(function, seen)

    def body(self, body: cst.CSTNode, own: set[str], seen: set[int]) -> Problem | None:
        """A problem with what a lambda's or def's body reads freely."""
        shared = _declared_shared(body)
        if shared is not None:  # `nonlocal g; g = g * 0.99`: its value follows the calls
            return self.rebound(shared, shared)
        branch = _python_branch(body, self.facts) if self.traced else None
        if branch is not None:
            return Problem(
                findings.SCHEDULE_FUNCTION_BRANCHES,
                {"branch": _text(branch).split("\n")[0].strip(), "function": self.shown},
                branch,
            )
        local = own | _assigned_names(body)
        called = {id(call.func) for call in _calls(body)}
        for node in _reads(body):
            if isinstance(node, (cst.Attribute, cst.Subscript)):
                if not self.is_import_chain(node.value):
                    return self.object_read(node)
                problem = self.imported(_root(node), node)
                if problem is not None:
                    return problem
                continue
            if node.value in local:
                continue
            problem = self.named(node, seen, id(node) in called)
            if problem is not None:
                return problem
        return None

    def values(self, call: cst.Call, seen: set[int]) -> Problem | None:
        """A problem with the arguments ``functools.partial`` binds (read like a body)."""
        for argument in call.args[1:]:
            problem = self.body(argument.value, set(), seen)
            if problem is not None:
                return problem
        return None

    def variable(self, name: cst.Name, bindings: list[Assignment]) -> Problem | None:
        """A rebinding of the variable ``name`` after the scheduler is built, from another
        scope (``global``), or by name from elsewhere; None when it is fixed by then."""
        for binding in bindings:
            if isinstance(binding, (ImportAssignment, BuiltinAssignment)):
                continue
            at = self.facts.order.get(id(binding.node))
            elsewhere = self.facts.scopes.get(binding.node) is not binding.scope
            if self.built is None or at is None or at > self.built or elsewhere:
                return self.rebound(name, binding.node)
            if self.in_one_loop(at, self.built):  # runs again after the scheduler is built
                return self.rebound(name, binding.node)
            if isinstance(binding.scope, GlobalScope) and self.facts.global_shared(name.value):
                return Problem(
                    findings.SCHEDULE_FUNCTION_READS_SHARED,
                    {"name": name.value, "function": self.shown},
                )
        return None

    def in_one_loop(self, first: int, second: int) -> bool:
        """Whether a ``for``/``while`` loop holds both preorder positions."""
        if self.loops is None:
            self.loops = _loop_spans(self.facts.module, self.facts.order)
        return any(start <= first and second <= end for start, end in self.loops)

    def assignments(self, name: cst.Name) -> list[Assignment] | None:
        """The assignments ``name`` may mean where it is read (None: unknown)."""
        scope = self.facts.scopes.get(name)
        if scope is None:
            return None
        found = [a for a in scope[name.value] if isinstance(a, Assignment)]  # type: ignore[index]
        return found or None

    def is_import_chain(self, node: cst.BaseExpression) -> bool:
        """Whether ``node`` is a module or a call of a module's function (``jnp``,
        ``jax.numpy``, ``jnp.asarray(e)``): what an attribute of it reads cannot change."""
        if isinstance(node, cst.Call):
            node = node.func
        while isinstance(node, cst.Attribute):
            node = node.value
        if not isinstance(node, cst.Name):
            return False
        bindings = self.assignments(node)
        return bindings is not None and all(isinstance(b, ImportAssignment) for b in bindings)

    def imported(self, name: cst.Name, read: cst.BaseExpression) -> Problem | None:
        """A problem with ``read``, through the imported (or builtin) ``name``: its module is
        not one of the map's ``fixed_modules`` (its globals may change after the scheduler)."""
        qualified = self.facts.imported_names(name)
        if not qualified:
            return None  # a builtin (an import always has its qualified name)
        modules = {q.split(".")[0] for q in qualified}
        if modules <= self.facts.fixed_modules:
            return None
        module = qualified[0] if read is not name else qualified[0].rpartition(".")[0]
        return Problem(
            findings.SCHEDULE_FUNCTION_READS_MODULE,
            {"read": _text(read), "module": module or qualified[0], "function": self.shown},
        )

    def rebound(self, name: cst.Name, node: cst.CSTNode) -> Problem:
        return Problem(
            findings.SCHEDULE_FUNCTION_READS_REBOUND,
            {"name": name.value, "function": self.shown},
            node,
        )

    def object_read(self, node: cst.BaseExpression) -> Problem:
        return Problem(
            findings.SCHEDULE_FUNCTION_READS_OBJECT,
            {"read": _text(node), "function": self.shown},
        )

    def unread(self, node: cst.BaseExpression) -> Problem:
        return Problem(
            findings.SCHEDULE_FUNCTION_NOT_READ, {"callable": _text(node), "function": self.shown}
        )


# builtins that turn a traced value into a Python one (`min(epoch, 10)` compares it)
_CONCRETE_BUILTINS = frozenset({"min", "max", "int", "float", "bool", "round", "range", "len"})


def _python_branch(body: cst.CSTNode, facts: FunctionFacts) -> cst.CSTNode | None:
    """The first node of ``body`` that needs a concrete value: an ``if``, ``while``, ``for``,
    conditional expression, ``and``/``or``, ``assert``, ``match``, or a call of a builtin of
    ``_CONCRETE_BUILTINS`` or of a ``math`` function (on a constant too: conservative)."""
    branching = (
        cst.If,
        cst.IfExp,
        cst.While,
        cst.For,
        cst.BooleanOperation,
        cst.Assert,
        cst.Match,
        cst.CompFor,
    )
    for node in cst_walk.walk(body):
        if isinstance(node, branching):
            return node
        if not isinstance(node, cst.Call):
            continue
        if isinstance(node.func, cst.Name) and node.func.value in _CONCRETE_BUILTINS:
            return node
        imported = facts.imported_names(node.func)
        if any(name == "math" or name.startswith("math.") for name in imported):
            return node
    return None


def _root(node: cst.BaseExpression) -> cst.Name:
    """The name an attribute or item chain (or a call in it) starts from."""
    while not isinstance(node, cst.Name):
        node = node.func if isinstance(node, cst.Call) else node.value  # type: ignore[attr-defined]
    return node


def _reads(body: cst.CSTNode) -> list[cst.Name | cst.Attribute | cst.Subscript]:
    """The attribute and item reads of ``body``, then the names it reads (``read_names``)."""
    chains = [n for n in cst_walk.walk(body) if isinstance(n, (cst.Attribute, cst.Subscript))]
    return [*chains, *read_names(body)]


def _declared_shared(body: cst.CSTNode) -> cst.Name | None:
    """The first name ``body`` declares ``nonlocal`` or ``global`` (state kept across calls)."""
    for node in cst_walk.walk(body):
        if isinstance(node, (cst.Nonlocal, cst.Global)) and node.names:
            return node.names[0].name
    return None


def _calls(node: cst.CSTNode) -> list[cst.Call]:
    return [n for n in cst_walk.walk(node) if isinstance(n, cst.Call)]


def _assigned_names(body: cst.CSTNode) -> set[str]:
    """Names a def's body binds (its locals, with its nested defs' and lambdas' parameters)."""
    found = set(lambda_parameters(body))
    found.update(name for node in cst_walk.walk(body) for name in bound_names(node))
    return found


def _function_bound(bindings: list[Assignment], module: cst.Module) -> cst.CSTNode | None:
    """The one function ``bindings`` give a name: an undecorated ``def``, or the value of a
    single-target ``name = value`` that is a lambda or a ``functools.partial`` call."""
    if len(bindings) != 1:
        return None
    node = bindings[0].node
    if isinstance(node, cst.FunctionDef):
        return None if node.decorators else node
    for assign in (n for n in cst_walk.walk(module) if isinstance(n, cst.Assign)):
        if len(assign.targets) == 1 and assign.targets[0].target is node:
            value = assign.value
            return value if isinstance(value, (cst.Lambda, cst.Call)) else None
    return None


def _loop_spans(module: cst.Module, order: dict[int, int]) -> list[tuple[int, int]]:
    """The first and last preorder positions of every ``for``/``while`` loop's nodes."""
    spans: list[tuple[int, int]] = []
    for loop in cst_walk.walk(module):
        if isinstance(loop, (cst.For, cst.While)):
            inside = [order.get(id(node), -1) for node in cst_walk.walk(loop)]
            spans.append((order.get(id(loop), -1), max(inside)))
    return spans


def _text(node: cst.CSTNode) -> str:
    return " ".join(code_of(node).split())
