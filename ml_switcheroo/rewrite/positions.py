"""The source positions of one file's nodes, resolved once per file (the plan's keys).

The positions are libcst's ``PositionProvider``'s, computed by the same code generation of the
module but with a lighter state (``_PositionState``): libcst's state splits every token with a
regular expression, builds a ``CodePosition`` for every node it enters and a generator-based
context manager for every syntactic position, which made resolving the positions cost several
times writing the module out. Here a node's range is four integers until it is asked for
(``NodePositions.get``); the ranges are equal to libcst's, node for node
(``tests/codemods/test_positions.py`` compares them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst.codemod import CodemodContext
from libcst.metadata import CodePosition, CodeRange

_NEWLINE = re.compile(r"\r\n?|\n")  # libcst.metadata.position_provider.NEWLINE_RE

_Range = tuple[int, int, int, int]  # start line, start column, end line, end column


class NodePositions(Mapping[cst.CSTNode, CodeRange]):
    """Node -> ``CodeRange`` of one module, each range built when it is first asked for."""

    def __init__(self, ranges: dict[cst.CSTNode, _Range]) -> None:
        self._ranges = ranges
        self._built: dict[cst.CSTNode, CodeRange] = {}

    def __getitem__(self, node: cst.CSTNode) -> CodeRange:
        built = self._built.get(node)
        if built is None:
            start_line, start_column, end_line, end_column = self._ranges[node]
            built = CodeRange(
                CodePosition(start_line, start_column), CodePosition(end_line, end_column)
            )
            self._built[node] = built
        return built

    def __iter__(self) -> Iterator[cst.CSTNode]:
        return iter(self._ranges)

    def __len__(self) -> int:
        return len(self._ranges)

    def __contains__(self, node: object) -> bool:
        return node in self._ranges


class _SyntacticPosition:
    """``PositionProvidingCodegenState.record_syntactic_position`` as a plain context manager."""

    __slots__ = ("_state", "_node", "_start_node", "_end_node", "_start")

    def __init__(
        self,
        state: _PositionState,
        node: cst.CSTNode,
        start_node: cst.CSTNode | None,
        end_node: cst.CSTNode | None,
    ) -> None:
        self._state = state
        self._node = node
        self._start_node = start_node
        self._end_node = end_node

    def __enter__(self) -> None:
        self._start = (self._state.line, self._state.column)

    def __exit__(self, *exc_info: object) -> None:
        state = self._state
        ranges = state.ranges
        start = ranges[self._start_node][:2] if self._start_node is not None else self._start
        end = (state.line, state.column)
        if self._end_node is not None:
            end = ranges[self._end_node][2:]
        ranges[self._node] = (*start, *end)


class _PositionState(CodegenState):
    """libcst's ``PositionProvidingCodegenState``, node for node, with plain tuples."""

    __slots__ = ("line", "column", "_stack", "ranges")

    def __init__(self, module: cst.Module) -> None:
        super().__init__(
            default_indent=module.default_indent, default_newline=module.default_newline
        )
        self.line = 1  # one-indexed
        self.column = 0  # zero-indexed
        self._stack: list[tuple[int, int]] = []
        self.ranges: dict[cst.CSTNode, _Range] = {}

    def add_indent_tokens(self) -> None:
        self.tokens.extend(self.indent_tokens)
        for token in self.indent_tokens:
            self._advance(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self._advance(value)

    def _advance(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            segments = _NEWLINE.split(value)
            self.line += len(segments) - 1
            self.column = len(segments[-1])
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._stack.append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        start_line, start_column = self._stack.pop()
        if node not in self.ranges:  # a syntactic position recorded inside is kept
            self.ranges[node] = (start_line, start_column, self.line, self.column)

    def record_syntactic_position(  # type: ignore[override]
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> Any:
        return _SyntacticPosition(self, node, start_node, end_node)


def node_positions(tree: cst.Module) -> NodePositions:
    """What libcst's ``PositionProvider`` resolves for ``tree``, node for node."""
    state = _PositionState(tree)
    tree._codegen(state)
    return NodePositions(state.ranges)


class Positions:
    """Node positions of ``tree``, the file ``context`` is converting."""

    def __init__(self, context: CodemodContext, tree: cst.Module) -> None:
        self.context = context
        self.tree = tree
        self._positions: NodePositions | None = None

    def of(self, node: cst.CSTNode) -> Any:
        """The position of a node of the file (None when unknown: no metadata wrapper)."""
        if self.context.wrapper is None:
            return None
        return self.all().get(node)

    def all(self) -> Mapping[cst.CSTNode, CodeRange]:
        """The file's node positions (the plan's keys), resolved once per file."""
        if self.context.wrapper is None:
            return node_positions(self.tree)
        if self._positions is None:
            self._positions = node_positions(self.tree)
        return self._positions
