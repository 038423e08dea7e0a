"""What the command asks about other files of the repository (issue 12).

``CrossFileQuestions`` is made per command: whether this file's facts may come from other files
(``repository_file``), the repository index read with the command's map (``cross_file``),
whether a constructor in another file translates (a dry run of that file without facts from
other files: ``constructor_translates_at``), whether a file the pre-filter would skip can change
through them (``may_change_across_files``), and what this file answers such a dry run
(``translated_constructor_lines``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import libcst as cst
from libcst.codemod import CodemodCommand, CodemodContext

from ml_switcheroo.analysis.cross_file import (
    CrossFile,
    cross_file_methods,
    may_change_through_other_files,
)
from ml_switcheroo.analysis.plan import Plan
from ml_switcheroo.analysis.prefilter import Prefilter
from ml_switcheroo.analysis.repository import index_for, repository_root
from ml_switcheroo.analysis.resolver import Resolver
from ml_switcheroo.rewrite.receivers import Receivers
from ml_switcheroo.spec.roles import CONSTRUCTOR
from ml_switcheroo.spec.semantic_map import SemanticMap
from ml_switcheroo.targets.target import Target


class CrossFileQuestions:
    """The questions about other files one command asks (``filename``: the current file's)."""

    def __init__(
        self,
        *,
        filename: Callable[[], str | None],
        enabled: bool,
        semantic_map: SemanticMap,
        target: Target,
        prefilter: Prefilter | None,
        map_files: Sequence[str],
        options: dict[str, Any],
        dry_command: type[CodemodCommand],
    ) -> None:
        self.filename = filename
        self.enabled = enabled  # False in the dry runs cross-file facts make
        self.semantic_map = semantic_map
        self.target = target
        self.prefilter = prefilter
        self.map_files = tuple(map_files)
        self.options = options
        self.dry_command = dry_command  # the command a dry run of another file runs

    def repository_file(self) -> str | None:
        """This file's path when facts from other files apply (a file on disk)."""
        filename = self.filename()
        if not self.enabled or not filename or not os.path.isfile(filename):
            return None
        return os.path.abspath(filename)

    def cross_file(self) -> CrossFile | None:
        """The repository index read with this command's map (``analysis/cross_file.py``)."""
        path = self.repository_file()
        if path is None:
            return None
        return self._cross_file(path, self.constructor_translates_at)

    def index_only(self) -> CrossFile | None:
        """``cross_file`` for the questions the index alone answers (no dry run of another
        file: ``CrossFile.plain_parameters``), in the dry runs too: a dry run's answer must be
        the one the file's own run gives."""
        filename = self.filename()
        if not filename or not os.path.isfile(filename):
            return None
        return self._cross_file(os.path.abspath(filename), lambda path, line: False)

    def _cross_file(self, path: str, translates: Callable[[str, int], bool]) -> CrossFile:
        return CrossFile(
            index_for(repository_root(path)),
            path,
            self.semantic_map,
            translates,
            cross_file_methods(self.semantic_map),  # rewritten on an optimizer another file passes
            self.target.name,
        )

    def constructor_translates_at(self, path: str, line: int) -> bool:
        """Whether the optimizer constructor at ``path:line`` translates (a dry run of that
        file without facts from other files)."""
        if not os.path.isfile(path):  # a FIFO or device named like a Python file: never opened
            return False
        # The bytes the index holds: the file as the user wrote it while a run pins it, though
        # a worker of the run may have rewritten it already (``repository.pin_sources``).
        data = index_for(repository_root(path)).source(path)
        options = (self.map_files, bool(self.options["exact"]), self.options["steps_per_epoch"])
        return line in _translated_constructor_lines(self.dry_command, path, data, options)

    def may_change_across_files(self) -> bool:
        """Whether a file the pre-filter would skip can change through facts from other
        files (a function of it receives a translated optimizer, or it steps one a builder
        of another file returns): ``analysis.cross_file.may_change_through_other_files``."""
        path = self.repository_file()
        if path is None:
            return False
        # A caller converted earlier in the same run (libcst's runner writes as it goes) builds
        # the target's value instead: a call under the target's name counts as translated.
        return may_change_through_other_files(path, self.semantic_map, self.target.name)


def translated_constructor_lines(
    plan: Plan | None, receivers: Receivers, position: Callable[[cst.CSTNode], Any]
) -> frozenset[int]:
    """The lines of this file's optimizer constructors whose hook succeeds (whether or not
    a torch-only use keeps one as torch code here): what other files ask of a dry run."""
    if plan is None:
        return frozenset()
    lines: set[int] = set()
    for site in plan.sites:
        if site.role == CONSTRUCTOR and receivers.constructor_translates(site.call):
            found = position(site.call)
            if found is not None:
                lines.add(found.start.line)
    return frozenset(lines)


def cross_file_reason(node: Any, resolver: Resolver) -> str:
    """``; across files: ...`` when the receiver of ``node`` is typed by another file."""
    member = node.func if isinstance(node, cst.Call) else node
    if not isinstance(member, cst.Attribute):
        return ""
    reason = resolver.cross_file_reason(member.value)
    return f"; across files: {reason}" if reason else ""


@functools.lru_cache(maxsize=512)
def _translated_constructor_lines(
    command: type[CodemodCommand],
    path: str,
    data: bytes,
    options: tuple[tuple[str, ...], bool, str | None],
) -> frozenset[int]:
    """The lines of the optimizer constructors whose hook succeeds in ``path`` with the bytes
    ``data``, run by ``command`` without facts from other files."""
    map_files, exact, steps_per_epoch = options
    context = CodemodContext(filename=path)
    try:
        tree = cst.parse_module(data)
        dry = command(  # type: ignore[call-arg]
            context, map_files, exact=exact, steps_per_epoch=steps_per_epoch, cross_file=False
        )
        dry.transform_module(tree)
    except Exception:  # a file that cannot be converted: nothing in it translates
        return frozenset()
    return getattr(dry, "translated_constructor_lines", frozenset())
