"""Values recorded between two backward passes summed into one NNX step (issue 13, DCGAN's
discriminator step): ``D_x = output.mean().item()`` after ``errD_real.backward()``, before
the fake batch's forward pass rebinds ``output``.

Torch runs the statement there; the NNX loss function cannot (a traced value has no number),
and after the gradient ``output`` names the fake batch's output. The loss function binds the
value the statement reads to a fresh name where torch ran it (``output_1 = output``), returns
it as aux, and the statement runs after the gradient reading that name
(``D_x = output_1.mean().item()``): the same array, which nothing in JAX can change. Only for
an assignment whose every call is a method of such a value (``.mean()``, ``.item()``), none
in place (the map's ``in_place_suffix`` and ``in_place_keywords``), binding no name the loss
uses after it: it then changes nothing the loss reads.
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.semantic_map import SemanticMap


def snapshot_ready(
    statement: cst.BaseStatement, shared: set[str], bound: set[str], spec: SemanticMap
) -> bool:
    """Whether ``statement`` (binding ``bound``) may run after the gradient on snapshots of
    the names ``shared`` it reads with later statements of the loss."""
    if not shared or shared & bound:
        return False
    for node in cst_walk.walk(statement):
        if isinstance(node, cst.Call) and not _method_of(node, shared, spec):
            return False
    return True


def _method_of(call: cst.Call, names: set[str], spec: SemanticMap) -> bool:
    """``output.mean()``, ``output.mean().item()``: a method, not in place, of one of
    ``names`` or of a value computed from it."""
    func = call.func
    if not isinstance(func, cst.Attribute):
        return False
    suffix = spec.in_place_suffix
    if suffix and func.attr.value.endswith(suffix):
        return False
    if any(a.keyword is not None and a.keyword.value in spec.in_place_keywords for a in call.args):
        return False
    root: cst.BaseExpression = func.value
    while isinstance(root, (cst.Attribute, cst.Call, cst.Subscript)):
        root = root.func if isinstance(root, cst.Call) else root.value
    return isinstance(root, cst.Name) and root.value in names


def snapshot_line(fresh: str, name: str) -> cst.BaseStatement:
    """``output_1 = output`` in the loss function, where torch ran the statement."""
    return cst.parse_statement(f"{fresh} = {name}\n")


def renamed(statement: cst.BaseStatement, names: Mapping[str, str]) -> cst.BaseStatement:
    """``statement`` reading the snapshots (``names``: name -> fresh name) instead."""

    class _Rename(cst.CSTTransformer):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            return False  # `attr` is no variable: only `value` is renamed (leave_Attribute)

        def leave_Attribute(
            self, original: cst.Attribute, updated: cst.Attribute
        ) -> cst.BaseExpression:
            return updated.with_changes(value=original.value.visit(self))

        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
            return updated.with_changes(value=names.get(updated.value, updated.value))

    return statement.visit(_Rename())  # type: ignore[return-value]
