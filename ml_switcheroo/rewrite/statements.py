"""Statement settling: frames, escape hatches, removed statements and moves.

Everything a statement's rewrites need (imports, removed names, report records) is kept in a
``Frame`` and committed only when the statement is translated as a whole; when a construct in it
escapes, the original statement is kept, wrapped in an escape hatch. Removed statements
(``opt.zero_grad()``) hand their comments to the next statement (except pragmas such as
``# type: ignore``, which go with them: ``layout.is_pragma``), a block that would become empty
gets ``pass``, and a schedule's statement moves before the optimizer that uses it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.plan import Plan, Region
from ml_switcheroo.rewrite.layout import comments, is_pragma
from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.spec import escape_hatch
from ml_switcheroo.spec.signature import code_of, dotted_name

# id(placeholder of a removed statement) -> (the placeholder, the comments it hands on); the
# values keep the nodes alive so that ids are never reused.
Removed = dict[int, tuple[cst.CSTNode, list[cst.EmptyLine]]]


@dataclass
class Frame:
    """Effects of the rewrites inside one statement, committed when it is left."""

    escapes: list[escape_hatch.Escape] = field(default_factory=list)
    escape_nodes: list[cst.CSTNode] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    discarded: Counter[str] = field(default_factory=Counter)
    records: list[tuple[cst.CSTNode, Record]] = field(default_factory=list)
    lost_comments: list[str] = field(default_factory=list)
    folded: set[int] = field(default_factory=set)  # ids of calls folded into an optimizer
    translated: set[int] = field(default_factory=set)  # ids of calls rewritten
    skip: bool = False
    # What replaces the whole statement (a hook's ``ReplaceStatement``), if it is not escaped.
    replacement: cst.BaseStatement | None = None
    following: tuple[cst.BaseStatement, ...] = ()  # statements put after the replacement
    # id(an expression in the statement) -> what replaces it (a hook's ``ReplaceEnclosing``).
    enclosing: dict[int, cst.BaseExpression] = field(default_factory=dict)

    def absorb(self, child: Frame) -> None:
        self.imports.extend(child.imports)
        self.discarded.update(child.discarded)
        self.folded.update(child.folded)
        self.translated.update(child.translated)
        self.records.extend(child.records)


class Statements:
    """The statement frames of one file and what settling them decided."""

    def __init__(self) -> None:
        self.frames: list[Frame] = [Frame()]
        self.removed: Removed = {}
        self.needs_end: dict[int, cst.CSTNode] = {}  # statements an ESCAPE-END follows
        self.updated_of: dict[int, cst.CSTNode] = {}  # id(original statement) -> result
        self.escaped: set[int] = set()  # ids of original statements left in escape hatches
        self.replaced_regions: set[int] = set()  # ids of regions a ``ReplaceRegion`` replaced
        # id(a call after a replaced region) -> its text (a ``ReplaceRegion``'s ``outside``)
        self.outside: dict[int, str] = {}

    def is_folded(self, key: int) -> bool:
        """Whether the call with this id was folded into an optimizer translated so far."""
        return any(key in frame.folded for frame in self.frames)

    def discarded(self) -> Counter[str]:
        """Uses removed so far by statements that are translated (or still may be)."""
        return sum((frame.discarded for frame in self.frames), Counter())

    def leave(self, original: cst.BaseStatement, updated: Any) -> Any:
        """Settle the statement whose frame is on top: escaped, or its effects committed."""
        following = self.frames[-1].following
        result = self._settle(original, updated)
        self.updated_of[id(original)] = result
        if following and id(original) not in self.escaped:
            return cst.FlattenSentinel([result, *following])  # a hook's ReplaceStatement
        return result

    def _settle(self, original: cst.BaseStatement, updated: Any) -> Any:
        frame = self.frames.pop()
        parent = self.frames[-1]
        if frame.escapes:
            self.escaped.add(id(original))
            return self._escape(original, frame, parent)
        parent.absorb(frame)
        if frame.replacement is not None:
            updated = self._replaced(original, frame.replacement, parent)
        moved = [comment for comment in frame.lost_comments if not is_pragma(comment)]
        if moved:
            kept = escape_hatch.comment_lines(moved)
            updated = updated.with_changes(leading_lines=[*updated.leading_lines, *kept])
        if isinstance(updated, cst.SimpleStatementLine) and not updated.body:
            placeholder = cst.SimpleStatementLine(
                body=[cst.Pass()], leading_lines=updated.leading_lines
            )
            self.removed[id(placeholder)] = (placeholder, carried_comments(updated))
            return placeholder
        return updated

    def _replaced(
        self, original: cst.BaseStatement, replacement: cst.BaseStatement, parent: Frame
    ) -> cst.BaseStatement:
        """``replacement`` in ``original``'s place, with the lines above it; the names only
        ``original`` used are discarded."""
        parent.discarded.update(names_in(original) - names_in(replacement))
        leading = [*original.leading_lines, *replacement.leading_lines]  # type: ignore[attr-defined]
        return replacement.with_changes(leading_lines=leading)

    def _escape(
        self, original: cst.BaseStatement, frame: Frame, parent: Frame
    ) -> cst.BaseStatement:
        markers = escape_hatch.comment_lines(escape_hatch.begin_lines(frame.escapes))
        escaped = original.with_changes(leading_lines=[*original.leading_lines, *markers])
        self.needs_end[id(escaped)] = escaped
        for node, escape in zip(frame.escape_nodes, frame.escapes, strict=True):
            record = Record(
                api=escape.api,
                kind="escaped",
                status="escape",
                snippet=code_of(node).strip(),
                reason=escape.reason,
                suggestion=escape.suggestion or "",
            )
            parent.records.append((node, record))
        return escaped

    def escape_region(
        self,
        original: cst.BaseStatement,
        region: Region,
        escape: escape_hatch.Escape | None,
        inner: Sequence[tuple[cst.Call, escape_hatch.Escape]] = (),
    ) -> cst.BaseStatement:
        """A statement of a training-step region: kept as is, the region marked once
        (``escape``: the region's, given for its first statement; ``inner``: calls in the
        region that escape on their own, an unfolded clip, each with its record)."""
        result: cst.BaseStatement = original
        if original is region.statements[0]:
            assert escape is not None
            escapes = [escape, *(e for _, e in inner)]
            markers = escape_hatch.comment_lines(escape_hatch.begin_lines(escapes))
            result = original.with_changes(leading_lines=[*original.leading_lines, *markers])
            snippet = "\n".join(code_of(s).strip() for s in region.statements)
            for call, each in [(region.anchor.call, escape), *inner]:
                record = Record(
                    api=each.api,
                    kind="escaped",
                    status="escape",
                    snippet=snippet if each is escape else " ".join(code_of(call).split()),
                    reason=each.reason,
                    suggestion=each.suggestion or "",
                )
                self.frames[-1].records.append((call, record))
        if original is region.statements[-1]:
            if result is original:
                result = original.with_changes()  # a node of its own, to mark the end after it
            self.needs_end[id(result)] = result
        self.escaped.add(id(original))
        self.updated_of[id(original)] = result
        return result

    def settle_body(
        self, body: Sequence[cst.BaseStatement], plan: Plan | None
    ) -> tuple[list[cst.BaseStatement], list[cst.EmptyLine]]:
        """Drop removed statements (keeping their comments) and close escape hatches."""
        settled: list[cst.BaseStatement] = []
        pending: list[cst.EmptyLine] = []
        for statement in self._apply_moves(list(body), plan):
            removed = self.removed.get(id(statement))
            if removed is not None:
                pending.extend(removed[1])
                continue
            needs_end = id(statement) in self.needs_end
            if pending:
                statement = statement.with_changes(
                    leading_lines=[*pending, *statement.leading_lines]
                )
                pending = []
            settled.append(statement)
            if needs_end:
                pending = escape_hatch.comment_lines([escape_hatch.END])
        return settled, pending

    def _apply_moves(
        self, body: list[cst.BaseStatement], plan: Plan | None
    ) -> list[cst.BaseStatement]:
        """Put ``sched = <schedule>`` before the optimizer that uses it as learning rate."""
        if not plan or not plan.moves:
            return body
        for schedule in plan.moves.values():
            optimizer = self.updated_of.get(id(schedule.optimizer.statement))
            if optimizer is None or not any(s is optimizer for s in body):
                continue
            if not self.is_folded(id(schedule.outer.call)):
                continue
            members = [self.updated_of.get(id(m.statement)) for m in schedule.members]
            if any(m is None for m in members) or any(
                id(m.statement) in self.escaped for m in schedule.members
            ):
                continue
            body = _move(body, optimizer, members, up=schedule.move == "up")  # type: ignore[arg-type]
        return body


def _move(
    body: list[cst.BaseStatement],
    optimizer: cst.BaseStatement,
    members: list[cst.BaseStatement],
    *,
    up: bool,
) -> list[cst.BaseStatement]:
    """``members`` right before ``optimizer`` (up), or ``optimizer`` right after them (down)."""
    member_ids = {id(m) for m in members}
    if up:
        result: list[cst.BaseStatement] = []
        for statement in body:
            if id(statement) in member_ids:
                continue
            if statement is optimizer:
                result.extend(members)
            result.append(statement)
        return result
    last = max(i for i, s in enumerate(body) if id(s) in member_ids)
    result = [s for s in body[: last + 1] if s is not optimizer]
    return [*result, optimizer, *body[last + 1 :]]


def carried_comments(line: cst.SimpleStatementLine) -> list[cst.EmptyLine]:
    """What a removed line hands to the next statement: the comment lines above it, and its
    other comments (inside a multi-line import, at the end of the line) except pragmas, which
    annotated the removed line only."""
    inner = [comment for small in line.body for comment in comments(small).elements()]
    trailing = line.trailing_whitespace.comment
    if trailing is not None:
        inner.append(trailing.value)
    kept = escape_hatch.comment_lines(comment for comment in inner if not is_pragma(comment))
    return [*line.leading_lines, *kept]


def names_in(node: cst.CSTNode) -> Counter[str]:
    """Names and dotted names used in ``node`` (import statements excluded)."""
    found: Counter[str] = Counter()
    stack = [node]
    while stack:
        current = stack.pop()
        kind = type(current)
        if kind is cst.Import or kind is cst.ImportFrom:
            continue
        if kind is cst.Name:
            found[current.value] += 1  # type: ignore[attr-defined]
        elif kind is cst.Attribute:
            dotted = dotted_name(current)  # type: ignore[arg-type]
            if dotted is not None:
                found[dotted] += 1
        stack.extend(reversed(cst_walk.children(current)))  # preorder: keys in source order
    return found


def calls_in(tree: cst.CSTNode) -> list[cst.Call]:
    """Every call in ``tree``, in preorder."""
    return [node for node in cst_walk.walk(tree) if type(node) is cst.Call]  # type: ignore[misc]
