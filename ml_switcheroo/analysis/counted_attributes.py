"""Schedulers of a trainer class counted where they step (issue 12, NNX): ``self.sched`` built
in one method (``__init__``, ``setup``, ``configure_optimizers``), stepped in others.

The count of ``analysis/counted.py`` travels with the object as an attribute set next to the
construction (each run of that method builds a fresh scheduler and a fresh count) and
incremented at each ``step()``, exact when every ``step()`` of that scheduler object is one of
the counted statements and nothing else changes its optimizer's lr:

- ``self.sched`` and ``self.opt`` are built in the same block of one method of a class,
  through its first parameter (not a ``staticmethod``), and stored nowhere else in the file
  (no other method, subclass or outside code assigns or deletes ``.sched``/``.opt`` of any
  object; no ``setattr``, ``vars``, ``__dict__``, property of that name);
- every other ``.sched`` of the file is ``self.sched.m(...)`` in a method defined directly in
  that class (not a subclass, a nested function or outside code) through its first parameter,
  named as in the building method: ``m`` a ``step()`` alone on its line, or a method that only
  reads it (``get_last_lr``); never handed on, stored in a name, a second instance
  (``other.sched = self.sched``) or ``load_state_dict``;
- no string of the file is the attribute's name, no ``getattr`` takes a computed name
  (``getattr(self, name)`` may reach it), no ``__dict__`` or ``delattr`` is used, no
  shallow copy is made (``copy.copy(self)`` shares the scheduler, not an int counter), and
  no other file of the repository names it (a subclass there may step it);
- ``.opt`` is read as a method receiver, as the scheduler's optimizer argument, or through
  ``self.opt.param_groups`` only to read ``[0]["lr"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.counted import PARAM_GROUPS, Counted, CountFacts, Step
from ml_switcheroo.spec.signature import code_of

# Methods whose first parameter is no instance of the class
_NOT_INSTANCE = frozenset({"staticmethod", "classmethod"})
# Calls that copy an object shallowly: the copy shares the scheduler, not the counter
_SHALLOW_COPIES = frozenset({"copy", "copy.copy", "replace", "copy.replace", "dataclasses.replace"})


@dataclass(frozen=True)
class Owner:
    """The method that builds the scheduler: its class and its first parameter (``self``)."""

    cls: cst.ClassDef
    method: cst.FunctionDef
    receiver: str


@dataclass(frozen=True)
class _Use:
    """A read of ``<base>.<attribute>``: the node, its parent, grandparent and the innermost
    ``def`` holding it with the node holding that ``def``."""

    node: cst.Attribute
    parent: cst.CSTNode | None
    grandparent: cst.CSTNode | None
    function: cst.FunctionDef | None
    holder: cst.CSTNode | None


class _Uses(cst.CSTVisitor):
    """Every ``<anything>.<attribute>`` of the tree for the attributes asked, with where it is,
    the string literals of the tree and whether a ``getattr`` takes a computed name."""

    def __init__(self, attributes: frozenset[str]) -> None:
        super().__init__()
        self.attributes = attributes
        self.found: list[_Use] = []
        self.strings: set[str] = set()
        self.computed_getattr: cst.Call | None = None
        self.reflective: cst.CSTNode | None = None  # `x.__dict__`, `delattr`
        self.shallow_copy: cst.Call | None = None  # `copy.copy(x)`
        self.stack: list[cst.CSTNode] = []
        self.functions: list[tuple[cst.FunctionDef, cst.CSTNode | None]] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, cst.Attribute) and node.attr.value in self.attributes:
            parent = self.stack[-1] if self.stack else None
            grandparent = self.stack[-2] if len(self.stack) > 1 else None
            function, holder = self.functions[-1] if self.functions else (None, None)
            self.found.append(_Use(node, parent, grandparent, function, holder))
        if isinstance(node, cst.SimpleString):
            self.strings.add(str(node.evaluated_value))
        if isinstance(node, cst.Call) and _computed_getattr(node):
            self.computed_getattr = self.computed_getattr or node
        if _reflective(node):
            self.reflective = self.reflective or node
        if isinstance(node, cst.Call) and _code(node.func) in _SHALLOW_COPIES:
            self.shallow_copy = self.shallow_copy or node
        if isinstance(node, cst.FunctionDef):
            holder = self.stack[-2] if len(self.stack) > 1 else None  # the class, past its body
            self.functions.append((node, holder))
        self.stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()
        if isinstance(original_node, cst.FunctionDef):
            self.functions.pop()


def _reflective(node: cst.CSTNode) -> bool:
    """``x.__dict__`` or ``delattr``: attributes reached by a computed name."""
    if isinstance(node, cst.Attribute):
        return node.attr.value == "__dict__"
    return isinstance(node, cst.Name) and node.value == "delattr"


def _computed_getattr(call: cst.Call) -> bool:
    """``getattr(x, name)`` with a name that is no string literal."""
    if not isinstance(call.func, cst.Name) or call.func.value != "getattr":
        return False
    return len(call.args) < 2 or not isinstance(call.args[1].value, cst.SimpleString)


def attribute_count_problem(
    counted: Counted, owner: Owner, steps: list[Step], facts: CountFacts
) -> str | None:
    """Why the ``step()`` calls ``steps`` of the scheduler ``counted``, built as ``self.<a>``
    in ``owner`` with its optimizer ``self.<b>``, cannot be counted in an attribute of the
    object (see the module); None when they can."""
    scheduler, optimizer = counted.scheduler, counted.optimizer
    assert isinstance(scheduler, cst.Attribute) and isinstance(optimizer, cst.Attribute)
    names = (scheduler.attr.value, optimizer.attr.value)
    for built in (scheduler, optimizer):
        if not isinstance(built.value, cst.Name) or built.value.value != owner.receiver:
            return f"`{_text(built)}` is not an attribute of the first parameter of its method"
        problem = _stored_once(built, facts)
        if problem is not None:
            return problem
    uses = _Uses(frozenset(names))
    cst_walk.visit(facts.module, uses)
    problem = _named_otherwise(names[0], uses, facts)
    if problem is not None:
        return problem
    used = facts.used_elsewhere((names[1],))
    if used is not None:  # `def bump(t): o = t.opt; o.step()` in a file not naming the class
        return (
            f"another file of the repository reaches an attribute named `.{names[1]}` at "
            f"{used}, which may step the optimizer or change its lr outside the counted steps"
        )
    stepped = {id(step.call): step.alone for step in steps}
    for use in uses.found:
        if use.node is scheduler or use.node is optimizer:
            continue
        read = _scheduler_use if use.node.attr.value == names[0] else _optimizer_use
        problem = read(use, owner, counted, stepped, facts)
        if problem is not None:
            return problem
    return None


def _stored_once(built: cst.Attribute, facts: CountFacts) -> str | None:
    """Why ``built`` (``self.sched`` as the construction's target) is not the one store of its
    attribute in the file."""
    stores = facts.attribute_stores(built.attr.value)
    if stores is None:
        return (
            f"`.{built.attr.value}` may be set otherwise than by assignment "
            "(`setattr`, `vars`, `__dict__`, a method or property of that name)"
        )
    for store in stores:
        if store is not built:
            return f"`.{built.attr.value}` is assigned again at {facts.place(store)}"
    return None


def _named_otherwise(attribute: str, uses: _Uses, facts: CountFacts) -> str | None:
    """Why ``attribute`` may be reached by a name the file computes or by another file."""
    if attribute in uses.strings:
        return f"the string '{attribute}' is in this file (`getattr`, `attrgetter` may read it)"
    if uses.computed_getattr is not None:
        return (
            f"`getattr` at {facts.place(uses.computed_getattr)} takes a computed name, "
            f"which may be '{attribute}'"
        )
    if uses.reflective is not None:
        return (
            f"`{_text(uses.reflective)}` at {facts.place(uses.reflective)} reaches attributes "
            f"by computed names, which may be '{attribute}'"
        )
    if uses.shallow_copy is not None:
        return (
            f"`{_short(uses.shallow_copy)}` at {facts.place(uses.shallow_copy)} may copy an "
            "object shallowly: the copy would share the scheduler but not a counter"
        )
    copied = facts.called_elsewhere(_SHALLOW_COPIES)
    if copied is not None:
        return (
            f"another file of the repository may copy an object shallowly ({copied}): the copy "
            "would share the scheduler but not a counter"
        )
    if facts.named_elsewhere(attribute):
        return (
            f"`.{attribute}` is named by another file of the repository (a subclass or other "
            "code there may step it or hand it on)"
        )
    return None


def _scheduler_use(
    use: _Use, owner: Owner, counted: Counted, stepped: dict[int, bool], facts: CountFacts
) -> str | None:
    """Why the read ``use`` of the scheduler's attribute keeps its count from being kept."""
    text = _text(use.node)
    if not _own_method(use, owner):
        return (
            f"`{text}` at {facts.place(use.node)} is not read through `{owner.receiver}` in a "
            f"method of `{owner.cls.name.value}` itself"
        )
    call = use.grandparent
    method = use.parent.attr.value if isinstance(use.parent, cst.Attribute) else None
    if not isinstance(call, cst.Call) or call.func is not use.parent or method is None:
        return (
            f"`{text}` is used at {facts.place(use.node)} otherwise than by calling its "
            "methods (handed on, stored or aliased there, its steps would not be counted)"
        )
    if method in facts.reads:
        return None
    if method not in facts.step_methods:
        return (
            f"`{text}.{method}()` at {facts.place(use.node)} may change its step count "
            "(`load_state_dict`) or hand it on"
        )
    if not stepped.get(id(call), False):
        return f"`{text}.{method}()` at {facts.place(call)} is not a statement of its own"
    return None


def _optimizer_use(
    use: _Use, owner: Owner, counted: Counted, stepped: dict[int, bool], facts: CountFacts
) -> str | None:
    """Why the read ``use`` of the optimizer's attribute may change its lr otherwise than
    through the counted scheduler."""
    parent = use.parent
    if isinstance(parent, cst.Arg) and use.grandparent is counted.built:
        return None  # the scheduler's own optimizer argument
    call = use.grandparent
    if isinstance(parent, cst.Attribute) and isinstance(call, cst.Call) and call.func is parent:
        return None  # a method of the optimizer
    if isinstance(parent, cst.Attribute) and parent.attr.value == PARAM_GROUPS:
        groups = f"{_text(use.node)}.{PARAM_GROUPS}"
        if _own_method(use, owner) and not facts.lr_written(groups):
            return None
        return f"`{groups}` at {facts.place(use.node)} is used otherwise than to read its lr"
    return (
        f"`{_text(use.node)}` is used at {facts.place(use.node)} where its learning rate may "
        "be changed (handed to a call the translation does not follow, or stored)"
    )


def _own_method(use: _Use, owner: Owner) -> bool:
    """Whether ``use`` reads ``<receiver>.<attr>`` directly in a method defined in the owner's
    class whose first parameter is the owner's receiver name (no nested function)."""
    function = use.function
    if function is None or use.holder is not owner.cls:
        return False
    if any(_decorator(d) in _NOT_INSTANCE for d in function.decorators):
        return False
    parameters = function.params.params
    if not parameters or parameters[0].name.value != owner.receiver:
        return False
    return isinstance(use.node.value, cst.Name) and use.node.value.value == owner.receiver


def _code(node: cst.CSTNode) -> str:
    return _text(node) if isinstance(node, (cst.Name, cst.Attribute)) else ""


def _short(call: cst.Call) -> str:
    return f"{_text(call.func)}(...)"


def _decorator(decorator: cst.Decorator) -> str:
    return _text(decorator.decorator)


def _text(node: cst.CSTNode) -> str:
    return code_of(node).strip()
