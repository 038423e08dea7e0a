"""The second pre-filter stage: Python's ``ast`` decides which candidate files can change.

The byte pre-filter (``prefilter.py``) keeps every file whose bytes *spell* a map API; this stage
parses those files with ``ast`` (several times faster than libcst's parser) and keeps a file only
when the engine could find something to rewrite in it. It mirrors the engine's rules
(``rewrite/engine.py``: ``_wired_entry``, ``_wired_member``; ``analysis/resolver.py``), always
on the side of keeping:

* a call is rewritten only when its function resolves *through the file's imports* to a wired
  call API (``torch.optim.Adam``): the engine asks this of a call's function only
  (``dispatch._wired_call``), never follows a name bound to the API (``make =
  torch.optim.Adam; make(p)``) and changes no other reference to it (a base class, a default,
  a dictionary key, ``functools.partial``'s argument); a ``type`` entry's call (``GradScaler``,
  NNX's ``torch.compile``) changes nothing by itself (``spec/roles.TYPE``), so it counts here
  only as a constructor of its type. Here every called dotted expression
  (``a.b.c(...)``) is resolved through every import of the file that binds its first name, in
  any scope, and also as it is written: a file is kept when one of those names is a wired call
  API;
* a method (``opt.step()``) or attribute (``opt.param_groups``) is rewritten only when its
  receiver has a declared type ``T`` and ``T.step`` is a wired entry: the receiver is bound to a
  constructor call (an API that ``returns`` T), annotated with T (or an alias), passed by
  callers of this file that have one of those, or an unannotated parameter whose name matches
  T's ``parameter_names`` in a file that imports T's package. Here a file with such a member
  name of T as an attribute is kept when some *called* dotted expression resolves to a
  constructor of T (a map API whose ``SemanticMap.canonical_type`` is T: the engine types a
  value by a call of one, ``resolver._type_of_value``, and its builders and factories follow
  such a call of this file; a constructor only named, ``DistributedOptimizer(optim.SGD, ...)``
  or ``(torch.optim.SGD, torch.optim.LBFGS)``, types nothing), or some dotted expression inside
  a parameter's annotation resolves to T, an alias of T or a constructor of T (``o:
  optim.Adam``) and a member of T is read on a parameter of a function enclosing the read
  (``loss.backward()``: where an annotated parameter's type reaches, directly or through this
  file's callers; a name spelled like a parameter of another function, ``y = x`` or
  ``fake.cls.backward()`` on a local takes no type from it), or on an attribute of such a
  parameter in a file that calls one of its own classes by name (``self.opt.step()``: the
  engine types ``self.x`` by what the class's constructions in this file pass to its
  ``__init__``; other files' constructions are the cross-file question's;
  ``_Facts.read_on_parameters``), or when some parameter name matches
  T's ``parameter_names``, a member of T is read on a name spelled as that parameter, and the
  file imports T's root package anywhere (the guess types only the parameter's own name:
  ``o = optimizer`` or ``self.o = optimizer`` takes no type from it; and a member whose entry is
  ``harmless_untranslated``, ``optimizer.param_groups``, does not count for the guess: its hook
  keeps it unless the receiver is translated, which a guessed one never is,
  ``Receivers.receiver_translated``, and the planner escapes calls only). (The engine types a
  value only by a call of a map API, ``resolver._type_of_value``; and by the type's own name
  only in a parameter's annotation, ``resolver._param_type``: ``isinstance(x, T)``, a base
  class ``T`` or an annotated assignment types nothing. A type with no constructor and no
  ``parameter_names``, ``torch.Tensor``, is so typed only through an annotated parameter.)
  A member counts only when read on a receiver the engine may type: a name or an attribute of a
  name (``self.x``; ``resolver.receiver_type`` types nothing else: not ``loss.sum().backward()``,
  ``super().param_groups``, ``a.b.c.step()`` or ``opts[0].step()``); and not when read directly
  on the first parameter of a method (``self.state``, ``self.param_groups`` in a subclass of
  ``Optimizer``) when that name is bound nowhere else in the file, carries no annotation and
  matches no ``parameter_names``: the engine never types such a receiver (its callers are not
  followed for a method, it is no module-level function's parameter for the cross-file facts,
  and it has no value of its own);
* everything else the engine changes (imports, moved statements, training-step regions, uses of a
  translated optimizer as the torch object) follows from one of those rewrites or escapes.

Relative imports (``from .optim import Adam``) never name a map API (libcst qualifies them with
leading dots; map names have none): they bind nothing here. A star import (``from
torch.optim import *``) binds the names the map's ``star_exports`` lists for its module (torch's
``__all__``), as an import of each by name would (the engine resolves them only for a file's one
star import, where nothing else binds the name: ``Resolver._star_module``). A file is always
kept when it cannot be read this way: ``ast`` cannot parse it or it holds an escape-hatch
marker; or when facts from other files may change it (``cross_file_facts_may_change``: the
repository index, asked precisely:
``analysis.cross_file.may_change_through_other_files``). Code run from strings or modules
imported by name (``exec``, ``eval``, ``__import__``, ``importlib``) does not keep a file: the
engine reads names only as the file's text and its ``import`` statements bind them (libcst's
scopes), exactly as this pass does; ``exec`` and ``eval`` (the map's ``dynamic_code_calls``)
only make the engine keep the imports of a file it changes for another reason.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from ml_switcheroo.analysis import ast_nodes
from ml_switcheroo.analysis.cross_file import may_change_through_other_files
from ml_switcheroo.analysis.prefilter import changes_alone
from ml_switcheroo.analysis.repository import remember_parsed
from ml_switcheroo.spec import escape_hatch
from ml_switcheroo.spec.semantic_map import SemanticMap

_MARKER = escape_hatch.PREFIX.encode("ascii")


@dataclass(frozen=True)
class SecondStage:
    """``keeps(data)`` is False only for files the command cannot change."""

    call_apis: frozenset[str]  # wired call APIs of the command (``torch.optim.Adam``)
    members: Mapping[str, frozenset[str]]  # type -> its wired method and attribute names
    type_of: Mapping[str, str]  # map API returning a declared type (a constructor) -> the type
    guesses: tuple[tuple[re.Pattern[str], str, str], ...]  # (parameter_names, root, type)
    source_words: tuple[bytes, ...] = ()  # the map's source packages (``torch``), as bytes
    # the map, for the cross-file question (None: no facts from other files are asked for)
    semantic_map: SemanticMap | None = field(default=None, compare=False, repr=False)
    # the target's name: a call under it in another file is a translated optimizer already (a
    # file converted by an earlier run); set by the runner that knows the target
    target_root: str | None = None
    # a declared type, an alias of one or a constructor -> the type: typing only a parameter
    # annotated with it
    annotation_types: Mapping[str, str] = field(default_factory=dict)
    # type -> its wired members a name-guessed receiver may change: not an entry whose hook keeps
    # it on an untranslated receiver (``harmless_untranslated``; a guessed one never is)
    guessed_members: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_map(cls, semantic_map: SemanticMap, hooks: frozenset[str] | None) -> SecondStage:
        """The stage of a command running ``hooks`` (None: all) on ``semantic_map``."""
        entries = semantic_map.for_hooks(hooks)
        call_apis = frozenset(e.name for e in entries.values() if changes_alone(e))
        members: dict[str, set[str]] = {}
        guessed: dict[str, set[str]] = {}
        for entry in entries.values():
            if entry.method and entry.receiver_type is not None:  # `T.method`, wired on a T
                members.setdefault(entry.receiver_type, set()).add(entry.method)
                if not entry.harmless_untranslated:
                    guessed.setdefault(entry.receiver_type, set()).add(entry.method)
        type_of = {name: semantic_map.canonical_type(name) for name in semantic_map.apis}
        annotation_types = {
            name: semantic_map.canonical_type(name) or t.name
            for t in semantic_map.types.values()
            for name in (t.name, *t.aliases)
        }
        # a constructor types a parameter annotated with it too (``o: optim.Adam``), as
        # ``resolver._param_type`` reads an annotation by ``SemanticMap.canonical_type``
        annotation_types.update((name, t) for name, t in type_of.items() if t is not None)
        guesses = tuple(
            (t.parameter_names, t.name.partition(".")[0], t.name)
            for t in semantic_map.types.values()
            if t.parameter_names is not None
        )
        return cls(
            call_apis,
            {owner: frozenset(found) for owner, found in members.items()},
            {name: found for name, found in type_of.items() if found is not None},
            guesses,
            tuple(sorted(root.encode() for root in semantic_map.source_roots)),
            semantic_map,
            annotation_types=annotation_types,
            guessed_members={owner: frozenset(found) for owner, found in guessed.items()},
        )

    def keeps(
        self,
        data: bytes,
        path: str | None = None,
        remembered: Callable[[Callable[[], bool]], bool] | None = None,
    ) -> bool:
        """Whether the file with these bytes (at ``path``, if known) may change.
        ``remembered``: asks the cross-file question through a record of earlier answers
        (``convert``'s cache), handed the question itself."""
        kept, tree = self._own_answer(data)
        if kept:
            if tree is not None and path is not None and self.semantic_map is not None:
                remember_parsed(path, data, tree, keep=True)  # its facts, for its conversion
            return True
        parsed = (data, tree) if tree is not None else None

        def ask() -> bool:
            return cross_file_facts_may_change(path, self.semantic_map, parsed, self.target_root)

        answer = ask() if remembered is None or path is None else remembered(ask)
        if tree is not None and path is not None and self.semantic_map is not None:
            remember_parsed(path, data, tree, keep=answer)  # else its imports, for the closures
        return answer

    def keeps_by_itself(self, data: bytes) -> bool:
        """Whether the file's own bytes may make the engine change it (``keeps`` without the
        repository index: for a caller that asks the index itself)."""
        return self._own_answer(data)[0]

    def _own_answer(self, data: bytes) -> tuple[bool, ast.Module | None]:
        """``keeps_by_itself``, and the file's ``ast`` when it was parsed (for the index)."""
        if _MARKER in data:
            return True, None
        tree = _parse(data)
        if tree is None:
            return True, None
        facts = _Facts.of(tree)
        if facts.stars and self.semantic_map is not None:
            facts.add_star_exports(self.semantic_map.star_exports)
        called = facts.qualified_names(facts.called)
        if called & self.call_apis:
            return True, tree
        attributes = facts.typeable_attributes({pattern for pattern, _, _ in self.guesses})
        used = {owner for owner, found in self.members.items() if found & attributes}
        if not used:
            return False, tree
        if used & {self.type_of[name] for name in called if name in self.type_of}:
            return True, tree
        annotated = facts.annotation_names()
        typed = used & {self.annotation_types[n] for n in annotated if n in self.annotation_types}
        guessed_names = {pattern for pattern, _, _ in self.guesses}
        on_parameters = facts.read_on_parameters(tree, guessed_names) if typed else set()
        if any(self.members[owner] & on_parameters for owner in typed):
            return True, tree
        guessed = any(
            owner in used and root in facts.import_roots and facts.guessed_receives(pattern, found)
            for pattern, root, owner in self.guesses
            if (found := self.guessed_members.get(owner)) is not None
        )
        return guessed, tree


def cross_file_facts_may_change(
    path: str | None,
    semantic_map: SemanticMap | None,
    parsed: tuple[bytes, ast.Module] | None = None,
    target_root: str | None = None,
) -> bool:
    """Whether facts from other files (an optimizer built in another module and passed here,
    or returned by a builder there) may make the engine change this file: the precise question
    of ``analysis.cross_file.may_change_through_other_files``, asked only for a file the stage
    would otherwise drop (``parsed``: its bytes and ``ast``, parsed once; ``target_root``: the
    target's name, under which another file holds an optimizer converted by an earlier run).
    ``convert``'s cache records a dropped file as "pre-filtered out" by its stat;
    ``convert._prescan`` asks again for such a file on a later run, so a change in another file
    is seen."""
    if path is None or semantic_map is None:
        return False
    return may_change_through_other_files(path, semantic_map, target_root, parsed)


def _parse(data: bytes) -> ast.Module | None:
    """The ``ast`` of ``data``; None when ``ast`` cannot say (libcst will, or will report)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like
            return ast_nodes.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError, UnicodeError, LookupError):
        return None


@dataclass
class _Facts:
    """What the stage reads from one module's ``ast``."""

    called: set[str]  # the dotted expressions called (``torch.optim.Adam`` in ``...Adam(p)``)
    imports: dict[str, set[str]]  # bound name -> what it imports (every scope, no relative)
    import_roots: set[str]  # top-level packages imported (absolute imports, any scope)
    attributes: set[str]  # attribute names read on an attribute of a name (``a.b.step``)
    parameters: set[str]  # every parameter name (functions and lambdas)
    on_names: dict[str, set[str]] = field(default_factory=dict)  # name -> attributes read on it
    method_selves: set[str] = field(default_factory=set)  # unannotated first params of methods
    bound: set[str] = field(default_factory=set)  # names bound any other way
    annotations: list[ast.expr] = field(default_factory=list)  # of every parameter
    # root name -> attributes read on an attribute of it (``step`` of ``self.opt.step``)
    on_attributes_of: dict[str, set[str]] = field(default_factory=dict)
    stars: list[str] = field(default_factory=list)  # modules of `from m import *`

    def add_star_exports(self, exports: Mapping[str, frozenset[str]]) -> None:
        """The names a star import of a module of the map's ``star_exports`` binds, as if
        imported by name (more qualified names, never fewer: the engine resolves them only
        for the file's one star import, where nothing else binds the name)."""
        if len(self.stars) != 1:
            return  # several: none of them is known to bind a name
        module = self.stars[0]
        for name in exports.get(module, ()):
            if name not in self.bound and name not in self.imports:
                self.imports[name] = {f"{module}.{name}"}

    @classmethod
    def of(cls, tree: ast.Module) -> _Facts:
        facts = cls(set(), {}, set(), set(), set())
        selves: set[int] = set()  # the ast.arg of every unannotated first parameter of a method
        arguments: list[ast.arg] = []
        for node in ast_nodes.walk(tree):
            if isinstance(node, ast.Name):
                if not isinstance(node.ctx, ast.Load):
                    facts.bound.add(node.id)
            elif isinstance(node, ast.Attribute):
                facts._add_attribute(node)
            elif isinstance(node, ast.Call):
                callee = ast_nodes.dotted(node.func)
                if callee is not None:
                    facts.called.add(callee)
            elif isinstance(node, ast.arg):
                facts.parameters.add(node.arg)
                arguments.append(node)
                if node.annotation is not None:
                    facts.annotations.append(node.annotation)
            elif type(node) in _BINDING:
                facts._add_binding(node)
                if isinstance(node, ast.ClassDef):
                    selves.update(_method_selves(node))
                elif isinstance(node, ast.Import):
                    facts._add_import(node)
                elif isinstance(node, ast.ImportFrom):
                    facts._add_import_from(node)
        for argument in arguments:
            into = facts.method_selves if id(argument) in selves else facts.bound
            into.add(argument.arg)
        return facts

    def _add_attribute(self, node: ast.Attribute) -> None:
        """An attribute read, by its receiver (a name, an attribute of a name; on any other
        receiver the engine types nothing)."""
        if isinstance(node.value, ast.Name):
            self.on_names.setdefault(node.value.id, set()).add(node.attr)
        elif isinstance(node.value, ast.Attribute) and isinstance(node.value.value, ast.Name):
            self.attributes.add(node.attr)
            self.on_attributes_of.setdefault(node.value.value.id, set()).add(node.attr)

    def _add_binding(self, node: ast.AST) -> None:
        """The names ``node`` binds, but names and parameters (``ast.Name``, ``ast.arg``: read
        by ``of``): deletions, imports, definitions, ``except``/``match`` captures, and
        ``global``/``nonlocal`` names, counted as bound too."""
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            self.bound.update(node.names)
        elif not isinstance(node, ast.arg):
            for attribute in ("name", "asname", "rest"):
                value = getattr(node, attribute, None)
                if isinstance(value, str):
                    self.bound.add(value.partition(".")[0])

    def typeable_attributes(self, guesses: set[re.Pattern[str]]) -> set[str]:
        """The attribute names read on a receiver the engine may type (a name or an attribute
        of a name): every one but those read directly on a method's first parameter bound
        nowhere else, unannotated and matching none of ``guesses`` (the types'
        ``parameter_names``)."""
        untyped = self._untyped_selves(guesses)
        found = set(self.attributes)
        for name, attributes in self.on_names.items():
            if name not in untyped:
                found |= attributes
        return found

    def _untyped_selves(self, guesses: set[re.Pattern[str]]) -> set[str]:
        """Methods' first parameters bound nowhere else, unannotated, matching no guess."""
        return {
            name
            for name in self.method_selves - self.bound
            if not any(pattern.fullmatch(name) for pattern in guesses)
        }

    def read_on_parameters(self, tree: ast.Module, guesses: set[re.Pattern[str]]) -> set[str]:
        """The attribute names read on a parameter of an enclosing function, or on an
        attribute of one (``p.step``, ``self.opt.step``; not on a method's untyped first
        parameter itself, ``typeable_attributes``): where a type known only from a parameter's
        annotation can reach. The engine types a name by an annotation only when its binding
        is a parameter (``resolver._param_type``: annotated, or passed an annotated one by this
        file's callers), which is a parameter of the function reading it or of one enclosing
        it (libcst's scopes); ``y = x``, a loop or ``with`` target takes no type from ``x``
        (``_binding_type``). It types ``self.x`` only through the values stored there: an
        ``__init__`` parameter is what the class's constructions in this file pass
        (``_attribute_value_type``: ``_type_from_callers`` reads the calls of the class's
        name, ``constructions``: ``T(...)``, not ``m.T(...)``; another file's constructions
        are the cross-file question's), so an attribute of a parameter counts only in a file
        that calls one of its own classes by its name."""
        untyped = self._untyped_selves(guesses)
        direct, on_attributes = _enclosing_parameter_reads(tree, untyped)
        classes = {n.name for n in ast_nodes.walk(tree) if isinstance(n, ast.ClassDef)}
        constructs = not classes.isdisjoint(self.called)  # `T(...)`: a call of the name
        return direct | on_attributes if constructs else direct

    def guessed_receives(self, pattern: re.Pattern[str], members: frozenset[str]) -> bool:
        """Whether a parameter named like ``pattern`` has one of ``members`` read on a name
        spelled as it is: the engine's guess (``resolver._param_type``) types only a name
        whose binding is that parameter (``resolver._name_type``); a value assigned from it
        (``o = optimizer``, ``self.o = optimizer``) takes no type from the guess."""
        return any(
            pattern.fullmatch(name) and members & self.on_names.get(name, set())
            for name in self.parameters
        )

    def _add_import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.import_roots.add(alias.name.partition(".")[0])
            if alias.asname is not None:
                self.imports.setdefault(alias.asname, set()).add(alias.name)
            # `import torch.optim` binds `torch`: its uses are qualified as they are written.

    def _add_import_from(self, node: ast.ImportFrom) -> None:
        if node.level or node.module is None:
            self.stars.extend("." for alias in node.names if alias.name == "*")
            return  # relative: qualified with leading dots, never a map name
        self.import_roots.add(node.module.partition(".")[0])
        for alias in node.names:
            if alias.name == "*":
                self.stars.append(node.module)  # (resolved through the map's `star_exports`)
                continue
            bound = alias.asname or alias.name
            self.imports.setdefault(bound, set()).add(f"{node.module}.{alias.name}")

    def annotation_names(self) -> set[str]:
        """``qualified_names`` of the dotted expressions inside parameters' annotations."""
        names: set[str] = set()
        for annotation in self.annotations:
            for node in ast_nodes.walk(annotation):
                dotted = ast_nodes.dotted(node)
                if dotted is not None:
                    names.update(_qualified(dotted, self.imports))
        return names

    def qualified_names(self, expressions: set[str]) -> set[str]:
        """Every name one of these dotted ``expressions`` may denote: as written, and through
        every import that binds its first name."""
        names: set[str] = set()
        for dotted in expressions:
            names.update(_qualified(dotted, self.imports))
        return names


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _enclosing_parameter_reads(tree: ast.Module, untyped: set[str]) -> tuple[set[str], set[str]]:
    """The attribute names read directly on a name that is a parameter of an enclosing
    function (but ``untyped``), and those read on an attribute of such a name (``step`` of
    ``self.opt.step``). A function's defaults, decorators and annotations count as inside it
    (more reads, never fewer)."""
    direct: set[str] = set()
    on_attributes: set[str] = set()
    pending: list[tuple[ast.AST, frozenset[str]]] = [(tree, frozenset())]
    while pending:
        node, parameters = pending.pop()
        if isinstance(node, _FUNCTIONS):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            parameters = parameters | {a.arg for a in every}
        elif isinstance(node, ast.Attribute) and parameters:
            value = node.value
            if isinstance(value, ast.Name):
                if value.id in parameters and value.id not in untyped:
                    direct.add(node.attr)
            elif (
                isinstance(value, ast.Attribute)
                and isinstance(value.value, ast.Name)
                and value.value.id in parameters
            ):
                on_attributes.add(node.attr)
        pending.extend((child, parameters) for child in ast.iter_child_nodes(node))
    return direct, on_attributes


def _node_classes(base: type = ast.AST) -> Iterator[type]:
    for found in base.__subclasses__():
        yield found
        yield from _node_classes(found)


# The node classes ``_Facts._add_binding`` reads: with a field ``name``, ``asname`` or
# ``rest`` (definitions, imports' aliases, ``except ... as``, match captures; not ``ast.arg``),
# global and nonlocal declarations, and imports; and their subclasses.
_BINDING = frozenset(
    c
    for c in _node_classes()
    if issubclass(c, (ast.Global, ast.Nonlocal, ast.Import, ast.ImportFrom))
    or (not issubclass(c, ast.arg) and {"name", "asname", "rest"} & set(getattr(c, "_fields", ())))
)


def _method_selves(node: ast.ClassDef) -> Iterator[int]:
    """The ``id`` of the first parameter of each method defined in the class body, when it has
    no annotation (not of a ``staticmethod``: its first parameter is its callers' argument)."""
    for statement in node.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and not any(
            _names_staticmethod(decorator) for decorator in statement.decorator_list
        ):
            positional = [*statement.args.posonlyargs, *statement.args.args]
            if positional and positional[0].annotation is None:
                yield id(positional[0])


def _names_staticmethod(decorator: ast.expr) -> bool:
    """``@staticmethod``, ``@builtins.staticmethod`` (or a call of either)."""
    found = decorator.func if isinstance(decorator, ast.Call) else decorator
    name = found.attr if isinstance(found, ast.Attribute) else getattr(found, "id", None)
    return name == "staticmethod"


def _qualified(dotted: str, imports: dict[str, set[str]]) -> Iterator[str]:
    head, dot, rest = dotted.partition(".")
    yield dotted
    for target in imports.get(head, ()):
        yield f"{target}{dot}{rest}"


_CACHE: dict[tuple[int, frozenset[str] | None], tuple[SemanticMap, SecondStage]] = {}


def second_stage_for(semantic_map: SemanticMap, hooks: frozenset[str] | None = None) -> SecondStage:
    """The stage of a command running ``hooks`` (None: all) on ``semantic_map``; cached."""
    key = (id(semantic_map), hooks)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] is semantic_map:
        return cached[1]
    result = SecondStage.from_map(semantic_map, hooks)
    _CACHE[key] = (semantic_map, result)  # holds the map: its id is not reused while cached
    return result
