"""The report records a command leaves in libcst's context (``records_of`` reads them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext

from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.rewrite.statements import Frame

_SCRATCH_RECORDS = "ml_switcheroo.records"


def publish(
    frame: Frame,
    context: CodemodContext,
    position: Callable[[cst.CSTNode], Any],
    warn: Callable[[str], None],
) -> None:
    """Leave the records of a file's module frame in ``context``, placed at their nodes; an
    escape hatch is also a warning."""
    if not frame.records:
        return
    published = []
    for node, record in frame.records:
        found = position(node)
        if found is not None:
            record = record.at(found.start.line, found.start.column + 1)
        record = record.with_file(context.filename)
        published.append(record)
        if record.kind == "escaped":
            warn(f"line {record.line}: escape hatch for {record.api}: {record.reason}")
    context.scratch.setdefault(_SCRATCH_RECORDS, []).extend(published)


def records_of(context: CodemodContext) -> list[Record]:
    """Report records a command left in ``context`` (converted constructs and escapes)."""
    return list(context.scratch.get(_SCRATCH_RECORDS, []))
