"""Stable keys of the facts of a file's analysis: (file, source range, node kind), not ``id()``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import CodeRange

Positions = Mapping[cst.CSTNode, CodeRange]  # libcst's PositionProvider for one module


@dataclass(frozen=True, order=True)
class SiteKey:
    """Where a fact of the plan sits: the file (its path as the command was given it), the
    node's source range (1-based lines, 0-based columns, as libcst's ``PositionProvider``) and
    the node's kind (``Call``, or a statement's: ``SimpleStatementLine``, ``For``...). The
    range tells nested calls apart (``f(g())``, ``a.b(c)(d)``); the kind tells a statement from
    the call it consists of. Equal across parses, processes and runs of the same source, so a
    fact keyed by it can be cached, or merged across files. A call's API is its site's entry."""

    module: str
    line: int
    column: int
    end_line: int
    end_column: int
    kind: str

    @staticmethod
    def of(module: str, node: cst.CSTNode, positions: Positions) -> SiteKey | None:
        """The key of ``node`` (None when ``positions`` does not cover it)."""
        where = positions.get(node)
        if where is None:
            return None
        start, end = where.start, where.end
        kind = type(node).__name__
        return SiteKey(module, start.line, start.column, end.line, end.column, kind)
