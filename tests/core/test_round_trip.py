"""The check for files libcst cannot write back byte for byte (ml_switcheroo.rewrite.round_trip)."""

from __future__ import annotations

import itertools

import libcst as cst
import pytest

from ml_switcheroo.rewrite.command_support import keep_final_cr
from ml_switcheroo.rewrite.round_trip import lost_bytes, may_lose_bytes

# Where a control character can sit in a file: {} is the character.
PLACES = {
    "line_start": b"x = 1\n{}y = 2\n",
    "first_line": b"{}x = 1\n",
    "after_bom": b"\xef\xbb\xbf{}x = 1\n",
    "in_indentation": b"if x:\n    a = 1\n{}    b = 2\n",
    "after_indentation": b"if x:\n    a = 1\n    {}b = 2\n",
    "crlf_line_start": b"x = 1\r\n{}y = 2\r\n",
    "blank_line": b"x = 1\n{}\ny = 2\n",
    "comment_line": b"x = 1\n{}# c\ny = 2\n",
    "between_tokens": b"x = 1 {}+ 2\n",
    "end_of_line": b"x = 1{}\n",
    "in_comment": b"x = 1  # a{}b\n",
    "in_string": b"x = 'a{}b'\n",
    "line_start_in_string": b'x = """a\n{}b"""\n',
    "line_start_in_brackets": b"x = (1,\n{}2)\n",
    "after_backslash": b"x = 1 + \\\n{}2\n",
    "end_of_file": b"x = 1\n{}",
    "end_of_crlf_file": b"x = 1\r\ny = 2\r\n{}",
}
CONTROLS = [bytes([code]) for code in [*range(32), 127]]


def _parsed(data: bytes) -> cst.Module | None:
    try:
        return keep_final_cr(cst.parse_module(data), data)
    except cst.ParserSyntaxError:
        return None  # not Python: reported as a syntax error, never written


# Every control character at every place, where libcst parses the result.
PARSED = [
    (place, control)
    for place, control in itertools.product(PLACES, CONTROLS)
    if _parsed(PLACES[place].replace(b"{}", control)) is not None
]


@pytest.mark.parametrize(
    ("place", "control"),
    PARSED,
    ids=lambda value: value if isinstance(value, str) else f"0x{value[0]:02x}",
)
def test_the_check_finds_exactly_the_files_libcst_would_change(place: str, control: bytes) -> None:
    data = PLACES[place].replace(b"{}", control)
    tree = _parsed(data)
    assert tree is not None
    changed = tree.bytes != data
    assert (lost_bytes(tree, data) is not None) == changed
    if changed:
        assert may_lose_bytes(data)


def test_libcst_changes_form_feeds_and_final_crs_only() -> None:
    changed = {
        (place, control)
        for place, control in PARSED
        if _parsed(PLACES[place].replace(b"{}", control)).bytes  # type: ignore[union-attr]
        != PLACES[place].replace(b"{}", control)
    }
    assert {control for _, control in changed} == {b"\x0c", b"\r"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"x = 1\n\x0cy = 2\n", "a form feed (\\x0c) at line 2"),
        (b"if x:\n    a = 1\n    \x0cb = 2\n", "a form feed (\\x0c) at line 3"),
        (b"\xef\xbb\xbf\x0cx = 1\n", "a form feed (\\x0c) at line 1"),
        (b"x = 1\r\ny = 2\nz = 3\r", "a carriage return (\\r) at line 3"),
        (b"x = 1\ry = 2\r\n\x0cz = 3\n", "a form feed (\\x0c) at line 3"),
    ],
)
def test_the_reason_names_the_dropped_byte_and_its_line(data: bytes, reason: str) -> None:
    found = lost_bytes(cst.parse_module(data), data)
    assert (
        found
        == f"not converted: libcst would drop {reason} (it cannot write this file back byte for byte)"
    )


def test_a_form_feed_line_inside_a_string_is_flagged_then_cleared() -> None:
    data = b'x = """a\n\x0cb"""\n'
    assert may_lose_bytes(data)
    assert lost_bytes(cst.parse_module(data), data) is None


def test_lone_cr_lines_mended_by_keep_final_cr_are_not_lost() -> None:
    data = b"x = 1\ry = 2\r"
    assert lost_bytes(keep_final_cr(cst.parse_module(data), data), data) is None


def test_a_file_without_form_feed_or_final_cr_is_not_written_out_again() -> None:
    class _Unwritable(cst.Module):
        @property
        def bytes(self) -> bytes:  # type: ignore[override]
            raise AssertionError("the tree was written out")

    data = b"x = 1\n# a\x0cb\n"
    tree = cst.parse_module(data)
    assert lost_bytes(_Unwritable(body=tree.body), data) is None
