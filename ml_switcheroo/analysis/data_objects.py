"""Objects of a class of the file that only produce data (issue 13: build-nanogpt's
``x, y = train_loader.next_batch()``, ``train_loader = DataLoaderLite(B=4, T=32)``).

A call of a method of such an object, in a statement of a training step before the model's
forward pass, produces the batch: run before the NNX loss function, in torch's order, it
computes the same values, and none of them can carry a gradient to the model, since nothing the
object reaches is a model. Proven when the object is built by ``C(...)`` with literal arguments
(no model handed to it), ``C`` a module-level class of this file bound once and named by no
other file, with no base but ``object``, no decorator and no keyword (metaclass), its body only
undecorated methods (and a docstring); every name its methods read is their own (parameters,
locals), a builtin that reaches no other object by name (not ``globals``, ``vars``, ``eval``,
``exec``, ``getattr``...), or an import of the given modules (the map's ``data_modules``, which
hold no model of the program); the file rebinds no global by name; and the name holding the
object is read only as the receiver of a method call with literal arguments (it is passed to no
function, nothing stores into its attributes from outside). Anything else is not proven.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst
from libcst.metadata import Assignment, BuiltinAssignment, GlobalScope, Scope

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.loss_helpers import FileFacts
from ml_switcheroo.spec.signature import NotALiteral, code_of, literal_value

# builtins that reach other objects by name (a module's globals, any attribute)
_REFLECTIVE = frozenset(
    {
        "globals",
        "locals",
        "vars",
        "eval",
        "exec",
        "compile",
        "getattr",
        "setattr",
        "delattr",
        "__import__",
        "breakpoint",
        "input",
    }
)
_IMPORTS = (cst.Import, cst.ImportFrom)


def data_object_problem(
    value: cst.Call,
    reads: Sequence[tuple[cst.CSTNode, ...]],
    modules: frozenset[str],
    facts: FileFacts,
) -> str | None:
    """Why the object ``value`` builds (read at ``reads``: each node with its parents) may
    reach a model, so a call of its methods may not run ahead of the loss function (None:
    an object of a class of this file proven to reach only its own data)."""
    shown = f"`{_short(code_of(value))}`"
    if facts.globals_rebound:
        return "the file may rebind its globals by name (`exec`, `globals()`...)"
    if not all(_literal(arg.value) and not arg.star for arg in value.args):
        return f"{shown} is given a value that is not a literal (it may hand it a model)"
    klass = _module_class(value.func, facts)
    if isinstance(klass, str):
        return klass
    if facts.mentioned_elsewhere is not None and facts.mentioned_elsewhere(klass.name.value):
        return f"another file names `{klass.name.value}` (it may change the class)"
    problem = _class_problem(klass, modules, facts)
    if problem is not None:
        return f"`{klass.name.value}` {problem}"
    for read in reads:
        if not _literal_method_call(read):
            return f"the object {shown} builds is read other than by a method call with literals"
    return None


def _module_class(func: cst.BaseExpression, facts: FileFacts) -> cst.ClassDef | str:
    """The one module-level class of this file ``func`` names, or why not."""
    shown = f"`{code_of(func).strip()}`"
    if not isinstance(func, cst.Name):
        return f"{shown} is not a class of this file"
    scope = facts.scopes.get(func)
    referents = (
        [r for a in scope.accesses[func.value] if a.node is func for r in a.referents]
        if scope is not None
        else []
    )
    if len(referents) != 1 or not isinstance(referents[0], Assignment):
        return f"{shown} is not bound once in this file"
    node = referents[0].node
    if not isinstance(referents[0].scope, GlobalScope) or not any(
        statement is node for statement in facts.module.body
    ):
        return f"{shown} is not a module-level class of this file"
    if not isinstance(node, cst.ClassDef):
        return f"{shown} is not a class of this file"
    return node


def _class_problem(klass: cst.ClassDef, modules: frozenset[str], facts: FileFacts) -> str | None:
    """Why the class's objects may reach more than their own data (None: they do not)."""
    if klass.decorators or klass.keywords:
        return "is decorated or has keywords (a metaclass)"
    if any(code_of(base.value).strip() != "object" for base in klass.bases):
        return "has a base class (it may be a torch module or inherit methods)"
    for statement in klass.body.body:
        if isinstance(statement, cst.FunctionDef):
            if statement.decorators or statement.asynchronous:
                return f"has a decorated or asynchronous method `{statement.name.value}`"
            continue
        if not _docstring(statement):
            return f"has a statement other than a method (`{_short(code_of(statement))}`)"
    inner = {
        id(s): s
        for n in cst_walk.walk(klass.body)
        if (s := facts.scopes.get(n)) is not None and not isinstance(s, GlobalScope)
    }
    for scope in inner.values():
        for access in scope.accesses:
            problem = _read_problem(access.node, access.referents, inner, modules, facts)
            if problem is not None:
                return problem
    return None


def _read_problem(
    node: cst.CSTNode,
    referents: object,
    inner: dict[int, Scope],
    modules: frozenset[str],
    facts: FileFacts,
) -> str | None:
    """Why a name a method reads may reach another object (None: its own, a builtin that
    reaches nothing by name, an import of ``modules``)."""
    found = list(referents)  # type: ignore[call-overload]
    if not isinstance(node, cst.Name):
        return "reads a name libcst cannot follow"
    if found and all(id(getattr(r, "scope", None)) in inner for r in found):
        return None  # a parameter or a local of one of its methods
    if len(found) == 1 and isinstance(found[0], BuiltinAssignment):
        if node.value in _REFLECTIVE:
            return f"calls the builtin `{node.value}`, which reaches other objects by name"
        return None
    if found and all(isinstance(getattr(r, "node", None), _IMPORTS) for r in found):
        names = facts.qualify(node)
        if names and all(q.split(".")[0] in modules for q in names):
            return None
        return f"reads `{node.value}`, an import of code that may reach a model"
    return f"reads `{node.value}`, a value of the module (it may be a model)"


def _literal_method_call(read: tuple[cst.CSTNode, ...]) -> bool:
    """The read (with its parents) is the receiver of ``x.method(literals)``."""
    if len(read) < 3:
        return False
    name, attribute, call = read[0], read[1], read[2]
    return (
        isinstance(attribute, cst.Attribute)
        and attribute.value is name
        and isinstance(call, cst.Call)
        and call.func is attribute
        and all(_literal(arg.value) and not arg.star for arg in call.args)
    )


def _docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    ) or (
        isinstance(statement, cst.SimpleStatementLine)
        and all(isinstance(s, cst.Pass) for s in statement.body)
    )


def _literal(node: cst.BaseExpression) -> bool:
    try:
        literal_value(node)
    except NotALiteral:
        return False
    return True


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."
