"""A parameter of a class's ``__init__`` stored in ``self.<attr>``, read with ``ast`` for the
repository index (issue 12, deliverable 1; the libcst reading of the file being converted is
``analysis/stored.py``).

``Trainer(model, loader, optimizer)`` of another file: the class is a callable whose
parameters are those of its ``__init__`` without ``self`` (``init_without_self``), when nothing
else builds an instance (``class_problem``). Its parameter is followed into ``self.<attr>``
(``stored_problem``) when ``__init__`` reads it once, by ``self.<attr> = <param>`` directly in
its body, and the repository's files (``attribute_problem``, per file) store ``.<attr>``
nowhere else, reach no attribute by name (``getattr``/``setattr``/``__dict__``) and, for an
optimizer, read ``.<attr>`` only in the class's methods as ``self.<attr>.<method>(...)`` with a
method the target rewrites; a model (``reads_allowed``) may be read anywhere. A problem is
``(line, why)``.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator

from ml_switcheroo.analysis import ast_nodes

Problem = tuple[int, str]  # (line, why)
_REFLECTION = frozenset({"getattr", "setattr", "delattr", "hasattr", "vars"})


def class_init(owner: ast.ClassDef) -> ast.FunctionDef | None:
    """The one ``__init__`` defined in the body of ``owner``."""
    found = [s for s in owner.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"]
    return found[0] if len(found) == 1 else None


def init_without_self(owner: ast.ClassDef) -> ast.FunctionDef | None:
    """A copy of ``owner``'s ``__init__`` without its ``self`` parameter: the parameters a
    call of the class binds (None: no ``__init__``, or one with no ``self``)."""
    init = class_init(owner)
    if init is None or not init.args.args or init.args.posonlyargs:
        return None
    arguments = copy.copy(init.args)
    arguments.args = init.args.args[1:]
    defaults = len(init.args.defaults)
    arguments.defaults = init.args.defaults[-len(arguments.args) :] if defaults else []
    without = copy.copy(init)
    without.args = arguments
    without.name = owner.name
    return without


def class_problem(owner: ast.ClassDef) -> Problem | None:
    """Why an instance of ``owner`` may be built otherwise than by calling its name: a
    decorator, a metaclass, a ``classmethod``, ``type(self)``, ``__class__``, ``__new__``."""
    if owner.decorator_list or owner.keywords:
        return owner.lineno, f"`{owner.name}` is decorated or has a metaclass"
    for node in ast_nodes.walk(owner):
        if isinstance(node, ast.Name) and node.id in ("classmethod", "__class__", "type"):
            return node.lineno, f"`{owner.name}` may build an instance by another name"
        if isinstance(node, (ast.Attribute, ast.FunctionDef)):
            name = node.attr if isinstance(node, ast.Attribute) else node.name
            if name in ("__class__", "__new__"):
                return node.lineno, f"`{owner.name}` may build an instance by another name"
    return None


def stored_attribute(owner: ast.ClassDef, param: str) -> tuple[str, ast.Attribute] | Problem:
    """``(attr, the store's target)`` of ``self.<attr> = param``, the one read of ``param`` in
    ``__init__``, directly in its body; else why not."""
    init = class_init(owner)
    if init is None or not init.args.args:
        return owner.lineno, f"`{owner.name}` has no `__init__` of its own"
    self_name = init.args.args[0].arg
    reads = [n for n in ast_nodes.walk(init) if isinstance(n, ast.Name) and n.id == param]
    if any(not isinstance(n.ctx, ast.Load) for n in reads):
        return init.lineno, f"`__init__` rebinds `{param}`"
    if len(reads) != 1:
        return init.lineno, f"`__init__` uses `{param}` more than once"
    for statement in init.body:
        if (
            isinstance(statement, ast.Assign)
            and statement.value is reads[0]
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Attribute)
            and isinstance(statement.targets[0].value, ast.Name)
            and statement.targets[0].value.id == self_name
        ):
            return statement.targets[0].attr, statement.targets[0]
    return reads[0].lineno, f"`__init__` does not store `{param}` in `self`"


def attribute_problem(
    tree: ast.Module,
    parents: dict[int, ast.AST],
    owner: ast.ClassDef | None,
    attribute: str,
    store: ast.Attribute | None,
    methods: frozenset[str],
    reads_allowed: bool,
) -> Problem | None:
    """The first place of one file (``tree``, ``parents`` the parent of each of its nodes;
    ``owner`` the class when it is the class's file, ``store`` its one store) that may store
    ``.<attribute>`` again, reach an attribute by name, or (unless ``reads_allowed``) read
    ``.<attribute>`` otherwise than as ``self.<attribute>.<method>(...)`` in the class's
    methods."""
    in_class = {id(n) for m in _methods(owner) for n in ast_nodes.walk(m)}
    for node in ast_nodes.walk(tree):
        problem = _node_problem(node, parents, in_class, attribute, store, methods, reads_allowed)
        if problem is not None:
            return problem
    return None


def _node_problem(
    node: ast.AST,
    parents: dict[int, ast.AST],
    in_class: set[int],
    attribute: str,
    store: ast.Attribute | None,
    methods: frozenset[str],
    reads_allowed: bool,
) -> Problem | None:
    line = getattr(node, "lineno", 0)
    if isinstance(node, ast.Call) and _reflects(node, attribute, id(node) in in_class):
        return line, f"`{ast.unparse(node.func)}(...)` reaches an attribute by name"
    if isinstance(node, ast.FunctionDef) and node.name == attribute and id(node) in in_class:
        return line, f"defines `{attribute}` (a property?)"
    if not isinstance(node, ast.Attribute) or node is store:
        return None
    if node.attr == "__dict__":
        return line, "reaches an instance's attributes through `__dict__`"
    if node.attr != attribute:
        return None
    if not isinstance(node.ctx, ast.Load):
        return line, f"stores `.{attribute}` again"
    if reads_allowed:
        return None
    if id(node) not in in_class:
        return line, f"reads `.{attribute}` outside the class"
    if receives_method_call(node, parents, methods):
        return None
    return line, f"uses `self.{attribute}` otherwise than by calling its {_listed(methods)}"


def receives_method_call(
    node: ast.AST, parents: dict[int, ast.AST], methods: frozenset[str]
) -> bool:
    """``node`` is the receiver of a call of one of ``methods`` (``node.step()``)."""
    member = parents.get(id(node))
    call = parents.get(id(member)) if member is not None else None
    return (
        isinstance(member, ast.Attribute)
        and member.attr in methods
        and isinstance(call, ast.Call)
        and call.func is member
    )


def _listed(methods: frozenset[str]) -> str:
    return "/".join(f"{m}()" for m in sorted(methods))


def _methods(owner: ast.ClassDef | None) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    if owner is None:
        return iter(())
    return (s for s in owner.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)))


def _reflects(call: ast.Call, attribute: str, in_class: bool) -> bool:
    """``getattr``/``setattr``/... in a method of the class, or elsewhere with ``attribute``
    or a name that is not a string literal (``vars(args)`` elsewhere only reads)."""
    if not isinstance(call.func, ast.Name) or call.func.id not in _REFLECTION:
        return False
    if in_class:
        return True
    if call.func.id == "vars":
        return False
    name = call.args[1] if len(call.args) > 1 else None
    return not (isinstance(name, ast.Constant) and isinstance(name.value, str)) or (
        name.value == attribute
    )
