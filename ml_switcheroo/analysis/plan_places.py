"""Where the planner's calls are and what happens around them: the control a statement runs under,
statement order, stored paths, and what a call's arguments hold (``_runs_conditionally``,
``_follows``, ``_store_paths``, ``_first_freeze``...).

Split from ``plan.py`` by ``tools/split_plan.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.parameters import (
    may_be_tensor_class,
)
from ml_switcheroo.analysis.plan_facts import SchedulePlan, Site
from ml_switcheroo.analysis.plan_walks import _is_attribute
from ml_switcheroo.analysis.statements import if_branches
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.semantic_map import ParameterSpec
from ml_switcheroo.spec.signature import code_of, dotted_name

# ---------------------------------------------------------------------- small helpers


def _optimizer_argument(site: Site) -> cst.BaseExpression | None:
    entry = site.entry
    assert entry is not None
    try:
        bound = entry.signature.bind(site.call)
    except Untranslatable:
        return None
    argument = bound.get("optimizer")
    return argument.value if argument is not None else None


def _parameters_of(
    value: cst.BaseExpression, methods: frozenset[str]
) -> tuple[cst.BaseExpression, str] | None:
    """``(m, "parameters")`` for ``m.parameters()`` with no arguments."""
    if (
        isinstance(value, cst.Call)
        and not value.args
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in methods
    ):
        return value.func.value, value.func.attr.value
    return None


def _elements(value: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(value, (cst.List, cst.Tuple)):
        return [e.value for e in value.elements if isinstance(e, cst.Element)]
    return []


def _combined_into(site: Site, outer: Site, components: dict[int, Site]) -> bool:
    parent = components.get(id(site.call))
    while parent is not None:
        if parent is outer:
            return True
        parent = components.get(id(parent.call))
    return False


class _Frame:
    """A class or function of the module around the nodes a ``ModuleScan`` records: what
    ``_first_freeze`` reads of it (``own``), worked out when first asked."""

    __slots__ = ("node", "outer", "_own", "_known")

    def __init__(self, node: cst.ClassDef | cst.FunctionDef, outer: _Frame | None) -> None:
        self.node = node
        self.outer = outer
        self._own: str | None = None
        self._known = False

    def own(self, spec: ParameterSpec) -> str | None:
        """In a class: "" when it is based on no ``tensor_classes`` (else None); in a
        function: the name of its first parameter when it is a (non-static) method of such a
        class, the name an outer method gave unless a parameter rebinds it, else None."""
        if not self._known:
            self._own, self._known = self._compute(spec), True
        return self._own

    def _compute(self, spec: ParameterSpec) -> str | None:
        node = self.node
        if isinstance(node, cst.ClassDef):
            bases = [code_of(b.value).strip() for b in node.bases]
            tensor = any(may_be_tensor_class(b, spec.tensor_classes) for b in bases)
            return None if tensor else ""
        outer = self.outer.own(spec) if self.outer is not None else None
        params = node.params.params
        static = any(code_of(d.decorator).strip() == "staticmethod" for d in node.decorators)
        if outer == "" and params and not static:  # a method of a class based on no tensor
            outer = params[0].name.value
        elif outer and any(p.name.value == outer for p in params):
            outer = None  # a nested function rebinding it
        return outer or None


# what ``ModuleScan`` records of a node of each type: 1 an assignment or a call (what
# ``_first_replacement``, ``_first_freeze`` and ``_first_hook`` read), or another binding
# of a target (a ``for``, a comprehension's ``for``, a ``with`` item: ``_first_freeze``), 2 an
# imaginary literal, 3 an attribute, 4 a name (``_first_complex``, when spelled as a
# ``complex_names``; ``_first_freeze``, as one of the scan's ``words``), 5 a class or function
# (a frame), 0 nothing
_SCANNED: dict[type, int] = {}
_SCANNED_KINDS = (
    ((cst.Assign, cst.AugAssign, cst.AnnAssign, cst.Call, cst.For, cst.CompFor, cst.WithItem), 1),
    ((cst.Imaginary,), 2),
    ((cst.Attribute,), 3),
    ((cst.Name,), 4),
    ((cst.ClassDef, cst.FunctionDef), 5),
)


def _scanned_kind(node_type: type) -> int:
    for kinds, found in _SCANNED_KINDS:
        if issubclass(node_type, kinds):
            _SCANNED[node_type] = found
            return found
    _SCANNED[node_type] = 0
    return 0


class ModuleScan:
    """The nodes of a module the planner's whole-module checks read, in preorder, from one
    walk of the module (``cst_walk.walk``'s order): the assignments, calls and imaginary
    literals, and the names and attributes spelled as one of ``complex_names``; and the class
    or function around each call (``frame``). ``_first_replacement``, ``_first_freeze``,
    ``_first_hook`` and ``_first_complex`` each walked the whole module before. ``words``:
    the names and attributes spelled so are recorded too (``freeze_words``: a freezing
    method or function read but not called is a freeze)."""

    def __init__(
        self,
        module: cst.Module,
        complex_names: frozenset[str],
        words: frozenset[str] = frozenset(),
    ) -> None:
        self.complex_names = complex_names
        self.words = words
        spelled = complex_names | words
        self.nodes: list[cst.CSTNode] = []
        self.frames: dict[int, _Frame | None] = {}  # id(call) -> the class/function it is in
        append, frames = self.nodes.append, self.frames
        kinds, kind_of, children = _SCANNED.get, _scanned_kind, cst_walk.children
        frame: _Frame | None = None
        stack: list[Any] = [module]
        pop, push, extend = stack.pop, stack.append, stack.extend
        while stack:
            node = pop()
            if type(node) is tuple:  # leaving a class or function
                frame = node[0]
                continue
            kind = kinds(type(node))
            if kind is None:
                kind = kind_of(type(node))
            if kind == 1:
                append(node)
                if isinstance(node, cst.Call):
                    frames[id(node)] = frame
            elif kind == 2:
                append(node)
            elif kind == 3:
                if node.attr.value in spelled:
                    append(node)
            elif kind == 4:
                if node.value in spelled:
                    append(node)
            elif kind == 5:
                push((frame,))
                frame = _Frame(node, frame)
            found = children(node)
            found.reverse()
            extend(found)


def _first_freeze(
    module: cst.Module,
    spec: ParameterSpec,
    called: Callable[[cst.BaseExpression], str | None],
    scan: ModuleScan | None = None,
    untouched: Callable[[cst.CSTNode], bool] = lambda node: False,
    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None] | None = None,
) -> str | None:
    """Source of the first freeze of ``module`` (``freeze_scan``) that ``untouched`` does not
    skip (a freeze no optimizer's parameters can be touched by: a library's model no other
    code reaches), or None."""
    return freeze_scan(module, spec, called, scan, parent_of).first(untouched)


def freeze_scan(
    module: cst.Module,
    spec: ParameterSpec,
    called: Callable[[cst.BaseExpression], str | None],
    scan: ModuleScan | None = None,
    parent_of: Callable[[cst.CSTNode], cst.CSTNode | None] | None = None,
) -> FreezeScan:
    """Source of the first ``x.requires_grad = v``, ``x.requires_grad_(v)``,
    ``setattr(x, 'requires_grad', v)`` (the map's ``freeze_setters``, ``called`` naming the
    function; a name other than a plain string literal, ``setattr(p, name, v)``, may be it,
    unless ``x`` is ``self`` of a class based on no ``tensor_classes``),
    ``x.__setattr__('requires_grad', v)`` (``setter_methods``) or
    ``getattr(x, 'requires_grad_')(v)`` (``getter_functions``, the same way) whose value is
    not a literal ``True`` (``requires_grad_()`` alone unfreezes), of a ``freeze_calls``
    method (``p.detach_()``, also through a getter), of a call making parameters frozen
    (``_makes_frozen``) or of a library call freezing a model's (``freezing_calls``:
    ``get_peft_model(model, config)``): the freezes of ``module``, found as ``FreezeScan.first``
    reads them. ``scan``: the module's ``ModuleScan`` (made here when not given).

    Probe s41: a freeze attribute stored through an unpacking or a loop's target
    (``a.requires_grad, b.requires_grad = False, False``, ``for p.requires_grad in ...``:
    any value), a freezing method or function read but not called (``f =
    p.requires_grad_``, ``p.requires_grad_.__call__(False)``, ``partial(setattr, ...)``,
    ``map(setattr, ...)``: ``freeze_words``, recorded by ``scan``), a string naming a
    freezing method given to a call (``methodcaller('requires_grad_', False)``, ``getattr(p,
    'detach_')`` not called at once), and a freeze attribute (or a computed name) given to one
    of ``attribute_callers`` (``attrgetter('requires_grad')``) are freezes too; such a read
    is shown by the call or assignment holding it (``parent_of``, when given)."""
    attributes, methods = spec.freeze_attributes, spec.freeze_methods
    words = freeze_words(spec)
    if scan is None or not words <= scan.words:
        scan = ModuleScan(module, spec.complex_names, words)
    referring = spec.freeze_references
    callees: set[int] = set()  # the callee of each call met (before its parts: preorder)

    def is_true(node: cst.BaseExpression) -> bool:
        return isinstance(node, cst.Name) and node.value == "True"

    def names(
        call: cst.Call,
        name: cst.BaseExpression,
        named: frozenset[str],
        target: cst.BaseExpression,
    ) -> bool:
        """The attribute ``name`` (an argument) may be one of ``named``: a string literal
        of them, or computed (unless set on ``self`` of an object no tensor is)."""
        if isinstance(name, cst.SimpleString):
            return name.evaluated_value in named
        frame = scan.frames.get(id(call))
        own = frame.own(spec) if frame is not None else None
        return not (own and isinstance(target, cst.Name) and target.value == own)

    def stores(target: cst.BaseExpression) -> bool:  # an attribute inside an unpacking
        if isinstance(target, (cst.Tuple, cst.List)):
            return any(stores(e.value) for e in target.elements)
        if isinstance(target, cst.StarredElement):
            return stores(target.value)
        return _is_attribute(target, attributes)

    def freezes(node: cst.CSTNode) -> bool:
        if isinstance(node, cst.Call):
            callees.add(id(node.func))
        elif isinstance(node, (cst.Attribute, cst.Name)):  # read, not called (F15)
            if id(node) in callees:
                return False
            if isinstance(node, cst.Attribute) and node.attr.value in referring:
                return True
            return called(node) in spec.freeze_setters
        if isinstance(node, cst.Assign):
            return any(
                (_is_attribute(target.target, attributes) and not is_true(node.value))
                or (not _is_attribute(target.target, attributes) and stores(target.target))
                for target in node.targets
            )
        if isinstance(node, (cst.For, cst.CompFor)):  # `for p.requires_grad in ...`
            return stores(node.target)
        if isinstance(node, cst.WithItem):
            return node.asname is not None and stores(node.asname.name)
        if isinstance(node, cst.AugAssign):
            return _is_attribute(node.target, attributes)
        if isinstance(node, cst.AnnAssign):  # `p.requires_grad: bool = False`
            value = node.value
            return (
                value is not None and _is_attribute(node.target, attributes) and not is_true(value)
            )
        if not isinstance(node, cst.Call):
            return False
        frozen = _makes_frozen(node, spec) or _is_attribute(node.func, spec.freeze_calls)
        written = " ".join(code_of(node.func).split())
        frozen = frozen or spec.freezing_call(written, called(node.func))
        if frozen or (
            _is_attribute(node.func, methods) and node.args and not is_true(node.args[0].value)
        ):
            return True
        if len(node.args) == 3 and called(node.func) in spec.freeze_setters:
            target, name, value = (a.value for a in node.args)
            return names(node, name, attributes, target) and not is_true(value)
        if len(node.args) == 2 and _is_attribute(node.func, spec.setter_methods):
            name, value = (a.value for a in node.args)  # `p.__setattr__("requires_grad", v)`
            target = node.func.value  # type: ignore[attr-defined]
            return names(node, name, attributes, target) and not is_true(value)
        getter = node.func
        if (
            isinstance(getter, cst.Call)
            and len(getter.args) >= 2
            and called(getter.func) in spec.getter_functions
        ):  # `getattr(p, "requires_grad_")(v)`, `getattr(p, "detach_")()`
            target, name = (a.value for a in getter.args[:2])
            calls = names(node, name, spec.freeze_calls, target)
            return calls or (names(node, name, methods, target) and not _true_argument(node))
        return _names_freeze(node, called, referring, attributes, spec, id(node) in callees)

    return FreezeScan(scan.nodes, freezes, parent_of)


class FreezeScan:
    """``_first_freeze`` asked several times of one module with other ``untouched`` tests (one
    per optimizer): whether a node freezes is asked once per node, in the module's order and
    only as far as a question reads (the freezes found so far are kept)."""

    def __init__(
        self,
        nodes: Sequence[cst.CSTNode],
        freezes: Callable[[cst.CSTNode], bool],
        parent_of: Callable[[cst.CSTNode], cst.CSTNode | None] | None = None,
    ):
        self._nodes = nodes
        self._freezes = freezes
        self._parent_of = parent_of
        self._read = 0  # nodes asked so far
        self._found: list[cst.CSTNode] = []  # those of them that freeze, in order

    def _freezing(self) -> Iterator[cst.CSTNode]:
        position = 0
        while True:
            if position < len(self._found):
                yield self._found[position]
                position += 1
                continue
            if self._read >= len(self._nodes):
                return
            node = self._nodes[self._read]
            self._read += 1
            if self._freezes(node):
                self._found.append(node)

    def first(self, untouched: Callable[[cst.CSTNode], bool]) -> str | None:
        """Source of the first freezing node ``untouched`` does not skip, or None: a loop's
        header, not its body; a read shown by the call or assignment holding it."""
        found = next((node for node in self._freezing() if not untouched(node)), None)
        if isinstance(found, cst.For):  # its header, not its body
            return f"for {code_of(found.target).strip()} in {code_of(found.iter).strip()}"
        if isinstance(found, (cst.Name, cst.Attribute)) and self._parent_of is not None:
            found = _holder(found, self._parent_of)  # `put = setattr`, `map(setattr, ...)`
        return code_of(found).strip() if found is not None else None


def _holder(
    node: cst.CSTNode, parent_of: Callable[[cst.CSTNode], cst.CSTNode | None]
) -> cst.CSTNode:
    """The nearest call or assignment around ``node`` in its statement, else ``node``."""
    parent = parent_of(node)
    while parent is not None and not isinstance(parent, (cst.BaseStatement, cst.Module)):
        if isinstance(parent, (cst.Call, cst.Assign, cst.AnnAssign)):
            return parent
        parent = parent_of(parent)
    return node


def freeze_words(spec: ParameterSpec) -> frozenset[str]:
    """The methods and functions that freeze (``freeze_references``, the last part of
    ``freeze_setters``): read other than as a callee, a freeze (probe s41 F15)."""
    setters = {name.rpartition(".")[2] for name in spec.freeze_setters}
    return spec.freeze_references | setters


def _names_freeze(
    call: cst.Call,
    called: Callable[[cst.BaseExpression], str | None],
    referring: frozenset[str],
    attributes: frozenset[str],
    spec: ParameterSpec,
    is_callee: bool,
) -> bool:
    """``call`` names a freezing method by a string (``methodcaller('requires_grad_',
    False)``, ``getattr(p, 'detach_')`` whose result is not called at once: ``is_callee``
    false), or is one of ``attribute_callers`` given a freeze attribute or a computed name
    (``attrgetter('requires_grad')``, ``attrgetter('hidden.requires_grad_')``)."""

    def last(value: cst.BaseExpression) -> str | None:
        if isinstance(value, cst.SimpleString):
            evaluated = value.evaluated_value
            return evaluated.rpartition(".")[2] if isinstance(evaluated, str) else None
        return None

    func = call.func
    qualified = called(func) if isinstance(func, (cst.Name, cst.Attribute)) else None
    if qualified in spec.getter_functions and is_callee:
        return False  # `getattr(p, "requires_grad_")(v)`: read with its call
    named = [last(a.value) for a in call.args]
    if any(name in referring for name in named):
        return True
    if qualified in spec.attribute_callers:
        return any(name is None or name in attributes for name in named)
    return False


def _true_argument(call: cst.Call) -> bool:
    """The first argument of ``call`` is a literal ``True``."""
    first = call.args[0].value if call.args else None
    return isinstance(first, cst.Name) and first.value == "True"


def _first_hook(
    module: cst.Module,
    spec: ParameterSpec,
    called: Callable[[cst.BaseExpression], str | None] = lambda func: None,
    scan: ModuleScan | None = None,
) -> str | None:
    """Source of the first call of one of the map's ``hook_methods`` (``p.register_hook(h)``,
    ``m.register_full_backward_hook(h)``), or of a function named so (torch's global
    ``register_optimizer_step_pre_hook(h)``, under any import name: ``called`` qualifies the
    callee), in ``module``, or None."""

    def registers(call: cst.Call) -> bool:
        if _is_attribute(call.func, spec.hook_methods):
            return True
        name = call.func.value if isinstance(call.func, cst.Name) else None
        qualified = called(call.func) or ""
        if name in spec.hook_methods or qualified.rpartition(".")[2] in spec.hook_methods:
            return True
        # `getattr(p, "register_hook")(f)`, `apply(p.register_hook, f)` (probe s33)
        return any(_names_hook(a.value, spec.hook_methods) for a in call.args)

    def aliases(node: cst.CSTNode) -> bool:  # `reg = p.register_hook` (probe s33)
        value = (
            getattr(node, "value", None) if isinstance(node, (cst.Assign, cst.AnnAssign)) else None
        )
        return value is not None and _names_hook(value, spec.hook_methods)

    nodes = (scan or ModuleScan(module, spec.complex_names)).nodes
    found = next(
        (n for n in nodes if (isinstance(n, cst.Call) and registers(n)) or aliases(n)), None
    )
    return code_of(found).strip() if found is not None else None


def _names_hook(value: cst.BaseExpression, methods: frozenset[str]) -> bool:
    """Whether ``value`` is a registration method itself (``p.register_hook``) or a string
    naming one (``"register_hook"``, as ``getattr`` is given it)."""
    if isinstance(value, cst.Attribute):
        return value.attr.value in methods
    return isinstance(value, cst.SimpleString) and value.evaluated_value in methods


def _first_complex(
    module: cst.Module, spec: ParameterSpec, scan: ModuleScan | None = None
) -> cst.CSTNode | None:
    """The first place in ``module``'s code (not its strings or comments) where parameters may
    be made complex: a name or attribute spelled as one of the map's ``complex_names``
    (``torch.cfloat``, ``w.cdouble()``, ``torch.polar(a, b)``) or an imaginary literal
    (``1j``); None when there is none. The ``cst`` twin of ``cross_file._complex_node``."""
    names = spec.complex_names
    if scan is None or scan.complex_names != names:
        scan = ModuleScan(module, names)
    for node in scan.nodes:
        if isinstance(node, cst.Imaginary):
            return node
        if isinstance(node, cst.Attribute) and node.attr.value in names:
            return node
        if isinstance(node, cst.Name) and node.value in names:
            return node
    return None


def _makes_frozen(call: cst.Call, spec: ParameterSpec) -> bool:
    """``nn.Parameter(w, requires_grad=v)`` (the map's ``freeze_keywords``) with ``v`` (the
    keyword or the second positional argument) given and not a literal True, or
    ``nn.Embedding.from_pretrained(w)`` (``frozen_by_default``) without its keyword a literal
    False; the ``cst`` twin of ``cross_file._makes_frozen``."""
    written = " ".join(code_of(call.func).split())
    positional = [a.value for a in call.args if a.keyword is None and not a.star]

    def given(keyword: str) -> cst.BaseExpression | None:
        named = [a.value for a in call.args if a.keyword and a.keyword.value == keyword]
        values = named + positional[1:2]
        return values[0] if values else None

    def literal(value: cst.BaseExpression | None, name: str) -> bool:
        return isinstance(value, cst.Name) and value.value == name

    def matches(callee: str) -> bool:
        return written == callee or written.endswith("." + callee)

    # `**mapping` / `*args` may hold the keyword (probe s41 F10)
    unpacked = any(a.star for a in call.args)
    starred = any(a.star == "*" for a in call.args)
    for callee, keyword in spec.freeze_keywords:
        if matches(callee):
            value = given(keyword)
            if value is None:
                return unpacked
            return not literal(value, "True")
    for callee, keyword in spec.frozen_by_default:
        if matches(callee):
            return not literal(given(keyword), "False")
    for callee, keyword in spec.freeze_flags:
        if matches(callee):
            flag = [a.value for a in call.args if a.keyword and a.keyword.value == keyword]
            if not starred:  # `nn.Embedding(..., None, True)`
                places = spec.freeze_flag_positions
                flag += [positional[p] for c, p in places if matches(c) and p < len(positional)]
            if not flag:
                return unpacked
            return not literal(flag[0], "False")
    return False


_EXPRESSION_CONTROL = (
    cst.IfExp,
    cst.BooleanOperation,
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
    cst.Lambda,
)


def _runs_conditionally(site: Site) -> bool:
    """Whether ``site``'s call sits, within its statement, in an expression that may run it
    any number of times (``a if c else b``, ``c and a``, a comprehension, a lambda)."""
    found = False
    depth = 0

    class _Find(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            nonlocal found, depth
            if node is site.call:
                found = depth > 0
                return False
            if isinstance(node, _EXPRESSION_CONTROL):
                depth += 1
            return True

        def on_leave(self, original_node: cst.CSTNode) -> None:
            nonlocal depth
            if isinstance(original_node, _EXPRESSION_CONTROL):
                depth -= 1

    cst_walk.visit(site.statement, _Find())
    return found


def _same_control(step: Site, optimizer_steps: list[Site]) -> bool:
    """``sched.step()`` under exactly the same loops and conditions as an ``opt.step()``,
    and after it."""
    for opt_step in optimizer_steps:
        if opt_step.controls != step.controls:
            continue
        if opt_step.path[:-1] == step.path[:-1] and opt_step.index < step.index:
            return True
        if opt_step.statement is step.statement:
            return True
    return False


def _follows(first: Site, later: Site) -> bool:
    """``later`` is in a statement after ``first``'s, in ``first``'s block or nested in it."""
    depth = len(first.path) - 1
    if len(later.path) <= depth or later.path[:depth] != first.path[:depth]:
        return False
    block, index = first.path[depth]
    return later.path[depth][0] == block and later.path[depth][1] > index


def _loss_name(backward: Site) -> str:
    """The loss the suggestion names: a plain (dotted) name, else ``loss``."""
    positional = [a for a in backward.call.args if a.keyword is None and not a.star]
    receiver = backward.receiver
    if positional and isinstance(receiver, (cst.Name, cst.Attribute)):
        candidate = positional[0].value  # accelerator.backward(loss), self.manual_backward(loss)
    elif isinstance(receiver, cst.Call) and receiver.args:  # scaler.scale(loss).backward()
        candidate = receiver.args[0].value
    else:
        candidate = receiver  # loss.backward(), loss.backward(retain_graph=True)
    name = dotted_name(candidate) if candidate is not None else None
    return name or "loss"


_BUILTIN_NAMES = frozenset({"float", "int", "inf", "len", "abs", "min", "max", "round"})


def _paths(value: cst.CSTNode) -> list[str]:
    """The attribute and subscript expressions ``value`` reads (``args.clip``, ``cfg["c"]``)."""
    return [" ".join(code_of(node).split()) for node in _path_nodes(value)]


def _schedule_values(members: list[Site]) -> list[cst.BaseExpression]:
    """The arguments of the schedule's constructors but the optimizer they wrap."""
    return [a.value for m in members for a in m.call.args if a.value is not _optimizer_argument(m)]


def _store_paths(node: cst.CSTNode) -> set[str]:
    """The attribute and subscript targets ``node`` assigns (``args.clip = ...``), as text."""
    return {" ".join(code_of(t).split()) for t in _store_targets(node)}


def _store_targets(node: cst.CSTNode) -> list[cst.BaseExpression]:
    """The attribute and subscript targets ``node`` assigns, deletes or loops over."""
    stores: list[cst.BaseExpression] = []

    class _Stores(cst.CSTVisitor):
        def _add(self, target: cst.BaseExpression) -> None:
            if isinstance(target, (cst.Attribute, cst.Subscript)):
                stores.append(target)
            elif isinstance(target, (cst.Tuple, cst.List)):
                for element in target.elements:
                    self._add(element.value)

        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            self._add(node.target)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            self._add(node.target)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            self._add(node.target)

        def visit_For(self, node: cst.For) -> None:
            self._add(node.target)

        def visit_Del(self, node: cst.Del) -> None:
            self._add(node.target)

    cst_walk.visit(node, _Stores())
    return stores


def _path_nodes(value: cst.CSTNode) -> list[cst.BaseExpression]:
    """The attribute and subscript expressions ``value`` reads (``_paths``, as nodes)."""
    found: list[cst.BaseExpression] = []

    class _Collect(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            found.append(node)

        def visit_Subscript(self, node: cst.Subscript) -> None:
            found.append(node)

    cst_walk.visit(value, _Collect())
    return found


def _last_key(node: cst.BaseExpression) -> str | None:
    """The last attribute or string key of a path (``clip`` of ``args.clip``, ``cfg["clip"]``)."""
    if isinstance(node, cst.Attribute):
        return node.attr.value
    if isinstance(node, cst.Subscript) and len(node.slice) == 1:
        index = node.slice[0].slice
        if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
            return str(index.value.evaluated_value)
    return None


def _holders(node: cst.BaseExpression) -> set[str]:
    """The objects a path goes through, as text (``args``, ``args.opt`` of ``args.opt.clip``)."""
    found: set[str] = set()
    inner: cst.BaseExpression = node
    while isinstance(inner, (cst.Attribute, cst.Subscript)):
        inner = inner.value
        found.add(" ".join(code_of(inner).split()))
    return found


# builtins that only read the objects handed to them
_READING_BUILTINS = frozenset(
    {"print", "len", "str", "repr", "format", "isinstance", "hasattr", "getattr", "id", "type"}
)


def _changes_holder(call: cst.Call, holders: set[str]) -> bool:
    """Whether ``call`` is a method call on one of ``holders``, or hands one to a function that
    may store into it (``adjust(args)``, in this file or another; a builtin that changes
    attributes by name), not to a builtin that only reads it (``print(args)``)."""
    func = call.func
    if isinstance(func, cst.Attribute) and " ".join(code_of(func.value).split()) in holders:
        return True
    if isinstance(func, cst.Name) and func.value in _READING_BUILTINS:
        return False
    return any(" ".join(code_of(arg.value).split()) in holders for arg in call.args)


def _overlaps(read: str, stored: str) -> bool:
    """``args.clip`` is changed by a store to ``args.clip``, ``args.clip.x`` or ``args.clip[0]``
    and reads through a store to ``args.clip`` (one is a prefix path of the other)."""
    if read == stored:
        return True
    shorter, longer = sorted((read, stored), key=len)
    return longer.startswith(shorter) and longer[len(shorter)] in ".["


def _calls_a_method(node: cst.CSTNode, methods: Iterable[str]) -> bool:
    """Whether ``node`` calls ``x.<method>(...)`` for one of ``methods``."""
    wanted = frozenset(methods)
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            nonlocal found
            func = call.func
            found = found or (isinstance(func, cst.Attribute) and func.attr.value in wanted)

    cst_walk.visit(node, _Find())
    return found


def _holds_call_of(statement: cst.CSTNode, methods: Iterable[str]) -> bool:
    """Whether ``statement`` holds a call of a method named in ``methods``."""
    names = set(methods)
    stack = [statement]
    while stack:
        node = stack.pop()
        if (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in names
        ):
            return True
        stack.extend(cst_walk.children(node))
    return False


def _lone_backward(statement: cst.BaseStatement, methods: Iterable[str]) -> bool:
    """``loss.backward(...)`` alone on its line: a backward method of a name, no positional
    argument (``accelerator.backward(loss)`` is not one)."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    call = small.value if isinstance(small, cst.Expr) else None
    return (
        isinstance(call, cst.Call)
        and isinstance(call.func, cst.Attribute)
        and call.func.attr.value in methods
        and isinstance(call.func.value, cst.Name)
        and all(argument.keyword is not None for argument in call.args)
    )


def _movable(statement: cst.BaseStatement) -> bool:
    """A simple line of expressions and assignments only (no jump, no definition), or an
    ``if`` (``elif``, ``else``) of such lines only (``if i % 100 == 0: print(loss.item())``)."""
    if isinstance(statement, cst.If):
        branches = if_branches(statement)
        return branches is not None and all(_movable(s) for b in branches[1] for s in b)
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Expr, cst.Assign, cst.AugAssign, cst.AnnAssign))
        for small in statement.body
    )


def changed_in_place(statement: cst.BaseStatement, suffix: str | None) -> str | None:
    """The name a line of in-place method calls alone changes (``label.data.resize_(n).fill_(
    1)``, ``noise.normal_(0, 1)``: each method ends in the map's ``in_place_suffix``, on the
    name or its ``.data``), else None."""
    if not suffix or not isinstance(statement, cst.SimpleStatementLine):
        return None
    if len(statement.body) != 1 or not isinstance(statement.body[0], cst.Expr):
        return None
    node = statement.body[0].value
    if not isinstance(node, cst.Call):
        return None
    while isinstance(node, cst.Call):
        if not isinstance(node.func, cst.Attribute) or not node.func.attr.value.endswith(suffix):
            return None
        node = node.func.value
    if isinstance(node, cst.Attribute) and node.attr.value == "data":
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def _steps_at(epoch: str, start: cst.Integer | cst.Name | cst.Attribute) -> str:
    """The scheduler's step count at its step in ``for epoch in range(start, n)`` of a fresh
    scheduler: ``epoch - start + 1`` (``epoch + 1`` from 0, ``epoch`` from 1)."""
    if isinstance(start, (cst.Name, cst.Attribute)):
        return f"{epoch} - {code_of(start).strip()} + 1"
    offset = 1 - int(start.evaluated_value)
    if offset == 0:
        return epoch
    return f"{epoch} + {offset}" if offset > 0 else f"{epoch} - {-offset}"


def _stepping(schedule: SchedulePlan) -> dict[str, str]:
    """The values of a finding about how a scheduler steps: its optimizer's name."""
    opt = code_of(schedule.optimizer.target).strip() if schedule.optimizer.target else "opt"
    return {"optimizer": opt}


def _zeroes_between_updates(zero: Site, steps: list[Site]) -> bool:
    """Whether ``zero``, not under the same loops and conditions as any step, runs inside a
    loop that also runs a step (``opt.zero_grad()`` each batch, the step every k): torch then
    drops the gradients summed since the last update, so it is no mere repetition of the
    zero_grad() that runs with the step and cannot go without a word."""
    if any(step.controls == zero.controls for step in steps):
        return False
    loops = [c for c in zero.controls if isinstance(c, (cst.For, cst.While))]
    return any(loop in step.controls for step in steps for loop in loops)
