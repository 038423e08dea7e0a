"""Files for ``ml-switcheroo convert``: which ones to look at, and how to rewrite them safely."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

# Directories never entered by the walk used outside git checkouts.
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


class FileChangedError(OSError):
    """The file changed on disk while it was being converted."""


@dataclass(frozen=True)
class Discovery:
    files: list[str]  # absolute paths, sorted, one per real file
    git_roots: list[str]  # the directories listed with git (the others were walked)
    # Symbolic links found under a directory that lead outside every PATH: (link, target).
    outside_links: list[tuple[str, str]] = field(default_factory=list)


def discover(
    paths: Sequence[str], excludes: Sequence[str] = (), *, use_git: bool = True
) -> Discovery:
    """The Python files under ``paths``, minus ``excludes``, honouring ``.gitignore``.

    A directory inside a git checkout is listed with ``git ls-files --cached --others
    --exclude-standard`` (tracked files and untracked ones that are not ignored); without git,
    or outside a checkout, it is walked, skipping hidden directories (``.git``, ``.venv``...),
    ``__pycache__``, ``node_modules`` and ``site-packages``. A file named on the command line
    is always taken (unless excluded), whatever its extension; under a directory, only regular
    files are (a FIFO named ``x.py`` would block the read forever).

    Symbolic links: a file reached twice (a link and its target, two links) is taken once, under
    its own name when that was found too. A link found under a directory that leads outside
    every PATH is not taken (``outside_links``): the rewrite would change a file outside the
    paths given. A link named on the command line is followed.
    """
    found: dict[str, str] = {}  # real path -> absolute path as found
    git_roots = []
    outside: list[tuple[str, str]] = []
    directories = [os.path.realpath(p) for p in paths if os.path.isdir(p)]
    for path in paths:
        root = os.path.abspath(path)
        if os.path.isfile(root):
            candidates: Iterable[str] = [root]
        else:
            listed = _git_files(root) if use_git else None
            if listed is not None:
                git_roots.append(root)
                candidates = listed
            else:
                candidates = _walk(root)
        for candidate in candidates:
            if excludes and _excluded(candidate, root, excludes):
                continue
            real = os.path.realpath(candidate)
            linked = candidate != root and os.path.islink(candidate)
            if linked and not any(_is_within(real, d) for d in directories):
                outside.append((candidate, real))
                continue
            if linked and excludes and _excluded(real, root, excludes):
                continue  # leads into an excluded file or directory
            previous = found.get(real)
            if previous is None or (os.path.islink(previous) and not os.path.islink(candidate)):
                found[real] = candidate
    return Discovery(sorted(found.values()), git_roots, sorted(outside))


def _is_within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _git_files(directory: str) -> list[str] | None:
    try:
        result = subprocess.run(
            [
                "git",
                "-C",
                directory,
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=False,
        )
    except OSError:  # no git
        return None
    if result.returncode != 0:  # not a checkout (or a broken one): walk instead
        return None
    files = []
    for name in result.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if name.endswith(".py"):
            path = os.path.join(directory, name)
            if os.path.isfile(path):  # --cached lists deleted files too
                files.append(path)
    return files


def _walk(directory: str) -> list[str]:
    files = []
    for current, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS]
        for name in names:
            path = os.path.join(current, name)
            if name.endswith(".py") and os.path.isfile(path):  # regular files (or links to)
                files.append(path)
    return files


def _excluded(path: str, root: str, globs: Sequence[str]) -> bool:
    """Whether a glob matches the file's path or one of its directories, each taken relative to
    the current directory, relative to its PATH argument, or alone (a single name): so
    ``--exclude tests`` drops every ``tests`` directory, ``--exclude 'src/legacy'`` that one,
    ``--exclude '*_pb2.py'`` generated files. ``*`` also matches ``/``."""
    base = root if os.path.isdir(root) else os.path.dirname(root)
    under_root = Path(os.path.relpath(path, base)).as_posix()
    forms = {under_root, Path(path).as_posix()}
    in_cwd = Path(os.path.relpath(path)).as_posix()
    if not in_cwd.startswith("../"):
        forms.add(in_cwd)
    candidates = set(under_root.split("/"))
    for form in forms:
        parts = form.split("/")
        candidates.update("/".join(parts[:end]) for end in range(1, len(parts) + 1))
    return any(fnmatch.fnmatchcase(c, glob.rstrip("/")) for glob in globs for c in candidates)


def display_name(path: str, base: str | None = None) -> str:
    """``path`` relative to ``base`` (the cwd) when inside it, else absolute; ``/``-separated."""
    base = base or os.getcwd()
    relative = os.path.relpath(path, base)
    if relative.startswith(".."):
        return Path(path).as_posix()
    return Path(relative).as_posix()


def in_shard(path: str, shard: int, count: int) -> bool:
    """Whether ``path`` falls in shard ``shard`` (1-based) of ``count``: by the sha1 of its name
    as displayed (relative to the current directory, ``/``-separated), so a file stays in its
    shard whatever other files come or go, on every machine that runs from the same directory
    of the checkout."""
    digest = hashlib.sha1(display_name(path).encode("utf-8", "surrogateescape"))  # noqa: S324
    return int.from_bytes(digest.digest()[:8], "big") % count == shard - 1


def snapshot(path: str) -> tuple[int, int, int]:
    """What tells that a file changed: inode, size, modification time."""
    return _stamp(os.stat(path))


def atomic_write(path: str, data: bytes, expected: tuple[int, int, int] | None = None) -> None:
    """Replace the file's content all at once, keeping its permission bits (and owner, where
    allowed).

    The bytes go to a temporary file in the same directory, are flushed to disk, and the
    temporary file is renamed over the target (``os.replace``: atomic on POSIX and Windows), so
    a reader sees the old or the new file, never a part. A symlink is followed (the file it
    points to is replaced). With ``expected`` (a ``snapshot``), a file that changed since is
    left alone (``FileChangedError``; checked before the write and again right before the
    rename). A new file gets the permissions ``open()`` would give.
    """
    target = os.path.realpath(path)
    try:
        info: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        info = None
    if expected is not None and (info is None or _stamp(info) != expected):
        raise FileChangedError(f"{path} changed on disk during the run; left as it is")
    directory, name = os.path.split(target)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if info is not None:
            os.chmod(temporary, stat.S_IMODE(info.st_mode))
            if hasattr(os, "chown") and (info.st_uid, info.st_gid) != _owner(temporary):
                with suppress(OSError):  # only root may give a file away
                    os.chown(temporary, info.st_uid, info.st_gid)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        # Once more right before the rename: the flush to disk may have taken a while, and a
        # save made meanwhile (by the user, by another run) must not be overwritten.
        if expected is not None and _current_stamp(target) != expected:
            raise FileChangedError(f"{path} changed on disk during the run; left as it is")
        os.replace(temporary, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


def _stamp(info: os.stat_result) -> tuple[int, int, int]:
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _current_stamp(path: str) -> tuple[int, int, int] | None:
    try:
        return _stamp(os.stat(path))
    except FileNotFoundError:
        return None


def _owner(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return (info.st_uid, info.st_gid)
