"""A scheduler stepped, right after its optimizer, in a function of another file (issue 12).

``main.py`` builds ``opt`` and ``sched = StepLR(opt, ...)`` and calls
``train_one_epoch(model, opt, sched, loader)``; ``engine.py`` defines it as
``for b in loader: ...; opt.step(); sched.step()``. The schedule folds into the optimizer (the
caller's planner) and ``sched.step()`` goes (the callee's planner) when ``stepped_together``
holds: both files ask it and read the same sources, so they agree.

The function (module-level, not decorated, no ``yield``) reads the scheduler parameter only as
one ``sched.step()`` statement (no argument), in the same block as the one ``opt.step()``
statement on the optimizer parameter and after it, with no jump (``break``, ``continue``,
``return``, ``raise``) between them: once per update. The repository calls it once, passing a
variable bound once, in the caller's scope, to a scheduler constructor whose first argument is
the variable it passes for the optimizer (or a call under the target's name: the caller was
converted already). Each fact that fails is an ``Unknown`` naming ``file:line``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

from ml_switcheroo.analysis.repository import (
    Constructed,
    FileFacts,
    Place,
    RepositoryIndex,
    Unknown,
    _argument,
    _bindings,
    _enclosing_scope,
    _own_nodes,
    _qualified,
)
from ml_switcheroo.spec.escape_hatch import FOLDED_STEP

_JUMPS = (ast.Break, ast.Continue, ast.Return, ast.Raise, ast.Yield, ast.YieldFrom)


@dataclass(frozen=True)
class Together:
    """The parameters a function steps together, and the one call site handing them."""

    optimizer: str
    scheduler: str
    step: Place  # the function's ``scheduler.step()``
    scheduler_site: Constructed  # what the call site passes for ``scheduler``
    optimizer_site: Constructed  # ... and for ``optimizer``


def stepped_together(
    index: RepositoryIndex,
    module: str,
    function: str,
    scheduler: str,
    step_methods: frozenset[str],
    translated: Callable[[str], bool],
) -> Together | Unknown:
    """The facts above for ``module.function``'s parameter ``scheduler`` (``translated``: a
    qualified name under the target's, a value the caller's conversion wrote)."""
    path = index.file_of(module)
    facts = index.facts(path) if path is not None else None
    definition = facts.functions.get(function) if facts is not None else None
    if facts is None or definition is None:
        if facts is not None and facts.error is not None:
            return facts.error
        return Unknown(Place(path or module, 0), f"does not define `{function}` once")
    body = _callee_problem(index.source(path), facts, definition, scheduler, step_methods)  # type: ignore[arg-type]
    if isinstance(body, Unknown):
        return body
    optimizer, step_line = body
    sites = index.call_sites(module, function, scheduler)
    opt_sites = index.call_sites(module, function, optimizer)
    for found in (sites, opt_sites):
        if isinstance(found, Unknown):
            return found
    assert not isinstance(sites, Unknown) and not isinstance(opt_sites, Unknown)
    where = Place(path, definition.lineno)  # type: ignore[arg-type]
    if len(sites) != 1 or len(opt_sites) != 1:
        return Unknown(where, f"`{function}` is called {len(sites)} times in the repository")
    site, opt_site = sites[0], opt_sites[0]
    names = (optimizer, scheduler)
    over = _over_the_optimizer(
        index, module, function, definition, site, names, translated, step_methods
    )
    if over is not None:
        return over
    return Together(optimizer, scheduler, Place(path, step_line), site, opt_site)  # type: ignore[arg-type]


def _callee_problem(
    source: bytes,
    facts: FileFacts,
    definition: ast.FunctionDef,
    scheduler: str,
    step_methods: frozenset[str],
) -> tuple[str, int] | Unknown:
    """(the optimizer parameter, the line of ``scheduler.step()``) of the function's body
    (``source``: the file's bytes, for the comment an earlier conversion left there)."""
    here = Place(facts.path, definition.lineno)
    name = f"`{definition.name}`"
    if definition.decorator_list:
        return Unknown(here, f"{name} is decorated")
    if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(definition)):
        return Unknown(here, f"{name} is a generator")
    uses = [n for n in ast.walk(definition) if isinstance(n, ast.Name) and n.id == scheduler]
    if not uses:
        return _folded_before(source, facts, definition, scheduler) or Unknown(
            here, f"{name} never reads `{scheduler}`, so torch never steps it there"
        )
    step = _alone_step(definition, uses[0], step_methods) if len(uses) == 1 else None
    if step is None:
        return Unknown(here, f"{name} uses `{scheduler}` otherwise than by one `.step()`")
    block, index = step
    earlier = [(i, s) for i, s in enumerate(block[:index]) if _step_receiver(s, step_methods)]
    if not earlier:
        return Unknown(
            Place(facts.path, block[index].lineno),
            f"{name} steps `{scheduler}` elsewhere than after its optimizer's `.step()` in the "
            "same block (per epoch, every k updates, or under a condition)",
        )
    opt_index, opt_statement = earlier[-1]
    optimizer = _step_receiver(opt_statement, step_methods)
    assert optimizer is not None
    if optimizer == scheduler or optimizer not in _parameters(definition):
        return Unknown(here, f"{name} steps `{optimizer}`, not an optimizer parameter")
    steps = [
        n
        for n in ast.walk(definition)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in step_methods
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == optimizer
    ]
    if len(steps) != 1:
        return Unknown(here, f"{name} steps `{optimizer}` in {len(steps)} places")
    parents = facts.nodes().parents
    for read in ast.walk(definition):
        if (
            isinstance(read, ast.Name)
            and read.id == optimizer
            and not _method_receiver(read, parents)
        ):
            return Unknown(
                Place(facts.path, read.lineno),
                f"{name} uses `{optimizer}` otherwise than as a method's receiver (it may be "
                "stepped elsewhere)",
            )
    for between in block[opt_index + 1 : index]:
        for node in [between, *_own_nodes(between)]:
            calls_other = isinstance(node, ast.Call) and not _method_of(node, optimizer)
            if isinstance(node, _JUMPS) or calls_other:
                return Unknown(
                    Place(facts.path, getattr(node, "lineno", between.lineno)),
                    f"may jump or raise past `{scheduler}.step()`",
                )
    return optimizer, block[index].lineno


def _method_receiver(read: ast.Name, parents: dict[int, ast.AST]) -> bool:
    """``read.m(...)``."""
    member = parents.get(id(read))
    called = parents.get(id(member))
    return (
        isinstance(member, ast.Attribute) and isinstance(called, ast.Call) and called.func is member
    )


def _method_of(call: ast.Call, name: str) -> bool:
    """``name.m(...)`` with arguments that call nothing."""
    func = call.func
    inner = [
        n for a in [*call.args, *call.keywords] for n in ast.walk(a) if isinstance(n, ast.Call)
    ]
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == name
        and not inner
    )


def _folded_before(
    source: bytes, facts: FileFacts, definition: ast.FunctionDef, scheduler: str
) -> tuple[str, int] | None:
    """(the optimizer parameter, the line) of the ``FOLDED`` comment a conversion of this file
    left where ``scheduler.step()`` was, after that optimizer's step (``escape_hatch``): the
    file was converted first in this run, from the shape ``_callee_problem`` proves."""
    assert facts.tree is not None
    later = [s.lineno for s in facts.tree.body if s.lineno > definition.lineno]
    first, last = definition.lineno, (min(later) - 1 if later else None)
    lines = source.decode("utf-8", errors="replace").splitlines()[first - 1 : last]
    for offset, line in enumerate(lines):
        found = FOLDED_STEP.match(line.strip())
        if found and found.group(1) == scheduler and found.group(2) in _parameters(definition):
            return found.group(2), first + offset
    return None


def _alone_step(
    definition: ast.FunctionDef, use: ast.Name, step_methods: frozenset[str]
) -> tuple[list[ast.stmt], int] | None:
    """(the block, the index) of the statement ``use.step()`` alone (no argument)."""
    for node in ast.walk(definition):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            for index, statement in enumerate(block):
                if _step_receiver(statement, step_methods) and statement.value.func.value is use:  # type: ignore[attr-defined]
                    return block, index
    return None


def _step_receiver(statement: ast.AST, step_methods: frozenset[str]) -> str | None:
    """``x`` of a statement ``x.step()`` (no argument)."""
    if not isinstance(statement, ast.Expr) or not isinstance(statement.value, ast.Call):
        return None
    call = statement.value
    func = call.func
    if call.args or call.keywords or not isinstance(func, ast.Attribute):
        return None
    if func.attr not in step_methods or not isinstance(func.value, ast.Name):
        return None
    return func.value.id


def _parameters(definition: ast.FunctionDef) -> set[str]:
    args = definition.args
    return {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}


def _over_the_optimizer(
    index: RepositoryIndex,
    module: str,
    function: str,
    definition: ast.FunctionDef,
    site: Constructed,
    names: tuple[str, str],
    translated: Callable[[str], bool],
    step_methods: frozenset[str],
) -> Unknown | None:
    """None when the call site's scheduler (``names``: the optimizer and scheduler parameters)
    is built over the variable it passes for the optimizer (or is a call ``translated``
    already), and that call is its one read."""
    optimizer, scheduler = names
    facts = index.facts(site.call_site.file)
    if facts.tree is None:
        return facts.error
    qualified = f"{module}.{function}"
    calls = [
        node
        for node in ast.walk(facts.tree)
        if isinstance(node, ast.Call)
        and node.lineno == site.call_site.line
        and _qualified(node.func, facts) == qualified
    ]
    if len(calls) != 1:
        return Unknown(site.call_site, f"calls `{function}` more than once on the line")
    call = calls[0]
    handed = _argument(call, definition, optimizer)
    passed = _argument(call, definition, scheduler)
    if not isinstance(handed, ast.Name) or not isinstance(passed, ast.Name):
        return Unknown(site.call_site, "does not pass plain names")
    if site.constructor is None:
        return Unknown(site.place, "the scheduler is built through a method chain")
    if translated(site.constructor):
        return None  # the caller's file was converted first: it folded the schedule
    parents = facts.nodes().parents
    scope = _enclosing_scope(call, parents, facts.tree)
    if scope is facts.tree:
        return Unknown(site.call_site, f"`{passed.id}` is a module global (other code may read it)")
    reads = [n for n in facts.nodes().names_under(scope, passed.id) if isinstance(n.ctx, ast.Load)]
    if len(reads) != 1:
        return Unknown(site.call_site, f"`{passed.id}` is read elsewhere than in this call")
    built = _bindings(scope, passed.id)
    constructor = built[0] if len(built) == 1 else None
    if not isinstance(constructor, ast.Call):
        return Unknown(site.call_site, f"`{passed.id}` is not bound once to a call")
    first = constructor.args[0] if constructor.args else None
    first = first or next((k.value for k in constructor.keywords if k.arg == "optimizer"), None)
    if not isinstance(first, ast.Name) or first.id != handed.id:
        return Unknown(site.place, f"`{passed.id}` is not built over `{handed.id}`")
    for read in facts.nodes().names_under(scope, handed.id):
        if not isinstance(read.ctx, ast.Load):
            continue  # its binding (one: the index's call sites)
        parent = parents.get(id(read))
        parent = parents.get(id(parent)) if isinstance(parent, ast.keyword) else parent
        if parent is call or parent is constructor or _other_method(read, parents, step_methods):
            continue
        return Unknown(
            Place(facts.path, read.lineno),
            f"reads `{handed.id}` otherwise than as the receiver of a method other than "
            "`step()` or an argument of this call or of the scheduler",
        )
    return None


def _other_method(
    read: ast.Name, parents: dict[int, ast.AST], step_methods: frozenset[str]
) -> bool:
    """``read.m(...)`` with ``m`` not a step method (``opt.zero_grad()``)."""
    member = parents.get(id(read))
    called = parents.get(id(member))
    return (
        isinstance(member, ast.Attribute)
        and member.attr not in step_methods
        and isinstance(called, ast.Call)
        and called.func is member
    )
