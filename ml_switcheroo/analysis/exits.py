"""Where a name leaves a module's view: the ``return`` statements and calls that mention it.

``Exits(module).of("self.sched")`` is, in the module's preorder, each ``return`` whose value and
each call one of whose argument values holds a name or attribute written ``self.sched``
(``return opt, sched``, ``Trainer(model, opt, sched)``). One walk of the module serves every
name asked (the planner asks once per scheduler whose ``step`` is not called).
"""

from __future__ import annotations

from collections import defaultdict

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.signature import code_of

_is_return = cst_walk.instance_test(cst.Return)
_is_call = cst_walk.instance_test(cst.Call)
_is_name = cst_walk.instance_test(cst.Name)
_is_attribute = cst_walk.instance_test(cst.Attribute)


class Exits:
    """The ``return`` statements and calls of a module, and the names and attributes in their
    values and argument values, indexed by the last name they are written with."""

    def __init__(self, module: cst.Module) -> None:
        self.places: list[cst.Return | cst.Call] = []
        self._written: dict[str, list[tuple[cst.CSTNode, tuple[int, ...]]]] = defaultdict(list)
        self._index(module)

    def _index(self, module: cst.Module) -> None:
        """One preorder walk: each place numbered as it is met; each name or attribute kept
        with the numbers of the places whose value or argument value holds it."""
        roots: dict[int, tuple[int, ...]] = {}
        stack: list[tuple[cst.CSTNode, tuple[int, ...]]] = [(module, ())]
        while stack:
            node, inside = stack.pop()
            entered = roots.pop(id(node), None)
            if entered is not None:
                inside = inside + entered
            for value in self._mentioning_values(node):
                roots[id(value)] = roots.get(id(value), ()) + (len(self.places) - 1,)
            if inside and (_is_name(node) or _is_attribute(node)):
                last = node.attr.value if _is_attribute(node) else node.value  # type: ignore[attr-defined]
                self._written[last].append((node, inside))
            children = cst_walk.children(node)
            children.reverse()
            stack += [(child, inside) for child in children]

    def _mentioning_values(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        """A ``return``'s value or a call's argument values, ``node`` numbered as a place
        when it has any."""
        if _is_return(node):
            values = [node.value] if node.value is not None else []  # type: ignore[attr-defined]
        elif _is_call(node):
            values = [argument.value for argument in node.args]  # type: ignore[attr-defined]
        else:
            return []
        if values:
            self.places.append(node)  # type: ignore[arg-type]
        return values

    def of(self, text: str) -> list[cst.Return | cst.Call]:
        """The places mentioning a name or attribute written ``text``, in preorder."""
        found: set[int] = set()
        for last, written in self._written.items():
            if last not in text:
                continue
            for node, inside in written:
                if not found.issuperset(inside) and code_of(node).strip() == text:
                    found.update(inside)
        return [self.places[index] for index in sorted(found)]
