"""Which map entry a call (or attribute read) is wired to, without a command.

``Wiring`` holds the entries a command runs and the file's module-level import roots; given a
``Resolver`` for the file it answers, for one call, ``(entry, API name, receiver source,
probable)`` or None. The engine, the planner and tests use the same function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.resolver import Resolver
from ml_switcheroo.spec.semantic_map import ApiEntry, SemanticMap
from ml_switcheroo.spec.signature import code_of, dotted_name


class Wired(NamedTuple):
    """A call bound to its map entry: the API it resolves to, the receiver's source text (None
    for a constructor or function), and whether the receiver's type is only guessed from its
    name."""

    entry: ApiEntry
    name: str
    receiver: str | None
    probable: bool


@dataclass(frozen=True)
class Wiring:
    """The entries a command runs (``SemanticMap.for_hooks``) and the roots the file imports at
    module level (a receiver type guessed from a name counts only where torch is imported)."""

    semantic_map: SemanticMap
    entries: Mapping[str, ApiEntry]
    imported_roots: frozenset[str] = frozenset()
    methods: frozenset[str] = field(init=False)
    attributes: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        entries = self.entries.values()
        methods = frozenset(e.method for e in entries if e.method and not e.attribute)
        attributes = frozenset(e.method for e in entries if e.method and e.attribute)
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "attributes", attributes)


def wired_call(
    wiring: Wiring, resolver: Resolver, call: cst.Call, enclosing: cst.ClassDef | None
) -> Wired | None:
    """The map entry ``call`` is wired to (``enclosing``: the class whose method holds it);
    answered once per file for each call (the planner and the engine both ask)."""
    return resolver.remember(
        "wired_call",
        (wiring, call, enclosing),
        lambda: _wired_call(wiring, resolver, call, enclosing),
    )


def _wired_call(
    wiring: Wiring, resolver: Resolver, call: cst.Call, enclosing: cst.ClassDef | None
) -> Wired | None:
    for name in resolver.imported_names(call.func):
        entry = wiring.entries.get(name)
        if entry is not None and entry.receiver_type is None:
            return Wired(entry, name, None, False)
    factory = _factory_entry(wiring, resolver, call)
    if factory is not None:
        return factory
    func = call.func
    if not isinstance(func, cst.Attribute) or func.attr.value not in wiring.methods:
        return None
    return wired_member(wiring, resolver, func, enclosing, attribute=False)


def _factory_entry(wiring: Wiring, resolver: Resolver, call: cst.Call) -> Wired | None:
    """``sched = build_scheduler(opt, ...)`` calling a scheduler factory of another file: the
    scheduler's entry (the planner makes the call stand for the factory's scheduler call,
    ``Planner._cross_file_factory``). Asked only of a call with an argument whose callee is
    imported from a module (the index is not asked about other calls)."""
    if not call.args or not isinstance(call.func, (cst.Name, cst.Attribute)):
        return None
    name = resolver.factory_scheduler(call)
    entry = wiring.entries.get(name) if name is not None else None
    if entry is None or entry.receiver_type is not None:
        return None
    return Wired(entry, name, None, False)  # type: ignore[arg-type]


def wired_member(
    wiring: Wiring,
    resolver: Resolver,
    member: cst.Attribute,
    enclosing: cst.ClassDef | None,
    *,
    attribute: bool,
) -> Wired | None:
    """The entry for ``receiver.name`` (a method call, or an attribute read when ``attribute``)
    when the receiver's type is known."""
    receiver_type = resolver.receiver_type(member.value, enclosing)
    if receiver_type is None:
        # Bound to an optimizer and to something else: wired, so that the call escapes.
        receiver_type = resolver.mixed_receiver_type(member.value, enclosing)
    if receiver_type is None:
        return None
    root = receiver_type.name.partition(".")[0]
    if receiver_type.probable and root not in wiring.imported_roots:
        return None  # a guess from a name alone only in files that import torch at all
    entry = wiring.semantic_map.method(receiver_type.name, member.attr.value)
    if entry is None or entry.name not in wiring.entries or entry.attribute != attribute:
        return None
    return Wired(entry, entry.name, code_of(member.value).strip(), receiver_type.probable)


def module_level_import_roots(module: cst.Module) -> frozenset[str]:
    """Top-level packages imported at module level (also inside module-level if/try blocks)."""
    roots: set[str] = set()

    class _Imports(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return False

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            return False

        def visit_Import(self, node: cst.Import) -> bool:
            roots.update((dotted_name(alias.name) or "").partition(".")[0] for alias in node.names)
            return False

        def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
            if not node.relative and node.module is not None:
                roots.add((dotted_name(node.module) or "").partition(".")[0])
            return False

        def visit_Expr(self, node: cst.Expr) -> bool:
            return False

        def visit_Assign(self, node: cst.Assign) -> bool:
            return False

    cst_walk.visit(module, _Imports())
    return frozenset(roots)
