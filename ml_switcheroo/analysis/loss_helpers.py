"""Functions of the file a loss may call as they are (issue 13: ``loss = loss_function(recon,
data, mu, logvar)`` in the VAE example).

Called inside the NNX step's loss function instead of where torch calls it, such a function
must compute the same value from the same arguments and change nothing: it is defined once at
module level (``def`` not decorated, or ``name = lambda ...``), nothing else in the file binds
its name (``global`` statements included), the file rebinds no global by name (``exec``,
``globals()``...), no other file of the repository names it (it might assign
``module.name``), and its defaults are literals. Its body reads only its parameters and
locals, a few pure builtins, imports of the given libraries and other such functions of the
file and number constants of the module (``warmup_steps = 10``, ``min_lr = max_lr * 0.1``,
bound once: ``constant_guard.number_constant``; never another module-level value: a model, a
list, a setting); it binds only plain names
(no store into an attribute or a subscript, no ``+=`` that may update a tensor in place, no
``del``, ``global``, ``nonlocal``, ``with``, ``try``, import, nested function or class, no
``yield``), evaluates no expression for its effect alone, and calls no in-place torch method
or function (the map's ``in_place_suffix``, ``relu_``) nor passes an in-place keyword
(``in_place_keywords``: ``inplace=True``, ``out=``), nor a method the target's arrays compute
other numbers with (the map's ``array_namesakes``: ``x.std()``). Anything else is not proven.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import Assignment, BuiltinAssignment, GlobalScope, Scope

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.constant_guard import module_assignment
from ml_switcheroo.analysis.factories import every_param
from ml_switcheroo.analysis.purity import pure_builtin
from ml_switcheroo.spec.semantic_map import ArrayNamesake
from ml_switcheroo.spec.signature import NotALiteral, code_of, dotted_name, literal_value

_FORBIDDEN: dict[type, str] = {
    cst.Global: "a `global` statement",
    cst.Nonlocal: "a `nonlocal` statement",
    cst.FunctionDef: "a nested function",
    cst.ClassDef: "a nested class",
    cst.Lambda: "a nested lambda",
    cst.Yield: "`yield`",
    cst.Await: "`await`",
    cst.Del: "`del`",
    cst.AugAssign: "an augmented assignment (it may update a tensor in place)",
    cst.With: "a `with` block",
    cst.Try: "a `try` block",
    cst.Import: "an import",
    cst.ImportFrom: "an import",
}

_IMPORTS = (cst.Import, cst.ImportFrom)
_CONSTANTS = frozenset({"True", "False", "None"})


@dataclass(frozen=True)
class FileFacts:
    """What the proof reads of the file: its tree and scopes, the qualified names of imported
    expressions, whether another file names a word, whether the file rebinds globals by name,
    and the map's in-place conventions."""

    module: cst.Module
    scopes: dict[cst.CSTNode, Scope | None]
    qualify: Callable[[cst.BaseExpression], list[str]]
    mentioned_elsewhere: Callable[[str], bool] | None
    globals_rebound: bool
    in_place_suffix: str | None
    in_place_keywords: frozenset[str]
    array_namesakes: Mapping[str, ArrayNamesake]
    number_constant: Callable[[cst.Name], bool] = lambda name: False
    # the map's `tracer_rejecting_packages` (`torch`: its functions take only torch tensors)
    rejecting_packages: frozenset[str] = frozenset()
    # the map's `concrete_methods` (`x.item()`, `x.tolist()`: no value of a traced array)
    concrete_methods: frozenset[str] = frozenset()


def helper_problem(name: cst.Name, libraries: frozenset[str], facts: FileFacts) -> str | None:
    """Why calling the function ``name`` reads may not compute the same thing inside a loss
    function (None: a module-level function of the file proven to read only its arguments and
    ``libraries``, and to change nothing)."""
    return _problem(name, libraries, facts, ())


def copied_helper(
    name: cst.Name, libraries: frozenset[str], facts: FileFacts
) -> cst.FunctionDef | str:
    """The module-level ``def`` the function ``name`` reads, proven as by ``helper_problem``
    but for the map's ``array_namesakes`` its own body calls (``mu.pow(2)``: a copy of it in the
    NNX loss function writes those, ``targets/nnx/helper_copies.py``), or why not (issue 13,
    s26d). The functions it calls are proven in full: they run unchanged."""
    function = _module_function(name, facts)
    if isinstance(function, cst.Lambda):
        return f"`{name.value}` is a lambda (only a `def` is copied)"
    problem = _problem(name, libraries, facts, (), copied=True)
    if problem is not None:
        return problem
    assert isinstance(function, cst.FunctionDef)
    return function


def _problem(
    name: cst.Name,
    libraries: frozenset[str],
    facts: FileFacts,
    trail: tuple[str, ...],
    copied: bool = False,
) -> str | None:
    function = _module_function(name, facts)
    if isinstance(function, str):
        return function
    if name.value in trail:
        return f"`{name.value}` calls itself"
    if facts.globals_rebound:
        return "the file may rebind its globals by name (`exec`, `globals()`...)"
    if facts.mentioned_elsewhere is not None and facts.mentioned_elsewhere(name.value):
        return f"another file names `{name.value}` (it may assign it)"
    return _body_problem(function, libraries, facts, (*trail, name.value), copied)


def _module_function(name: cst.Name, facts: FileFacts) -> cst.FunctionDef | cst.Lambda | str:
    """The one module-level ``def`` or ``name = lambda`` that ``name`` reads, or why not."""
    referents = _referents(name, facts)
    shown = f"`{name.value}`"
    if len(referents) != 1 or not isinstance(referents[0], Assignment):
        return f"{shown} is not bound once in this file"
    referent = referents[0]
    if not isinstance(referent.scope, GlobalScope):
        return f"{shown} is not a module-level function of this file"
    if isinstance(referent.node, cst.FunctionDef) and any(
        statement is referent.node for statement in facts.module.body
    ):
        return referent.node
    assignment = module_assignment(facts.module, referent.node)
    if assignment is not None and isinstance(assignment.value, cst.Lambda):
        return assignment.value
    return f"{shown} is not a module-level function of this file"


def _referents(name: cst.Name, facts: FileFacts) -> list[object]:
    """Every binding a read of ``name`` may see (libcst lists every module-level binding for a
    read in a function)."""
    scope = facts.scopes.get(name)
    if scope is None:
        return []
    return [r for a in scope.accesses[name.value] if a.node is name for r in a.referents]


def _body_problem(
    function: cst.FunctionDef | cst.Lambda,
    libraries: frozenset[str],
    facts: FileFacts,
    trail: tuple[str, ...],
    copied: bool = False,
) -> str | None:
    """Why the function's body may read or change more than its arguments (None: it does not;
    ``copied``: its namesake calls are the copy's to write)."""
    where = f"`{trail[-1]}`"
    if isinstance(function, cst.FunctionDef) and (function.decorators or function.asynchronous):
        return f"{where} is decorated or asynchronous"
    for param in every_param(function.params):
        if param.default is not None and not _is_literal(param.default):
            return f"{where} has a default that is not a literal (`{code_of(param.default)}`)"
    body: cst.CSTNode = function.body
    for node in cst_walk.walk(body):
        problem = _node_problem(node, facts, copied)
        if problem is not None:
            return f"{where} has {problem}"
    inner = {id(s): s for n in cst_walk.walk(body) if (s := facts.scopes.get(n)) is not None}
    inner.pop(id(facts.scopes.get(function)), None)
    for scope in inner.values():
        for access in scope.accesses:
            problem = _read_problem(access.node, access.referents, inner, libraries, facts, trail)
            if problem is not None:
                return f"{where} {problem}"
    if not copied:
        problem = _traced_problem(body, facts)
        if problem is not None:
            return f"{where} has {problem}"
    return None


def _is_literal(node: cst.BaseExpression) -> bool:
    try:
        literal_value(node)
    except NotALiteral:
        return False
    return True


def _node_problem(node: cst.CSTNode, facts: FileFacts, copied: bool = False) -> str | None:
    """What one node of the body does beyond computing a value from its inputs (``copied``:
    a namesake call is the copy's to write or escape)."""
    for kind, shown in _FORBIDDEN.items():
        if isinstance(node, kind):
            return shown
    if isinstance(node, cst.Expr) and not isinstance(node.value, cst.SimpleString):
        return f"`{code_of(node.value).strip()}`, evaluated for its effect"
    targets = _store_targets(node)
    if any(not _plain_names(t) for t in targets):
        return "a store into an attribute or a subscript"
    if isinstance(node, cst.Call):
        in_place = _in_place_problem(node, facts)
        if in_place is not None or copied:
            return in_place
        return namesake_problem(node, facts.array_namesakes, facts.qualify)
    return None


def _traced_problem(body: cst.CSTNode, facts: FileFacts) -> str | None:
    """A call in a function the loss calls that raises on a traced JAX array (s37): a
    ``concrete_methods`` call (``a.tolist()``) or a function of ``rejecting_packages`` given
    more than literals (``torch.cat([a, b])``); checked after every other problem (those say
    why the function cannot run in the loss at all; these, that its copy must write them)."""
    for node in cst_walk.walk(body):
        if not isinstance(node, cst.Call):
            continue
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in facts.concrete_methods:
            return f"`{code_of(node).strip()}` (a traced value has no concrete value)"
        rejecting = rejecting_call(node, facts.qualify, facts.rejecting_packages)
        if rejecting is not None:
            return rejecting
    return None


def rejecting_call(
    call: cst.Call,
    qualify: Callable[[cst.BaseExpression], list[str]],
    packages: frozenset[str],
) -> str | None:
    """``torch.cat([a, b], 1)`` in a function the loss calls: a function of a package whose
    functions take only their own tensors (the map's ``tracer_rejecting_packages``) given
    anything but literals, which raises on the traced JAX arrays the loss function passes
    (s37); None for any other call."""
    names = qualify(call.func)
    if not names or not packages:
        return None
    if not all(any(n == p or n.startswith(p + ".") for p in packages) for n in names):
        return None
    if all(_is_literal(a.value) and not a.star for a in call.args):
        return None
    return (
        f"`{code_of(call.func).strip()}(...)`, a torch function that raises on the traced JAX "
        "arrays of the loss function (port it to JAX first)"
    )


def namesake_problem(
    call: cst.Call,
    namesakes: Mapping[str, ArrayNamesake],
    qualify: Callable[[cst.BaseExpression], list[str]],
) -> str | None:
    """``x.std()``: a method the target's arrays have under this name with other numbers (a
    ``bare`` one called without arguments computes the same, a ``same_positional`` one with
    that many positional arguments too); not a function of an imported
    module (``torch.max(a, b)``: ``qualify`` names it)."""
    if not isinstance(call.func, cst.Attribute) or qualify(call.func):
        return None
    namesake = namesakes.get(call.func.attr.value)
    if namesake is None or namesake.left or (namesake.bare and not call.args):
        return None
    limit = namesake.same_positional
    if limit is not None and len(call.args) <= limit and not _keywords(call):
        return None  # `x.sum(1)`: torch's dim, JAX's axis
    return f"`{code_of(call).strip()}` runs on JAX arrays there: {namesake.reason}"


def module_function(
    func: cst.BaseExpression, qualify: Callable[[cst.BaseExpression], list[str]]
) -> list[str]:
    """The imported names of ``func``, a dotted name only: libcst names the method of a value
    an import's call returns after the import (``torch.max(out, 1)[1].view``:
    ``torch.max.view``), a method of a tensor all the same (s40)."""
    return qualify(func) if dotted_name(func) is not None else []


def _keywords(call: cst.Call) -> bool:
    """Whether a call passes a keyword or a starred argument."""
    return any(a.keyword is not None or a.star for a in call.args)


def _store_targets(node: cst.CSTNode) -> list[cst.BaseExpression]:
    """The targets a node stores into (assignments, loops, comprehensions, ``:=``)."""
    if isinstance(node, cst.Assign):
        return [t.target for t in node.targets]
    if isinstance(node, (cst.AnnAssign, cst.For, cst.CompFor, cst.NamedExpr)):
        return [node.target]
    return []


def _plain_names(target: cst.BaseExpression) -> bool:
    """``x``, ``a, (b, *c)``: names only."""
    if isinstance(target, cst.Name):
        return True
    if isinstance(target, (cst.Tuple, cst.List)):
        return all(_plain_names(e.value) for e in target.elements)
    return False


def _in_place_problem(call: cst.Call, facts: FileFacts) -> str | None:
    """An in-place call (``x.add_(1)``, ``F.relu(x, inplace=True)``, ``out=``)."""
    shown = code_of(call.func).strip()
    method = call.func.attr.value if isinstance(call.func, cst.Attribute) else shown
    suffix = facts.in_place_suffix
    if suffix and method.endswith(suffix) and not method.endswith("__"):
        return f"a call of `{shown}`, which changes its tensor in place"
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value in facts.in_place_keywords:
            return f"`{shown}(..., {arg.keyword.value}=...)`, which may write into a tensor"
    return None


def _read_problem(
    node: cst.CSTNode,
    referents: object,
    inner: dict[int, Scope],
    libraries: frozenset[str],
    facts: FileFacts,
    trail: tuple[str, ...],
) -> str | None:
    """Why a name the body reads may not be its own, a pure builtin, an import of
    ``libraries`` or another proven function of the file (None: it is one of those)."""
    found = list(referents)  # type: ignore[call-overload]
    if not isinstance(node, cst.Name):
        return "reads a name libcst cannot follow"
    if found and all(id(getattr(r, "scope", None)) in inner for r in found):
        return None  # a parameter or a local
    if len(found) == 1 and isinstance(found[0], BuiltinAssignment):
        if pure_builtin(node.value) or node.value in _CONSTANTS:
            return None
        return f"calls the builtin `{node.value}`, which may change or read other objects"
    if found and all(isinstance(getattr(r, "node", None), _IMPORTS) for r in found):
        names = facts.qualify(node)
        if names and all(q.split(".")[0] in libraries for q in names):
            return None
        return f"reads `{node.value}`, an import of code that may reach a model"
    if len(found) == 1 and isinstance(getattr(found[0], "scope", None), GlobalScope):
        function = _module_function(node, facts)
        if not isinstance(function, str):
            problem = _problem(node, libraries, facts, trail)
            return None if problem is None else f"calls {problem}"
    if facts.number_constant(node):
        return None  # a number bound once at module level (`warmup_steps = 10`)
    return f"reads `{node.value}`, a value of the module (it may be a model or change)"
