"""Keeping the user's formatting and comments when a call is rebuilt.

A rendered translation is a fresh CST; ``carry_layout`` gives it the original call's
line breaks (a multi-line torch call stays multi-line, each argument keeps its comma comment),
and ``lost_comments`` lists comments that did not survive, so the engine can keep them above
the statement: no comment of the input is ever dropped, except pragmas (``is_pragma``).
"""

from __future__ import annotations

import re
from collections import Counter

import libcst as cst

from ml_switcheroo.analysis import cst_walk

#: Comment directives that tools read (type checkers, linters, formatters, coverage, import
#: sorters). Such a comment annotates the line it ends; on a line of its own it means something
#: else (a `# type: ignore` above the first statement silences mypy for the whole module, a
#: `# pylint: disable=...` line disables the check up to the end of the block, `# fmt: off`
#: stops the formatter). So when the statement a pragma ends is removed, or a comment of a
#: rewritten call would move above its statement, a pragma is dropped rather than moved; on a
#: statement that is kept or rewritten in place, it stays at the end of the line.
PRAGMA_DIRECTIVES = (
    "type:",
    "noqa",
    "pylint:",
    "pragma:",
    "mypy:",
    "pyright:",
    "fmt:",
    "isort:",
    "flake8:",
    "ruff:",
    "yapf:",
    "pytype:",
    "pyre-",
    "nosec",
)
# Case-sensitive as the tools read them, except `noqa`, which flake8 takes in any case.
_PRAGMA = re.compile(r"#\s*(?:" + "|".join(map(re.escape, PRAGMA_DIRECTIVES)) + r"|(?i:noqa))")


def is_pragma(comment: str) -> bool:
    """Whether ``comment`` (``# ...``) holds a directive of ``PRAGMA_DIRECTIVES`` (right after a
    ``#``, also after other text: ``# reason  # type: ignore``)."""
    return _PRAGMA.search(comment) is not None


def carry_layout(original: cst.Call, new: cst.BaseExpression) -> cst.BaseExpression:
    """Give the call inside ``new`` that reuses ``original``'s arguments their layout."""
    if not _is_multiline(original) or not original.args:
        return new
    target = _call_holding_args(new, {id(arg.value) for arg in original.args})
    if target is None or not target.args:
        return new
    relaid = _relay(original, target)

    class _Swap(cst.CSTTransformer):
        def leave_Call(self, old: cst.Call, updated: cst.Call) -> cst.Call:
            return relaid if old is target else updated

    if new is target:
        return relaid
    return new.visit(_Swap())


def _relay(original: cst.Call, target: cst.Call) -> cst.Call:
    by_value = {id(arg.value): arg for arg in original.args}
    last_original = original.args[-1]
    separator = _separator(original)
    args = []
    for index, arg in enumerate(target.args):
        source = by_value.get(id(arg.value))
        is_last = index == len(target.args) - 1
        if is_last:
            comma: cst.Comma | cst.MaybeSentinel = _closing_comma(source, last_original)
            after = last_original.whitespace_after_arg
        else:
            comma = (
                source.comma
                if source is not None
                and source is not last_original
                and isinstance(source.comma, cst.Comma)
                else separator
            )
            after = cst.SimpleWhitespace("")
        args.append(arg.with_changes(comma=comma, whitespace_after_arg=after))
    return target.with_changes(args=args, whitespace_before_args=original.whitespace_before_args)


def _closing_comma(source: cst.Arg | None, last_original: cst.Arg) -> cst.Comma | cst.MaybeSentinel:
    closing = last_original.comma
    if not isinstance(closing, cst.Comma):
        return cst.MaybeSentinel.DEFAULT
    if source is None or source is last_original or not isinstance(source.comma, cst.Comma):
        return closing
    # Keep the comment that followed this argument, with the closing line's indentation.
    mine, theirs = source.comma.whitespace_after, closing.whitespace_after
    if isinstance(mine, cst.ParenthesizedWhitespace) and isinstance(
        theirs, cst.ParenthesizedWhitespace
    ):
        return closing.with_changes(
            whitespace_after=theirs.with_changes(
                first_line=mine.first_line, empty_lines=mine.empty_lines
            )
        )
    return closing


def _separator(original: cst.Call) -> cst.Comma:
    """The comma + line break between arguments, without any comment."""
    for arg in original.args[:-1] if len(original.args) > 1 else original.args:
        comma = arg.comma
        if isinstance(comma, cst.Comma) and isinstance(
            comma.whitespace_after, cst.ParenthesizedWhitespace
        ):
            after = comma.whitespace_after.with_changes(
                first_line=cst.TrailingWhitespace(), empty_lines=()
            )
            if arg is original.args[-1]:
                after = after.with_changes(last_line=_indent_of(original))
            return comma.with_changes(whitespace_after=after)
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _indent_of(original: cst.Call) -> cst.SimpleWhitespace:
    before = original.whitespace_before_args
    if isinstance(before, cst.ParenthesizedWhitespace):
        return before.last_line
    return cst.SimpleWhitespace("")


def _is_multiline(call: cst.Call) -> bool:
    if isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
        return True
    return any(
        isinstance(arg.comma, cst.Comma)
        and isinstance(arg.comma.whitespace_after, cst.ParenthesizedWhitespace)
        for arg in call.args
    )


def _call_holding_args(node: cst.BaseExpression, value_ids: set[int]) -> cst.Call | None:
    found: list[tuple[int, cst.Call]] = []

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            held = sum(id(arg.value) in value_ids for arg in call.args)
            if held:
                found.append((held, call))

    cst_walk.visit(node, _Find())
    return max(found, key=lambda item: item[0])[1] if found else None


def comments(node: cst.CSTNode) -> Counter[str]:
    """All comments inside ``node``."""
    found: Counter[str] = Counter()

    class _Collect(cst.CSTVisitor):
        def visit_Comment(self, comment: cst.Comment) -> None:
            found[comment.value] += 1

    cst_walk.visit(node, _Collect())
    return found


def lost_comments(before: cst.CSTNode, after: cst.CSTNode) -> list[str]:
    """Comments of ``before`` that ``after`` no longer holds."""
    return list((comments(before) - comments(after)).elements())
