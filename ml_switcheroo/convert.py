"""``ml-switcheroo convert PATHS...``: optimizer.TorchToOptax over a whole repository.

1. Files: the ``.py`` files under PATHS (``git ls-files`` inside a checkout, so ``.gitignore``
   holds; a walk otherwise), minus ``--exclude`` globs.
2. Pre-filter, in this process: every file is read once and scanned for the byte strings the
   semantic map says a convertible file must contain (``ml_switcheroo.core.prefilter``). The
   files it rules out are never parsed.
3. The rest go to libcst's own parallel runner (``parallel_exec_transform_with_prettyprint``,
   ``-j N`` processes) with ``ConvertCommand``, which converts, writes atomically
   (``--in-place``) and leaves one JSON result per file for this process to collect.
4. Diffs, the list of failures, the migration report (``--report``) and a summary.

Exit codes: 0 success (with ``--check``: nothing would change); 1 ``--check`` found files that
would change; 2 usage error (bad option, missing path, broken semantic map, bad report name),
nothing was read or written; 3 at least one file failed (unreadable, not parseable, not
writable...): it is left byte-identical and named on stderr, the others are converted all the
same (3 also when a report cannot be written). 3 wins over 1. 130 when interrupted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

EXIT_OK = 0
EXIT_CHANGES = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_INTERRUPTED = 130

# libcst's default marker (spelt so that this file does not carry it): such files are skipped.
GENERATED_MARKER = f"@gen{''}erated"
_PROGRESS_PREFIX = "\r\033[2K"  # what libcst's progress indicator writes
LONG_RUN_FILES = 16  # files to parse from which a progress indicator is shown (on a terminal)


class _Parser(argparse.ArgumentParser):
    """Errors in one line (``prog: error: ...``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message.splitlines()[0]}\n")


def _command_parser() -> argparse.ArgumentParser:
    """The options of optimizer.TorchToOptax (``--semantic-map``, ``--exact``...), as is."""
    from ml_switcheroo.codemods.optimizer import TorchToOptax

    parser = _Parser(add_help=False, prog="ml-switcheroo convert")
    TorchToOptax.add_args(parser)
    return parser


def build_parser() -> tuple[argparse.ArgumentParser, list[str]]:
    """The ``convert`` parser, and the names of the options passed on to the command."""
    command = _command_parser()
    command_options = sorted(vars(command.parse_args([])))
    parser = _Parser(
        prog="ml-switcheroo convert",
        parents=[command],
        description="Convert torch.optim code to optax in every Python file under PATHS "
        "(optimizer.TorchToOptax), in parallel. Prints a diff and changes nothing unless "
        "--in-place is given.",
        epilog="Exit codes: 0 ok (--check: nothing would change), 1 --check found changes, "
        "2 usage or semantic-map error (nothing touched), 3 some files failed (left "
        "unchanged, the others converted).",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--diff",
        action="store_true",
        help="print a unified diff of every change, change nothing (the default)",
    )
    mode.add_argument(
        "-i", "--in-place", action="store_true", help="rewrite the files (atomically)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 when some file would change (for CI); "
        "add --diff to see the changes",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_positive,
        default=None,
        metavar="N",
        help="worker processes (default: the number of CPUs)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip files whose path (from the current directory or from PATH), or one of "
        "whose directories, matches GLOB; repeatable (e.g. --exclude tests "
        "--exclude 'legacy/*')",
    )
    parser.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="FILE",
        help="write the migration report to FILE.json or FILE.md (repeatable)",
    )
    parser.add_argument(
        "--include-generated",
        action="store_true",
        help=f"also convert files containing {GENERATED_MARKER} (skipped by default, as by libcst)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show libcst's own messages and tracebacks"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary, no progress")
    return parser, command_options


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    parser, command_option_names = build_parser()
    args = parser.parse_args(argv)
    if args.check and args.in_place:
        parser.error("--check changes nothing: it cannot be combined with --in-place")
    for path in args.paths:
        if not os.path.exists(path):
            parser.error(f"no such file or directory: {path}")
    for report in args.report:
        if Path(report).suffix.lower() not in (".json", ".md"):
            parser.error(f"--report {report}: the name must end in .json or .md")
        if not os.path.isdir(os.path.dirname(os.path.abspath(report))):
            parser.error(f"--report {report}: no such directory")
    options = {name: getattr(args, name) for name in command_option_names}
    mode = "in-place" if args.in_place else "check" if args.check and not args.diff else "diff"
    try:
        return _run(args, options, mode, started)
    except KeyboardInterrupt:
        print("ml-switcheroo convert: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace, options: dict[str, Any], mode: str, started: float) -> int:
    from ml_switcheroo.codemods.optimizer import TorchToOptax
    from ml_switcheroo.core import files, migration_report
    from ml_switcheroo.core.errors import SemanticMapError
    from ml_switcheroo.core.prefilter import prefilter_for
    from ml_switcheroo.core.semantic_map import load_semantic_map

    try:  # validated by the option parser already; the shipped map is checked here too
        semantic_map = load_semantic_map(options.get("semantic_map", ()))
    except SemanticMapError as exc:
        print(f"ml-switcheroo convert: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    prefilter = (
        prefilter_for(semantic_map, TorchToOptax.HOOKS) if options.get("prefilter") else None
    )
    show_progress = sys.stderr.isatty() and not args.quiet

    discovery = files.discover(args.paths, args.exclude)
    summary = migration_report.RunSummary(
        mode=mode,
        files_scanned=len(discovery.files),
        semantic_maps=[
            files.display_name(os.path.abspath(m)) for m in options.get("semantic_map", ())
        ],
        options={k: v for k, v in options.items() if k not in ("semantic_map", "prefilter")},
    )
    failures: dict[str, str] = {}  # display name -> reason
    kept: list[str] = []
    marker = GENERATED_MARKER.encode("utf-8")
    for index, path in enumerate(discovery.files):
        if show_progress and index % 500 == 0 and len(discovery.files) >= 5000:
            sys.stderr.write(f"{_PROGRESS_PREFIX}scanning {index}/{len(discovery.files)} files")
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            failures[files.display_name(path)] = f"cannot read the file: {exc.strerror or exc}"
            continue
        if prefilter is not None and not prefilter.matches(data):
            summary.prefiltered_out += 1
        elif not args.include_generated and marker in data:
            summary.skipped_generated += 1
        else:
            kept.append(path)
    if show_progress and len(discovery.files) >= 5000:
        sys.stderr.write(_PROGRESS_PREFIX)

    results: dict[str, dict[str, Any]] = {}
    if kept:  # libcst's progress indicator only when there is a while to wait
        progress = show_progress and len(kept) >= LONG_RUN_FILES
        results = _convert(kept, options, mode, args, progress, failures)
    summary.parsed = len(kept)

    records: list[dict[str, Any]] = []
    changed: list[str] = []
    diffs: list[tuple[str, bytes]] = []
    for path, result in sorted(results.items()):
        name = files.display_name(path)
        for record in result.get("records", []):
            records.append({**record, "file": name})
        if result.get("changed"):
            changed.append(name)
            if result.get("diff"):
                diffs.append((name, result["diff"].encode(result["diff_encoding"])))
    summary.changed = len(changed)
    summary.failed = len(failures)

    _write_diffs(diffs)
    if mode != "diff" and not args.quiet:
        verb = "converted" if mode == "in-place" else "would convert"
        for name in sorted(changed):
            print(f"{verb} {name}", file=sys.stderr)
    for name, reason in sorted(failures.items()):
        print(f"error: {name}: {reason}", file=sys.stderr)

    report = migration_report.build(summary, records, failures, changed)
    report_failed = False
    for target in args.report:
        if Path(target).suffix.lower() == ".json":
            text = migration_report.to_json(report)
        else:
            text = migration_report.to_markdown(report)
        try:
            files.atomic_write(target, text.encode("utf-8"))
        except OSError as exc:
            print(f"error: cannot write the report {target}: {exc}", file=sys.stderr)
            report_failed = True
    if not args.quiet:
        print(_summary_text(report, time.perf_counter() - started), file=sys.stderr)

    if failures or report_failed:
        return EXIT_FAILED
    if args.check and changed:
        return EXIT_CHANGES
    return EXIT_OK


def _convert(
    kept: list[str],
    options: dict[str, Any],
    mode: str,
    args: argparse.Namespace,
    show_progress: bool,
    failures: dict[str, str],
) -> dict[str, dict[str, Any]]:
    """Run libcst's parallel runner over ``kept``; the per-file results, by path."""
    from concurrent.futures.process import BrokenProcessPool

    from ml_switcheroo.core import convert_command, files

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="ml-switcheroo-") as results_dir:
        codemod_args = {
            **options,
            "prefilter": False,  # done above, once
            "results_dir": results_dir,
            "mode": mode,
            "display_root": os.getcwd(),
            "stamps": convert_command.map_stamps(options.get("semantic_map", ())),
        }
        crashed = None
        with _libcst_output(verbose=args.verbose, progress=show_progress):
            try:
                _parallel_run(kept, args, show_progress, codemod_args)
            except BrokenProcessPool as exc:  # a worker died (killed, out of memory, crashed)
                crashed = f"not converted: a worker process died during the run ({exc})"
        for path in kept:
            try:
                with open(convert_command.result_path(results_dir, path), encoding="utf-8") as f:
                    result = json.load(f)
            except FileNotFoundError:
                reason = crashed or convert_command.failure_reason(path)
                failures[files.display_name(path)] = reason
                continue
            if "error" in result:
                failures[files.display_name(path)] = result["error"]
                if args.verbose:
                    print(result.get("traceback", ""), file=sys.stderr)
                continue
            results[path] = result
    return results


def _parallel_run(
    kept: list[str], args: argparse.Namespace, show_progress: bool, codemod_args: dict[str, Any]
) -> None:
    from libcst.codemod import parallel_exec_transform_with_prettyprint

    from ml_switcheroo.core import convert_command

    parallel_exec_transform_with_prettyprint(
        convert_command.ConvertCommand,
        kept,
        jobs=args.jobs or os.cpu_count() or 1,
        # The command never hands libcst a changed tree; with a diff requested, libcst would
        # not write even then.
        unified_diff=1,
        include_generated=True,  # the marker was checked above
        hide_generated=True,
        hide_blacklisted=True,
        hide_progress=not show_progress,
        repo_root=None,
        codemod_args=codemod_args,
    )


class _ProgressOnly(io.TextIOBase):
    """Stands in for stderr while libcst's runner runs: lets its progress line through, drops
    its per-file messages (tracebacks, warnings: this command reports those itself)."""

    def __init__(self, real: Any, progress: bool) -> None:
        self.real = real
        self.progress = progress

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.progress and text.startswith(_PROGRESS_PREFIX):
            self.real.write(text)
            self.real.flush()
        return len(text)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return bool(self.real.isatty())


@contextmanager
def _libcst_output(*, verbose: bool, progress: bool) -> Iterator[None]:
    if verbose:
        yield
        return
    real = sys.stderr
    sys.stderr = _ProgressOnly(real, progress)
    try:
        yield
    finally:
        sys.stderr = real


def _write_diffs(diffs: list[tuple[str, bytes]]) -> None:
    """Each file's diff in the file's own encoding (as ``git diff`` does), in file order."""
    sys.stdout.flush()
    stream = getattr(sys.stdout, "buffer", None)
    for _, diff in sorted(diffs):
        if stream is not None:
            stream.write(diff)
        else:  # a text-only stdout (embedding): the best it can take
            sys.stdout.write(diff.decode("utf-8", "replace"))
    (stream or sys.stdout).flush()


def _summary_text(report: dict[str, Any], seconds: float) -> str:
    s = report["summary"]
    verb = "changed" if report["mode"] == "in-place" else "would change"
    parts = [
        f"{s['files_scanned']} files scanned",
        f"{s['prefiltered_out']} pre-filtered out",
        *([f"{s['skipped_generated']} skipped (generated)"] if s["skipped_generated"] else []),
        f"{s['parsed']} parsed",
        f"{s['changed']} {verb}",
        f"{s['failed']} failed",
    ]
    lines = [f"ml-switcheroo: {', '.join(parts)} in {seconds:.2f} s"]
    apis = report["apis"]
    if apis:
        width = max(len("API"), *(len(a["api"]) for a in apis))
        lines.append(f"  {'API':<{width}}  converted  escaped")
        for a in apis:
            lines.append(f"  {a['api']:<{width}}  {a['converted']:>9}  {a['escaped']:>7}")
    if s["conversion_rate"] is None:
        lines.append("  nothing to convert")
    else:
        total = s["converted"] + s["escaped"]
        lines.append(
            f"  conversion rate: {s['conversion_rate'] * 100:.1f}% ({s['converted']} of {total} "
            f"constructs converted, {s['escaped']} escape hatches to finish by hand)"
        )
    return "\n".join(lines)
