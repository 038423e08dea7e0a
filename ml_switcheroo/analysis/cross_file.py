"""Cross-file facts for one file being converted: the repository index read with the map.

A parameter of a module-level function is a translated optimizer when every call site in the
repository passes one: a wired constructor whose translation succeeds in its own file (or a
translated value already, in a file converted earlier in the same run), of one type, and
the function uses the parameter only through the methods the map rewrites on it (``step()``,
``zero_grad()``). Then the hand-over ``train_one_epoch(model, opt, loader)`` in the
constructor's file needs no escape hatch, and the calls in the callee's file are rewritten as
if the optimizer were built there.
"""

from __future__ import annotations

import ast
import builtins
import os
import re
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cache as functools_cache
from functools import partial
from itertools import chain
from typing import Any

import libcst as cst
from libcst.metadata import PositionProvider

from ml_switcheroo.analysis import ast_nodes
from ml_switcheroo.analysis.changed_models import (
    NOT_DEFINED,
    Held,
    NotDefined,
    foreign_change,
    foreign_method_change,
    foreign_own_method_change,
)
from ml_switcheroo.analysis.freeze_reach import (
    FRESH_TENSOR,
    OTHER_MODEL,
    FreezeReach,
    binds_anywhere,
    reach_facts,
)
from ml_switcheroo.analysis.freeze_targets import (
    ModelUses,
    fresh_model_class,
    may_hold,
    self_frozen_class,
)
from ml_switcheroo.analysis.gradient_skips import (
    CutFacts,
    cut_facts,
    defines_method,
    first_gradient_skip,
    module_classes,
    stored_and_run,
)
from ml_switcheroo.analysis.gradient_skips import words as skip_words
from ml_switcheroo.analysis.handed_models import (
    WHOLE_HANDED,
    Handed,
    HandFacts,
    hand_facts,
    spread,
)
from ml_switcheroo.analysis.hidden_code import (
    HiddenMethod,
    attribute_write_line,
    hidden_methods,
    mode_write_line,
)
from ml_switcheroo.analysis.method_builders import method_builder, method_calls, method_returned
from ml_switcheroo.analysis.module_globals import module_global_reader
from ml_switcheroo.analysis.parameters import may_be_tensor_class
from ml_switcheroo.analysis.prefilter import has_attribute
from ml_switcheroo.analysis.repository import (
    Constructed,
    FactoryBody,
    FileFacts,
    Place,
    RepositoryIndex,
    Unknown,
    calls_of,
    factory_body,
    factory_callers,
    imported_name,
    index_for,
    is_selecting,
    remembered,
    repository_root,
)
from ml_switcheroo.analysis.stepped_together import Together, stepped_together
from ml_switcheroo.analysis.stored_ast import class_init, stored_attribute
from ml_switcheroo.analysis.word_trie import trie_pattern
from ml_switcheroo.spec.roles import SCHEDULER, STEP, ZERO_GRAD
from ml_switcheroo.spec.semantic_map import ParameterSpec, SemanticMap

_IDENTIFIER = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")
_LOOKUPS = ("getattr", "globals", "vars")
# modules that import a module by its name, and builtins that may (``_imports_by_name``)
_NAMED_IMPORTERS = frozenset({"importlib", "runpy", "__main__", "imp", "pkgutil", "sys.modules"})
_NAMED_IMPORT_CALLS = frozenset(
    {"__import__", "exec", "eval"}
)  # the calls of a computed lookup (``_computed_lookup``)

ParameterFact = tuple[str | None, str]  # (type name, or None with the reason)
_MAX_REEXPORTS = 4  # modules followed from an imported name to the file defining it
_MAX_BASES = 8  # files followed from a class to the base class defining a method


# Rounds of following a trained model into the calls linked files make with it
# (``CrossFile.gradient_skip_elsewhere``): main -> engine -> helpers is two.
MAX_HAND_ROUNDS = 4


@dataclass
class CrossFile:
    """Answers the engine's questions about ``path`` from the index of its repository."""

    index: RepositoryIndex
    path: str
    semantic_map: SemanticMap
    translates: Callable[[str, int], bool]  # the constructor at file:line translates
    methods: frozenset[str]  # the methods the map rewrites on an optimizer parameter
    target_root: str  # a call under it is a translated value already (the target's name)
    # constructors the map escapes with and without --exact: never a translated optimizer (the
    # pre-filter's question, which makes no dry run; the engine's dry run says the same)
    never_translated: frozenset[str] = frozenset()
    # callee -> ``factory_of``'s answer, for this file's run (the engine asks per call, often)
    _factories: dict[str, tuple[FactoryBody, str | None] | None] = field(
        default_factory=dict, init=False, repr=False
    )
    # method name -> ``method_call_type``'s answer, for this file's run
    _methods: dict[str, ParameterFact | None] = field(default_factory=dict, init=False, repr=False)
    _scheduler_names: tuple[bytes, ...] | None = field(default=None, init=False, repr=False)
    # ``_linked_files``: the linked files found so far, and the walk finding the rest
    _linked: list[str] = field(default_factory=list, init=False, repr=False)
    # ``unrun_elsewhere``: the submodules linked module classes store and never run, and
    # whether a linked file failed to parse
    _unrun: tuple[frozenset[str], bool] | None = field(default=None, init=False, repr=False)
    _linked_rest: Iterator[str] | None = field(default=None, init=False, repr=False)
    _linked_started: bool = field(default=False, init=False, repr=False)
    _import_linked: frozenset[str] | None = field(default=None, init=False, repr=False)

    def parameter_type(self, function: str, param: str) -> ParameterFact | None:
        """For ``param`` of this file's module-level ``function``: its type when every call
        site in the repository passes a translated optimizer; None when no file calls it."""
        own = self._own_error()
        if own is not None:
            return None, own
        module = self.index.module_of(self.path)
        sites = self.index.call_sites(module, function, param, self.methods)
        if isinstance(sites, Unknown):
            here = sites.place.file == self.path
        else:
            here = all(site.call_site.file == self.path for site in sites)
        if here:
            return None  # this file's own callers decide, as without the index
        return self._fact(module, function, param, sites)

    def hand_over(self, callee: str, call: cst.Call, argument: cst.Arg) -> ParameterFact | None:
        """For ``callee(..., opt, ...)`` where ``callee`` is a module-level function of another
        file of the repository: the parameter's fact (None when ``callee`` is not one)."""
        own = self._own_error(callee)
        if own is not None:
            return None, own
        split = self.index.split(self._absolute(callee))
        if split is None:
            return None
        module, function = split
        path = self.index.file_of(module)
        facts = self.index.facts(path) if path else None
        if facts is not None and facts.error is not None:
            return None, facts.error.describe(self.index.root)  # its file fails to parse
        definition = facts.callable(function) if facts else None
        if definition is None:
            return None
        param = _parameter_name(definition, call, argument)
        if param is None:
            return None, "its parameter cannot be matched to the argument"
        sites = self.index.call_sites(module, function, param, self.methods)
        return self._fact(module, function, param, sites)

    def batch_loop_problem(
        self, callee: str, call: cst.Call, argument: cst.Arg, measured: str | None
    ) -> str | None:
        """Why ``callee`` (a module-level function of another file, handed the optimizer as
        ``argument`` of ``call``) may not step it exactly once per iteration of one batch loop
        (what --steps-per-epoch counts): not one ``p.step()`` statement directly in a ``for``
        loop of its own body; a jump out of or past the rest of that loop, or before it; a
        ``yield``; with ``measured`` (``X`` of ``--steps-per-epoch 'len(X)'``), a loop that
        iterates neither what ``call`` passes as ``X`` nor ``enumerate()`` of it. None: it
        steps it once per batch. (``hand_over`` has shown ``p`` is only stepped and zeroed.)"""
        split = self.index.split(self._absolute(callee))
        path = self.index.file_of(split[0]) if split is not None else None
        definition = self.index.facts(path).functions.get(split[1]) if split and path else None
        param = _parameter_name(definition, call, argument) if definition is not None else None
        if split is None or definition is None or param is None:
            return f"{callee}() cannot be read"
        name = f"{split[1]}() ({os.path.relpath(path, self.index.root)}:{definition.lineno})"
        steps = [
            node
            for node in ast_nodes.walk(definition)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in self.semantic_map.methods_with_role(STEP)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == param
        ]
        if len(steps) != 1:
            return f"{name} steps the optimizer in {len(steps)} places"
        loop = next(
            (
                s
                for s in definition.body
                if isinstance(s, ast.For)
                and any(isinstance(b, ast.Expr) and b.value is steps[0] for b in s.body)
            ),
            None,
        )
        if loop is None:
            return f"{name} does not step the optimizer directly in a `for` loop of its own body"
        before = definition.body[: definition.body.index(loop)]
        jump = _loop_exit(loop.body) or next((s for s in before if _exits(s)), None)
        generator = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own(definition))
        if jump is not None or generator:
            line = f" (line {jump.lineno})" if jump is not None else ""
            return f"{name} can leave or skip its batch loop early{line}"
        return _iterates_problem(name, loop, definition, call, measured)

    def returned_type(self, callee: str) -> ParameterFact | None:
        """For ``opt = callee(...)`` where ``callee`` is a module-level function of the
        repository (another file's, or this one's): the type of the translated optimizer it
        returns on every path, when every caller uses the value only through the rewritten
        methods (None when ``callee`` is not such a function)."""
        split = self.index.split(self._absolute(callee))
        if split is None:
            return None
        return self._returned_fact(*split)

    def builder_type(self, function: str) -> ParameterFact | None:
        """``returned_type`` for this file's module-level ``function`` (None when no file of
        the repository calls it: its callers may be outside). A builder called more than once
        (``opt_g = build(model_g, cfg)``, ``opt_d = build(model_d, cfg)``) returns one
        optimizer per call, each used only through the rewritten methods: the same
        translation serves every call (issue 12)."""
        module = self.index.module_of(self.path)
        if calls_of(self.index, module, function) == 0:
            return None
        return self._returned_fact(module, function)

    def method_builder_type(self, owner: str, method: str) -> ParameterFact | None:
        """``builder_type`` for ``method`` of this file's module-level class ``owner``, called
        on instances of it (``analysis/method_builders.py``; None when the repository never
        calls it, or it is no such method)."""
        found = method_builder(self.index, method)
        if not isinstance(found, Unknown) and (
            found is None or found.path != self.path or found.owner != owner
        ):
            return None
        return self.method_call_type(method)

    def method_call_type(self, method: str) -> ParameterFact | None:
        """For ``opt = x.method(...)`` in this file: the type of the translated optimizer the
        one method of that name in the repository returns, when every call of it is on an
        instance of its class and every caller only steps and zeroes the value; None with
        the reason (naming ``file:line``) when not; None when no class defines it or nothing
        calls it."""
        if method not in self._methods:
            key = self._question("method_call_type", method)
            self._methods[method] = remembered(key, partial(self._method_call, method))
        return self._methods[method]

    def _method_call(self, method: str) -> ParameterFact | None:
        words = _constructor_words(self.semantic_map, self.target_root)
        maybe = _may_build_in_a_method(self.index, method, words)
        return self._method_fact(method) if maybe else None

    def _question(self, *asked: Hashable) -> tuple[Hashable, ...]:
        """The key of a question whose answer depends on the repository, not on this file:
        ``asked`` with all this object's answers read besides the file (``remembered``)."""
        return (
            id(self.index),
            id(self.semantic_map),
            self.translates,
            self.methods,
            self.target_root,
            self.never_translated,
            *asked,
        )

    def _method_fact(self, method: str) -> ParameterFact | None:
        root = self.index.root
        found = method_builder(self.index, method)
        if found is None:
            return None
        if isinstance(found, Unknown):
            return None, found.describe(root)
        calls = method_calls(self.index, found, self.methods, self.semantic_map.modules)
        if isinstance(calls, Unknown):
            return None, calls.describe(root)
        if calls == 0:
            return None
        returned = method_returned(self.index, found)
        if isinstance(returned, Unknown):
            return None, returned.describe(root)
        return self._constructed_fact(returned)

    def repository_calls(self, function: str) -> int:
        """How many calls of this file's module-level ``function`` the repository's files
        hold (through their imports or, here, its name)."""
        return calls_of(self.index, self.index.module_of(self.path), function)

    def mentioned_elsewhere(self, word: str) -> bool:
        """Whether a file of the repository other than this one holds the identifier."""
        return any(other != self.path for other in self.index.with_word(word))

    def defines_function_elsewhere(self, name: str) -> bool:
        """Whether a file of the repository other than this one binds ``name`` where a class
        or module may get it (``freeze_reach.binds_anywhere``: a ``def``, ``clone =
        copy.copy`` in a class body, ``setattr(C, "clone", f)``), or may and fails to parse.
        Any file: one a registry imports by name (``importlib``) is linked to none."""
        return self._file_binding(name, None) is not None

    def defines_def_elsewhere(self, name: str) -> bool:
        """Whether a file of the repository other than this one holds a ``def name`` (at any
        depth), or may and fails to parse."""
        for other in self.index.with_word(name):
            if other == self.path:
                continue
            facts = self.index.facts(other)
            if facts.tree is None or self.index.about(
                other, ("def", name), partial(_defines_def, facts.tree, name)
            ):
                return True
        return False

    def defines_in_linked_file(self, name: str) -> str | None:
        """The file (relative to the repository) of the first file whose code may run with
        this file's (``_linked_by_imports``) and binds ``name`` as
        ``defines_function_elsewhere`` says, or fails to parse; None: none does."""
        found = self._file_binding(name, self._linked_by_imports())
        return os.path.relpath(found, self.index.root) if found is not None else None

    def _file_binding(self, name: str, among: frozenset[str] | None) -> str | None:
        """The first file other than this one (of ``among``; None: any) that binds ``name``
        where a class or module may get it, or fails to parse."""
        for other in self.index.with_word(name):
            if other == self.path or (among is not None and other not in among):
                continue
            facts = self.index.facts(other)
            question = ("binds", name)
            if facts.tree is None or self.index.about(
                other, question, partial(binds_anywhere, facts.tree, name)
            ):
                return other
        return None

    def named_elsewhere(self, word: str) -> bool:
        """Whether a file of the repository other than this one holds the identifier ``word``
        (in its code, a string or a comment: the index's words). Any file: one a registry
        imports by name is linked to none."""
        return self.mentioned_elsewhere(word)

    def global_reachable_elsewhere(self, name: str) -> bool:
        """Whether a file of the repository other than this one holds the identifier ``name``
        and may reach this module's globals: it imports this module or a package above it
        (``import m``, ``from m import x``, ``from pkg import m``), or may import a module by
        name (``importlib``, ``__import__``, ``sys.modules``, ``__main__``, ``runpy``,
        ``exec``, ``eval``). Another file can rebind or read ``m.name`` only through one."""
        holders = [other for other in self.index.with_word(name) if other != self.path]
        if not holders:
            return False
        importers = self._importers_through_packages()
        return any(
            other in importers or _imports_by_name(self.index.facts(other)) for other in holders
        )

    def _importers_through_packages(self) -> frozenset[str]:
        """The files importing this one, and those importing a package ``__init__.py`` that
        imports it (to any depth: ``from .helpers import *`` re-exports its names, probe s41
        F6)."""
        found: set[str] = set()
        frontier = [self.path]
        while frontier:
            for importer in self.index.importers(frontier.pop()):
                if importer not in found:
                    found.add(importer)
                    if os.path.basename(importer) == "__init__.py":
                        frontier.append(importer)
        return frozenset(found)

    def hidden_methods_elsewhere(self) -> tuple[HiddenMethod, ...]:
        """Probe s37 H1: the methods of the classes of the repository's other files that an
        attribute read, an item access or an operator may run without a call written
        (``hidden_code.hidden_methods``), each file's answer kept per content. Any file
        linked to this one by imports (``_linked_by_imports``): an instance reaches this
        file's code through a parameter as well as an import. A file that does not parse
        cannot be imported and defines nothing."""
        found: list[HiddenMethod] = []
        linked = self._linked_by_imports()
        for other in self.index.files:
            if other == self.path or other not in linked:
                continue
            data = self.index.source(other)
            if b"class " not in data and b"__getattr__" not in data:
                continue
            found.extend(self.index.about(other, ("hidden_methods",), partial(self._hidden, other)))
        return tuple(found)

    def attribute_written_elsewhere(self, key: str) -> str | None:
        """Probe s37 H2: where (``file:line``) a file of the repository other than this one
        may write an attribute or global named ``key`` while this file's code runs: a store
        ``x.key = ...`` / ``x.key += ...`` on any object (but ``self.key`` in an ``__init__``,
        which sets up an object being built), a ``setattr`` naming it, a subscript store
        ``x["key"] = ...``, a ``global key`` declaration (``def decay(): global CLIP``: the
        module's attribute ``config.CLIP`` changes). None when no file holding the word
        writes it. Which object the attribute is on is not known: any counts."""
        linked = self._linked_by_imports()
        for other in self.index.with_word(key):
            if other == self.path or other not in linked:
                continue
            line = self.index.about(
                other, ("attribute_written", key), partial(self._attribute_written, other, key)
            )
            if line:
                return f"{os.path.relpath(other, self.index.root)}:{line}"
        return None

    def _attribute_written(self, path: str, key: str) -> int:
        tree = self.index.facts_unkept(path).tree
        return 0 if tree is None else attribute_write_line(tree, key)

    def mode_set_elsewhere(self, flags: frozenset[str], methods: frozenset[str]) -> str | None:
        """Probe s37 M2: where (``file:line``) a file of the repository other than this one
        sets a torch module's mode in a form an NNX module takes quietly
        (``hidden_code.mode_write_line``: ``m.training = False``, ``m.train(mode=False)``):
        a function there may be handed the step's model (``helpers.freeze_bn(model)``, before
        the loop or after each epoch), and which object it sets is not known: any counts."""
        words = [*flags, "mode"]
        holders = {other for word in words for other in self.index.with_word(word)}
        for other in sorted((holders & self._linked_by_imports()) - {self.path}):
            line = self.index.about(
                other,
                ("mode_written", flags, methods),
                partial(self._mode_written, other, flags, methods),
            )
            if line:
                return f"{os.path.relpath(other, self.index.root)}:{line}"
        return None

    def _mode_written(self, path: str, flags: frozenset[str], methods: frozenset[str]) -> int:
        tree = self.index.facts_unkept(path).tree
        return 0 if tree is None else mode_write_line(tree, flags, methods)

    def _linked_by_imports(self) -> frozenset[str]:
        """The files whose code may run while this file's does, as the cache reads them
        (``RepositoryIndex.dependencies``: the files it imports and those importing it, to
        any depth, with what each imports), so that a cached translation that read them is
        made again when one changes; every file when the repository is too large for that
        walk (its cache then keys no other file)."""
        if self._import_linked is None:
            if self.index.complete:
                found = self.index.dependencies(self.path, (), linked=True)
                self._import_linked = frozenset(found)
            else:
                self._import_linked = frozenset(self.index.files)
        return self._import_linked

    def _hidden(self, path: str) -> tuple[HiddenMethod, ...]:
        tree = self.index.facts_unkept(path).tree
        if tree is None:
            return ()
        shown = os.path.relpath(path, self.index.root)
        return hidden_methods(tree, shown)

    def stepped_together(self, module: str, function: str, param: str) -> Together | str:
        """``analysis/stepped_together.py``'s facts for ``module.function``'s scheduler
        parameter ``param``, with the values' types: a map scheduler that folds (or a value
        translated already) and a translated optimizer. Else why not (``file:line``)."""
        steps = self.semantic_map.methods_with_role(STEP)
        found = remembered(
            self._question("together", module, function, param),
            partial(
                stepped_together, self.index, module, function, param, steps, self._under_target
            ),
        )
        root = self.index.root
        if isinstance(found, Unknown):
            return found.describe(root)
        name = found.scheduler_site.constructor or ""
        entry = self.semantic_map.apis.get(name)
        folds = entry is not None and entry.role == SCHEDULER and not entry.attaches_to_chain
        if not folds and not self._under_target(name):
            where = found.scheduler_site.call_site.named(root)
            return f"{where} passes `{name}(...)`, not a scheduler that folds into the optimizer"
        type_name, reason = self._fact(module, function, found.optimizer, [found.optimizer_site])
        return found if type_name is not None else reason

    def folded_scheduler_type(self, function: str, param: str) -> tuple[str, str] | None:
        """The scheduler type of this file's module-level ``function``'s parameter ``param``
        and the optimizer parameter stepped before it, when another file's call hands it a
        scheduler whose schedule folds there (its ``step()`` here then goes); else None."""
        found = self.stepped_together(self.index.module_of(self.path), function, param)
        if isinstance(found, str) or found.optimizer_site.call_site.file == self.path:
            return None
        name = found.scheduler_site.constructor or ""
        if self._under_target(name):
            name = self._scheduler_constructor()
        type_name = self.semantic_map.canonical_type(name)
        return (type_name, found.optimizer) if type_name is not None else None

    def handed_scheduler(
        self, callee: str, call: cst.Call, argument: cst.Arg
    ) -> Together | str | None:
        """For ``callee(..., sched, ...)``, ``callee`` a module-level function of another
        file: ``stepped_together`` for the parameter ``argument`` binds (None when ``callee``
        is not such a function)."""
        found = self._callee_file(callee)
        if not isinstance(found, tuple):
            return found
        module, name, _, facts = found
        definition = facts.functions.get(name)
        if definition is None:
            return None
        param = _parameter_name(definition, call, argument)
        if param is None:
            return "its parameter cannot be matched to the argument"
        return self.stepped_together(module, name, param)

    def _callee_file(self, callee: str) -> tuple[str, str, str, FileFacts] | str | None:
        """The module, name, file and facts of ``callee`` when it is a module-level name of
        another file of the repository; the place of that file when it fails to parse; None
        otherwise."""
        own = self._own_error(callee)
        if own is not None:
            return own  # its imports may name other files than the root's
        split = self.index.split(self._absolute(callee))
        path = self.index.file_of(split[0]) if split is not None else None
        if split is None or path is None or path == self.path:
            return None
        facts = self.index.facts(path)
        if facts.error is not None:
            return facts.error.describe(self.index.root)
        return split[0], split[1], path, facts

    def _scheduler_constructor(self) -> str:
        """A map scheduler that folds (its type is what a translated scheduler was)."""
        return next(
            name
            for name, entry in self.semantic_map.apis.items()
            if entry.role == SCHEDULER and not entry.attaches_to_chain
        )

    def global_read_elsewhere(self, name: str) -> str | None:
        """Why another file of the repository may read this module's global ``name`` as the
        torch object (``file:line`` and what it does); None when none does."""
        found = remembered(
            self._question("global_read", self.path, name),
            partial(module_global_reader, self.index, self.path, name),
        )
        if found is None:
            return None
        if isinstance(found, Unknown):
            return found.describe(self.index.root)
        return f"{found.named(self.index.root)} reads `{name}` of this module"

    def steps_in(self, callee: str, methods: Collection[str]) -> str | None:
        """``file:line`` of a call of one of ``methods`` (``x.step()``) in the body of
        ``callee``, a module-level function or class (any of its methods: ``Warm(opt).run()``)
        of another file of the repository; its file's place when that file fails to parse;
        None when it has none or is not one."""
        own = self._own_error(callee)
        if own is not None:
            return own
        split = self.index.split(self._absolute(callee))
        if split is None:
            return None
        module, function = split
        path = self.index.file_of(module)
        if path is None or path == self.path:
            return None
        facts = self.index.facts(path)
        if facts.error is not None:
            return facts.error.describe(self.index.root)
        definition = facts.classes.get(function) or facts.callable(function)
        if definition is None:
            return None
        for node in ast_nodes.walk(definition):
            func = node.func if isinstance(node, ast.Call) else None
            if isinstance(func, ast.Attribute) and func.attr in methods:
                return Place(path, node.lineno).named(self.index.root)
        return None

    def handed_optimizer_use(
        self, callee: str, call: cst.Call, argument: cst.Arg, methods: Collection[str]
    ) -> str | None:
        """``file:line`` and code of the first use, in ``callee`` (a module-level function of
        another file), of the parameter ``argument`` of ``call`` binds (an optimizer) that is
        not ``p.m(...)`` with ``m`` outside ``methods`` nor a read of
        ``p.param_groups[i]["lr"]``: handed on, aliased, stored, its lr written may step it
        or change its lr unseen; None when it has none or is not such a function."""
        found = self._callee_file(callee)
        if not isinstance(found, tuple):
            return found
        _, name, path, facts = found
        definition = facts.functions.get(name)
        holder = facts.classes.get(name) if definition is None else None
        if holder is not None:  # `Holder(opt)`: it may keep it and hand it on from a method
            found = self._repository_call(holder, facts, methods)
            place = Place(path, found.lineno).named(self.index.root) if found else None
            return f"{place} (`{_clipped(ast.unparse(found))}`)" if found else None
        if definition is None:
            return None
        param = _parameter_name(definition, call, argument)
        if param is None:
            return f"{Place(path, definition.lineno).named(self.index.root)} (its parameters)"
        parents = facts.nodes().parents
        for node in ast_nodes.walk(definition):
            named = isinstance(node, ast.Name) and node.id == param
            if named and self._handed_outside(node, parents, facts):  # type: ignore[arg-type]
                continue  # `print(opt)`, `torch.save(opt)`: code outside the repository
            if named and not _read_as_optimizer(node, parents, methods):  # type: ignore[arg-type]
                place = Place(path, node.lineno).named(self.index.root)
                return f"{place} (`{_clipped(ast.unparse(parents.get(id(node), node)))}`)"
        return None

    def _repository_call(
        self, holder: ast.ClassDef, facts: FileFacts, methods: Collection[str]
    ) -> ast.Call | None:
        """The first call in the class ``holder`` other than of a builtin, a function imported
        from outside the repository, ``super()``'s methods or ``self``'s (``self.o.m()`` with
        ``m`` not among ``methods``): one that may be handed what the class keeps."""
        for node in ast_nodes.walk(holder):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr not in methods:
                root = func.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id == "self":
                    continue
                if isinstance(root, ast.Call) and ast.unparse(root.func) == "super":
                    continue
            qualified = imported_name(func, facts)
            if qualified is None:
                builtin = isinstance(func, ast.Name) and func.id in _BUILTINS
                if builtin and _unbound(facts, func.id):  # type: ignore[union-attr]
                    continue
                return node
            if self.index.split(qualified) is not None:
                return node
        return None

    def _handed_outside(
        self, name: ast.Name, parents: dict[int, ast.AST], facts: FileFacts
    ) -> bool:
        """Whether ``name`` is a plain argument of a call of a builtin (not rebound in its
        file) or of a function imported from outside the repository."""
        call = parents.get(id(name))
        if not isinstance(call, ast.Call) or name not in call.args:
            return False
        func = call.func
        qualified = imported_name(func, facts)
        if qualified is None:  # a builtin the file does not bind
            return isinstance(func, ast.Name) and func.id in _BUILTINS and _unbound(facts, func.id)
        return self.index.split(qualified) is None

    def outside_repository(self, qualified: str) -> bool:
        """Whether ``qualified`` (a callee's qualified name) names no module of the repository
        (never said when this file's own imports may name other files: ``_own_error``)."""
        if self._own_error(qualified) is not None:
            return False
        return self.index.split(self._absolute(qualified)) is None

    def _own_error(self, qualified: str | None = None) -> str | None:
        """Why this file's facts are unknown to the index (an import of a module its own
        folder holds, in a folder without ``__init__.py``: ``repository``), with its place;
        with ``qualified`` (a name this file imports), only when its module is one its own
        folder holds (the import may name that file or the root's)."""
        if "." not in self.index.module_of(self.path) or not self.path.endswith(".py"):
            return None  # a file of the root folder: its imports are the root's
        folder = os.path.dirname(self.path)
        if os.path.isfile(os.path.join(folder, "__init__.py")):
            return None  # a module of a regular package: it is not run as a script
        if qualified is not None:
            top = qualified.partition(".")[0]
            held = os.path.join(folder, top)
            if not top or not (os.path.isfile(held + ".py") or os.path.isdir(held)):
                return None
        error = self.index.facts(self.path).error
        return error.describe(self.index.root) if error is not None else None

    def member_used_elsewhere(self, attribute: str, members: Collection[str]) -> str | None:
        """``file:line`` of ``<anything>.<attribute>.<member>`` (one of ``members``: called,
        read or written) in another file of the repository: ``self.sched.step()`` of a
        subclass, ``trainer.opt.param_groups`` of a callee; None when no other file has one (or
        when a file that may have one fails to parse: then its place)."""
        files = [p for p in self.index.with_word(attribute) if p != self.path]
        for other in files:
            facts = self.index.facts(other)
            if facts.error is not None:
                return facts.error.describe(self.index.root)
            for node in ast_nodes.walk(facts.tree):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr in members
                    and isinstance(node.value, ast.Attribute)
                    and node.value.attr == attribute
                ):
                    return Place(other, node.lineno).named(self.index.root)
        return None

    def attribute_reached_elsewhere(self, owner: str, attributes: Collection[str]) -> str | None:
        """``file:line`` of a use of one of ``attributes`` (``x.sched``, ``getattr(x, "sched")``,
        ``vars(x)["sched"]``) in another file of the repository that names the class ``owner``
        (a subclass, code building one): an alias there (``s = self.sched; s.step()``) may step
        or change what the class built; None when no such file has one (or the place of a
        file that may have one and fails to parse)."""
        files = [p for p in self.index.with_word(owner) if p != self.path]
        for other in files:
            facts = self.index.facts(other)
            if facts.error is not None:
                return facts.error.describe(self.index.root)
            for node in ast_nodes.walk(facts.tree):
                named = (isinstance(node, ast.Attribute) and node.attr in attributes) or (
                    isinstance(node, ast.Constant) and node.value in attributes
                )
                if named:
                    return Place(other, node.lineno).named(self.index.root)
        return None

    def attribute_used_elsewhere(self, attributes: Collection[str]) -> str | None:
        """``file:line`` and code of any use, in another file of the repository, of an
        attribute named one of ``attributes`` (``t.sched``, ``self.sched``) or of such a name
        given as a string to ``getattr``/``setattr``/``delattr``/``hasattr`` or as a key of
        ``vars(x)[...]``/``x.__dict__[...]``: a parameter of unknown type, an alias, a mixin
        may reach the object a class of this file holds there; None when none does (or the
        place of a file that may and fails to parse)."""
        files = dict.fromkeys(
            p for word in sorted(attributes) for p in self.index.with_word(word) if p != self.path
        )
        for other in files:
            facts = self.index.facts(other)
            if facts.error is not None:
                return facts.error.describe(self.index.root)
            for node in ast_nodes.walk(facts.tree):
                found = _names_attribute(node, attributes)
                if found is not None:
                    place = Place(other, found.lineno).named(self.index.root)
                    return f"{place} (`{_clipped(ast.unparse(found))}`)"
        return None

    def called_elsewhere(self, functions: Collection[str]) -> str | None:
        """``file:line`` of a call in another file of the repository whose callee is written as
        one of ``functions`` (``copy.copy``, ``replace``); None when no other file has one (or
        when a file that may have one fails to parse: then its place)."""
        words = sorted({name.rpartition(".")[2] for name in functions})
        files = dict.fromkeys(p for w in words for p in self.index.with_word(w) if p != self.path)
        for other in files:  # each file once, in the order its first word lists it
            facts = self.index.facts(other)
            if facts.error is not None:
                return facts.error.describe(self.index.root)
            for node in ast_nodes.walk(facts.tree):
                if isinstance(node, ast.Call) and ast.unparse(node.func) in functions:
                    return Place(other, node.lineno).named(self.index.root)
        return None

    def imported_freeze(
        self, spec: ParameterSpec, models: frozenset[str] | None = None, skip: str | None = None
    ) -> str | None:
        """``code`` and ``file:line`` of the first freeze (``p.requires_grad = False``,
        ``m.requires_grad_(False)``, ``setattr(p, 'requires_grad', False)`` or
        ``setattr(p, name, v)``: a value other than a literal True; the map's ``freeze_*``)
        this file may run through a file of the repository it imports, directly or through
        the files those import and the packages' ``__init__.py`` that importing runs
        (``RepositoryIndex.imported_closure``): in that file's module-level code, or in a
        module-level function or class of it (``_freezers``) that code this file may run
        names (``_may_run``); None when there is none; a file that may hold one and fails to
        parse: its place. In a file imported only through another, a computed-name
        ``setattr`` in a method counts when the method holds the attribute's name as a string
        (``def freeze(self, attr='requires_grad')``: ``_unnamed_setters``). With ``models``
        (the classes of the repository every optimizer of this file trains a fresh instance
        of: ``fresh_models``), a freeze of a method of a class on its instance that none of
        them may hold is none (``_untouched``), and so is a freeze ``freeze_reach`` proves
        touches only a new model kept to itself (``_reaches_none``)."""
        words = {*spec.freeze_attributes, *spec.freeze_methods, *spec.freeze_calls}
        words |= {callee.rpartition(".")[2] for callee in spec.freezing_calls}
        words |= {name.rpartition(".")[2] for name in spec.freezing_classes}
        made = {*spec.freeze_keywords, *spec.frozen_by_default, *spec.freeze_flags}
        words |= {callee.rpartition(".")[2] for callee, _ in made}
        holding = {p for w in sorted(words) for p in self.index.with_word(w)}
        setters = {name.rpartition(".")[2] for name in spec.freeze_setters}
        holding |= {p for w in sorted(setters) for p in self.index.with_word(w)}
        closure = _Walked(self.index.walk_imported_closure(self.path))
        direct = set(self.index.imported_files(self.path))
        own = self.index.facts(self.path)
        if _imports_by_name(own):  # it may import any file (probe s41 F17: a plugin by name)
            reached: Iterable[str] = sorted(p for p in holding if p != self.path)
            direct |= set(reached)
        else:
            reached = closure
        for other in (p for p in reached if p in holding and p != skip):
            facts = self.index.facts(other)
            if facts.error is not None:
                return facts.error.describe(self.index.root)
            question = ("freezers", id(spec), other in direct)
            ask = partial(_freezers, facts, spec, other in direct)
            for node, freezers in self.index.about(other, question, ask):
                run = True if freezers is None else self._may_run(freezers, closure)
                if isinstance(run, str):
                    return run
                if run and models and self._untouched(other, node, models):
                    continue
                if run and self._reaches_none(other, node):
                    continue
                if run:
                    place = Place(other, node.lineno).named(self.index.root)  # type: ignore[attr-defined]
                    return f"{_freeze_code(node, facts)}` in `{place}"
        return None

    def script_import(self) -> tuple[str, str] | None:
        """``(module, file:line)`` of an absolute import of this file (``from models import
        Net``) that resolves to no module from the repository's root but names a file beside
        this one (``models.py``, ``models/__init__.py``): run as a script, Python finds it
        there (the script's folder is first on ``sys.path``), and the index does not read
        it; None when there is none or this file's folder is the root."""
        folder = os.path.dirname(os.path.abspath(self.path))
        facts = self.index.facts(self.path)
        if facts.tree is None or folder == os.path.abspath(self.index.root):
            return None
        for node in ast_nodes.walk(facts.tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                top = module.partition(".")[0]
                if self.index.file_of(top) is not None or self.index.file_of(module) is not None:
                    continue
                beside = os.path.join(folder, top)
                if os.path.isfile(beside + ".py") or os.path.isfile(
                    os.path.join(beside, "__init__.py")
                ):
                    return module, Place(self.path, node.lineno).named(self.index.root)
        return None

    def fresh_models(self, constructors: Collection[tuple[int, int]]) -> frozenset[str] | None:
        """The qualified classes of the repository whose fresh instance each optimizer
        constructor of this file (at ``(line, column)``) trains
        (``freeze_targets.fresh_model_class``); None when one trains anything else."""
        facts = self.index.facts(self.path)
        if facts.tree is None or not constructors:
            return None
        nodes = ast_nodes.walk(facts.tree)
        calls = {(n.lineno, n.col_offset): n for n in nodes if isinstance(n, ast.Call)}
        uses = self._model_uses()
        found: set[str] = set()
        for place in constructors:
            call = calls.get(place)
            model = call and fresh_model_class(facts.tree, call, uses, self._spelled)
            split = self.index.split(model) if model else None
            if split is None:
                return None
            found.add(model)  # type: ignore[arg-type]
        return frozenset(found)

    def _model_uses(self) -> ModelUses:
        spec = self.semantic_map.parameters
        return ModelUses(
            self.semantic_map.modules.self_methods,
            spec.detached_methods,
            spec.module_methods,
            spec.arguments,
            spec.freeze_methods,
            spec.freeze_attributes,
        )

    def _spelled(self, written: str) -> str | None:
        """The qualified name ``written`` spells in this file: through its imports, or a
        module-level class of it."""
        facts = self.index.facts(self.path)
        head, dot, rest = written.partition(".")
        if head in facts.imports:
            return facts.imports[head] + dot + rest
        tree = facts.tree
        if (
            not dot
            and tree is not None
            and any(isinstance(s, ast.ClassDef) and s.name == head for s in tree.body)
        ):
            return f"{self.index.module_of(self.path)}.{head}"
        return None

    def _untouched(self, path: str, node: ast.AST, models: frozenset[str]) -> bool:
        """Whether the freeze ``node`` of ``path`` is on the instance of a class of it
        (``freeze_targets.self_frozen_class``) that no instance of ``models`` may hold
        (``freeze_targets.may_hold``)."""
        tree = self.index.facts(path).tree
        frozen = tree and self_frozen_class(tree, node, self._model_uses())
        if not frozen:
            return False
        for model in sorted(models):
            module, name = self.index.split(model) or ("", "")
            defining = self.index.file_of(module) if module else None
            facts = self.index.facts(defining) if defining else None
            if facts is None or facts.tree is None:
                return False
            same = frozen if defining == path else ""
            if may_hold(facts.tree, name, same, partial(self._external, facts)):
                return False
        return True

    def _external(self, facts: FileFacts, word: str) -> bool:
        """Whether ``word`` is an import of ``facts``' file from no module of the repository."""
        qualified = facts.imports.get(word)
        if qualified is None:
            return False
        parent = qualified.rpartition(".")[0]
        return self.index.file_of(qualified) is None and not (
            parent and self.index.file_of(parent) is not None
        )

    def _reaches_none(self, path: str, node: ast.AST) -> bool:
        """The freeze ``node`` of the file ``path`` touches only a new model kept to itself
        (``freeze_reach.OTHER_MODEL``, read on that file as ``plan_models`` reads its own). A
        new tensor's freeze counts here: whether it may reach an optimizer depends on what
        each optimizer trains, which the dry run of another file (``_site_type``) does not
        ask."""
        reach = self._freeze_reach(path)
        return reach is not None and reach.kind(node) == OTHER_MODEL

    def _freeze_reach(self, path: str, alone: bool = False) -> FreezeReach | None:
        """The ``FreezeReach`` of the file ``path`` (``alone``: as a dry run of it reads it,
        without the repository); None when it does not parse."""
        facts = self.index.facts(path)
        if facts.tree is None:
            return None
        there = replace(self, path=path)
        return self.index.about(  # type: ignore[no-any-return]
            path,
            ("freeze reach", id(self.semantic_map), alone),
            lambda: FreezeReach(
                facts.tree,  # type: ignore[arg-type]
                reach_facts(self.semantic_map),
                *(
                    ()
                    if alone
                    else (
                        there.defines_function_elsewhere,
                        there.global_reachable_elsewhere,
                        there.named_elsewhere,
                    )
                ),
                own_name=_module_name(path),
            ),
        )

    def freezes_read_alone(self) -> bool:
        """Whether a dry run of this file (no repository read) skips the same freezes of it
        as its own run: each freeze ``freeze_reach`` proves touches a new object alone is
        proven so with the repository too (no other file defines ``clone``, calls its
        freezing function...), and the names of the map's ``module_methods`` a new tensor's
        proof asks are defined by no other file."""
        alone, real = self._freeze_reach(self.path, True), self._freeze_reach(self.path)
        if alone is None or real is None:
            return True
        for node in ast_nodes.walk(alone.tree):
            kind = alone.frozen_object(node) is not None and alone.kind(node)
            if not kind:
                continue
            if real.kind(node) != kind:
                return False
            methods = self.semantic_map.parameters.module_methods
            if kind == FRESH_TENSOR and any(real.defines(m) for m in methods):
                return False
        return True

    def caller_freeze(self, spec: ParameterSpec) -> str | None:
        """``code`` and ``file:line`` of the first freeze a file importing this one
        (``RepositoryIndex.importing_closure``) holds anywhere (``_own_freezes``), or may run
        through the files it imports (``imported_freeze`` asked for it): it may freeze a
        model before handing it to this file's code (``model.fc.requires_grad_(False)``
        then ``train(model)``); None when there is none; a file that may hold one and
        fails to parse: its place. Too many files to read (``importing_closure`` None):
        that. A freeze touching only a new model or tensor is none (``_reaches_none``)."""
        callers = self.index.importing_closure(self.path)
        if callers is None:
            return "too many files of the repository may import this file to read them all"
        for other in [*callers, *self._named_importers(set(callers))]:
            facts = self.index.facts(other)
            if facts.error is not None:
                return facts.error.describe(self.index.root)
            owns = self.index.about(
                other, ("own freezes", id(spec)), partial(_own_freezes, facts, spec)
            )
            own = next((n for n in owns if not self._reaches_none(other, n)), None)
            if own is not None:
                place = Place(other, own.lineno).named(self.index.root)  # type: ignore[attr-defined]
                return f"{_freeze_code(own, facts)}` in `{place}"
            found = replace(self, path=other).imported_freeze(spec, skip=self.path)
            if found is not None:
                return found
        return None

    def _named_importers(self, skip: set[str]) -> list[str]:
        """The other files of the repository that may import a module by its name
        (``_imports_by_name``: ``importlib.import_module(task)``, ``__import__``, ``runpy``):
        they may run this file's code with a model they froze (probe s41 F18), as a file
        importing it does. Found through the words such a file holds."""
        words = ("importlib", "runpy", "pkgutil", "__import__", "exec", "eval", "modules")
        candidates = dict.fromkeys(p for w in words for p in self.index.with_word(w))
        return [
            other
            for other in candidates
            if other != self.path
            and other not in skip
            and _imports_by_name(self.index.facts(other))
        ]

    def complex_elsewhere(self, spec: ParameterSpec) -> tuple[str, str] | None:
        """``(code, file:line)`` of the first place where parameters may be made complex
        (``_complex_node``: one of the map's ``complex_names``, an imaginary literal) in a file
        of the repository linked to this one (``_first_linked``). A file that may hold one and
        fails to parse: ``("", its place)``."""
        words = {*spec.complex_names, "j", "J"}  # `1j`: the index's words hold its `j`
        found = self._first_linked(words, ("complex", id(spec)), partial(_complex_node, spec=spec))
        if isinstance(found, str):
            return "", found
        return (ast.unparse(found[1]), found[0]) if found is not None else None

    def gradient_skip_elsewhere(
        self, handed: frozenset[Handed] = frozenset()
    ) -> tuple[str, str, str] | None:
        """``(code, why, file:line)`` of the first place that may leave a trained parameter without
        a gradient in a step (``gradient_skips.first_gradient_skip``: a submodule of a class
        defining ``forward`` used only under ``.detach()`` / ``torch.no_grad()``, picked by a
        computed index, skipped by a loop's ``continue``; ``p.grad = None``) in a file of the
        repository linked to this one (``_first_linked``). ``handed``: the calls this file's
        trained models cross (``handed_models.spread``): the names they arrive in there are
        trained models of that file (``build_optimizer(model)`` in the loop's file), and the
        calls they cross from there are followed on, to a fixpoint (``main`` -> ``engine`` ->
        ``helpers``; at most ``MAX_HAND_ROUNDS``, then the last round's answer stands). A file
        that may hold one and fails to parse: ``("", "", its place)``."""
        facts = cut_facts(self.semantic_map)
        hands = hand_facts(self.semantic_map)
        for _ in range(MAX_HAND_ROUNDS):
            found, more = self._gradient_skip_linked(facts, hands, handed)
            if found is not None or more <= handed:
                break
            handed = handed | more
        if isinstance(found, str):
            return "", "", found
        return (_skip_code(found[1][1]), found[1][0], found[0]) if found is not None else None

    def unrun_elsewhere(self, attribute: str) -> bool:
        """Whether module classes of the files linked to this one (``_linked_files``, those
        holding ``forward``) store a submodule ``attribute`` none of their forwards (nor the
        methods those call) reads: a whole call of the model does not run it (probe s43 e12).
        A file that fails to parse: True."""
        if self._unrun is None:
            facts = cut_facts(self.semantic_map)
            holding = set(self.index.with_word("forward"))
            stored: set[str] = set()
            read: set[str] = set()
            failed = False
            for other in (f for f in self._linked_files() if f in holding):
                file = self.index.facts(other)
                if file.tree is None:
                    failed = True
                    continue
                tree = file.tree
                found = self.index.about(
                    other,
                    ("stored and run", id(self.semantic_map)),
                    lambda tree=tree: stored_and_run(module_classes(tree), facts),
                )
                stored |= found[0]
                read |= found[1]
            self._unrun = (frozenset(stored - read), failed)
        unrun, failed = self._unrun
        return failed or attribute in unrun

    def _gradient_skip_linked(
        self, facts: CutFacts, hands: HandFacts, handed: frozenset[Handed]
    ) -> tuple[tuple[str, Any] | str | None, frozenset[Handed]]:
        """``_first_linked``'s answer to the gradient-skip question with ``handed``, and (when
        there is none) the calls the handed models cross on from the linked files."""
        question = ("gradient skip", id(self.semantic_map), handed)

        def asked(file: FileFacts) -> tuple[tuple[str, ast.AST] | None, frozenset[Handed]]:
            trained: dict[str, str] = {}
            crossing: frozenset[Handed] = frozenset()
            if handed:
                trained, crossing = spread(file.tree, (), handed, (), hands)  # type: ignore[arg-type]
            elsewhere = replace(self, path=file.path).defines_def_elsewhere
            whole = [""] if WHOLE_HANDED in handed else []  # (the root of the names handed)
            found = first_gradient_skip(file.tree, facts, trained, (), elsewhere, whole)  # type: ignore[arg-type]
            return _skip_last(found), crossing

        def answer(file: FileFacts) -> tuple[str, ast.AST] | None:
            return self.index.about(file.path, question, partial(asked, file))[0]

        words = skip_words(facts) | {h.function for h in handed if h.function}
        found = self._first_linked(words, ("gradient skip answer", *question[1:]), answer)
        if found is not None or not handed:
            return found, frozenset()
        holding = {p for w in sorted(words) for p in self.index.with_word(w)}
        crossed: set[Handed] = set()
        for other in (f for f in self._linked_files() if f in holding):
            file = self.index.facts(other)
            if file.tree is not None:
                crossed |= self.index.about(other, question, partial(asked, file))[1]
        return None, frozenset(crossed)

    def loaded_in_class(self, spec: ParameterSpec) -> tuple[str, str] | None:
        """``(code, file:line)`` of the first store on ``self`` of a call of the map's
        ``loaded_models`` (``self.backbone = torch.load(p)``) in a module class (one defining
        ``forward``) of a file of the repository linked to this one (``_first_linked``): a
        model built from it holds a model loaded whole (probe s41 F14). A file that may hold
        one and fails to parse: ``("", its place)``."""
        words = {name.rpartition(".")[2] for name in spec.loaded_models}
        found = self._first_linked(
            words,
            ("loaded in class", id(spec)),
            partial(_loaded_into_self, spec=spec),
            holds=lambda data: b"forward" in data,  # (a module class defines it)
        )
        if isinstance(found, str):
            return "", found
        return (ast.unparse(found[1]), found[0]) if found is not None else None

    def star_import_names(self, module: str, level: int) -> dict[str, str | None] | None:
        """The names ``from <level dots><module> import *`` in this file may bind
        (``RepositoryIndex.star_names``): None when not known (a module outside the
        repository, or one whose names cannot be read)."""
        if level:
            own = self.index.module_of(self.path)
            package = own if self.path.endswith("__init__.py") else own.rpartition(".")[0]
            parts = package.split(".") if package else []
            base = parts[: len(parts) - (level - 1)] if level > 1 else parts
            module = ".".join([*base, *([module] if module else [])])
        return self.index.star_names(module) if module else None

    def replaced_elsewhere(self) -> tuple[str, str, str] | None:
        """``(api, code, file:line)`` of the first statement replacing an API of the map, a
        member of one or a module holding them (``torch.optim.SGD = MySGD``, ``optim.SGD =
        optim.Adam``, ``setattr(torch.optim, "SGD", X)``: ``_replacement``) in a file of the
        repository linked to this one (``_first_linked``). This file's own replacements are
        the planner's (``plan_models._plan_replaced_apis``). A file that may hold one and
        fails to parse: ``("", "", its place)`` (probe s33 A1: a patch in an imported file
        translated main's constructor as torch's, 0.37-0.84 relative)."""
        apis = frozenset(self.semantic_map.apis)
        tails = _replacement_tails(apis)
        words = {t[-1] for t in tails} | {"setattr"}
        ask = partial(_replacement, apis=apis, tails=tails)
        holds = partial(_holds_replacement, names=_replacement_names(apis))
        found = self._first_linked(words, ("replaced", id(self.semantic_map)), ask, holds)
        if isinstance(found, str):
            return "", "", found
        if found is None:
            return None
        place, (name, node) = found
        return name, " ".join(ast.unparse(node).split())[:80], place

    def hooks_elsewhere(self, spec: ParameterSpec) -> tuple[str, str] | None:
        """``(code, file:line)`` of the first registration of a hook (a call of one of the
        map's ``hook_methods``: ``p.register_hook(h)``, torch's global
        ``register_optimizer_step_pre_hook(h)`` under any import name) in a file of the
        repository linked to this one (``_first_linked``); this file's own are the planner's
        (``plan_places._first_hook``). A file that may hold one and fails to parse: ``("",
        its place)`` (probe s33 A2: a hook installed by a helper of another file, 0.83)."""
        ask = partial(_hook_call, spec=spec)
        found = self._first_linked(spec.hook_methods, ("hooks", id(spec)), ask)
        if isinstance(found, str):
            return "", found
        return (" ".join(ast.unparse(found[1]).split())[:80], found[0]) if found else None

    def _first_linked(
        self,
        words: Iterable[str],
        question: Hashable,
        ask: Callable[[FileFacts], Any],
        holds: Callable[[bytes], bool] | None = None,
    ) -> tuple[str, Any] | str | None:
        """``(file:line, answer)`` of the first file linked to this one whose text holds one
        of ``words`` and for which ``ask(facts)`` answers (a node, or a tuple ending with
        one: its line is the place); the place of such a file that fails to parse; None.
        Linked: a file of the repository this file imports
        (``RepositoryIndex.walk_imported_closure``), a file importing this one
        (``RepositoryIndex.importing_closure``) or one that file imports: the reach of
        ``imported_freeze`` and ``caller_freeze`` (a model class of another file, built here
        or handed to this file's code). Anywhere in such a file, not only in code this file
        may run (conservative). Too many importing files to read: those are not read
        (``caller_freeze`` escapes the optimizers then). With ``holds``, only a file whose
        bytes it accepts is parsed and asked (a cheap necessary condition)."""
        holding = {p for w in sorted(set(words)) for p in self.index.with_word(w)}
        if not holding:
            return None
        for other in (f for f in self._linked_files() if f in holding):
            if holds is not None and not self.index.about(
                other, ("holds", question), partial(_searches, holds, self.index, other)
            ):
                continue
            facts = self.index.facts(other)
            if facts.error is not None:
                return facts.error.describe(self.index.root)
            answer = self.index.about(other, question, partial(ask, facts))
            if answer is not None:
                node = answer[-1] if isinstance(answer, tuple) else answer
                return Place(other, node.lineno).named(self.index.root), answer
        return None

    def _linked_files(self) -> Iterator[str]:
        """The files linked to this one (``_first_linked``), each once, this one left out, in
        order; found as far as a question reads them (the package ``__init__.py`` files come
        first: a question they answer reads no import of the rest of the repository) and kept
        for the next question of this ``CrossFile``."""
        if not self._linked_started:
            self._linked_started = True
            self._linked_rest = self._walk_linked()
        position = 0
        while True:
            if position < len(self._linked):
                yield self._linked[position]
                position += 1
                continue
            if self._linked_rest is None:
                return
            following = next(self._linked_rest, None)
            if following is None:
                self._linked_rest = None
                return
            self._linked.append(following)

    def _walk_linked(self) -> Iterator[str]:
        """``_linked_files`` in its order: the files this one imports
        (``RepositoryIndex.walk_imported_closure``), then each file of its importing closure
        followed by the files that one imports; each once, this one left out."""
        seen = {self.path}
        for other in self.index.walk_imported_closure(self.path):
            if other not in seen:
                seen.add(other)
                yield other
        for caller in self.index.importing_closure(self.path) or ():
            for other in chain((caller,), self.index.walk_imported_closure(caller)):
                if other not in seen:
                    seen.add(other)
                    yield other

    def _may_run(self, names: frozenset[str], walked: _Walked) -> bool | str:
        """Whether this file may run one of the module-level functions or classes ``names``
        of a file of ``closure``: this file's text names it, or the module-level code of a
        file of the closure (run at import: a call, a registration, a decorator), or a
        function or class of such a file whose name is so reached (``_namers``, followed
        back to a fixpoint); also when a file of the closure (or this one) looks its
        functions up by a computed name (``getattr(module, name)``, ``globals()``). A
        word, not a resolved name: a method named like a function reaches it. A file that
        may reach one and fails to parse: its place."""
        own = frozenset(_IDENTIFIER.findall(self.index.source(self.path)))
        if any(name.encode() in own for name in names):
            return True  # before the rest of the closure is read (issue 14)
        if self._looks_up(walked):  # read only as far as the first file looking names up
            return True
        inside = set(walked.everything())
        seen = set(names)
        frontier = sorted(names)
        while frontier:
            name = frontier.pop()
            if name.encode() in own:
                return True
            for other in (p for p in self.index.with_word(name) if p in inside):
                facts = self.index.facts(other)
                if facts.error is not None:
                    return facts.error.describe(self.index.root)
                namers = self.index.about(other, "namers", partial(_namers, facts))
                for namer in namers.get(name, ()):
                    if namer is None:
                        return True
                    if namer not in seen:
                        seen.add(namer)
                        frontier.append(namer)
        return False

    def _looks_up(self, closure: Iterable[str]) -> bool:
        """Whether this file or a file of ``closure`` may call a function of the repository
        found by a computed name (``_computed_lookup``)."""
        words = [self.index.with_word(w) for w in _LOOKUPS]
        holding = {p for paths in words for p in paths}
        for path in (p for p in chain((self.path,), closure) if p in holding):  # lazily
            facts = self.index.facts(path)
            if facts.tree is None:
                continue  # a freeze's own file failing to parse is reported by its place
            if self.index.about(
                path, "lookup", partial(_computed_lookup, facts, self.index.file_of)
            ):
                return True
        return False

    def imported_change(
        self, qualified: str, call: cst.Call, argument: cst.Arg, spec: ParameterSpec
    ) -> str | None:
        """``code`` and ``file:line`` of the first change (``changed_models.foreign_change``)
        the module-level function ``qualified`` of another file of the repository (or one
        another module re-exports: ``_defining``) makes to the parameter ``argument`` of
        ``call`` binds; None when it makes none or is no such function; a file that fails to
        parse: its place."""
        return self._foreign_change(
            qualified,
            lambda module, name, imports: foreign_change(
                module, name, call, argument, imports, spec
            ),
        )

    def imported_method_change(self, qualified: str, held: Held, spec: ParameterSpec) -> str | None:
        """``code`` and ``file:line`` of the first change (``changed_models.held_change``)
        the method ``held.call`` of an instance of the module-level class ``qualified`` of
        another file of the repository makes to the models the instance holds or the method
        is handed; None when it makes none or is no such class; a file that fails to parse:
        its place."""
        return self._foreign_change(
            qualified,
            lambda module, name, imports: foreign_method_change(module, name, held, imports, spec),
        )

    def imported_own_method_change(
        self, qualified: str, method: str, spec: ParameterSpec, depth: int = 0
    ) -> str | NotDefined | None:
        """``code`` and ``file:line`` of the first change (``changed_models.own_method_change``)
        the method ``method`` of an instance of the module-level class ``qualified`` of another
        file of the repository makes to the instance: defined by that class or inherited from
        its base classes (in that file or, up to ``_MAX_BASES`` files, others); None when it
        makes none; ``NOT_DEFINED`` when no class of the repository defines it (``qualified``
        is no class of the repository: torch's ``nn.Module``, a factory function) or the
        bases are followed too far; a file that fails to parse: its place."""
        if depth >= _MAX_BASES:
            return NOT_DEFINED

        def base(name: str, inherited: str) -> str | NotDefined | None:
            return self.imported_own_method_change(name, inherited, spec, depth + 1)

        return self._foreign_change(
            qualified,
            lambda module, name, imports: foreign_own_method_change(
                module, name, method, imports, spec, base
            ),
            absent=NOT_DEFINED,
        )

    def _foreign_change(
        self,
        qualified: str,
        change_in: Callable[
            [cst.Module, str, dict[str, str]], cst.CSTNode | str | NotDefined | None
        ],
        absent: NotDefined | None = None,
    ) -> str | NotDefined | None:
        """``change_in(module, name, imports)`` for the file defining ``qualified``
        (``_defining``), as ``code`` and ``file:line`` (a text ``change_in`` returns is
        that already); a file that fails to parse: its place; ``absent`` when ``qualified`` is
        defined in no file of the repository, None when in this one."""
        own = self._own_error(qualified)
        if own is not None:
            return own  # `qualified` may be another file than the root's
        defining = self._defining(self._absolute(qualified))
        if isinstance(defining, str):
            return defining
        if defining is None:
            return absent
        if defining[0] == self.path:
            return None
        path, name = defining
        wrapper = self.index.about(path, "libcst", partial(_libcst_tree, self.index, path))
        change = change_in(wrapper.module, name, self.index.facts(path).imports)
        if change is None or isinstance(change, (str, NotDefined)):
            return change
        line = wrapper.resolve(PositionProvider)[change].start.line
        code = wrapper.module.code_for_node(change).strip()
        return f"{code}` in `{Place(path, line).named(self.index.root)}"

    def _defining(self, qualified: str) -> tuple[str, str] | str | None:
        """The file of the repository and the name ``qualified`` (``pkg.change``) is defined
        under there, following re-exports (``pkg/__init__.py`` holding
        ``from .helpers import change``) up to ``_MAX_REEXPORTS`` modules; a file on the way
        that fails to parse: its place; None when no file defines it."""
        for _ in range(_MAX_REEXPORTS):
            split = self.index.split(qualified)
            path = self.index.file_of(split[0]) if split is not None else None
            if split is None or path is None:
                return None
            facts = self.index.facts(path)
            if facts.error is not None:
                return facts.error.describe(self.index.root)
            name = split[1]
            if name in facts.functions or name in facts.classes or name not in facts.imports:
                return path, name
            qualified = facts.imports[name]
        return None

    def trained_model_reason(self, function: str, optimizer: str, model: str) -> str | None:
        """For parameters ``optimizer`` and ``model`` of this file's module-level ``function``:
        None when every call site in the repository passes a translated optimizer for
        ``optimizer`` and for ``model`` the very model it was built over; else why not (with
        the ``file:line`` that decided)."""
        fact = self.parameter_type(function, optimizer)
        if fact is None:
            return f"no other file of the repository calls `{function}`"
        if fact[0] is None:
            return fact[1]
        module = self.index.module_of(self.path)
        if function in self.index.facts(self.path).classes:  # `self.model`: stored once
            uses = self.methods | self._translated_members()
            rebound = self.index.stored_misuse(module, function, model, uses, reads_allowed=True)
            if rebound is not None:
                return rebound.describe(self.index.root)
        self_methods = self.semantic_map.modules.self_methods
        mismatch = self.index.model_mismatch(
            module, function, optimizer, model, self._under_target, self_methods=self_methods
        )
        return None if mismatch is None else mismatch.describe(self.index.root)

    def stored_reason(self, owner: str, param: str, model: bool = False) -> str | None:
        """For this file's module-level class ``owner`` whose ``__init__`` stores ``param`` in
        ``self.<attr>``: why another file may store, reach by name or (not a ``model``) read
        ``.<attr>`` (``RepositoryIndex.stored_misuse``; this file is read by the caller); None
        when none does."""
        module = self.index.module_of(self.path)
        if not self.index.complete:
            return "the repository is too large to be indexed"
        uses = self.methods | self._translated_members()
        found = self.index.stored_misuse(module, owner, param, uses, model, skip_own=True)
        return None if found is None else found.describe(self.index.root)

    def plain_parameters(
        self, function: str, param: str, spec: ParameterSpec
    ) -> tuple[str | None, tuple[str, ...]]:
        """Why a call in another file of the repository of this file's module-level
        ``function`` may pass ``param`` something else than ``<name>.parameters()`` (a map
        ``module_methods`` call without arguments on a plain name, not ``self``: every
        parameter of one model, no param group), naming ``file:line`` (no call at all in the
        repository, this file's included: that); None when none does. With
        the free names passed (a name its file never binds, no star import: a snippet's),
        which stand for plain parameters with a warning."""
        module = self.index.module_of(self.path)
        found = self.index.arguments_of(module, function, param)
        root = self.index.root
        if isinstance(found, Unknown):
            return found.describe(root), ()
        if not found:
            return f"no call of `{function}` in the repository shows what `{param}` holds", ()
        free: list[str] = []
        for place, value in found:
            if place.file == self.path:
                continue  # this file's calls: the engine reads their values (``origins``)
            if isinstance(value, ast.Name) and _never_bound(self.index.facts(place.file), value.id):
                free.append(value.id)
                continue
            func = value.func if isinstance(value, ast.Call) else None
            plain = (
                isinstance(func, ast.Attribute)
                and func.attr in spec.module_methods
                and isinstance(func.value, ast.Name)
                and func.value.id != "self"
                and not value.args  # type: ignore[union-attr]
                and not value.keywords  # type: ignore[union-attr]
            )
            if not plain:
                return f"{place.named(root)} passes `{ast.unparse(value)}` for `{param}`", ()
        return None, tuple(free)

    def passed_constructors(self, function: str, param: str) -> list[str | None] | None:
        """The qualified names of the calls every call site in the repository (this file's
        too) passes for ``param`` of this file's module-level ``function`` (``criterion =
        nn.MSELoss()``, or ``nn.MSELoss().to(device)`` through the map's module
        ``self_methods``, which return the module itself), None for a site that passes
        anything else or cannot be followed (``[None]`` when the sites cannot be listed);
        None when nothing calls it."""
        module = self.index.module_of(self.path)
        sites = self.index.call_sites(module, function, param)
        if isinstance(sites, Unknown):
            return [None]
        return [self._constructed_name(site) for site in sites] or None

    def _constructed_name(self, site: Constructed) -> str | None:
        """What ``site`` passes: its constructor, through self-returning module methods."""
        if not site.methods:
            return site.constructor
        self_methods = self.semantic_map.modules.self_methods
        return site.inner if set(site.methods) <= self_methods else None

    def factory_of(self, callee: str) -> tuple[FactoryBody, str | None] | None:
        """For ``sched = callee(opt, ...)`` with ``callee`` a module-level function of another
        file of the repository whose whole body returns a map scheduler built on one of its
        parameters: its body, and None when every call of it in the repository can be followed
        or the reason (naming ``file:line``) when one cannot; None when it is no such function. The
        caller's call then stands for the scheduler call, its arguments in the parameters'
        places (``plan.py``): the factory's own file is not changed."""
        if callee not in self._factories:
            self._factories[callee] = self._factory_of(callee)
        return self._factories[callee]

    def factory_call_places(self, function: str) -> list[str]:
        """``file:line`` of each call in another file of this file's module-level scheduler
        factory ``function`` (empty when it is no factory ``factory_of`` reads, or a call
        cannot be followed)."""
        module = self.index.module_of(self.path)
        body = factory_body(self.index, module, function)
        if isinstance(body, Unknown):
            return []
        callers = factory_callers(self.index, module, function, body.optimizer)
        if isinstance(callers, Unknown):
            return []
        root = self.index.root
        return [s.call_site.named(root) for s in callers if s.call_site.file != self.path]

    def _factory_of(self, callee: str) -> tuple[FactoryBody, str | None] | None:
        split = self.index.split(self._absolute(callee))
        path = self.index.file_of(split[0]) if split is not None else None
        if split is None or path is None or path == self.path:
            return None
        if not self._may_hold_a_factory(path, split[1]):
            return None
        body = factory_body(self.index, *split)
        if isinstance(body, Unknown):
            return None
        entry = self.semantic_map.apis.get(body.constructor)
        if entry is None or entry.role != SCHEDULER:
            return None
        root = self.index.root
        callers = factory_callers(self.index, *split, body.optimizer)
        return body, callers.describe(root) if isinstance(callers, Unknown) else None

    def _may_hold_a_factory(self, path: str, function: str) -> bool:
        """Whether the bytes of ``path`` hold ``function`` and the last name of a map scheduler
        (``LambdaLR``): a factory ``_factory_of`` takes is defined there and calls one (by an
        import or an attribute, spelt out in the file). A file holding neither is not parsed
        for it. (A name that is not ASCII may be stored otherwise: the file is parsed.)"""
        if self._scheduler_names is None:
            self._scheduler_names = tuple(
                sorted(
                    {
                        name.rpartition(".")[2].encode("ascii")
                        for name, entry in self.semantic_map.apis.items()
                        if entry.role == SCHEDULER
                    }
                )
            )
        data = self.index.source(path)
        if function.isascii() and function.encode("ascii") not in data:
            return False
        return any(name in data for name in self._scheduler_names)

    def _returned_fact(self, module: str, function: str) -> ParameterFact:
        root = self.index.root
        returned = self.index.returned(module, function)
        if isinstance(returned, Unknown):
            return None, returned.describe(root)
        misuse = self.index.returned_value_misuse(module, function, self.methods)
        if misuse is not None:
            uses = self.index.returned_value_uses(module, function, self.methods)
            return None, _listed_uses(uses or [misuse], root)
        return self._constructed_fact(returned)

    def _constructed_fact(self, returned: Constructed) -> ParameterFact:
        """The type of the optimizer a builder returns, or why it is not a translated one."""
        found = self._site_type(returned)
        if found is None:
            return None, (
                f"{returned.call_site.named(self.index.root)} returns "
                f"`{returned.constructor}(...)`, which is not a translated optimizer"
            )
        return found, ""

    def _absolute(self, qualified: str) -> str:
        """``.engine.train`` (a relative import, as libcst names it) from this file's package."""
        dots = len(qualified) - len(qualified.lstrip("."))
        if not dots:
            return qualified
        module = self.index.module_of(self.path)
        parts = module.split(".")
        if not self.path.endswith("__init__.py"):
            parts.pop()
        parts = parts[: len(parts) - (dots - 1)] if dots > 1 else parts
        return ".".join([*parts, qualified[dots:]]) if parts else qualified[dots:]

    def _fact(
        self, module: str, function: str, param: str, sites: list[Constructed] | Unknown
    ) -> ParameterFact:
        root = self.index.root
        if isinstance(sites, Unknown):
            return None, sites.describe(root)
        uses = self.methods | self._translated_members()
        misuse = self.index.parameter_misuse(module, function, param, uses)
        if misuse is not None:
            return None, misuse.describe(root)
        types = set()
        for site in sites:
            found = self._site_type(site)
            if found is None:
                text = f"`{site.constructor}(...)`" if site.constructor else "a value"
                return None, (
                    f"{site.call_site.named(root)} passes {text} (built at "
                    f"{site.place.named(root)}), which is not a translated optimizer"
                )
            types.add(found)
        if len(types) != 1:
            return None, "its call sites pass optimizers of different types"
        return types.pop(), ""

    def _site_type(self, site: Constructed) -> str | None:
        name = site.constructor
        if name is None:
            return None
        if self._under_target(name):
            return self._optimizer_type()
        type_name = self.semantic_map.canonical_type(name)
        if type_name is None or name not in self.semantic_map.apis or name in self.never_translated:
            return None
        if not all(self.semantic_map.method(type_name, m) for m in self.methods):
            return None
        if not self.translates(site.place.file, site.place.line):
            return None
        # the dry run reads no other file: a constructor escaped there for complex parameters
        # of a file its own file is linked to (``complex_elsewhere``), or for a freeze such a
        # file may run (``imported_freeze``, ``caller_freeze``: its optimizers all escape), is
        # no translated optimizer (s32: a zero_grad() of the file it is handed was removed
        # while it stayed torch code, summing every batch's gradients)
        if site.place.file == self.path:
            return type_name
        spec = self.semantic_map.parameters
        there = replace(self, path=site.place.file)
        if spec.complex_names and there.complex_elsewhere(spec) is not None:
            return None
        if there.imported_freeze(spec) is not None or there.caller_freeze(spec) is not None:
            return None
        if not there.freezes_read_alone():
            return None  # the file's own run counts a freeze its dry run skipped
        if there.script_import() is not None or there.replaced_elsewhere() is not None:
            return None
        if there.hooks_elsewhere(spec) is not None:
            return None
        return type_name

    def _under_target(self, name: str) -> bool:
        """Whether ``name`` is the target's (``optax.sgd``, ``flax.nnx.Optimizer``): a value
        translated already, in a file converted earlier in the same run."""
        return bool(self.target_root) and self.target_root in name.split(".")[:-1]

    def _translated_members(self) -> frozenset[str]:
        """The members an optimizer keeps once translated (``update``): the uses a function
        converted earlier in the same run makes of the optimizer it is handed."""
        return frozenset(
            member
            for name, entry in self.semantic_map.types.items()
            if entry.translated is not None and name == self._optimizer_type()
            for member in entry.translated.members
        )

    def _optimizer_type(self) -> str | None:
        """The one map type with every method in ``methods`` (a translated value already)."""
        found = [
            name
            for name in self.semantic_map.types
            if all(self.semantic_map.method(name, m) for m in self.methods)
        ]
        return found[0] if len(found) == 1 else None


def _read_as_optimizer(
    name: ast.Name, parents: dict[int, ast.AST], methods: Collection[str]
) -> bool:
    """Whether ``name`` is read as ``name.m(...)`` (``m`` not among ``methods``) or as
    ``name.param_groups[i]["lr"]``."""
    member = parents.get(id(name))
    if not isinstance(name.ctx, ast.Load) or not isinstance(member, ast.Attribute):
        return False
    above = parents.get(id(member))
    if isinstance(above, ast.Call) and above.func is member:
        return member.attr not in methods
    top = parents.get(id(above))
    return (
        member.attr == "param_groups"
        and isinstance(above, ast.Subscript)
        and isinstance(top, ast.Subscript)
        and top.value is above
        and _constant_in(top.slice, ("lr",))
        and isinstance(top.ctx, ast.Load)
    )


_BUILTINS = frozenset(dir(builtins))
_NAMING_CALLS = frozenset({"getattr", "setattr", "delattr", "hasattr"})


def _names_attribute(node: ast.AST, attributes: Collection[str]) -> ast.expr | None:
    """The expression ``node`` is when it reaches an attribute named one of ``attributes``:
    ``x.name``, ``getattr(x, "name")`` (``setattr``, ``delattr``, ``hasattr``),
    ``vars(x)["name"]``, ``x.__dict__["name"]``; else None."""
    if isinstance(node, ast.Attribute) and node.attr in attributes:
        return node
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        named = node.func.id in _NAMING_CALLS and len(node.args) >= 2
        if named and _constant_in(node.args[1], attributes):
            return node
    if isinstance(node, ast.Subscript) and _constant_in(node.slice, attributes):
        value = node.value
        is_vars = isinstance(value, ast.Call) and ast.unparse(value.func) == "vars"
        if is_vars or (isinstance(value, ast.Attribute) and value.attr == "__dict__"):
            return node
    return None


def _constant_in(node: ast.expr, names: Collection[str]) -> bool:
    """Whether ``node`` is a string literal among ``names``."""
    return isinstance(node, ast.Constant) and node.value in names


def _clipped(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters with ``...``."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _parameter_name(definition: object, call: cst.Call, argument: cst.Arg) -> str | None:
    """The parameter of the ``ast`` function ``definition`` that ``argument`` of ``call``
    binds (None with star arguments)."""
    assert isinstance(definition, ast.FunctionDef)
    if any(a.star for a in call.args):
        return None
    if argument.keyword is not None:
        return argument.keyword.value
    positional = [a.arg for a in [*definition.args.posonlyargs, *definition.args.args]]
    index = [a for a in call.args if a.keyword is None].index(argument)
    return positional[index] if index < len(positional) else None


def _never_bound(facts: FileFacts, name: str) -> bool:
    """Whether the file of ``facts`` never binds ``name`` (no assignment, parameter,
    definition or import of it anywhere, no star import) and it is no builtin."""
    if name in facts.stored or name in facts.imports or facts.stars or hasattr(builtins, name):
        return False
    for node in ast_nodes.walk(facts.tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (alias.asname or alias.name).split(".")[0] == name for alias in node.names
        ):
            return False
    return True


def _unbound(facts: FileFacts, name: str) -> bool:
    """Whether the file of ``facts`` never binds ``name`` (no assignment, parameter,
    definition or import of it anywhere, no star import)."""
    if name in facts.stored or name in facts.imports or facts.stars:
        return False
    return not any(
        isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load)
        for node in ast_nodes.walk(facts.tree)
    )


def _imports_by_name(facts: FileFacts) -> bool:
    """Whether the file may reach a module by its name rather than by an import statement:
    it imports ``importlib``, ``runpy``, ``__main__``, ``pkgutil`` or ``sys.modules``, reads
    ``sys.modules``, or calls ``__import__``, ``exec`` or ``eval`` (a file that fails to
    parse never runs)."""
    if facts.tree is None:
        return False
    imported = facts.imports.values()
    if any(q in _NAMED_IMPORTERS or q.partition(".")[0] in _NAMED_IMPORTERS for q in imported):
        return True
    systems = {local for local, q in facts.imports.items() if q == "sys"}
    for node in ast_nodes.walk(facts.tree):
        called = node.func if isinstance(node, ast.Call) else None
        if isinstance(called, ast.Name) and called.id in _NAMED_IMPORT_CALLS:
            return True
        read = node.value if isinstance(node, ast.Attribute) and node.attr == "modules" else None
        if isinstance(read, ast.Name) and read.id in systems:
            return True
    return False


def cross_file_methods(semantic_map: SemanticMap) -> frozenset[str]:
    """The methods the map rewrites on an optimizer another file passes or returns (the
    ``step()`` and ``zero_grad()`` roles): the only uses such a value may have."""
    roles = (STEP, ZERO_GRAD)
    return frozenset(
        entry.method
        for entry in semantic_map.apis.values()
        if entry.role in roles and entry.method and not entry.attribute
    )


def may_change_through_other_files(
    path: str,
    semantic_map: SemanticMap,
    target_root: str | None = None,
    parsed: tuple[bytes, ast.Module] | None = None,
) -> bool:
    """Whether facts from other files can make the engine change ``path``, a file whose own
    bytes give it nothing to rewrite: asked of a file a pre-filter stage would drop.

    Such a file changes only when the engine types one of its receivers from another file,
    and the only such facts are ``CrossFile.parameter_type`` (every call site passes a
    translated optimizer) and ``CrossFile.returned_type`` (a builder of another file returns
    one); both require the value to be used only through ``cross_file_methods``. So the file is
    kept only when it calls one of those methods (by its bytes, then its ``ast``) and one of
    those two facts is positive for it, asked of the index exactly as the engine asks, except
    that every constructor found is assumed to translate unless the map escapes it always (the
    engine's dry run of its file is not made here: kept, never dropped, on that account). An
    unknown fact types nothing, so it changes nothing in a file with nothing of its own to
    rewrite. ``parsed``: the file's bytes and ``ast`` when the caller parsed it already (one
    parse per file)."""
    methods = cross_file_methods(semantic_map)
    absolute = os.path.abspath(path)
    index = index_for(repository_root(absolute))
    if not methods or not index.complete:
        return False
    data = index.source(absolute)
    if not any(has_attribute(data, method.encode("ascii")) for method in methods):
        return False
    facts = index.facts(absolute, parsed)
    if facts.tree is None:
        return False  # libcst reports it, as without the index
    never = frozenset(
        name
        for name, entry in semantic_map.apis.items()
        if entry.status == "escape" and entry.exact_status == "escape"
    )
    root = target_root or ""
    cross = CrossFile(index, absolute, semantic_map, _assume_translates, methods, root, never)
    stored = _stored_parameters(facts, methods)
    for function, param in [*_stepped_parameters(facts, methods), *stored]:
        fact = cross.parameter_type(function, param)
        if fact is not None and fact[0] is not None:
            return True
    words = _constructor_words(semantic_map, root)
    for callee in _called_names(facts):
        key = cross._question("returns", cross._absolute(callee))
        if remembered(key, partial(_returns, cross, callee, words)):
            return True
    for method in _assigned_method_calls(facts):
        fact = cross.method_call_type(method)
        if fact is not None and fact[0] is not None:
            return True
    return False


def _returns(cross: CrossFile, callee: str, words: tuple[bytes, ...]) -> bool:
    """Whether ``callee`` returns a translated optimizer (``CrossFile.returned_type``), asked
    only when it may build one (``_may_build_an_optimizer``)."""
    if not _may_build_an_optimizer(cross, callee, words):
        return False
    fact = cross.returned_type(callee)
    return fact is not None and fact[0] is not None


def _assigned_method_calls(facts: FileFacts) -> list[str]:
    """The methods ``m`` of every ``name = x.m(...)`` of the file: the method builders it may
    get a value from (``analysis/method_builders.py``)."""
    assert facts.tree is not None
    found = {
        node.value.func.attr
        for node in ast_nodes.walk(facts.tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and isinstance(node.value.func.value, ast.Name)
    }
    return sorted(found)


def _may_build_in_a_method(index: RepositoryIndex, method: str, words: tuple[bytes, ...]) -> bool:
    """Whether a file of the repository holds ``def method(`` and one of ``words`` (a map
    constructor's name): by bytes only, before ``CrossFile.method_call_type`` parses. (Only
    files holding the word ``method`` are looked at: never one for a name that is not ASCII.)
    While the pre-filter stages select files, from every such name of the repository, found
    once (``_defined_where_named``)."""
    if is_selecting():
        key = (id(index), "defined where named", words)
        defined = remembered(key, partial(_defined_where_named, index, words))
        return method.isascii() and method.encode() in defined
    definition = f"def {method}(".encode()
    return any(
        definition in index.source(path) and _names_one_of(path, index.source(path), words)
        for path in index.with_word(method)
    )


_DEFINED = re.compile(rb"def ([A-Za-z0-9_]+)\(")  # `def name(`, exactly as `_may_build_in_a_method`


def _defined_where_named(index: RepositoryIndex, words: tuple[bytes, ...]) -> frozenset[bytes]:
    """Every ``name`` that ``def name(`` spells (ASCII) in a file of the repository holding
    one of ``words``."""
    found: set[bytes] = set()
    for path in index.files:
        data = index.source(path)
        if b"def " in data and _names_one_of(path, data, words):
            found.update(_DEFINED.findall(data))
    return frozenset(found)


def _assume_translates(path: str, line: int) -> bool:
    """The stage does not make the engine's dry run of another file: a constructor may
    translate."""
    return True


def _stepped_parameters(facts: FileFacts, methods: frozenset[str]) -> Iterator[tuple[str, str]]:
    """(function, parameter) for each parameter of a module-level function of the file on
    which the function (or a function nested in it) calls one of ``methods``."""
    for name, function in facts.functions.items():
        args = function.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        params = {a.arg for a in every if a is not None}
        used: set[str] = set()
        for node in ast_nodes.walk(function):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in methods
                and isinstance(node.value, ast.Name)
                and node.value.id in params
            ):
                used.add(node.value.id)
        for param in sorted(used):
            yield name, param


def _stored_parameters(facts: FileFacts, methods: frozenset[str]) -> Iterator[tuple[str, str]]:
    """(class, parameter) for each parameter of the ``__init__`` of a module-level class of
    the file that it stores in ``self.<attr>`` (``stored_ast.stored_attribute``) and on which
    the class calls one of ``methods`` (``self.<attr>.step()``)."""
    for name, owner in facts.classes.items():
        called = {
            node.value.attr
            for node in ast_nodes.walk(owner)
            if isinstance(node, ast.Attribute)
            and node.attr in methods
            and isinstance(node.value, ast.Attribute)
        }
        init = class_init(owner) if called else None  # nothing stepped: nothing to store
        for arg in init.args.args[1:] if init is not None else []:
            stored = stored_attribute(owner, arg.arg)
            if not isinstance(stored[0], int) and stored[0] in called:
                yield name, arg.arg


def _called_names(facts: FileFacts) -> list[str]:
    """Every name a call of the file may call through its imports (absolute, relative ones
    made absolute) or its own module-level functions: the builders it may get a value from,
    directly or through a builder of its own (``Builders.built``)."""
    assert facts.tree is not None
    names: set[str] = set()
    for node in ast_nodes.walk(facts.tree):
        if isinstance(node, ast.Call):
            names.update(_call_names(node.func, facts))
    return sorted(names)


_NAMED: dict[tuple[str, tuple[bytes, ...]], tuple[bytes, bool]] = {}


def _names_one_of(path: str, data: bytes, words: tuple[bytes, ...]) -> bool:
    """Whether ``data``, the bytes of ``path``, hold one of ``words`` (remembered for the last
    bytes of each file: a callee's file is asked about once for every file that calls it)."""
    key = (path, words)
    known = _NAMED.get(key)
    if known is None or known[0] is not data:
        known = (data, _one_of(words).search(data) is not None)
        _NAMED[key] = known
    return known[1]


@functools_cache
def _one_of(words: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """A pattern found in some bytes exactly when one of ``words`` is: the words holding no
    other of them, as alternatives (a word holding another is found only where that one is).
    One scan instead of one per word: twice as fast over torch's sources (42 words, 34 left);
    spelt as a trie (``word_trie``: no kept word begins another, each holds none)."""
    kept = sorted({w for w in words if not any(o != w and o in w for o in words)})
    return trie_pattern(kept)


def _constructor_words(semantic_map: SemanticMap, target_root: str) -> tuple[bytes, ...]:
    """The last names of the map's APIs that build a value of a declared type (``AdamW``),
    and the target's name: one of them is in the file of a builder ``returned_type`` types."""
    names = {
        name.rpartition(".")[2]
        for name in semantic_map.apis
        if semantic_map.canonical_type(name) is not None
    }
    return tuple(sorted(n.encode("ascii") for n in {*names, target_root} if n))


def _may_build_an_optimizer(cross: CrossFile, callee: str, words: tuple[bytes, ...]) -> bool:
    """Whether ``callee`` is a module-level function of the repository whose every ``return``
    is a call of one map constructor or one under the target's name: what
    ``CrossFile.returned_type`` checks after the (costlier) uses of its value. A file whose
    bytes hold none of ``words`` is not parsed."""
    split = cross.index.split(cross._absolute(callee))
    if split is None:
        return False
    path = cross.index.file_of(split[0])
    if path is None or not _names_one_of(path, cross.index.source(path), words):
        return False
    returned = cross.index.returned(*split)
    if isinstance(returned, Unknown) or returned.constructor is None:
        return False
    name = returned.constructor
    root = name.partition(".")[0]
    return (bool(cross.target_root) and root == cross.target_root) or (
        name in cross.semantic_map.apis and name not in cross.never_translated
    )


def _call_names(func: ast.expr, facts: FileFacts) -> set[str]:
    """What ``func`` may name through the file's imports (every one bound to its first name)
    or its own module-level functions."""
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return set()
    rest = "".join(f".{part}" for part in reversed(parts))
    shadowed = (facts.shadowed.get(func.id + suffix) for suffix in ("", "\0"))
    imported = [facts.imports.get(func.id), *shadowed]
    names = {f"{found}{rest}" for found in imported if found}
    if func.id in facts.functions:
        names.add(f"{facts.module}.{func.id}{rest}")
    return names


def _own(node: ast.AST) -> Iterator[ast.AST]:
    """``node``'s own code: its descendants outside functions, lambdas and classes in it."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield child
        yield from _own(child)


def _exits(statement: ast.stmt) -> bool:
    """Whether ``statement`` holds a ``return`` or ``raise`` of its own."""
    nodes = [statement, *_own(statement)]
    return any(isinstance(n, (ast.Return, ast.Raise)) for n in nodes)


def _loop_exit(body: list[ast.stmt]) -> ast.stmt | None:
    """The first statement of a loop's ``body`` that can leave the loop or skip the rest of
    its body: a ``return``/``raise``, or a ``break``/``continue`` not in a nested loop's body."""
    for statement in body:
        if _exits(statement) or _jumps_here(statement):
            return statement
    return None


def _jumps_here(node: ast.AST) -> bool:
    """A ``break``/``continue`` of the loop ``node`` is in (not of a loop nested in it)."""
    if isinstance(node, (ast.Break, ast.Continue)):
        return True
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
        return False
    if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
        return any(_jumps_here(s) for s in node.orelse)  # its body's jumps are its own
    return any(_jumps_here(child) for child in ast.iter_child_nodes(node))


def _iterates_problem(
    name: str, loop: ast.For, definition: ast.FunctionDef, call: cst.Call, measured: str | None
) -> str | None:
    """With ``--steps-per-epoch 'len(X)'`` (``measured`` = ``X``): why ``loop`` may not run
    ``len(X)`` times: it iterates neither the parameter ``call`` binds ``X`` to nor
    ``enumerate()`` of it. None without ``measured``."""
    if measured is None:
        return None
    passed = [a for a in call.args if cst.Module([]).code_for_node(a.value).strip() == measured]
    param = _parameter_name(definition, call, passed[0]) if len(passed) == 1 else None
    iterated = loop.iter
    if (
        isinstance(iterated, ast.Call)
        and isinstance(iterated.func, ast.Name)
        and iterated.func.id == "enumerate"
        and iterated.args
    ):
        iterated = iterated.args[0]
    if param is not None and isinstance(iterated, ast.Name) and iterated.id == param:
        return None
    return (
        f"the batch loop of {name} iterates `{ast.unparse(iterated)}`, which is not provably "
        f"`{measured}` of --steps-per-epoch"
    )


def _libcst_tree(index: RepositoryIndex, path: str) -> cst.MetadataWrapper:
    """Another file's libcst tree, wrapped for its positions (``_foreign_change``). Asked
    through ``RepositoryIndex.about``: parsed once per content per process, not once per
    converted file asking (checkout-large, -j 1: 19 parses instead of 30, for 534 questions)."""
    return cst.MetadataWrapper(cst.parse_module(index.source(path)), unsafe_skip_copy=True)


def _freezers(
    facts: FileFacts, spec: ParameterSpec, direct: bool = True
) -> list[tuple[ast.AST, frozenset[str] | None]]:
    """Each freeze of the file's tree with the names of the module-level functions and classes
    that may run it (the one holding it, and those whose body names one of them, to a
    fixpoint); None for a freeze run at import (module-level code, a class body outside its
    methods) or in a decorated function or class (a registry may call it unnamed). In a file
    not ``direct``ly imported, a ``setattr`` of a computed name in a method, or on ``self``
    (``_in_methods``), is none: ignite's ``Engine`` loading its state with
    ``setattr(self.state, k, v)`` and its schedulers' ``setattr(engine.state, name, v)``
    would escape ~60 optimizers of its tests. A method holding the attribute's name as a string
    (``def freeze(self, attr='requires_grad')``: ``_unnamed_setters``) keeps its setattr.
    Not seen: such a setattr freezing a tensor otherwise."""
    tree = facts.tree
    assert tree is not None
    tops = [s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.ClassDef))]
    mentioned = {t.name: {n.id for n in ast_nodes.walk(t) if isinstance(n, ast.Name)} for t in tops}
    found: list[tuple[ast.AST, frozenset[str] | None]] = []
    selves = _on_self(tree, spec.tensor_classes)
    if not direct:
        selves |= _in_methods(tree) & _unnamed_setters(tree, spec.freeze_attributes)
    callees = _callees(tree)
    for statement in tree.body:
        deferred = (
            {id(n) for n in ast_nodes.walk(_defined_body(statement))}
            if _defines(statement)
            else set()
        )
        freezes = (
            n
            for n in ast_nodes.walk(statement)
            if _freezes(n, spec, facts.imports, selves, callees)
        )
        for node in freezes:
            if id(node) not in deferred or statement.decorator_list:  # type: ignore[attr-defined]
                found.append((node, None))
                continue
            names = {statement.name}  # type: ignore[attr-defined]
            while True:
                more = {t for t, used in mentioned.items() if used & names} - names
                if not more:
                    break
                names |= more
            found.append((node, frozenset(names)))
    return found


@functools_cache
def _replacement_tails(apis: frozenset[str]) -> frozenset[tuple[str, ...]]:
    """The last two parts of each API of the map and of each module holding one
    (``("optim", "SGD")``, ``("torch", "optim")``): how a replacing assignment ends, however
    the file imported the module (``import torch.optim as optim``, an import in a function)."""
    names = set(apis) | {api.rpartition(".")[0] for api in apis}
    return frozenset(tuple(name.split(".")[-2:]) for name in names if "." in name)


# ``owner.name =`` (or an augmented or annotated assignment). The lookbehind adds no match and
# drops none: a start right after a letter or ``_`` continues the identifier whose own start
# was tried first with the same rest of the line (failed, or matched and consumed it); it
# spares the engine re-reading every identifier from each of its letters (the same matches
# on all 9,468 files of the five corpora; 3.7x faster on pytorch_lightning's files).
_ATTRIBUTE_WRITE = re.compile(
    rb"(?<![A-Za-z_])"
    rb"([A-Za-z_][A-Za-z0-9_]*)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=\n]*)?[-+*/@%&|^<>]*=(?!=)"
)
# ``setattr``, ``sys.modules``, an item write or update of ``__dict__`` or ``vars(...)``: each
# alternative searched only in a file holding its word (a word found by ``bytes.find``; the
# regular expression's alternation was tried at every position of every file)
_NAMESPACE_WRITES = (
    ((b"setattr",), re.compile(rb"\bsetattr\b")),
    ((b"modules",), re.compile(rb"\bsys\s*\.\s*modules\b")),
    (
        (b"__dict__", b"vars"),
        re.compile(
            rb"(?:__dict__|\bvars\s*\([^()]*\))\s*(?:\[|\.\s*(?:update|setdefault|__setitem__)\b)"
        ),
    ),
)


def _namespace_write(data: bytes) -> bool:
    """Whether ``data`` holds a namespace write (``_NAMESPACE_WRITES``)."""
    return any(
        any(word in data for word in words) and pattern.search(data) is not None
        for words, pattern in _NAMESPACE_WRITES
    )


@functools_cache
def _replacement_names(
    apis: frozenset[str],
) -> tuple[frozenset[bytes], frozenset[tuple[bytes, bytes]]]:
    """What ``_holds_replacement`` looks for: the last part of each API of the map that is
    no member of another (``SGD``, ``clip_grad_norm_``) and of each module holding one
    (``optim``); and for a member (``torch.optim.Optimizer.zero_grad``), the last two parts
    (``Optimizer``, ``zero_grad``): ``self.state = ...`` replaces nothing."""
    names: set[bytes] = set()
    members: set[tuple[bytes, bytes]] = set()
    for api in apis:
        owner, _, last = api.rpartition(".")
        if owner in apis or owner.rpartition(".")[2][:1].isupper():  # a class: `Optimizer`
            members.add((owner.rpartition(".")[2].encode(), last.encode()))
        else:
            names.add(last.encode())
            names.update(p.encode() for p in owner.split(".")[1:] if not p[:1].isupper())
    return frozenset(names), frozenset(members)


def _holds_replacement(
    data: bytes, names: tuple[frozenset[bytes], frozenset[tuple[bytes, bytes]]]
) -> bool:
    """What a file replacing an API of the map must hold (``_replacement``'s necessary
    condition, read on its bytes): an assignment to an attribute named as an API or module
    of the map (``.SGD =``, ``.optim =``), or to a member through its type (``Optimizer.
    zero_grad =``, ``SGD.step =``); ``setattr``, ``sys.modules``, or an item write or update of
    ``__dict__`` or ``vars(...)``."""
    if _namespace_write(data):
        return True
    plain, members = names
    writes = set(_ATTRIBUTE_WRITE.findall(data))  # (owner, name) pairs, read in C
    return not writes.isdisjoint(members) or not plain.isdisjoint(chain.from_iterable(writes))


def _searches(holds: Callable[[bytes], bool], index: RepositoryIndex, path: str) -> bool:
    return holds(index.source(path))


def _replacement(
    facts: FileFacts, *, apis: frozenset[str], tails: frozenset[tuple[str, ...]]
) -> tuple[str, ast.AST] | None:
    """``(name, statement)`` of the first assignment (or ``setattr`` call) of the file whose
    target is an API of the map, a member of one or a module holding them: by the file's
    imports (``_qualified``), or spelled with the same last two parts (``_replacement_tails``);
    ``setattr`` of a module holding them, with any name. The ``ast`` twin of
    ``plan_models._first_replacement`` (None when the file holds none)."""
    tree = facts.tree
    assert tree is not None
    modules = {api.rpartition(".")[0] for api in apis}
    roots = {api.partition(".")[0] for api in apis}
    nodes = ast_nodes.walk(tree)
    aliases = {  # `o = torch.optim`: o -> torch.optim
        n.targets[0].id: _qualified(n.value, facts.imports)
        for n in nodes
        if isinstance(n, ast.Assign)
        and len(n.targets) == 1
        and isinstance(n.targets[0], ast.Name)
        and isinstance(n.value, (ast.Name, ast.Attribute))
    }
    for node in nodes:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"update", "setdefault", "__setitem__"}
        ):
            targets = [node.func.value]  # `torch.optim.__dict__.update(SGD=X)`
        for target in targets:
            owner = _namespace_owner(target, facts)
            if owner is not None and (owner == "" or owner.partition(".")[0] in roots):
                return owner or "sys.modules", node
        if not targets and (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and len(node.args) >= 2
        ):
            named = node.args[1]
            attribute = named.value if isinstance(named, ast.Constant) else None
            owner = _qualified(node.args[0], facts.imports)
            name = f"{owner}.{attribute}" if isinstance(attribute, str) else owner
            if owner in modules or name in apis or _ends_like(name, tails):
                return name, node
            continue
        for target in (t for t in targets if isinstance(t, ast.Attribute)):
            name = _qualified(target, facts.imports)
            head = name.partition(".")[0]
            if (
                isinstance(target.value, ast.Name)
                and aliases.get(head)
                and head not in facts.imports
            ):
                name = f"{aliases[head]}.{target.attr}"
            if name in apis or name in modules or any(name.startswith(a + ".") for a in apis):
                return name, node
            if _ends_like(name, tails):
                return name, node
    return None


def _ends_like(name: str, tails: frozenset[tuple[str, ...]]) -> bool:
    """Whether the dotted ``name`` ends with the last two parts of an API or module of the
    map, or with those of an API and one member (``Optimizer.zero_grad`` of
    ``torch.optim.Optimizer.zero_grad``)."""
    parts = tuple(name.split("."))
    return len(parts) >= 2 and parts[-2:] in tails


def _hook_call(facts: FileFacts, *, spec: ParameterSpec) -> ast.Call | None:
    """The first call of the file's tree registering a hook: a method or function of the
    map's ``hook_methods``, by the name written or the one it imports. The ``ast`` twin of
    ``plan_places._first_hook``."""
    tree = facts.tree
    assert tree is not None
    methods = spec.hook_methods
    for node in ast_nodes.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _names_hook(node.value, methods):
            return node  # `reg = p.register_hook`
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in methods:
            return node
        if any(_names_hook(a, methods) for a in node.args):
            return node  # `getattr(p, "register_hook")(f)`, `apply(p.register_hook, f)`
        if isinstance(func, ast.Name) and (
            func.id in methods or facts.imports.get(func.id, "").rpartition(".")[2] in methods
        ):
            return node
    return None


def _names_hook(value: ast.expr | None, methods: frozenset[str]) -> bool:
    """``p.register_hook`` or ``"register_hook"`` (the ``ast`` twin of
    ``plan_places._names_hook``)."""
    if isinstance(value, ast.Attribute):
        return value.attr in methods
    return isinstance(value, ast.Constant) and value.value in methods


def _namespace_owner(target: ast.expr, facts: FileFacts) -> str | None:
    """What a write through a namespace changes (the ``ast`` twin of
    ``plan_models._namespace_write``): the qualified owner of ``m.__dict__`` / ``vars(m)``,
    or ``sys.modules`` (with its key when a literal) under ``target``; None otherwise."""
    node: ast.expr = target
    while True:
        if isinstance(node, ast.Attribute) and node.attr == "__dict__":
            return _qualified(node.value, facts.imports)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "vars"
            and node.args
        ):
            return _qualified(node.args[0], facts.imports)
        if (
            isinstance(node, ast.Subscript)
            and _qualified(node.value, facts.imports) == "sys.modules"
        ):
            key = node.slice
            return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else ""
        if not isinstance(node, (ast.Attribute, ast.Subscript)):
            return None
        node = node.value


def _complex_node(facts: FileFacts, *, spec: ParameterSpec) -> ast.expr | None:
    """The first name or attribute spelled as one of the map's ``complex_names``
    (``torch.cfloat``, ``w.cdouble()``, ``torch.polar(a, b)``; an import of one) or imaginary
    literal (``1j``) of the file's tree, in the order ``ast.walk`` meets them; None when it
    holds none. The ``ast`` twin of ``plan_places._first_complex``."""
    tree = facts.tree
    assert tree is not None
    names = spec.complex_names
    for node in ast_nodes.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, complex):
            return node
        if isinstance(node, ast.Attribute) and node.attr in names:
            return node
        if isinstance(node, ast.Name) and node.id in names:
            return node
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if {alias.name.rpartition(".")[2], alias.asname} & names:
                    return ast.Name(id=alias.asname or alias.name, lineno=node.lineno)
    return None


def _loaded_into_self(facts: FileFacts, *, spec: ParameterSpec) -> ast.Call | None:
    """The first call of a ``loaded_models`` function whose value a method of a class
    defining ``forward`` stores on ``self`` (in the assignment's value, anywhere)."""
    tree = facts.tree
    assert tree is not None
    for node in ast_nodes.walk(tree):
        if not isinstance(node, ast.ClassDef) or not defines_method(node, "forward"):
            continue
        for inner in ast_nodes.walk(node):
            if not isinstance(inner, ast.Assign | ast.AnnAssign) or inner.value is None:
                continue
            targets = inner.targets if isinstance(inner, ast.Assign) else [inner.target]
            selves = [
                t
                for target in targets
                for t in ast.walk(target)
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
            ]
            if not any(t.value.id == "self" for t in selves):  # type: ignore[attr-defined]
                continue
            for call in (c for c in ast.walk(inner.value) if isinstance(c, ast.Call)):
                written = ast.unparse(call.func)
                if spec.loading_call(written, _qualified(call.func, facts.imports)):
                    return call
    return None


def _defines_def(tree: ast.AST, name: str) -> bool:
    """``tree`` holds a ``def name`` (a function or method, at any depth)."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef)
    return any(isinstance(n, kinds) and n.name == name for n in ast_nodes.walk(tree))


def _skip_last(found: tuple[ast.AST, str] | None) -> tuple[str, ast.AST] | None:
    """``(why, node)`` of a skip: the node last, as ``_first_linked`` reads an answer."""
    return (found[1], found[0]) if found is not None else None


def _skip_code(node: ast.AST) -> str:
    """The code of a skip, its first line only (a loop or an ``if``: its header)."""
    text = ast.unparse(node).split("\n")[0].strip()
    return " ".join(text.split())


def _module_name(path: str) -> str:
    """``train`` of ``.../train.py``."""
    return os.path.splitext(os.path.basename(path))[0]


def _own_freezes(facts: FileFacts, spec: ParameterSpec) -> list[ast.AST]:
    """The freezes (``_freezes``) anywhere in the file's tree, in the order ``ast.walk``
    meets them."""
    tree = facts.tree
    assert tree is not None
    selves = _on_self(tree, spec.tensor_classes)
    callees = _callees(tree)
    return [n for n in ast_nodes.walk(tree) if _freezes(n, spec, facts.imports, selves, callees)]


def _callees(tree: ast.AST) -> set[int]:
    """The ids of the callees of the calls of ``tree`` (``_freezes``: a freezing method read
    other than as one is a freeze)."""
    return {id(n.func) for n in ast_nodes.walk(tree) if isinstance(n, ast.Call)}


def _defines(statement: ast.stmt) -> bool:
    return isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))


def _namers(facts: FileFacts) -> dict[str, set[str | None]]:
    """Each identifier the file's code names (a name, an attribute, a word of a string other
    than a docstring or ``__all__``, the original of an import's alias) with the module-level
    functions and classes whose code names it; None for code run at import (module-level
    code; a def's defaults, a class's bases and body outside its methods; the whole of a
    decorated function or class, which a registry may call unnamed)."""
    tree = facts.tree
    assert tree is not None
    found: dict[str, set[str | None]] = {}
    docstrings = {id(n) for n in _docstrings(tree)}

    def add(node: ast.AST, unit: str | None) -> None:
        for word in _mentions(node, docstrings):
            found.setdefault(word, set()).add(unit)

    for statement in tree.body:
        if not _defines(statement) or statement.decorator_list:  # type: ignore[attr-defined]
            add(statement, None)
            continue
        for part in _run_at_definition(statement):  # type: ignore[arg-type]
            add(part, None)
        add(_defined_body(statement), statement.name)  # type: ignore[arg-type, attr-defined]
    return found


def _run_at_definition(
    statement: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
) -> list[ast.AST]:
    """What runs where a module-level function or class is defined: its defaults and
    annotations, or its bases and keywords (a class body runs too, but its methods do not)."""
    if isinstance(statement, ast.ClassDef):
        body = [
            s for s in statement.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        return [*statement.bases, *statement.keywords, *body]
    arguments = statement.args
    defaults = [*arguments.defaults, *(d for d in arguments.kw_defaults if d is not None)]
    return defaults


def _defined_body(statement: ast.stmt) -> ast.AST:
    """The code of a function, or the methods of a class, as one node."""
    if isinstance(statement, ast.ClassDef):
        methods = [s for s in statement.body if _defines(s)]
        return ast.Module(body=methods, type_ignores=[])
    return ast.Module(body=getattr(statement, "body", []), type_ignores=[])


def _mentions(node: ast.AST, skipped: Collection[int]) -> set[str]:
    """The identifiers ``node``'s code names (``_namers``; ``skipped``: the ids of the
    docstrings)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Name):
            found.add(current.id)
        elif isinstance(current, ast.Attribute):
            found.add(current.attr)
        elif isinstance(current, ast.alias) and current.asname:
            found.add(current.name.rpartition(".")[2])
        elif isinstance(current, ast.Constant) and isinstance(current.value, str):
            if id(current) not in skipped:
                found.update(w.decode() for w in _IDENTIFIER.findall(current.value.encode()))
        elif isinstance(current, (ast.Assign, ast.AugAssign)) and _exports(current):
            continue
        stack.extend(ast.iter_child_nodes(current))
    return found


def _docstrings(node: ast.AST) -> Iterator[ast.Constant]:
    """The docstrings of ``node`` and the functions and classes in it."""
    for holder in ast_nodes.walk(node):
        if isinstance(holder, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = holder.body[0] if holder.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                yield first.value


def _exports(statement: ast.Assign | ast.AugAssign) -> bool:
    """``__all__ = [...]`` (or ``+=``): names listed, not run."""
    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
    return any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)


def _computed_lookup(facts: FileFacts, file_of: Callable[[str], str | None]) -> bool:
    """Whether the file finds a function by a computed name where it may be one of the
    repository's: ``globals()``, ``vars(module)``, ``getattr(module, name)`` (``module`` an
    import of a repository module, or ``sys.modules[...]``) with ``name`` not a string."""
    assert facts.tree is not None
    for node in ast_nodes.walk(facts.tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id == "globals":
            return True
        if node.func.id not in ("getattr", "vars") or not node.args:
            continue
        if node.func.id == "getattr" and (
            len(node.args) < 2 or isinstance(node.args[1], ast.Constant)
        ):
            continue
        held = node.args[0]
        if isinstance(held, ast.Subscript) and ast.unparse(held.value) == "sys.modules":
            return True
        if isinstance(held, ast.Name) and held.id in facts.imports:
            qualified = facts.imports[held.id]
            if file_of(qualified) is not None:
                return True
    return False


def _freezes(
    node: ast.AST,
    spec: ParameterSpec,
    imports: dict[str, str],
    selves: Collection[int] | None = (),
    callees: Collection[int] = (),
) -> bool:
    """``x.requires_grad = v`` (or ``op=``), ``x.requires_grad_(v)``,
    ``x.__setattr__('requires_grad', v)`` (``setter_methods``), ``getattr(x,
    'requires_grad_')(v)`` (``getter_functions``; ``getattr(x, 'detach_')()``) or
    ``setattr(x, 'requires_grad', v)`` (or ``setattr(x, name, v)``: a computed name may be it,
    unless the call is one of ``selves``, on ``self`` of a class based on no tensor class:
    ``_on_self``; never with ``selves`` None; ``imports``: the file's local name -> qualified
    name) with ``v`` not a
    literal True (``requires_grad_()`` alone unfreezes), or parameters made frozen
    (``_makes_frozen``); the ``ast`` twin of ``plan._first_freeze``, with its probe s41
    freezes: an unpacking or a loop's, a comprehension's or a ``with``'s target storing a
    freeze attribute (any value), a freezing method or function read other than as a callee
    (``callees``: the ids of the callees of the file's calls; ``f = p.requires_grad_``,
    ``partial(setattr, ...)``), a string naming a freezing method given to a call
    (``methodcaller('requires_grad_', False)``), a freeze attribute or a computed name given
    to one of ``attribute_callers``."""

    def true(value: ast.expr) -> bool:
        return isinstance(value, ast.Constant) and value.value is True

    attributes = spec.freeze_attributes
    if isinstance(node, ast.Call) and _makes_frozen(node, spec):
        return True
    if isinstance(node, (ast.Attribute, ast.Name)):  # read, not called
        word = node.attr if isinstance(node, ast.Attribute) else node.id
        if id(node) in callees or word not in _freeze_words(spec):
            return False
        if isinstance(node, ast.Attribute) and word in spec.freeze_references:
            return True
        return _qualified(node, imports) in spec.freeze_setters
    if isinstance(node, ast.Assign):
        direct = any(isinstance(t, ast.Attribute) and t.attr in attributes for t in node.targets)
        unpacked = any(_stores(t, attributes) for t in node.targets if isinstance(t, _UNPACKING))
        return unpacked or (direct and not true(node.value))
    if isinstance(node, (ast.For, ast.AsyncFor)):  # `for p.requires_grad in ...`
        return _stores(node.target, attributes)
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return any(i.optional_vars and _stores(i.optional_vars, attributes) for i in node.items)
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return any(_stores(g.target, attributes) for g in node.generators)
    if isinstance(node, ast.AugAssign):
        return isinstance(node.target, ast.Attribute) and node.target.attr in attributes
    if isinstance(node, ast.AnnAssign):  # `p.requires_grad: bool = False`
        target, value = node.target, node.value
        frozen = value is not None and not true(value)
        return frozen and isinstance(target, ast.Attribute) and target.attr in attributes

    def names(name: ast.expr, named: Collection[str]) -> bool:
        if isinstance(name, ast.Constant):
            return name.value in named
        return selves is not None and id(node) not in selves  # computed: may be requires_grad

    if not isinstance(node, ast.Call):
        return False
    values = [*node.args, *(k.value for k in node.keywords)]
    func = node.func
    if spec.freezing_call(ast.unparse(func), _qualified(func, imports)):
        return True  # `get_peft_model(model, config)`
    if isinstance(func, ast.Attribute) and func.attr in spec.freeze_calls:
        return True  # `p.detach_()`
    if isinstance(func, ast.Attribute) and func.attr in spec.freeze_methods:
        return bool(values) and not true(values[0])
    if isinstance(func, ast.Attribute) and func.attr in spec.setter_methods and len(node.args) == 2:
        return names(node.args[0], attributes) and not true(node.args[1])
    if (
        isinstance(func, ast.Call)
        and len(func.args) >= 2
        and _qualified(func.func, imports) in spec.getter_functions
    ):  # `getattr(p, "requires_grad_")(v)`
        if names(func.args[1], spec.freeze_calls):
            return True
        return names(func.args[1], spec.freeze_methods) and bool(values) and not true(values[0])
    if len(node.args) == 3:
        named = names(node.args[1], attributes)
        setter = _qualified(func, imports) in spec.freeze_setters
        if named and setter and not true(node.args[2]):
            return True
    return _names_freeze(node, spec, imports, id(node) in callees)


_UNPACKING = (ast.Tuple, ast.List, ast.Starred)


def _stores(target: ast.expr, attributes: Collection[str]) -> bool:
    """``target`` (a store) is or unpacks into an attribute named one of ``attributes``."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return any(_stores(e, attributes) for e in target.elts)
    if isinstance(target, ast.Starred):
        return _stores(target.value, attributes)
    return isinstance(target, ast.Attribute) and target.attr in attributes


def _freeze_words(spec: ParameterSpec) -> frozenset[str]:
    """``plan_places.freeze_words``: freezing methods and functions, by their last name."""
    setters = {name.rpartition(".")[2] for name in spec.freeze_setters}
    return spec.freeze_references | setters


def _names_freeze(
    call: ast.Call, spec: ParameterSpec, imports: dict[str, str], is_callee: bool
) -> bool:
    """The ``ast`` twin of ``plan_places._names_freeze``: a string naming a freezing method
    given to ``call`` (not the name of a ``getattr`` called at once: ``is_callee``), or
    ``call`` one of ``attribute_callers`` given a freeze attribute or a computed name."""
    func = call.func
    qualified = _qualified(func, imports) if isinstance(func, (ast.Name, ast.Attribute)) else None
    if qualified in spec.getter_functions and is_callee:
        return False

    def last(value: ast.expr) -> str | None:
        constant = value.value if isinstance(value, ast.Constant) else None
        return constant.rpartition(".")[2] if isinstance(constant, str) else None

    named = [last(a) for a in call.args]
    if any(name in spec.freeze_references for name in named):
        return True
    if qualified in spec.attribute_callers:
        return any(name is None or name in spec.freeze_attributes for name in named)
    return False


def _freeze_code(node: ast.AST, facts: FileFacts) -> str:
    """The code of a freeze of the file ``facts``, for a reason: a loop's or a ``with``'s
    header, not its body; for a freezing method or function read other than as a callee, the
    nearest call or assignment around it in its statement (``put = setattr``)."""
    if isinstance(node, (ast.Name, ast.Attribute)):
        parents = facts.nodes().parents
        parent = parents.get(id(node))
        while parent is not None and not isinstance(parent, ast.stmt):
            if isinstance(parent, ast.Call):
                return ast.unparse(parent)
            parent = parents.get(id(parent))
        return ast.unparse(parent if isinstance(parent, ast.Assign | ast.AnnAssign) else node)
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return f"for {ast.unparse(node.target)} in {ast.unparse(node.iter)}"
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return "with " + ", ".join(ast.unparse(item) for item in node.items)
    return ast.unparse(node)


def _makes_frozen(call: ast.Call, spec: ParameterSpec) -> bool:
    """``nn.Parameter(w, requires_grad=v)`` (the map's ``freeze_keywords``) with ``v`` (the
    keyword or the second positional argument) given and not a literal True (a copied flag,
    ``q.requires_grad``, too: ``q`` may be no tensor), or ``nn.Embedding.from_pretrained(w)``
    (``frozen_by_default``) without its keyword a literal False."""
    written = ast.unparse(call.func)

    def given(keyword: str) -> ast.expr | None:
        values = [k.value for k in call.keywords if k.arg == keyword] + call.args[1:2]
        return values[0] if values else None

    def literal(value: ast.expr | None, constant: bool) -> bool:
        return isinstance(value, ast.Constant) and value.value is constant

    def matches(callee: str) -> bool:
        return written == callee or written.endswith("." + callee)

    # `**mapping` / `*args` may hold the keyword (probe s41 F10)
    starred = any(isinstance(a, ast.Starred) for a in call.args)
    unpacked = starred or any(k.arg is None for k in call.keywords)
    positional = [a for a in call.args if not isinstance(a, ast.Starred)]
    for callee, keyword in spec.freeze_keywords:
        if matches(callee):
            value = given(keyword)
            if value is None:
                return unpacked
            return not literal(value, True)
    for callee, keyword in spec.frozen_by_default:
        if matches(callee):
            return not literal(given(keyword), False)
    for callee, keyword in spec.freeze_flags:
        if matches(callee):
            flag = [k.value for k in call.keywords if k.arg == keyword]
            if not starred:  # `nn.Embedding(..., None, True)`
                places = spec.freeze_flag_positions
                flag += [positional[p] for c, p in places if matches(c) and p < len(positional)]
            if not flag:
                return unpacked
            return not literal(flag[0], False)
    return False


def _unnamed_setters(tree: ast.Module, attributes: Collection[str]) -> set[int]:
    """The ids of the calls ``f(x, name, v)`` with a computed ``name`` outside every function
    that holds one of ``attributes`` as a string (``'requires_grad'``: the name it may
    compute): in a file imported only through another, such a call is no freeze."""
    named: set[int] = set()
    for function in ast_nodes.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        inside = list(ast_nodes.walk(function))
        if any(isinstance(n, ast.Constant) and n.value in attributes for n in inside):
            named |= {id(n) for n in inside}
    return {
        id(n)
        for n in ast_nodes.walk(tree)
        if isinstance(n, ast.Call)
        and len(n.args) == 3
        and not isinstance(n.args[1], ast.Constant)
        and id(n) not in named
    }


def _on_self(tree: ast.Module, tensor_classes: frozenset[str]) -> set[int]:
    """The ids of the calls ``f(s, ...)`` whose first argument is the ``self`` of a method
    (not a staticmethod) of a class none of whose bases may be a tensor class
    (``parameters.may_be_tensor_class``): such an object is no tensor."""
    found: set[int] = set()

    def walk(node: ast.AST, own: str | None, in_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                bases = [ast.unparse(b) for b in child.bases]
                tensor = any(may_be_tensor_class(b, tensor_classes) for b in bases)
                walk(child, None, not tensor)
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                names = [a.arg for a in (*child.args.posonlyargs, *child.args.args)]
                static = not isinstance(child, ast.Lambda) and any(
                    ast.unparse(d) == "staticmethod" for d in child.decorator_list
                )
                inner = own if own not in names and own not in _other_args(child) else None
                if in_class and names and not static and not isinstance(child, ast.Lambda):
                    inner = names[0]
                walk(child, inner, False)
                continue
            if isinstance(child, ast.Call) and own and child.args:
                first = child.args[0]
                if isinstance(first, ast.Name) and first.id == own:
                    found.add(id(child))
            walk(child, own, False if not isinstance(child, ast.stmt) else in_class)

    walk(tree, None, False)
    return found


def _in_methods(tree: ast.Module) -> set[int]:
    """The ids of the calls in a method of a class of the module, and of the calls
    ``f(self, ...)`` or ``f(self.a.b, ...)`` anywhere (a wrapper a decorator puts on methods)."""
    found: set[int] = set()
    for owner in (n for n in ast_nodes.walk(tree) if isinstance(n, ast.ClassDef)):
        for method in (
            m for m in owner.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
        ):
            found.update(id(n) for n in ast_nodes.walk(method) if isinstance(n, ast.Call))
    for call in (n for n in ast_nodes.walk(tree) if isinstance(n, ast.Call) and n.args):
        held = call.args[0]
        while isinstance(held, ast.Attribute):
            held = held.value
        if isinstance(held, ast.Name) and held.id == "self":
            found.add(id(call))
    return found


def _other_args(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    arguments = function.args
    names = {a.arg for a in arguments.kwonlyargs}
    names |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
    return names


def _qualified(func: ast.expr, imports: dict[str, str]) -> str:
    """The qualified name a called ``func`` spells, through the file's ``imports`` (a bare name
    imported by none: a builtin)."""
    head, dot, rest = ast.unparse(func).partition(".")
    if head in imports:
        return imports[head] + dot + rest
    builtin = not dot or head in vars(builtins)  # `object.__setattr__`
    return f"builtins.{head}{dot}{rest}" if builtin else head + dot + rest


class _Walked:
    """The files of a walk (``RepositoryIndex.walk_imported_closure``) as a list read while
    the walk goes on: iterating reads the walk only as far as the loop goes."""

    def __init__(self, walk: Iterator[str]) -> None:
        self._walk = walk
        self.files: list[str] = []

    def __iter__(self) -> Iterator[str]:
        index = 0
        while True:
            if index == len(self.files):
                following = next(self._walk, None)
                if following is None:
                    return
                self.files.append(following)
            yield self.files[index]
            index += 1

    def everything(self) -> list[str]:
        """The files of the whole walk (read to its end)."""
        self.files.extend(self._walk)
        return self.files


_LISTED = 8  # torch uses of a returned optimizer named in a reason, at most


def _listed_uses(uses: list[Unknown], root: str) -> str:
    """``uses`` described one after the other (``file:line`` and what), the first
    ``_LISTED`` of them."""
    shown = "; ".join(use.describe(root) for use in uses[:_LISTED])
    more = len(uses) - _LISTED
    return shown + (f"; and {more} more" if more > 0 else "")
