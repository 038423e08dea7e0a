"""Models whose gradients no code reads: a frozen feature extractor in a loss (issue 13).

fast_neural_style's loss calls ``vgg = Vgg16(requires_grad=False).to(device)`` besides the
model its optimizer trains. Whether or not torch fills ``vgg``'s ``.grad``, the gradients the
trained model gets are the same (``requires_grad`` stops the gradient of a parameter, never
the one flowing through it to the model's output), and nothing else sees ``vgg``'s gradients
when its parameters reach no code at all: ``vgg`` is bound once, in a function, to
``T(<constants>)`` (or that followed by the map's self-returning module methods: ``.to(d)``),
and read only as ``vgg(...)`` or as the receiver of such a method whose value is dropped
(``vgg.eval()``). No optimizer, clip or other code is given its parameters, and the model
holds nothing of the program (its arguments are constants).

The trained model must be confined too (``confined_model``): a local of the same function,
built the same way (``m = m.to(d)`` allowed), never handed to code (an argument, an element,
a store under another name) nor read in a nested function or class (``T`` defined there may
close over it), so that ``T``'s code cannot reach it. A frozen
model holding a layer of the trained one through code this does not read (a factory
returning one) raises when run: flax 0.12.8 refuses the loss function's two arguments
(``ValueError: Inconsistent aliasing detected``, measured). Not seen: a constructor that
returns or registers an object a global holds, and ``T``'s forward pass calling such a
global (as for another optimizer's model in the loss, ``targets/nnx/other_models.py``).

A perceptual loss's feature extractor is often a library's, frozen by hand: ``vgg =
torchvision.models.vgg16(pretrained=True).features.eval()`` (an attribute or a constant
slice of the new object allowed) and ``for p in vgg.parameters(): p.requires_grad = False``
(a loop whose body only sets the map's ``freeze_attributes`` or calls its
``freeze_methods`` on ``p`` with constants; ``vgg.requires_grad_(False)`` too). Such reads
hand its parameters to no other code. ``frozen_library_model``: a freeze of such a model
built by one of the map's ``model_libraries`` touches no parameter an optimizer is given
(library code holds no object of the user's program, and the model reaches no code), so the
file's optimizers need not escape for it; a class of the user's may hold a module a global
holds, which an optimizer may train: its freezes still count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.analysis.resolver import Variable
from ml_switcheroo.spec.semantic_map import SemanticMap

Parents = Callable[[cst.CSTNode], cst.CSTNode | None]
_CONSTANT_NAMES = frozenset({"True", "False", "None"})


@dataclass(frozen=True)
class ModelFacts:
    """The map's module facts the proofs read: ``modules.self_methods`` (``m.to(d)`` returns
    ``m``), ``parameters.module_methods`` (``m.parameters()``), ``freeze_attributes`` and
    ``freeze_methods``."""

    self_methods: frozenset[str]
    module_methods: frozenset[str]
    freeze_attributes: frozenset[str]
    freeze_methods: frozenset[str]


def model_facts(semantic_map: SemanticMap) -> ModelFacts:
    """``ModelFacts`` of a ``SemanticMap``."""
    spec = semantic_map.parameters
    return ModelFacts(
        semantic_map.modules.self_methods,
        spec.module_methods,
        spec.freeze_attributes,
        spec.freeze_methods,
    )


def unobserved_model(
    name: cst.Name, variable: Variable, facts: ModelFacts, parent_of: Parents
) -> str | None:
    """Why ``name`` may hold a model whose parameters code other than its own calls reaches
    (the module docstring's conditions); None when none does."""
    if len(variable.values) != 1 or not isinstance(variable.values[0], cst.BaseExpression):
        return f"`{name.value}` is not bound once, to a value"
    if _local_function(variable.values[0], name.value, parent_of) is None:
        return f"`{name.value}` is not a local of a function (other code may reach it)"
    if _constructor(variable.values[0], facts.self_methods) is None:
        return (
            f"`{_shown(variable.values[0])}` is not a call given only constants (it may hold "
            "another model's parameters)"
        )
    for read in variable.reads:
        used = _only_called(read[0], facts.self_methods, parent_of)
        if not (used or _freeze_use(read[0], facts, parent_of)):
            return f"`{_shown(_reader(read[0], parent_of))}` hands it to code"
    return None


def frozen_library_model(
    node: cst.CSTNode,
    facts: ModelFacts,
    parent_of: Parents,
    variable_of: Callable[[cst.Name], Variable | None],
    called: Callable[[cst.BaseExpression], str | None],
    libraries: tuple[str, ...],
) -> bool:
    """Whether the freeze ``node`` (``p.requires_grad = False`` in a loop over
    ``m.parameters()``, ``m.requires_grad_(False)``) freezes a model whose parameters no
    other code reaches (``unobserved_model``), built by a function of one of ``libraries``
    (``called`` qualifies its name)."""
    model = _frozen_model_of(node, facts, parent_of)
    variable = variable_of(model) if model is not None else None
    if model is None or variable is None or unobserved_model(model, variable, facts, parent_of):
        return False
    constructor = _constructor(variable.values[0], facts.self_methods)  # type: ignore[arg-type]
    qualified = called(constructor.func) if constructor is not None else None
    return qualified is not None and bool(libraries) and qualified.startswith(libraries)


def _frozen_model_of(node: cst.CSTNode, facts: ModelFacts, parent_of: Parents) -> cst.Name | None:
    """``m`` of a freeze ``m.requires_grad_(c)`` alone on its line, or of ``p.<freeze> ...``
    in a loop over ``m.parameters()`` that only freezes ``p`` (``_pure_freeze_loop``)."""
    if isinstance(node, cst.Call) and isinstance(parent_of(node), cst.Expr):
        func = node.func
        if not (
            isinstance(func, cst.Attribute)
            and func.attr.value in facts.freeze_methods
            and isinstance(func.value, cst.Name)
        ):
            return None
        loop = _loop_of(parent_of(node), parent_of)  # type: ignore[arg-type]
        return _loop_model(loop, facts, parent_of) if loop is not None else func.value
    if isinstance(node, cst.Assign):
        loop = _loop_of(node, parent_of)
        return _loop_model(loop, facts, parent_of) if loop is not None else None
    return None


def _loop_of(small: cst.CSTNode, parent_of: Parents) -> cst.For | None:
    """The ``for`` whose body holds the small statement ``small`` directly."""
    parent = parent_of(small)
    if isinstance(parent, cst.SimpleStatementLine):
        parent = parent_of(parent)  # its IndentedBlock
    loop = parent_of(parent) if parent is not None else None
    return loop if isinstance(loop, cst.For) and loop.body is parent else None


def _loop_model(loop: cst.For, facts: ModelFacts, parent_of: Parents) -> cst.Name | None:
    """``m`` of ``for p in m.parameters():`` whose body only freezes ``p``, and ``p`` read
    nowhere else (``_loop_variable_kept``)."""
    iterated = loop.iter
    if (
        _pure_freeze_loop(loop, facts)
        and _loop_variable_kept(loop, parent_of)
        and isinstance(iterated, cst.Call)
        and not iterated.args
        and isinstance(iterated.func, cst.Attribute)
        and iterated.func.attr.value in facts.module_methods
        and isinstance(iterated.func.value, cst.Name)
    ):
        return iterated.func.value
    return None


def _loop_variable_kept(loop: cst.For, parent_of: Parents) -> bool:
    """The loop's variable ``p`` (a parameter of the model after the loop: Python keeps the
    last one bound) is named, in the function holding the loop, only in this loop or in the
    body or target of another ``for p in ...`` (which binds it anew before any read there);
    a read after the loop (``opt.add_param_group({"params": [p]})``, ``p.grad``) would hand
    the model's parameter on."""
    name = loop.target.value  # type: ignore[attr-defined]
    function = parent_of(loop)
    while function is not None and not isinstance(function, cst.FunctionDef):
        function = parent_of(function)
    if function is None:
        return False
    inside = {id(n) for n in _walk(loop)}
    named = (
        n
        for n in _walk(function.body)  # type: ignore[attr-defined]
        if isinstance(n, cst.Name)
        and n.value == name
        and id(n) not in inside
        and not _label(n, parent_of(n))
    )
    return all(_under_own_loop(n, name, function, parent_of) for n in named)


def _label(node: cst.Name, parent: cst.CSTNode | None) -> bool:
    """``node`` names no variable: the ``p`` of ``x.p`` or of a keyword ``f(p=1)``."""
    return (isinstance(parent, cst.Attribute) and parent.attr is node) or (
        isinstance(parent, cst.Arg) and parent.keyword is node
    )


def _under_own_loop(
    node: cst.CSTNode, name: str, function: cst.CSTNode, parent_of: Parents
) -> bool:
    """``node`` is in the target or body of a ``for <name> in ...`` of ``function`` (not in
    its ``iter`` or ``else``, not in a nested function, class or lambda)."""
    child, parent = node, parent_of(node)
    while parent is not None and parent is not function:
        if isinstance(parent, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return False
        if (
            isinstance(parent, cst.For)
            and isinstance(parent.target, cst.Name)
            and parent.target.value == name
            and (child is parent.body or child is parent.target)
        ):
            return True
        child, parent = parent, parent_of(parent)
    return False


def _pure_freeze_loop(loop: cst.For, facts: ModelFacts) -> bool:
    """``for p in ...:`` (no ``else``, not async) whose body only sets ``p.<freeze attribute>``
    to a constant or calls ``p.<freeze method>(<constants>)``."""
    if loop.orelse is not None or loop.asynchronous is not None:
        return False
    if not isinstance(loop.target, cst.Name):
        return False
    own = loop.target.value
    body = loop.body
    if isinstance(body, cst.IndentedBlock):
        lines = body.body
        if not all(isinstance(line, cst.SimpleStatementLine) for line in lines):
            return False
        smalls = [small for line in lines for small in line.body]  # type: ignore[attr-defined]
    else:
        smalls = list(body.body)  # type: ignore[attr-defined]
    return bool(smalls) and all(_freezes_own(small, own, facts) for small in smalls)


def _freezes_own(small: cst.BaseSmallStatement, own: str, facts: ModelFacts) -> bool:
    """``own.<freeze attribute> = <constant>`` or ``own.<freeze method>(<constants>)``."""
    if isinstance(small, cst.Assign):
        target = small.targets[0].target if len(small.targets) == 1 else None
        return (
            isinstance(target, cst.Attribute)
            and isinstance(target.value, cst.Name)
            and target.value.value == own
            and target.attr.value in facts.freeze_attributes
            and _constant(small.value)
        )
    call = small.value if isinstance(small, cst.Expr) else None
    return (
        isinstance(call, cst.Call)
        and isinstance(call.func, cst.Attribute)
        and isinstance(call.func.value, cst.Name)
        and call.func.value.value == own
        and call.func.attr.value in facts.freeze_methods
        and all(not a.star and _constant(a.value) for a in call.args)
    )


def _freeze_use(read: cst.CSTNode, facts: ModelFacts, parent_of: Parents) -> bool:
    """``m.<freeze method>(<constants>)`` alone on its line, or ``m.parameters()`` iterated by
    a loop that only freezes its items."""
    parent = parent_of(read)
    if not (isinstance(parent, cst.Attribute) and parent.value is read):
        return False
    call = parent_of(parent)
    if not (isinstance(call, cst.Call) and call.func is parent):
        return False
    if parent.attr.value in facts.freeze_methods:
        constants = all(not a.star and _constant(a.value) for a in call.args)
        return constants and isinstance(parent_of(call), cst.Expr)
    loop = parent_of(call)
    return (
        isinstance(loop, cst.For)
        and loop.iter is call
        and _loop_model(loop, facts, parent_of) is read
    )


def confined_model(
    name: cst.Name,
    variable: Variable,
    other: Variable,
    other_name: str,
    self_methods: frozenset[str],
    parent_of: Parents,
) -> str | None:
    """Why the model ``name`` holds may not be a fresh local of the function the variable
    ``other`` (``other_name``, bound once) is bound in, never handed to code (every read a
    call of it or a method call on it: ``m.parameters()``, a self-returning one dropped or
    rebinding ``name``: ``m = m.to(d)``); None when it is."""
    if not variable.values or not other.values:
        return f"`{name.value}` is not bound here"
    for value in variable.values:
        if not _fresh(value, name.value, self_methods):
            shown = _shown(value) if value is not None else "a value not followed"
            return f"the trained model `{name.value}` is bound to `{shown}`, not built here"
    functions = {id(_local_function(v, name.value, parent_of)) for v in variable.values}  # type: ignore[arg-type]
    other_function = _local_function(other.values[0], other_name, parent_of)  # type: ignore[arg-type]
    if other_function is None or functions != {id(other_function)}:
        return f"the trained model `{name.value}` is not a local of the same function"
    for read in variable.reads:
        if _scope_of(read[0], parent_of) is not other_function:
            shown = _shown(_reader(read[0], parent_of))
            return f"`{shown}` reads the trained model `{name.value}` in a nested scope"
        if not _kept(read[0], name.value, self_methods, parent_of):
            shown = _shown(_reader(read[0], parent_of))
            return f"`{shown}` hands the trained model `{name.value}` to code"
    return None


def _scope_of(node: cst.CSTNode, parent_of: Parents) -> cst.CSTNode | None:
    """The innermost function, lambda or class holding ``node`` (a class or function of that
    one, say, closes over the trained model: its code may call it outside the loss
    function's argument)."""
    parent = parent_of(node)
    while parent is not None and not isinstance(
        parent, (cst.FunctionDef, cst.Lambda, cst.ClassDef)
    ):
        parent = parent_of(parent)
    return parent


def _reader(read: cst.CSTNode, parent_of: Parents) -> cst.CSTNode:
    """The expression or statement reading ``read`` (its nearest parent that is one)."""
    parent = parent_of(read)
    while parent is not None and not isinstance(
        parent, (cst.Call, cst.BaseSmallStatement, cst.BaseCompoundStatement)
    ):
        parent = parent_of(parent)
    return parent if parent is not None else read


def _shown(node: cst.CSTNode) -> str:
    text = " ".join(cst.Module([]).code_for_node(node).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _local_function(node: cst.CSTNode, name: str, parent_of: Parents) -> cst.FunctionDef | None:
    """The function whose body holds ``node`` when ``name`` is a local of it (neither
    ``global`` nor ``nonlocal`` there)."""
    parent = parent_of(node)
    while parent is not None and not isinstance(parent, (cst.FunctionDef, cst.Lambda)):
        parent = parent_of(parent)
    if not isinstance(parent, cst.FunctionDef):
        return None
    declared = (n for n in _walk(parent.body) if isinstance(n, (cst.Global, cst.Nonlocal)))
    if any(item.name.value == name for d in declared for item in d.names):
        return None
    return parent


def _walk(node: cst.CSTNode) -> list[cst.CSTNode]:
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(current.children)
    return found


def _constructor(value: cst.BaseExpression, self_methods: frozenset[str]) -> cst.Call | None:
    """The call ``T(<constants>)`` (``T`` a dotted name) ``value`` is, or reads an attribute or
    a constant slice of, or calls the map's self-returning methods on
    (``f(pretrained=True).features[:16].eval()``); None otherwise."""
    node = value
    while True:
        if (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in self_methods
        ):
            node = node.func.value
        elif isinstance(node, cst.Attribute) or (
            isinstance(node, cst.Subscript) and all(_constant_slice(e) for e in node.slice)
        ):
            node = node.value
        else:
            break
    if not isinstance(node, cst.Call) or not _dotted(node.func):
        return None
    if not all(not arg.star and _constant(arg.value) for arg in node.args):
        return None
    return node


def _dotted(func: cst.BaseExpression) -> bool:
    """``T`` or ``mod.T``: names only (``make_zoo().critic``, a method of an object another
    call returns, may build an object holding the trained model: a cached factory's)."""
    while isinstance(func, cst.Attribute):
        func = func.value
    return isinstance(func, cst.Name)


def constructor_func(
    value: cst.BaseExpression, self_methods: frozenset[str]
) -> cst.BaseExpression | None:
    """The callee ``T`` (``mod.T``) of the constructor ``value`` is (``_constructor``); None
    when ``value`` is not one."""
    constructor = _constructor(value, self_methods)
    return constructor.func if constructor is not None else None


def constructor_root(value: cst.BaseExpression, self_methods: frozenset[str]) -> cst.Name | None:
    """The name ``T`` (or ``mod`` of ``mod.T``) the constructor ``value`` calls
    (``_constructor``); None when ``value`` is not one."""
    func = constructor_func(value, self_methods)
    while isinstance(func, cst.Attribute):
        func = func.value
    return func if isinstance(func, cst.Name) else None


def _constant_slice(element: cst.SubscriptElement) -> bool:
    """``[2]``, ``[:16]``, ``[1:-1:2]``: constants only."""
    part = element.slice
    if isinstance(part, cst.Index):
        return part.star is None and _constant(part.value)
    bounds = (part.lower, part.upper, part.step)  # type: ignore[attr-defined]
    return all(b is None or _constant(b) for b in bounds)


def _fresh(value: cst.BaseExpression | None, name: str, self_methods: frozenset[str]) -> bool:
    """``T(<constants>)`` (a new object), or ``name`` itself through self-returning methods
    (``m = m.to(d)``)."""
    if not isinstance(value, cst.BaseExpression):
        return False
    if _constructor(value, self_methods) is not None:
        return True
    while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
        if value.func.attr.value not in self_methods:
            return False
        value = value.func.value
    return isinstance(value, cst.Name) and value.value == name


def _constant(node: cst.BaseExpression) -> bool:
    """A literal number, string, ``True``/``False``/``None`` (a sign allowed)."""
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        node = node.expression
    if isinstance(node, cst.Name):
        return node.value in _CONSTANT_NAMES
    return isinstance(node, (cst.Integer, cst.Float, cst.SimpleString))


def _only_called(read: cst.CSTNode, self_methods: frozenset[str], parent_of: Parents) -> bool:
    """``m(...)``, or ``m.<self method>(...)`` (chained) whose value is dropped."""
    node = read
    while True:
        parent = parent_of(node)
        if isinstance(parent, cst.Call) and parent.func is node:
            return node is read
        method = _method_call(node, parent, self_methods, parent_of)
        if method is None:
            return isinstance(parent, cst.Expr) and node is not read
        node = method


def _method_call(
    node: cst.CSTNode, parent: cst.CSTNode | None, methods: frozenset[str], parent_of: Parents
) -> cst.Call | None:
    """The call ``node.<method>(...)`` when ``parent`` is ``node.<method>``, one of
    ``methods``."""
    if not (isinstance(parent, cst.Attribute) and parent.value is node):
        return None
    call = parent_of(parent)
    if parent.attr.value in methods and isinstance(call, cst.Call) and call.func is parent:
        return call
    return None


def _kept(read: cst.CSTNode, name: str, self_methods: frozenset[str], parent_of: Parents) -> bool:
    """A read of the trained model that hands it to no code (``confined_model``)."""
    node = read
    while True:
        parent = parent_of(node)
        if isinstance(parent, cst.Call) and parent.func is node:
            return True  # its output
        method = _method_call(node, parent, self_methods, parent_of)
        if method is not None:
            node = method  # still the model
            continue
        if isinstance(parent, cst.Attribute) and parent.value is node:
            call = parent_of(parent)
            return isinstance(call, cst.Call) and call.func is parent  # another method's value
        if isinstance(parent, cst.Expr):
            return True
        return (
            isinstance(parent, cst.Assign)
            and parent.value is node
            and all(
                isinstance(t.target, cst.Name) and t.target.value == name for t in parent.targets
            )
        )
