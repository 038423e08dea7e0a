"""libcst's code generation without a generator per expression node.

libcst writes out every expression inside ``with self._parenthesize(state):`` and records a
node's position inside ``with state.record_syntactic_position(node):``; both are
``contextlib.contextmanager`` generators, so each expression node written out (the positions
of a file, ``rewrite.positions``, and the bytes of every file that changes) made a generator
and two ``contextlib`` frames, twice: py-spy of ``convert -j 1`` on checkout-large, about
0.6 CPU-s of 25. ``install`` puts plain context managers in their place that make the same
calls in the same order: the left parentheses, the position recorded around the node's own
code, the right parentheses (not written when that code raises, as the generator would not).
It is installed only over the libcst methods it repeats (their code reads what it expects).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from libcst._nodes.expression import _BaseParenthesizedNode
from libcst._nodes.internal import CodegenState

_PARENTHESIZE_NAMES = frozenset({"lpar", "_codegen", "record_syntactic_position", "rpar"})


class _Parenthesized:
    """``_BaseParenthesizedNode._parenthesize(node, state)`` as a plain context manager."""

    __slots__ = ("_node", "_state", "_inner")

    def __init__(self, node: Any, state: CodegenState) -> None:
        self._node = node
        self._state = state
        self._inner: Any = None

    def __enter__(self) -> None:
        state = self._state
        for lpar in self._node.lpar:
            lpar._codegen(state)
        self._inner = state.record_syntactic_position(self._node)
        self._inner.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        suppressed = self._inner.__exit__(kind, value, traceback)
        if kind is not None and not suppressed:
            return False  # the generator would end with the exception: no right parenthesis
        state = self._state
        for rpar in self._node.rpar:
            rpar._codegen(state)
        return kind is not None  # an exception the position's manager swallowed stays so


def _parenthesize(self: Any, state: CodegenState) -> _Parenthesized:
    return _Parenthesized(self, state)


class _NoPosition:
    """``CodegenState.record_syntactic_position``'s manager: it records nothing."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_POSITION = _NoPosition()


def _record_no_position(
    self: CodegenState, node: Any, *, start_node: Any = None, end_node: Any = None
) -> _NoPosition:
    return _NO_POSITION


def _generator_code(method: Any) -> Any:
    """The code of the generator function behind a ``contextmanager`` method, or None."""
    wrapped = getattr(method, "__wrapped__", None)
    return getattr(wrapped, "__code__", None)


def _repeats_parenthesize() -> bool:
    code = _generator_code(_BaseParenthesizedNode.__dict__.get("_parenthesize"))
    return code is not None and set(code.co_names) == _PARENTHESIZE_NAMES


def _repeats_no_position() -> bool:
    code = _generator_code(CodegenState.__dict__.get("record_syntactic_position"))
    return code is not None and not code.co_names and code.co_argcount == 2


_PATCHES = (
    (_BaseParenthesizedNode, "_parenthesize", _parenthesize, _repeats_parenthesize()),
    (CodegenState, "record_syntactic_position", _record_no_position, _repeats_no_position()),
)


def install() -> None:
    """Put the plain context managers in place of libcst's generators (once per process)."""
    for owner, name, replacement, repeats in _PATCHES:
        if repeats and owner.__dict__.get(name) is not replacement:
            setattr(owner, name, replacement)
