"""Every node of an ``ast`` tree as one list: ``ast.walk``'s nodes in its order, without the
expression contexts (``Load``, ``Store``, ``Del``: leaves no question reads), and without a
generator per node (``ast.walk`` makes two). The second stage, the repository index and its
cross-file questions walk whole files with it."""

from __future__ import annotations

import ast


def walk(tree: ast.AST) -> list[ast.AST]:
    """``tree`` and its descendants, breadth first (the order of ``ast.walk``)."""
    return walk_with_parents(tree, None)


def walk_with_parents(tree: ast.AST, parents: dict[int, ast.AST] | None) -> list[ast.AST]:
    """``walk(tree)``, recording the parent of each node but ``tree`` in ``parents`` (by the
    node's id) when given."""
    found = [tree]
    for node in found:  # the list grows while it is read
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        found.append(item)
                        if parents is not None:
                            parents[id(item)] = node
            elif isinstance(value, ast.AST) and not isinstance(value, ast.expr_context):
                found.append(value)
                if parents is not None:
                    parents[id(value)] = node
    return found
