"""The migration report: content, totals, deterministic order, Markdown for people."""

from __future__ import annotations

import json
import random

from ml_switcheroo.app.migration_report import RunSummary, build, to_json, to_markdown
from ml_switcheroo.rewrite.report import Record


def record(file: str, line: int, column: int, api: str, kind: str, **extra: str) -> dict:
    status = extra.pop("status", "escape" if kind == "escaped" else "exact")
    data = Record(
        api=api,
        kind=kind,
        status=status,
        snippet=extra.pop("snippet", f"{api}(...)"),
        reason=extra.pop("reason", ""),
        suggestion=extra.pop("suggestion", ""),
        file=file,
        line=line,
        column=column,
    ).to_json()
    assert not extra
    return data


RECORDS = [
    record("src/b.py", 3, 5, "torch.optim.Adam", "converted", suggestion="optax.adam(1e-3)"),
    record(
        "src/a.py",
        10,
        9,
        "torch.optim.Optimizer.step",
        "escaped",
        reason="torch updates in place | optax returns updates",
        suggestion="updates, state = opt.update(grads, state, params)",
        snippet="opt.step()",
    ),
    record("src/a.py", 2, 7, "torch.optim.SGD", "converted", status="approximate"),
    record(
        "src/a.py",
        4,
        7,
        "torch.optim.SGD",
        "escaped",
        reason="dampening",
        snippet="SGD(p, lr=0.1, dampening=0.5)  # ``` odd comment",
    ),
    record(
        "src/c.py",
        1,
        1,
        "torch.optim.Optimizer.step",
        "escaped",
        reason="torch updates in place | optax returns updates",
    ),
]


def make(records: list[dict]) -> dict:
    summary = RunSummary(
        mode="check", files_scanned=10, prefiltered_out=6, parsed=4, changed=3, failed=1
    )
    return build(summary, records, {"src/z.py": "syntax error at line 1"}, ["src/a.py", "src/b.py"])


def test_totals_and_per_api_counts() -> None:
    report = make(RECORDS)
    assert report["summary"] == {
        "files_scanned": 10,
        "prefiltered_out": 6,
        "skipped_generated": 0,
        "parsed": 4,
        "changed": 3,
        "failed": 1,
        "converted": 2,
        "escaped": 3,
        "conversion_rate": 0.4,
    }
    apis = {a["api"]: a for a in report["apis"]}
    assert list(apis) == sorted(apis)
    assert apis["torch.optim.SGD"] == {
        "api": "torch.optim.SGD",
        "converted": 1,
        "escaped": 1,
        "exact": 0,
        "approximate": 1,
        "files": 1,
    }
    assert apis["torch.optim.Optimizer.step"]["files"] == 2
    assert report["failures"] == [{"file": "src/z.py", "reason": "syntax error at line 1"}]
    files = {f["file"]: f for f in report["files"]}
    assert files["src/a.py"] == {"file": "src/a.py", "changed": True, "converted": 1, "escaped": 2}
    assert files["src/c.py"]["changed"] is False


def test_order_is_deterministic_whatever_the_input_order() -> None:
    expected = to_json(make(RECORDS))
    shuffled = RECORDS[:]
    for seed in range(5):
        random.Random(seed).shuffle(shuffled)
        assert to_json(make(shuffled)) == expected
        assert to_markdown(make(shuffled)) == to_markdown(make(RECORDS))
    located = [(r["file"], r["line"], r["column"]) for r in json.loads(expected)["records"]]
    assert located == sorted(located)


def test_every_record_keeps_location_snippet_reason_and_suggestion() -> None:
    step = next(r for r in make(RECORDS)["records"] if r["file"] == "src/a.py" and r["line"] == 10)
    assert step == {
        "file": "src/a.py",
        "line": 10,
        "column": 9,
        "api": "torch.optim.Optimizer.step",
        "kind": "escaped",
        "status": "escape",
        "snippet": "opt.step()",
        "reason": "torch updates in place | optax returns updates",
        "suggestion": "updates, state = opt.update(grads, state, params)",
        "warnings": [],
    }


def test_markdown_plans_the_manual_work() -> None:
    markdown = to_markdown(make(RECORDS))
    sections = [line for line in markdown.splitlines() if line.startswith("#")]
    assert sections == [
        "# ml_switcheroo migration report",
        "## Summary",
        "## Per API",
        "## Manual work: escape hatches by reason",
        "## Files that failed (left unchanged)",
        "## Escape hatches by file",
        "### `src/a.py` (2)",
        "### `src/c.py` (1)",
        "## Converted constructs by file",
        "### `src/a.py` (1)",
        "### `src/b.py` (1)",
    ]
    # The most frequent reason first; `|` escaped inside tables.
    assert (
        "| `torch.optim.Optimizer.step` | torch updates in place \\| optax returns updates | 2 | 2 |"
        in markdown
    )
    assert "conversion rate **40.0%**" in markdown
    assert "- **4:7** `torch.optim.SGD`: dampening" in markdown
    # A snippet holding backticks gets a longer fence.
    assert "  ````python\n  SGD(p, lr=0.1, dampening=0.5)  # ``` odd comment\n  ````" in markdown
    assert "- `src/z.py`: syntax error at line 1" in markdown


def test_nothing_to_convert() -> None:
    report = build(RunSummary(mode="diff", files_scanned=3, prefiltered_out=3), [], {}, [])
    assert report["summary"]["conversion_rate"] is None
    markdown = to_markdown(report)
    assert "n/a (nothing to convert)" in markdown and "## Per API" not in markdown
