"""The migration report of ``ml-switcheroo convert --report FILE.json|FILE.md``.

Everything a run converted and every escape hatch it left, with file:line:column, the source
snippet, the reason and the suggestion, in a deterministic order (file, line, column, kind,
API), with totals per API and per file: enough to plan the manual part of a migration.
The JSON holds no timings or absolute paths of the machine that ran it (files are named
relative to the current directory when they are inside it), so two runs over the same tree
give the same bytes.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = 1


@dataclass
class RunSummary:
    """Counts of one ``convert`` run (the same numbers as the summary it prints)."""

    mode: str  # "diff", "check" or "in-place"
    files_scanned: int = 0
    prefiltered_out: int = 0
    skipped_generated: int = 0
    parsed: int = 0
    changed: int = 0
    failed: int = 0
    semantic_maps: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


def build(
    summary: RunSummary,
    records: Iterable[Mapping[str, Any]],
    failures: Mapping[str, str],
    changed_files: Iterable[str],
) -> dict[str, Any]:
    """The report as plain data (what the JSON holds). Records name files as displayed."""
    ordered = sorted(records, key=_record_key)
    per_api: dict[str, Counter[str]] = defaultdict(Counter)
    api_files: dict[str, set[str]] = defaultdict(set)
    per_file: dict[str, Counter[str]] = defaultdict(Counter)
    for record in ordered:
        api, kind = record["api"], record["kind"]
        per_api[api][kind] += 1
        per_api[api][f"status:{record['status']}"] += 1 if kind == "converted" else 0
        api_files[api].add(record["file"])
        per_file[record["file"]][kind] += 1
    changed = set(changed_files)
    for name in changed:
        per_file.setdefault(name, Counter())
    converted = sum(c["converted"] for c in per_api.values())
    escaped = sum(c["escaped"] for c in per_api.values())
    return {
        "format": FORMAT_VERSION,
        "tool": "ml-switcheroo",
        "mode": summary.mode,
        "semantic_maps": list(summary.semantic_maps),
        "options": dict(sorted(summary.options.items())),
        "summary": {
            "files_scanned": summary.files_scanned,
            "prefiltered_out": summary.prefiltered_out,
            "skipped_generated": summary.skipped_generated,
            "parsed": summary.parsed,
            "changed": summary.changed,
            "failed": summary.failed,
            "converted": converted,
            "escaped": escaped,
            "conversion_rate": _rate(converted, escaped),
        },
        "apis": [
            {
                "api": api,
                "converted": counts["converted"],
                "escaped": counts["escaped"],
                "exact": counts["status:exact"],
                "approximate": counts["status:approximate"],
                "files": len(api_files[api]),
            }
            for api, counts in sorted(per_api.items())
        ],
        "files": [
            {
                "file": name,
                "changed": name in changed,
                "converted": counts["converted"],
                "escaped": counts["escaped"],
            }
            for name, counts in sorted(per_file.items())
        ],
        "records": [_plain(record) for record in ordered],
        "failures": [{"file": name, "reason": failures[name]} for name in sorted(failures)],
    }


_COUNTS = ("files_scanned", "prefiltered_out", "skipped_generated", "parsed", "changed", "failed")


def merge(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The report of one run over all the files of ``reports``, runs over disjoint sets of files
    with the same mode, maps and options (the shards of ``convert --shard K/N``): counts added
    up, records, files and failures put together, totals and rates computed again.

    Raises ValueError when the reports do not fit together (another format, mode, map or
    option; a file reported twice).
    """
    if not reports:
        raise ValueError("no report to merge")
    first = reports[0]
    for report in reports:
        if report.get("format") != FORMAT_VERSION or report.get("tool") != "ml-switcheroo":
            raise ValueError(f"not an ml-switcheroo report of format {FORMAT_VERSION}")
        for key in ("mode", "semantic_maps", "options"):
            if report[key] != first[key]:
                raise ValueError(f"the reports differ in {key}: {first[key]!r}, {report[key]!r}")
    summary = RunSummary(
        mode=first["mode"],
        semantic_maps=list(first["semantic_maps"]),
        options=dict(first["options"]),
    )
    records: list[Mapping[str, Any]] = []
    failures: dict[str, str] = {}
    changed: list[str] = []
    owner: dict[str, int] = {}
    for number, report in enumerate(reports):
        for count in _COUNTS:
            setattr(summary, count, getattr(summary, count) + report["summary"][count])
        named = {f["file"] for f in report["files"]} | {f["file"] for f in report["failures"]}
        for name in named:
            if owner.setdefault(name, number) != number:
                raise ValueError(f"{name} is in two of the reports: shards must not overlap")
        records += report["records"]
        failures.update({f["file"]: f["reason"] for f in report["failures"]})
        changed += [f["file"] for f in report["files"] if f["changed"]]
    return build(summary, records, failures, changed)


def to_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def to_markdown(report: Mapping[str, Any]) -> str:
    """A report for people: totals, the manual work by reason and by file, then the rest."""
    summary = report["summary"]
    records = report["records"]
    escapes = [r for r in records if r["kind"] == "escaped"]
    converted = [r for r in records if r["kind"] == "converted"]
    verb = {"in-place": "changed"}.get(report["mode"], "would change")
    out = ["# ml_switcheroo migration report", ""]
    maps = ", ".join(f"`{m}`" for m in report["semantic_maps"]) or "the shipped map only"
    options = ", ".join(f"`--{k.replace('_', '-')}`" for k, v in report["options"].items() if v)
    out += [f"Mode: `{report['mode']}`. Semantic maps: {maps}. Options: {options or 'none'}.", ""]
    out += ["## Summary", ""]
    out += [
        f"| files scanned | pre-filtered out | skipped (generated) | parsed | {verb} | failed |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {summary['files_scanned']} | {summary['prefiltered_out']} | "
        f"{summary['skipped_generated']} | {summary['parsed']} | {summary['changed']} | "
        f"{summary['failed']} |",
        "",
        f"**{summary['converted']}** constructs converted automatically, **{summary['escaped']}** "
        f"left in escape hatches for manual migration: conversion rate "
        f"**{_percent(summary['conversion_rate'])}**.",
        "",
    ]
    if report["apis"]:
        out += [
            "## Per API",
            "",
            "| API | converted | of which approximate | escaped | files |",
            "|---|---:|---:|---:|---:|",
        ]
        out += [
            f"| `{a['api']}` | {a['converted']} | {a['approximate']} | {a['escaped']} | "
            f"{a['files']} |"
            for a in report["apis"]
        ]
        out.append("")
    if escapes:
        out += _manual_work(escapes)
    if report["failures"]:
        out += ["## Files that failed (left unchanged)", ""]
        out += [f"- `{f['file']}`: {_inline(f['reason'])}" for f in report["failures"]]
        out.append("")
    if escapes:
        out += ["## Escape hatches by file", ""]
        for name, group in _by_file(escapes):
            out += [f"### `{name}` ({len(group)})", ""]
            for record in group:
                out += _escape_entry(record)
    if converted:
        out += ["## Converted constructs by file", ""]
        for name, group in _by_file(converted):
            out += [f"### `{name}` ({len(group)})", ""]
            for record in group:
                out += _converted_entry(record)
    return "\n".join(out).rstrip("\n") + "\n"


def _manual_work(escapes: Sequence[Mapping[str, Any]]) -> list[str]:
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in escapes:
        groups[(record["api"], record["reason"])].append(record)
    lines = [
        "## Manual work: escape hatches by reason",
        "",
        'Every escape hatch is marked in the code (`grep -rn "ml_switcheroo: ESCAPE-BEGIN"`).',
        "",
        "| API | reason | count | files |",
        "|---|---|---:|---:|",
    ]
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    for (api, reason), group in ordered:
        files = len({r["file"] for r in group})
        lines.append(f"| `{api}` | {_inline(reason)} | {len(group)} | {files} |")
    lines.append("")
    return lines + _manual_work_by_file(escapes)


def _manual_work_by_file(escapes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The same escape hatches per file, most first: where each one is and what it is (the
    reasons and suggestions follow in "Escape hatches by file")."""
    groups = sorted(_by_file(escapes), key=lambda item: (-len(item[1]), item[0]))
    lines = ["By file:", "", "| file | escape hatches | line: API |", "|---|---:|---|"]
    for name, group in groups:
        where = ", ".join(
            f"{r['line']}: `{r['api'].rpartition('.')[2]}`"
            for r in sorted(group, key=lambda r: (r["line"], r["column"]))
        )
        lines.append(f"| `{name}` | {len(group)} | {where} |")
    lines.append("")
    return lines


def _escape_entry(record: Mapping[str, Any]) -> list[str]:
    lines = [
        f"- **{record['line']}:{record['column']}** `{record['api']}`: {_inline(record['reason'])}",
        "",
        *_fenced(record["snippet"], indent="  "),
    ]
    if record["suggestion"]:
        lines += ["  Suggestion:", "", *_fenced(record["suggestion"], indent="  ")]
    return lines


def _converted_entry(record: Mapping[str, Any]) -> list[str]:
    status = record["status"]
    note = f" ({status})" if status != "exact" else ""
    lines = [f"- **{record['line']}:{record['column']}** `{record['api']}`{note}"]
    if record["reason"]:
        lines[0] += f": {_inline(record['reason'])}"
    for warning in record.get("warnings", []):
        lines.append(f"  - warning: {_inline(warning)}")
    lines += ["", *_fenced(f"{record['snippet']}\n# becomes\n{record['suggestion']}", "  ")]
    return lines


def _fenced(code: str, indent: str = "") -> list[str]:
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    body = [f"{indent}{line}" if line else "" for line in code.splitlines()]
    return [f"{indent}{fence}python", *body, f"{indent}{fence}", ""]


def _inline(text: str) -> str:
    """One table-safe line of Markdown."""
    return " ".join(text.split()).replace("|", "\\|")


def _by_file(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        groups[record["file"]].append(record)
    return sorted(groups.items())


def _record_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        record["file"] or "",
        record["line"],
        record["column"],
        record["kind"],
        record["api"],
        record["snippet"],
    )


def _plain(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("file", "line", "column", "api", "kind", "status", "snippet", "reason", "suggestion")
    data = {key: record[key] for key in keys}
    data["warnings"] = list(record.get("warnings", []))
    return data


def _rate(converted: int, escaped: int) -> float | None:
    total = converted + escaped
    return round(converted / total, 4) if total else None


def _percent(rate: float | None) -> str:
    return "n/a (nothing to convert)" if rate is None else f"{rate * 100:.1f}%"
