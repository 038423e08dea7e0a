"""An optimizer handed to a class of the file that stores it (issue 12, deliverable 1).

``Trainer(model, loader, optimizer)`` with ``def __init__(self, model, loader, optimizer):
self.optimizer = optimizer``: the parameter ``optimizer`` of ``__init__`` is what every
construction ``Trainer(...)`` of the file passes (``constructions``: the class, defined once
at module level, not decorated, no metaclass, no ``classmethod`` or ``type(self)`` that could
build it another way, its name used for nothing but calls), and ``self.optimizer`` is that
parameter wherever the class reads it when ``stored_attribute`` holds: the parameter is read
once, by ``self.<attr> = <param>`` in ``__init__``, the only store of ``<attr>`` in the file (in
the class, a subclass, or on an instance from outside), the instance never reached through
``getattr``/``setattr``/``vars``/``__dict__``, and no code outside the class's methods reads
``<something>.<attr>``. The resolver then types ``self.<attr>`` as the parameter and follows its
origins to the construction sites; the torch-only finder follows its uses in the class.

With the repository index, the constructions in other files decide (``Resolver.
_cross_file_type`` for the class's name, ``RepositoryIndex.stored_misuse``: the rule read with
``ast``, ``analysis/stored_ast.py``), and no other file may store or (for an optimizer) read
``.<attr>`` (``CrossFile.stored_reason``). NNX: ``self.model`` stored once from another
parameter of the same ``__init__`` is the model the optimizer trains when every construction
passes the model it was built over (``CrossFile.trained_model_reason``).

NOT DONE YET: a model moved or wrapped before it is stored (``self.model = model.to(gpu)``,
``DDP(self.model)``) escapes (task N adds the self-returning methods of a module); an optimizer
passed to a method other than ``__init__`` (``trainer.fit(opt)``), or stored in a container
(``self.opts = [opt]``), is not followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import libcst as cst
from libcst.metadata import Assignment, ClassScope, GlobalScope

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.signature import code_of

_REFLECTION = frozenset({"getattr", "setattr", "delattr", "hasattr", "vars"})


@dataclass(frozen=True)
class NotStored:
    """Why an ``__init__`` parameter is not followed into ``self.<attr>``: the node that
    decided (its line is the reason's place) and what it does."""

    node: cst.CSTNode
    why: str


def init_class(function: cst.CSTNode, parent: object) -> cst.ClassDef | None:
    """The class whose ``__init__`` is ``function`` (``parent``: the scope holding it)."""
    if not isinstance(function, cst.FunctionDef) or function.name.value != "__init__":
        return None
    if not isinstance(parent, ClassScope) or not isinstance(parent.node, cst.ClassDef):
        return None
    return parent.node


def constructions(
    resolver: Any, owner: cst.ClassDef, call_site: type
) -> list[cst.Call] | NotStored:
    """Every call ``Owner(...)`` of the file, when they are the only way it builds an
    instance (``call_site``: the resolver's metadata type of a called Name)."""
    scope = resolver.scopes.get(owner)
    if not isinstance(scope, GlobalScope):
        return NotStored(owner, f"`{owner.name.value}` is not a class of the module level")
    if owner.decorators or owner.keywords:
        return NotStored(owner, f"`{owner.name.value}` is decorated or has a metaclass")
    builder = _other_builder(owner)
    if builder is not None:
        return NotStored(builder, f"`{owner.name.value}` may build an instance by another name")
    assignments = list(scope.assignments[owner.name.value])
    if len(assignments) != 1 or assignments[0].node is not owner:
        return NotStored(owner, f"the name `{owner.name.value}` is bound more than once")
    calls: list[cst.Call] = []
    for access in resolver.in_tree_order(assignments[0].references):
        site = resolver.bindings.get(access.node)
        if not isinstance(site, call_site):
            return NotStored(
                access.node, f"`{owner.name.value}` is used without calling it (a subclass?)"
            )
        calls.append(site.call)  # type: ignore[attr-defined]
    return calls


def stored_attribute(
    resolver: Any, param: cst.Param, owner: cst.ClassDef, init: cst.FunctionDef
) -> cst.Attribute | NotStored:
    """``self.<attr>`` of ``self.<attr> = param``, the one use of ``__init__``'s parameter
    ``param``, when ``self.<attr>`` is that parameter wherever the file reads it (see the
    module's docstring); else why not."""
    reads = resolver.parameter_uses(param)
    scope = resolver.scopes.get(param)
    if scope is None or len(list(scope.assignments[param.name.value])) != 1:
        return NotStored(param, f"`{param.name.value}` is rebound in `__init__`")
    if len(reads) != 1:
        return NotStored(init, f"`__init__` uses `{param.name.value}` more than once")
    target = _stored_by(init, reads[0])
    if target is None or not resolver.is_self_attribute(target, owner):
        return NotStored(reads[0], f"`__init__` does not store `{param.name.value}` in `self`")
    module = next((n for n in resolver.bindings if isinstance(n, cst.Module)), None)
    if module is None:
        return NotStored(init, "the module is not known")
    methods = {id(f) for c in resolver.class_family(owner) for f in _methods(c)}
    found = _Accesses(target, methods, resolver, owner)
    cst_walk.visit(module, found)
    return found.problem if found.problem is not None else target


def _stored_by(init: cst.FunctionDef, read: cst.CSTNode) -> cst.Attribute | None:
    """``self.x`` when ``read`` is the whole value of ``self.x = read``, a statement directly
    in ``init``'s body (not in a branch or loop)."""
    for statement in init.body.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if (
                isinstance(small, cst.Assign)
                and small.value is read
                and len(small.targets) == 1
                and isinstance(small.targets[0].target, cst.Attribute)
            ):
                return small.targets[0].target
    return None


def _methods(owner: cst.ClassDef) -> list[cst.FunctionDef]:
    body = owner.body.body if isinstance(owner.body, cst.IndentedBlock) else []
    return [s for s in body if isinstance(s, cst.FunctionDef)]


def _other_builder(owner: cst.ClassDef) -> cst.CSTNode | None:
    """A ``classmethod``, ``type(self)`` or ``__class__`` in the class: another way to call it."""
    found: list[cst.CSTNode] = []

    class _Find(cst.CSTVisitor):
        def visit_Decorator(self, node: cst.Decorator) -> None:
            if isinstance(node.decorator, cst.Name) and node.decorator.value == "classmethod":
                found.append(node)

        def visit_Call(self, node: cst.Call) -> None:
            if isinstance(node.func, cst.Name) and node.func.value == "type":
                found.append(node)

        def visit_Name(self, node: cst.Name) -> None:
            if node.value in ("__class__", "__new__"):
                found.append(node)

    cst_walk.visit(owner, _Find())
    return found[0] if found else None


class _Accesses(cst.CSTVisitor):
    """The first access of the file that may read or write ``<attr>`` other than as the one
    store and reads of ``self.<attr>`` in the methods of the class family."""

    def __init__(
        self, store: cst.Attribute, methods: set[int], resolver: Any, owner: cst.ClassDef
    ) -> None:
        super().__init__()
        self.store = store
        self.attribute = store.attr.value
        self.methods = methods
        self.resolver = resolver
        self.owner = owner
        self.family = resolver.class_family(owner)
        self.problem: NotStored | None = None
        self._depth_in_methods = 0
        self._targets: set[int] = set()
        self._members: set[int] = set()  # `self.<attr>` read as `self.<attr>.<member>`

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if id(node) in self.methods:
            self._depth_in_methods += 1
            if node.name.value == self.attribute and self.problem is None:
                self.problem = NotStored(node, f"defines `{self.attribute}` (a property?)")

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        if id(original_node) in self.methods:
            self._depth_in_methods -= 1

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._mark_targets(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._mark_targets(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._mark_targets(node.target)

    def visit_Del(self, node: cst.Del) -> None:
        self._mark_targets(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._mark_targets(node.target)

    def _mark_targets(self, target: cst.BaseExpression) -> None:
        for node in _target_nodes(target):
            self._targets.add(id(node))

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if isinstance(node.value, cst.Attribute):
            self._members.add(id(node.value))
        if self.problem is not None:
            return
        if node.attr.value == "__dict__":
            self.problem = NotStored(node, "reaches an instance's attributes through `__dict__`")
        elif node.attr.value == self.attribute and node is not self.store:
            if id(node) in self._targets:
                self.problem = NotStored(node, f"stores `.{self.attribute}` again")
            elif not self._depth_in_methods or not self._self_of_family(node):
                self.problem = NotStored(node, f"reads `.{self.attribute}` outside the class")
            elif id(node) not in self._members:
                self.problem = NotStored(node, f"hands `self.{self.attribute}` on")

    def visit_Call(self, node: cst.Call) -> None:
        if self.problem is None and _reflects(node, self.attribute, bool(self._depth_in_methods)):
            self.problem = NotStored(
                node, f"`{code_of(node.func)}(...)` reaches an attribute by name"
            )

    def _self_of_family(self, node: cst.Attribute) -> bool:
        return any(self.resolver.is_self_attribute(node, c) for c in self.family)


def _reflects(call: cst.Call, attribute: str, in_methods: bool) -> bool:
    """``getattr``/``setattr``/... in a method of the class, or elsewhere with ``attribute``
    or a name that is not a string literal."""
    if not isinstance(call.func, cst.Name) or call.func.value not in _REFLECTION:
        return False
    if in_methods:
        return True
    if call.func.value == "vars":
        return False  # `vars(args)`: reads, never writes, an instance's attribute
    name = call.args[1].value if len(call.args) > 1 else None
    return not isinstance(name, cst.SimpleString) or name.evaluated_value == attribute


def _target_nodes(target: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for e in target.elements for n in _target_nodes(e.value)]
    if isinstance(target, cst.StarredElement):
        return _target_nodes(target.value)
    return [target]


def owner_of(resolver: Any, param: cst.Param) -> cst.ClassDef | None:
    """The class whose ``__init__`` has the parameter ``param``."""
    scope = resolver.scopes.get(param)
    function = getattr(scope, "node", None)
    return init_class(function, getattr(scope, "parent", None)) if function else None


def param_assignment(resolver: Any, param: cst.Param) -> Assignment | None:
    """libcst's assignment of ``param`` in its function's scope."""
    scope = resolver.scopes.get(param)
    if scope is None:
        return None
    for assignment in scope.assignments[param.name.value]:
        if getattr(assignment, "node", None) is param:
            return assignment  # type: ignore[no-any-return]
    return None
