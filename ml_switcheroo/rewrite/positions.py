"""The source positions of one file's nodes, resolved once per file (the plan's keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider


class Positions:
    """Node positions of ``tree``, the file ``context`` is converting."""

    def __init__(self, context: CodemodContext, tree: cst.Module) -> None:
        self.context = context
        self.tree = tree
        self._positions: Any = None

    def of(self, node: cst.CSTNode) -> Any:
        """The position of a node of the file (None when unknown: no metadata wrapper)."""
        if self.context.wrapper is None:
            return None
        return self.all().get(node)

    def all(self) -> Mapping[cst.CSTNode, CodeRange]:
        """The file's node positions (the plan's keys), resolved once per file."""
        if self.context.wrapper is None:
            return MetadataWrapper(self.tree, unsafe_skip_copy=True).resolve(PositionProvider)
        if self._positions is None:
            self._positions = self.context.wrapper.resolve(PositionProvider)
        return self._positions  # type: ignore[no-any-return]
