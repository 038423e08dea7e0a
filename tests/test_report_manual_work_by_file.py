"""The Markdown report's manual work, grouped by file: each file with its escape hatches'
lines and APIs, the file with most first."""

from __future__ import annotations

from ml_switcheroo.app.migration_report import to_markdown
from tests.test_report import RECORDS, make, record


def test_manual_work_lists_each_file_with_its_escape_lines_most_first() -> None:
    markdown = to_markdown(make(RECORDS))
    manual = markdown.split("## Manual work")[1].split("\n## ")[0]
    rows = [line for line in manual.splitlines() if line.startswith("| `src/")]
    assert rows == [
        "| `src/a.py` | 2 | 4: `SGD`, 10: `step` |",
        "| `src/c.py` | 1 | 1: `step` |",
    ]


def test_a_run_without_escapes_has_no_manual_work_by_file() -> None:
    converted = [r for r in RECORDS if r["kind"] == "converted"]
    assert "By file:" not in to_markdown(make(converted))


def test_files_with_as_many_escapes_are_in_name_order() -> None:
    records = [
        record("src/z.py", 3, 1, "torch.optim.SGD", "escaped", reason="r"),
        record("src/m.py", 8, 1, "torch.optim.SGD", "escaped", reason="r"),
    ]
    manual = to_markdown(make(records)).split("## Manual work")[1]
    assert manual.index("`src/m.py`") < manual.index("`src/z.py`")
