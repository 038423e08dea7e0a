"""The escape-hatch format: how untranslatable code is marked in place.

The original statement is kept unchanged (so the file still parses and imports) between two
comment markers; every marker line starts with ``# ml_switcheroo:`` so one grep finds them all::

    # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
    # ml_switcheroo: reason: torch's `opt.step()` updates parameters in place; optax is functional
    # ml_switcheroo: suggestion:
    # ml_switcheroo: |   updates, opt_state = opt.update(grads, opt_state, params)
    # ml_switcheroo: |   params = optax.apply_updates(params, updates)
    opt.step()
    # ml_switcheroo: ESCAPE-END

A statement whose leading comments already hold ``ESCAPE-BEGIN`` is never rewritten again,
so a second run over converted code changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import libcst as cst

PREFIX = "# ml_switcheroo:"
BEGIN = f"{PREFIX} ESCAPE-BEGIN"
END = f"{PREFIX} ESCAPE-END"
# where a function of another file's `sched.step()` went (``analysis/stepped_together.py``)
FOLDED = f"{PREFIX} FOLDED"
FOLDED_STEP = re.compile(re.escape(FOLDED) + r" `(\w+)\.step\(\)` after `(\w+)\.step\(\)`")


def folded_step_note(scheduler: str, optimizer: str) -> str:
    """The comment left where ``scheduler.step()`` went: its schedule is the learning rate of
    the optimizer its caller builds (read back by ``FOLDED_STEP``)."""
    return (
        f"{FOLDED} `{scheduler}.step()` after `{optimizer}.step()`: the schedule belongs in "
        "the learning rate of the optimizer the caller builds"
    )


SUGGESTION_LINE = f"{PREFIX} |   "


@dataclass(frozen=True)
class Escape:
    """Why one construct was not translated, and what to write instead."""

    api: str
    reason: str
    suggestion: str | None = None


def begin_lines(escapes: Sequence[Escape]) -> list[str]:
    """Comment lines placed before the escaped statement (without newlines)."""
    apis = ", ".join(dict.fromkeys(e.api for e in escapes))
    lines = [f"{BEGIN} {apis}"]
    for escape in escapes:
        lines.append(f"{PREFIX} reason: {_one_line(escape.reason)}")
    suggestions = [e.suggestion for e in escapes if e.suggestion]
    for suggestion in dict.fromkeys(suggestions):
        lines.append(f"{PREFIX} suggestion:")
        lines.extend(
            SUGGESTION_LINE + line.rstrip() for line in suggestion.strip("\n").splitlines()
        )
    return lines


def comment_lines(texts: Iterable[str]) -> list[cst.EmptyLine]:
    """``EmptyLine`` nodes holding ``texts`` as comments, indented like the statement."""
    return [cst.EmptyLine(indent=True, comment=cst.Comment(text)) for text in texts]


def is_escaped(lines: Sequence[cst.EmptyLine]) -> bool:
    """Whether leading comment lines already open an escape hatch."""
    return any(line.comment is not None and line.comment.value.startswith(BEGIN) for line in lines)


def escaped_statements(body: Sequence[cst.BaseStatement]) -> set[int]:
    """Ids of the statements of ``body`` that sit inside an escape hatch from an earlier run
    (from a statement opening one to the statement before its end marker)."""
    inside = False
    escaped: set[int] = set()
    for statement in body:
        for line in statement.leading_lines:
            text = line.comment.value if line.comment is not None else ""
            if text.startswith(END):
                inside = False
            elif text.startswith(BEGIN):
                inside = True
        if inside:
            escaped.add(id(statement))
    return escaped


def _one_line(text: str) -> str:
    return " ".join(text.split())
