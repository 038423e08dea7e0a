"""The parent of every node of a libcst tree, from one walk over the nodes' fields.

The same map as libcst's ``ParentNodeProvider``, without its cost: that provider walks the
tree with a visitor (which rebuilds every node it passes) and, on leaving each node, asks for
``node.children`` (which rebuilds the node's children once more): several walks' worth of
node construction per file. Here each node's fields are read once; which fields a class has is
looked up once per class.
"""

from __future__ import annotations

from dataclasses import fields

import libcst as cst

from ml_switcheroo.analysis.cst_walk import is_node, is_sequence

_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """The dataclass fields of a node class, read once per class."""
    names = _FIELDS.get(cls)
    if names is None:
        names = tuple(field.name for field in fields(cls))
        _FIELDS[cls] = names
    return names


def parent_map(module: cst.CSTNode) -> dict[cst.CSTNode, cst.CSTNode]:
    """Every node of the tree under ``module`` to the node holding it (what
    ``ParentNodeProvider`` resolves to; the root has no entry)."""
    parents: dict[cst.CSTNode, cst.CSTNode] = {}
    stack: list[cst.CSTNode] = [module]
    while stack:
        node = stack.pop()
        for name in _field_names(type(node)):
            value = getattr(node, name)
            if is_node(value):
                parents[value] = node
                stack.append(value)
            elif is_sequence(value):
                for item in value:
                    if is_node(item):
                        parents[item] = node
                        stack.append(item)
    return parents
