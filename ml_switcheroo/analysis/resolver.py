"""Name resolution: which API a call names, and whether a receiver is known to be an optimizer.

Built on libcst's ``ScopeProvider`` (imports, aliases, shadowing) plus ``BindingProvider``,
which records what each assignment binds. A receiver has a type only when every binding that
reaches it says so: a recognised constructor in the same or an enclosing scope, ``self.x = ...``
anywhere in the same class, or a parameter annotated with a declared type. An unannotated
parameter whose name matches the type's ``parameter_names`` is only *probably* of that type.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cache, partial
from typing import Any, TypeVar

import libcst as cst
from libcst.metadata import (
    Assignment,
    BatchableMetadataProvider,
    ClassScope,
    GlobalScope,
    QualifiedNameSource,
    Scope,
)

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.builders import Builders, find_builders
from ml_switcheroo.analysis.changed_models import bound_parameter, init_of
from ml_switcheroo.analysis.cross_file import CrossFile
from ml_switcheroo.analysis.factories import bound_arguments
from ml_switcheroo.analysis.reaching import runs_after
from ml_switcheroo.analysis.repository import FactoryBody
from ml_switcheroo.analysis.stored import (
    NotStored,
    constructions,
    init_class,
    owner_of,
    param_assignment,
    stored_attribute,
)
from ml_switcheroo.spec.semantic_map import SemanticMap
from ml_switcheroo.spec.signature import dotted_name

# ``isinstance(n, cst.FunctionDef)`` answered once per node type (asked of every node that has
# a scope: libcst's node classes are ABCs)
_is_function = cst_walk.instance_test(cst.FunctionDef)


@dataclass(frozen=True)
class CallSite:
    """Metadata on the Name of a called function: the call it names."""

    call: cst.Call


@dataclass(frozen=True)
class CalledMethods:
    """Metadata on the Module: the name of every method called in it (``x.name(...)``), and of
    every attribute assigned (``x.name = ...``, ``x.name += ...``)."""

    names: frozenset[str]
    assigned_attributes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ClassAttributes:
    """Values assigned to ``self.<attr>`` in the methods of one class."""

    values: dict[str, list[cst.BaseExpression]]


class BindingProvider(BatchableMetadataProvider[object]):
    """Records what assignments bind, for receiver resolution.

    Assignment target Name -> value; ClassDef -> ``ClassAttributes``; called Name -> ``CallSite``;
    Module -> ``CalledMethods``.

    All of it is found in ``visit_Module``, by a walk of the tree's fields (``_walk``) instead
    of libcst's walk: libcst's rebuilds every node it visits, and costed as much as the rest of
    the metadata. A provider that only visits the module gets no walk of libcst
    (``rewrite.command_support``, point 6).
    """

    def __init__(self) -> None:
        super().__init__()
        self._methods: set[str] = set()
        self._assigned_attributes: set[str] = set()
        self._classes: list[dict[str, list[cst.BaseExpression]]] = []
        self._self_names: list[str | None] = []
        self._depth_in_class: list[int] = []

    def _enter_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append({})
        self._depth_in_class.append(0)

    def _leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.set_metadata(original_node, ClassAttributes(self._classes.pop()))
        self._depth_in_class.pop()

    def _enter_FunctionDef(self, node: cst.FunctionDef) -> None:
        self_name = None
        is_method = bool(self._depth_in_class) and self._depth_in_class[-1] == 0
        static = any(_decorator_name(d) == "staticmethod" for d in node.decorators)
        if is_method and node.params.params and not static:
            self_name = node.params.params[0].name.value
        self._self_names.append(self_name)
        if self._depth_in_class:
            self._depth_in_class[-1] += 1

    def _leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._self_names.pop()
        if self._depth_in_class:
            self._depth_in_class[-1] -= 1

    def _enter_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name):
            self.set_metadata(node.func, CallSite(node))
        elif isinstance(node.func, cst.Attribute):
            self._methods.add(node.func.attr.value)

    def visit_Module(self, node: cst.Module) -> None:
        self._walk(node)

    def _walk(self, module: cst.Module) -> None:
        """Every node below ``module`` entered (``_enter_<type>``) and left (``_leave_<type>``)
        as libcst's walk would: parents around their children, statements in source order
        (the order of the fields of every node that holds statements)."""
        enters, leaves = _ENTERS, _LEAVES
        pending: list[tuple[cst.CSTNode, bool]] = [(c, False) for c in reversed(_children(module))]
        while pending:
            node, leaving = pending.pop()
            name = type(node).__name__
            if leaving:
                leaves[name](self, node)
                continue
            enter = enters.get(name)
            if enter is not None:
                enter(self, node)
            if name in leaves:
                pending.append((node, True))
            pending.extend((c, False) for c in reversed(_children(node)))

    def leave_Module(self, original_node: cst.Module) -> None:
        methods = CalledMethods(frozenset(self._methods), frozenset(self._assigned_attributes))
        self.set_metadata(original_node, methods)

    def _enter_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Attribute):
                self._assigned_attributes.add(target.target.attr.value)
            self._record(target.target, node.value)

    def _enter_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Attribute):
            self._assigned_attributes.add(node.target.attr.value)

    def _enter_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._record(node.target, node.value)

    def _record(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            # `self.opt, self.x = a, b`: the attribute holds some element of the value, kept
            # as the whole value (not an optimizer) so that a fact about `self.opt` sees it
            for element in target.elements:
                if not isinstance(element.value, cst.Name):
                    self._record(element.value, value)
        elif isinstance(target, cst.Name):
            self.set_metadata(target, value)
        elif (
            isinstance(target, cst.Attribute)
            and isinstance(target.value, cst.Name)
            and self._classes
            and self._current_self() == target.value.value
        ):
            self._classes[-1].setdefault(target.attr.value, []).append(value)

    def _current_self(self) -> str | None:
        # `self` of the innermost method, also inside functions nested in that method.
        for name in reversed(self._self_names):
            if name is not None:
                return name
        return None


_ENTERS: dict[str, Callable[[BindingProvider, cst.CSTNode], None]] = {
    name: getattr(BindingProvider, f"_enter_{name}")
    for name in ("ClassDef", "FunctionDef", "Call", "Assign", "AugAssign", "AnnAssign")
}
_LEAVES: dict[str, Callable[[BindingProvider, cst.CSTNode], None]] = {
    name: getattr(BindingProvider, f"_leave_{name}") for name in ("ClassDef", "FunctionDef")
}
# Nodes that hold no statement, call nor definition: not walked into.
_NO_BINDINGS = (
    cst.BaseParenthesizableWhitespace,
    cst.EmptyLine,
    cst.TrailingWhitespace,
    cst.LeftParen,
    cst.RightParen,
    cst.Comma,
    cst.Dot,
    cst.Name,
)
_holds_no_bindings = cst_walk.instance_test(_NO_BINDINGS)


@cache
def _node_fields(node_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(node_type))


def _children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The nodes ``node``'s fields hold, in field order (whitespace and names left out)."""
    try:
        return _CHILDREN[type(node)](node)
    except KeyError:
        return _children_of_class(type(node))(node)


_CHILDREN: dict[type, Callable[[cst.CSTNode], list[cst.CSTNode]]] = {}


def _children_of_class(node_type: type) -> Callable[[cst.CSTNode], list[cst.CSTNode]]:
    """``_children`` for the nodes of ``node_type``: its fields read one after the other by a
    function made once per class (no loop over the names, no ``getattr``)."""
    names = _node_fields(node_type)
    if not all(name.isidentifier() for name in names):
        found = _CHILDREN[node_type] = _children_by_name
        return found
    lines = ["def children(node):", "    found = []"]
    for name in names:
        lines += [
            f"    value = node.{name}",
            "    if is_node(value):",
            "        if not holds_none(value):",
            "            found.append(value)",
            "    elif is_sequence(value) and value:",
            "        found.extend(v for v in value if is_node(v) and not holds_none(v))",
        ]
    lines.append("    return found")
    scope: dict[str, Any] = {
        "is_node": cst_walk.is_node,
        "is_sequence": cst_walk.is_sequence,
        "holds_none": _holds_no_bindings,
    }
    exec("\n".join(lines), scope)  # noqa: S102 - field names of libcst's own node classes
    found = _CHILDREN[node_type] = scope["children"]
    return found


def _children_by_name(node: cst.CSTNode) -> list[cst.CSTNode]:
    """``_children`` reading the fields by name (a class whose fields are not identifiers)."""
    found: list[cst.CSTNode] = []
    for name in _node_fields(type(node)):
        value = getattr(node, name)
        if cst_walk.is_node(value):
            if not _holds_no_bindings(value):
                found.append(value)
        elif cst_walk.is_sequence(value):
            found.extend(v for v in value if cst_walk.is_node(v) and not _holds_no_bindings(v))
    return found


def _decorator_name(decorator: cst.Decorator) -> str | None:
    node = decorator.decorator
    if isinstance(node, cst.Call):
        node = node.func
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


@dataclass(frozen=True)
class Binding:
    """One place a receiver is bound: the binding node, and the value when it assigns one."""

    node: cst.CSTNode
    value: cst.BaseExpression | None
    assignment: Assignment | None = None  # libcst's, for Name bindings and parameters


@dataclass(frozen=True)
class Variable:
    """A variable: the value of each of its bindings (None: not an assignment of a value,
    e.g. a parameter or a loop target), and the nodes that read it."""

    values: tuple[cst.BaseExpression | None, ...]
    reads: tuple[tuple[cst.CSTNode, ...], ...]  # each read: the node, its parent, ...


_READ_CONTEXT = 4  # nodes kept per read: the read and its nearest parents


def _ancestors(
    node: cst.CSTNode, parents: Mapping[cst.CSTNode, cst.CSTNode], count: int
) -> tuple[cst.CSTNode, ...]:
    chain = [node]
    while len(chain) < count and chain[-1] in parents:
        chain.append(parents[chain[-1]])
    return tuple(chain)


@dataclass(frozen=True)
class ImportBinding:
    """An import that binds a name: the statement and the module it imports from."""

    node: cst.Import | cst.ImportFrom
    module: str


T = TypeVar("T")


class NodeMemo:
    """Answers remembered for one file, keyed by a question and the identity of the objects
    it is about (nodes, scopes' assignments). The objects are kept with their answer, so an
    id is never reused while it is remembered; the memo lives and dies with its Resolver."""

    def __init__(self) -> None:
        self._answers: dict[tuple[Hashable, ...], tuple[tuple[object, ...], object]] = {}

    def answer(self, question: str, about: tuple[object, ...], compute: Callable[[], T]) -> T:
        """``compute()``, asked once per ``question`` about the very objects ``about``."""
        key = (question, *(id(thing) for thing in about))
        found = self._answers.get(key)
        if found is not None and all(a is b for a, b in zip(found[0], about, strict=True)):
            return found[1]  # type: ignore[return-value]
        value = compute()
        self._answers[key] = (about, value)
        return value

    def clear(self) -> None:
        self._answers.clear()


@dataclass(frozen=True)
class ReceiverType:
    """The declared type of a receiver, and whether it was only inferred from a name."""

    name: str
    probable: bool = False


_Scoped = TypeVar("_Scoped")  # a libcst Assignment or Access: what has a ``node``


class Resolver:
    """Answers qualified-name and receiver-type questions for one module."""

    def __init__(
        self,
        semantic_map: SemanticMap,
        scopes: dict[cst.CSTNode, Scope | None],
        bindings: dict[cst.CSTNode, object],
    ) -> None:
        self.map = semantic_map
        self.scopes = scopes
        self.bindings = bindings
        # Answers that are a function of this file alone (see ``remember``).
        self._memo = NodeMemo()
        # Facts from other files of the repository (``analysis/cross_file.py``), when known.
        self._cross_file: CrossFile | None = None
        self.cross_file_reasons: dict[int, str] = {}  # id(param) -> why it is not typed
        # id(param) -> the optimizer parameter stepped before it: a scheduler parameter whose
        # schedule folds in another file (its step goes)
        self.folded_elsewhere: dict[int, str] = {}
        # id(param of `__init__`) -> `self.<attr>` it is stored in, or why it is not followed
        self._stored: dict[int, cst.Attribute | NotStored] = {}
        self._builders: Builders | None = None  # see builders()
        self._classes: list[cst.ClassDef] | None = None  # see class_family()
        self._families: dict[int, list[cst.ClassDef]] = {}  # id(class) -> its family
        self._tree_order: dict[int, int] | None = None  # id(node) -> its place, see in_tree_order
        self._module: cst.CSTNode | None = None  # see _rebound_in_loop

    def in_tree_order(self, items: Iterable[_Scoped]) -> list[_Scoped]:
        """libcst's assignments or accesses (kept in sets, whose order is the objects' memory
        addresses: a different one in every process) in the order of their nodes in the tree,
        so that what is built from them (reasons, generated code) is the same in every run."""
        found = list(items)
        if len(found) < 2:
            return found
        if self._tree_order is None:  # the scope metadata holds every node, in visit order
            self._tree_order = {id(node): place for place, node in enumerate(self.scopes)}
        order = self._tree_order
        return sorted(found, key=lambda item: order.get(id(getattr(item, "node", None)), -1))

    @property
    def cross_file(self) -> CrossFile | None:
        """Facts from other files of the repository (``analysis/cross_file.py``), when known."""
        return self._cross_file

    @cross_file.setter
    def cross_file(self, value: CrossFile | None) -> None:
        self._cross_file = value
        self._memo.clear()  # answers given without these facts no longer hold

    def remember(self, question: str, about: tuple[object, ...], compute: Callable[[], T]) -> T:
        """``compute()`` once per file for ``question`` about the objects ``about`` (nodes of
        this file, objects kept alive with the answer): for answers that depend only on the
        file, its metadata and the repository's facts (the planner and the engine ask the
        same questions about the same nodes)."""
        return self._memo.answer(question, about, compute)

    def builders(self) -> Builders:
        """The file's builders (``analysis/builders.py``), found once; other files of the
        repository are asked whether they name one, when the repository is known."""
        if self._builders is None:
            self._builders = Builders()  # what the search itself sees of builders: none
            module = next((n for n in self.bindings if isinstance(n, cst.Module)), None)
            if isinstance(module, cst.Module):
                elsewhere = self.cross_file.mentioned_elsewhere if self.cross_file else None
                self._builders = find_builders(
                    module,
                    lambda name: self.bound_value(name, None),
                    self._is_built,
                    elsewhere,
                    # every FunctionDef has a scope (libcst's ScopeProvider sets one on each
                    # node it visits): the module is walked only when one may be a builder
                    [n for n in self.scopes if _is_function(n)],
                )
        return self._builders

    def _is_built(self, call: cst.Call) -> bool:
        """A call of one of the map's constructors or schedulers (a value of a map type)."""
        return any(
            name in self.map.apis and self.map.canonical_type(name) is not None
            for name in self.imported_names(call.func)
        )

    def imported_names(self, node: cst.BaseExpression) -> list[str]:
        """``_imported_names``, asked once per node."""
        return list(self.remember("imported_names", (node,), lambda: self._imported_names(node)))

    def _imported_names(self, node: cst.BaseExpression) -> list[str]:
        """Fully qualified names ``node`` refers to through imports (never local definitions).

        Empty when its root name is also bound by anything but an import where it is used
        (``optim = MyLib()`` next to ``import torch.optim as optim``, ``class Adam`` next to
        ``from torch.optim import Adam``, a parameter ``torch`` under ``import torch.optim``):
        libcst's qualified names still include the import's name there (they come from every
        assignment of the name in its scope, and a dotted import ``torch.optim`` is found even
        where ``torch`` is a parameter).
        """
        scope = self.scopes.get(node)
        if scope is None or self._of_a_value(node):
            return []
        root = node
        while isinstance(root, cst.Attribute):
            root = root.value
        if isinstance(root, cst.Name) and any(
            not isinstance(binding.node, (cst.Import, cst.ImportFrom))
            for binding in scope[root.value]
            if isinstance(binding, Assignment)
        ):
            return []
        try:
            names = scope.get_qualified_names_for(node)
        except Exception:  # libcst raises on some unusual nodes; treat as unknown
            return []
        found = sorted(q.name for q in names if q.source is QualifiedNameSource.IMPORT)
        if not found and isinstance(root, cst.Name) and not scope[root.value]:
            star = self._star_module(root.value)
            dotted = dotted_name(node)
            return [f"{star}.{dotted}"] if star is not None and dotted is not None else []
        return found

    def _of_a_value(self, node: cst.BaseExpression) -> bool:
        """Whether ``node`` is an attribute of a value a call or an item computes
        (``f(x)[i].m``, ``torch.abs(out).std``): libcst qualifies it by what lies under it
        (``f.m``, ``torch.abs.std``), a function or module it is not. A method of a new object
        of a class (of the map, or named in CapWords: ``torch.amp.GradScaler().step``,
        ``Variable(t).cuda``) keeps its class's name."""
        current = node
        while isinstance(current, cst.Attribute):
            current = current.value
            if isinstance(current, cst.Subscript):
                return True
            if isinstance(current, cst.Call):
                names = self.imported_names(current.func)
                return not any(self.map.canonical_type(n) is not None or _a_class(n) for n in names)
        return False

    def _star_module(self, name: str) -> str | None:
        """The module a name bound nowhere in the file comes from: the file's one star import
        (``from torch.optim import *``), of a module the map's ``star_exports`` lists with
        ``name`` among its exports (torch's ``__all__``); None otherwise (no star import,
        several, or one of a module whose names the map does not know)."""
        stars = self.remember("star_imports", (), self._star_imports)
        if len(stars) != 1:
            return None
        module = stars[0]
        return module if name in self.map.star_exports.get(module, ()) else None

    def _star_nodes(self) -> list[cst.ImportFrom]:
        """The file's star import statements."""
        return [
            node
            for node in self.scopes
            if isinstance(node, cst.ImportFrom) and isinstance(node.names, cst.ImportStar)
        ]

    def _star_imports(self) -> list[str]:
        """The modules of the file's star imports (``*`` of a relative import: ``.``)."""
        found = []
        for node in self.remember("star_nodes", (), self._star_nodes):
            module = dotted_name(node.module) if node.module is not None else None
            found.append("." if node.relative or module is None else module)
        return found

    def other_imports(self, node: cst.BaseExpression, qualified_name: str) -> list[ImportBinding]:
        """The imports of ``node``'s root name through which ``node`` is not ``qualified_name``.

        ``try: from apex.optimizers import FusedAdam as Adam`` / ``except ImportError:
        from torch.optim import Adam``: for ``Adam`` and ``torch.optim.Adam``, the apex import.
        libcst gives such a name every qualified name its imports give it; which one runs is
        decided at run time.
        """
        root = node
        while isinstance(root, cst.Attribute):
            root = root.value
        scope = self.scopes.get(node)
        if scope is None or not isinstance(root, cst.Name):
            return []
        others: list[ImportBinding] = []
        for access in scope.accesses[root.value]:
            if access.node is not root:
                continue
            for referent in self.in_tree_order(access.referents):
                statement = getattr(referent, "node", None)
                if not isinstance(statement, (cst.Import, cst.ImportFrom)):
                    continue
                if qualified_name not in _names_through(node, root.value, statement):
                    others.append(ImportBinding(statement, _import_source(statement, root.value)))
        others.extend(self._rebinding_stars(node, root.value, qualified_name))
        return sorted(others, key=lambda other: other.module)

    def _rebinding_stars(
        self, node: cst.BaseExpression, name: str, qualified_name: str
    ) -> list[ImportBinding]:
        """The file's star imports that may bind ``name`` to something else than
        ``qualified_name`` (libcst's scopes do not see what a star import binds): one of a
        module whose names are known (the map's ``star_exports``, a module of the repository:
        ``CrossFile.star_import_names``) and hold ``name`` as another object, or one of a
        module whose names are not known (probe s33 C1: ``from torch.optim import SGD`` then
        ``from pkg import *`` with pkg's own ``SGD``, 0.13-0.83 relative). A top-level module
        imported as itself (``import torch``) is taken to stay itself: a star import binding
        ``torch`` to another object is not looked for."""
        found: list[ImportBinding] = []
        if qualified_name.startswith(name + "."):
            return found  # `import torch`: a star import binding `torch` binds torch itself
        rest = (dotted_name(node) or name)[len(name) :]  # `.optim.SGD` of `torch.optim.SGD`
        for star in self.remember("star_nodes", (), self._star_nodes):
            module = dotted_name(star.module) if star.module is not None else ""
            level = len(star.relative)
            if not level and f"{module}.{name}" == qualified_name:
                continue  # `from torch.optim import *` binds torch's own SGD
            names = self.remember("star_names", (star,), partial(self._star_names, star))
            bound = names.get(name, "") if names is not None else None
            if bound == "":
                continue  # not among the names it binds
            if bound is not None and bound + rest == qualified_name:
                continue  # the same object (`import torch` in the module star-imported)
            source = "." * level + (module or "")
            found.append(ImportBinding(star, f"{source} (`import *`)"))
        return found

    def _star_names(self, star: cst.ImportFrom) -> Mapping[str, str | None] | None:
        """What the star import ``star`` binds, each name with the qualified name it imports
        (None: an object of its own): the map's ``star_exports``, or a module of the repository
        (``CrossFile.star_import_names``); None when not known."""
        module = dotted_name(star.module) if star.module is not None else ""
        level = len(star.relative)
        if not level and module in self.map.star_exports:
            return {n: f"{module}.{n}" for n in self.map.star_exports[module]}
        if self.cross_file is None:
            return None
        return self.cross_file.star_import_names(module or "", level)

    def bound_value(
        self, node: cst.BaseExpression, enclosing_class: cst.ClassDef | None
    ) -> cst.BaseExpression | None:
        """The one value (ignoring ``None``) a Name or ``self.attr`` is assigned, if unique."""
        values: list[cst.BaseExpression] = []
        if isinstance(node, cst.Name):
            for binding in self.binding_nodes(node):
                value = self.bindings.get(binding) if isinstance(binding, cst.Name) else None
                value = self.builders().built(value, binding)
                if value is None:
                    return None
                values.append(value)
        else:
            values = self._self_attribute_values(node, enclosing_class) or []
        real = [v for v in values if not (isinstance(v, cst.Name) and v.value == "None")]
        return real[0] if len(real) == 1 else None

    def called_methods(self, module: cst.Module) -> frozenset[str]:
        """The name of every method called in ``module``."""
        found = self.bindings.get(module)
        return found.names if isinstance(found, CalledMethods) else frozenset()

    def assigns_or_calls(self, module: cst.Module, names: frozenset[str]) -> bool | None:
        """Whether ``module`` assigns an attribute or calls a method of one of ``names``
        (``x.name = ...``, ``x.name += ...``, ``x.name(...)``); None when not recorded."""
        found = self.bindings.get(module)
        if not isinstance(found, CalledMethods):
            return None
        return bool(names & (found.names | found.assigned_attributes))

    def uses_of(self, target: cst.Name) -> list[cst.CSTNode]:
        """The nodes that read the variable an assignment target binds (a ``global`` or
        ``nonlocal`` name's binding: the reads of that outer variable)."""
        scope = self.scopes.get(target)
        if scope is None:
            return []
        uses: list[cst.CSTNode] = []
        for assignment in scope[target.value]:  # resolves global/nonlocal, unlike .assignments
            if getattr(assignment, "node", None) is target:
                uses.extend(access.node for access in self.in_tree_order(assignment.references))
        return uses

    def binds_module_global(self, target: cst.Name) -> bool:
        """Whether the assignment target binds a module-level variable (at module level, or
        in a function declaring it ``global``): another module may read it as an attribute."""
        scope = self.scopes.get(target)
        if scope is None:
            return False
        return any(
            isinstance(a.scope, GlobalScope)
            for a in scope[target.value]
            if getattr(a, "node", None) is target
        )

    def called_function(self, func: cst.BaseExpression) -> str | None:
        """The qualified name of an imported or builtin function ``func`` names, if any."""
        names = self.imported_names(func)
        if names:
            return names[0]
        if isinstance(func, cst.Attribute):  # `object.__setattr__`: an attribute of a builtin
            dotted = dotted_name(func)
            root = self.called_function(func.value) if isinstance(func.value, cst.Name) else None
            builtin = root is not None and root.startswith("builtins.")
            return f"builtins.{dotted}" if builtin and dotted else None
        scope = self.scopes.get(func)
        if not isinstance(func, cst.Name) or scope is None:
            return None
        try:
            qualified = scope.get_qualified_names_for(func)
        except Exception:  # libcst raises on some unusual nodes; treat as unknown
            return None
        builtin = [q.name for q in qualified if q.source is QualifiedNameSource.BUILTIN]
        return builtin[0] if len(qualified) == 1 and builtin else None

    def local_definition(self, func: cst.BaseExpression) -> cst.CSTNode | None:
        """The one definition (a function, a class, a binding) of this module the name
        ``func`` reads, or None."""
        scope = self.scopes.get(func)
        if not isinstance(func, cst.Name) or scope is None:
            return None
        bindings = [a for a in scope[func.value] if isinstance(a, Assignment)]
        return bindings[0].node if len(bindings) == 1 else None

    def local_class(self, func: cst.BaseExpression) -> cst.ClassDef | None:
        """The class of this module the name ``func`` reads (``Surgeon`` of ``Surgeon(m)``)."""
        found = self.local_definition(func)
        return found if isinstance(found, cst.ClassDef) else None

    def local_parameter(self, call: cst.Call, argument: cst.Arg) -> cst.Param | None:
        """The parameter of a function of this module (called by its name) that ``argument``
        of ``call`` binds, when that is certain (no star arguments on either side)."""
        definition = self.local_definition(call.func)
        if definition is None:
            return None
        function = definition
        if isinstance(function, cst.ClassDef):  # `Trainer(...)`: its `__init__` (issue 12)
            function = init_of(function)
        if not isinstance(function, cst.FunctionDef):
            return None
        return bound_parameter(function, call, argument, function is not definition)

    def parameter_uses(self, param: cst.Param) -> list[cst.CSTNode]:
        """The nodes that read a parameter in its function."""
        scope = self.scopes.get(param)
        if scope is None:
            return []
        return [
            access.node
            for assignment in scope.assignments[param.name.value]
            if getattr(assignment, "node", None) is param
            for access in self.in_tree_order(assignment.references)
        ]

    def parameter_type(self, param: cst.Param) -> ReceiverType | None:
        """The type of a parameter from what every caller in this module passes (None when
        the function is not only called by name in this module)."""
        scope = self.scopes.get(param)
        if scope is None:
            return None
        for assignment in scope.assignments[param.name.value]:
            if getattr(assignment, "node", None) is param:
                return self._type_from_callers(param, assignment, 0)  # type: ignore[arg-type]
        return None

    def is_self_attribute(self, node: cst.CSTNode, enclosing_class: cst.ClassDef | None) -> bool:
        """Whether ``node`` is ``self.x`` in a method of ``enclosing_class``."""
        return (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and enclosing_class is not None
            and self._is_self(node.value, enclosing_class)
        )

    def origin_values(
        self, node: cst.BaseExpression, enclosing_class: cst.ClassDef | None, depth: int = 0
    ) -> list[cst.BaseExpression] | None:
        """Every value (``None`` left out) that reaches ``node`` (a Name or ``self.x``),
        following parameters to what this module's callers pass; None if unknown."""
        if not isinstance(node, cst.Name):
            values = self._self_attribute_values(node, enclosing_class)
            if values is None:
                return None
            return self._through_stored(_without_none(values), node, enclosing_class, depth)
        found: list[cst.BaseExpression] = []
        for binding in self.binding_nodes(node):
            value = self.builders().built(self.bindings.get(binding), binding)
            if isinstance(binding, cst.Name) and value is not None:
                found.append(value)
            elif isinstance(binding, cst.Param) and depth < 3:
                passed = self._passed_values(binding, enclosing_class, depth)
                if passed is None:
                    return None
                found.extend(passed)
            else:
                return None
        return _without_none(found) if found else None

    def _through_stored(
        self,
        values: list[cst.BaseExpression],
        node: cst.BaseExpression,
        enclosing_class: cst.ClassDef | None,
        depth: int,
    ) -> list[cst.BaseExpression] | None:
        """``values`` of ``self.x`` with an ``__init__`` parameter stored there replaced by
        what the constructions of the class pass for it."""
        assert isinstance(node, cst.Attribute)
        found: list[cst.BaseExpression] = []
        for value in values:
            stored = self.stored_parameter(value, node.attr.value)
            if stored is None or depth >= 3 or self._constructed_elsewhere(*stored):
                found.append(value)  # constructed in other files: the parameter stands for itself
                continue
            inner = self.origin_values(value, enclosing_class, depth + 1)
            if inner is None:
                return None
            found.extend(inner)
        return found

    def _constructed_elsewhere(self, param: cst.Param, assignment: Assignment) -> bool:
        """Whether another file of the repository constructs the class whose ``__init__`` has
        ``param`` (its call sites, not this file's, decide: ``_cross_file_type``)."""
        return self._cross_file_type(param, assignment) is not None or (
            id(param) in self.cross_file_reasons
        )

    def reaching_values(
        self,
        node: cst.BaseExpression,
        enclosing_class: cst.ClassDef | None,
        depth: int = 0,
        free: bool = False,
    ) -> list[cst.BaseExpression] | None:
        """``origin_values`` for a value of any type: a parameter is what every call in this
        module passes (followed through names), whether or not its type is known; when no call
        in the module tells, a parameter never rebound in its function stands for itself (its
        Name node: the same object wherever the function reads it). With ``free``, so does a
        name the module never binds (a builtin, an undefined global)."""
        if not isinstance(node, cst.Name):
            return self.origin_values(node, enclosing_class, depth)
        found: list[cst.BaseExpression] = []
        bindings = self.binding_nodes(node)
        if free and not bindings:
            return [node]
        for binding in [*bindings, *self._rebound_in_loop(node, bindings)]:
            value = self.bindings.get(binding) if isinstance(binding, cst.Name) else None
            if isinstance(value, cst.BaseExpression):
                found.append(value)
                continue
            arguments = self._caller_arguments_of(binding) if depth < 3 else None
            if not arguments:  # no call in this module (or one that does not tell)
                if self._only_binding(binding, node):
                    found.append(binding.name)  # type: ignore[union-attr]  # the parameter itself
                    continue
                return None
            for argument in arguments:
                inner = (
                    self.reaching_values(argument, enclosing_class, depth + 1, free)
                    if isinstance(argument, cst.Name)
                    else [argument]
                )
                if inner is None:
                    return None
                found.extend(inner)
        return _without_none(found) if found else None

    def _rebound_in_loop(self, read: cst.Name, bindings: list[cst.CSTNode]) -> list[cst.CSTNode]:
        """The assignments of ``read``'s name in its own scope that libcst leaves out of its
        referents (written after it) but that may run before it: in a loop holding both
        (``model = train(model, ...)`` in ``for stage in ...:``; ``reaching.runs_after``)."""
        scope = self.scopes.get(read)
        owner = getattr(scope, "node", None) if not isinstance(scope, GlobalScope) else None
        if isinstance(scope, GlobalScope):
            if self._module is None:
                self._module = next((n for n in self.bindings if isinstance(n, cst.Module)), None)
            owner = self._module
        if scope is None or not isinstance(owner, (cst.FunctionDef, cst.Module)):
            return []
        known = {id(b) for b in bindings}
        later = [
            a.node
            for a in scope.assignments[read.value]
            if isinstance(a, Assignment) and id(a.node) not in known
        ]
        return [b for b in later if not runs_after(owner, read, b)]

    def _only_binding(self, binding: cst.CSTNode, read: cst.Name) -> bool:
        """Whether ``binding`` is a function parameter that nothing in its scope rebinds
        before ``read`` (``reaching.runs_after``: ``m = train(m, ...)`` rebinds it after): every
        such read in the function is then one and the same object, whatever callers pass."""
        scope = self.scopes.get(binding) if isinstance(binding, cst.Param) else None
        function = getattr(scope, "node", None)
        if scope is None or not isinstance(function, cst.FunctionDef):
            return False
        assignments = list(scope.assignments[binding.name.value])  # type: ignore[attr-defined]
        others = [a.node for a in assignments if a.node is not binding]
        return len(others) < len(assignments) and all(
            runs_after(function, read, other) for other in others
        )

    def parameter_arguments(self, binding: cst.CSTNode) -> list[cst.BaseExpression] | None:
        """What every call in this module passes for parameter ``binding``, one argument per
        call in tree order (None: unknown)."""
        return self._caller_arguments_of(binding)

    def _caller_arguments_of(self, binding: cst.CSTNode) -> list[cst.BaseExpression] | None:
        """What every call in this module passes for parameter ``binding`` (None: unknown)."""
        scope = self.scopes.get(binding) if isinstance(binding, cst.Param) else None
        if scope is None:
            return None
        for assignment in scope.assignments[binding.name.value]:  # type: ignore[attr-defined]
            if getattr(assignment, "node", None) is binding:
                return self.caller_arguments(binding, assignment)  # type: ignore[arg-type]
        return None

    def _passed_values(
        self, param: cst.Param, enclosing_class: cst.ClassDef | None, depth: int
    ) -> list[cst.BaseExpression] | None:
        """What this module's calls pass for ``param`` (followed through names)."""
        if self.parameter_type(param) is None:
            return None
        scope = self.scopes.get(param)
        function = getattr(scope, "node", None)
        parent = getattr(scope, "parent", None)
        if not isinstance(function, cst.FunctionDef) or parent is None:
            return None
        if isinstance(parent, ClassScope):  # `__init__`: what the constructions pass
            return self._constructions_pass(param, enclosing_class, depth)
        positional = list(function.params.params)
        index = positional.index(param) if param in positional else None
        values: list[cst.BaseExpression] = []
        for assignment in self.in_tree_order(parent.assignments[function.name.value]):
            for access in self.in_tree_order(assignment.references):
                site = self.bindings.get(access.node)
                if not isinstance(site, CallSite):
                    return None
                argument = _argument_for(site.call, param.name.value, index)
                if argument is None:
                    return None
                if isinstance(argument, cst.Name):
                    inner = self.origin_values(argument, enclosing_class, depth + 1)
                    if inner is None:
                        return None
                    values.extend(inner)
                else:
                    values.append(argument)
        return values

    def constructed_with(self, param: cst.Param) -> cst.BaseExpression | None:
        """What the one construction of a class of the module level passes for its
        ``__init__`` parameter ``param`` (None: not one such construction)."""
        if not isinstance(self.scopes.get(param), Scope) or owner_of(self, param) is None:
            return None
        assignment = param_assignment(self, param)
        arguments = self.caller_arguments(param, assignment) if assignment is not None else None
        return arguments[0] if arguments is not None and len(arguments) == 1 else None

    def other_argument(self, param: cst.Param, type_name: str) -> cst.BaseExpression | None:
        """The first argument a construction of the class passes for its ``__init__``
        parameter ``param`` that is not a ``type_name`` (None: none, or not such a parameter)."""
        assignment = param_assignment(self, param)
        if owner_of(self, param) is None or assignment is None:
            return None
        for argument in self.caller_arguments(param, assignment) or []:
            found = self._expression_type(argument, 1)
            if not isinstance(found, ReceiverType) or found.name != type_name or found.probable:
                return argument
        return None

    def _constructions_pass(
        self, param: cst.Param, enclosing_class: cst.ClassDef | None, depth: int
    ) -> list[cst.BaseExpression] | None:
        """What every construction of the class passes for its ``__init__`` parameter
        ``param`` (followed through names)."""
        assignment = param_assignment(self, param)
        arguments = self.caller_arguments(param, assignment) if assignment is not None else None
        if arguments is None:
            return None
        values: list[cst.BaseExpression] = []
        for argument in arguments:
            if not isinstance(argument, cst.Name):
                values.append(argument)
                continue
            inner = self.origin_values(argument, None, depth + 1)
            if inner is None:
                return None
            values.extend(inner)
        return values

    def _referents(self, name: cst.Name) -> list[Assignment]:
        """The assignments libcst finds for the use ``name`` (those written before it)."""
        scope = self.scopes.get(name)
        if scope is None:
            return []
        return [
            referent
            for access in scope.accesses[name.value]
            if access.node is name
            for referent in self.in_tree_order(access.referents)
            if isinstance(referent, Assignment)
        ]

    def binding_nodes(self, name: cst.Name) -> list[cst.CSTNode]:
        """The nodes that bind the Name ``name`` where it is used (targets, params, imports)."""
        scope = self.scopes.get(name)
        if scope is None:
            return []
        nodes: list[cst.CSTNode] = []
        for access in scope.accesses[name.value]:
            if access.node is name:
                referents = self.in_tree_order(access.referents)
                nodes.extend(r.node for r in referents if isinstance(r, Assignment))
        return nodes

    def receiver_bindings(
        self, receiver: cst.BaseExpression, enclosing_class: cst.ClassDef | None
    ) -> list[Binding] | None:
        """Every binding of a Name or ``self.x`` receiver, wherever it sits in the scope.

        libcst's referents of a use are the assignments written before it; in a loop, or in a
        method called after another, a later one reaches it too. So this takes every assignment
        of the variable in the scopes that bind it (every ``self.x = ...`` of the class). None
        when ``receiver`` is neither.
        """
        if not isinstance(receiver, cst.Name):
            values = self._self_attribute_values(receiver, enclosing_class)
            return (
                None if values is None else [self._attribute_binding(v, receiver) for v in values]
            )
        scopes: list[Scope] = []
        for referent in self._referents(receiver):
            if isinstance(referent.node, (cst.Import, cst.ImportFrom)):
                return []  # an imported name: no binding of ours
            if referent.scope not in scopes:
                scopes.append(referent.scope)
        bindings: list[Binding] = []
        for scope in scopes:
            # in the order the scope saw them (libcst's set is ordered by memory address);
            # two of one index (`global` stores in one function) in the order of the tree
            for assignment in sorted(
                self.in_tree_order(scope.assignments[receiver.value]),
                key=lambda a: getattr(a, "_index", -1),
            ):
                if not isinstance(assignment, Assignment):
                    continue  # a builtin
                node = assignment.node
                value = self.bindings.get(node) if isinstance(node, cst.Name) else None
                value = self.builders().built(value, node) if isinstance(node, cst.Name) else None
                bindings.append(Binding(node, value, assignment))
        return bindings

    def _attribute_binding(
        self, value: cst.BaseExpression, receiver: cst.BaseExpression
    ) -> Binding:
        """One binding of ``self.x``: its value, or the ``__init__`` parameter stored there."""
        assert isinstance(receiver, cst.Attribute)
        stored = self.stored_parameter(value, receiver.attr.value)
        if stored is None:
            return Binding(value, value)
        return Binding(stored[0], None, stored[1])

    def _target_bindings(self, name: cst.Name) -> list[Binding]:
        """Every binding of the variable an assignment target ``name`` binds, in its scope."""
        scope = self.scopes.get(name)
        if scope is None:
            return []
        assignments = [
            a
            for a in self.in_tree_order(scope.assignments[name.value])
            if isinstance(a, Assignment)
        ]
        if not any(a.node is name for a in assignments):
            return []
        bindings: list[Binding] = []
        for assignment in assignments:
            node = assignment.node
            value = self.bindings.get(node) if isinstance(node, cst.Name) else None
            value = value if isinstance(value, cst.BaseExpression) else None
            bindings.append(Binding(node, value, assignment))
        return bindings

    def variable(
        self, name: cst.Name, parents: Mapping[cst.CSTNode, cst.CSTNode]
    ) -> Variable | None:
        """Every binding of the variable ``name`` refers to, in its scope (flow-insensitive),
        and every node that reads it with its parents; None for an imported name or a builtin."""
        bindings = self.receiver_bindings(name, None) or self._target_bindings(name)
        if not bindings:
            return None
        reads: dict[int, tuple[cst.CSTNode, ...]] = {}
        for binding in bindings:
            for access in self.in_tree_order(
                binding.assignment.references if binding.assignment else ()
            ):
                reads[id(access.node)] = _ancestors(access.node, parents, _READ_CONTEXT)
        return Variable(tuple(b.value for b in bindings), tuple(reads.values()))

    def mixed_receiver_type(
        self, receiver: cst.BaseExpression, enclosing_class: cst.ClassDef | None
    ) -> ReceiverType | None:
        """The type of a recognised constructor among the bindings of a receiver whose
        bindings do not agree on one type (``opt = SGD(...)`` and ``opt = build()``)."""
        return self.remember(
            "mixed_receiver_type",
            (receiver, enclosing_class),
            lambda: self._mixed_receiver_type(receiver, enclosing_class),
        )

    def _mixed_receiver_type(
        self, receiver: cst.BaseExpression, enclosing_class: cst.ClassDef | None
    ) -> ReceiverType | None:
        for binding in self.receiver_bindings(receiver, enclosing_class) or []:
            if binding.value is None:
                continue
            found = self._value_type(binding.value)
            if isinstance(found, ReceiverType):
                return found
        return None

    def receiver_type(
        self, receiver: cst.BaseExpression, enclosing_class: cst.ClassDef | None
    ) -> ReceiverType | None:
        """The type every binding of a Name or ``self.x`` receiver agrees on (once per node)."""
        return self.remember(
            "receiver_type",
            (receiver, enclosing_class),
            lambda: self._receiver_type(receiver, enclosing_class),
        )

    def _receiver_type(
        self, receiver: cst.BaseExpression, enclosing_class: cst.ClassDef | None
    ) -> ReceiverType | None:
        if isinstance(receiver, cst.Name):
            return self._name_type(receiver)
        values = self._self_attribute_values(receiver, enclosing_class)
        if values is None:
            return None
        return self._agreeing([self._attribute_value_type(v, receiver) for v in values])

    def _attribute_value_type(
        self, value: cst.BaseExpression, receiver: cst.BaseExpression
    ) -> ReceiverType | None | str:
        """The type of one value of ``self.x``: an ``__init__`` parameter stored there is what
        every construction of the class passes (``stored_parameter``)."""
        assert isinstance(receiver, cst.Attribute)
        stored = self.stored_parameter(value, receiver.attr.value)
        if stored is None:
            return self._value_type(value)
        across = self._cross_file_type(*stored)
        if across is not None or id(stored[0]) in self.cross_file_reasons:
            return across  # constructed in other files: the repository's call sites decide
        return self._type_from_callers(stored[0], stored[1], 0)

    def _self_attribute_values(
        self, node: cst.BaseExpression, enclosing_class: cst.ClassDef | None
    ) -> list[cst.BaseExpression] | None:
        """Every value ``self.x = ...`` assigns in the class, for ``node`` = ``self.x``; None
        when ``node`` is not an attribute of ``self`` in a class."""
        if not (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and enclosing_class is not None
            and self._is_self(node.value, enclosing_class)
        ):
            return None
        built = self.builders().built
        values: list[cst.BaseExpression] = []
        for owner in self.class_family(enclosing_class):
            attributes = self.bindings.get(owner)
            if isinstance(attributes, ClassAttributes):
                values.extend(built(v) or v for v in attributes.values.get(node.attr.value, []))
        return values

    def class_family(self, enclosing_class: cst.ClassDef) -> list[cst.ClassDef]:
        """The classes of this file whose ``self.x = ...`` an instance seen in a method of
        ``enclosing_class`` may hold: the class, its bases and their bases, and its subclasses
        and theirs (by name: a name bound to two classes counts both)."""
        known = self._families.get(id(enclosing_class))
        if known is not None:
            return known
        if self._classes is None:
            self._classes = [n for n in self.bindings if isinstance(n, cst.ClassDef)]
        family = [enclosing_class]
        for step in (self._bases_of, self._subclasses_of):
            pending = [enclosing_class]
            while pending:
                for other in step(pending.pop()):
                    if other not in family:
                        family.append(other)
                        pending.append(other)
        self._families[id(enclosing_class)] = family
        return family

    def _bases_of(self, node: cst.ClassDef) -> list[cst.ClassDef]:
        names = {_last_name(base.value) for base in node.bases}
        return [c for c in self._classes or [] if c.name.value in names]

    def _subclasses_of(self, node: cst.ClassDef) -> list[cst.ClassDef]:
        name = node.name.value
        return [c for c in self._classes or [] if any(_last_name(b.value) == name for b in c.bases)]

    def _name_type(self, name: cst.Name, depth: int = 0) -> ReceiverType | None:
        scope = self.scopes.get(name)
        if scope is None:
            return None
        referents: set[object] = set()
        for access in scope.accesses[name.value]:
            if access.node is name:
                referents.update(access.referents)
        types: list[ReceiverType | None | str] = []
        for referent in referents:
            if not isinstance(referent, Assignment):
                return None
            types.append(self._assignment_type(referent, depth))
        return self._agreeing(types)

    def _assignment_type(self, assignment: Assignment, depth: int) -> ReceiverType | None | str:
        """The type one binding gives, asked once per binding and depth (not per use)."""
        return self.remember(
            f"assignment_type {depth}",
            (assignment,),
            lambda: self._binding_type(assignment, depth),
        )

    def _binding_type(self, assignment: Assignment, depth: int) -> ReceiverType | None | str:
        node = assignment.node
        if isinstance(node, cst.Name):
            value = self.builders().built(self.bindings.get(node), node)
            return self._value_type(value) if value is not None else None
        if isinstance(node, cst.Param):
            return self._param_type(node, assignment, depth)
        return None

    def _value_type(self, value: cst.BaseExpression) -> ReceiverType | None | str:
        """The type a value gives its target (once per value node)."""
        return self.remember("value_type", (value,), lambda: self._type_of_value(value))

    def _type_of_value(self, value: cst.BaseExpression) -> ReceiverType | None | str:
        if isinstance(value, cst.Name) and value.value == "None":
            return "none"  # neutral: `opt = None` before the real assignment
        if isinstance(value, cst.Call):
            for name in self.imported_names(value.func):
                type_name = self.map.canonical_type(name)
                if type_name is None or name not in self.map.apis:
                    continue
                if self.other_imports(value.func, name):
                    return None  # maybe not torch's: another import binds the name too
                return ReceiverType(type_name)
            return self._returned_type(value)
        return None

    def _returned_type(self, call: cst.Call) -> ReceiverType | None:
        """The type of the translated optimizer a builder function of another file returns
        (``opt = build_optimizer(model, cfg)``; ``analysis/cross_file.py``), or of this file
        when ``builders.py`` does not follow it (called more than once: ``own_builder``)."""
        if self.cross_file is None:
            return None
        func = call.func
        method = isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
        if method and not self.imported_names(func):  # `model.configure_optimizers(...)`
            return self._method_builder_type(func)  # type: ignore[arg-type]
        own = self._own_builder(call)
        if own is not None:
            cross_file = self.cross_file
            fact = self.remember(
                "builder_type", (own,), lambda: cross_file.builder_type(own.name.value)
            )
            return ReceiverType(fact[0]) if fact is not None and fact[0] is not None else None
        names = self.imported_names(call.func)
        if len(names) != 1:
            return None
        fact = self.cross_file.returned_type(names[0])
        if fact is not None and fact[0] is not None:
            return ReceiverType(fact[0])
        factory = self.factory_scheduler(call)
        type_name = self.map.canonical_type(factory) if factory is not None else None
        return ReceiverType(type_name) if type_name is not None else None

    def method_builder_type(self, call: cst.Call) -> ReceiverType | None:
        """The type of the translated optimizer ``x.method(...)`` returns through a method
        builder of the repository (``_method_builder_type``); None for any other call."""
        func = call.func
        method = isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
        if self.cross_file is None or not method or self.imported_names(func):
            return None
        return self._method_builder_type(func)  # type: ignore[arg-type]

    def _method_builder_type(self, func: cst.Attribute) -> ReceiverType | None:
        """The type of the translated optimizer ``x.method(...)`` returns: a method of a class
        of the repository called only on instances of it (``CrossFile.method_call_type``)."""
        assert self.cross_file is not None
        fact = self.cross_file.method_call_type(func.attr.value)
        return ReceiverType(fact[0]) if fact is not None and fact[0] is not None else None

    def _own_builder(self, call: cst.Call) -> cst.FunctionDef | None:
        """The module-level function of this file ``call`` calls by its name (bound once)."""
        func = call.func
        scope = self.scopes.get(func)
        if not isinstance(func, cst.Name) or scope is None:
            return None
        bindings = [a for a in scope[func.value] if isinstance(a, Assignment)]
        if len(bindings) != 1 or not isinstance(bindings[0].node, cst.FunctionDef):
            return None
        if not isinstance(bindings[0].scope, GlobalScope):
            return None
        return bindings[0].node

    def factory_scheduler(self, call: cst.Call) -> str | None:
        """The map scheduler ``call`` builds when it calls a scheduler factory of another file
        of the repository (``CrossFile.factory_of``; followed or not) with, for its optimizer
        parameter, a name bound only to calls of the map's constructors (so the file holds
        one: the pre-filter stages keep it on its own bytes); else None."""
        found = self.factory_of(call)
        if found is None:
            return None
        passed = bound_arguments(call, found[0].params)
        argument = passed.get(found[0].optimizer) if passed is not None else None
        if not isinstance(argument, cst.Name) or not self._bound_to_constructors(argument):
            return None
        return found[0].constructor

    def _bound_to_constructors(self, name: cst.Name) -> bool:
        """Whether every binding of ``name`` where it is read assigns a call of a map
        constructor (``opt = torch.optim.AdamW(...)``)."""
        scope = self.scopes.get(name)
        if scope is None:
            return False
        referents = [r for a in scope.accesses[name.value] if a.node is name for r in a.referents]
        for referent in referents:
            value = self.bindings.get(referent.node) if isinstance(referent, Assignment) else None
            if not isinstance(value, cst.Call) or not any(
                self.map.canonical_type(n) is not None and n in self.map.apis
                for n in self.imported_names(value.func)
            ):
                return False
        return bool(referents)

    def factory_of(self, call: cst.Call) -> tuple[FactoryBody, str | None] | None:
        """``CrossFile.factory_of`` for the callee of ``call`` (None without the index)."""
        names = self.imported_names(call.func)
        if self.cross_file is None or len(names) != 1:
            return None
        return self.cross_file.factory_of(names[0])

    def _param_type(
        self, param: cst.Param, assignment: Assignment, depth: int
    ) -> ReceiverType | None:
        if param.annotation is not None:
            for candidate in _annotation_candidates(param.annotation.annotation):
                for name in self.imported_names(candidate):
                    type_name = self.map.canonical_type(name)
                    if type_name is not None:
                        return ReceiverType(type_name)
            return None
        across = self._cross_file_type(param, assignment)
        if across is not None:
            return across
        if id(param) not in self.cross_file_reasons:
            from_callers = self._type_from_callers(param, assignment, depth)
            if from_callers is not None:
                return from_callers
        for entry in self.map.types.values():
            if entry.parameter_names is not None and entry.parameter_names.fullmatch(
                param.name.value
            ):
                return ReceiverType(entry.name, probable=True)
        return None

    def _cross_file_type(self, param: cst.Param, assignment: Assignment) -> ReceiverType | None:
        """The type every call site in the repository passes for a parameter of a module-level
        function that files other than this one call (``analysis/cross_file.py``); when they
        do not agree, the reason is kept in ``cross_file_reasons`` and this file's own callers
        no longer decide."""
        return self.remember(
            "cross_file_type",
            (param, assignment),
            lambda: self._repository_type(param, assignment),
        )

    def _repository_type(self, param: cst.Param, assignment: Assignment) -> ReceiverType | None:
        function = assignment.scope.node
        parent = getattr(assignment.scope, "parent", None)
        owner = init_class(function, parent) if function is not None else None
        if owner is not None and not isinstance(self.scopes.get(owner), GlobalScope):
            owner = None  # a class of the module level only
        if (
            self.cross_file is None
            or not isinstance(function, cst.FunctionDef)
            or parent is None
            or not (isinstance(parent, GlobalScope) or owner is not None)
        ):
            return None
        name = owner.name.value if owner is not None else function.name.value
        folded = None if owner else self.cross_file.folded_scheduler_type(name, param.name.value)
        if folded is not None:  # its schedule folds in the caller's file (stepped_together.py)
            self.folded_elsewhere[id(param)] = folded[1]
            return ReceiverType(folded[0])
        fact = self.cross_file.parameter_type(name, param.name.value)
        if fact is None:
            return None
        type_name, reason = fact
        if type_name is not None:
            return ReceiverType(type_name)
        self.cross_file_reasons[id(param)] = reason
        return None

    def callers_elsewhere_problem(self, receiver: cst.BaseExpression) -> str | None:
        """Why a parameter ``receiver`` typed by its annotation (``opt: torch.optim.Optimizer``)
        may hold an optimizer that stays torch code: a call site in another file of the
        repository passes one (``_repository_type``'s reason); None when every call site
        there passes a translated optimizer, or no other file calls its function."""
        if not isinstance(receiver, cst.Name):
            return None
        for node in self.binding_nodes(receiver):
            if not isinstance(node, cst.Param):
                continue
            scope = self.scopes.get(node)
            for assignment in scope.assignments[node.name.value] if scope else ():
                if getattr(assignment, "node", None) is node:
                    self._cross_file_type(node, assignment)  # type: ignore[arg-type]
            if id(node) in self.cross_file_reasons:
                return self.cross_file_reasons[id(node)]
        return None

    def cross_file_reason(self, receiver: cst.BaseExpression) -> str:
        """Why the parameter ``receiver`` is not typed from the repository's call sites."""
        if not isinstance(receiver, cst.Name):
            return ""
        for node in self.binding_nodes(receiver):
            if id(node) in self.cross_file_reasons:
                return self.cross_file_reasons[id(node)]
        return ""

    def _type_from_callers(
        self, param: cst.Param, assignment: Assignment, depth: int
    ) -> ReceiverType | None:
        """The type every call site in this module passes for ``param`` (e.g. MNIST's ``train``).

        Only for functions called by name whose name is used for nothing but calls.
        """
        return self.remember(
            f"type_from_callers {depth}",
            (param, assignment),
            lambda: self._callers_type(param, assignment, depth),
        )

    def _callers_type(
        self, param: cst.Param, assignment: Assignment, depth: int
    ) -> ReceiverType | None:
        arguments = self.caller_arguments(param, assignment) if depth <= 3 else None
        if arguments is None:
            return None
        types = [self._expression_type(argument, depth + 1) for argument in arguments]
        result = self._agreeing(types)
        if result is None or result.probable:
            return None
        if isinstance(self.stored_attribute(param), NotStored):
            return None  # an `__init__` parameter not followed into `self.<attr>`
        return result

    def caller_arguments(
        self, param: cst.Param, assignment: Assignment
    ) -> list[cst.BaseExpression] | None:
        """What every call site in this module passes for ``param``; None when some call
        is not seen (a method, a function whose name is used for more than calls)."""
        function = assignment.scope.node
        parent = getattr(assignment.scope, "parent", None)
        if not isinstance(function, cst.FunctionDef) or parent is None:
            return None
        calls = self._calls_of(function, parent)
        if calls is None:
            return None
        positional = list(function.params.params)
        index = positional.index(param) if param in positional else None
        if isinstance(parent, ClassScope) and index is not None:
            index = index - 1 if index > 0 else None  # `Trainer(...)` passes no `self`
            if index is None:
                return None
        arguments: list[cst.BaseExpression] = []
        for call in calls:
            argument = _argument_for(call, param.name.value, index)
            if argument is None:
                return None
            arguments.append(argument)
        return arguments

    def _calls_of(self, function: cst.FunctionDef, parent: object) -> list[cst.Call] | None:
        """Every call of ``function`` in this module, when they are all seen: a function
        called by its name, used for nothing else; the ``__init__`` of a class of the module
        level (its constructions, ``analysis/stored.py``). Other methods: None."""
        if isinstance(parent, ClassScope):
            owner = init_class(function, parent)
            found = constructions(self, owner, CallSite) if owner is not None else None
            return found if isinstance(found, list) else None
        assert isinstance(parent, Scope)
        definitions = [a for a in parent.assignments[function.name.value] if a.node is function]
        if len(parent.assignments[function.name.value]) != 1 or not definitions:
            return None
        calls: list[cst.Call] = []
        for access in self.in_tree_order(definitions[0].references):
            site = self.bindings.get(access.node)
            if not isinstance(site, CallSite):
                return None
            calls.append(site.call)
        return calls

    def stored_attribute(self, param: cst.Param) -> cst.Attribute | NotStored | None:
        """``self.<attr>`` when ``param``, a parameter of the ``__init__`` of a class of the
        module level, is stored there and followed (``analysis/stored.py``); why not when it
        is not; None when ``param`` is no such parameter."""
        if id(param) not in self._stored:
            scope = self.scopes.get(param)
            init = getattr(scope, "node", None)
            owner = init_class(init, getattr(scope, "parent", None)) if init else None
            if owner is None:
                return None
            assert isinstance(init, cst.FunctionDef)
            self._stored[id(param)] = self._stored_in(param, owner, init)
        return self._stored[id(param)]

    def _stored_in(
        self, param: cst.Param, owner: cst.ClassDef, init: cst.FunctionDef
    ) -> cst.Attribute | NotStored:
        calls = constructions(self, owner, CallSite)
        if isinstance(calls, NotStored):
            return calls
        stored = stored_attribute(self, param, owner, init)
        elsewhere = self.cross_file.stored_reason if self.cross_file is not None else None
        why = elsewhere(owner.name.value, param.name.value) if elsewhere else None
        if isinstance(stored, cst.Attribute) and why is not None:
            return NotStored(owner, f"(another file: {why})")
        return stored

    def stored_parameter(
        self, value: cst.BaseExpression, attribute: str
    ) -> tuple[cst.Param, Assignment] | None:
        """The ``__init__`` parameter a value of ``self.<attribute>`` reads, when the class
        stores it there and it is followed (``stored_attribute``)."""
        if not isinstance(value, cst.Name):
            return None
        bindings = self.binding_nodes(value)
        param = bindings[0] if len(bindings) == 1 else None
        if not isinstance(param, cst.Param):
            return None
        stored = self.stored_attribute(param)
        assignment = param_assignment(self, param)
        if not isinstance(stored, cst.Attribute) or stored.attr.value != attribute:
            return None
        return (param, assignment) if assignment is not None else None

    def _expression_type(self, node: cst.BaseExpression, depth: int) -> ReceiverType | None | str:
        if isinstance(node, cst.Name):
            return self._name_type(node, depth)
        return self._value_type(node)

    def _agreeing(self, types: Sequence[ReceiverType | None | str]) -> ReceiverType | None:
        real = [t for t in types if t != "none"]
        if not real or any(t is None for t in real):
            return None
        first = real[0]
        assert isinstance(first, ReceiverType)
        if all(isinstance(t, ReceiverType) and t.name == first.name for t in real):
            probable = any(isinstance(t, ReceiverType) and t.probable for t in real)
            return ReceiverType(first.name, probable)
        return None

    def _is_self(self, name: cst.Name, enclosing_class: cst.ClassDef) -> bool:
        """Whether ``name`` is the first parameter of a method of ``enclosing_class``."""
        scope = self.scopes.get(name)
        if scope is None:
            return False
        for access in scope.accesses[name.value]:
            if access.node is not name:
                continue
            for referent in access.referents:
                if not isinstance(referent, Assignment) or not isinstance(referent.node, cst.Param):
                    return False
                method_scope = referent.scope
                parent = getattr(method_scope, "parent", None)
                if not isinstance(parent, ClassScope) or parent.node is not enclosing_class:
                    return False
                function = method_scope.node
                if not isinstance(function, cst.FunctionDef) or not function.params.params:
                    return False
                if function.params.params[0] is not referent.node:
                    return False
            return bool(access.referents)
        return False


def _last_name(node: cst.BaseExpression) -> str | None:
    """``Base`` for ``Base`` and ``pkg.Base``."""
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return node.value if isinstance(node, cst.Name) else None


def _without_none(values: list[cst.BaseExpression]) -> list[cst.BaseExpression]:
    return [v for v in values if not (isinstance(v, cst.Name) and v.value == "None")]


def _argument_for(call: cst.Call, name: str, index: int | None) -> cst.BaseExpression | None:
    position = 0
    for arg in call.args:
        if arg.star:
            return None
        if arg.keyword is None:
            if position == index:
                return arg.value
            position += 1
        elif arg.keyword.value == name:
            return arg.value
    return None


def _annotation_candidates(annotation: cst.BaseExpression) -> list[cst.BaseExpression]:
    """``X``, and ``X`` inside ``Optional[X]`` / ``X | None`` / ``"X"`` is not resolved."""
    if isinstance(annotation, cst.BinaryOperation) and isinstance(annotation.operator, cst.BitOr):
        return _annotation_candidates(annotation.left) + _annotation_candidates(annotation.right)
    if isinstance(annotation, cst.Subscript):
        inner = [
            element.slice.value
            for element in annotation.slice
            if isinstance(element.slice, cst.Index)
        ]
        return [annotation, *inner]
    return [annotation]


def _names_through(node: cst.BaseExpression, root: str, statement: cst.CSTNode) -> set[str]:
    """The qualified names ``node`` (rooted at the name ``root``) has through one import."""
    dotted = dotted_name(node)
    if dotted is None or not isinstance(statement, (cst.Import, cst.ImportFrom)):
        return set()
    rest = dotted[len(root) :]
    found: set[str] = set()
    names = statement.names
    if isinstance(names, cst.ImportStar):
        return found
    for alias in names:
        imported = dotted_name(alias.name)
        if imported is None:
            continue
        bound = alias.evaluated_alias
        if isinstance(statement, cst.ImportFrom):
            module = dotted_name(statement.module) if statement.module else None
            if (bound or imported) == root and module is not None:
                found.add(f"{module}.{imported}{rest}")
        elif bound == root:
            found.add(f"{imported}{rest}")
        elif bound is None and imported.partition(".")[0] == root:
            found.add(dotted)  # `import torch.optim` binds `torch`
    return found


def _import_source(statement: cst.Import | cst.ImportFrom, root: str) -> str:
    """What ``statement`` imports the name ``root`` from, for messages."""
    if isinstance(statement, cst.ImportFrom):
        module = dotted_name(statement.module) if statement.module else ""
        return "." * len(statement.relative) + (module or "")
    for alias in statement.names:
        imported = dotted_name(alias.name) or ""
        if (alias.evaluated_alias or imported.partition(".")[0]) == root:
            return imported
    return root


def _a_class(qualified: str) -> bool:
    """Whether ``qualified``'s last name is spelled as a class (CapWords: ``GradScaler``)."""
    last = qualified.rpartition(".")[2]
    return last[:1].isupper() and not last.isupper()
