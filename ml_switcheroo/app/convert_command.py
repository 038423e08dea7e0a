"""The command ``ml-switcheroo convert`` hands to libcst's parallel runner.

It is ``optimizer.TorchToOptax`` plus what the runner does not do for us:

* it owns the write: ``--in-place`` replaces the file atomically (``files.atomic_write``) in the
  worker, keeping its encoding (the tree's: PEP 263 cookie or BOM), line endings and
  permissions; the tree handed back to libcst is always the original one, so libcst's own
  (non-atomic) write never happens;
* it reports back: one small JSON file per input file in ``results_dir`` (records of every
  converted construct and escape hatch, changed or not, the diff, the error), which the main
  process reads when the run is over. libcst only returns counts to the main process.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import traceback
from collections.abc import Sequence
from types import FrameType
from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext

from ml_switcheroo.app import files
from ml_switcheroo.codemods.optimizer import TorchToOptax
from ml_switcheroo.rewrite import command_support, round_trip
from ml_switcheroo.rewrite.engine import records_of
from ml_switcheroo.rewrite.parse_guard import TOO_DEEP, SourceTooDeep, hazard
from ml_switcheroo.targets.catalogue import DEFAULT_TARGET, TARGETS


def result_path(results_dir: str, filename: str) -> str:
    """Where the result of ``filename`` (an absolute path) is written."""
    digest = hashlib.sha1(os.fsencode(filename)).hexdigest()  # noqa: S324 - a file name
    return os.path.join(results_dir, f"{digest}.json")


# Created in the results directory when the run is interrupted: the files left are skipped.
STOP_FILE = "STOP"


def started_path(results_dir: str, filename: str) -> str:
    """The marker a worker leaves when it starts on ``filename``."""
    return result_path(results_dir, filename)[: -len(".json")] + ".started"


def unified_diff(old: str, new: str, name: str, context: int = 3) -> str:
    """A ``git apply``-able diff (``a/``, ``b/`` prefixes), line endings kept as they are."""
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    lines = []
    for line in difflib.unified_diff(
        old_lines, new_lines, f"a/{name}", f"b/{name}", n=context, lineterm="\n"
    ):
        if line.startswith(("---", "+++", "@@")) or line.endswith(("\n", "\r")):
            lines.append(line)
        else:
            lines.append(line + "\n\\ No newline at end of file\n")
    return "".join(lines)


def diff_codec(encoding: str) -> str:
    """The codec a file's diff is written in: its own, with a UTF-8 BOM kept as a character."""
    name = encoding.lower().replace("_", "-")
    return "utf-8" if name in ("utf-8-sig", "utf8-sig") else encoding


class ConversionError(Exception):
    """What a worker reports back instead of the original exception.

    libcst's runner sends a failing file's exception object back to the main process; an
    exception class whose ``__init__`` takes other arguments than its message (such as
    ``SemanticMapError``) cannot be unpickled there, and that breaks the whole process pool.
    This one always can be.
    """


def map_stamps(paths: Sequence[str]) -> list[list[Any]]:
    """What identifies the semantic-map files of a run (the shipped one first)."""
    from ml_switcheroo.spec.semantic_map import BUILTIN_MAP

    stamps = []
    for path in (str(BUILTIN_MAP), *(os.path.abspath(p) for p in paths)):
        try:
            info = os.stat(path)
            stamps.append([path, info.st_mtime_ns, info.st_size])
        except OSError:
            stamps.append([path, None, None])
    return stamps


class ConvertCommand(TorchToOptax):
    """TorchToOptax that writes atomically itself and leaves a JSON result per file."""

    def __init__(
        self,
        context: CodemodContext,
        *,
        results_dir: str,
        mode: str = "diff",
        display_root: str | None = None,
        stamps: list[list[Any]] | None = None,
        semantic_map: Sequence[str] = (),
        target: str = DEFAULT_TARGET.name,
        **options: Any,
    ) -> None:
        self.TARGET = TARGETS[target]  # type: ignore[misc]  # ``convert --target``
        self.results_dir = results_dir
        self.mode = mode  # "diff", "check" or "in-place"
        self.display_root = display_root
        if context.filename:
            # libcst's runner makes one command per file, right before it parses the file: if
            # the worker dies from here on (a crash in libcst's parser, the OOM killer), the
            # main process knows which files were in flight (``started_path``).
            with open(started_path(results_dir, context.filename), "wb"):
                pass
        try:
            if os.path.exists(os.path.join(results_dir, STOP_FILE)):
                raise ConversionError("not converted: the run was interrupted")
            # Every file of a run is converted with the map the run started with.
            if stamps is not None and map_stamps(semantic_map) != stamps:
                raise ConversionError("a semantic-map file changed during the run")
            super().__init__(context, semantic_map=semantic_map, **options)
        except ConversionError:
            raise
        except SourceTooDeep as exc:  # never handed to the parser: say why, from here
            filename = context.filename or "<stdin>"
            self._save(filename, {"file": filename, "changed": False, "error": str(exc)})
            raise ConversionError(str(exc)) from None
        except Exception as exc:
            raise ConversionError(_one_line(exc)) from None

    def transform_module(self, tree: cst.Module) -> cst.Module:
        caller = command_support.caller_frame()
        with command_support.file_collector_paused():  # command_support point 8
            return self._transform(tree, caller)

    def _transform(self, tree: cst.Module, caller: FrameType | None) -> cst.Module:
        filename = self.context.filename or "<stdin>"
        result: dict[str, Any] = {"file": filename, "changed": False}
        fresh = command_support.called_by_libcst_parser(caller)
        try:
            before = files.snapshot(filename)
            original = command_support.source_bytes(filename, tree, from_file=True)
            result["sha256"] = hashlib.sha256(original).hexdigest()  # what the cache keys on
            tree = command_support.keep_final_cr(tree, original)
            lossy = round_trip.lost_bytes(tree, original)
            # Not called by libcst's runner (not fresh): no shortcut is taken.
            new_tree = tree if self.proved_unchanged(original) else self.rewrite(tree, fresh=fresh)
            new = new_tree.bytes if new_tree is not tree else original
            if lossy is not None:  # libcst would not write it back as it is: never written
                if new_tree is not tree and new != tree.bytes:
                    raise round_trip.LossyRoundTrip(lossy)
                new = original
            if new != original and not _writes_back_as(tree, original, lossy, caller):
                raise files.FileChangedError(f"{filename} changed on disk during the run")
            result["records"] = [r.to_json() for r in records_of(self.context)]
            result["warnings"] = list(self.context.warnings)
            self.context.warnings.clear()  # in the report: not printed once more by libcst
            if new != original:
                result["changed"] = True
                if self.mode == "in-place":
                    files.atomic_write(filename, new, expected=before)
                elif self.mode == "diff":
                    # In the file's own encoding, BOM included: the diff applies to its bytes.
                    codec = diff_codec(new_tree.encoding)
                    name = files.display_name(filename, self.display_root)
                    result["diff"] = unified_diff(original.decode(codec), new.decode(codec), name)
                    result["diff_encoding"] = codec
        except Exception as exc:
            result["error"] = TOO_DEEP if isinstance(exc, RecursionError) else _one_line(exc)
            result["content_failure"] = isinstance(exc, RecursionError)  # a property of the bytes
            result["traceback"] = traceback.format_exc()
            self._save(filename, result)
            raise ConversionError(result["error"]) from None
        self._save(filename, result)
        # libcst sees no change: it neither writes nor prints anything
        return _handed_back(tree, original, lossy, caller)

    def _save(self, filename: str, result: dict[str, Any]) -> None:
        with open(result_path(self.results_dir, filename), "w", encoding="utf-8") as handle:
            json.dump(result, handle)


def _parsed_from(original: bytes, lossy: str | None, caller: FrameType | None) -> bool:
    """Whether the tree ``caller`` (libcst's runner) parsed is the parse of ``original`` (the
    bytes it read are ours) and writes back as them (``lossy`` is None:
    ``round_trip.lost_bytes``)."""
    return lossy is None and command_support.bytes_read_by_libcst_cli(caller) == original


def _writes_back_as(
    tree: cst.Module, original: bytes, lossy: str | None, caller: FrameType | None
) -> bool:
    """Whether ``tree`` writes out as ``original``: known without code generation when it is
    libcst's parse of those very bytes (``_parsed_from``), else by writing it out."""
    return _parsed_from(original, lossy, caller) or tree.bytes == original


def _handed_back(
    tree: cst.Module, original: bytes, lossy: str | None, caller: FrameType | None
) -> cst.Module:
    """The original ``tree`` for libcst, which writes it out only to compare it with the bytes
    it read: when those are ``original`` and the tree writes back as them (``_parsed_from``),
    a verbatim tree (``command_support.verbatim``) spares that code generation."""
    if _parsed_from(original, lossy, caller):
        return command_support.verbatim(tree, original)
    return tree


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    if isinstance(exc, (ConversionError, round_trip.LossyRoundTrip)):
        return text[0] if text else "conversion failed"
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def failure_reason(filename: str) -> str:
    """Why libcst could not hand ``filename`` to the command: read or parse it again to say."""
    return failure_of(filename)[0]


def failure_of(filename: str) -> tuple[str, str | None]:
    """``failure_reason``, and the sha256 of the bytes read when the failure is a property of
    those bytes (a syntax error, an undecodable file, nesting too deep): the cache may replay
    those. None for the others (the file could not be read, an unexpected error)."""
    try:
        with open(filename, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return _one_line(exc), None
    sha = hashlib.sha256(data).hexdigest()
    try:
        too_deep = hazard(data)
        if too_deep is not None:  # never parsed here either: it could crash this process
            return too_deep, sha
        cst.parse_module(data)
    except cst.ParserSyntaxError as exc:
        message = exc.message.strip().splitlines()
        where = f"syntax error at line {exc.raw_line}, column {exc.raw_column + 1}"
        return (f"{where}: {message[0]}" if message else where), sha
    except (UnicodeDecodeError, LookupError, SyntaxError) as exc:
        return f"cannot decode the file: {str(exc).strip() or type(exc).__name__}", sha
    except RecursionError:
        return TOO_DEEP, sha
    except Exception as exc:
        return _one_line(exc), None
    return "libcst could not convert the file (rerun with --verbose for its traceback)", None
