"""Every node of an ``ast`` tree as one list: ``ast.walk``'s nodes in its order, without the
expression contexts (``Load``, ``Store``, ``Del``: leaves no question reads), and without a
generator per node (``ast.walk`` makes two). The second stage, the repository index and its
cross-file questions walk whole files with it.

``parse`` is ``ast.parse`` with Python's cyclic garbage collector paused: a parse allocates
many objects, each allocation counts towards a collection, and each collection scans every
tree kept before (the repository index keeps many): parsing torch's 2,285 files while
keeping their trees took four times as long with the collector running. A source parsed
while its tree is still kept (by the repository index) gets that tree again."""

from __future__ import annotations

import ast
import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

_WALKED = "_ml_switcheroo_walk"  # the attribute of a module's tree holding its walk


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the block runs (nested blocks too), back
    to what it was after. Reference counting still frees what is not in a cycle: a tree is
    one (its kept walk holds its nodes, not itself)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# source -> its tree, while something keeps the tree (the repository index's facts of a file,
# the second stage's tree of the file it reads): a file read by both is parsed once
_LIVE_TREES: weakref.WeakValueDictionary[str | bytes, ast.Module] = weakref.WeakValueDictionary()


def parse(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)`` with the cyclic garbage collector paused; the same
    tree again for the same source while a caller keeps it (no caller changes a tree: the
    stage, the index and the cross-file questions only read them)."""
    known = _LIVE_TREES.get(source)
    if known is not None:
        return known
    with collector_paused():
        tree = ast.parse(source, filename=filename)
    _LIVE_TREES[source] = tree
    return tree


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of a name or a chain of attributes on one, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def walk(tree: ast.AST) -> list[ast.AST]:
    """``tree`` and its descendants, breadth first (the order of ``ast.walk``). A whole
    module's walk is made once and kept on its tree (the stage, the repository index and the
    cross-file questions each walk the same files; nothing changes a parsed tree): callers read
    the list, never change it."""
    if not isinstance(tree, ast.Module):
        return walk_with_parents(tree, None)
    found = tree.__dict__.get(_WALKED)
    return [tree, *found] if found is not None else walk_with_parents(tree, None)  # keeps it


def walk_with_parents(tree: ast.AST, parents: dict[int, ast.AST] | None) -> list[ast.AST]:
    """``walk(tree)``, recording the parent of each node but ``tree`` in ``parents`` (by the
    node's id) when given."""
    found = [tree]
    append = found.append
    node_fields = _NODE_FIELDS
    for node in found:  # the list grows while it is read
        kind = type(node)
        names = node_fields.get(kind)
        if names is None:
            names = _node_fields(kind)
        for name in names:
            value = getattr(node, name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        append(item)
                        if parents is not None:
                            parents[id(item)] = node
            elif isinstance(value, ast.AST) and not isinstance(value, ast.expr_context):
                append(value)
                if parents is not None:
                    parents[id(value)] = node
    if isinstance(tree, ast.Module) and _WALKED not in tree.__dict__:
        setattr(tree, _WALKED, tuple(found[1:]))  # not the tree itself: no reference cycle
    return found


# The fields of a node kind that never hold a node (Python's ``ast`` grammar: an identifier,
# a number, a constant, a string, or the expression context the walk leaves out): the walk
# does not read them (a ``Name``, the commonest node, has no other field).
_LEAF_FIELDS: dict[str, frozenset[str]] = {
    "Name": frozenset({"id", "ctx"}),
    "Attribute": frozenset({"attr", "ctx"}),
    "Subscript": frozenset({"ctx"}),
    "Starred": frozenset({"ctx"}),
    "List": frozenset({"ctx"}),
    "Tuple": frozenset({"ctx"}),
    "Constant": frozenset({"value", "kind"}),
    "FunctionDef": frozenset({"name", "type_comment"}),
    "AsyncFunctionDef": frozenset({"name", "type_comment"}),
    "ClassDef": frozenset({"name"}),
    "ExceptHandler": frozenset({"name"}),
    "alias": frozenset({"name", "asname"}),
    "arg": frozenset({"arg", "type_comment"}),
    "keyword": frozenset({"arg"}),
    "ImportFrom": frozenset({"module", "level"}),
    "FormattedValue": frozenset({"conversion"}),
    "comprehension": frozenset({"is_async"}),
    "Assign": frozenset({"type_comment"}),
    "For": frozenset({"type_comment"}),
    "AsyncFor": frozenset({"type_comment"}),
    "With": frozenset({"type_comment"}),
    "AsyncWith": frozenset({"type_comment"}),
    "AnnAssign": frozenset({"simple"}),
    "Global": frozenset({"names"}),
    "Nonlocal": frozenset({"names"}),
    "MatchSingleton": frozenset({"value"}),
    "MatchAs": frozenset({"name"}),
    "MatchStar": frozenset({"name"}),
    "MatchMapping": frozenset({"rest"}),
    "MatchClass": frozenset({"kwd_attrs"}),
}
_NODE_FIELDS: dict[type, tuple[str, ...]] = {}  # node kind -> the fields the walk reads


def _node_fields(kind: type) -> tuple[str, ...]:
    """``kind``'s ``_fields`` but those of ``_LEAF_FIELDS`` (for a class of ``ast`` itself:
    a subclass of a node kind may add fields)."""
    skipped = _LEAF_FIELDS.get(kind.__name__, frozenset())
    if getattr(ast, kind.__name__, None) is not kind:
        skipped = frozenset()
    found = _NODE_FIELDS[kind] = tuple(f for f in kind._fields if f not in skipped)
    return found


_STATEMENT_KINDS = (ast.stmt, ast.excepthandler, ast.match_case)


def statements(tree: ast.AST) -> list[ast.AST]:
    """``tree`` and the statements below it (with the ``except`` handlers and ``match`` cases
    holding some), in the order ``walk`` yields them: every statement's ancestors are
    statements, handlers or cases, so walking those alone keeps each one's depth and its place
    among them (imports are statements: a walk for them need not enter any expression)."""
    found = [tree]
    for node in found:  # the list grows while it is read
        for name in _statement_fields(type(node)):
            value = getattr(node, name, None)
            if isinstance(value, list):
                found.extend(item for item in value if isinstance(item, _STATEMENT_KINDS))
    return found


_STATEMENT_FIELDS: dict[type, tuple[str, ...]] = {}


def _statement_fields(kind: type) -> tuple[str, ...]:
    """The fields of ``kind`` that may hold statements, handlers or cases (in ``_fields``
    order: ``body``, ``handlers``, ``orelse``, ``finalbody``, ``cases``)."""
    found = _STATEMENT_FIELDS.get(kind)
    if found is None:
        holders = {"body", "orelse", "finalbody", "handlers", "cases"}
        found = _STATEMENT_FIELDS[kind] = tuple(f for f in kind._fields if f in holders)
    return found


def own_nodes(scope: ast.AST, scopes: tuple[type, ...]) -> Iterator[ast.AST]:
    """The nodes of ``scope``'s body (and its parameters); a node of one of ``scopes`` (a
    nested function, class...) is yielded with what runs where it is defined (decorators,
    defaults, annotations, base classes, a comprehension's first iterable: probe s41 F1),
    what it holds is not. ``scope``'s own decorators and defaults are not its nodes."""
    if isinstance(scope, scopes):
        stack = list(evaluated_inside(scope))
    else:
        stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, scopes):
            stack.extend(evaluated_outside(node))
        else:
            stack.extend(ast.iter_child_nodes(node))


def evaluated_outside(scope: ast.AST) -> list[ast.AST]:
    """The children of a function, lambda, class or comprehension that the enclosing scope
    evaluates (decorators, defaults, annotations, return annotation, bases and keywords, the
    first generator's iterable)."""
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = scope.args
        found: list[ast.AST] = [*arguments.defaults, *(d for d in arguments.kw_defaults if d)]
        if not isinstance(scope, ast.Lambda):
            found += scope.decorator_list
            found += [a.annotation for a in _all_arguments(arguments) if a.annotation]
            found += [scope.returns] if scope.returns else []
        return found
    if isinstance(scope, ast.ClassDef):
        return [*scope.decorator_list, *scope.bases, *scope.keywords]
    generators = getattr(scope, "generators", None)
    return [generators[0].iter] if generators else list(ast.iter_child_nodes(scope))


def evaluated_inside(scope: ast.AST) -> list[ast.AST]:
    """The children of ``scope`` its own code evaluates or binds (parameters, body; for a
    comprehension all but the first iterable): ``ast.iter_child_nodes`` less
    ``evaluated_outside``."""
    outside = {id(n) for n in evaluated_outside(scope)}
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        inside: list[ast.AST] = list(_all_arguments(scope.args))
        body = scope.body if isinstance(scope.body, list) else [scope.body]
        return inside + list(body)
    if isinstance(scope, ast.ClassDef):
        return list(scope.body)
    children: list[ast.AST] = []
    for child in ast.iter_child_nodes(scope):
        if isinstance(child, ast.comprehension) and id(child.iter) in outside:
            children += [child.target, *child.ifs]
        elif id(child) not in outside:
            children.append(child)
    return children


def _all_arguments(arguments: ast.arguments) -> list[ast.arg]:
    """Every parameter of ``arguments``."""
    found = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    return found + [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
