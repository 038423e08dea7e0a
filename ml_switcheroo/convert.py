"""``ml-switcheroo convert PATHS...``: optimizer.TorchToOptax over a whole repository.

1. Files: the ``.py`` files under PATHS (``git ls-files`` inside a checkout, so ``.gitignore``
   holds; a walk otherwise), minus ``--exclude`` globs.
2. Pre-filter: every file is read once and scanned for the byte strings the
   semantic map says a convertible file must contain (``ml_switcheroo.analysis.prefilter``);
   the files that have them are parsed with ``ast`` and kept only when something in them can
   resolve to the map (``ml_switcheroo.analysis.second_stage``). The files ruled out are never
   parsed by libcst. In this process, or, with ``-j N`` and no cache, in N processes forked
   from it, each taking whole repositories in turn (``_select_in_parallel``).
3. The rest go to libcst's own parallel runner (``parallel_exec_transform_with_prettyprint``,
   ``-j N`` processes) with ``ConvertCommand``, which converts, writes atomically
   (``--in-place``) and leaves one JSON result per file for this process to collect.
4. Diffs, the list of failures, the migration report (``--report``) and a summary.

With a cache (``--cache DIR``; by default with ``--check``), a file known by its stat is not
read, and bytes converted before are not converted again: their result is replayed
(``ml_switcheroo.app.cache``); when the cache proves that the run's maps compile, they are
compiled (and libcst's command imported) only for the first file it cannot answer.
``--shard K/N`` takes the K-th of N parts of the files, by a hash of each path
(``files.in_shard``); ``ml-switcheroo report merge`` joins the shards' reports.

Exit codes: 0 success (with ``--check``: nothing would change); 1 ``--check`` found files that
would change; 2 usage error (bad option, missing path, broken semantic map, bad report name),
nothing was read or written; 3 at least one file failed (unreadable, not parseable, not
writable...): it is left byte-identical and named on stderr, the others are converted all the
same (3 also when a report cannot be written). 3 wins over 1. 130 when interrupted.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ml_switcheroo.app.interrupt import EXIT_INTERRUPTED, forget_interrupted_string_eval

if TYPE_CHECKING:
    from ml_switcheroo.analysis.prefilter import Prefilter
    from ml_switcheroo.analysis.second_stage import SecondStage
    from ml_switcheroo.app.cache import Cache, SelectionRecord
    from ml_switcheroo.spec.semantic_map import SemanticMap

EXIT_OK = 0
EXIT_CHANGES = 1
EXIT_USAGE = 2
EXIT_FAILED = 3

# libcst's default marker (spelt so that this file does not carry it): such files are skipped.
GENERATED_MARKER = f"@gen{''}erated"
_PROGRESS_PREFIX = "\r\033[2K"  # what libcst's progress indicator writes
_SHARED_IMPORTS = "imports"  # under the results folder: ``repository.share_imports``
LONG_RUN_FILES = 16  # files to parse from which a progress indicator is shown (on a terminal)


class _Parser(argparse.ArgumentParser):
    """Errors in one line (``prog: error: ...``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message.splitlines()[0]}\n")


TARGET_NAMES = ("optax", "nnx")  # the default first (targets.catalogue.TARGETS)


def _command_parser(check_maps: bool = True) -> argparse.ArgumentParser:
    """The options of optimizer.TorchToOptax (``--semantic-map``, ``--exact``...), as is; a
    user map must hold for one of the targets (the chosen one checks it again at the run).
    Without ``check_maps``: no map is checked and neither the command nor the targets are
    imported (the help text, never shown then, names the default target)."""
    from ml_switcheroo.rewrite.options import add_arguments

    parser = _Parser(add_help=False, prog="ml-switcheroo convert")
    if not check_maps:
        add_arguments(parser, TARGET_NAMES[0], (), check_maps=False)
        return parser
    from ml_switcheroo.codemods.optimizer import TorchToOptax
    from ml_switcheroo.targets.catalogue import TARGETS

    add_arguments(parser, TorchToOptax.TARGET.label, tuple(TARGETS.values()))
    return parser


class _Unparsed(Exception):
    """What ``_QuietParser`` raises instead of exiting."""


class _QuietParser(_Parser):
    """Raises ``_Unparsed`` on any error while ``parsing`` (the caller parses again with the
    full checks); a usage error after that exits as ``_Parser``'s do."""

    parsing = True

    def error(self, message: str) -> NoReturn:
        if self.parsing:
            raise _Unparsed(message)
        super().error(message)


def build_parser(check_maps: bool = True) -> tuple[argparse.ArgumentParser, list[str]]:
    """The ``convert`` parser, and the names of the options passed on to the command.
    Without ``check_maps``: one that checks no map and raises ``_Unparsed`` on any error,
    ``-h`` included (see ``_parse_arguments``)."""
    command = _command_parser(check_maps)
    command_options = sorted(vars(command.parse_args([])))
    parser = (_Parser if check_maps else _QuietParser)(
        prog="ml-switcheroo convert",
        parents=[command],
        add_help=check_maps,
        description="Convert torch.optim code to optax in every Python file under PATHS "
        "(optimizer.TorchToOptax), in parallel. Prints a diff and changes nothing unless "
        "--in-place is given.",
        epilog="Exit codes: 0 ok (--check: nothing would change), 1 --check found changes, "
        "2 usage or semantic-map error (nothing touched), 3 some files failed (left "
        "unchanged, the others converted).",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    parser.add_argument(
        "--target",
        choices=TARGET_NAMES,
        default=TARGET_NAMES[0],
        help="what the code becomes: optax (the default: optax transformations, training "
        "steps in escape hatches) or nnx (Flax NNX: nnx.Optimizer and the training step as "
        "nnx.value_and_grad; optimizer.TorchToNNX)",
    )
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
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache",
        metavar="DIR",
        help="reuse the results of earlier runs kept in DIR, keyed by file content, maps, "
        "options and version (default with --check: $XDG_CACHE_HOME/ml-switcheroo)",
    )
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write a cache")
    parser.add_argument(
        "--shard",
        type=_shard,
        metavar="K/N",
        help="take only the K-th of N shards of the files (by a hash of each path, 1 <= K <= "
        "N): N runs, one per K, together cover every file once; merge their --report JSON "
        "files with `ml-switcheroo report merge`",
    )
    return parser, command_options


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _shard(text: str) -> tuple[int, int]:
    """``K/N`` with 1 <= K <= N."""
    k, slash, n = text.partition("/")
    try:
        shard, count = int(k), int(n)
    except ValueError:
        shard = count = 0
    if not slash or count < 1 or not 1 <= shard <= count:
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, got {text!r}")
    return shard, count


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    # From the start: a Ctrl-C while libcst and the semantic map load says so in one line too.
    try:
        with _graceful_signals():
            try:
                return _main(argv, started)
            except KeyboardInterrupt as exc:
                return _interrupted(exc)
    except KeyboardInterrupt as exc:  # landed while the handlers were being restored
        return _interrupted(exc)


def _interrupted(exc: KeyboardInterrupt) -> int:
    """The one line of an interrupted run and its exit code."""
    forget_interrupted_string_eval()
    signum = _STOP.signal or signal.SIGINT
    done = getattr(exc, "converted", None)
    verb = _DONE[getattr(exc, "mode", "in-place")]
    what = "" if done is None else f": {done} files {verb}, the others left as they were"
    print(f"ml-switcheroo convert: interrupted by {signum.name}{what}", file=sys.stderr)
    return EXIT_INTERRUPTED if signum == signal.SIGINT else 128 + signum


def _main(argv: Sequence[str] | None, started: float) -> int:
    from ml_switcheroo.spec.errors import SemanticMapError

    parser, args, options, maps_compiled = _parse_arguments(argv)
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
    mode = "in-place" if args.in_place else "check" if args.check and not args.diff else "diff"
    try:
        return _run(args, options, mode, started, maps_compiled)
    except SemanticMapError as exc:  # the maps are compiled at the start, or on first use
        print(f"ml-switcheroo convert: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _parse_arguments(
    argv: Sequence[str] | None,
) -> tuple[argparse.ArgumentParser, argparse.Namespace, dict[str, Any], bool]:
    """The parser, the arguments, the command's options and whether the run's cache proves
    that its maps compile (``cache.maps_compiled_under``). Such a run parses without
    compiling a map or importing the command; any other run (or any argument error, ``-h``)
    is parsed again by the full parser, which checks the maps as it always did."""
    quick, names = build_parser(check_maps=False)
    try:
        args = quick.parse_args(argv)
    except _Unparsed:
        pass
    else:
        quick.parsing = False  # type: ignore[attr-defined]
        options = _command_options(args, names)
        if _cache_proves_maps(args, options):
            return quick, args, options, True
    parser, names = build_parser()
    args = parser.parse_args(argv)
    return parser, args, _command_options(args, names), False


def _command_options(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The options passed on to the command (and part of the cache key)."""
    options = {name: getattr(args, name) for name in names}
    if args.target != TARGET_NAMES[0]:
        options["target"] = args.target  # passed to ConvertCommand (and in the cache key)
    return options


def _cache_proves_maps(args: argparse.Namespace, options: dict[str, Any]) -> bool:
    """Whether the cache this run uses holds the proof that its maps compile."""
    from ml_switcheroo.app import cache

    if args.no_cache or not (args.cache or args.check):
        return False
    root = args.cache or cache.default_dir()
    maps = options.get("semantic_map", ())
    return cache.maps_compiled_under(root, maps, options, args.include_generated)


_DONE = {"in-place": "converted", "check": "checked", "diff": "diffed"}


class _Stop:
    """What the SIGINT/SIGTERM handler of a run knows (see ``_graceful_signals``)."""

    def __init__(self) -> None:
        self.file: str | None = None  # created on a signal: workers skip the files left
        self.main_pid: int | None = None
        self.signal: signal.Signals | None = None
        self.in_runner = False  # in libcst's runner: KeyboardInterrupt waits until it returns

    def requested(self) -> bool:
        return self.signal is not None or bool(self.file and os.path.exists(self.file))


_STOP = _Stop()


def _on_signal(signum: int, frame: object) -> None:
    """SIGINT or SIGTERM: stop without leaving any file half-done.

    Every process creates the stop file: the file at hand is finished (its write is atomic
    anyway), the files after it are skipped (``ConvertCommand`` checks the stop file), and
    libcst's runner returns. In a worker process (forked with this handler) that is all. The
    main process then raises KeyboardInterrupt (the run ends, one line says how many files were
    done), but not inside libcst's runner: there it could break the process pool in the middle
    of its bookkeeping (the run would hang) or, with -j 1, stop a file between the creation of
    its temporary file and its rename; ``_convert`` raises it once the runner has returned.
    A second signal is ignored: the run is stopping already.
    """
    if _STOP.file:
        with suppress(OSError):
            open(_STOP.file, "ab").close()
    if os.getpid() != _STOP.main_pid or _STOP.signal is not None:
        return
    _STOP.signal = signal.Signals(signum)
    if not _STOP.in_runner:
        raise KeyboardInterrupt


@contextmanager
def _graceful_signals() -> Iterator[None]:
    _STOP.__init__()  # type: ignore[misc]
    _STOP.main_pid = os.getpid()
    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _on_signal)
    except ValueError:  # not the main thread (embedding): signals stay as they are
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Stages:
    """The run's semantic map and the pre-filter stages built from it, each made on first
    use: a run whose every file the cache answers compiles no map and imports no target."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.map_files = options.get("semantic_map", ())
        self.target_name: str = options.get("target", TARGET_NAMES[0])
        self.enabled = bool(options.get("prefilter"))  # the pre-filter stages run

    @cached_property
    def semantic_map(self) -> SemanticMap:
        """The run's map (raises ``SemanticMapError``)."""
        from ml_switcheroo.targets.catalogue import TARGETS, load_semantic_map

        return load_semantic_map(self.map_files, TARGETS[self.target_name])

    @cached_property
    def prefilter(self) -> Prefilter | None:
        """The byte pre-filter (None: ``--no-prefilter``)."""
        from ml_switcheroo.analysis.prefilter import prefilter_for
        from ml_switcheroo.codemods.optimizer import TorchToOptax

        if not self.enabled:
            return None
        return prefilter_for(self.semantic_map, TorchToOptax.HOOKS)

    @cached_property
    def stage(self) -> SecondStage | None:
        """The ``ast`` stage (None: ``--no-prefilter``)."""
        from dataclasses import replace

        from ml_switcheroo.analysis.second_stage import second_stage_for
        from ml_switcheroo.codemods.optimizer import TorchToOptax

        if not self.enabled:
            return None
        stage = second_stage_for(self.semantic_map, TorchToOptax.HOOKS)
        return replace(stage, target_root=self.target_name)


def _run(
    args: argparse.Namespace,
    options: dict[str, Any],
    mode: str,
    started: float,
    maps_compiled: bool = False,
) -> int:
    """The run; with ``maps_compiled`` (proven by the cache) the maps are compiled on first
    use, else first of all (a broken map: ``SemanticMapError`` before any file is read)."""
    from ml_switcheroo.analysis import ast_nodes
    from ml_switcheroo.analysis.repository import (
        index_for,
        pin_sources,
        release_pins,
        selecting,
    )

    index_for.cache_clear()  # a new run reads the repository again
    from ml_switcheroo.app import cache as cache_files
    from ml_switcheroo.app import files, migration_report

    stages = _Stages(options)
    if not maps_compiled:
        stages.semantic_map  # noqa: B018 - validated by the option parser already; checked here
    show_progress = sys.stderr.isatty() and not args.quiet

    discovery = files.discover(args.paths, args.exclude)
    paths = discovery.files
    if args.shard:
        paths = [p for p in paths if files.in_shard(p, *args.shard)]
    cache = _open_cache(args, options, stages)
    if cache is not None and not maps_compiled:
        cache.prove_maps()
    summary = migration_report.RunSummary(
        mode=mode,
        files_scanned=len(paths),
        semantic_maps=[
            files.display_name(os.path.abspath(m)) for m in options.get("semantic_map", ())
        ],
        options={k: v for k, v in options.items() if k not in ("semantic_map", "prefilter")},
    )
    failures: dict[str, str] = {}  # display name -> reason
    kept: list[str] = []
    replayed: dict[str, dict[str, Any]] = {}  # path -> its result, from the cache
    marker = None if args.include_generated else GENERATED_MARKER.encode("utf-8")
    # no file is written before the conversion; the cyclic collector paused while the
    # selection parses and keeps trees (``ast_nodes.collector_paused``)
    with selecting(), ast_nodes.collector_paused():
        shares = _selection_shares(args, stages, len(paths))
        if shares > 1:
            selected = _select_in_parallel(
                paths, shares, stages, marker, mode, show_progress, cache
            )
        else:
            selected = _select(paths, stages, marker, cache, mode, show_progress)
        for path, outcome, detail in selected:
            if outcome == _FAILED:
                failures[files.display_name(path)] = detail
            elif outcome == cache_files.PREFILTERED:
                summary.prefiltered_out += 1
            elif outcome == cache_files.GENERATED:
                summary.skipped_generated += 1
            elif detail is not None:
                replayed[path] = detail
            else:
                kept.append(path)
        if kept:
            _share_repository_indexes(kept)
            # every question about another file, in every worker, sees it as it is now, though
            # a worker may rewrite it first (``repository.pin_sources``)
            pin_sources(kept)
        # What the selection keeps leaves the collector's reach before the collector resumes:
        # never scanned again during the conversion, and the workers libcst forks share its
        # pages instead of copying them. (No collection first: the selection leaves next to no
        # garbage, 82 objects on checkout-large; the collection over all it keeps, explicit or
        # set off by the first allocation after the pause, cost 0.4-0.7 CPU-s here.)
        gc.freeze()

    results: dict[str, dict[str, Any]] = {}
    content_failures: dict[str, tuple[str, str]] = {}
    try:
        if kept:  # libcst's progress indicator only when there is a while to wait
            progress = show_progress and len(kept) >= LONG_RUN_FILES
            results = _convert(kept, options, mode, args, progress, failures, content_failures)
    finally:
        gc.unfreeze()  # back in the oldest generation, without a scan
        release_pins()
    if kept and cache is not None:
        cache.recheck_repositories()  # files converted in place: their answers change
        _store_results(cache, results, content_failures)
    if cache is not None:
        cache.save_index()
    for path, cached in replayed.items():
        if "error" in cached:
            failures[files.display_name(path)] = cached["error"]
        else:
            results[path] = cached
    summary.parsed = len(kept) + len(replayed)

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
    if not args.quiet:
        for link, target in discovery.outside_links:
            print(
                f"skipped {files.display_name(link)}: a symbolic link to "
                f"{files.display_name(target)}, outside the paths given",
                file=sys.stderr,
            )
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
        elapsed = time.perf_counter() - started
        text = _summary_text(report, elapsed, len(discovery.outside_links), len(replayed))
        print(text, file=sys.stderr)

    if failures or report_failed:
        return EXIT_FAILED
    if args.check and changed:
        return EXIT_CHANGES
    return EXIT_OK


def _open_cache(
    args: argparse.Namespace, options: dict[str, Any], stages: _Stages | None = None
) -> Cache | None:
    """The run's ``cache.Cache``: ``--cache DIR``, the default one with ``--check``, or None;
    its dependency answers use the run's map and target (``stages``)."""
    from ml_switcheroo.app import cache

    if args.no_cache or not (args.cache or args.check):
        return None
    root = args.cache or cache.default_dir()
    found = cache.open_cache(
        root,
        options.get("semantic_map", ()),
        options,
        args.include_generated,
        None if stages is None else (lambda: stages.semantic_map),
        None if stages is None else stages.target_name,
    )
    if found is None and not args.quiet:
        print(f"ml-switcheroo convert: cache {root} not usable; running without", file=sys.stderr)
    return found


_FAILED = "failed"  # a selection outcome: the file could not be read (the detail says why)
_PARALLEL_SELECTION_FILES = 200  # files from which the selection is shared out (``-j`` > 1)
_MAX_SELECTION_UNITS = 1000  # their numbers fit in one atomic write to a pipe (4 bytes each)


def _select(
    paths: Sequence[str],
    stages: _Stages,
    marker: bytes | None,
    cache: Cache | SelectionRecord | None,
    mode: str,
    show_progress: bool = False,
    progress: tuple[int, int] | None = None,
) -> list[tuple[str, str, Any]]:
    """What the pre-filter stages make of each of ``paths``, in their order: (path, outcome,
    detail). The outcome is ``_FAILED`` (detail: why), ``cache.PREFILTERED`` (by the bytes or
    by the ``ast`` stage), ``cache.GENERATED``, or ``cache.CONVERTED`` (detail: the result the
    cache replays, or None: the file is converted). ``progress``: (step, total) when these
    are every step-th of the run's files, for the numbers ``show_progress`` shows."""
    from ml_switcheroo.app import cache as cache_files

    step, total = progress or (1, len(paths))
    selected: list[tuple[str, str, Any]] = []
    sources: dict[str, bytes] = {}  # path -> the bytes the pre-filter read, of a kept file
    for index, path in enumerate(paths):
        shown = index * step
        if show_progress and shown % 500 < step and total >= 5000:
            sys.stderr.write(f"{_PROGRESS_PREFIX}scanning {shown}/{total} files")
        try:
            outcome, cached, data = _prescan(path, stages, marker, cache, mode)
        except OSError as exc:
            selected.append((path, _FAILED, f"cannot read the file: {exc.strerror or exc}"))
            continue
        selected.append((path, outcome, cached))
        if _converted(outcome, cached) and data is not None:
            sources[path] = data
    if show_progress and total >= 5000:
        sys.stderr.write(_PROGRESS_PREFIX)
    to_convert = [path for path, outcome, cached in selected if _converted(outcome, cached)]
    if stages.enabled and to_convert and stages.stage is not None:
        kept = set(_second_stage(to_convert, sources, stages.stage, cache))
        selected = [
            (path, cache_files.PREFILTERED, None)
            if _converted(outcome, cached) and path not in kept
            else (path, outcome, cached)
            for path, outcome, cached in selected
        ]
    if cache is not None:
        selected = [
            (path, outcome, _replay(cache, path, outcome, cached, mode))
            for path, outcome, cached in selected
        ]
    return selected


def _replay(cache: Cache | SelectionRecord, path: str, outcome: str, cached: Any, mode: str) -> Any:
    """The result the cache replays for a file the selection hands the conversion, looked up
    only now that both stages kept it (the lookup's key digests the files the repository
    links it to: on torch's sources, 247 files the byte filter keeps cost 66 CPU-s of
    profiled time there, where the 17 the ``ast`` stage keeps cost 5)."""
    if not _converted(outcome, cached):
        return cached
    sha = cache.recorded_sha(path)
    found = cache.result(path, sha) if sha is not None else None
    return found if _replayable(found, mode) else None


def _converted(outcome: str, cached: Any) -> bool:
    """Whether a selection outcome hands the file to the conversion."""
    from ml_switcheroo.app import cache as cache_files

    skipped = (_FAILED, cache_files.PREFILTERED, cache_files.GENERATED)
    return outcome not in skipped and cached is None


def _selection_shares(args: argparse.Namespace, stages: _Stages, count: int) -> int:
    """In how many processes the selection of ``count`` files runs: one per job (``-j``, at
    most one per core) when the pre-filter stages run over enough files, else one (so does
    a process running other threads, which a fork could leave holding a lock). With a
    cache, the files it knows by their stat are answered here first
    (``_select_in_parallel``)."""
    import threading

    if not stages.enabled or count < _PARALLEL_SELECTION_FILES:
        return 1
    if threading.active_count() > 1:
        return 1
    cores = os.cpu_count() or 1
    return max(1, min(args.jobs or cores, cores))


def _select_in_parallel(
    paths: Sequence[str],
    shares: int,
    stages: _Stages,
    marker: bytes | None,
    mode: str,
    show_progress: bool,
    cache: Cache | None = None,
) -> list[tuple[str, str, Any]]:
    """``_select`` over ``paths`` in ``shares`` processes: this one and ``shares - 1`` forked
    from it. The files go in units (``_selection_units``: a repository's files, so that what
    the questions about a repository read is read in one process), which each process takes
    from a pipe one after the other until none is left. Each file's outcome depends on its
    bytes and its repository only, so the result is ``_select``'s over all the paths, in
    their order, whichever process took which unit. A child that fails (or is killed) has
    its units selected here again; an interrupt here ends the children. With a ``cache``,
    the files it knows by their stat are answered here first, and the others shared out
    when there are enough of them: each process records what it learns for the cache in a
    ``SelectionRecord`` per unit, which this process replays into the cache before it looks
    up the results to replay."""
    if cache is not None:
        return _select_known_first(paths, shares, stages, marker, mode, show_progress, cache)
    return [
        entry for entry, _ in _select_shared(paths, shares, stages, marker, mode, show_progress)
    ]


def _select_known_first(
    paths: Sequence[str],
    shares: int,
    stages: _Stages,
    marker: bytes | None,
    mode: str,
    show_progress: bool,
    cache: Cache,
) -> list[tuple[str, str, Any]]:
    """``_select_in_parallel`` with a cache: what it knows by the stat, then the others."""
    outcomes: dict[str, tuple[str, str, Any]] = {}
    unknown: list[str] = []
    for path in paths:
        try:
            known = _known_to_cache(path, stages, cache, mode)
        except OSError:  # cannot be stat'ed: the selection says why
            known = None
        if known is None:
            unknown.append(path)
        else:
            outcomes[path] = (path, known[0], known[1])
    if len(unknown) < _PARALLEL_SELECTION_FILES:
        fresh = _select(unknown, stages, marker, cache, mode, show_progress)
    else:
        shared = _select_shared(unknown, shares, stages, marker, mode, show_progress, True)
        records = {id(record): record for _, record in shared if record is not None}
        for record in records.values():  # one per unit, in the order of the paths
            record.replay_into(cache)
        fresh = [
            (path, outcome, _replay(cache, path, outcome, cached, mode))
            for (path, outcome, cached), _ in shared
        ]
    outcomes.update((entry[0], entry) for entry in fresh)
    return [outcomes[path] for path in paths]


def _select_shared(
    paths: Sequence[str],
    shares: int,
    stages: _Stages,
    marker: bytes | None,
    mode: str,
    show_progress: bool,
    recording: bool = False,
) -> list[tuple[tuple[str, str, Any], SelectionRecord | None]]:
    """The processes of ``_select_in_parallel``: each file's outcome in ``paths``' order,
    with the ``SelectionRecord`` of the unit it was selected in (``recording``) or None."""
    import pickle

    stages.prefilter  # noqa: B018 - built once, before the fork
    stages.stage  # noqa: B018
    units = _selection_units(paths, shares)
    _share_split_word_tables(units, shares)
    queue_out, queue_in = os.pipe()
    children: list[tuple[int, int]] = []  # (pid, read end of its pipe)
    found: dict[int, _Unit] = {}
    try:
        # every unit number in the pipe before any process reads: 4 bytes each, in one write
        os.write(queue_in, b"".join(n.to_bytes(4, "little") for n in range(len(units))))
        for _ in range(1, shares):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: select the units it takes, hand them back, end
                code = 1
                try:
                    os.close(read_end)
                    os.close(queue_in)
                    taken = _take_units(queue_out, units, stages, marker, mode, recording)
                    with os.fdopen(write_end, "wb") as out:
                        pickle.dump(taken, out, protocol=pickle.HIGHEST_PROTOCOL)
                    code = 0
                finally:
                    os._exit(code)
            os.close(write_end)
            children.append((pid, read_end))
        os.close(queue_in)
        queue_in = -1
        found.update(_take_units(queue_out, units, stages, marker, mode, recording, show_progress))
        while children:
            pid, read_end = children.pop(0)
            found.update(_collected(pid, read_end) or {})
    finally:
        for fd in (queue_out, queue_in):
            if fd >= 0:
                with suppress(OSError):
                    os.close(fd)
        for pid, read_end in children:  # interrupted: the children end
            with suppress(OSError):
                os.close(read_end)
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with suppress(OSError):
                os.waitpid(pid, 0)
    for number, unit in enumerate(units):  # a unit a failed child took: selected here
        if number not in found:
            found[number] = _selected_unit(unit, stages, marker, mode, recording)
    outcomes = {
        entry[0]: (entry, record) for selected, record in found.values() for entry in selected
    }
    return [outcomes[path] for path in paths]


_Unit = tuple[list[tuple[str, str, Any]], "SelectionRecord | None"]


def _selected_unit(
    unit: list[str], stages: _Stages, marker: bytes | None, mode: str, recording: bool
) -> _Unit:
    """``_select`` over one unit, with what it learns for the cache (``recording``)."""
    from ml_switcheroo.app.cache import SelectionRecord

    record = SelectionRecord() if recording else None
    return _select(unit, stages, marker, record, mode), record


def _selection_units(paths: Sequence[str], shares: int) -> list[list[str]]:
    """``paths`` in units for ``_select_in_parallel``, largest first: the files of each
    repository (``repository.repository_root``), except that a repository holding more than
    a ``shares``-th of the files is split into ``shares`` units (every ``shares``-th file),
    so that the processes have about as much to do."""
    from ml_switcheroo.analysis.repository import repository_root

    roots: dict[str, str] = {}  # folder -> its repository's root
    groups: dict[str, list[str]] = {}
    for path in paths:
        folder = os.path.dirname(os.path.abspath(path))
        if folder not in roots:
            roots[folder] = repository_root(path)
        groups.setdefault(roots[folder], []).append(path)
    units: list[list[str]] = []
    for group in groups.values():
        if len(group) * shares > len(paths):
            units.extend(group[share::shares] for share in range(shares))
        else:
            units.append(group)
    units.sort(key=len, reverse=True)
    if len(units) > _MAX_SELECTION_UNITS:  # many small repositories: dealt out in fewer units
        dealt: list[list[str]] = [[] for _ in range(_MAX_SELECTION_UNITS)]
        for number, unit in enumerate(units):
            dealt[number % _MAX_SELECTION_UNITS].extend(unit)
        units = dealt
    return units


def _share_split_word_tables(units: list[list[str]], shares: int) -> None:
    """Build, before the fork, the word table of each repository split over the processes
    (``_selection_units``): each would read and scan every file of it for its own copy."""
    from ml_switcheroo.analysis.repository import index_for, repository_root

    if len(units) > _MAX_SELECTION_UNITS - shares:
        return  # the units may be dealt out: none is known to be split
    roots = [repository_root(unit[0]) for unit in units if unit]
    for root in sorted({root for root in roots if roots.count(root) > 1}):
        index = index_for(os.path.abspath(root))
        if index.complete:
            index.with_word("")


def _take_units(
    queue: int,
    units: list[list[str]],
    stages: _Stages,
    marker: bytes | None,
    mode: str,
    recording: bool = False,
    show_progress: bool = False,
) -> dict[int, _Unit]:
    """``_select`` over each unit whose number this process reads from the pipe ``queue``
    (4 bytes each, written before any read), until the pipe is empty; by unit number.
    ``show_progress``: how many files the processes have started on, as units are taken."""
    total = sum(len(unit) for unit in units)
    taken: dict[int, _Unit] = {}
    while len(record := os.read(queue, 4)) == 4:
        number = int.from_bytes(record, "little")
        if show_progress and total >= 5000:
            started = sum(len(unit) for unit in units[:number])
            sys.stderr.write(f"{_PROGRESS_PREFIX}scanning {started}/{total} files")
        taken[number] = _selected_unit(units[number], stages, marker, mode, recording)
    if show_progress and total >= 5000:
        sys.stderr.write(_PROGRESS_PREFIX)
    return taken


def _collected(pid: int, read_end: int) -> dict[int, _Unit] | None:
    """What the child ``pid`` selected, by unit number, read from its pipe; None when it
    failed."""
    import pickle

    try:
        with os.fdopen(read_end, "rb") as handle:
            data = handle.read()
    except OSError:
        data = b""
    except BaseException:  # interrupted: the child ends now, not when its share is done
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        raise
    finally:
        _, status = os.waitpid(pid, 0)
    if status != 0:
        return None
    try:
        return pickle.loads(data)
    except Exception:  # noqa: BLE001 - a truncated answer: selected again
        return None


def _prescan(
    path: str,
    stages: _Stages,
    marker: bytes | None,
    cache: Cache | SelectionRecord | None,
    mode: str,
) -> tuple[str, dict[str, Any] | None, bytes | None]:
    """What becomes of one file before conversion: pre-filtered out, skipped as generated, or
    converted (``cache.CONVERTED``); for the latter, when the cache knows the file by its
    stat, its result when the cache holds one this mode can replay; and the bytes read (None
    when not read). Reads the file only when the cache cannot tell from its stat, and hands
    the bytes read unchanged to the repository index, which then does not read them again
    (``_share_source``). (The second stage runs afterwards on the files left to convert:
    ``_second_stage``, then ``_replay`` looks up the results of the files read here;
    ``stages.stage`` asks the cross-file question for a file the bytes rule out.)"""
    from ml_switcheroo.app import cache as cache_files

    if cache is not None:
        known = _known_to_cache(path, stages, cache, mode)
        if known is not None:
            return known
    read_at = cache_files.now_ns()
    data, stamp = cache_files.read_source(path)
    if stamp is not None and stages.enabled:
        _share_source(path, data, stamp)
    if (
        stages.prefilter is not None
        and not stages.prefilter.matches(data)
        and not _may_change_across_files(path, stages, cache)
    ):
        outcome = cache_files.PREFILTERED
    elif marker is not None and marker in data:
        outcome = cache_files.GENERATED
    else:
        outcome = cache_files.CONVERTED
    if cache is None:
        return outcome, None, data
    sha = cache_files.content_sha(data)
    if stamp is not None:
        recorded = outcome
        if outcome == cache_files.PREFILTERED and not _calls_cross_file_methods(data, stages.stage):
            recorded = cache_files.PREFILTERED_ALONE
        cache.remember(path, stamp, sha, recorded, read_at)
    return outcome, None, data  # the result to replay, if any: ``_replay``, after both stages


def _known_to_cache(
    path: str, stages: _Stages, cache: Cache | SelectionRecord, mode: str
) -> tuple[str, dict[str, Any] | None, None] | None:
    """``_prescan``'s answer when the cache knows ``path`` by its stat (its bytes unread), or
    None: the file must be read."""
    from ml_switcheroo.app import cache as cache_files

    entry = cache.known(path, cache_files.stamp_of(os.stat(path)))
    if entry is not None and entry.outcome == cache_files.PREFILTERED:
        entry = None if _may_change_across_files(path, stages, cache) else entry
    if entry is not None and entry.outcome == cache_files.PREFILTERED_ALONE:
        cache.keep(path)
        return cache_files.PREFILTERED, None, None
    if entry is not None and entry.outcome != cache_files.CONVERTED:
        cache.keep(path)
        return entry.outcome, None, None
    if entry is not None:
        cached = cache.result(path, entry.sha)
        if _replayable(cached, mode):
            cache.keep(path)
            return entry.outcome, cached, None
    return None


def _share_source(path: str, data: bytes, stamp: tuple[int, ...]) -> None:
    """Hand ``data``, the bytes of ``path`` read at ``stamp`` (``cache.stamp_of``), to the
    repository index of its folder: its questions read them, not the file, while the stat
    holds."""
    from ml_switcheroo.analysis.repository import index_for, repository_root

    absolute = os.path.abspath(path)
    index_for(repository_root(absolute)).remember_source(absolute, data, stamp[3], stamp[2])


def _calls_cross_file_methods(data: bytes, stage: SecondStage | None) -> bool:
    """Whether ``data`` calls a method that facts from other files may type (``.step``,
    ``.zero_grad``): a file that calls none never changes through other files
    (``may_change_through_other_files`` asks this first), so its cached "pre-filtered out"
    needs no question on a later run. True when it cannot tell (no stage)."""
    from ml_switcheroo.analysis.cross_file import cross_file_methods
    from ml_switcheroo.analysis.prefilter import has_attribute

    if stage is None:
        return True
    methods = cross_file_methods(stage.semantic_map)
    return any(has_attribute(data, method.encode("ascii")) for method in methods)


def _may_change_across_files(
    path: str, stages: _Stages, cache: Cache | SelectionRecord | None = None
) -> bool:
    """Whether a file the pre-filter rejects is converted anyway: a function of it receives a
    translated optimizer from another file, or it steps one a builder there returns
    (``analysis.cross_file.may_change_through_other_files``; the cache's repository record
    answers when the repository's files are unchanged, and then no map is compiled)."""
    if not stages.enabled:
        return False

    def ask() -> bool:
        from ml_switcheroo.analysis.second_stage import cross_file_facts_may_change

        stage = stages.stage
        assert stage is not None  # the stages are enabled
        return cross_file_facts_may_change(path, stage.semantic_map, None, stage.target_root)

    return ask() if cache is None else _remembered(cache, path)(ask)


def _remembered(cache: Cache | SelectionRecord, path: str) -> Callable[[Callable[[], bool]], bool]:
    """The cross-file question about ``path``, asked through the cache's repository record."""
    from ml_switcheroo.app import cache as cache_files

    return lambda ask: bool(cache.across_files(cache_files.MAY_CHANGE, path, ask))


def _second_stage(
    kept: list[str],
    sources: dict[str, bytes],
    stage: SecondStage,
    cache: Cache | SelectionRecord | None,
) -> list[str]:
    """``kept`` without the files the ``ast`` stage proves unchanged: those count as
    pre-filtered out, and the cache records them so (a later run knows them by their stat; a
    file that facts from other files may change is looked at again, see ``_prescan``).
    ``sources``: the bytes the byte filter read, by path (what it decided on and what the
    cache records; a file missing there is read)."""
    from ml_switcheroo.app import cache as cache_files

    keeps = [_stage_keeps(path, stage, cache, sources.get(path)) for path in kept]
    for path, keep in zip(kept, keeps, strict=True):
        if not keep and cache is not None:
            cache.reclassify(path, cache_files.PREFILTERED)
    return [path for path, keep in zip(kept, keeps, strict=True) if keep]


def _stage_keeps(
    path: str,
    stage: SecondStage,
    cache: Cache | SelectionRecord | None = None,
    data: bytes | None = None,
) -> bool:
    """Whether the second stage keeps the file with bytes ``data`` (None: read here; kept
    when it cannot be read: libcst reports); its cross-file question through the cache's
    repository record."""
    if data is None:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            return True
    return stage.keeps(data, path, None if cache is None else _remembered(cache, path))


def _share_repository_indexes(kept: list[str]) -> None:
    """Build, once in this process, the word table of the repository index of every file to
    convert (what the engine's cross-file questions read first: every file of the repository,
    read and scanned once). libcst's runner forks its workers from this process, so they
    inherit the table, with every file the pre-filter stages parsed for the index, instead of
    each reading the whole repository again."""
    from ml_switcheroo.analysis.repository import index_for, repository_root

    for root in sorted({repository_root(os.path.abspath(path)) for path in kept}):
        index = index_for(root)
        if index.complete:
            index.with_word("")


def _replayable(cached: dict[str, Any] | None, mode: str) -> bool:
    """A cached result stands in for the conversion unless the file must be converted for its
    output: a change, with --in-place (the write) or a diff (the new bytes are not kept)."""
    if cached is None:
        return False
    return "error" in cached or mode == "check" or not cached["changed"]


def _store_results(
    cache: Cache, results: dict[str, dict[str, Any]], content_failures: dict[str, tuple[str, str]]
) -> None:
    """Keep what the conversion found, by the sha256 of the bytes each worker converted."""
    for path, result in results.items():
        if "sha256" in result:
            records = [{**record, "file": None} for record in result.get("records", [])]
            entry = {"changed": bool(result.get("changed")), "records": records}
            cache.store_result(path, result["sha256"], entry)
    for path, (sha, reason) in content_failures.items():
        cache.store_result(path, sha, {"error": reason})


def _convert(
    kept: list[str],
    options: dict[str, Any],
    mode: str,
    args: argparse.Namespace,
    show_progress: bool,
    failures: dict[str, str],
    content_failures: dict[str, tuple[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run libcst's parallel runner over ``kept``; the per-file results, by path.

    ``content_failures`` receives the failures that are properties of the file's bytes (path ->
    sha256 of the bytes, reason): those a cache may keep.
    """
    from ml_switcheroo.analysis.repository import share_imports
    from ml_switcheroo.app import convert_command, files

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="ml-switcheroo-") as results_dir:
        _STOP.file = os.path.join(results_dir, convert_command.STOP_FILE)
        codemod_args = {
            **options,
            "prefilter": False,  # done above, once
            "results_dir": results_dir,
            "mode": mode,
            "display_root": os.getcwd(),
            "stamps": convert_command.map_stamps(options.get("semantic_map", ())),
        }
        if (args.jobs or os.cpu_count() or 1) > 1:  # forked workers share the imports read
            os.mkdir(os.path.join(results_dir, _SHARED_IMPORTS))
            share_imports(os.path.join(results_dir, _SHARED_IMPORTS))
        try:
            with _libcst_output(verbose=args.verbose, progress=show_progress):
                _STOP.in_runner = True
                try:
                    crashed = _run_surviving_crashes(
                        kept, args, show_progress, codemod_args, results_dir
                    )
                finally:
                    _STOP.in_runner = False
                    share_imports(None)
            if _STOP.requested():  # a signal during the run (see _on_signal)
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            interrupted = KeyboardInterrupt()
            interrupted.converted = _count_changed(kept, results_dir)  # type: ignore[attr-defined]
            interrupted.mode = mode  # type: ignore[attr-defined]
            _STOP.file = None
            raise interrupted from None
        _STOP.file = None
        for path in kept:
            if path in crashed:  # never parsed again here: it may crash this process too
                failures[files.display_name(path)] = crashed[path]
                continue
            try:
                with open(convert_command.result_path(results_dir, path), encoding="utf-8") as f:
                    result = json.load(f)
            except FileNotFoundError:
                reason, sha = convert_command.failure_of(path)
                failures[files.display_name(path)] = reason
                if sha is not None and content_failures is not None:
                    content_failures[path] = (sha, reason)
                continue
            if "error" in result:
                failures[files.display_name(path)] = result["error"]
                sha = result.get("sha256")
                if result.get("content_failure") and sha and content_failures is not None:
                    content_failures[path] = (sha, result["error"])
                if args.verbose:
                    print(result.get("traceback", ""), file=sys.stderr)
                continue
            results[path] = result
    return results


def _count_changed(kept: list[str], results_dir: str) -> int:
    """Files the run has changed (written, with --in-place) so far."""
    from ml_switcheroo.app import convert_command

    count = 0
    for path in kept:
        name = convert_command.result_path(results_dir, path)
        with suppress(OSError, ValueError), open(name, encoding="utf-8") as f:
            count += bool(json.load(f).get("changed"))
    return count


def _run_surviving_crashes(
    kept: list[str],
    args: argparse.Namespace,
    show_progress: bool,
    codemod_args: dict[str, Any],
    results_dir: str,
) -> dict[str, str]:
    """``_parallel_run`` over ``kept``, going on when a worker process dies.

    A dead worker (a crash in libcst's native parser, the OOM killer, a signal) breaks libcst's
    whole process pool, and every file not finished yet with it. Then each file that was in
    flight (its command was made, ``convert_command.started_path``, but it has no result) is
    converted again alone, in a process of its own: the one that dies again is the culprit, the
    others are converted. The files not started yet go to a new pool, and so on until every
    file is done. Returns the files that could not be converted this way, with the reason.
    """
    from concurrent.futures.process import BrokenProcessPool

    from ml_switcheroo.app import convert_command

    crashed: dict[str, str] = {}
    remaining = list(kept)
    while remaining:
        try:
            _parallel_run(remaining, args, show_progress, codemod_args)
            break
        except BrokenProcessPool as exc:  # a worker died (killed, out of memory, crashed)
            died = str(exc)
        if _STOP.requested():  # interrupted: the worker died of the signal
            raise KeyboardInterrupt
        unfinished = [
            path
            for path in remaining
            if not os.path.exists(convert_command.result_path(results_dir, path))
        ]
        in_flight = [
            path
            for path in unfinished
            if os.path.exists(convert_command.started_path(results_dir, path))
        ]
        if not in_flight:  # it died before starting on any file: nothing left to narrow down
            for path in unfinished:
                crashed[path] = f"not converted: a worker process died during the run ({died})"
            break
        for path in in_flight:
            reason = _run_alone(path, args, codemod_args)
            if reason is not None:
                crashed[path] = reason
        remaining = [path for path in unfinished if path not in in_flight]
    return crashed


def _run_alone(path: str, args: argparse.Namespace, codemod_args: dict[str, Any]) -> str | None:
    """Convert one file in a process of its own; why that process died, or None if it did not."""
    import multiprocessing
    import signal

    process = multiprocessing.Process(
        target=_parallel_run, args=([path], args, False, codemod_args), daemon=True
    )
    process.start()
    process.join()
    code = process.exitcode
    if code == 0:
        return None
    if code is not None and code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    return (
        f"not converted: the process converting this file died ({how}), every time; "
        "libcst's parser may crash on it"
    )


def _parallel_run(
    kept: list[str], args: argparse.Namespace, show_progress: bool, codemod_args: dict[str, Any]
) -> None:
    from libcst.codemod import parallel_exec_transform_with_prettyprint

    from ml_switcheroo.app import convert_command

    with _largest_first(kept):
        parallel_exec_transform_with_prettyprint(
            convert_command.ConvertCommand,
            kept,
            jobs=args.jobs or os.cpu_count() or 1,
            # The command never hands libcst a changed tree; with a diff requested, libcst
            # would not write even then.
            unified_diff=1,
            include_generated=True,  # the marker was checked above
            hide_generated=True,
            hide_blacklisted=True,
            hide_progress=not show_progress,
            repo_root=None,
            codemod_args=codemod_args,
        )


@contextmanager
def _largest_first(kept: list[str]) -> Iterator[None]:
    """libcst's runner hands its workers the files in the order of their sorted paths
    (``sorted`` in ``libcst.codemod._cli``); while the block runs, that sort of exactly these
    files gives them largest first (by size, then path), so that a file far larger than the
    others (torch's ``distributed_test.py``: 462 kB, over a third of the conversion's CPU) is
    not started last, with one worker idle meanwhile. Nothing the run reports depends on the
    order (the results are read back by path and sorted). Any other sort, or a libcst that
    does not sort this way, is left as it was."""
    from libcst.codemod import _cli

    wanted = {os.path.abspath(path) for path in kept}

    def size(path: str) -> int:
        try:
            return os.stat(path).st_size
        except OSError:  # gone or unreadable: libcst reports it
            return 0

    def ordered(items: Any, *rest: Any, **options: Any) -> list[Any]:
        items = list(items)
        if rest or options or not all(isinstance(item, str) for item in items):
            return sorted(items, *rest, **options)
        if len(items) != len(wanted) or set(items) != wanted:
            return sorted(items)
        return sorted(items, key=lambda path: (-size(path), path))

    missing = object()
    previous = _cli.__dict__.get("sorted", missing)
    _cli.sorted = ordered  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if previous is missing:
            del _cli.sorted  # type: ignore[attr-defined]
        else:
            _cli.sorted = previous  # type: ignore[attr-defined]


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


def _summary_text(
    report: dict[str, Any], seconds: float, outside_links: int = 0, from_cache: int = 0
) -> str:
    s = report["summary"]
    verb = "changed" if report["mode"] == "in-place" else "would change"
    parts = [
        f"{s['files_scanned']} files scanned",
        f"{s['prefiltered_out']} pre-filtered out",
        *([f"{s['skipped_generated']} skipped (generated)"] if s["skipped_generated"] else []),
        *([f"{outside_links} skipped (links outside the paths)"] if outside_links else []),
        f"{s['parsed']} parsed",
        *([f"{from_cache} from the cache"] if from_cache else []),
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
