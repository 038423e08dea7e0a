"""Parameters that may get no gradient in a step (probe s41 F21, F25, F26).

After ``zero_grad()`` (``set_to_none=True``, torch 2's default) a parameter the loss does not
reach keeps ``.grad`` None, and torch's optimizers skip it: no update, no weight decay, no
change of its moments or of its step count. A JAX gradient holds a zero there, and an optax
transformation (or ``nnx.Optimizer``) still decays it, moves it by the moments of earlier
steps and counts the step in its bias correction (measured: multi-task heads with Adam 0.134
relative off torch; linear probing by ``.detach()`` with weight decay 0.25). So the code that
may leave a trained parameter without a gradient makes its optimizers escape:

- a submodule whose every use is cut from the gradient (``cut_only``): the receiver of
  ``.detach()`` (the map's ``gradient_cutting_methods``) or ``.data``
  (``gradient_cutting_attributes``), a ``with torch.no_grad():`` block or a method decorated
  so (``gradient_free_contexts``, ``torch.set_grad_enabled(False)``);
- a submodule picked by a computed index, ``self.heads[task](h)`` (the other heads get no
  gradient that step), unless the index is a ``for`` target of the method;
- a ``continue`` or ``break`` in a loop that runs submodules (LayerDrop skips a layer);
- an ``if`` on anything but ``self`` and constants whose branches run different submodules
  (``if task == 0: out = self.head0(h) else: out = self.head1(h)``);
- a ``.grad`` set to None (``p.grad = None``, ``del p.grad``, ``setattr(p, "grad", None)``)
  other than in a loop over every parameter of a model (``for p in m.parameters():``, torch's
  ``zero_grad`` by hand: the backward pass fills them again).

The submodules are ``self``'s, read in the methods of each class defining ``forward``, and, in
the optimizer's own file, those of the trained model's name (``model.hidden(x).detach()`` in
the step) when the file never calls that model whole with a gradient. Not seen: a submodule
no code calls (weight decay moves it, the loss is the same), and code the run does not read
(a library model's LayerDrop): such a model is taken to give every parameter a gradient in
every step, as it is taken to train them all.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, replace

from ml_switcheroo.analysis import ast_nodes
from ml_switcheroo.analysis.ast_nodes import dotted
from ml_switcheroo.spec.semantic_map import SemanticMap

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


@dataclass(frozen=True)
class CutFacts:
    """The map's names this module reads (``parameters`` section)."""

    cutting_methods: frozenset[str]  # `x.detach()`
    cutting_attributes: frozenset[str]  # `x.data`
    free_contexts: frozenset[str]  # `no_grad`: the last name of the context or decorator
    grad_attributes: frozenset[str]  # `p.grad`
    clearing_methods: frozenset[str]  # `m.part.zero_grad()`
    parameter_free: frozenset[str]  # `nn.ReLU`: module classes holding no parameter (last name)
    module_methods: frozenset[str]  # `m.parameters()`
    # `m.to(d)`, `m.train()`, `m.parameters()`, `m.load_state_dict(sd)`: a module's own API,
    # no part of it
    module_api: frozenset[str] = frozenset()
    wrapped_module: frozenset[str] = frozenset()  # `ddp.module`: the model a wrapper wraps


def cut_facts(semantic_map: SemanticMap) -> CutFacts:
    """``CutFacts`` of the map (its ``parameters`` section, ``gradient_attributes``)."""
    spec = semantic_map.parameters
    return CutFacts(
        spec.gradient_cutting_methods,
        spec.gradient_cutting_attributes,
        frozenset(name.rpartition(".")[2] for name in spec.gradient_free_contexts),
        semantic_map.gradient_attributes,
        spec.gradient_clearing_methods,
        frozenset(name.rpartition(".")[2] for name in spec.parameter_free_modules),
        spec.module_methods,
        frozenset(
            {
                *spec.module_methods,
                *semantic_map.modules.self_methods,
                *spec.detached_methods,
                *semantic_map.gradient_free_methods,
            }
        ),
        spec.wrapped_module,
    )


def words(facts: CutFacts) -> frozenset[str]:
    """Words a file holding a skip holds one of (a cheap test before parsing it)."""
    return frozenset({"forward", "find_unused_parameters", *facts.grad_attributes})


CUT = "runs only cut from the gradient (detached, or under torch.no_grad())"
PICKED = "runs one submodule picked by a computed index or name"
JUMPED = "may skip a submodule (a `continue`, `break` or `return` in a loop running them, a filter)"
BRANCHED = "runs different submodules by a value"
CLEARED = "sets gradients to None"
DECLARED = "declares that some parameters get no gradient"


def first_gradient_skip(
    tree: ast.Module,
    facts: CutFacts,
    trained: Collection[str] | Mapping[str, str] = (),
    optimizers: Collection[str] = (),
    defined_elsewhere: Callable[[str], bool] = lambda name: False,
    called_elsewhere: Collection[str] = (),
    unrun_elsewhere: Callable[[str], bool] = lambda attribute: False,
) -> tuple[ast.AST, str] | None:
    """The first node of ``tree`` that may leave a trained parameter without a gradient in a
    step (see the module's docstring), in the order of the file, and why (``CUT``,
    ``PICKED``, ``JUMPED``, ``BRANCHED``, ``CLEARED``, ``DECLARED``); None when there is none.
    ``trained``: the dotted names of the models this file's optimizers train (``model``,
    ``self.model``): their parts picked by a computed index anywhere in the file, and, when
    the file never calls the model whole with a gradient, their parts run only cut from the
    gradient; ``optimizers``: the dotted names of its optimizers (``self.opt.zero_grad()``
    clears no part of a trained ``self``). A function this file defines or
    ``defined_elsewhere`` (a ``def`` of the repository: ``agent.get_value(x)`` under no_grad)
    is no part of a trained name: its parameters may run elsewhere. A mapping ``trained``
    gives each name the name it was spread from (``handed_models.spread``): the names of one
    model are called whole when one of them is (``extract(net)`` next to ``model(x)``), or
    when their root is one of ``called_elsewhere`` (the file handing them calls it whole).
    ``unrun_elsewhere``: whether module classes of other files store a submodule no forward
    of theirs runs (``stored_unrun``; probe s43 e12, the model's class in models.py)."""
    nodes = ast_nodes.walk(tree)
    facts = replace(facts, free_contexts=facts.free_contexts | _context_aliases(nodes, facts))
    found: list[tuple[ast.AST, str]] = []
    defined = {n.name for n in nodes if isinstance(n, _FUNCTIONS)}
    parents: dict[int, ast.AST] = {}  # the module's classes only, unless more is asked
    classes = _module_classes(nodes)
    for node in classes:
        ast_nodes.walk_with_parents(node, parents)
    kinds = _CLEARING_KINDS
    clears = [n for n in nodes if type(n) in kinds and _may_clear(n, facts)]
    if clears or trained:  # (whole-file parents: rare for a file the optimizer is not in)
        parents = {}
        ast_nodes.walk_with_parents(tree, parents)
    entries = _methods_called_on_models(nodes, trained, facts, parents) if classes else set()
    for node in classes:
        methods = [m for m in node.body if isinstance(m, _FUNCTIONS)]
        own = {m.name for m in methods}
        parts = _submodules(methods, facts) - own
        found.extend(_class_skips(methods, parts, own, facts, parents, entries))
    unused = bool(clears) and any(_allows_unused(n) for n in nodes if type(n) is ast.Call)
    for node in clears:
        found.extend(_grad_cleared(node, facts, parents, trained, optimizers, unused))
        if isinstance(node, ast.Call) and _declares_unused(node):
            found.append((node, DECLARED))
    unrun = _never_run(classes, facts) if trained else frozenset()

    def never_run(attribute: str) -> bool:  # (asked of a part run only cut: rare)
        return attribute in unrun or unrun_elsewhere(attribute)

    def method(node: ast.AST) -> bool:  # `agent.get_value(x)`: a function, no part
        return _method_called(node, defined, defined_elsewhere)

    roots = trained if isinstance(trained, Mapping) else {name: name for name in trained}

    def owners(name: str) -> list[str]:  # `model.module.heads[t]` after `model = DDP(model)`
        return [name, *(f"{name}.{w}" for w in sorted(facts.wrapped_module))]

    running = _whole_methods(classes)  # `model.compute_loss(x)` runs `self(x)` (probe s43 f03)
    called = set(called_elsewhere) | {
        roots[name]
        for name in roots
        if any(_called_whole(tree, owner, facts, parents, running) for owner in owners(name))
    }
    for name in sorted(roots):
        if name == "self":
            continue
        whole = roots[name] in called
        cut = None if not whole else never_run  # (a whole call runs what its forward runs)
        for owner in owners(name):
            for node, why in _name_skips(tree, owner, facts, parents, cut, method):
                if why == CUT and method(node):
                    continue
                found.append((node, why))
    return min(found, key=lambda f: _position(f[0]), default=None)


def _context_aliases(nodes: list[ast.AST], facts: CutFacts) -> frozenset[str]:
    """Names the file binds to a gradient-free context (``ng = torch.no_grad``, ``ctx =
    torch.no_grad() if probe else nullcontext()``: probe s43b j01)."""
    return frozenset(
        target.id
        for node in nodes
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Attribute | ast.Name | ast.Call | ast.IfExp)
        and _free_context(node.value, facts)
        for target in node.targets
        if isinstance(target, ast.Name)
    )


_CLEARING_KINDS = frozenset({ast.Call, ast.Assign, ast.Delete, ast.AnnAssign})


def _may_clear(node: ast.AST, facts: CutFacts) -> bool:
    """``node`` may clear a gradient or declare unused parameters (``_grad_cleared``,
    ``_declares_unused``): a cheap test of its kind and names first."""
    if isinstance(node, ast.Call):
        func = node.func
        return (
            (isinstance(func, ast.Attribute) and func.attr in facts.clearing_methods)
            or (isinstance(func, ast.Name) and func.id == "setattr")
            or any(k.arg == "find_unused_parameters" for k in node.keywords)
        )
    if isinstance(node, ast.Assign | ast.Delete):
        return any(_grad_target(t, facts) for t in node.targets)
    if isinstance(node, ast.AnnAssign):
        return _grad_target(node.target, facts)
    return False


def _module_classes(nodes: list[ast.AST]) -> list[ast.ClassDef]:
    """The classes among ``nodes`` defining ``forward``, and those based (by name, to any
    depth) on one of them (a subclass overriding a helper of its base's forward)."""
    classes = [n for n in nodes if isinstance(n, ast.ClassDef)]
    found = {c.name for c in classes if defines_method(c, "forward")}
    changed = True
    while changed:
        more = {
            c.name
            for c in classes
            if c.name not in found and any(dotted(b) in found for b in c.bases)
        }
        changed, found = bool(more), found | more
    return [c for c in classes if c.name in found]


def _declares_unused(call: ast.Call) -> bool:
    """``DistributedDataParallel(m, find_unused_parameters=True)`` (any value but a literal
    False): the author says some parameters get no gradient in some steps."""
    return any(
        k.arg == "find_unused_parameters"
        and not (isinstance(k.value, ast.Constant) and k.value.value is False)
        for k in call.keywords
    )


def _method_called(
    node: ast.AST, defined: Collection[str], defined_elsewhere: Callable[[str], bool]
) -> bool:
    """``node`` calls ``m.A(...)`` with ``A`` a function the repository defines."""
    func = node.func if isinstance(node, ast.Call) else None
    name = func.attr if isinstance(func, ast.Attribute) else None
    return name is not None and (name in defined or defined_elsewhere(name))


def defines_method(node: ast.ClassDef, method: str) -> bool:
    """The body of the class ``node`` defines ``method`` (``forward``: a module class)."""
    return any(isinstance(s, _FUNCTIONS) and s.name == method for s in node.body)


def _submodules(methods: list[ast.AST], facts: CutFacts) -> set[str]:
    """The attributes ``self.A = ...`` of ``methods`` store (any target of an assignment) that
    may hold parameters: not when every store is a constant (``self.decay = 0.99``) or a call
    of one of the map's ``parameter_free_modules`` (``nn.ReLU()``, ``nn.CrossEntropyLoss()``)."""
    stores: dict[str, list[ast.AST | None]] = {}
    for method in methods:
        for node in ast_nodes.walk(method):
            if not isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for inner in ast.walk(target):
                    if (
                        isinstance(inner, ast.Attribute)
                        and isinstance(inner.ctx, ast.Store)
                        and isinstance(inner.value, ast.Name)
                        and inner.value.id == "self"
                    ):
                        single = target is inner and not isinstance(node, ast.AugAssign)
                        stores.setdefault(inner.attr, []).append(node.value if single else None)

    def parameter_free(value: ast.AST | None) -> bool:
        if isinstance(value, ast.Constant):
            return True
        if isinstance(value, ast.Call):
            name = dotted(value.func)
            return name is not None and name.rpartition(".")[2] in facts.parameter_free
        return False

    return {name for name, values in stores.items() if not all(map(parameter_free, values))}


def _class_skips(
    methods: list[ast.AST],
    parts: Collection[str],
    own: Collection[str],
    facts: CutFacts,
    parents: dict[int, ast.AST],
    entries: Collection[str] = (),
) -> Iterator[tuple[ast.AST, str]]:
    """The skip signals of a module class's submodules ``parts`` in its ``methods`` (not
    ``__init__``: it runs once, when the model is built); ``own``: its methods; ``entries``:
    methods the file calls on a model with a gradient, run as ``forward`` is."""
    uses: dict[str, list[tuple[ast.AST, str, bool, bool]]] = {}
    later = [m for m in methods if getattr(m, "name", None) != "__init__"]
    varying = _stored_on_self(later)  # `self.task = task` in forward: a value, not a setting
    free = {  # (a `@torch.no_grad()` predict runs no step: probe s43b FE2)
        m.name  # type: ignore[attr-defined]
        for m in later
        if any(_free_context(d, facts) for d in m.decorator_list)  # type: ignore[attr-defined]
    }
    forward = _forward_methods(later, set(entries) - free)
    for method in later:
        name = method.name  # type: ignore[attr-defined]
        for node in ast_nodes.walk(method):
            attribute = _submodule(node, "self", parts)
            if attribute is not None and _used(node, parents):
                run = _run(node, parents) is not node or _iterated(node, parents)
                uses.setdefault(attribute, []).append((node, name, run, _cut(node, facts, parents)))
            if name not in forward:
                continue  # (a branch of `get_num_params` runs in no step)
            if _computed_pick(node, "self", parts, parents, nested=True):
                yield node, PICKED
            if isinstance(node, (*_LOOPS, ast.comprehension)) and _loop_skips(
                node, "self", parts, parents
            ):  # (a comprehension has no place: its iterable's)
                yield (node.iter if isinstance(node, ast.comprehension) else node), JUMPED
            if isinstance(node, ast.If | ast.IfExp | ast.Match) and _branches_differ(
                node, "self", {*parts, *own}, parents, varying
            ):
                yield node, BRANCHED
    for found in uses.values():
        runs = [f for f in found if f[2]]
        if not runs:
            continue
        mixed = any(  # cut in one branch of a test on a value, run with a gradient in another
            any(cut for _, m, run, cut in found if run and m == method)
            and any(
                _under_value_test(n, parents, varying)
                for n, m, run, cut in found
                if run and m == method and not cut
            )
            for method in {f[1] for f in runs} & forward
        )
        if mixed or all(cut for *_, cut in found):
            first = next((f for f in found if f[3]), found[0])
            yield _run(first[0], parents), CUT


def _never_run(classes: list[ast.ClassDef], facts: CutFacts) -> frozenset[str]:
    """The submodules the module classes ``classes`` store that no forward of theirs (nor
    a method it calls) reads: a whole call of the model does not run them (probe s42 c90,
    a teacher head run under ``torch.no_grad()`` next to ``model(x)``)."""
    stored, read = stored_and_run(classes, facts)
    return frozenset(stored - read)


def stored_and_run(
    classes: list[ast.ClassDef], facts: CutFacts
) -> tuple[frozenset[str], frozenset[str]]:
    """The submodules the module classes ``classes`` store, and the attributes of ``self``
    their forwards (and the methods those call) read."""
    stored: set[str] = set()
    read: set[str] = set()
    for node in classes:
        methods = [m for m in node.body if isinstance(m, _FUNCTIONS)]
        stored |= _submodules(methods, facts) - {m.name for m in methods}
        later = [m for m in methods if m.name != "__init__"]
        forward = _forward_methods(later)
        read |= {
            n.attr
            for m in later
            if m.name in forward
            for n in ast_nodes.walk(m)
            if isinstance(n, ast.Attribute) and dotted(n.value) == "self"
        }
    return frozenset(stored), frozenset(read)


def module_classes(tree: ast.Module) -> list[ast.ClassDef]:
    """The module classes of ``tree`` (``_module_classes``)."""
    return _module_classes(ast_nodes.walk(tree))


def _methods_called_on_models(
    nodes: list[ast.AST],
    trained: Collection[str],
    facts: CutFacts,
    parents: dict[int, ast.AST],
) -> set[str]:
    """The methods the file calls on a trained model (``model.training_step(b)``,
    ``model.forward_task(x, t)``; probe s43 S7) where a gradient flows: entries of a step
    besides ``forward`` (by name: any class's method of that name; not ``knn.predict(f)``,
    probe s43b FE1)."""
    return {
        n.func.attr
        for n in nodes
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and dotted(n.func.value) in trained
        and dotted(n.func.value) != "self"
        and n.func.attr not in facts.module_api
        and not _cut(n, facts, parents)
    }


def _forward_methods(methods: list[ast.AST], entries: Collection[str] = ()) -> set[str]:
    """The names of ``forward`` (and of ``entries``) and the methods they call through
    ``self`` (to any depth); every method when the class defines no ``forward`` (a subclass
    overriding a helper)."""
    by_name = {m.name: m for m in methods}  # type: ignore[attr-defined]
    if "forward" not in by_name:
        return set(by_name)
    found = {"forward", *(e for e in entries if e in by_name and e != "__init__")}
    pending = list(found)
    while pending:
        for node in ast_nodes.walk(by_name[pending.pop()]):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and dotted(node.func.value) == "self"
                and node.func.attr in by_name
                and node.func.attr not in found
            ):
                found.add(node.func.attr)
                pending.append(node.func.attr)
    return found


def _stored_on_self(methods: list[ast.AST]) -> set[str]:
    """The attributes ``self.A = ...`` of ``methods`` store."""
    return {
        n.attr
        for m in methods
        for n in ast_nodes.walk(m)
        if isinstance(n, ast.Attribute)
        and isinstance(n.ctx, ast.Store)
        and isinstance(n.value, ast.Name)
        and n.value.id == "self"
    }


def _under_value_test(node: ast.AST, parents: dict[int, ast.AST], varying: Collection[str]) -> bool:
    """``node`` runs in a branch of an ``if`` (or conditional expression) of its function
    whose test reads a value (``_reads_value``)."""
    parent = parents.get(id(node))
    while parent is not None and not isinstance(parent, _FUNCTIONS):
        if isinstance(parent, ast.If | ast.IfExp) and _reads_value(parent.test, "self", varying):
            return True
        parent = parents.get(id(parent))
    return False


def _reads_value(test: ast.AST, owner: str, varying: Collection[str] = ()) -> bool:
    """``test`` reads more than ``owner``'s settings and constants: a name (an argument, a
    local, a module), or an attribute of ``owner`` its methods write besides ``__init__``."""
    fixed = {owner.partition(".")[0], "True", "False", "None"}
    for node in ast.walk(test):
        if isinstance(node, ast.Name) and node.id not in fixed:
            return True
        if isinstance(node, ast.Attribute) and dotted(node.value) == owner and node.attr in varying:
            return True
    return False


def _name_skips(
    tree: ast.Module,
    owner: str,
    facts: CutFacts,
    parents: dict[int, ast.AST],
    cut: Callable[[str], bool] | None,
    method: Callable[[ast.AST], bool],
) -> Iterator[tuple[ast.AST, str]]:
    """The skip signals of the parts of a trained model ``owner`` (its class unread) in the
    file: ``owner.A[e]`` with ``e`` computed; ``owner.A(x)`` run only cut from the gradient,
    for ``A`` that ``cut`` accepts (None: any ``A``, when the file never calls the model
    whole; asked only of such an ``A``)."""
    uses: dict[str, list[tuple[ast.AST, bool]]] = {}
    for node in ast_nodes.walk(tree):
        if (
            _computed_pick(node, owner, None, parents, nested=True)
            and not _cut(node, facts, parents)  # (an evaluation under no_grad runs none)
            and not _own_api_only(node, facts, parents)  # `model.heads[t].state_dict()`
        ):
            yield node, PICKED
        if isinstance(node, ast.If | ast.IfExp) and _loop_branch_differs(
            node, owner, parents, facts, method, cut
        ):
            yield node, BRANCHED
        if isinstance(node, ast.For | ast.AsyncFor | ast.comprehension) and _part_loop_skips(
            node, owner, facts, parents
        ):  # (a comprehension has no place: its iterable's)
            yield (node.iter if isinstance(node, ast.comprehension) else node), JUMPED
        attribute = _submodule(node, owner, None)
        if attribute in facts.module_api:
            attribute = None
        if attribute is not None and _used(node, parents, run_only=True):
            uses.setdefault(attribute, []).append((node, _cut(node, facts, parents)))
    for attribute, found in uses.items():
        if all(c for _, c in found) and (cut is None or cut(attribute)):
            yield _run(found[0][0], parents), CUT


def _loop_branch_differs(
    node: ast.If | ast.IfExp,
    owner: str,
    parents: dict[int, ast.AST],
    facts: CutFacts,
    method: Callable[[ast.AST], bool],
    unrun: Callable[[str], bool] | None = None,
) -> bool:
    """An ``if`` inside a loop (a training loop's step), on a value, whose branches run
    different parts of the trained model ``owner`` (``if labeled: loss += model.cls(h)``);
    with ``unrun`` (the model is called whole, which runs the parts its forward runs) only
    parts it accepts count (TD3's delayed actor loss through `critic.q1`: probe s43b)."""
    if not _reads_value(node.test, owner):
        return False
    parent = parents.get(id(node))
    while parent is not None and not isinstance(parent, (*_LOOPS, *_FUNCTIONS)):
        parent = parents.get(id(parent))
    if not isinstance(parent, _LOOPS):
        return False

    def parts(branch: list[ast.AST]) -> set[str]:
        return {
            n.attr  # type: ignore[attr-defined]
            for s in branch
            for n in ast.walk(s)
            if _submodule(n, owner, None) not in (None, *facts.module_api)
            and _used(n, parents, run_only=True)
            and not method(parents[id(n)])
            and not _cut(n, facts, parents)  # (a sample under no_grad: probe s43b FE5)
            and (unrun is None or unrun(n.attr))  # type: ignore[attr-defined]
        }

    body = node.body if isinstance(node.body, list) else [node.body]
    orelse = node.orelse if isinstance(node.orelse, list) else [node.orelse]
    return parts(body) != parts(orelse)


def _submodule(node: ast.AST, owner: str, stored: Collection[str] | None) -> str | None:
    """``A`` of ``owner.A`` (``node`` that attribute read), ``A`` one of ``stored`` (any
    when None)."""
    if not (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)):
        return None
    if dotted(node.value) != owner or (stored is not None and node.attr not in stored):
        return None
    return node.attr


def _run(node: ast.AST, parents: dict[int, ast.AST]) -> ast.AST:
    """The call running the submodule read at ``node`` (``self.A[i].m(x)`` of ``self.A``),
    else ``node``."""
    child, parent = node, parents.get(id(node))
    while isinstance(parent, ast.Attribute | ast.Subscript) and parent.value is child:
        child, parent = parent, parents.get(id(parent))
    return parent if isinstance(parent, ast.Call) and parent.func is child else node


def _iterated(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """``node`` (or an item or slice of it) is what a loop or comprehension iterates."""
    child, parent = node, parents.get(id(node))
    while isinstance(parent, ast.Subscript | ast.Call) and (
        getattr(parent, "value", None) is child or getattr(parent, "func", None) is child
    ):
        child, parent = parent, parents.get(id(parent))
    if isinstance(parent, ast.Attribute) and parent.value is child:  # `self.heads.items()`
        child, parent = parents.get(id(parent)), parents.get(id(parents.get(id(parent))))
    return isinstance(parent, ast.For | ast.AsyncFor | ast.comprehension) and parent.iter is child


def _used(node: ast.AST, parents: dict[int, ast.AST], run_only: bool = False) -> bool:
    """``self.A`` is run or handed on: on the callee side of a call (``self.A(x)``,
    ``self.A[i](x)``, ``self.A.m(x)``), inside a call's arguments (``F.linear(x,
    self.A.weight)``), or iterated (``for layer in self.A``). Not a test (``self.A is None``).
    ``run_only``: only ``model.A(x)`` itself, called with an argument (not ``model.eval()``,
    ``model.to(d)``, ``model.parameters()``)."""
    if run_only:
        call = parents.get(id(node))
        return isinstance(call, ast.Call) and call.func is node and bool(call.args)
    child = node
    parent = parents.get(id(child))
    while parent is not None:
        if isinstance(parent, ast.Call):
            return True
        if isinstance(parent, ast.For | ast.AsyncFor | ast.comprehension) and parent.iter is child:
            return True
        if not isinstance(parent, ast.Attribute | ast.Subscript):
            return False
        child, parent = parent, parents.get(id(parent))
    return False


def _cut(node: ast.AST, facts: CutFacts, parents: dict[int, ast.AST], follow: bool = True) -> bool:
    """``node`` runs with no gradient flowing out: inside the receiver of ``.detach()`` /
    ``.data``, a ``with torch.no_grad():`` body (``set_grad_enabled`` with anything but a
    literal True, a conditional expression with such an arm), a function decorated with one or
    holding a ``torch.set_grad_enabled(...)`` statement; or (``follow``) in the value of
    ``h = ...`` whose every read in its function is so (``h = self.body(x); h = h.detach()``)."""
    child, parent = node, parents.get(id(node))
    while parent is not None:
        if (  # `torch.Tensor.detach(x)`: the method called through its class
            isinstance(parent, ast.Call)
            and child is not parent.func
            and isinstance(parent.func, ast.Attribute)
            and parent.func.attr in facts.cutting_methods
        ):
            return True
        if isinstance(parent, ast.If | ast.IfExp) and _outside_training(parent, child):
            return True  # `if not self.training: out = self.calib(out)`: never in a step
        if isinstance(parent, ast.Attribute) and parent.value is child:
            if parent.attr in facts.cutting_attributes:
                return True
            call = parents.get(id(parent))
            if (
                parent.attr in facts.cutting_methods
                and isinstance(call, ast.Call)
                and call.func is parent
            ):
                return True
        if (
            isinstance(parent, ast.With | ast.AsyncWith)
            and any(child is s for s in parent.body)
            and any(_free_context(item.context_expr, facts) for item in parent.items)
        ):
            return True
        if (
            follow
            and isinstance(parent, ast.Assign)
            and parent.value is child
            and _reads_all_cut(parent, facts, parents)
        ):
            return True
        if isinstance(parent, _FUNCTIONS):
            return any(_free_context(d, facts) for d in parent.decorator_list) or any(
                isinstance(s, ast.Expr)
                and isinstance(s.value, ast.Call)
                and _free_context(s.value, facts)
                for s in ast.walk(parent)
            )
        child, parent = parent, parents.get(id(parent))
    return False


def _outside_training(branch: ast.If | ast.IfExp, child: ast.AST) -> bool:
    """``child`` is in the branch of ``branch`` that runs only when the module is not in
    training mode (``if not self.training:`` body, ``if self.training:`` else)."""
    test = branch.test
    negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    flag = dotted(test.operand if negated else test)  # type: ignore[attr-defined]
    if flag != "self.training":
        return False
    body = branch.body if isinstance(branch.body, list) else [branch.body]
    orelse = branch.orelse if isinstance(branch.orelse, list) else [branch.orelse]
    return any(child is s for s in (body if negated else orelse))


def _reads_all_cut(assign: ast.Assign, facts: CutFacts, parents: dict[int, ast.AST]) -> bool:
    """``h = <value>`` binds one plain name whose every read in the enclosing function is cut
    from the gradient (``h = h.detach()``, ``self.head(h.data)``)."""
    if len(assign.targets) != 1 or not isinstance(assign.targets[0], ast.Name):
        return False
    name = assign.targets[0].id
    scope = parents.get(id(assign))
    while scope is not None and not isinstance(scope, (*_FUNCTIONS, ast.Module)):
        scope = parents.get(id(scope))
    if scope is None:
        return False
    names = [n for n in ast.walk(scope) if isinstance(n, ast.Name) and n.id == name]
    after = _position(assign)
    stores = sorted(
        (_position(_statement(n, parents)) for n in names if isinstance(n.ctx, ast.Store)),
    )
    until = next((p for p in stores if p > after), None)  # the next binding (its value counts)
    reads = [
        n
        for n in names
        if isinstance(n.ctx, ast.Load)
        and _position(n) > after
        and (until is None or _position(_statement(n, parents)) <= until)
    ]
    return bool(reads) and all(_cut(n, facts, parents, follow=False) for n in reads)


def _statement(node: ast.AST, parents: dict[int, ast.AST]) -> ast.AST:
    """The statement holding ``node``."""
    while not isinstance(node, ast.stmt) and id(node) in parents:
        node = parents[id(node)]
    return node


def _free_context(node: ast.expr, facts: CutFacts) -> bool:
    """``torch.no_grad()`` / ``torch.no_grad`` / ``torch.set_grad_enabled(v)`` (``v`` not a
    literal True) / ``a if c else b`` with such an arm."""
    if isinstance(node, ast.IfExp):
        return _free_context(node.body, facts) or _free_context(node.orelse, facts)
    if isinstance(node, ast.Call):
        name = dotted(node.func)
        if name is not None and name.endswith("set_grad_enabled"):
            flag = node.args[0] if node.args else None
            return not (isinstance(flag, ast.Constant) and flag.value is True)
        node = node.func
    name = dotted(node)
    return name is not None and name.rpartition(".")[2] in facts.free_contexts


def _constant_index(index: ast.AST) -> bool:
    """``0``, ``-1``, ``"a"``, a slice of those (``[:-1]``)."""
    if isinstance(index, ast.Constant):
        return True
    if isinstance(index, ast.UnaryOp) and isinstance(index.operand, ast.Constant):
        return True
    if isinstance(index, ast.Slice):
        parts = (index.lower, index.upper, index.step)
        return all(p is None or _constant_index(p) for p in parts)
    return False


def _computed_pick(
    node: ast.AST,
    owner: str,
    stored: Collection[str] | None,
    parents: dict,
    nested: bool = False,
) -> bool:
    """``owner.A[e]`` read (called or not: ``head = self.heads[task]``) with ``e`` not a
    constant and not made of the targets of an enclosing loop of the same function over all
    of ``owner.A`` (``for i in range(len(self.layers)): self.layers[i](x)``), or
    ``getattr(owner, name)`` with a computed ``name``. With ``nested``, also ``owner.A.B[e]``
    called (``model.decoder.heads[t](h)``, ``self.model.heads[t](h)``: probe s43 S2; called,
    as ``self.config.layer_types[i]`` is no part)."""
    if (  # `getattr(self, f"head_{task}")`: a submodule picked by a computed name
        isinstance(node, ast.Call)
        and dotted(node.func) == "getattr"
        and len(node.args) >= 2
        and dotted(node.args[0]) == owner
        and not isinstance(node.args[1], ast.Constant)
    ):
        return True
    if not isinstance(node, ast.Subscript) or not isinstance(node.ctx, ast.Load):
        return False
    container = node.value
    if isinstance(container, ast.Dict | ast.List | ast.Tuple):  # `{0: self.a, 1: self.b}[t]`
        held = [*getattr(container, "values", []), *getattr(container, "elts", [])]
        parts = any(_submodule(v, owner, stored) is not None for v in held)
        return parts and not _constant_index(node.slice)
    if _constant_index(node.slice):
        return False
    if _submodule(container, owner, stored) is None:
        part = container
        while isinstance(part, ast.Attribute) and _submodule(part, owner, stored) is None:
            part = part.value
        if not (nested and part is not container and _submodule(part, owner, stored)):
            return False
        if _run(node, parents) is node:
            return False
    names = {n.id for n in ast.walk(node.slice) if isinstance(n, ast.Name)}
    text = ast.unparse(container)
    targets: set[str] = set()
    parent = parents.get(id(node))
    while parent is not None and not isinstance(parent, _FUNCTIONS):
        loops: list[ast.AST] = []
        if isinstance(parent, ast.For | ast.AsyncFor):
            loops = [parent]
        if isinstance(parent, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            loops = [g for g in parent.generators if not g.ifs]
        for loop in loops:
            if _over_all_of(loop.iter, text):  # type: ignore[attr-defined]
                targets |= {
                    n.id
                    for n in ast.walk(loop.target)
                    if isinstance(n, ast.Name)  # type: ignore[attr-defined]
                }
        parent = parents.get(id(parent))
    return not names or not names <= targets


def _own_api_only(node: ast.AST, facts: CutFacts, parents: dict[int, ast.AST]) -> bool:
    """``node`` (a picked part) is only asked a method of a module's own API
    (``model.heads[t].state_dict()``, ``.parameters()``): it runs nothing."""
    parent = parents.get(id(node))
    call = parents.get(id(parent)) if parent is not None else None
    return (
        isinstance(parent, ast.Attribute)
        and parent.value is node
        and parent.attr in facts.module_api
        and isinstance(call, ast.Call)
        and call.func is parent
    )


def _over_all_of(iterated: ast.AST, container: str) -> bool:
    """``iterated`` runs over every item or index of ``container``: itself, its ``keys()``
    / ``items()``, ``range(len(c))``, ``enumerate(c)``, ``zip(c, ...)``."""
    text = ast.unparse(iterated)
    return text in (
        container,
        f"{container}.keys()",
        f"{container}.items()",
        f"range(len({container}))",
        f"enumerate({container})",
    ) or (text.startswith(f"zip({container},") and isinstance(iterated, ast.Call))


def _runs_submodule(
    nodes: list[ast.AST],
    owner: str,
    stored: Collection[str],
    parents: dict[int, ast.AST],
    called: bool = False,
) -> set[str]:
    """The submodules (and methods) of ``owner`` run or handed on in ``nodes`` (``_used``);
    ``called``: only those called (``self.A(x)``, ``self.A[i](x)``, ``self.A.m(x)``), not an
    attribute handed on (``range(self.n)``)."""
    found = set()
    for statement in nodes:
        for node in ast.walk(statement):
            attribute = _submodule(node, owner, stored)
            if attribute is None or not _used(node, parents):
                continue
            if not called or _run(node, parents) is not node:
                found.add(attribute)
    return found


def _part_loop_skips(
    loop: ast.For | ast.AsyncFor | ast.comprehension,
    owner: str,
    facts: CutFacts,
    parents: dict[int, ast.AST],
) -> bool:
    """A loop of the file over parts of a trained model ``owner`` (``for task, head in
    model.heads.items():``, not ``model.parameters()``) that may skip one (``_loop_skips``:
    ``if task not in batch: continue``), run with a gradient (probe s43b i04)."""
    iterated = {
        n.attr  # type: ignore[attr-defined]
        for n in ast.walk(loop.iter)
        if _submodule(n, owner, None) not in (None, *facts.module_api)
    }
    if not iterated or _cut(loop, facts, parents):
        return False
    return _loop_skips(loop, owner, iterated, parents)


def _loop_skips(
    loop: ast.AST, owner: str, stored: Collection[str], parents: dict[int, ast.AST]
) -> bool:
    """A loop (or comprehension) over submodules that may skip one: a ``continue``,
    ``break`` or ``return`` of the loop itself before a submodule it runs (LayerDrop,
    stochastic depth, MoE experts without tokens), a comprehension's filter, or the loop's item
    called only under an ``if``."""
    if isinstance(loop, ast.comprehension):
        over = any(_submodule(n, owner, stored) is not None for n in ast.walk(loop.iter))
        return over and bool(loop.ifs)
    body = loop.body  # type: ignore[attr-defined]
    iterated = not isinstance(loop, ast.While) and any(
        _submodule(n, owner, stored) is not None
        for n in ast.walk(loop.iter)  # type: ignore[attr-defined]
    )
    runs = [
        n
        for s in body
        for n in ast.walk(s)
        if _submodule(n, owner, stored) is not None and _used(n, parents)
    ]
    if not iterated and not runs:
        return False
    items = (
        {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}  # type: ignore[attr-defined]
        if iterated
        else set()
    )
    item_calls = [
        n
        for s in body
        for n in ast.walk(s)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in items
    ]
    runs += item_calls
    jumps = [n for s in body for n in _own_jumps(s)]
    if jumps:
        first = min(jumps, key=_position)
        if any(_position(r) > _position(first) for r in runs):
            return True
    return any(_under_if(call, loop, parents) for call in item_calls)


def _position(node: ast.AST) -> tuple[int, int]:
    return (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))


def _under_if(node: ast.AST, loop: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """``node`` runs under an ``if`` (or a conditional expression) inside ``loop``."""
    parent = parents.get(id(node))
    while parent is not None and parent is not loop:
        if isinstance(parent, ast.If | ast.IfExp):
            return True
        parent = parents.get(id(parent))
    return False


def _own_jumps(node: ast.AST) -> list[ast.AST]:
    """The ``continue``/``break``/``return`` of ``node`` that leave the loop it is in (not
    those of a nested loop or function)."""
    if isinstance(node, ast.Continue | ast.Break | ast.Return):
        return [node]
    if isinstance(node, _LOOPS):
        returns = [n for s in node.body for n in _own_jumps(s) if isinstance(n, ast.Return)]
        return returns + [n for s in node.orelse for n in _own_jumps(s)]
    if isinstance(node, (*_FUNCTIONS, ast.ClassDef, ast.Lambda)):
        return []
    return [j for child in ast.iter_child_nodes(node) for j in _own_jumps(child)]


def _branches_differ(
    node: ast.If | ast.IfExp | ast.Match,
    owner: str,
    stored: Collection[str],
    parents: dict[int, ast.AST],
    varying: Collection[str] = (),
) -> bool:
    """An ``if`` (``match``) whose test reads more than ``self`` and constants (an argument,
    a local, a random draw) and whose branches run different submodules or methods, or whose
    branch returns before submodules the function runs after it (stochastic depth:
    ``if self.training and torch.rand(1) < p: return x``)."""
    test = node.subject if isinstance(node, ast.Match) else node.test
    if not _reads_value(test, owner, varying):
        return False
    if isinstance(node, ast.Match):
        branches = [case.body for case in node.cases]
        if not any(
            isinstance(c.pattern, ast.MatchAs) and c.pattern.pattern is None for c in node.cases
        ):
            branches.append([])  # no case may match
    else:
        body = node.body if isinstance(node.body, list) else [node.body]
        orelse = node.orelse if isinstance(node.orelse, list) else [node.orelse]
        branches = [body, orelse]
    called = [_runs_submodule(b, owner, stored, parents, called=True) for b in branches]
    used = [_runs_submodule(b, owner, stored, parents) for b in branches]
    if any(c - u for c in called for u in used):
        return True
    if isinstance(node, ast.If) and any(
        isinstance(b[-1], ast.Return | ast.Raise) for b in branches if b
    ):
        function = parents.get(id(node))
        while function is not None and not isinstance(function, _FUNCTIONS):
            function = parents.get(id(function))
        later = [
            n
            for n in ast.walk(function)
            if function is not None
            if _submodule(n, owner, stored) is not None
            and _used(n, parents)
            and _position(n) > (node.end_lineno or node.lineno, 0)
        ]
        return bool(later)
    return False


def _grad_cleared(
    node: ast.AST,
    facts: CutFacts,
    parents: dict[int, ast.AST],
    trained: Collection[str],
    optimizers: Collection[str],
    unused: bool = False,
) -> list[tuple[ast.AST, str]]:
    """``x.grad = None`` (any target of the assignment), ``del x.grad``, ``setattr(x,
    "grad", None)``, not in a loop over every parameter of a trained model; ``m.part.zero_grad()``
    of a part of a trained model ``m`` (``set_to_none=False`` keeps zeros: torch moves them).
    ``unused``: the file asks ``torch.autograd.grad(..., allow_unused=True)``, whose results
    may be None: any ``.grad`` store may then clear one (probe s42 c35)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        part = dotted(_without_items(node.func.value))
        flags = [k.value for k in node.keywords if k.arg == "set_to_none"] + node.args[:1]
        kept = any(isinstance(v, ast.Constant) and v.value is False for v in flags)
        if (
            node.func.attr in facts.clearing_methods
            and part is not None
            and part not in optimizers
            and any(part.startswith(f"{name}.") for name in trained)
            and not kept
        ):
            return [(node, CLEARED)]
    cleared = False
    if isinstance(node, ast.Assign) and (unused or _is_none(node.value)):
        cleared = any(_grad_target(t, facts) for t in node.targets)
    elif isinstance(node, ast.AnnAssign) and node.value is not None and _is_none(node.value):
        cleared = _grad_target(node.target, facts)
    elif isinstance(node, ast.Delete):
        cleared = any(_grad_target(t, facts) for t in node.targets)
    elif isinstance(node, ast.Call) and dotted(node.func) == "setattr" and len(node.args) == 3:
        name, value = node.args[1], node.args[2]
        cleared = (
            isinstance(name, ast.Constant)
            and name.value in facts.grad_attributes
            and _is_none(value)
        )
    if not cleared or _over_all_parameters(node, facts, parents, trained):
        return []
    return [(node, CLEARED)]


def _without_items(node: ast.AST) -> ast.AST:
    """``model.heads`` of ``model.heads[1]`` (every subscript of the chain left out)."""
    if isinstance(node, ast.Subscript):
        return _without_items(node.value)
    if isinstance(node, ast.Attribute):
        return ast.Attribute(value=_without_items(node.value), attr=node.attr, ctx=ast.Load())
    return node


def _allows_unused(call: ast.Call) -> bool:
    """``torch.autograd.grad(loss, params, allow_unused=True)`` (any value but a literal
    False): a parameter the loss does not reach gets None."""
    return any(
        k.arg == "allow_unused"
        and not (isinstance(k.value, ast.Constant) and k.value.value is False)
        for k in call.keywords
    )


def _grad_target(target: ast.AST, facts: CutFacts) -> bool:
    """``target`` (an assignment's or ``del``'s) stores or deletes a ``.grad``."""
    if isinstance(target, ast.Attribute):
        return target.attr in facts.grad_attributes
    if isinstance(target, ast.Tuple | ast.List | ast.Starred):
        return any(
            isinstance(n, ast.Attribute) and n.attr in facts.grad_attributes
            for n in ast.walk(target)
        )
    return False


def _is_none(node: ast.AST) -> bool:
    """None, or a conditional expression with a None arm (``None if warm else p.grad``)."""
    if isinstance(node, ast.IfExp):
        return _is_none(node.body) or _is_none(node.orelse)
    return isinstance(node, ast.Constant) and node.value is None


def _over_all_parameters(
    node: ast.AST, facts: CutFacts, parents: dict[int, ast.AST], trained: Collection[str]
) -> bool:
    """``node`` is the whole body of ``for p in m.parameters():``, ``m`` a trained model (any
    model in a file with none: a helper of another file), and clears ``p.grad`` (torch's
    ``zero_grad`` by hand: the backward pass fills them again)."""
    loop = parents.get(id(node))
    if isinstance(node, ast.Call):
        loop = parents.get(id(loop)) if loop is not None else None
    if (
        not isinstance(loop, ast.For)
        or len(loop.body) != 1
        or not isinstance(loop.target, ast.Name)
    ):
        return False
    iterated = loop.iter
    if not (
        isinstance(iterated, ast.Call)
        and not iterated.args
        and not iterated.keywords
        and isinstance(iterated.func, ast.Attribute)
        and iterated.func.attr in facts.module_methods
        and (not trained or dotted(iterated.func.value) in trained)  # (another file: any model)
    ):
        return False
    targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [None]
    if isinstance(node, ast.Call):
        targets = [node.args[0]]
    return all(
        isinstance(t, ast.Attribute | ast.Name)
        and dotted(t.value if isinstance(t, ast.Attribute) else t) == loop.target.id
        for t in targets
    )


def models_called_whole(
    tree: ast.Module, names: Mapping[str, str], facts: CutFacts
) -> frozenset[str]:
    """The roots (``handed_models.spread``) of the names of ``names`` the file calls whole
    with a gradient (``_called_whole``)."""
    parents: dict[int, ast.AST] = {}
    ast_nodes.walk_with_parents(tree, parents)
    running = _whole_methods(_module_classes(ast_nodes.walk(tree)))
    return frozenset(
        root for name, root in names.items() if _called_whole(tree, name, facts, parents, running)
    )


def _whole_methods(classes: list[ast.ClassDef]) -> frozenset[str]:
    """The methods of module classes ``classes`` that call the module whole (``self(x)``,
    ``self.forward(x)``): calling one on a model runs its forward pass."""
    found: set[str] = set()
    for node in classes:
        for method in node.body:
            if not isinstance(method, _FUNCTIONS) or method.name == "forward":
                continue
            for call in ast_nodes.walk(method):
                func = call.func if isinstance(call, ast.Call) else None
                if isinstance(func, ast.Attribute) and func.attr == "forward":
                    func = func.value
                if dotted(func) == "self":
                    found.add(method.name)
                    break
    return frozenset(found)


def _called_whole(
    tree: ast.Module,
    name: str,
    facts: CutFacts,
    parents: dict[int, ast.AST],
    running: Collection[str] = (),
) -> bool:
    """The file calls the model ``name`` itself (``model(x)``, ``model.forward(x)``, a method
    of ``running``: ``model.compute_loss(b)`` calling ``self(x)``) where a gradient flows: its
    forward pass, which the run may not read, runs its submodules."""
    whole = {"forward", *running}
    for node in ast_nodes.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in whole:
            func = func.value
        if dotted(func) == name and not _cut(node, facts, parents):
            return True
    return False
