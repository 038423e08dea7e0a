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
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from ml_switcheroo.analysis import ast_nodes
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
    module_methods: frozenset[str]  # `m.parameters()`


def cut_facts(semantic_map: SemanticMap) -> CutFacts:
    """``CutFacts`` of the map (its ``parameters`` section, ``gradient_attributes``)."""
    spec = semantic_map.parameters
    return CutFacts(
        spec.gradient_cutting_methods,
        spec.gradient_cutting_attributes,
        frozenset(name.rpartition(".")[2] for name in spec.gradient_free_contexts),
        semantic_map.gradient_attributes,
        spec.gradient_clearing_methods,
        spec.module_methods,
    )


def words(facts: CutFacts) -> frozenset[str]:
    """Words a file holding a skip holds one of (a cheap test before parsing it)."""
    return frozenset({"forward", *facts.grad_attributes})


CUT = "runs only cut from the gradient (detached, or under torch.no_grad())"
PICKED = "runs one submodule picked by a computed index or name"
JUMPED = "may skip a submodule (`continue` or `break` in a loop running them)"
BRANCHED = "runs different submodules by a value"
CLEARED = "sets gradients to None"


def first_gradient_skip(
    tree: ast.Module,
    facts: CutFacts,
    trained: Collection[str] = (),
    optimizers: Collection[str] = (),
    defined_elsewhere: Callable[[str], bool] = lambda name: False,
) -> tuple[ast.AST, str] | None:
    """The first node of ``tree`` that may leave a trained parameter without a gradient in a
    step (see the module's docstring), in the order of the file, and why (``CUT``,
    ``PICKED``, ``JUMPED``, ``BRANCHED``, ``CLEARED``); None when there is none.
    ``trained``: the dotted names of the models this file's optimizers train (``model``,
    ``self.model``), read like ``self`` in the whole file (their submodules used only cut
    from the gradient, or picked by a computed index); ``optimizers``: the dotted names of
    its optimizers (``self.opt.zero_grad()`` clears no part of a trained ``self``). A method
    this file or ``defined_elsewhere`` defines (``agent.get_value(x)`` under no_grad) is no
    submodule of a trained name: its parameters may run elsewhere."""
    parents: dict[int, ast.AST] = {}
    ast_nodes.walk_with_parents(tree, parents)
    found: list[tuple[ast.AST, str]] = []
    defined = {n.name for n in ast_nodes.walk(tree) if isinstance(n, _FUNCTIONS)}
    for node in ast_nodes.walk(tree):
        if isinstance(node, ast.ClassDef) and _defines(node, "forward"):
            methods = [m for m in node.body if isinstance(m, _FUNCTIONS)]
            stored = _stored_on_self(methods) - {m.name for m in methods}
            found.extend(_skips(methods, "self", stored, facts, parents))
        found.extend(_grad_cleared(node, facts, parents, trained, optimizers))
    for name in sorted(trained):
        if name != "self" and not _called_whole(tree, name, facts, parents):
            skips = _skips([tree], name, None, facts, parents)
            found.extend(
                (n, why)
                for n, why in skips
                if not (why == CUT and _method_called(n, defined, defined_elsewhere))
            )
    return min(found, key=lambda f: (f[0].lineno, f[0].col_offset), default=None)  # type: ignore[attr-defined]


def _method_called(
    node: ast.AST, defined: Collection[str], defined_elsewhere: Callable[[str], bool]
) -> bool:
    """``node`` calls ``m.A(...)`` with ``A`` a function the repository defines."""
    func = node.func if isinstance(node, ast.Call) else None
    name = func.attr if isinstance(func, ast.Attribute) else None
    return name is not None and (name in defined or defined_elsewhere(name))


def _defines(node: ast.ClassDef, method: str) -> bool:
    return any(isinstance(s, _FUNCTIONS) and s.name == method for s in node.body)


def _stored_on_self(methods: list[ast.AST]) -> set[str]:
    """The attributes ``self.A = ...`` of ``methods`` store (any target of an assignment)."""
    found = set()
    for method in methods:
        for node in ast_nodes.walk(method):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
            ):
                found.add(node.attr)
    return found


def _skips(
    scopes: list[ast.AST],
    owner: str,
    stored: Collection[str] | None,
    facts: CutFacts,
    parents: dict[int, ast.AST],
) -> Iterator[tuple[ast.AST, str]]:
    """The skip signals of ``owner``'s submodules (``owner.A``, ``A`` one of ``stored``: the
    attributes a class stores on ``self``) in ``scopes``. With ``stored`` None (a trained
    model's name, its class unread): any ``owner.A`` called with arguments, and only its uses
    cut from the gradient and its computed picks."""
    uses: dict[str, list[tuple[ast.AST, bool]]] = {}
    for scope in scopes:
        method = getattr(scope, "name", None)
        for node in ast_nodes.walk(scope):
            attribute = _submodule(node, owner, stored)
            if attribute is not None and _used(node, parents, stored is None):
                uses.setdefault(attribute, []).append((node, _cut(node, facts, parents)))
            if method == "__init__":
                continue  # runs once, when the model is built
            if isinstance(node, ast.Call) and _computed_pick(node, owner, stored, parents):
                yield node, PICKED
            if stored is None:
                continue
            if isinstance(node, _LOOPS) and _loop_skips(node, owner, stored, parents):
                yield node, JUMPED
            if (
                method == "forward"
                and isinstance(node, ast.If | ast.IfExp)
                and _branches_differ(node, owner, stored, parents)
            ):
                yield node, BRANCHED
    for found in uses.values():
        if all(cut for _, cut in found):
            yield _run(found[0][0], parents), CUT


def _submodule(node: ast.AST, owner: str, stored: Collection[str] | None) -> str | None:
    """``A`` of ``owner.A`` (``node`` that attribute read), ``A`` one of ``stored`` (any
    when None)."""
    if not (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load)):
        return None
    if _dotted(node.value) != owner or (stored is not None and node.attr not in stored):
        return None
    return node.attr


def _run(node: ast.AST, parents: dict[int, ast.AST]) -> ast.AST:
    """The call running the submodule read at ``node`` (``self.A[i].m(x)`` of ``self.A``),
    else ``node``."""
    child, parent = node, parents.get(id(node))
    while isinstance(parent, ast.Attribute | ast.Subscript) and parent.value is child:
        child, parent = parent, parents.get(id(parent))
    return parent if isinstance(parent, ast.Call) and parent.func is child else node


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


def _cut(node: ast.AST, facts: CutFacts, parents: dict[int, ast.AST]) -> bool:
    """``node`` runs with no gradient flowing out: inside the receiver of ``.detach()`` /
    ``.data``, a ``with torch.no_grad():`` body, or a function decorated with one."""
    child, parent = node, parents.get(id(node))
    while parent is not None:
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
        if isinstance(parent, _FUNCTIONS):
            return any(_free_context(d, facts) for d in parent.decorator_list)
        child, parent = parent, parents.get(id(parent))
    return False


def _free_context(node: ast.expr, facts: CutFacts) -> bool:
    """``torch.no_grad()`` / ``torch.no_grad`` / ``torch.set_grad_enabled(False)``."""
    if isinstance(node, ast.Call):
        name = _dotted(node.func)
        if name is not None and name.endswith("set_grad_enabled"):
            flag = node.args[0] if node.args else None
            return isinstance(flag, ast.Constant) and flag.value is False
        node = node.func
    name = _dotted(node)
    return name is not None and name.rpartition(".")[2] in facts.free_contexts


def _computed_pick(
    call: ast.Call, owner: str, stored: Collection[str] | None, parents: dict
) -> bool:
    """``owner.A[e](...)`` with ``e`` not a constant and not made of ``for`` targets of the
    enclosing loops (``for i in range(n): self.layers[i](x)`` runs them all), or
    ``getattr(owner, name)(...)`` with a computed ``name``."""
    func = call.func
    if (  # `getattr(self, f"head_{task}")(h)`: a submodule picked by a computed name
        isinstance(func, ast.Call)
        and _dotted(func.func) == "getattr"
        and len(func.args) >= 2
        and _dotted(func.args[0]) == owner
        and not isinstance(func.args[1], ast.Constant)
    ):
        return True
    if not isinstance(func, ast.Subscript) or _submodule(func.value, owner, stored) is None:
        return False
    if isinstance(func.slice, ast.Constant):
        return False
    names = {n.id for n in ast.walk(func.slice) if isinstance(n, ast.Name)}
    targets: set[str] = set()
    parent = parents.get(id(call))
    while parent is not None:
        if isinstance(parent, ast.For | ast.AsyncFor | ast.comprehension):
            targets |= {n.id for n in ast.walk(parent.target) if isinstance(n, ast.Name)}
        if isinstance(parent, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            for generator in parent.generators:
                targets |= {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
        parent = parents.get(id(parent))
    return not names or not names <= targets


def _runs_submodule(
    nodes: list[ast.AST],
    owner: str,
    stored: Collection[str],
    parents: dict[int, ast.AST],
    called: bool = False,
) -> set[str]:
    """The submodules of ``owner`` run or handed on in ``nodes`` (``_used``); ``called``:
    only those called (``self.A(x)``, ``self.A[i](x)``, ``self.A.m(x)``), not an attribute
    handed on (``range(self.n)``)."""
    found = set()
    for statement in nodes:
        for node in ast.walk(statement):
            attribute = _submodule(node, owner, stored)
            if attribute is None or not _used(node, parents):
                continue
            if not called or _run(node, parents) is not node:
                found.add(attribute)
    return found


def _loop_skips(
    loop: ast.For | ast.AsyncFor | ast.While,
    owner: str,
    stored: Collection[str],
    parents: dict[int, ast.AST],
) -> bool:
    """A ``continue``/``break`` of ``loop`` itself in a loop that runs submodules (its body
    calls one, or it iterates one: ``for layer in self.layers``)."""
    iterated = not isinstance(loop, ast.While) and any(
        _submodule(n, owner, stored) is not None for n in ast.walk(loop.iter)
    )
    if not iterated and not _runs_submodule(loop.body, owner, stored, parents):
        return False
    return any(_own_jumps(s) for s in loop.body)


def _own_jumps(node: ast.AST) -> bool:
    """``node`` holds a ``continue``/``break`` of the loop it is in (not of a nested loop or
    function)."""
    if isinstance(node, ast.Continue | ast.Break):
        return True
    if isinstance(node, _LOOPS):
        return any(_own_jumps(s) for s in node.orelse)
    if isinstance(node, (*_FUNCTIONS, ast.ClassDef, ast.Lambda)):
        return False
    return any(_own_jumps(child) for child in ast.iter_child_nodes(node))


def _branches_differ(
    node: ast.If | ast.IfExp, owner: str, stored: Collection[str], parents: dict[int, ast.AST]
) -> bool:
    """An ``if`` whose test reads more than ``self`` and constants (an argument, a local, a
    random draw) and whose branches run different submodules."""
    tested = [n for n in ast.walk(node.test) if isinstance(n, ast.Name)]
    if all(n.id in (owner.partition(".")[0], "True", "False", "None") for n in tested):
        return False
    body = node.body if isinstance(node.body, list) else [node.body]
    orelse = node.orelse if isinstance(node.orelse, list) else [node.orelse]
    body_run = _runs_submodule(body, owner, stored, parents, called=True)
    orelse_run = _runs_submodule(orelse, owner, stored, parents, called=True)
    return bool(
        body_run - _runs_submodule(orelse, owner, stored, parents)
        or orelse_run - _runs_submodule(body, owner, stored, parents)
    )


def _grad_cleared(
    node: ast.AST,
    facts: CutFacts,
    parents: dict[int, ast.AST],
    trained: Collection[str],
    optimizers: Collection[str],
) -> list[tuple[ast.AST, str]]:
    """``x.grad = None`` (any target of the assignment), ``del x.grad``, ``setattr(x,
    "grad", None)``, not in a loop over every parameter of a trained model; ``m.part.zero_grad()``
    of a part of a trained model ``m`` (``set_to_none=False`` keeps zeros: torch moves them)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        part = _dotted(node.func.value)
        kept = any(
            k.arg == "set_to_none" and isinstance(k.value, ast.Constant) and k.value.value is False
            for k in node.keywords
        )
        if (
            node.func.attr in facts.clearing_methods
            and part is not None
            and part not in optimizers
            and any(part.startswith(f"{name}.") for name in trained)
            and not kept
            and not node.args
        ):
            return [(node, CLEARED)]
    cleared = False
    if isinstance(node, ast.Assign) and _is_none(node.value):
        cleared = any(_grad_target(t, facts) for t in node.targets)
    elif isinstance(node, ast.AnnAssign) and node.value is not None and _is_none(node.value):
        cleared = _grad_target(node.target, facts)
    elif isinstance(node, ast.Delete):
        cleared = any(_grad_target(t, facts) for t in node.targets)
    elif isinstance(node, ast.Call) and _dotted(node.func) == "setattr" and len(node.args) == 3:
        name, value = node.args[1], node.args[2]
        cleared = (
            isinstance(name, ast.Constant)
            and name.value in facts.grad_attributes
            and _is_none(value)
        )
    if not cleared or _over_all_parameters(node, facts, parents, trained):
        return []
    return [(node, CLEARED)]


def _grad_target(target: ast.AST, facts: CutFacts) -> bool:
    return any(
        isinstance(n, ast.Attribute) and n.attr in facts.grad_attributes for n in ast.walk(target)
    )


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _over_all_parameters(
    node: ast.AST, facts: CutFacts, parents: dict[int, ast.AST], trained: Collection[str]
) -> bool:
    """``node`` is the whole body of ``for p in m.parameters():``, ``m`` a trained model, and
    clears ``p.grad`` (torch's ``zero_grad`` by hand: the backward pass fills them again)."""
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
        and _dotted(iterated.func.value) in trained
    ):
        return False
    targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [None]
    if isinstance(node, ast.Call):
        targets = [node.args[0]]
    return all(
        isinstance(t, ast.Attribute | ast.Name)
        and _dotted(t.value if isinstance(t, ast.Attribute) else t) == loop.target.id
        for t in targets
    )


def _called_whole(
    tree: ast.Module, name: str, facts: CutFacts, parents: dict[int, ast.AST]
) -> bool:
    """The file calls the model ``name`` itself (``model(x)``, ``model.forward(x)``) where
    a gradient flows: its forward pass, which the run may not read, runs its submodules."""
    for node in ast_nodes.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "forward":
            func = func.value
        if _dotted(func) == name and not _cut(node, facts, parents):
            return True
    return False


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of a chain of names and attributes, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
