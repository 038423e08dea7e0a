"""Objects bound to another name: ``c = cfg`` (then ``c.update(clip=3)`` changes
``cfg["clip"]`` through ``c``), ``box = [cfg]``, ``for c in (cfg,)``, ``return cfg``.

A fold that reads ``cfg["clip"]`` once where the optimizer is built is the value torch reads
at each clip only when nothing changes the object holding it; changes through the holder's
own text (``cfg.update(...)``, ``cfg["clip"] = 3``) are found by their text, changes through
another name only when no other name can reach the object.
"""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.signature import code_of

# Parents that hand the value of their child on to another name or container.
_ALIASING = (
    cst.Assign,
    cst.AnnAssign,
    cst.AugAssign,
    cst.NamedExpr,
    cst.Element,
    cst.StarredElement,
    cst.DictElement,
    cst.StarredDictElement,
    cst.For,
    cst.CompFor,
    cst.WithItem,
    cst.Return,
    cst.Yield,
    cst.Lambda,
    cst.IfExp,
    cst.BooleanOperation,
    cst.Param,  # a default: `def tweak(c=cfg): c.update(clip=3)`
)


def _text(node: cst.CSTNode) -> str:
    return " ".join(code_of(node).split())


def _root(node: cst.BaseExpression) -> cst.BaseExpression:
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        node = node.value
    return node


def aliasing(module: cst.Module, holders: set[str]) -> cst.CSTNode | None:
    """The first statement of ``module`` (its small statement, else the node) that binds one
    of ``holders`` (objects as text: ``cfg``, ``args.opt``) to another name or puts it in a
    container (None: none does)."""
    roots = {h.split(".")[0].split("[")[0] for h in holders}
    found: list[cst.CSTNode] = []

    class _Find(cst.CSTVisitor):
        def __init__(self) -> None:
            self.stack: list[cst.CSTNode] = []

        def on_visit(self, node: cst.CSTNode) -> bool:
            if found:
                return False
            parent = self.stack[-1] if self.stack else None
            # `cfg: dict = ...`, `for cfg in ...`, `def f(cfg):` bind the name, not its object
            bound = node in (getattr(parent, "target", None), getattr(parent, "name", None))
            if isinstance(parent, _ALIASING) and not bound and _is_holder(node):
                small = [n for n in self.stack if isinstance(n, cst.BaseSmallStatement)]
                found.append(small[-1] if small else parent)
                return False
            self.stack.append(node)
            return True

        def on_leave(self, original_node: cst.CSTNode) -> None:
            if self.stack and self.stack[-1] is original_node:
                self.stack.pop()

    def _is_holder(node: cst.CSTNode) -> bool:
        if not isinstance(node, (cst.Name, cst.Attribute, cst.Subscript)):
            return False
        root = _root(node)
        return isinstance(root, cst.Name) and root.value in roots and _text(node) in holders

    cst_walk.visit(module, _Find())
    return found[0] if found else None
