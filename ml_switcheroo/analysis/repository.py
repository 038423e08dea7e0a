"""The repository index: facts about other files of the repository, from one cheap ``ast`` pass.

The codemod sees one file at a time; an optimizer handed to ``train_one_epoch(model, opt,
loader)`` imported from ``engine.py`` lives on in another file. ``RepositoryIndex`` answers, for
the files of one repository (the folder above the outermost package of a file: the same under
``python -m libcst.tool codemod`` and under ``ml-switcheroo convert``):

- which file a module name is, and which module a file is (absolute imports, relative imports,
  ``from pkg import mod``);
- every call site in the repository of a module-level function, and what it passes for one
  parameter (a call built in the caller's scope, at ``file:line``, or something unknown);
- how a function uses one parameter (only the given methods, or something else, at
  ``file:line``);
- what a module-level function returns on every path (one constructor, or what differs), and
  how its callers use the value.

Files are read as bytes once and parsed with ``ast`` only when their bytes can matter (they
name the function asked about, or import a module while passing the byte pre-filter). Anything
that makes a fact unknown (a star import, a use of the function as a value, ``getattr`` by
name, a file that fails to parse, a parameter passed on, recursion) is returned as an
``Unknown`` naming the place. Directories are walked without following symbolic links (no
loops); a repository of more than ``MAX_FILES`` files is not indexed (every fact unknown).

A builder may bind the value before returning it (``opt = AdamW(...); return opt``, the name
bound once in the function).

Scheduler factories (issue 12): ``factory_body`` reads a module-level function whose whole body
returns one call built on one of its parameters (its text, the parameters its other arguments
read, or the place that makes it unknown: a module global of its own file, a second use of the
optimizer, ``*args``); ``factory_callers`` is ``call_sites`` for it, unknown also where a file
imports it under two names; ``calls_of`` counts the calls of a function in the repository.

A module-level class is a callable too (``FileFacts.callable``: its ``__init__`` without
``self``): ``Trainer(model, loader, opt)`` is a call site, and a parameter its ``__init__``
stores once in ``self.<attr>`` is used only as the repository's files use ``.<attr>``
(``stored_misuse``, ``analysis/stored_ast.py``).

NOT DONE YET (issue 12, deliverable 1, later parts): methods other than a class's
``__init__`` (``trainer.fit(opt)``), ``return opt, sched`` tuples across files (a
builder of the same file is followed: ``analysis/builders.py``), module attributes, values
passed on through more than one function (``fit`` passing its parameter to
``train_one_epoch``: unknown), schedulers handed across files. Each of these keeps today's
escape.
"""

from __future__ import annotations

import ast
import hashlib
import os
import pickle
import re
import stat
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ml_switcheroo.analysis import ast_nodes
from ml_switcheroo.analysis.stored_ast import (
    attribute_problem,
    class_problem,
    init_without_self,
    receives_method_call,
    stored_attribute,
)

MAX_FILES = 20_000
MAX_IMPORTING = 64  # files importing a file read for a freeze they may run before its code
_MAX_STAR_DEPTH = 4  # star imports followed from one star import (``star_names``)
# builtins that reach an attribute by a name in a string: `setattr(engine, "train", f)` in
# another file replaces a module's function as surely as `engine.train = f`
_BY_NAME = ("getattr", "hasattr", "setattr", "delattr")
MAX_IMPORT_CANDIDATES = 512  # files holding a module's name read for their imports of it
MAX_HOPS = 3  # functions a value passed on is followed through
_WORD = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_WORD_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_NOT_WORD_TO_SPACE = bytes(b if b in _WORD_BYTES else 0x20 for b in range(256))
_DIGITS = b"0123456789"


def identifiers(data: bytes) -> frozenset[bytes]:
    """``frozenset(_WORD.findall(data))``, 1.5 times as fast (the word table reads every file of
    the repository: 46 MB for torch's sources). The runs of word bytes split out at C speed; in
    a run, ``_WORD`` matches from its first byte that is not a digit to its end, so a run
    starting with digits stands for what follows them (nothing when it is all digits)."""
    runs = set(data.translate(_NOT_WORD_TO_SPACE).split())
    for run in [run for run in runs if run[0] in _DIGITS]:
        runs.discard(run)
        if stripped := run.lstrip(_DIGITS):
            runs.add(stripped)
    return frozenset(runs)


# Never a package of the repository (a folder such as `build` or `env` may be one, so it is
# read: a call site left unread would be a guess).
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


@dataclass(frozen=True)
class Place:
    """A line of a file of the repository."""

    file: str
    line: int

    def named(self, root: str) -> str:
        """``pkg/engine.py:12``: relative to the repository root."""
        return f"{os.path.relpath(self.file, root)}:{self.line}"


@dataclass(frozen=True)
class Unknown:
    """A fact that cannot be known, and the place that made it so."""

    place: Place
    why: str

    def describe(self, root: str) -> str:
        return f"{self.place.named(root)} {self.why}"


@dataclass(frozen=True)
class Constructed:
    """A call site passes the value of a call built in the caller's scope."""

    call_site: Place
    constructor: str | None  # the called function's qualified name (through imports)
    place: Place  # where the constructor call is
    # `X(...).to(d).cuda()`: the methods called on the result of the inner call, in order
    # ("to", "cuda"), and that call's qualified name (`constructor` is then None)
    methods: tuple[str, ...] = ()
    inner: str | None = None


@dataclass
class FileFacts:
    """One file: its module, its tree (None when it fails to parse), and its imports."""

    path: str
    module: str
    tree: ast.Module | None = None
    error: Unknown | None = None
    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    # run by `import a.b` (`a.b`), or star-imported (``FileImports.submodules``)
    submodules: list[str] = field(default_factory=list)
    stars: list[tuple[str, int]] = field(default_factory=list)  # (module, line)
    stored: frozenset[str] = frozenset()  # names bound by anything but an import
    # name -> what it may name, for names bound more than once (an import and an assignment,
    # two imports, a function and an assignment): reaching one makes a fact unknown
    shadowed: dict[str, str] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)  # module level, once
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)  # module level, once
    defines: bool = False  # the module's body defines a function or class (once or not)
    # the line of a call that writes the module's names as data (`globals()[...] = f`,
    # `exec(source)`): any module-level name may then be something else (0: none)
    namespace_written: int = 0
    # class name -> its `__init__` without `self` (``stored_ast.init_without_self``), once made
    inits: dict[str, ast.FunctionDef | None] = field(default_factory=dict)
    # name -> every function of that name at any depth, in ``ast.walk`` order (read in the
    # walk that makes the facts: a method name is looked up without walking the tree again)
    definitions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = field(
        default_factory=dict
    )
    _nodes: TreeNodes | None = field(default=None, init=False, repr=False, compare=False)

    def nodes(self) -> TreeNodes:
        """The indices of the parsed tree the queries read (built on first use, kept with the
        tree: both go when the file's bytes change)."""
        if self._nodes is None:
            assert self.tree is not None
            self._nodes = _tree_nodes(self)
        return self._nodes

    def callable(self, name: str) -> ast.FunctionDef | None:
        """The module-level function ``name``, or the ``__init__`` (without ``self``) of the
        module-level class ``name``: what a call of ``name`` binds its arguments to."""
        if name in self.functions:
            return self.functions[name]
        if name not in self.classes:
            return None
        if name not in self.inits:
            self.inits[name] = init_without_self(self.classes[name])
        return self.inits[name]


@dataclass(frozen=True)
class FileImports:
    """What the import graph reads of a file (``importers``, ``imported_files``,
    ``may_change``: the cache's digest of other files): its imports and whether it defines a
    module-level function or class. Kept without the tree, which a run filling a cache would
    otherwise hold for most files of the repository."""

    imports: dict[str, str]  # local name -> qualified name
    defines: bool
    # the modules `import a.b.c` runs besides the one it binds (`a.b`, `a.b.c`), and those
    # of its star imports (what they bind is read: ``RepositoryIndex.star_names``)
    submodules: tuple[str, ...] = ()

    def modules(self) -> list[str]:
        """Every module the file imports: the qualified names it binds and the submodules."""
        return [*self.imports.values(), *self.submodules]


@dataclass(frozen=True)
class TreeNodes:
    """One walk of a file's tree, for every query about it: each node's parent, and, each list
    in ``ast.walk`` order with the node's place in that order, the names and attributes by the
    qualified name they denote (``_qualified``), the names by identifier, the
    ``getattr``/``hasattr`` calls by the attribute name they reach, and the names some function
    declares ``global``."""

    parents: dict[int, ast.AST]
    denoting: dict[str, list[tuple[int, ast.expr]]]
    names: dict[str, list[tuple[int, ast.Name]]]
    reaching: dict[str, list[tuple[int, ast.Call]]]
    declared_global: frozenset[str]

    def candidates(
        self, facts: FileFacts, qualified: str, reached: str | None = None
    ) -> list[ast.AST]:
        """In ``ast.walk`` order, every node where a scan of the file for ``qualified`` may
        stop: the names and attributes denoting it, the names ``_shadowed_reach`` may flag,
        and (``reached``: a last name) the ``getattr``/``hasattr`` calls reaching it."""
        groups = [self.denoting.get(qualified, [])]
        groups += [self.names.get(n, []) for n in facts.shadowed if _shadows(n, facts, qualified)]
        if reached is not None:
            groups.append(self.reaching.get(reached, []))
        return [node for _, node in sorted({p: n for g in groups for p, n in g}.items())]

    def calls_of(self, qualified: str) -> int:
        """How many calls call what ``qualified`` names."""
        return sum(
            1
            for _, node in self.denoting.get(qualified, [])
            if isinstance(call := self.parents.get(id(node)), ast.Call) and call.func is node
        )

    def names_under(self, scope: ast.AST, name: str) -> list[ast.Name]:
        """The names ``name`` in ``scope`` (nested functions too), in ``ast.walk`` order."""
        return [node for _, node in self.names.get(name, []) if self._under(node, scope)]

    def _under(self, node: ast.AST, scope: ast.AST) -> bool:
        current = self.parents.get(id(node))
        while current is not None and current is not scope:
            current = self.parents.get(id(current))
        return current is not None


def repository_root(path: str) -> str:
    """The folder above the outermost package holding ``path`` (its own folder if none).

    A folder without ``__init__.py`` is a namespace package when a script of the folder
    above imports it by name (``from helper.loops import train`` in ``train.py`` next to
    ``helper/``: ``python train.py`` puts the script's folder first on ``sys.path``): the
    root is then looked for above that folder too. During a selection (nothing is written)
    each folder's root is found once."""
    start = os.path.dirname(os.path.abspath(path))
    if not _Selection.active:
        return _root_above(start)
    known = _Selection.roots.get(start)
    if known is None:
        known = _Selection.roots[start] = _root_above(start)
    return known


def _root_above(start: str) -> str:
    """``repository_root`` of a file in the folder ``start``."""
    folder = _above_packages(start)
    while True:
        parent = os.path.dirname(folder)
        if parent == folder or not _script_imports(parent, os.path.basename(folder)):
            return folder
        folder = _above_packages(parent)


def _above_packages(folder: str) -> str:
    """``folder``, or the folder above the outermost regular package holding it."""
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


_SCRIPT_IMPORTS: dict[tuple[str, str, int], bool] = {}


def _script_imports(folder: str, name: str) -> bool:
    """Whether a ``.py`` file right in ``folder`` has an import statement of the top-level
    module ``name`` (``import name.x``, ``from name.x import y``, ``from name import x``),
    read from its bytes (asked once per listing of the folder)."""
    try:
        key = (folder, name, os.stat(folder).st_mtime_ns)
    except OSError:
        return False
    if key not in _SCRIPT_IMPORTS:
        _SCRIPT_IMPORTS[key] = _any_script_imports(folder, name)
    return _SCRIPT_IMPORTS[key]


def _any_script_imports(folder: str, name: str) -> bool:
    word = re.escape(name.encode("utf-8", "surrogateescape"))
    pattern = re.compile(
        rb"^[ \t]*(?:from[ \t]+" + word + rb"[ \t]*[.\s]|import[ \t][^\n#]*\b" + word + rb"\b)",
        re.MULTILINE,
    )
    try:
        entries = sorted(os.listdir(folder))
    except OSError:
        return False
    for entry in entries:
        path = os.path.join(folder, entry)
        if not entry.endswith(".py") or not os.path.isfile(path) or os.path.islink(path):
            continue
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        if name.encode("utf-8", "surrogateescape") in data and pattern.search(data):
            return True
    return False


def may_change_across_files(path: str, source_words: Iterable[bytes]) -> bool:
    """Whether the file ``path`` can change because of facts from other files of its
    repository, though its own bytes lack what the pre-filter needs (``source_words``: the
    map's source packages, ``torch``, and the target's name): see
    ``RepositoryIndex.may_change``, the coarse question behind the cache's dependency digests.
    The pre-filter stages ask the precise one (``cross_file.may_change_through_other_files``)."""
    absolute = os.path.abspath(path)
    return index_for(repository_root(absolute)).may_change(absolute, source_words)


class _Selection:
    """The state of ``selecting()``: whether a selection runs, and the answers it keeps."""

    active = False
    answers: dict[Hashable, Any] = {}
    looked_at: set[str] = set()  # the files whose stat ``RepositoryIndex.source`` took
    roots: dict[str, str] = {}  # folder -> ``repository_root`` of its files


@contextmanager
def selecting() -> Iterator[None]:
    """While the pre-filter stages of one run choose the files to convert (nothing is written
    then), ``remembered`` keeps answers about the repository that do not depend on the file
    asking. They are dropped when it ends; later questions (the engine's) look at the files
    again, except those the run pinned (``pin_sources``: the files it may write)."""
    _Selection.answers = {}
    _Selection.looked_at = set()
    _Selection.roots = {}
    _Selection.active = True
    try:
        yield
    finally:
        _Selection.active = False
        _Selection.answers = {}
        _Selection.looked_at = set()
        _Selection.roots = {}


def is_selecting() -> bool:
    """Whether ``selecting()`` runs (``remembered`` keeps answers)."""
    return _Selection.active


def remembered(key: Hashable, ask: Callable[[], Any]) -> Any:
    """``ask()``, asked once per ``key`` during ``selecting()`` (every time outside it)."""
    if not _Selection.active:
        return ask()
    answers = _Selection.answers
    if key not in answers:
        answers[key] = ask()
    return answers[key]


class _Pins:
    """The bytes of the files one run may write, as they were when it started."""

    sources: dict[str, bytes] = {}  # absolute path -> bytes


def pin_sources(paths: Iterable[str]) -> None:
    """Take the bytes each file of ``paths`` has now as its bytes for every question asked
    until the next ``pin_sources`` or ``release_pins``: a run that converts files in place
    answers every question about another file from that file as the user wrote it, whether
    or not a worker already rewrote it (the order of files, and of workers, changes nothing).
    Called by a run before it writes anything, in the process its workers fork from."""
    pins: dict[str, bytes] = {}
    for path in paths:
        absolute = os.path.abspath(path)
        if not absolute.endswith(".py"):
            continue
        index = index_for(repository_root(absolute))
        pins[absolute] = index.unpinned_source(absolute)
    _Pins.sources = pins


def remember_parsed(path: str, data: bytes, tree: ast.Module, keep: bool) -> None:
    """Hand ``tree``, the ``ast`` of ``data`` (the bytes of ``path`` a caller read and parsed),
    to the index of its repository (``RepositoryIndex.remember_tree``): kept for its facts with
    ``keep``, else read for its imports only."""
    absolute = os.path.abspath(path)
    index = index_for(repository_root(absolute))
    if index.complete:
        index.remember_tree(absolute, data, tree, keep)


class _SharedImports:
    """The folder the processes of one run keep ``FileImports`` in (``share_imports``)."""

    folder: str | None = None


def share_imports(folder: str | None) -> None:
    """Keep the imports read of each file (``RepositoryIndex.imports_of``) in ``folder``, where
    every process of the run finds them (None: stop). The workers libcst forks walk import
    closures that overlap: on checkout-large the two workers of ``-j 2`` parsed 697 and 638
    files for their imports, 591 of them in both (1.1 + 1.0 CPU-s). Reading the imports in the
    parent before the fork instead cost more than it saved (it cannot know where each walk
    stops: torch's walks read no file's imports, but their closures are large)."""
    _SharedImports.folder = folder


def _shared_read_imports(path: str, module: str, data: bytes) -> FileImports:
    """``_read_imports``, from the shared folder when another process read them already: the
    answer is a function of (path, module, bytes) alone, so the entry is named by their
    sha256. An entry that cannot be read is read from the file again."""
    folder = _SharedImports.folder
    if folder is None:
        return _read_imports(path, module, data)
    digest = hashlib.sha256(
        os.fsencode(path) + b"\0" + module.encode("utf-8", "surrogatepass") + b"\0"
    )
    digest.update(data)
    name = os.path.join(folder, digest.hexdigest())
    try:
        with open(name, "rb") as handle:
            found = pickle.load(handle)
        if type(found) is FileImports:
            return found
    except Exception:  # noqa: BLE001 - no entry, or one unreadable: parse the file
        pass
    found = _read_imports(path, module, data)
    partial = f"{name}.{os.getpid()}"
    try:
        with open(partial, "wb") as handle:
            pickle.dump(found, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, name)  # whole or absent for a reader
    except OSError:
        pass
    return found


def release_pins() -> None:
    """Forget ``pin_sources``: questions read the files again (after a run that wrote them)."""
    _Pins.sources = {}


@cache
def index_for(root: str) -> RepositoryIndex:
    """The index of the repository at ``root``, one per process."""
    return RepositoryIndex(root)


class RepositoryIndex:
    """Facts about the Python files under ``root`` (built lazily, cached)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._files: list[str] | None = None
        self._modules: dict[str, str] | None = None  # module -> path
        self._bytes: dict[str, tuple[tuple[int, int], bytes]] = {}  # path -> (stat, bytes)
        self._facts: dict[str, FileFacts] = {}
        self._imports: dict[str, tuple[bytes, FileImports]] = {}  # path -> (bytes, imports)
        self._about: dict[tuple[str, Hashable], tuple[bytes, Any]] = {}  # ``about``'s answers
        self._words: dict[bytes, list[str]] | None = None  # word -> the files holding it (asked)
        self._file_words: dict[str, frozenset[bytes]] = {}  # path -> its words (when listed)
        self._shas: dict[str, tuple[bytes, bytes]] = {}  # path -> (bytes, their sha256)
        # source words -> (the files holding one, the last names of their modules)
        self._holding: dict[tuple[bytes, ...], tuple[frozenset[str], frozenset[bytes]]] = {}
        self._importers: dict[tuple[str, tuple[bytes, ...]], list[str]] = {}
        # qualified name -> (the bytes of the files holding its last name, its calls there)
        self._calls: dict[str, tuple[tuple[bytes, ...], int]] = {}
        # made once per file (the layout of an index does not change)
        self._module_names: dict[str, str] = {}
        self._packages: dict[str, list[str]] = {}
        self._imported: dict[str, tuple[bytes, list[str]]] = {}  # path -> (bytes, its files)
        # while one selection runs: path -> every file ``_successors`` reach from it
        self._reach: dict[str, frozenset[str]] = {}
        self._reach_selection: object = None

    # ------------------------------------------------------------------ files and modules

    @property
    def files(self) -> list[str]:
        """Every ``.py`` file under the root (symbolic links to folders are not followed)."""
        if self._files is None:
            self._files = list(_python_files(self.root))
        return self._files

    @property
    def complete(self) -> bool:
        return len(self.files) <= MAX_FILES

    def module_of(self, path: str) -> str:
        known = self._module_names.get(path)
        if known is None:
            relative = os.path.relpath(os.path.abspath(path), self.root)[: -len(".py")]
            parts = relative.split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            known = self._module_names[path] = ".".join(parts)
        return known

    def file_of(self, module: str) -> str | None:
        if self._modules is None:
            self._modules = {self.module_of(path): path for path in self.files}
        return self._modules.get(module)

    def split(self, qualified: str) -> tuple[str, str] | None:
        """``pkg.engine.train`` -> (``pkg.engine``, ``train``) when the module is a file here."""
        module, _, name = qualified.rpartition(".")
        if module and name and self.file_of(module) is not None:
            return module, name
        return None

    def with_word(self, word: str) -> list[str]:
        """The files whose text holds the identifier ``word`` (one pass over every file for
        its words, the first time; the files of a word listed when it is first asked: names of
        functions and modules do not change when a file is converted, so neither is built
        again)."""
        if self._words is None:
            for path in self.files:
                self._file_words[path] = identifiers(self.source(path))
            self._words = {}
        key = word.encode()
        if key not in self._words:
            self._words[key] = [path for path in self.files if key in self._file_words[path]]
        return self._words[key]

    def about(self, path: str, question: Hashable, ask: Callable[[], Any]) -> Any:
        """``ask()``, asked once per content of the file at ``path`` in this process, during
        a selection and after it: for answers read from that file's content alone (and the
        repository's layout, fixed for an index), which every file converted would otherwise
        ask again of the same files of its closure."""
        data = self.source(path)
        known = self._about.get((path, question))
        if known is not None and known[0] is data:  # the same bytes object: not read again
            return known[1]
        answer = ask()
        self._about[(path, question)] = (data, answer)
        return answer

    def source(self, path: str) -> bytes:
        """The file's bytes, read again when its size or modification time changed (a file
        converted earlier in the same run, or between two runs of one process). During a
        selection (nothing is written) a file is looked at once. A pinned file
        (``pin_sources``) is never read again while the pin holds."""
        pinned = _Pins.sources.get(path)
        if pinned is not None:
            known = self._bytes.get(path)
            if known is None or known[1] is not pinned:
                self._bytes[path] = ((0, -2), pinned)  # a stamp no file has: read once unpinned
                self._facts.pop(path, None)
            return pinned
        return self.unpinned_source(path)

    def unpinned_source(self, path: str) -> bytes:
        """``source``, from the file whatever the pins."""
        if _Selection.active:
            if path in _Selection.looked_at and path in self._bytes:
                return self._bytes[path][1]
            _Selection.looked_at.add(path)
        try:
            info = os.stat(path)
            stamp = (info.st_mtime_ns, info.st_size)
            regular = stat.S_ISREG(info.st_mode)
        except OSError:
            stamp, regular = (0, -1), False
        known = self._bytes.get(path)
        if known is None or known[0] != stamp:
            data = b""
            if regular:  # never open a FIFO or a device named like a Python file: it blocks
                try:
                    with open(path, "rb") as handle:
                        data = handle.read()
                except OSError:
                    pass
            self._bytes[path] = (stamp, data)
            self._facts.pop(path, None)
        return self._bytes[path][1]

    def remember_tree(self, path: str, data: bytes, tree: ast.Module, keep: bool) -> None:
        """Take ``tree``, the ``ast`` of ``data`` a caller parsed (the second stage), for the
        file at ``path`` while ``data`` is its bytes: with ``keep`` its facts are read from it
        (a file to convert: its own questions read them), else only its imports (``imports_of``),
        the tree not kept. The facts or imports are those a parse here would give: the second
        stage parsed the same bytes. (On checkout-large, of 1,579 ``ast`` parses of a run,
        482 parsed again what an earlier one had: 174 imports and 164 facts after the stage.)"""
        known = self._bytes.get(path)
        if known is None or known[1] != data:
            return  # not the bytes this index reads for the file: left to a parse of its own
        data = known[1]  # the index's own object (``imports_of`` compares by identity)
        if keep:
            self.facts(path, (data, tree))
        elif path not in self._facts and path not in self._imports:
            self._imports[path] = (data, _tree_imports(path, self.module_of(path), tree, data))

    def remember_source(self, path: str, data: bytes, mtime_ns: int, size: int) -> None:
        """Take ``data``, read by the caller at this stat, as the bytes of ``path`` (not read
        again while the stat holds)."""
        if path not in self._bytes:
            self._bytes[path] = ((mtime_ns, size), data)

    def sources_read(self) -> dict[str, bytes]:
        """The bytes of every file read so far (the last read of each)."""
        return {path: data for path, (_, data) in self._bytes.items()}

    def facts(self, path: str, parsed: tuple[bytes, ast.Module] | None = None) -> FileFacts:
        """The parsed facts of one file (parsed once per content). ``parsed``: the file's bytes
        and their ``ast`` when the caller has them (the second stage): used when they are the
        bytes read here, so the file is not parsed twice."""
        data = self.source(path)
        if path not in self._facts:
            tree = parsed[1] if parsed is not None and parsed[0] == data else None
            self._facts[path] = _read_facts(path, self.module_of(path), data, tree)
        return self._facts[path]

    def facts_unkept(self, path: str) -> FileFacts:
        """The file's facts as ``facts`` gives them, but a file not parsed yet is parsed for
        this question only, not kept: a question that reads every file holding a common word
        (``calls_of``) holds no more than one of their trees at a time."""
        data = self.source(path)
        known = self._facts.get(path)
        return known if known is not None else _read_facts(path, self.module_of(path), data)

    def calls_of(self, qualified: str, word: str) -> int:
        """How many calls call what ``qualified`` names in the files holding ``word`` (its
        last name), counted once per content of those files."""
        paths = self.with_word(word)
        sources = tuple(self.source(path) for path in paths)
        known = self._calls.get(qualified)
        if known is not None and _same_objects(known[0], sources):
            return known[1]
        count = 0
        for path in paths:
            facts = self.facts_unkept(path)
            if facts.tree is not None:
                count += facts.nodes().calls_of(qualified)
        self._calls[qualified] = (sources, count)
        return count

    def star_names(self, module: str, depth: int = 0) -> dict[str, str | None] | None:
        """The names ``from module import *`` may bind, for a module of the repository, each
        with the qualified name it imports (None: an object of its own, or not known): its
        ``__all__`` when a literal list or tuple of strings, else (a superset) every name its
        file binds not starting with ``_``, with the files of a package's folder (a submodule
        imported anywhere is an attribute of the package) and what its own star imports bind.
        None when unknown: not a file here, a file that fails to parse, a star import of a
        module outside the repository, too deep."""
        path = self.file_of(module)
        if path is None or depth > _MAX_STAR_DEPTH:
            return None
        facts = self.facts(path)
        if facts.tree is None:
            return None
        names: dict[str, str | None] = {}
        for star, _ in facts.stars:
            more = self.star_names(star, depth + 1)
            if more is None:
                return None
            names.update(more)
        own = {*facts.stored, *facts.functions, *facts.classes, *facts.shadowed}
        for name, qualified in facts.imports.items():
            names[name] = None if name in own else qualified
        names.update(dict.fromkeys(n for n in own if "\0" not in n))
        if path.endswith("__init__.py"):
            folder = os.path.dirname(path)
            for entry in os.listdir(folder):
                stem = os.path.splitext(entry)[0]
                if entry.endswith(".py") or os.path.isfile(
                    os.path.join(folder, entry, "__init__.py")
                ):
                    names.setdefault(stem, f"{module}.{stem}")
        listed = _all_names(facts.tree)
        if listed is not None:
            return {n: names.get(n) for n in listed}
        return {n: q for n, q in names.items() if not n.startswith("_")}

    def imports_of(self, path: str) -> FileImports:
        """The file's imports and whether it defines a function or class: from its facts when
        parsed already, else from a parse whose tree is dropped (parsed once per content)."""
        data = self.source(path)
        facts = self._facts.get(path)
        if facts is not None:
            return FileImports(facts.imports, facts.defines, tuple(facts.submodules))
        known = self._imports.get(path)
        if known is None or known[0] is not data:
            known = (data, _shared_read_imports(path, self.module_of(path), data))
            self._imports[path] = known
        return known[1]

    # ------------------------------------------------------------------ queries

    def call_sites(
        self,
        module: str,
        function: str,
        param: str,
        methods: frozenset[str] | None = None,
        trail: tuple[str, ...] = (),
    ) -> list[Constructed] | Unknown:
        """What every call site in the repository passes for ``param`` of ``module.function``
        (a module-level function); an ``Unknown`` at the first place that cannot be followed.

        With ``methods``, a call site in a module-level function that passes its own parameter
        on (``fit(model, opt)`` calling ``train_one_epoch(model, opt, loader)``) is followed to
        that function's call sites, up to ``MAX_HOPS`` functions, when the function uses the
        parameter only through ``methods`` (and by passing it on); ``trail`` holds the
        functions followed so far (one of them again is recursion)."""
        definition = self._callable_of(module, function)
        if isinstance(definition, Unknown):
            return definition
        qualified = f"{module}.{function}"
        follow = _Follow(methods, (*trail, qualified))
        sites: list[Constructed] = []
        for other in self.with_word(function):
            found = self._sites_in(self.facts(other), qualified, module, definition, param, follow)
            if isinstance(found, Unknown):
                return found
            sites.extend(found)
        return sites

    def parameter_misuse(
        self,
        module: str,
        function: str,
        param: str,
        methods: frozenset[str],
        trail: tuple[str, ...] = (),
    ) -> Unknown | None:
        """None when ``function`` uses ``param`` only by calling one of ``methods`` on it, or
        by passing it to a module-level function of the repository that does (up to
        ``MAX_HOPS`` functions); else the first other use."""
        path = self.file_of(module)
        if path is not None and self.facts(path).error is not None:
            return self.facts(path).error
        if path is not None and function in self.facts(path).classes:
            return self.stored_misuse(module, function, param, methods)
        definition = self.facts(path).functions.get(function) if path else None
        if path is None or definition is None:
            return Unknown(Place(path or module, 0), f"does not define `{function}`")
        if definition.decorator_list:
            return Unknown(Place(path, definition.lineno), f"`{function}` is decorated")
        parents = _parents_around(definition, self.facts(path))
        trail = (*trail, f"{module}.{function}")
        for node in ast.walk(definition):
            if isinstance(node, ast.Name) and node.id == param:
                problem = _use_problem(node, parents, methods)
                if problem is None:
                    continue
                passed = self._passed_on(self.facts(path), node, parents, methods, trail)
                if passed is False:
                    return Unknown(Place(path, node.lineno), problem)
                if isinstance(passed, Unknown):
                    return passed
        return None

    def _passed_on(
        self,
        facts: FileFacts,
        node: ast.Name,
        parents: dict[int, ast.AST],
        methods: frozenset[str],
        trail: tuple[str, ...],
    ) -> Unknown | bool:
        """For ``g(..., param, ...)`` with ``g`` a module-level function of the repository:
        True when ``g`` uses the parameter it binds only through ``methods`` (else the
        ``Unknown`` why); False when ``node`` is not such an argument."""
        call = parents.get(id(node))
        if isinstance(call, ast.keyword):
            call = parents.get(id(call))
        if not isinstance(call, ast.Call) or call.func is node:
            return False
        callee = _qualified(call.func, facts)
        split = self.split(callee) if callee else None
        path = self.file_of(split[0]) if split else None
        definition = self.facts(path).callable(split[1]) if split and path else None
        if split is None or definition is None:
            return False
        here = Place(facts.path, call.lineno)
        if callee in trail:
            return Unknown(here, f"recursion: passes `{node.id}` back to `{split[1]}`")
        if len(trail) > MAX_HOPS:
            return Unknown(here, f"passes `{node.id}` on through more than {MAX_HOPS} functions")
        bound = [p for p in _params(definition) if _argument(call, definition, p) is node]
        if len(bound) != 1:
            return Unknown(here, f"passes `{node.id}` where no parameter can be matched to it")
        misuse = self.parameter_misuse(split[0], split[1], bound[0], methods, trail)
        return True if misuse is None else misuse

    def model_mismatch(
        self,
        module: str,
        function: str,
        optimizer: str,
        model: str,
        translated: Callable[[str], bool] = lambda name: False,
        trail: tuple[str, ...] = (),
        self_methods: frozenset[str] = frozenset(),
    ) -> Unknown | None:
        """None when every call site of the module-level ``function`` passes for ``model`` the
        very object the optimizer it passes for ``optimizer`` trains: ``train(m, o)`` with ``o =
        Opt(m.parameters(), ...)`` built in the caller's scope and ``m`` bound once there (a
        parameter never rebound, or one assignment from a call) or not bound again on any path
        from that line to the call (``_unrebound_since``), or a module-level function
        passing on both its own parameters, never rebound (``fit(model, opt)`` calling
        ``train(model, opt)``), whose own call sites do so (up to ``MAX_HOPS`` functions);
        else the first call site that differs, or cannot be followed (a wrapper, another
        model, recursion). ``translated``: whether a qualified name is the target's
        (``nnx.Optimizer(m, tx)``, in a caller converted earlier in the same run, is built
        over ``m``); ``trail``: the functions followed so far; ``self_methods``: module methods
        returning the module itself (``m = m.to(device)`` does not rebind ``m`` to another
        object)."""
        path = self.file_of(module)
        if path is not None and self.facts(path).error is not None:
            return self.facts(path).error
        definition = self.facts(path).callable(function) if path else None
        if path is None or definition is None or not self.complete:
            return Unknown(Place(path or module, 0), f"does not define `{function}` once")
        qualified = f"{module}.{function}"
        for other in self.with_word(function):
            facts = self.facts(other)
            if facts.tree is None:
                assert facts.error is not None
                return facts.error
            parents = facts.nodes().parents
            for _, node in facts.nodes().denoting.get(qualified, []):
                call = parents.get(id(node))
                here = Place(facts.path, node.lineno)
                if not isinstance(call, ast.Call) or call.func is not node:
                    return Unknown(here, "uses it without calling it")
                outer = _passed_on_together(call, definition, (optimizer, model), parents, facts)
                if outer is not None:
                    found = self._outer_mismatch(
                        facts, outer, here, (translated, self_methods), trail, qualified
                    )
                    if found is not None:
                        return found
                    continue
                why = _model_passed_with(
                    call, definition, (optimizer, model), parents, facts, translated, self_methods
                )
                if why is not None:
                    return Unknown(here, why)
        return None

    def _outer_mismatch(
        self,
        facts: FileFacts,
        outer: tuple[str, str, str],
        here: Place,
        known: tuple[Callable[[str], bool], frozenset[str]],
        trail: tuple[str, ...],
        qualified: str,
    ) -> Unknown | None:
        """``model_mismatch`` of the caller ``outer`` (its name, its optimizer and model
        parameters), which passes both on: recursion and too long a chain are unknown."""
        trail = (*trail, qualified)
        if f"{facts.module}.{outer[0]}" in trail:
            return Unknown(here, f"recursion: `{outer[0]}` is reached again")
        if len(trail) > MAX_HOPS:
            return Unknown(here, f"passes the model on through more than {MAX_HOPS} functions")
        translated, self_methods = known
        return self.model_mismatch(facts.module, *outer, translated, trail, self_methods)

    def stored_misuse(
        self,
        module: str,
        owner: str,
        param: str,
        methods: frozenset[str],
        reads_allowed: bool = False,
        skip_own: bool = False,
    ) -> Unknown | None:
        """None when the module-level class ``owner`` keeps its ``__init__`` parameter
        ``param`` in ``self.<attr>`` and no file of the repository stores, reaches by name or
        (unless ``reads_allowed``: a model) uses ``.<attr>`` otherwise than by calling one of
        ``methods`` on it in the class (``analysis/stored_ast.py``); else the first place
        that does (``skip_own``: the class's own file is read by the caller)."""
        path = self.file_of(module)
        facts = self.facts(path) if path else None
        definition = facts.classes.get(owner) if facts else None
        if path is None or facts is None or definition is None:
            if facts is not None and facts.error is not None:
                return facts.error
            return Unknown(Place(path or module, 0), f"does not define `{owner}` once")
        problem = class_problem(definition)
        stored = stored_attribute(definition, param) if problem is None else problem
        if isinstance(stored[0], int):
            return Unknown(Place(path, stored[0]), str(stored[1]))
        attribute, store = stored
        assert isinstance(attribute, str) and isinstance(store, ast.Attribute)
        for other in sorted({path, *self.with_word(attribute)} - ({path} if skip_own else set())):
            read = self.facts(other)
            if read.tree is None:
                return read.error
            mine = other == path
            found = attribute_problem(
                read.tree,
                read.nodes().parents,
                definition if mine else None,
                attribute,
                store if mine else None,
                methods,
                reads_allowed,
            )
            if found is not None:
                return Unknown(Place(other, found[0]), found[1])
        return None

    def returned(self, module: str, function: str) -> Constructed | Unknown:
        """The call every path of the module-level ``function`` returns (one constructor,
        the same on every ``return``, the body ending in one); else what differs, and where."""
        path = self.file_of(module)
        if path is not None and self.facts(path).error is not None:
            return self.facts(path).error
        definition = self.facts(path).functions.get(function) if path else None
        if path is None or definition is None:
            return Unknown(Place(path or module, 0), f"does not define `{function}` once")
        return self.returned_by(path, definition, function)

    def returned_by(
        self, path: str, definition: ast.FunctionDef, function: str
    ) -> Constructed | Unknown:
        """``returned`` for the function ``definition`` of the file ``path`` (a method too)."""
        facts = self.facts(path)
        if definition.decorator_list or any(
            isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(definition)
        ):
            return Unknown(Place(path, definition.lineno), f"`{function}` is decorated or yields")
        returns = sorted(
            (n for n in _own_nodes(definition) if isinstance(n, ast.Return)),
            key=lambda n: (n.lineno, n.col_offset),
        )
        if not returns or not isinstance(definition.body[-1], ast.Return):
            return Unknown(Place(path, definition.lineno), "may end without a return")
        found: Constructed | None = None
        for node in returns:
            value = _returned_call(node, definition)
            if value is None:
                text = _text(node.value) if node.value is not None else "None"
                return Unknown(Place(path, node.lineno), f"returns `{text}`")
            name = _qualified(value.func, facts)
            here = Constructed(Place(path, node.lineno), name, Place(path, value.lineno))
            if name is None or (found is not None and found.constructor != name):
                other = (
                    f", and line {found.call_site.line} returns `{found.constructor}(...)`"
                    if found
                    else ""
                )
                return Unknown(
                    Place(path, node.lineno), f"returns `{_text(value.func)}(...)`{other}"
                )
            found = found or here
        assert found is not None
        return found

    def returned_value_misuse(
        self, module: str, function: str, methods: frozenset[str]
    ) -> Unknown | None:
        """None when every call of ``function`` in the repository binds its value to a name
        (bound once) used only by calling one of ``methods``; else the first other use."""
        qualified = f"{module}.{function}"
        for other in self.with_word(function):
            facts = self.facts(other)
            if facts.tree is None:
                assert facts.error is not None
                return facts.error
            parents = facts.nodes().parents
            for node in facts.nodes().candidates(facts, qualified):
                shadow = _shadowed_reach(node, facts, qualified)
                if shadow is not None:
                    return Unknown(Place(facts.path, getattr(node, "lineno", 0)), shadow)
                if not isinstance(node, (ast.Name, ast.Attribute)):
                    continue
                if _qualified(node, facts) != qualified:
                    continue
                problem = self._returned_use(facts, node, parents, methods)
                if problem is not None:
                    return problem
        return None

    def returned_value_uses(
        self, module: str, function: str, methods: frozenset[str]
    ) -> list[Unknown]:
        """Every use ``returned_value_misuse`` would stop at, in the order of the files and
        their lines: a caller's use of the value other than calling one of ``methods``, and
        where the value is handed to a module-level function of the repository, that
        function's uses of the parameter it binds (one hop; its own first use else)."""
        qualified = f"{module}.{function}"
        found: list[Unknown] = []
        for other in self.with_word(function):
            facts = self.facts(other)
            if facts.tree is None:
                return [*found, facts.error] if facts.error is not None else found
            parents = facts.nodes().parents
            for node in facts.nodes().candidates(facts, qualified):
                if not isinstance(node, (ast.Name, ast.Attribute)):
                    continue
                if _qualified(node, facts) != qualified:
                    continue
                first = self._returned_use(facts, node, parents, methods)
                if first is None:
                    continue
                found.extend(self._every_returned_use(facts, node, parents, methods) or [first])
        return found

    def _every_returned_use(
        self,
        facts: FileFacts,
        node: ast.AST,
        parents: dict[int, ast.AST],
        methods: frozenset[str],
    ) -> list[Unknown]:
        """The uses ``_returned_use`` checks, each that is not a call of ``methods`` (empty
        when the value is not bound alone to a name bound once)."""
        assign = parents.get(id(parents.get(id(node))))
        if not (isinstance(assign, ast.Assign) and isinstance(assign.targets[0], ast.Name)):
            return []
        name = assign.targets[0].id
        scope = _enclosing_scope(assign, parents, facts.tree)
        found: list[Unknown] = []
        ordered = sorted(facts.nodes().names_under(scope, name), key=_position)
        for use in ordered:
            if use is assign.targets[0] or _local_between(use, scope, parents, name):
                continue
            problem = _use_problem(use, parents, methods)
            if problem is None:
                continue
            found.append(Unknown(Place(facts.path, use.lineno), problem))
            found.extend(self._handed_uses(facts, use, parents, methods))
        return found

    def _handed_uses(
        self, facts: FileFacts, node: ast.Name, parents: dict[int, ast.AST], methods: frozenset[str]
    ) -> list[Unknown]:
        """For ``g(..., node, ...)`` with ``g`` a module-level function of the repository: its
        uses of the parameter ``node`` binds other than calls of ``methods``."""
        call = parents.get(id(node))
        if isinstance(call, ast.keyword):
            call = parents.get(id(call))
        if not isinstance(call, ast.Call) or call.func is node:
            return []
        callee = _qualified(call.func, facts)
        split = self.split(callee) if callee else None
        path = self.file_of(split[0]) if split else None
        definition = self.facts(path).functions.get(split[1]) if split and path else None
        if split is None or path is None or definition is None:
            return []
        bound = [p for p in _params(definition) if _argument(call, definition, p) is node]
        if len(bound) != 1:
            return []
        inner = _parents_around(definition, self.facts(path))
        return [
            Unknown(Place(path, use.lineno), f"(in `{split[1]}`) {problem}")
            for use in sorted(ast.walk(definition), key=_position)
            if isinstance(use, ast.Name) and use.id == bound[0]
            for problem in [_use_problem(use, inner, methods)]
            if problem is not None
        ]

    def _returned_use(
        self,
        facts: FileFacts,
        node: ast.AST,
        parents: dict[int, ast.AST],
        methods: frozenset[str],
        accepted: Callable[[ast.Name, dict[int, ast.AST]], bool] | None = None,
    ) -> Unknown | None:
        call = parents.get(id(node))
        assign = parents.get(id(call))
        here = Place(facts.path, getattr(node, "lineno", 0))
        if not (
            isinstance(call, ast.Call)
            and call.func is node
            and isinstance(assign, ast.Assign)
            and len(assign.targets) == 1
            and isinstance(assign.targets[0], ast.Name)
        ):
            return Unknown(here, "uses its value other than by assigning it to a name")
        name = assign.targets[0].id
        scope = _enclosing_scope(assign, parents, facts.tree)
        if len(_bindings(scope, name)) != 1:
            return Unknown(here, f"binds `{name}` more than once")
        for use in facts.nodes().names_under(scope, name):  # nested functions too: they may read it
            if use is not assign.targets[0] and not _local_between(use, scope, parents, name):
                if accepted is not None and accepted(use, parents):
                    continue
                problem = _use_problem(use, parents, methods)
                if problem is not None:
                    return Unknown(Place(facts.path, use.lineno), problem)
        return None

    def may_change(self, path: str, source_words: Iterable[bytes]) -> bool:
        """Whether ``path`` may change because of facts from other files, coarsely: a file
        whose bytes name a source package (``torch``) imports its module and it defines a
        function, or it imports such a file. What ``dependencies`` (the cache's digest of other
        files) is gated on, with the precise question of the pre-filter stages
        (``cross_file.may_change_through_other_files``), which can say yes where this says no
        (a value passed on through functions of several files): ``dependencies(linked=...)``."""
        if not self.complete:
            return False
        words = tuple(source_words)
        data = self.source(path)
        defines = b"def " in data and self.imports_of(path).defines
        if defines and self.importers(path, words):
            return True  # a function (or a class) of it may receive a translated optimizer
        return self._imports_a_builder_file(path, words)

    def _imports_a_builder_file(self, path: str, words: tuple[bytes, ...]) -> bool:
        """Whether ``path`` imports a repository file holding one of ``words`` (a function
        there may return a translated optimizer): by the word index first, then parsed."""
        key = tuple(sorted(words))
        if key not in self._holding:
            holding = frozenset(f for w in key for f in self.with_word(w.decode()))
            names = {self.module_of(f) for f in holding}
            last = frozenset(n.rpartition(".")[2].encode() or n.encode() for n in names)
            self._holding[key] = (holding, last)
        holding, last = self._holding[key]
        if path not in self._file_words:  # a file outside the listing
            self._file_words[path] = identifiers(self.source(path))
        if not last & self._file_words[path]:
            return False
        return any(other in holding for other in self.imported_files(path))

    def importers(self, path: str, source_words: Iterable[bytes] = ()) -> list[str]:
        """The files that import ``path``'s module (only those holding one of
        ``source_words``, when given)."""
        key = (path, tuple(sorted(source_words)))
        if key not in self._importers:
            module = self.module_of(path)
            candidates = set(self.with_word(module.rpartition(".")[2]))
            if key[1]:  # the files holding a word, by the word index (names do not change)
                holding = {f for w in key[1] for f in self.with_word(w.decode())}
                candidates &= holding
            self._importers[key] = [
                other
                for other in sorted(candidates)
                if other != path
                and any(_imports_module(q, module) for q in self.imports_of(other).modules())
            ]
        return self._importers[key]

    def importing_closure(self, path: str, limit: int = MAX_IMPORTING) -> list[str] | None:
        """The files importing ``path``, directly or through files importing it, to any
        depth (breadth first, each once; ``path`` left out): the code that may run
        ``path``'s code with values of its own. None when the walk meets more than ``limit``
        of them, or a file whose module's name more than ``MAX_IMPORT_CANDIDATES`` files of
        the repository hold (``importers`` would read each): not known."""
        found = {path}
        frontier = [path]
        ordered: list[str] = []
        while frontier:
            nearer: list[str] = []
            for other in frontier:
                word = self.module_of(other).rpartition(".")[2]
                if len(self.with_word(word)) > MAX_IMPORT_CANDIDATES:
                    return None
                nearer.extend(self.importers(other))
            frontier = [f for f in dict.fromkeys(nearer) if f not in found]
            found.update(frontier)
            ordered.extend(frontier)
            if len(ordered) > limit:
                return None
        return ordered

    def dependencies(
        self, path: str, source_words: Iterable[bytes], linked: bool = False
    ) -> list[str]:
        """The other files ``path``'s facts come from: the files importing it (the call
        sites of its functions), the repository files it imports (the functions it hands
        values to), the files importing those (their other call sites) and the files those
        import, to any depth (a freeze ``path`` may run), and the files importing it to any
        depth with the files each imports (a freeze run before ``path``'s code:
        ``caller_freeze``; the same reach as ``CrossFile.complex_elsewhere``, complex
        parameters this file's optimizers may train). None for a file that holds none of
        ``source_words`` and that
        ``may_change`` rules out, unless the caller knows it is ``linked`` to other files (the
        precise cross-file question said yes): other files cannot change what becomes of it."""
        words = tuple(source_words)
        data = self.source(path)
        if not linked and not any(w in data for w in words) and not self.may_change(path, words):
            return []
        imported = self.imported_files(path)
        near = set(imported) | set(self.importers(path))
        for other in imported:
            near.update(self.importers(other))
        near.update(self._closure_set(path))  # a freeze they may run (imported_freeze)
        near.update(self._outer_importers(path, near))
        callers = self.importing_closure(path)  # a freeze they may run first (caller_freeze)
        for caller in callers or ():
            near.add(caller)
            near.update(self._closure_set(caller))
        near.discard(path)
        return sorted(near)

    def _outer_importers(self, path: str, known: set[str]) -> set[str]:
        """The importers of ``path``'s importers, up to ``MAX_HOPS`` files away: a fact
        followed through functions that pass values on (``main`` -> ``fit`` -> ``engine``)
        comes from the outermost caller's file."""
        found: set[str] = set()
        frontier = set(self.importers(path))
        for _ in range(MAX_HOPS):
            frontier = {f for other in frontier for f in self.importers(other)} - known - found
            found |= frontier
        return found

    def imported_files(self, path: str) -> list[str]:
        """The repository files ``path`` imports (made once per content; callers read it)."""
        data = self.source(path)
        known = self._imported.get(path)
        if known is not None and known[0] is data:
            return known[1]
        found: list[str] = []
        for qualified in self.imports_of(path).modules():
            # `from pkg import mod` names the file of `pkg.mod`; `from pkg.mod import f`, the
            # file of `pkg.mod` (not the package's `__init__.py`).
            other = self.file_of(qualified) or self.file_of(qualified.rpartition(".")[0])
            if other is not None and other not in found:
                found.append(other)
        self._imported[path] = (data, found)
        return found

    def _closure_set(self, path: str) -> frozenset[str] | list[str]:
        """``imported_closure(path)`` as a set; while a selection runs (no file changes), from
        the files each file reaches, found once per strongly connected component of the
        import graph (``_reach_from``) instead of a walk per file and per caller."""
        if not _Selection.active:
            return self.imported_closure(path)
        if self._reach_selection is not _Selection.answers:  # a new selection: start again
            self._reach = {}
            self._reach_selection = _Selection.answers
        starts = [path, *self.packages_of(path)]
        found: set[str] = set(starts)
        for start in starts:
            if start not in self._reach:
                self._reach_from(start)
            found |= self._reach[start]
        found.discard(path)
        return frozenset(found)

    def _successors(self, path: str) -> list[str]:
        """The files one breadth of ``walk_imported_closure`` adds for ``path``: the files
        it imports and the package ``__init__.py`` files holding each."""
        return [g for f in self.imported_files(path) for g in (f, *self.packages_of(f))]

    def _reach_from(self, start: str) -> None:
        """Fill ``_reach`` for ``start`` and every file it reaches through ``_successors``
        (Tarjan's strongly connected components, iteratively: a component's files reach the
        same files, its successors' components are done before it)."""
        order: dict[str, int] = {start: 0}
        low: dict[str, int] = {start: 0}
        stack, on_stack = [start], {start}
        work = [(start, iter(self._successors(start)))]
        while work:
            node, successors = work[-1]
            for following in successors:
                if following in self._reach:
                    continue  # a component finished before
                if following not in order:
                    order[following] = low[following] = len(order)
                    stack.append(following)
                    on_stack.add(following)
                    work.append((following, iter(self._successors(following))))
                    break
                if following in on_stack:
                    low[node] = min(low[node], order[following])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == order[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    members = set(component)
                    reached: set[str] = set()  # each member is some member's successor
                    for member in component:
                        for following in self._successors(member):
                            reached.add(following)
                            if following not in members:
                                reached |= self._reach[following]
                    frozen = frozenset(reached)
                    for member in component:
                        self._reach[member] = frozen

    def imported_closure(self, path: str) -> list[str]:
        """The repository files ``path`` imports, directly or through the files it imports,
        and the ``__init__.py`` of every package holding one of those (or ``path``): importing
        ``pkg.mod`` runs ``pkg/__init__.py`` first (breadth first, each once; ``path`` itself
        left out)."""
        return list(self.walk_imported_closure(path))

    def walk_imported_closure(self, path: str) -> Iterator[str]:
        """``imported_closure(path)`` in its order, one breadth of imports at a time: a file
        is read for its imports only when the walk goes past the breadth before it (a
        question answered by the first files stops before the rest are parsed)."""
        packages = [f for f in dict.fromkeys(self.packages_of(path)) if f != path]
        yield from packages
        found = {path, *packages}
        frontier = [path, *packages]
        while frontier:
            nearer = [f for other in frontier for f in self._successors(other)]
            frontier = [f for f in dict.fromkeys(nearer) if f not in found]
            found.update(frontier)
            yield from frontier

    def packages_of(self, path: str) -> list[str]:
        """The ``__init__.py`` files of the repository's packages holding ``path`` (outermost
        last; a package's own ``__init__.py`` left out)."""
        known = self._packages.get(path)
        if known is None:
            parts = self.module_of(path).split(".")  # `pkg.sub` for pkg/sub/__init__.py
            found = (self.file_of(".".join(parts[:end])) for end in range(len(parts) - 1, 0, -1))
            known = self._packages[path] = [f for f in found if f is not None and f != path]
        return known

    def digest_of_dependencies(
        self, path: str, source_words: Iterable[bytes], linked: bool = False
    ) -> str:
        """A digest of the content of every file ``dependencies`` names ("" for none)."""
        others = self.dependencies(path, source_words, linked) if self.complete else []
        if not others:
            return ""
        digest = hashlib.sha256()
        for other in others:
            digest.update(os.path.relpath(other, self.root).encode() + b"\0")
            digest.update(self._sha(other))
        return digest.hexdigest()

    def _sha(self, path: str) -> bytes:
        data = self.source(path)
        known = self._shas.get(path)
        if known is None or known[0] is not data:
            known = (data, hashlib.sha256(data).digest())
            self._shas[path] = known
        return known[1]

    # ------------------------------------------------------------------ call sites of one file

    def _sites_in(
        self,
        facts: FileFacts,
        qualified: str,
        module: str,
        definition: ast.FunctionDef,
        param: str,
        follow: _Follow,
    ) -> list[Constructed] | Unknown:
        calls = _calls_in(facts, qualified, module)
        if isinstance(calls, Unknown):
            return calls
        parents = facts.nodes().parents
        sites: list[Constructed] = []
        for call in calls:
            site = self._passed(facts, call, definition, param, parents, follow)
            if isinstance(site, Unknown):
                return site
            sites.extend(site)
        return sites

    def _callable_of(self, module: str, function: str) -> ast.FunctionDef | Unknown:
        """What a call of the module-level ``module.function`` binds its arguments to
        (``FileFacts.callable``); an ``Unknown`` when the module is no file of an indexed
        repository or does not define it once."""
        path = self.file_of(module)
        if path is None or not self.complete:
            return Unknown(Place(path or module, 0), "is not a file of an indexed repository")
        facts = self.facts(path)
        definition = facts.callable(function)
        if definition is None:
            if facts.error is not None:
                return facts.error
            return Unknown(Place(path, 0), f"does not define `{function}` once at module level")
        return definition

    def arguments_of(
        self, module: str, function: str, param: str
    ) -> list[tuple[Place, ast.expr]] | Unknown:
        """What every call in the repository of the module-level ``module.function`` writes
        for its ``param`` (the expression, as written at the call, and its place); an
        ``Unknown`` at the first call that cannot be read (a star argument, a value left to
        its default, a use that is not a call, a file that fails to parse)."""
        definition = self._callable_of(module, function)
        if isinstance(definition, Unknown):
            return definition
        qualified = f"{module}.{function}"
        found: list[tuple[Place, ast.expr]] = []
        for other in self.with_word(function):
            facts = self.facts(other)
            calls = _calls_in(facts, qualified, module)
            if isinstance(calls, Unknown):
                return calls
            for call in calls:
                value = _argument(call, definition, param)
                if value is None:
                    here = Place(facts.path, call.lineno)
                    return Unknown(here, f"passes no value for `{param}` that can be read")
                found.append((Place(facts.path, call.lineno), value))
        return found

    def _passed(
        self,
        facts: FileFacts,
        call: ast.Call,
        definition: ast.FunctionDef,
        param: str,
        parents: dict[int, ast.AST],
        follow: _Follow,
    ) -> list[Constructed] | Unknown:
        here = Place(facts.path, call.lineno)
        value = _argument(call, definition, param)
        if value is None:
            return Unknown(here, f"passes no value for `{param}` that can be followed")
        if not isinstance(value, ast.Name):
            return Unknown(here, f"passes `{_text(value)}` for `{param}`")
        scope = _enclosing_scope(call, parents, facts.tree)
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)) and value.id in _params(
            scope
        ):
            outer = self._outer_sites(facts, scope, value.id, definition, follow)
            if outer is not None:
                return outer
            why = "recursion: " if scope is definition else ""
            return Unknown(here, f"{why}passes its own parameter `{value.id}` on")
        bound = _bindings(scope, value.id)
        if not bound and scope is not facts.tree and facts.tree is not None:
            bound = _bindings(facts.tree, value.id)  # a module-level name read in a function
        if len(bound) != 1 or not isinstance(bound[0], ast.Call):
            return Unknown(here, f"passes `{value.id}`, which is not bound once to a call")
        constructor = bound[0]
        inner, methods = _under_methods(constructor)
        return [
            Constructed(
                here,
                _qualified(constructor.func, facts),
                Place(facts.path, constructor.lineno),
                methods,
                _qualified(inner.func, facts) if methods else None,
            )
        ]

    def _outer_sites(
        self,
        facts: FileFacts,
        scope: ast.FunctionDef | ast.AsyncFunctionDef,
        name: str,
        definition: ast.FunctionDef,
        follow: _Follow,
    ) -> list[Constructed] | Unknown | None:
        """The call sites of the module-level function ``scope`` for its parameter ``name``,
        which it passes on (None when that is not followed: no ``methods``, a method, direct
        recursion, too many functions)."""
        qualified = f"{facts.module}.{getattr(scope, 'name', '')}"
        if (
            follow.methods is None
            or scope is definition
            or facts.functions.get(scope.name) is not scope
        ):
            return None
        place = Place(facts.path, scope.lineno)
        if qualified in follow.trail:
            return Unknown(place, f"recursion: `{scope.name}` is reached again through `{name}`")
        if len(follow.trail) > MAX_HOPS:
            return Unknown(place, f"passes `{name}` on through more than {MAX_HOPS} functions")
        misuse = self.parameter_misuse(facts.module, scope.name, name, follow.methods)
        if misuse is not None:
            return misuse
        return self.call_sites(facts.module, scope.name, name, follow.methods, follow.trail)


# ---------------------------------------------------------------------- reading one file


@dataclass(frozen=True)
class _Follow:
    """How far call sites that pass a parameter on are followed."""

    methods: frozenset[str] | None  # None: not followed
    trail: tuple[str, ...]  # the functions followed so far


def _python_files(root: str) -> Iterator[str]:
    count = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        for name in sorted(files):
            path = os.path.join(folder, name)
            if name.endswith(".py") and not os.path.islink(path):
                count += 1
                yield path
                if count > MAX_FILES:
                    return


def _read_facts(path: str, module: str, data: bytes, tree: ast.Module | None = None) -> FileFacts:
    facts = FileFacts(path, module)
    try:
        facts.tree = tree if tree is not None else ast_nodes.parse(data, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        line = getattr(exc, "lineno", None) or 0
        facts.error = Unknown(Place(path, line), "fails to parse")
        return facts
    _read_import_statements(facts, ast_nodes.statements(facts.tree))
    _read_named_imports(facts, data)
    facts.error = _script_folder_import(facts, ast_nodes.statements(facts.tree))
    if facts.error is not None:
        facts.tree = None  # no fact of the file is known (as for a file that fails to parse)
        return facts
    stored: set[str] = set()
    plain: set[str] = set()  # bound by an assignment or a parameter
    for node in ast_nodes.walk(facts.tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            stored.add(node.id)
            plain.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stored.add(node.name)
            facts.definitions.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.ClassDef):
            stored.add(node.name)
        elif isinstance(node, ast.arg):
            stored.add(node.arg)
            plain.add(node.arg)
        elif isinstance(node, ast.Call) and not facts.namespace_written and _writes_names(node):
            facts.namespace_written = node.lineno
    _read_definitions(facts)
    if facts.namespace_written:  # no name of the module is surely what its statements bind
        facts.functions, facts.classes = {}, {}
    facts.stored = frozenset(stored)
    for name in set(facts.imports) & stored:
        facts.shadowed.setdefault(name, facts.imports[name])
    for name in (set(facts.functions) | set(facts.classes)) & plain:
        facts.shadowed.setdefault(name, f"{module}.{name}")
    return facts


def _script_folder_import(facts: FileFacts, statements: Iterable[ast.AST]) -> Unknown | None:
    """For a file in a folder without ``__init__.py`` below the repository root (a namespace
    package): its first absolute import of a module its own folder holds (``from util import
    f`` in ``helper/loops.py`` next to ``helper/util.py``). Run as a script the file finds its
    folder's ``util`` (the script's folder is first on ``sys.path``); imported as
    ``helper.loops`` by a script of the root it finds the root's: two files for one import."""
    folder = os.path.dirname(facts.path)
    if "." not in facts.module or facts.path.endswith("__init__.py"):
        return None
    if os.path.isfile(os.path.join(folder, "__init__.py")):
        return None
    for node in statements:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.partition(".")[0]
            if os.path.isfile(os.path.join(folder, f"{top}.py")) or os.path.isdir(
                os.path.join(folder, top)
            ):
                return Unknown(
                    Place(facts.path, node.lineno),
                    f"imports `{name}`, which is its own folder's `{top}` when the file runs "
                    "as a script, and another module when a script of the repository root "
                    "imports it (a folder without __init__.py)",
                )
    return None


def _writes_names(call: ast.Call) -> bool:
    """``globals()``, ``vars()`` (no argument) or ``exec(source)`` (no namespace given): the
    module's names may be written as data (``globals()["train"] = other``)."""
    func = call.func
    if not isinstance(func, ast.Name):
        return False
    if func.id == "globals":
        return True
    if func.id == "vars":
        return not call.args and not call.keywords
    return func.id == "exec" and len(call.args) < 2 and not call.keywords


def _read_imports(path: str, module: str, data: bytes) -> FileImports:
    """``FileImports`` of the file: what ``_read_facts`` finds of its imports and module-level
    definitions, from its statements alone (an import is a statement: the expressions, most of
    the tree, are not walked)."""
    try:
        tree = ast_nodes.parse(data, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return FileImports({}, False)
    return _tree_imports(path, module, tree, data)


def _tree_imports(path: str, module: str, tree: ast.Module, data: bytes) -> FileImports:
    """``_read_imports`` of the file whose ``ast`` is ``tree`` (of ``data``)."""
    facts = FileFacts(path, module)
    facts.tree = tree
    _read_import_statements(facts, ast_nodes.statements(facts.tree))
    _read_named_imports(facts, data)
    _read_definitions(facts)
    return FileImports(facts.imports, facts.defines, tuple(facts.submodules))


def _read_import_statements(facts: FileFacts, statements: Iterable[ast.AST]) -> None:
    """Record the imports among ``statements`` (in ``ast.walk`` order: the first import of a
    name is the one kept, the others shadow it) in ``facts``."""
    assert facts.tree is not None
    module, path = facts.module, facts.path
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in statements:
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.partition(".")[0]
                _import(facts, local, alias.name if alias.asname else local)
                parts = alias.name.split(".")  # `import pkg.patch` runs pkg/patch.py too
                for end in range(2, len(parts) + 1):
                    facts.submodules.append(".".join(parts[:end]))
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, package)
            for alias in node.names:
                if alias.name == "*":
                    facts.stars.append((source, node.lineno))
                    facts.submodules.append(source)  # run, and what it binds read
                else:
                    _import(facts, alias.asname or alias.name, f"{source}.{alias.name}")


_NAMED_IMPORT_FUNCTIONS = ("import_module", "__import__")


def _read_named_imports(facts: FileFacts, data: bytes) -> None:
    """Record the modules the file imports by a literal name
    (``importlib.import_module("multitask")``, ``__import__("models.heads")``) as run by it
    (``facts.submodules``): the import graph then links them as it links an import statement
    (probe s42 c40), a relative one against its ``package`` (probe s43 S13). Only files
    spelling such a call are walked. A computed name (``import_module(cfg.model)``) links
    nothing: not seen."""
    if not any(word.encode() in data for word in _NAMED_IMPORT_FUNCTIONS):
        return
    for node in ast_nodes.walk(facts.tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0]
        if (
            name in _NAMED_IMPORT_FUNCTIONS
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and first.value.strip(".")
        ):
            facts.submodules.append(_named_module(facts, first.value, node))


def _named_module(facts: FileFacts, name: str, call: ast.Call) -> str:
    """The module ``import_module(name, package=...)`` imports: a relative ``name``
    (``".losses"``) against the literal ``package`` given, else against the file's own
    package (``package=__package__``, ``__name__`` of a package's ``__init__``)."""
    level = len(name) - len(name.lstrip("."))
    if not level:
        return name
    given = [k.value for k in call.keywords if k.arg == "package"] + call.args[1:2]
    literal = given[0] if given and isinstance(given[0], ast.Constant) else None
    if literal is not None and isinstance(literal.value, str):
        package = literal.value
    else:
        own = facts.module
        package = own if facts.path.endswith("__init__.py") else own.rpartition(".")[0]
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join([*base, name.lstrip(".")])


def _read_definitions(facts: FileFacts) -> None:
    """``facts.functions`` and ``facts.classes``: the module-level functions and classes
    defined once (by one statement of the module's body) and bound by nothing else of the
    module: not defined again or imported under ``if``/``try``/``with`` (``try: from .fast
    import train``), not declared ``global`` by a function, no star import after them (any of
    these may rebind the name, and a call of it from another file then runs something else).
    ``facts.defines``: whether the body defines a function or class at all."""
    assert facts.tree is not None
    defined: dict[str, list[ast.AST]] = {}
    for statement in facts.tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.setdefault(statement.name, []).append(statement)
    facts.defines = bool(defined)
    rebound = _bound_otherwise(facts.tree) if defined else set()
    stars = [line for _, line in facts.stars]

    def once(nodes: list[ast.AST], kind: type) -> bool:
        node = nodes[0]
        return (
            len(nodes) == 1
            and isinstance(node, kind)
            and node.name not in rebound  # type: ignore[attr-defined]
            and not any(line > node.lineno for line in stars)  # type: ignore[attr-defined]
        )

    facts.functions = {
        name: nodes[0]  # type: ignore[misc]
        for name, nodes in defined.items()
        if once(nodes, ast.FunctionDef)
    }
    facts.classes = {
        name: nodes[0]  # type: ignore[misc]
        for name, nodes in defined.items()
        if once(nodes, ast.ClassDef)
    }


def _bound_otherwise(tree: ast.Module) -> set[str]:
    """The names the module binds by a statement other than a ``def``/``class`` of its body:
    a ``def``/``class`` or an import nested in a compound statement at module level, an import
    in the body, a ``global`` declaration in any function (assignments are ``plain`` names,
    counted by ``_read_facts``). Statements only: no expression is walked."""
    found: set[str] = set()
    for node in ast_nodes.statements(tree):
        if isinstance(node, ast.Global):
            found.update(node.names)
    stack: list[ast.AST] = [s for s in tree.body]
    top = {id(s) for s in tree.body}
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if id(node) not in top:
                found.add(node.name)
            continue  # their bodies are other scopes
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update((a.asname or a.name.partition(".")[0]) for a in node.names)
            continue
        for name in ast_nodes._statement_fields(type(node)):
            value = getattr(node, name, None)
            if isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, ast_nodes._STATEMENT_KINDS))
    return found


def _import(facts: FileFacts, local: str, qualified: str) -> None:
    """Record an import; a name imported from two places is shadowed (which one is bound is
    decided at run time)."""
    known = facts.imports.setdefault(local, qualified)
    if known != qualified:
        facts.shadowed[local] = known
        facts.shadowed[local + "\0"] = qualified  # the other place


def _all_names(tree: ast.Module) -> frozenset[str] | None:
    """A module's ``__all__`` when its one module-level assignment is a literal list or tuple
    of strings (none other changes it); else None."""
    found: list[ast.expr] = []
    for node in ast_nodes.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            found.append(node.value)  # type: ignore[attr-defined]
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "__all__"
        ):
            return None  # `__all__.append(...)`, `__all__.extend(...)`: changed elsewhere
    if len(found) != 1 or not isinstance(found[0], (ast.List, ast.Tuple)):
        return None
    elements = found[0].elts
    if not all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in elements):
        return None
    return frozenset(e.value for e in elements)  # type: ignore[attr-defined]


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports_module(qualified: str, module: str) -> bool:
    return (
        qualified == module
        or qualified.startswith(module + ".")
        or module.startswith(qualified + ".")
    )


def imported_name(node: ast.AST, facts: FileFacts) -> str | None:
    """``_qualified``: the qualified name an expression names through the file's imports."""
    return _qualified(node, facts)


def _qualified(node: ast.AST, facts: FileFacts) -> str | None:
    """The qualified name an expression names through the file's imports (or its own
    module-level functions); None when unknown or shadowed."""
    if isinstance(node, ast.Attribute):
        base = _qualified(node.value, facts)
        return f"{base}.{node.attr}" if base else None
    if not isinstance(node, ast.Name):
        return None
    if node.id in facts.imports:
        return None if node.id in facts.stored else facts.imports[node.id]
    if node.id in facts.functions and node.id not in facts.shadowed:
        return f"{facts.module}.{node.id}"
    if node.id in facts.classes and node.id not in facts.shadowed:
        return f"{facts.module}.{node.id}"  # a class: called, it runs its `__init__`
    return None


def _under_methods(call: ast.Call) -> tuple[ast.Call, tuple[str, ...]]:
    """``X(...).to(d).cuda()``: the call ``X(...)`` and the methods called on its result."""
    methods: list[str] = []
    while isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Call):
        methods.insert(0, call.func.attr)
        call = call.func.value
    return call, tuple(methods)


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _parents_around(definition: ast.AST, facts: FileFacts) -> dict[int, ast.AST]:
    """The parents of the nodes of ``definition``: the file's, when it is a node of the file's
    tree (a copy, ``stored_ast.init_without_self``, has parents of its own)."""
    parents = facts.nodes().parents if facts.tree is not None else {}
    return parents if id(definition) in parents else _parents(definition)


def _tree_nodes(facts: FileFacts) -> TreeNodes:
    """``TreeNodes`` of the file's tree, from one walk."""
    assert facts.tree is not None
    parents: dict[int, ast.AST] = {}
    order = ast_nodes.walk_with_parents(facts.tree, parents)
    qualified = _qualified_names(order, facts)
    denoting: dict[str, list[tuple[int, ast.expr]]] = {}
    names: dict[str, list[tuple[int, ast.Name]]] = {}
    reaching: dict[str, list[tuple[int, ast.Call]]] = {}
    declared: set[str] = set()
    for position, node in enumerate(order):
        name = qualified.get(id(node))
        if name is not None:
            denoting.setdefault(name, []).append((position, node))  # type: ignore[arg-type]
        if isinstance(node, ast.Name):
            names.setdefault(node.id, []).append((position, node))
        elif isinstance(node, ast.Call) and (reached := _reached_attribute(node)) is not None:
            reaching.setdefault(reached, []).append((position, node))
        elif isinstance(node, ast.Global):
            declared.update(node.names)
    return TreeNodes(parents, denoting, names, reaching, frozenset(declared))


def _qualified_names(order: list[ast.AST], facts: FileFacts) -> dict[int, str]:
    """``_qualified`` of every name and attribute of ``order`` (in ``ast.walk`` order: an
    attribute's value after it) that has one, by the node's id."""
    found: dict[int, str] = {}
    for node in reversed(order):
        if isinstance(node, ast.Attribute):
            base = found.get(id(node.value))
            if base:
                found[id(node)] = f"{base}.{node.attr}"
        elif isinstance(node, ast.Name):
            name = _qualified(node, facts)
            if name:
                found[id(node)] = name
    return found


def _reached_attribute(call: ast.Call) -> str | None:
    """``name`` of ``getattr(x, "name")``, ``hasattr(x, "name", ...)``, ``setattr(x, "name",
    v)`` or ``delattr(x, "name")`` (``_is_getattr_of``)."""
    if (
        isinstance(call.func, ast.Name)
        and call.func.id in _BY_NAME
        and len(call.args) >= 2
        and isinstance(call.args[1], ast.Constant)
        and isinstance(call.args[1].value, str)
    ):
        return call.args[1].value
    return None


def _same_objects(old: tuple[bytes, ...], new: tuple[bytes, ...]) -> bool:
    """Whether two tuples hold the same objects (the same reads of the same files)."""
    return len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))


def _enclosing_scope(node: ast.AST, parents: dict[int, ast.AST], tree: ast.AST | None) -> ast.AST:
    current = parents.get(id(node))
    while current is not None:
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return current
        current = parents.get(id(current))
    assert tree is not None
    return tree


def _params(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    args = function.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
    return {a.arg for a in every if a is not None}


def _bindings(scope: ast.AST, name: str) -> list[ast.AST]:
    """Every binding of ``name`` directly in ``scope`` (nested functions and classes left out):
    an assigned value, or the binding statement itself when it binds no single value."""
    found: list[ast.AST] = []
    stack = [(child, scope) for child in ast.iter_child_nodes(scope)]
    while stack:
        node, parent = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            if getattr(node, "name", None) == name:
                found.append(node)
            continue
        if isinstance(node, ast.Assign) and any(_binds(t, name) for t in node.targets):
            simple = len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
            found.append(node.value if simple else node)
        elif isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load):
            if not _assigned_by(parent, node):
                found.append(node)
        elif _declares(node, name):
            found.append(node)
        stack.extend((child, node) for child in ast.iter_child_nodes(node))
    return found


def _returned_call(node: ast.Return, definition: ast.FunctionDef) -> ast.Call | None:
    """The call ``return <call>`` returns, or ``return opt`` with ``opt`` bound once in the
    function, to a call (``opt = AdamW(...); return opt``)."""
    value = node.value
    if isinstance(value, ast.Name) and value.id not in _params(definition):
        bound = _bindings(definition, value.id)
        value = bound[0] if len(bound) == 1 else None
    return value if isinstance(value, ast.Call) else None


def _local_between(use: ast.AST, scope: ast.AST, parents: dict[int, ast.AST], name: str) -> bool:
    """Whether ``name`` at ``use`` is a local of a function nested in ``scope`` (a parameter
    or bound there, with no ``global``/``nonlocal`` of it): another variable than ``scope``'s
    (a method's own ``optimizer`` beside the caller's ``optimizer = model.build(...)``)."""
    function = parents.get(id(use))
    while function is not None and function is not scope:
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            bound = _bindings(function, name)
            declared = any(isinstance(b, (ast.Global, ast.Nonlocal)) for b in bound)
            if not declared and (bound or name in _params(function)):
                return True
        function = parents.get(id(function))
    return False


def _declares(node: ast.AST, name: str) -> bool:
    """``global name``, ``nonlocal name``, or an import binding ``name``."""
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return name in node.names
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return any((a.asname or a.name.partition(".")[0]) == name for a in node.names)
    return False


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``scope``, nested functions and classes left out."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _binds(target: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target))


def _assigned_by(parent: ast.AST, name: ast.Name) -> bool:
    """Whether ``parent`` (the node holding ``name``) is an assignment to ``name`` itself."""
    return isinstance(parent, ast.Assign) and any(t is name for t in parent.targets)


def _calls_in(facts: FileFacts, qualified: str, module: str) -> list[ast.Call] | Unknown:
    """The calls of ``qualified`` (a module-level function of ``module``) in the file of
    ``facts``; an ``Unknown`` at the first place that reaches it otherwise (a star import of
    its module, a shadowed name, ``getattr``, a use that is not a call) or when the file fails
    to parse."""
    if facts.tree is None:
        assert facts.error is not None
        return facts.error
    for star, line in facts.stars:
        if star == module:
            return Unknown(Place(facts.path, line), f"imports `*` from `{module}`")
    parents = facts.nodes().parents
    calls: list[ast.Call] = []
    last = qualified.rpartition(".")[2]
    candidates = facts.nodes().candidates(facts, qualified, last)
    if candidates and facts.namespace_written:
        line = facts.namespace_written
        return Unknown(Place(facts.path, line), "writes its module's names as data")
    for node in candidates:
        shadow = _shadowed_reach(node, facts, qualified)
        if shadow is not None:
            return Unknown(Place(facts.path, getattr(node, "lineno", 0)), shadow)
        if _is_getattr_of(node, last, _BY_NAME):
            how = node.func.id  # type: ignore[attr-defined]
            return Unknown(Place(facts.path, node.lineno), f"reaches it through `{how}`")
        if not isinstance(node, (ast.Name, ast.Attribute)):
            continue
        if _qualified(node, facts) != qualified:
            continue
        call = parents.get(id(node))
        if not isinstance(call, ast.Call) or call.func is not node:
            return Unknown(Place(facts.path, node.lineno), "uses it without calling it")
        calls.append(call)
    return calls


def _argument(call: ast.Call, definition: ast.FunctionDef, param: str) -> ast.expr | None:
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
        return None
    for keyword in call.keywords:
        if keyword.arg == param:
            return keyword.value
    positional = [a.arg for a in [*definition.args.posonlyargs, *definition.args.args]]
    if param in positional and positional.index(param) < len(call.args):
        return call.args[positional.index(param)]
    return None


def _passed_on_together(
    call: ast.Call,
    definition: ast.FunctionDef,
    names: tuple[str, str],
    parents: dict[int, ast.AST],
    facts: FileFacts,
) -> tuple[str, str, str] | None:
    """(function, its optimizer parameter, its model parameter) when ``call`` sits in a
    module-level function that passes on two of its own parameters, neither rebound, for
    ``names`` (the optimizer and the model); else None."""
    passed = [_argument(call, definition, name) for name in names]
    scope = _enclosing_scope(call, parents, facts.tree)
    if not isinstance(scope, ast.FunctionDef) or facts.functions.get(scope.name) is not scope:
        return None
    if not all(isinstance(p, ast.Name) and p.id in _params(scope) for p in passed):
        return None
    ids = [p.id for p in passed]  # type: ignore[union-attr]
    if ids[0] == ids[1] or any(_bindings(scope, name) for name in ids):
        return None  # one name for both, or rebound: `_model_passed_with` says why
    return scope.name, ids[0], ids[1]


def _model_passed_with(
    call: ast.Call,
    definition: ast.FunctionDef,
    names: tuple[str, str],
    parents: dict[int, ast.AST],
    facts: FileFacts,
    translated: Callable[[str], bool],
    self_methods: frozenset[str] = frozenset(),
) -> str | None:
    """Why ``call`` may pass for ``model`` another object than the optimizer it passes for
    ``optimizer`` trains (None: ``o = Opt(m.parameters(), ...)`` and ``m`` bound once in the
    caller's scope, not counting ``m = m.to(device)`` (``self_methods``); ``nnx.Optimizer(m,
    tx)`` when ``translated`` says it is the target's)."""
    optimizer, model = names
    passed_optimizer = _argument(call, definition, optimizer)
    passed_model = _argument(call, definition, model)
    if not isinstance(passed_optimizer, ast.Name) or not isinstance(passed_model, ast.Name):
        return f"passes no plain names for `{optimizer}` and `{model}`"
    scope = _enclosing_scope(call, parents, facts.tree)
    params = _params(scope) if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)) else set()
    if passed_optimizer.id in params:
        return (
            f"passes its own parameter `{passed_optimizer.id}` on with `{passed_model.id}`, "
            "not another parameter of its own passed on unchanged (the model it trains is not "
            "followed)"
        )
    built = _bindings(scope, passed_optimizer.id)
    if len(built) != 1 or not isinstance(built[0], ast.Call):
        return f"passes `{passed_optimizer.id}`, which is not bound once to a call"
    trained = _parameters_receiver(built[0])
    qualified = _qualified(built[0].func, facts)
    first = built[0].args[0] if built[0].args else None
    if qualified is not None and translated(qualified) and isinstance(first, ast.Name):
        trained = first.id  # converted already: the target's optimizer takes the model
    if trained != passed_model.id:
        shown = f"`{trained}`" if trained else "not one model's `.parameters()`"
        return (
            f"passes `{passed_model.id}` for `{model}`, but `{passed_optimizer.id}` trains {shown}"
        )
    bound = _bindings(scope, passed_model.id)
    bound = [b for b in bound if not _to_itself(b, passed_model.id, self_methods)]
    once = (not bound and passed_model.id in params) or (
        len(bound) == 1 and isinstance(bound[0], ast.Call) and passed_model.id not in params
    )
    if once and not _declared_global(facts, passed_model.id, scope):
        return None
    names = (passed_model.id, passed_optimizer.id)
    if _unrebound_since(built[0], call, names, parents, facts):
        return None  # (two branches binding the model: the one the optimizer was built over)
    return (
        f"binds `{passed_model.id}` more than once or not to a call (a wrapper, a rebinding), "
        f"or again between `{passed_optimizer.id} = ...` and this call"
    )


_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ClassDef,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


def _unrebound_since(
    value: ast.AST,
    call: ast.Call,
    names: tuple[str, str],
    parents: dict[int, ast.AST],
    facts: FileFacts,
) -> bool:
    """Whether ``call`` sees the objects ``model`` and ``opt`` (``names``) held when ``opt =
    value`` ran last, on every path (``dominating.unrebound_after`` on the ``ast`` tree): that
    assignment is a statement of a block whose later statement holds ``call`` in the same scope,
    no statement from it to that one binds ``model``, or ``opt`` after it, and no ``global`` or
    ``nonlocal`` statement of the file names either (imagenet's model bound on two branches)."""
    model, optimizer = names
    assign = parents.get(id(value))
    if not (
        isinstance(assign, ast.Assign)
        and assign.value is value
        and len(assign.targets) == 1
        and isinstance(assign.targets[0], ast.Name)
        and assign.targets[0].id == optimizer
    ):
        return False
    owner = parents.get(id(assign))
    body = next(
        (
            field
            for _, field in ast.iter_fields(owner)
            if isinstance(field, list) and any(s is assign for s in field)
        ),
        None,
    )
    node: ast.AST = call
    while body is not None and not any(s is node for s in body):
        parent = parents.get(id(node))
        if parent is None or isinstance(parent, _SCOPES):
            return False
        node = parent
    if body is None:
        return False
    start = next(i for i, s in enumerate(body) if s is assign)
    end = next(i for i, s in enumerate(body) if s is node)
    if end <= start or _bindings(ast.Module(body=[assign], type_ignores=[]), model):
        return False
    for statement in body[start + 1 : end + 1]:
        alone = ast.Module(body=[statement], type_ignores=[])
        if _bindings(alone, model) or _bindings(alone, optimizer):
            return False
    assert facts.tree is not None
    return not any(
        isinstance(n, (ast.Global, ast.Nonlocal)) and set(n.names) & set(names)
        for n in ast.walk(facts.tree)
    )


def _to_itself(value: ast.AST, name: str, self_methods: frozenset[str]) -> bool:
    """``name.to(device)`` (a method of ``self_methods``, chained) bound to ``name`` itself."""
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        if value.func.attr not in self_methods:
            return False
        value = value.func.value
        if isinstance(value, ast.Name):
            return value.id == name
    return False


def _declared_global(facts: FileFacts, name: str, scope: ast.AST) -> bool:
    """Whether ``scope`` is the module and a function of it declares ``global name``."""
    return scope is facts.tree and name in facts.nodes().declared_global


def _parameters_receiver(constructor: ast.Call) -> str | None:
    """``m`` of ``Opt(m.parameters(), ...)`` (first argument or ``params=``), else None."""
    keywords = [k.value for k in constructor.keywords if k.arg == "params"]
    params = constructor.args[0] if constructor.args else (keywords[0] if keywords else None)
    if (
        isinstance(params, ast.Call)
        and not params.args
        and not params.keywords
        and isinstance(params.func, ast.Attribute)
        and params.func.attr == "parameters"
        and isinstance(params.func.value, ast.Name)
    ):
        return params.func.value.id
    return None


def _position(node: ast.AST) -> tuple[int, int]:
    """Where ``node`` starts (line, column; 0 for a node without one)."""
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)


def _use_problem(
    node: ast.Name, parents: dict[int, ast.AST], methods: frozenset[str]
) -> str | None:
    if not isinstance(node.ctx, ast.Load):
        return f"rebinds `{node.id}`"
    if receives_method_call(node, parents, methods):
        return None
    member = parents.get(id(node))
    return f"uses `{node.id}` as a torch object: `{_text(member or node)}`"


def _shadowed_reach(node: ast.AST, facts: FileFacts, qualified: str) -> str | None:
    """Why ``node`` may or may not name ``qualified``: a name bound more than once."""
    if isinstance(node, ast.Name) and _shadows(node.id, facts, qualified):
        return f"binds `{node.id}` more than once (the name may not be `{qualified}`)"
    return None


def _shadows(name: str, facts: FileFacts, qualified: str) -> bool:
    """Whether ``name``, bound more than once in the file, may name ``qualified``."""
    if name not in facts.shadowed:
        return False
    candidates = [facts.shadowed[name], facts.shadowed.get(name + "\0", "")]
    return any(c and (c == qualified or qualified.startswith(c + ".")) for c in candidates)


def _is_getattr_of(
    node: ast.AST, name: str, builtins: tuple[str, ...] = ("getattr", "hasattr")
) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in builtins
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and node.args[1].value == name
    )


def _text(node: ast.AST) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------- scheduler factories


@dataclass(frozen=True)
class FactoryBody:
    """A module-level function whose whole body returns one call built on its parameter
    ``optimizer``: ``def build_scheduler(optimizer, total): return LambdaLR(optimizer, ...)``
    (issue 12: a scheduler factory of another file)."""

    place: Place  # the returned call
    constructor: str  # its qualified name through the factory file's imports
    source: str  # its text
    optimizer: str  # the parameter the call is built on
    params: tuple[str, ...]  # the function's parameters in order (positional first)
    read: frozenset[str]  # the parameters the call's other arguments read


def factory_body(index: RepositoryIndex, module: str, function: str) -> FactoryBody | Unknown:
    """``function`` of ``module`` as a scheduler factory another file may fold: not
    decorated, no ``*args``/``**kwargs``, a body that is one ``return <call>`` (after a
    docstring), the call's first argument one of its parameters (used nowhere else), and every
    other name the call reads a parameter, a parameter of a lambda inside it, or a builtin the
    factory's file does not bind; else what differs, and where."""
    path = index.file_of(module)
    facts = index.facts(path) if path else None
    definition = facts.functions.get(function) if facts else None
    if path is None or facts is None or definition is None:
        if facts is not None and facts.error is not None:
            return facts.error
        return Unknown(Place(path or module, 0), f"does not define `{function}` once")
    here = Place(path, definition.lineno)
    args = definition.args
    if definition.decorator_list or args.vararg or args.kwarg or args.kwonlyargs:
        return Unknown(here, f"`{function}` is decorated or takes `*`/`**`/keyword-only arguments")
    body = definition.body[1:] if _docstring(definition) else definition.body
    value = _returned_value(body)
    if value is None:
        return Unknown(here, f"`{function}` does more than return one scheduler")
    constructor = _qualified(value.func, facts) if isinstance(value, ast.Call) else None
    if not isinstance(value, ast.Call) or constructor is None:
        return Unknown(Place(path, body[-1].lineno), f"`{function}` returns no call of an import")
    params = tuple(a.arg for a in [*args.posonlyargs, *args.args])
    first = value.args[0] if value.args else None
    if not isinstance(first, ast.Name) or first.id not in params:
        return Unknown(Place(path, value.lineno), "builds the scheduler on no parameter")
    read: set[str] = set()
    lambdas = {a.arg for n in ast.walk(value) if isinstance(n, ast.Lambda) for a in _all_args(n)}
    if lambdas & set(params):
        return Unknown(Place(path, value.lineno), "has a lambda parameter named as its own")
    callee = {id(n) for n in ast.walk(value.func)}
    for node in ast.walk(value):
        if not isinstance(node, ast.Name) or node is first or id(node) in callee:
            continue
        if node.id == first.id:
            return Unknown(Place(path, node.lineno), f"uses `{first.id}` beyond the scheduler")
        if node.id in params:
            read.add(node.id)
        elif node.id in lambdas or _unbound_builtin(node.id, facts):
            continue
        else:
            return Unknown(
                Place(path, node.lineno),
                f"reads `{node.id}`, a name of its own file the caller's file cannot see",
            )
    source = ast.get_source_segment(index.source(path).decode("utf-8", "replace"), value)
    if source is None:
        return Unknown(Place(path, value.lineno), "has a scheduler call whose text is not known")
    return FactoryBody(
        Place(path, value.lineno), constructor, source, first.id, params, frozenset(read)
    )


def calls_of(index: RepositoryIndex, module: str, function: str) -> int:
    """How many calls of the module-level ``module.function`` the repository's files hold
    (through their imports or, in its own file, its name)."""
    return index.calls_of(f"{module}.{function}", function)


def factory_callers(
    index: RepositoryIndex, module: str, function: str, optimizer: str
) -> list[Constructed] | Unknown:
    """Every call of the factory ``module.function`` in the repository (``call_sites`` for
    its ``optimizer`` parameter); Unknown as ``call_sites`` says, or when a file calls it under
    two names."""
    sites = index.call_sites(module, function, optimizer)
    if isinstance(sites, Unknown):
        return sites
    qualified = f"{module}.{function}"
    for path in sorted({site.call_site.file for site in sites}):
        facts = index.facts(path)
        names = [n for n, q in facts.imports.items() if q == qualified]
        if len(names) > 1:
            line = max(_import_lines(facts, qualified), default=0)
            return Unknown(Place(path, line), f"imports `{function}` under two names")
    return sites


_BUILTINS = frozenset(dir(__import__("builtins")))


def _unbound_builtin(name: str, facts: FileFacts) -> bool:
    """A builtin the file binds nowhere (by assignment, parameter, definition or import)."""
    return name in _BUILTINS and name not in facts.stored and name not in facts.imports


def _import_lines(facts: FileFacts, qualified: str) -> list[int]:
    """The lines of the file's ``from ... import`` statements that import ``qualified``."""
    module, _, name = qualified.rpartition(".")
    is_package = facts.path.endswith("__init__.py")
    package = facts.module if is_package else facts.module.rpartition(".")[0]
    if facts.tree is None:
        return []
    return [
        node.lineno
        for node in ast.walk(facts.tree)
        if isinstance(node, ast.ImportFrom)
        and _absolute(node, package) == module
        and any(alias.name == name for alias in node.names)
    ]


def _returned_value(body: list[ast.stmt]) -> ast.expr | None:
    """What ``return <value>`` returns, or ``name = <value>`` then ``return name``."""
    if len(body) == 1 and isinstance(body[0], ast.Return):
        return body[0].value
    if len(body) != 2 or not isinstance(body[0], ast.Assign) or not isinstance(body[1], ast.Return):
        return None
    targets, returned = body[0].targets, body[1].value
    if len(targets) != 1 or not isinstance(targets[0], ast.Name):
        return None
    if not isinstance(returned, ast.Name) or returned.id != targets[0].id:
        return None
    return body[0].value


def _docstring(definition: ast.FunctionDef) -> bool:
    first = definition.body[0] if definition.body else None
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
        and len(definition.body) > 1
    )


def _all_args(node: ast.Lambda) -> list[ast.arg]:
    args = node.args
    return [
        a
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        if a is not None
    ]
