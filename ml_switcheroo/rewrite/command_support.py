"""What ``SwitcherooCommand.transform_module`` does before the engine runs.

1. The pre-filter (``ml_switcheroo.analysis.prefilter``, then ``analysis.second_stage``): a file
   that cannot change is returned as it is, before any metadata is computed. To libcst's own
   runner it is returned as a ``verbatim`` tree, whose bytes are the file's: the runner writes
   the tree out only to compare it with the file, and the file is what it would get (the round
   trip is checked first: ``round_trip.lost_bytes``), so the code generation is skipped.
2. Metadata without libcst's deep copy when that is safe. ``Codemod.transform_module`` wraps the
   tree in ``MetadataWrapper(module)``, which deep-copies it so that a tree holding one node
   object at two places gets distinct nodes (metadata is keyed by node identity). A tree fresh
   from the parser never holds a node twice, and the engine never mutates nodes, so for such a
   tree the copy only costs time: about as much as parsing the file again (measured:
   ``benchmarks/README.md``). The copy is skipped only when the tree is known to be fresh from
   the parser: the caller is libcst's own runner function that has just parsed it
   (``libcst.codemod._cli._execute_transform`` behind ``python -m libcst.tool codemod``, or
   ``libcst.codemod.transform_module``), or ``ml-switcheroo convert``. Trees handed over by
   anyone else (``CodemodTest``, another codemod passing on its output) are copied as libcst
   always does.
3. No per-instance matcher scan. libcst's runner builds one command instance per file, and
   ``MatcherDecoratableTransformer.__init__`` scans every attribute of the instance (some 1,600
   ``visit_*``/``leave_*`` methods) for matcher decorators: about 6 ms per file, more than
   parsing a small file. The engine dispatches its visits itself and declares no matcher
   decorators, so for a command class without any (checked once per class) the instance gets
   what the scan would have found: nothing.
4. No per-file method scan of the metadata providers. libcst resolves batchable metadata
   (``BindingProvider``, the ``ExpressionContextProvider`` behind scopes) by asking each new
   provider instance for its ``visit_*``/``leave_*`` methods with ``inspect.getmembers``: some
   1,600 attributes per provider, per file (measured with cProfile over 150 transformers files,
   ``convert -j 1 --no-prefilter``: 16% of the run). Which methods a class has does not change
   from one instance to the next, so ``fast_batched_visitors`` makes libcst scan each class
   once and hand every instance its own bound methods of those names.
5. No walk for an empty batch. libcst resolves metadata in rounds; each round walks the whole
   tree for the batchable providers whose dependencies are done, even when there are none:
   resolving ``PositionProvider`` (not batchable) cost a walk of the tree that visits nothing
   on top of its own code generation. ``fast_batched_visitors`` skips that walk.
6. No walk for a batch that only visits the module. libcst's ``ExpressionContextProvider``
   and ``ScopeProvider`` are batchable but do all their work in ``visit_Module`` (each its
   own walk with its own visitor; so does the engine's ``BindingProvider``, with a walk of
   the tree's fields). Resolved in a round of its own (scopes depend on the expression
   contexts), such a batch then walked the whole tree once more calling nothing: each as
   costly as a walk of a no-op visitor (measured on the 124 files a checkout-like corpus
   keeps: scopes and bindings 36.2 -> 29.4 CPU-s over 400 files). For such a batch
   ``fast_batched_visitors`` calls the module methods, in the batch's order, without the walk.
7. No copy of the tree in the walks of libcst's scope and expression-context visitors. For a
   ``CSTVisitor``, libcst's ``CSTNode.visit`` still rebuilds every node it leaves (a new node,
   validated, then dropped: a visitor's ``visit`` returns the node it was given), and those
   two visitors walk subtrees by calling ``child.visit(self)`` from their own methods. For
   them (``_IN_PLACE_VISITORS``) ``CSTNode.visit`` is ``cst_walk.visit_in_place``: the same
   calls in the same order, on the same nodes, without the copies (measured on the 104 files
   checkout's ``ast`` stage keeps: see the commit).
8. Python's cyclic garbage collector paused for a file, from the command libcst's runner makes
   right before it parses the file (``pause_collector_for_file``) to the end of the command's
   ``transform_module`` (``file_collector_paused``): a libcst tree, its metadata and the plan
   are millions of tracked objects, and the collections their allocations trigger scanned
   them again and again (measured on the 102 files that change in the checkout-large corpus,
   ``convert -j 1``: 4 of 24 CPU-s). Reference counting still frees what is in no cycle; the
   cycles a file leaves are collected at the first collection after it.
9. One type test per node type in libcst's ``ScopeVisitor.on_leave``: it asks of every node
   of the tree whether it is one of 15 assignment-like node classes; each is an ``ABC``, so
   most nodes cost 15 calls of ``ABCMeta.__instancecheck__`` (py-spy of ``convert -j 1`` on
   checkout-large: 2.3% of the samples). ``_scope_on_leave`` remembers the answer per node
   type; it is installed only over the ``on_leave`` it repeats (``_scope_visitor_leave``).
10. Code generation without a ``contextlib`` generator per expression node
   (``rewrite.fast_codegen``): libcst's ``_parenthesize`` and the base state's
   ``record_syntactic_position`` as plain context managers making the same calls.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import fields, replace
from functools import cache
from types import CodeType, FrameType, MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import libcst as cst
from libcst import BatchableCSTVisitor
from libcst.codemod import SkipFile
from libcst.metadata import MetadataWrapper
from libcst.metadata import wrapper as metadata_wrapper

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.rewrite import fast_codegen, round_trip
from ml_switcheroo.rewrite.parse_guard import TOO_DEEP, SourceTooDeep

if TYPE_CHECKING:
    from libcst.codemod import CodemodCommand, CodemodContext


_MATCHER_ATTRIBUTES = (
    "_visit_matcher",  # libcst.matchers._decorators.CONSTRUCTED_VISIT_MATCHER_ATTR
    "_leave_matcher",  # CONSTRUCTED_LEAVE_MATCHER_ATTR
    "_call_if_inside_matcher",  # VISIT_POSITIVE_MATCHER_ATTR
    "_call_if_not_inside_matcher",  # VISIT_NEGATIVE_MATCHER_ATTR
)


@cache
def _matcher_attributes() -> tuple[str, ...]:
    try:
        from libcst.matchers import _decorators
    except ImportError:  # pragma: no cover - the names above, as of libcst 1.1-1.9
        return _MATCHER_ATTRIBUTES
    return tuple(
        getattr(_decorators, name, fallback)
        for name, fallback in zip(
            (
                "CONSTRUCTED_VISIT_MATCHER_ATTR",
                "CONSTRUCTED_LEAVE_MATCHER_ATTR",
                "VISIT_POSITIVE_MATCHER_ATTR",
                "VISIT_NEGATIVE_MATCHER_ATTR",
            ),
            _MATCHER_ATTRIBUTES,
            strict=True,
        )
    )


@cache
def _declares_matchers(cls: type) -> bool:
    """Whether any method of ``cls`` carries a libcst matcher decorator."""
    attributes = _matcher_attributes()
    for name in dir(cls):
        value = getattr(cls, name, None)
        if isinstance(value, property):
            continue
        if any(getattr(value, attribute, None) for attribute in attributes):
            return True
    return False


def init_without_matcher_scan(command: CodemodCommand, context: CodemodContext) -> bool:
    """``ContextAwareTransformer.__init__`` minus the per-instance scan; False (nothing done)
    when the command's class declares matcher decorators, which need the real thing."""
    from libcst import CSTTransformer
    from libcst.codemod import Codemod

    if _declares_matchers(type(command)):
        return False
    Codemod.__init__(command, context)
    CSTTransformer.__init__(command)
    # What MatcherDecoratableTransformer.__init__ finds on a class without decorators.
    command._matchers = {}  # type: ignore[attr-defined]
    command._extra_visit_funcs = {}  # type: ignore[attr-defined]
    command._extra_leave_funcs = {}  # type: ignore[attr-defined]
    return True


@cache
def _libcst_parsers() -> frozenset[CodeType]:
    """Code objects of the libcst functions that parse a file and pass the tree straight on."""
    codes = set()
    with suppress(ImportError, AttributeError):  # private names: without them, we just copy
        from libcst.codemod import _cli

        codes.add(_cli._execute_transform.__code__)
    with suppress(ImportError, AttributeError):
        from libcst.codemod import _runner

        codes.add(_runner.transform_module.__code__)
    return frozenset(codes)


def called_by_libcst_parser(frame: FrameType | None) -> bool:
    """Whether ``frame`` (the caller of ``transform_module``) just parsed the tree itself."""
    return frame is not None and frame.f_code in _libcst_parsers()


def called_by_libcst_cli(frame: FrameType | None) -> bool:
    """Whether ``frame`` is libcst's command-line runner, which has just parsed the bytes of the
    file and uses the tree it gets back only for its ``bytes`` and ``encoding``."""
    with suppress(ImportError, AttributeError):
        from libcst.codemod import _cli

        return frame is not None and frame.f_code is _cli._execute_transform.__code__
    return False


def bytes_read_by_libcst_cli(frame: FrameType | None) -> bytes | None:
    """The bytes libcst's command-line runner read from the file (``frame`` is its
    ``_execute_transform``, see ``called_by_libcst_cli``), or None when not known."""
    if not called_by_libcst_cli(frame):
        return None
    assert frame is not None
    data = frame.f_locals.get("oldcode")
    return data if isinstance(data, bytes) else None


def caller_frame() -> FrameType | None:
    """The frame that called the function calling this one."""
    return sys._getframe(2)


def source_bytes(filename: str | None, tree: cst.Module, *, from_file: bool) -> bytes:
    """The bytes the pre-filter scans: the file the tree was parsed from, else the tree's code.

    The file is read only when the tree is known to be its parse (``from_file``): a codemod
    composed after another one gets that one's output with the original file name.
    """
    if from_file and filename and os.path.isfile(filename):
        try:
            with open(filename, "rb") as handle:
                return handle.read()
        except OSError:
            pass
    return tree.code.encode("utf-8", "surrogatepass")


def keep_final_cr(tree: cst.Module, source: bytes) -> cst.Module:
    """``tree`` with the last line ending of ``source`` when libcst's parser dropped it.

    In a file whose lines end with a lone CR (classic Mac OS), libcst loses the CR that ends
    the last line (``parse_module(b"x = 1\\r").bytes == b"x = 1"``): every file it writes back,
    changed or not, would lose it. Such a tree is marked as ending with a newline again (its
    ``default_newline`` is then that CR).
    """
    if source.endswith(b"\r") and not tree.has_trailing_newline and tree.default_newline == "\r":
        return tree.with_changes(has_trailing_newline=True)
    return tree


class _Verbatim(cst.Module):
    """A module whose code is the source it was parsed from, not written out again."""

    __slots__ = ("_source",)

    @property
    def code(self) -> str:
        return self._source.decode(self.encoding)

    @property
    def bytes(self) -> bytes:  # type: ignore[override]
        return self._source


def verbatim(tree: cst.Module, source: bytes) -> cst.Module:
    """``tree`` (the parse of ``source``, which it writes back byte for byte) with ``source`` as
    its code: libcst's command-line runner (``called_by_libcst_cli``) compares ``tree.bytes``
    with the file, and this skips writing the whole tree out for a file the command leaves as
    it is. ``source`` is the file read again by the command right after libcst read it (as the
    pre-filter and the round-trip check already assume, ``source_bytes``)."""
    copy = object.__new__(_Verbatim)
    for field in fields(tree):
        object.__setattr__(copy, field.name, getattr(tree, field.name))
    object.__setattr__(copy, "_source", source)
    return copy


_VISITOR_NAMES: dict[type, tuple[str, ...]] = {}


def _get_visitors_once_per_class(visitor: BatchableCSTVisitor) -> dict[str, Any]:
    """``BatchableCSTVisitor.get_visitors`` with the scan of ``visitor``'s class done once."""
    names = _VISITOR_NAMES.get(type(visitor))
    if names is None:
        names = tuple(_scan_visitor_methods(visitor))
        _VISITOR_NAMES[type(visitor)] = names
    return {name: getattr(visitor, name) for name in names}


_scan_visitor_methods = BatchableCSTVisitor.get_visitors


_walk_batchable = metadata_wrapper._gen_batchable


_MODULE_METHODS = frozenset({"visit_Module", "leave_Module"})


def _gen_batchable_unless_none(wrapper: MetadataWrapper, providers: Any) -> Any:
    """libcst's ``_gen_batchable``, without its walk of the whole tree when there is no
    batchable provider to resolve (what it would return then: no metadata), nor when the
    providers only visit the module node (point 6 above)."""
    providers = list(providers)
    if not providers:
        return {}
    if all(_MODULE_METHODS.issuperset(p.get_visitors()) for p in providers):
        return _gen_module_only(wrapper, providers)
    return _walk_batchable(wrapper, providers)


def _gen_module_only(wrapper: MetadataWrapper, providers: list[Any]) -> Any:
    """``_gen_batchable`` for providers whose only visitor methods are ``visit_Module`` and
    ``leave_Module``: what libcst's batched walk calls, in its order (each provider's
    ``visit_Module``, then each one's ``leave_Module``), without the walk below the module."""
    with ExitStack() as stack:
        for provider in providers:
            stack.enter_context(provider.resolve(wrapper))
        module = wrapper.module
        methods = [provider.get_visitors() for provider in providers]
        for name in ("visit_Module", "leave_Module"):
            for visitors in methods:
                if name in visitors:
                    visitors[name](module)
    return {type(p): MappingProxyType(dict(p._computed)) for p in providers}


_libcst_visit = cst.CSTNode.visit


def _in_place_visitors() -> frozenset[type]:
    """libcst's visitors whose walks ``CSTNode.visit`` makes without copies (point 7)."""
    found: set[type] = set()
    with suppress(ImportError, AttributeError):  # private names: without them, libcst's walk
        from libcst.metadata.expression_context_provider import ExpressionContextVisitor
        from libcst.metadata.scope_provider import ScopeVisitor

        found.update((ScopeVisitor, ExpressionContextVisitor))
    return frozenset(found)


_IN_PLACE_VISITORS = _in_place_visitors()


def _scope_visitor_leave() -> tuple[type, tuple[type, ...], Any] | None:
    """libcst's ``ScopeVisitor``, its ``_ASSIGNMENT_LIKE_NODES`` and its own ``on_leave`` when
    that is the one ``_scope_on_leave`` repeats (point 9); None otherwise (another libcst)."""
    with suppress(ImportError, AttributeError):  # private names: without them, libcst's own
        from libcst.metadata import scope_provider

        visitor = scope_provider.ScopeVisitor
        names = set(visitor.on_leave.__code__.co_names)
        if {"set_metadata", "scope", "_ASSIGNMENT_LIKE_NODES", "_assignment_count"} <= names:
            return visitor, tuple(scope_provider._ASSIGNMENT_LIKE_NODES), visitor.on_leave
    return None


_SCOPE_VISITOR = _scope_visitor_leave()
_ASSIGNMENT_LIKE: dict[type, bool] = {}  # node type -> isinstance of _ASSIGNMENT_LIKE_NODES


def _scope_on_leave(self: Any, original_node: cst.CSTNode) -> None:
    """libcst's ``ScopeVisitor.on_leave`` (point 9), its ``isinstance`` test against 15 node
    classes answered once per node type: every class is an ``ABC``, so the test ran 15
    ``ABCMeta.__instancecheck__`` calls for most nodes of the tree."""
    assert _SCOPE_VISITOR is not None
    self.provider.set_metadata(original_node, self.scope)
    kind = type(original_node)
    like = _ASSIGNMENT_LIKE.get(kind)
    if like is None:
        like = _ASSIGNMENT_LIKE[kind] = isinstance(original_node, _SCOPE_VISITOR[1])
    if like:
        self.scope._assignment_count += 1
    super(_SCOPE_VISITOR[0], self).on_leave(original_node)


def _visit(node: cst.CSTNode, visitor: Any) -> Any:
    """``CSTNode.visit``: in place for the visitors of point 7, libcst's own otherwise."""
    if type(visitor) in _IN_PLACE_VISITORS:
        return cst_walk.visit_in_place(node, visitor, _libcst_visit)
    return _libcst_visit(node, visitor)


def fast_batched_visitors() -> None:
    """Make libcst scan each batchable visitor class for its methods once per process, not walk
    the tree for an empty batch nor for one that only visits the module, walk its scope
    and expression-context visitors without copying the tree, and test the node type of the
    scope visitor's every leave once per type (points 5 to 7 and 9 above)."""
    if BatchableCSTVisitor.get_visitors is not _get_visitors_once_per_class:
        BatchableCSTVisitor.get_visitors = _get_visitors_once_per_class  # type: ignore[method-assign]
    if metadata_wrapper._gen_batchable is not _gen_batchable_unless_none:
        metadata_wrapper._gen_batchable = _gen_batchable_unless_none
    if cst.CSTNode.visit is not _visit:
        cst.CSTNode.visit = _visit  # type: ignore[method-assign]
    if _SCOPE_VISITOR is not None and _SCOPE_VISITOR[0].on_leave is not _scope_on_leave:
        _SCOPE_VISITOR[0].on_leave = _scope_on_leave  # type: ignore[method-assign]
    fast_codegen.install()  # point 10


# file_collector_paused's nesting; the pause of point 8; the collector left paused after a
# file in a worker process, for the command of its next file to collect (point 8)
_PAUSE = {"depth": 0, "by_init": False, "left_paused": False}


def pause_collector_for_file() -> None:
    """Point 8: pause the cyclic garbage collector when libcst's command-line runner makes a
    command for a file (it parses the file right after: ``called_by_libcst_cli`` up the
    stack); the outermost ``file_collector_paused`` that follows resumes it, or, in a worker
    process of the runner, leaves it paused: then the command of the worker's next file
    collects what the last file left (its tree unreachable by then) and pauses it again. A
    command made otherwise (by hand, or during another file's conversion: a dry run) changes
    nothing."""
    if _PAUSE["depth"] != 0:
        return
    if gc.isenabled():
        if _made_by_libcst_cli():
            gc.disable()
            _PAUSE["by_init"] = True
    elif _PAUSE["left_paused"] and _made_by_libcst_cli():
        _PAUSE["left_paused"] = False
        gc.collect(0)
        _PAUSE["by_init"] = True


def _made_by_libcst_cli() -> bool:
    """Whether libcst's runner (``_execute_transform``) is among the few frames above."""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            return False
        if called_by_libcst_cli(frame):
            return True
        frame = frame.f_back
    return False


@contextmanager
def file_collector_paused() -> Iterator[None]:
    """Point 8: the collector paused while a file is converted (nested blocks too); resumed at
    the end of the outermost block when it ran before it or before the command of the file
    was made (``pause_collector_for_file``)."""
    outer = _PAUSE["depth"] == 0
    by_init = outer and bool(_PAUSE["by_init"])
    resume = gc.isenabled() or by_init
    if outer:
        _PAUSE["by_init"] = False
    _PAUSE["depth"] += 1
    gc.disable()
    try:
        yield
    finally:
        _PAUSE["depth"] -= 1
        if resume and by_init and _in_worker_process():
            _PAUSE["left_paused"] = True  # collected by the next file's command
        elif resume:
            gc.enable()


def _in_worker_process() -> bool:
    """Whether this process is a ``multiprocessing`` child (a worker of libcst's runner), which
    ends when the run does: there the collector may stay paused between files. Resuming it
    at the end of a file made the collection its allocations had set off scan the file's
    tree, still held by the runner, which a later collection then scanned again as garbage
    (py-spy of ``convert -j 2`` on checkout-large: 8.5% of the samples, in
    ``file_collector_paused``'s exit)."""
    import multiprocessing

    return multiprocessing.parent_process() is not None


def transform_fresh_tree(command: CodemodCommand, tree: cst.Module) -> cst.Module:
    """``CodemodCommand.transform_module`` for a tree fresh from the parser, without its copy.

    The same steps as libcst's ``Codemod.transform_module`` / ``_handle_metadata_reference`` and
    ``CodemodCommand.transform_module``: a metadata wrapper (with the full-repo cache when there
    is one), the command's metadata resolved, ``transform_module_impl``, then libcst's
    add/remove-imports visitors when the command scheduled any.
    """
    from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

    fast_batched_visitors()
    context = command.context
    manager = context.metadata_manager
    cache_ = manager.get_cache_for_path(context.filename) if manager and context.filename else {}
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True, cache=cache_)
    old_wrapper = context.wrapper
    with command.resolve(wrapper):
        command.context = replace(command.context, wrapper=wrapper)
        try:
            tree = command.transform_module_impl(wrapper.module)
        finally:
            command.context = replace(command.context, wrapper=old_wrapper)
    for key, transform in (
        (AddImportsVisitor.CONTEXT_KEY, AddImportsVisitor),
        (RemoveImportsVisitor.CONTEXT_KEY, RemoveImportsVisitor),
    ):
        if key in command.context.scratch:
            tree = transform(command.context).transform_module(tree)
    return tree


class PrefilteredCommand(Protocol):
    """What ``prefiltered_transform`` needs of a command (``SwitcherooCommand``)."""

    context: CodemodContext
    prefilter: Any

    def proved_unchanged(self, data: bytes) -> bool: ...

    def rewrite(self, tree: cst.Module, *, fresh: bool) -> cst.Module: ...


def prefiltered_transform(
    command: PrefilteredCommand, tree: cst.Module, caller: FrameType | None
) -> cst.Module:
    """``SwitcherooCommand.transform_module`` (``caller``: the frame that called it).

    A file the pre-filter proves unchanged is returned as it is, before any metadata is
    computed; a tree fresh from libcst's parser skips libcst's deep copy (points 1 and 2 above).
    """
    fresh = called_by_libcst_parser(caller)
    lossy: str | None = None  # why libcst would not write the file back as it is
    if command.prefilter is not None or fresh:
        data = source_bytes(command.context.filename, tree, from_file=fresh)
        tree = keep_final_cr(tree, data)
        if fresh:
            lossy = round_trip.lost_bytes(tree, data)
        if command.proved_unchanged(data):
            unchanged = unless_lossy(tree, tree, lossy)
            if called_by_libcst_cli(caller):
                return verbatim(unchanged, data)
            return unchanged
    filename = command.context.filename
    if fresh and filename and os.path.islink(filename):
        # libcst's runner would write through the link: into a file outside the paths
        # given, or into a file it also converts under its own name (two writers at once).
        raise SkipFile(
            f"a symbolic link to {os.path.realpath(filename)}: not converted "
            "through the link (run the codemod on the file itself)"
        )
    try:
        result = command.rewrite(tree, fresh=fresh)
    except RecursionError:
        raise SourceTooDeep(TOO_DEEP) from None
    return unless_lossy(tree, result, lossy)


def unless_lossy(tree: cst.Module, result: cst.Module, lossy: str | None) -> cst.Module:
    """``result``, unless libcst would not write the file back byte for byte (``lossy``).

    libcst's runner writes ``result.bytes`` whenever they differ from the file: a file that
    needs no change is skipped (``SkipFile``), one that does is refused (``LossyRoundTrip``).
    """
    if lossy is None:
        return result
    if result is tree or result.bytes == tree.bytes:
        raise SkipFile(lossy)
    raise round_trip.LossyRoundTrip(lossy)
