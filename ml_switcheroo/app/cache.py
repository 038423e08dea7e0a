"""The incremental cache of ``ml-switcheroo convert`` (``--cache DIR``; on by default for
``--check``).

Two kinds of files, both under ``DIR/v1/`` (another cache format uses another directory):

* **results**, keyed by content: ``results/<k[:2]>/<k>`` with ``k = sha256(run key, sha256
  of the file's bytes, facts from other files)``. A result is what the conversion of those
  bytes gave: changed or not and the report records, or a failure that is a property of the
  bytes (a syntax error, an undecodable file, nesting too deep for libcst's parser). The run
  key (``run_key``) holds everything else the outcome depends on: this package (its version
  and the digest of its own files, map included), the content of every ``--semantic-map``
  file, every option of the command but ``--no-prefilter``, ``--include-generated``, the
  libcst and Python versions. A result never holds a file name, so it serves every copy of
  the same bytes (a fresh CI checkout too).
* **the stat index**, one per run key (and pre-filter on or off): for each path seen,
  ``(device, inode, size, mtime_ns, ctime_ns)`` as ``fstat`` gave it right before and right
  after the bytes were read, the sha256 of those bytes, what the run did with the file
  (pre-filtered out, skipped as generated, converted) and whether the stat can be trusted.
  A later run that finds the same stat takes the sha256 from the index and reads nothing.

Racy files (git's "racily clean" entries): a file rewritten within the same mtime tick as our
read, with the same size, has the same stat and other bytes. An entry is trusted only when the
file's mtime and ctime are older than the read by ``RACY_NS`` (2 s, more than the coarsest
mtime granularity of common file systems); a younger entry is verified by content the next time
(read and hashed again, which makes it trusted once it is old enough). Tools that set mtime
back (``touch -d``, ``rsync -t``) cannot set ctime, so they still change the stat.

Every file is written to a temporary file and renamed over its name (``os.replace``): a reader
sees a whole file or none. Each starts with a header line holding the format, its own key, the
length and the sha256 of the payload; anything that does not check out (garbage, a truncated
file, another format or key) is a miss, never an answer. Two runs writing the same result
write the same bytes; two runs writing the stat index each merge into what they find and the
last rename wins (the other run's new entries are lost: a later miss, not a wrong answer).
Nothing is ever deleted: remove ``DIR`` to reclaim the space.

* **the maps proof**, one per run key (``maps-<key[:32]>``): written by a run whose maps
  compiled. The run key holds every byte the compilation reads (this package's files, the
  shipped map and the hooks included, and each ``--semantic-map`` file), so a later run under
  the same key parses its options without the map checks and compiles the maps only when a
  file needs them (``convert._parse_arguments``): a run whose files all hit compiles nothing.

Issue 12 (a file's outcome depending on facts from other files) plugs in at
``facts_from_other_files``: its value (a digest of the files the repository index links the
file to) is part of every result key.

* **repository records**, one per run key (and pre-filter) and repository root
  (``repositories/<k>``): the stat and sha256 of every ``.py`` file of the repository (the
  files the repository index reads, ``RepositoryIndex.files``) and the answers computed from
  their content: each file's ``facts_from_other_files`` (``FACTS``) and whether facts from
  other files may change a file the pre-filter stages drop (``MAY_CHANGE``). A later run lists
  the repository by stat; a file whose stat is not the one recorded (and trusted, as in the
  stat index) is read and hashed again. When every file of the listing has the recorded bytes
  and no file came or went, the recorded answers hold and the run reads no source for them
  (a touched file with the same bytes keeps them); otherwise they are all computed again from
  the repository index (an edited, added, removed or renamed file). A record is written only
  when the repository still has the listed stats at the end of the run and every byte the
  index read is what the listing says (a file edited during the run, or converted in place,
  leaves the record as it was).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml_switcheroo.analysis.repository import RepositoryIndex, index_for, repository_root

if TYPE_CHECKING:
    from ml_switcheroo.spec.semantic_map import SemanticMap

FORMAT = 1
MAGIC = b"ml-switcheroo-cache"
RACY_NS = 2_000_000_000  # stat entries younger than this at read time are verified next time

PREFILTERED = "p"  # outcomes recorded in the stat index
# pre-filtered out, and its bytes call none of the methods facts from other files type
# (``cross_file_methods``): no other file can change it, so a later run does not ask
PREFILTERED_ALONE = "q"
GENERATED = "g"
CONVERTED = "c"
OUTCOMES = frozenset({PREFILTERED, PREFILTERED_ALONE, GENERATED, CONVERTED})

Stamp = tuple[int, int, int, int, int]  # device, inode, size, mtime_ns, ctime_ns

FACTS = "facts"  # answers recorded per repository: ``facts_from_other_files`` (a digest)
MAY_CHANGE = "may_change"  # a dropped file may change through other files (a bool)
_ANSWER_TYPES: dict[str, type] = {FACTS: str, MAY_CHANGE: bool}


def default_dir() -> str:
    """``$XDG_CACHE_HOME/ml-switcheroo``, else ``~/.cache/ml-switcheroo``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ml-switcheroo")


# --------------------------------------------------------------------------- keys


@cache
def package_digest() -> str:
    """The sha256 of this package's own files (code, shipped map, data): an edited checkout
    with an unchanged version number still gets a cache of its own."""
    root = Path(__file__).resolve().parent.parent
    found = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found += [Path(directory, n) for n in names if n.endswith((".py", ".yaml", ".txt"))]
    digest = hashlib.sha256()
    for path in sorted(found):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def libcst_version() -> str:
    """libcst's version, read from the ``_version.py`` its build writes without importing
    libcst (0.3 s; ``importlib.metadata`` scans every installed package)."""
    import importlib.util
    import re

    spec = importlib.util.find_spec("libcst")
    for directory in (spec.submodule_search_locations or []) if spec else []:
        with suppress(OSError):
            text = Path(directory, "_version.py").read_text(encoding="utf-8")
            found = re.search(r"^__version__ = (?:version = )?'([^']+)'$", text, re.MULTILINE)
            if found:
                return found.group(1)
    return _imported_libcst_version()  # pragma: no cover - another layout


def _imported_libcst_version() -> str:
    try:
        from libcst._version import __version__ as found
    except ImportError:  # pragma: no cover - another layout
        from importlib.metadata import version

        found = version("libcst")
    return str(found)


def run_key(map_files: Sequence[str], options: Mapping[str, Any], include_generated: bool) -> str:
    """What every result of a run depends on besides the file's bytes.

    ``map_files`` are the ``--semantic-map`` files (the shipped map is in the package digest);
    ``options`` the command's options (``semantic_map`` and ``prefilter`` are left out: the
    first is here by content, the second never changes a result).
    """
    from ml_switcheroo import __version__

    maps = [hashlib.sha256(Path(m).read_bytes()).hexdigest() for m in map_files]
    facts = {
        "format": FORMAT,
        "package": [__version__, package_digest()],
        "libcst": libcst_version(),
        "python": list(sys.version_info[:2]),
        "maps": maps,
        "options": {
            k: v for k, v in sorted(options.items()) if k not in ("semantic_map", "prefilter")
        },
        "include_generated": include_generated,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def facts_from_other_files(
    path: str, semantic_map: SemanticMap | None = None, target_name: str | None = None
) -> str:
    """What the outcome of ``path`` depends on in other files of the repository: a digest of
    the content of the files the repository index links it to (the files it imports, the
    files importing it, and the files importing those; ``analysis/repository.py``), "" when
    there are none. ``semantic_map`` and ``target_name``: the run's (by default the shipped
    map and the default target)."""
    if not os.path.isfile(path):
        return ""
    if semantic_map is None or target_name is None:
        semantic_map, target_name = _default_map_and_target()
    absolute = os.path.abspath(path)
    index = index_for(repository_root(absolute))
    words = source_words(semantic_map, target_name)
    linked = _linked_across_files(absolute, semantic_map, target_name)
    return index.digest_of_dependencies(absolute, words, linked)


def _default_map_and_target() -> tuple[SemanticMap, str]:
    from ml_switcheroo.targets.catalogue import DEFAULT_TARGET, load_semantic_map

    return load_semantic_map(), DEFAULT_TARGET.name


def _linked_across_files(path: str, semantic_map: SemanticMap, target_name: str) -> bool:
    """Whether the pre-filter's precise cross-file question keeps ``path`` (the file then
    depends on other files even when ``RepositoryIndex.may_change``, the coarse one, says no:
    a value passed on through functions of several files)."""
    from ml_switcheroo.analysis.cross_file import may_change_through_other_files

    return may_change_through_other_files(path, semantic_map, target_name)


def source_words(semantic_map: SemanticMap, target_name: str) -> tuple[bytes, ...]:
    """The words a file that hands values to other files holds: the map's source packages
    (``torch``, a user map's own), and the target's (a file converted earlier in the run)."""
    from ml_switcheroo.analysis.prefilter import prefilter_for

    roots = prefilter_for(semantic_map).roots
    return tuple(word.encode() for word in sorted({*roots, target_name}))


def result_key(key: str, content_sha: str, facts: str = "") -> str:
    return hashlib.sha256(f"{key}\0{content_sha}\0{facts}".encode()).hexdigest()


def content_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- reading sources


def stamp_of(info: os.stat_result) -> Stamp:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def read_source(path: str) -> tuple[bytes, Stamp | None]:
    """The file's bytes and its stat, or None for the stat when the file changed while it was
    read (then nothing may be recorded about it)."""
    with open(path, "rb") as handle:
        before = stamp_of(os.fstat(handle.fileno()))
        data = handle.read()
        after = stamp_of(os.fstat(handle.fileno()))
    stable = before == after and len(data) == before[2]
    return data, before if stable else None


class SelectionRecord:
    """What a selection process forked by ``convert`` learns for the run's cache, recorded
    where ``Cache`` would record it and replayed into the cache by the main process
    (``replay_into``): the entries of the files it reads and its answers about other files.
    It knows no file by its stat and holds no result (the main process asks the cache for
    those)."""

    def __init__(self) -> None:
        self.updates: dict[str, IndexEntry] = {}
        self.answers: list[tuple[str, str, Any]] = []  # (kind, path, answer), in order asked

    def known(self, path: str, stamp: Stamp) -> IndexEntry | None:
        return None

    def keep(self, path: str) -> None:
        return None

    def remember(self, path: str, stamp: Stamp, sha: str, outcome: str, read_at_ns: int) -> None:
        self.updates[path] = IndexEntry(stamp, sha, outcome, is_trusted(stamp, read_at_ns))

    def recorded_sha(self, path: str) -> str | None:
        entry = self.updates.get(path)
        return entry.sha if entry is not None else None

    def reclassify(self, path: str, outcome: str) -> None:
        entry = self.updates.get(path)
        if entry is not None:
            self.updates[path] = IndexEntry(entry.stamp, entry.sha, outcome, entry.trusted)

    def result(self, path: str, sha: str) -> dict[str, Any] | None:
        return None

    def across_files(self, kind: str, path: str, compute: Callable[[], Any]) -> Any:
        answer = compute()
        self.answers.append((kind, path, answer))
        return answer

    def replay_into(self, cache: Cache) -> None:
        """Record in ``cache`` what this record holds, as ``cache`` would have recorded it."""
        cache.updates.update(self.updates)
        for kind, path, answer in self.answers:
            cache.across_files(kind, path, lambda answer=answer: answer)


def is_trusted(stamp: Stamp, read_at_ns: int) -> bool:
    """Whether a later identical stat proves identical bytes (see the module's docstring)."""
    return max(stamp[3], stamp[4]) < read_at_ns - RACY_NS


# --------------------------------------------------------------------------- files on disk


def _pack(key: str, payload: Any) -> bytes:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    header = b"%s %d %s %d %s\n" % (
        MAGIC,
        FORMAT,
        key.encode("ascii"),
        len(body),
        hashlib.sha256(body).hexdigest().encode("ascii"),
    )
    return header + body


def _unpack(data: bytes, key: str) -> Any | None:
    """The payload, or None when the bytes are not a whole, intact entry for ``key``."""
    header, newline, body = data.partition(b"\n")
    fields = header.split(b" ")
    if not newline or len(fields) != 5 or fields[0] != MAGIC:
        return None
    if fields[1] != str(FORMAT).encode() or fields[2] != key.encode("ascii"):
        return None
    digest = hashlib.sha256(body).hexdigest().encode()
    if fields[3] != str(len(body)).encode() or fields[4] != digest:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _atomic_write(path: str, data: bytes) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


# --------------------------------------------------------------------------- the cache


@dataclass
class IndexEntry:
    stamp: Stamp
    sha: str
    outcome: str
    trusted: bool

    def to_list(self) -> list[Any]:
        return [*self.stamp, self.sha, self.outcome, self.trusted]

    @staticmethod
    def from_list(value: Any) -> IndexEntry | None:
        if not isinstance(value, list) or len(value) != 8:
            return None
        *stamp, sha, outcome, trusted = value
        if not all(type(s) is int for s in stamp) or outcome not in OUTCOMES:
            return None
        if not isinstance(sha, str) or len(sha) != 64 or not isinstance(trusted, bool):
            return None
        return IndexEntry(tuple(stamp), sha, outcome, trusted)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Listed:
    """One file of a repository record: its stat, the sha256 of its bytes, and whether a
    later identical stat proves those bytes (``is_trusted``)."""

    stamp: Stamp
    sha: str
    trusted: bool

    def to_list(self) -> list[Any]:
        return [*self.stamp, self.sha, self.trusted]

    @staticmethod
    def from_list(value: Any) -> Listed | None:
        if not isinstance(value, list) or len(value) != 7:
            return None
        *stamp, sha, trusted = value
        if not all(type(s) is int for s in stamp) or not isinstance(trusted, bool):
            return None
        if not isinstance(sha, str) or len(sha) != 64:
            return None
        return Listed(tuple(stamp), sha, trusted)  # type: ignore[arg-type]


@dataclass
class Repository:
    """What one run knows of the repository at ``root``: its listing (relative path ->
    ``Listed``), the answers that hold for it (kind -> relative path -> value), and whether
    either is new to the record on disk."""

    root: str
    listing: dict[str, Listed]
    answers: dict[str, dict[str, Any]]
    dirty: bool

    def relative(self, path: str) -> str | None:
        """``path`` relative to the root when it is a file of the listing (else None: its
        answer depends on bytes the listing does not hold)."""
        relative = os.path.relpath(path, self.root)
        return relative if relative in self.listing else None


def _stat_listing(root: str) -> dict[str, Stamp] | None:
    """The stat of every file the repository index of ``root`` reads, by relative path; None
    when the repository is too large to be indexed (its answers read no file then)."""
    index = RepositoryIndex(root)
    if not index.complete:
        return None
    found = {}
    for path in index.files:
        try:
            found[os.path.relpath(path, root)] = stamp_of(os.stat(path))
        except OSError:
            found[os.path.relpath(path, root)] = (0, 0, -1, 0, 0)
    return found


def _listed(path: str, stamp: Stamp, index: RepositoryIndex) -> Listed:
    """Read ``path`` as the repository index would (a FIFO or an unreadable file is empty to
    it), hash it and hand the bytes to ``index`` so it does not read them again."""
    read_at = now_ns()
    if stamp[2] < 0 or not _is_regular(path):
        return Listed(stamp, content_sha(b""), False)
    try:
        data, stable = read_source(path)
    except OSError:
        return Listed(stamp, content_sha(b""), False)
    if stable is None:  # changed while read: never trusted
        return Listed(stamp, content_sha(data), False)
    index.remember_source(path, data, stable[3], stable[2])
    return Listed(stable, content_sha(data), is_trusted(stable, read_at))


def _is_regular(path: str) -> bool:
    import stat

    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


@dataclass
class Cache:
    """One run's view of the cache directory ``root`` under the run key ``key``.

    ``semantic_map`` gives the run's map (called on the first answer that needs it: a run
    whose answers are all recorded compiles no map) and ``target_name`` names the run's
    target: their words drive the dependency answers (``facts_from_other_files``). Without
    them, the shipped map and the default target.
    """

    root: str
    key: str
    prefilter: bool = True
    semantic_map: Callable[[], SemanticMap] | None = None
    target_name: str | None = None
    index: dict[str, IndexEntry] = field(default_factory=dict)
    updates: dict[str, IndexEntry] = field(default_factory=dict)
    # repository root -> what this run knows of it (None: not recorded, answers computed)
    repositories: dict[str, Repository | None] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return os.path.join(self.root, f"v{FORMAT}")

    @property
    def index_key(self) -> str:
        return hashlib.sha256(f"{self.key}\0prefilter={self.prefilter}".encode()).hexdigest()

    @property
    def index_path(self) -> str:
        return os.path.join(self.base, f"index-{self.index_key[:32]}")

    def result_path(self, key: str) -> str:
        return os.path.join(self.base, "results", key[:2], key)

    def load_index(self) -> None:
        self.index = self._read_index()

    def _read_index(self) -> dict[str, IndexEntry]:
        data = _read(self.index_path)
        payload = _unpack(data, self.index_key) if data is not None else None
        if not isinstance(payload, dict):
            return {}
        entries = {}
        for path, value in payload.items():
            entry = IndexEntry.from_list(value)
            if entry is not None:
                entries[path] = entry
        return entries

    def known(self, path: str, stamp: Stamp) -> IndexEntry | None:
        """The index entry of ``path`` when its stat proves the bytes are those it records."""
        entry = self.index.get(path)
        if entry is None or not entry.trusted or entry.stamp != stamp:
            return None
        return entry

    def remember(self, path: str, stamp: Stamp, sha: str, outcome: str, read_at_ns: int) -> None:
        self.updates[path] = IndexEntry(stamp, sha, outcome, is_trusted(stamp, read_at_ns))

    def recorded_sha(self, path: str) -> str | None:
        """The sha of the bytes ``remember`` recorded for ``path`` in this run, if any."""
        entry = self.updates.get(path)
        return entry.sha if entry is not None else None

    def reclassify(self, path: str, outcome: str) -> None:
        """Record another outcome for the bytes ``remember`` recorded for ``path`` (the second
        pre-filter stage rules out a file the byte filter kept)."""
        entry = self.updates.get(path)
        if entry is not None:
            self.updates[path] = IndexEntry(entry.stamp, entry.sha, outcome, entry.trusted)

    def keep(self, path: str) -> None:
        """Carry the current entry of ``path`` over to the index written at the end."""
        if path in self.index:
            self.updates[path] = self.index[path]

    def result(self, path: str, sha: str) -> dict[str, Any] | None:
        """The cached outcome of converting the bytes ``sha`` (found at ``path``), if any."""
        key = result_key(self.key, sha, self.facts(path))
        data = _read(self.result_path(key))
        payload = _unpack(data, key) if data is not None else None
        return payload if _valid_result(payload) else None

    def store_result(self, path: str, sha: str, result: Mapping[str, Any]) -> None:
        key = result_key(self.key, sha, self.facts(path))
        with suppress(OSError):
            _atomic_write(self.result_path(key), _pack(key, dict(result)))

    def facts(self, path: str) -> str:
        """``facts_from_other_files(path)`` for the run's map and target, from the repository
        record when it holds."""
        return self.across_files(FACTS, path, lambda: self._facts_now(path))

    def _facts_now(self, path: str) -> str:
        if self.semantic_map is None or self.target_name is None:
            return facts_from_other_files(path)
        return facts_from_other_files(path, self.semantic_map(), self.target_name)

    @property
    def maps_proof_path(self) -> str:
        return os.path.join(self.base, f"maps-{self.key[:32]}")

    def maps_compiled(self) -> bool:
        """Whether a run under this key compiled its maps without an error (``prove_maps``):
        the key holds this package's files (the shipped map, the hooks) and every map file's
        bytes, so this run's maps compile too."""
        data = _read(self.maps_proof_path)
        return data is not None and _unpack(data, self.key) == "compiled"

    def prove_maps(self) -> None:
        """Record that this run's maps compiled (best effort; see ``maps_compiled``)."""
        if not self.maps_compiled():
            with suppress(OSError):
                _atomic_write(self.maps_proof_path, _pack(self.key, "compiled"))

    def across_files(self, kind: str, path: str, compute: Callable[[], Any]) -> Any:
        """The answer of ``kind`` for ``path``: recorded for its repository's current content,
        else ``compute()`` (recorded for the next run)."""
        absolute = os.path.abspath(path)
        repository = self._repository(repository_root(absolute))
        relative = repository.relative(absolute) if repository is not None else None
        if repository is None or relative is None:
            return compute()
        answers = repository.answers.setdefault(kind, {})
        if relative not in answers:
            answers[relative] = compute()
            repository.dirty = True
        return answers[relative]

    def _repository(self, root: str) -> Repository | None:
        if root not in self.repositories:
            self.repositories[root] = self._list_repository(root)
        return self.repositories[root]

    def _list_repository(self, root: str) -> Repository | None:
        """The repository at ``root`` as it is now, with the recorded answers when every file
        has the recorded bytes (files whose stat is not the recorded one are read again)."""
        stamps = _stat_listing(root)
        if stamps is None:
            return None
        recorded = self._read_repository(root)
        old = recorded.listing if recorded is not None else {}
        index = index_for(root)
        listing = {}
        for relative, stamp in stamps.items():
            known = old.get(relative)
            if known is not None and known.trusted and known.stamp == stamp:
                listing[relative] = known
            else:
                listing[relative] = _listed(os.path.join(root, relative), stamp, index)
        same = recorded is not None and old.keys() == listing.keys()
        same = same and all(old[r].sha == listed.sha for r, listed in listing.items())
        answers = recorded.answers if same and recorded is not None else {}
        return Repository(root, listing, answers, dirty=not same or old != listing)

    def recheck_repositories(self) -> None:
        """Forget the repositories whose files changed since they were listed (converted in
        place, edited during the run): their answers are computed again, and not recorded."""
        for root, repository in self.repositories.items():
            if repository is not None and not _still_listed(repository):
                self.repositories[root] = None

    def repository_path(self, root: str) -> str:
        return os.path.join(self.base, "repositories", self._repository_key(root)[:32])

    def _repository_key(self, root: str) -> str:
        return hashlib.sha256(f"{self.index_key}\0{root}".encode()).hexdigest()

    def _read_repository(self, root: str) -> Repository | None:
        """The record of ``root`` on disk; None when there is none or it does not check out."""
        data = _read(self.repository_path(root))
        payload = _unpack(data, self._repository_key(root)) if data is not None else None
        if not isinstance(payload, dict) or payload.get("root") != root:
            return None
        listing_payload, answers_payload = payload.get("listing"), payload.get("answers")
        if not isinstance(listing_payload, dict) or not isinstance(answers_payload, dict):
            return None
        listing = {r: Listed.from_list(v) for r, v in listing_payload.items()}
        answers = {k: _valid_answers(k, v) for k, v in answers_payload.items()}
        if any(v is None for v in (*listing.values(), *answers.values())):
            return None
        return Repository(root, listing, answers, dirty=False)  # type: ignore[arg-type]

    def save_repositories(self) -> None:
        """Write the record of every repository this run learnt something about, when its
        files are still those listed and the index read the listed bytes (best effort)."""
        for root, repository in sorted(self.repositories.items()):
            if repository is None or not repository.dirty or not _still_listed(repository):
                continue
            if not _index_read_listed_bytes(repository):
                continue
            payload = {
                "root": root,
                "listing": {r: e.to_list() for r, e in sorted(repository.listing.items())},
                "answers": repository.answers,
            }
            key = self._repository_key(root)
            with suppress(OSError):
                _atomic_write(self.repository_path(root), _pack(key, payload))

    def save_index(self) -> None:
        """Merge this run's entries into the index on disk (best effort), and write the
        repository records."""
        self.save_repositories()
        if all(self.index.get(path) == entry for path, entry in self.updates.items()):
            return  # nothing new: every file was known by its stat
        merged = self._read_index()
        merged.update(self.updates)
        payload = {path: entry.to_list() for path, entry in sorted(merged.items())}
        with suppress(OSError):
            _atomic_write(self.index_path, _pack(self.index_key, payload))


def _valid_answers(kind: str, value: Any) -> dict[str, Any] | None:
    """Recorded answers of ``kind`` when they have its type (None otherwise)."""
    expected = _ANSWER_TYPES.get(kind)
    if expected is None or not isinstance(value, dict):
        return None
    if not all(isinstance(k, str) and type(v) is expected for k, v in value.items()):
        return None
    return value


def _still_listed(repository: Repository) -> bool:
    """Whether the repository's files are the listed ones, with the listed stats."""
    return _stat_listing(repository.root) == {
        relative: listed.stamp for relative, listed in repository.listing.items()
    }


def _index_read_listed_bytes(repository: Repository) -> bool:
    """Whether every file of the listing that the repository index read had the listed bytes
    (so the answers computed in this run are those of the listed content)."""
    for path, data in index_for(repository.root).sources_read().items():
        relative = os.path.relpath(path, repository.root)
        listed = repository.listing.get(relative)
        if listed is not None and content_sha(data) != listed.sha:
            return False
    return True


_RECORD_FIELDS = ("api", "kind", "status", "snippet", "reason", "suggestion", "line", "column")


def _valid_result(payload: Any) -> bool:
    """Whether ``payload`` has the shape of a stored result (see ``store_result``)."""
    if not isinstance(payload, dict):
        return False
    if "error" in payload:
        return isinstance(payload["error"], str)
    records = payload.get("records")
    if not isinstance(payload.get("changed"), bool) or not isinstance(records, list):
        return False
    return all(isinstance(r, dict) and all(f in r for f in _RECORD_FIELDS) for r in records)


def open_cache(
    root: str,
    map_files: Sequence[str],
    options: Mapping[str, Any],
    include_generated: bool,
    semantic_map: Callable[[], SemanticMap] | None = None,
    target_name: str | None = None,
) -> Cache | None:
    """The cache under ``root`` for this run, its index loaded; None when it cannot be used.
    ``semantic_map`` and ``target_name``: the run's (see ``Cache``)."""
    try:
        os.makedirs(root, exist_ok=True)
        key = run_key(map_files, options, include_generated)
    except OSError:
        return None
    prefilter = bool(options.get("prefilter", True))
    found = Cache(root, key, prefilter, semantic_map, target_name)
    found.load_index()
    return found


def maps_compiled_under(
    root: str, map_files: Sequence[str], options: Mapping[str, Any], include_generated: bool
) -> bool:
    """Whether the cache under ``root`` proves that the maps of a run with these arguments
    compile (``Cache.maps_compiled``); reads nothing but the map files and the proof."""
    try:
        key = run_key(map_files, options, include_generated)
    except OSError:
        return False
    return Cache(root, key).maps_compiled()


def now_ns() -> int:
    return time.time_ns()
