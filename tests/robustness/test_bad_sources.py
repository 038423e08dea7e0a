"""Bad, odd and hostile source files, through both command lines, next to good files.

Every case sits in a folder of its own with a good convertible file next to it; all folders are
converted in one run of each command line (``python -m libcst.tool codemod
optimizer.TorchToOptax`` from the repository root, and ``ml-switcheroo convert --in-place``), and
each case is then checked on its own:

* a file that cannot be converted is left byte-identical and named: by exactly one
  ``error: FILE: reason`` line (``convert``), or by libcst's own ``Failed to codemod FILE``
  (libcst prints its traceback, which is libcst's format, not ours);
* a file that converts keeps its encoding, BOM and line endings (the exact bytes are checked);
* the run goes on: every good file is converted, and the counts and exit codes account for the
  failures (``convert``: 3 and ``N failed``; libcst: 1 and ``Failed to codemod N files``).

Files whose read fails, symbolic links and FIFOs are in ``test_odd_files.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.robustness.helpers import (
    GOOD,
    GOOD_CONVERTED,
    convert_cli,
    error_lines,
    libcst_tool,
    snapshot,
    summary_numbers,
)

SGD = b"opt = torch.optim.SGD(params, lr=0.1)"
SGD_OUT = b"opt = optax.sgd(learning_rate=0.1)"


@dataclass(frozen=True)
class Case:
    name: str
    source: bytes
    expected: bytes | None = None  # converted to exactly this; None: left as it is
    failure: str | None = None  # a failure whose one-line reason contains this
    # Needs no change, but libcst would not write it back as it is: libcst's runner reports it
    # skipped (with this reason) instead of writing it; ``convert`` leaves it, silently.
    libcst_skip: str | None = None

    @property
    def fails(self) -> bool:
        return self.failure is not None


def _large_file() -> tuple[bytes, bytes]:
    """About 4 MB: mostly unrelated code (documented functions), an optimizer in the middle."""
    chunk = (
        "def helper_{i}(values, scale={i}):\n"
        '    """Unrelated helper {i}.\n\n'
        + "    Text that documents it at length. "
        * 50
        + '\n    """\n'
        "    total = 0\n"
        "    for v in values:  # a loop\n"
        "        total += v * scale - (v // 3)\n"
        "    return total\n\n\n"
    )
    body = "".join(chunk.format(i=i) for i in range(2000)).encode()
    half = len(body) // 2
    half = body.index(b"\n\n\ndef ", half) + 3
    source = b"import torch\n\n\n" + body[:half] + SGD + b"\n\n\n" + body[half:]
    expected = b"import optax\n\n\n" + body[:half] + SGD_OUT + b"\n\n\n" + body[half:]
    return source, expected


LARGE, LARGE_CONVERTED = _large_file()

CASES = [
    # --------------------------------------------------------------- cannot be converted
    Case(
        "syntax_error",
        b"import torch\nopt = torch.optim.SGD(params, lr=0.1\n",
        failure="syntax error at line",
    ),
    Case("python2_print", b'import torch\nprint "x"\n' + SGD + b"\n", failure="syntax error"),
    Case("invalid_utf8", b"import torch\n" + SGD + b"  # caf\xe9\n", failure="cannot decode"),
    Case(
        "unknown_codec",
        b"# -*- coding: klingon -*-\nimport torch\n" + SGD + b"\n",
        failure="cannot decode",
    ),
    Case("utf16", ("import torch\n" + SGD.decode() + "\n").encode("utf-16"), failure="decode"),
    Case("nul_byte", b"import torch\nx = 1\x00\n" + SGD + b"\n", failure="syntax error"),
    # Nested deeper than libcst's native parser survives (it would kill the process): refused
    # before the parse.
    Case(
        "deep_parentheses",
        b"import torch\n" + SGD + b"\nx = " + b"(" * 3000 + b"1" + b")" * 3000 + b"\n",
        failure="nested too deeply for libcst's parser",
    ),
    Case(
        "long_operator_chain",
        b"import torch\n" + SGD + b"\nx = 1" + b" + 1" * 20000 + b"\n",
        failure="nested too deeply for libcst's parser",
    ),
    Case(
        "long_call_chain",
        b"import torch\n" + SGD + b"\nx = a" + b".b()" * 5000 + b"\n",
        failure="nested too deeply for libcst's parser",
    ),
    Case(
        "long_and_chain",
        b"import torch\n" + SGD + b"\nx = a" + b" and a" * 8000 + b"\n",
        failure="an `and`/`or` chain",
    ),
    # Deep enough for Python's recursion limit in libcst's tree walks, not for its parser.
    Case(
        "recursion_limit",
        b"import torch\n" + SGD + b"\nx = 1" + b" + 1" * 600 + b"\n",
        failure="nested too deeply for libcst (maximum recursion depth exceeded)",
    ),
    # --------------------------------------------------------------- nothing to convert
    Case("empty", b""),
    Case("only_comments", b"# a comment\n# and another one\n"),
    Case("only_blank_lines", b"\n\n\n"),
    # --------------------------------------------------------------- converted, bytes kept
    Case(
        "latin1_cookie",
        "# -*- coding: latin-1 -*-\nimport torch\nname = 'caf\xe9 \xfc'\n".encode("latin-1")
        + SGD
        + b"\n",
        "# -*- coding: latin-1 -*-\nimport optax\nname = 'caf\xe9 \xfc'\n".encode("latin-1")
        + SGD_OUT
        + b"\n",
    ),
    Case("utf8_bom", b"\xef\xbb\xbfimport torch\n" + SGD + b"\n", b"\xef\xbb\xbf" + GOOD_CONVERTED),
    Case(
        "utf8_bom_crlf_non_ascii",
        "\ufeff# é\r\nimport torch\r\n".encode() + SGD + b"\r\n",
        "\ufeff# é\r\nimport optax\r\n".encode() + SGD_OUT + b"\r\n",
    ),
    Case("crlf", b"import torch\r\n" + SGD + b"\r\n", b"import optax\r\n" + SGD_OUT + b"\r\n"),
    Case(
        "mixed_line_endings",
        b"import torch\r\nx = 1\n" + SGD + b"\r\ny = 2\n",
        b"import optax\r\nx = 1\n" + SGD_OUT + b"\r\ny = 2\n",
    ),
    Case(
        "lone_cr",
        b"import torch\rx = 1\r" + SGD + b"\r",
        b"import optax\rx = 1\r" + SGD_OUT + b"\r",
    ),
    Case("no_final_newline", b"import torch\n" + SGD, b"import optax\n" + SGD_OUT),
    Case(
        "tabs",
        b"import torch\ndef f(model):\n\topt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        b"\tif True:\n\t\topt.zero_grad()\n\treturn model\n",
        b"import optax\ndef f(model):\n\topt = optax.sgd(learning_rate=0.1)\n"
        b"\tif True:\n\t\tpass\n\treturn model\n",
    ),
    Case(
        "form_feed",
        b"import torch\n\x0c\n" + SGD + b"\n",
        b"import optax\n\x0c\n" + SGD_OUT + b"\n",
    ),
    Case(
        "form_feed_in_comments_and_strings",
        b"import torch\n# a\x0cb\ns = 'x\x0cy'\n" + SGD + b"  # c\x0cd\n",
        b"import optax\n# a\x0cb\ns = 'x\x0cy'\n" + SGD_OUT + b"  # c\x0cd\n",
    ),
    Case(
        "form_feed_before_a_comment_line",
        b"import torch\n\x0c# section two\n" + SGD + b"\n",
        b"import optax\n\x0c# section two\n" + SGD_OUT + b"\n",
    ),
    # A line starting with a form feed inside a string: the scan flags it, the check clears it.
    Case(
        "form_feed_line_in_a_string",
        b'import torch\ns = """a\n\x0cb"""\n' + SGD + b"\n",
        b'import optax\ns = """a\n\x0cb"""\n' + SGD_OUT + b"\n",
    ),
    # Bytes libcst drops when it writes the file back (see ml_switcheroo.rewrite.round_trip).
    Case(
        "form_feed_before_a_statement",
        b"import torch\n\x0c" + SGD + b"\n",
        failure="libcst would drop a form feed (\\x0c) at line 2",
    ),
    Case(
        "form_feed_in_indentation",
        b"import torch\ndef f(params):\n    x = 1\n\x0c    return torch.optim.SGD(params, lr=0.1)\n",
        failure="libcst would drop a form feed (\\x0c) at line 4",
    ),
    Case(
        "form_feed_on_the_first_line",
        b"\x0cimport torch\n" + SGD + b"\n",
        failure="libcst would drop a form feed (\\x0c) at line 1",
    ),
    Case(
        "final_cr_after_lf_lines",
        b"import torch\n" + SGD + b"\r",
        failure="libcst would drop a carriage return (\\r) at line 2",
    ),
    Case(
        "form_feed_and_nothing_to_convert",
        b"import torch\n\x0cname = torch.optim.SGD.__name__\n",
        libcst_skip="libcst would drop a form feed (\\x0c) at line 2",
    ),
    Case(
        "form_feed_and_no_torch",
        b"x = 1\n\x0cy = 2\n",
        libcst_skip="libcst would drop a form feed (\\x0c) at line 2",
    ),
    # Python 3.12+ syntax: libcst parses it whatever Python runs the tool (3.11 here).
    Case(
        "pep695_type_parameters",
        b"import torch\ndef f[T](x: T) -> T: ...\nclass A[T]:\n    pass\ntype X = int\n"
        b"type Y[T] = list[T]\n" + SGD + b"\n",
        b"import optax\ndef f[T](x: T) -> T: ...\nclass A[T]:\n    pass\ntype X = int\n"
        b"type Y[T] = list[T]\n" + SGD_OUT + b"\n",
    ),
    Case(
        "pep701_fstrings",
        b'import torch\nd = {\'a\': 1}\ns = f"{d["a"]} {f"{f"{1}"}"} {\'\\n\'.join(x)}"\n'
        + SGD
        + b"\n",
        b'import optax\nd = {\'a\': 1}\ns = f"{d["a"]} {f"{f"{1}"}"} {\'\\n\'.join(x)}"\n'
        + SGD_OUT
        + b"\n",
    ),
    Case("large_file", LARGE, LARGE_CONVERTED),
]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two identical trees (one per command line): ``<case>/bad.py`` next to ``<case>/good.py``."""
    trees = {}
    for tool in ("libcst", "convert"):
        root = tmp_path_factory.mktemp(f"bad-sources-{tool}")
        for case in CASES:
            (root / case.name).mkdir()
            (root / case.name / "bad.py").write_bytes(case.source)
            (root / case.name / "good.py").write_bytes(GOOD)
        trees[tool] = root
    return trees


@pytest.fixture(scope="module")
def libcst_run(folders: dict[str, Path]) -> tuple[Path, str, int]:
    result = libcst_tool(folders["libcst"])
    return folders["libcst"], result.stderr, result.returncode


@pytest.fixture(scope="module")
def convert_run(folders: dict[str, Path]) -> tuple[Path, str, int]:
    result = convert_cli(folders["convert"])
    return folders["convert"], result.stderr, result.returncode


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_libcst_tool(case: Case, libcst_run: tuple[Path, str, int]) -> None:
    root, stderr, _ = libcst_run
    bad = root / case.name / "bad.py"
    assert (root / case.name / "good.py").read_bytes() == GOOD_CONVERTED
    failed = f"Failed to codemod {bad}\n" in stderr
    assert failed == case.fails, stderr[-3000:]
    assert bad.read_bytes() == (case.expected if case.expected is not None else case.source)
    if case.fails and "nested too deeply" in case.failure:  # type: ignore[operator]
        # Refused by the command itself: its traceback is one frame, the reason in one line.
        assert f"SourceTooDeep: {case.failure}" in stderr or case.failure in stderr
    if case.fails and "libcst would drop" in case.failure:  # type: ignore[operator]
        assert f"LossyRoundTrip: not converted: {case.failure}" in stderr
    skipped = [
        line for line in stderr.splitlines() if line.startswith(f"Skipped codemodding {bad}:")
    ]
    assert len(skipped) == (case.libcst_skip is not None), stderr[-3000:]
    if case.libcst_skip is not None:
        assert case.libcst_skip in skipped[0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_convert(case: Case, convert_run: tuple[Path, str, int]) -> None:
    root, stderr, _ = convert_run
    name = f"{case.name}/bad.py"
    assert (root / case.name / "good.py").read_bytes() == GOOD_CONVERTED
    mine = [line for line in error_lines(stderr) if line.startswith(f"error: {name}: ")]
    if case.fails:
        assert len(mine) == 1, stderr
        assert case.failure in mine[0], mine[0]
    else:
        assert mine == []
    expected = case.expected if case.expected is not None else case.source
    assert (root / name).read_bytes() == expected
    assert (f"converted {name}\n" in stderr) == (expected != case.source)


def test_the_runs_go_on_and_count_every_failure(
    libcst_run: tuple[Path, str, int], convert_run: tuple[Path, str, int]
) -> None:
    failing = sum(case.fails for case in CASES)
    converted = sum(case.expected is not None for case in CASES)
    skipped = sum(case.libcst_skip is not None for case in CASES)
    root, stderr, code = libcst_run
    assert code == 1
    assert f" - Failed to codemod {failing} files." in stderr
    assert f" - Skipped {skipped} files." in stderr
    assert f" - Transformed {len(CASES) * 2 - failing - skipped} files successfully." in stderr
    root, stderr, code = convert_run
    assert code == 3
    assert "Traceback" not in stderr
    assert len(error_lines(stderr)) == failing  # exactly one line per failed file
    numbers = summary_numbers(stderr)
    assert numbers["files scanned"] == len(CASES) * 2
    assert numbers["failed"] == failing
    assert numbers["changed"] == len(CASES) + converted  # every good file, and the cases
    # No temporary file left behind, nothing else written.
    assert sorted(snapshot(root)) == sorted(
        f"{c.name}/{n}" for c in CASES for n in ("bad.py", "good.py")
    )
