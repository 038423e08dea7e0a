"""The Markdown tables of one ``benchmarks/run.py`` run, from its ``results.json``.

    python benchmarks/table.py benchmarks/results/<time>/results.json            # both
    python benchmarks/table.py RESULTS.json --readme     # README's table: one row per corpus
    python benchmarks/table.py RESULTS.json --detail     # docs/benchmarks.md: per run detail

Every number comes from the file: nothing is measured here. A run that was skipped (or a
ratio without its floor) shows as ``-``. Ratios are wall time over (a)'s, with the CPU-time
ratio in parentheses; "files/s per core" is files over CPU seconds (the whole process tree).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RUNS = ("a", "b", "c", "c1", "c2")
RUN_TITLES = {
    "a": "(a) libcst no-op",
    "b": "(b) libcst TorchToOptax",
    "c": "(c) convert --check",
    "c1": "(c1) convert --check, empty cache",
    "c2": "(c2) convert --check, cached",
}
README_HEADER = (
    "| corpus | files | (a) no-op floor | (b) TorchToOptax | (c) convert --check "
    "| (c1) empty cache | (c2) cached | (b)/(a) | (c)/(a) | (c1)/(a) | (c2)/(a) "
    "| kept by the `ast` stage | parsed by libcst | changed | (c) files/s per core |"
)
README_ALIGN = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
DETAIL_HEADER = (
    "| run | wall | CPU | wall/(a) | CPU/(a) | files/s per core | main process peak "
    "| largest worker peak (workers) | exit | load before |"
)
DETAIL_ALIGN = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
MISSING = "-"


def duration(value: float) -> str:
    """``27.0``; two decimals under 10, none from 1000."""
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def seconds(value: float | None) -> str:
    return MISSING if value is None else f"{duration(value)} s"


def count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def ratio(value: float | None) -> str:
    """Two decimals; three under 0.1 (a cached run's ratio is a few thousandths)."""
    if value is None:
        return MISSING
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}%"


def megabytes(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.0f} MB"


def time_cell(run: Mapping[str, Any] | None) -> str:
    """``27.0 s / 51.2 CPU-s`` (wall / CPU of the process tree)."""
    if run is None:
        return MISSING
    return f"{seconds(run['wall_seconds'])} / {duration(run['cpu_seconds'])} CPU-s"


def ratio_cell(run: Mapping[str, Any] | None) -> str:
    """``0.65 (0.48)``: wall over (a)'s, CPU over (a)'s in parentheses."""
    if run is None or run.get("wall_over_a") is None:
        return MISSING
    return f"{ratio(run['wall_over_a'])} ({ratio(run.get('cpu_over_a'))})"


def stage_cell(counts: Mapping[str, Any]) -> str:
    """``73 of 249 (29.3%)``: parsed by libcst of the files the byte filter kept."""
    return (
        f"{count(counts['parsed_by_libcst'])} of {count(counts['kept_by_bytes'])} "
        f"({percent(counts['stage_keep_rate'])})"
    )


def readme_row(corpus: Mapping[str, Any]) -> str:
    """One corpus's row of README's table."""
    runs, counts = corpus["runs"], corpus["counts"]
    c = runs.get("c")
    cells = [
        f"{corpus['corpus']} ({corpus['mb']:.1f} MB)",
        count(counts["files"]),
        *(time_cell(runs.get(key)) for key in RUNS),
        *(ratio_cell(runs.get(key)) for key in RUNS[1:]),
        stage_cell(counts),
        count(counts["parsed_by_libcst"]),
        count(counts["changed"]),
        MISSING
        if c is None or c.get("files_per_core_second") is None
        else f"{c['files_per_core_second']:,.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def readme_table(results: Mapping[str, Any]) -> str:
    """README's table: one row per corpus, with the line that says what was measured."""
    rows = [README_HEADER, README_ALIGN, *(readme_row(c) for c in results["corpora"])]
    return "\n".join([measured_on(results), "", *rows])


def measured_on(results: Mapping[str, Any]) -> str:
    """What the run measured, where, with which options."""
    versions, machine = results["versions"], results["machine"]
    return (
        f"Measured {results['started']} with `{' '.join(results['command'])}`: commit "
        f"{versions.get('ml_switcheroo_commit') or MISSING}, libcst {versions.get('libcst')}, "
        f"Python {machine['python']}, {machine['cpus']} CPUs, `-j {results['jobs']}`, "
        f"median of {results['repeat']} interleaved run(s)."
    )


def detail_row(key: str, run: Mapping[str, Any] | None) -> str:
    """One run's row of a corpus's detail table."""
    if run is None:
        return f"| {RUN_TITLES[key]} | not run | | | | | | | | |"
    workers = run.get("workers")
    worker = megabytes(run.get("worker_peak_mb"))
    cells = [
        RUN_TITLES[key],
        seconds(run["wall_seconds"]),
        seconds(run["cpu_seconds"]),
        ratio(run.get("wall_over_a")),
        ratio(run.get("cpu_over_a")),
        MISSING
        if run.get("files_per_core_second") is None
        else f"{run['files_per_core_second']:,.1f}",
        megabytes(run.get("main_peak_mb")),
        worker if workers is None else f"{worker} ({workers})",
        str(run["exit"]),
        f"{run['load_before']:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def counts_line(corpus: Mapping[str, Any]) -> str:
    counts = corpus["counts"]
    return (
        f"`{corpus['root']}`: {count(counts['files'])} files scanned by `convert` "
        f"({count(corpus['files_on_disk'])} `.py` files, {corpus['mb']:.1f} MB); the byte "
        f"filter keeps {count(counts['kept_by_bytes'])} ({percent(counts['byte_keep_rate'])}, "
        f"{counts['byte_filter_cpu_seconds']:.1f} CPU-s in one process), the `ast` stage "
        f"{count(counts['parsed_by_libcst'])} of those ({percent(counts['stage_keep_rate'])}): "
        f"parsed by libcst; {count(counts['changed'])} would change, "
        f"{count(counts['failed'])} failed."
    )


def optimizer_files_line(corpus: Mapping[str, Any]) -> str | None:
    found = corpus.get("optimizer_files")
    if not found:
        return None
    if not found.get("runs"):
        return "No file would change: no run on optimizer files."
    runs = found["runs"]
    return (
        f"The {count(found['files'])} files that would change, alone "
        f"({found['mb']:.2f} MB): (a) {time_cell(runs.get('a'))}, (b) "
        f"{time_cell(runs.get('b'))}, (b)/(a) = {ratio_cell(runs.get('b'))}."
    )


def corpus_detail(corpus: Mapping[str, Any]) -> str:
    """A corpus's section of docs/benchmarks.md."""
    runs = corpus["runs"]
    lines = [f"### {corpus['corpus']}", "", counts_line(corpus), ""]
    lines += [DETAIL_HEADER, DETAIL_ALIGN, *(detail_row(k, runs.get(k)) for k in RUNS)]
    extra = optimizer_files_line(corpus)
    if extra:
        lines += ["", extra]
    return "\n".join(lines)


def detail(results: Mapping[str, Any]) -> str:
    """docs/benchmarks.md's results: per corpus, every run."""
    sections = [measured_on(results), *(corpus_detail(c) for c in results["corpora"])]
    return "\n\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("results", type=Path, metavar="RESULTS.json")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--readme", action="store_true", help="README's table only")
    only.add_argument("--detail", action="store_true", help="docs/benchmarks.md's detail only")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    if not args.detail:
        print(readme_table(results))
    if not args.readme and not args.detail:
        print()
    if not args.readme:
        print(detail(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
