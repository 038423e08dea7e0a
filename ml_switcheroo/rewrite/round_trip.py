"""Files libcst cannot write back byte for byte: never written, whichever command line runs.

libcst promises ``parse_module(data).bytes == data``, and breaks it in two cases (measured with
libcst 1.9.0 over every control character at every place of a line: line start, indentation,
between tokens, end of line, blank line, comment, string, inside brackets, after a backslash, end
of file; ``tests/core/test_round_trip.py`` repeats the measurement on the libcst installed):

* a form feed (``\\x0c``) in the indentation of a line that holds a statement (``\\x0cdef f():``,
  ``    \\x0cx = 1``) is dropped. A form feed on a blank or comment-only line, between tokens,
  in a string or comment, or on a line inside brackets is kept.
* a lone carriage return ending the file is dropped unless libcst takes CR for the file's line
  ending (``x = 1\\n\\r``, ``x = 1\\r\\ny = 2\\r``; a file of lone-CR lines is mended by
  ``command_support.keep_final_cr``).

Every other control character is kept where libcst parses it (in strings and comments), or
makes the file unparseable (a vertical tab in code): reported as a syntax error, never written.

Such a file is never written, even when the codemod changes nothing in it: ``libcst.tool``
writes back ``tree.bytes`` whenever they differ from the file (the form feeds would silently
go), and ``ml-switcheroo convert`` would take the difference for a change made on disk during
the run. A file that needs a change is refused (failed, with the reason); one that needs none
is skipped (``libcst.tool``) or left unchanged (``convert``).

The check is a bytes scan on every file (``may_lose_bytes``: a form feed in a line's
indentation, or a final CR); only a file it flags has its tree written out once more and
compared (``lost_bytes``), which also clears a form feed found inside a multi-line string.
"""

from __future__ import annotations

import re

import libcst as cst

# A form feed in the whitespace that starts a line (the first line too, after a UTF-8 BOM).
_INDENT_FORM_FEED = re.compile(rb"(?:\A(?:\xef\xbb\xbf)?|[\r\n])[ \t\x0c]*\x0c")
_DROPPED = re.compile(rb"[\x0c\r]")
_NAMES = {b"\x0c": "a form feed (\\x0c)", b"\r": "a carriage return (\\r)"}


class LossyRoundTrip(Exception):
    """libcst would not write the file back byte for byte. The message is one line."""


def may_lose_bytes(data: bytes) -> bool:
    """Whether libcst might not write ``data`` back as it is (cheap: a bytes scan)."""
    if data.endswith(b"\r"):
        return True
    return b"\x0c" in data and _INDENT_FORM_FEED.search(data) is not None


def lost_bytes(tree: cst.Module, data: bytes) -> str | None:
    """Why ``tree`` (the parse of ``data``) does not give ``data`` back, or None when it does."""
    if not may_lose_bytes(data):
        return None
    written = tree.bytes
    if written == data:
        return None
    offset = next(
        (i for i, (a, b) in enumerate(zip(data, written, strict=False)) if a != b),
        min(len(data), len(written)),
    )
    # The bytes dropped start at `offset`: the indentation before a form feed, or the CR.
    dropped = _DROPPED.search(data, offset)
    if dropped is None:  # not seen: say so plainly
        return "not converted: libcst would not write this file back byte for byte"
    what = _NAMES[dropped.group()]
    return (
        f"not converted: libcst would drop {what} at line {_line_of(data, dropped.start())} "
        "(it cannot write this file back byte for byte)"
    )


def check(tree: cst.Module, data: bytes) -> None:
    """Raise ``LossyRoundTrip`` when libcst would not write ``tree`` back as ``data``."""
    reason = lost_bytes(tree, data)
    if reason is not None:
        raise LossyRoundTrip(reason)


def _line_of(data: bytes, offset: int) -> int:
    """The 1-based line of ``offset``, with LF, CRLF and lone CR all ending lines."""
    before = data[:offset]
    return before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
