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
a store under another name), so that ``T``'s code cannot reach it through a global. A frozen
model holding a layer of the trained one through code this does not read (a factory
returning one) raises when run: flax 0.12.8 refuses the loss function's two arguments
(``ValueError: Inconsistent aliasing detected``, measured). Not seen: a constructor that
returns or registers an object a global holds, and ``T``'s forward pass calling such a
global (as for another optimizer's model in the loss, ``targets/nnx/other_models.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from ml_switcheroo.analysis.resolver import Variable

Parents = Callable[[cst.CSTNode], cst.CSTNode | None]
_CONSTANT_NAMES = frozenset({"True", "False", "None"})


def unobserved_model(
    name: cst.Name, variable: Variable, self_methods: frozenset[str], parent_of: Parents
) -> str | None:
    """Why ``name`` may hold a model whose parameters code other than its own calls reaches
    (the module docstring's conditions); None when none does."""
    if len(variable.values) != 1 or not isinstance(variable.values[0], cst.Call):
        return f"`{name.value}` is not bound once, to a call"
    if _local_function(variable.values[0], name.value, parent_of) is None:
        return f"`{name.value}` is not a local of a function (other code may reach it)"
    if not _built_from_constants(variable.values[0], self_methods):
        return (
            f"`{_shown(variable.values[0])}` is given values of the program (it may hold "
            "another model's parameters)"
        )
    for read in variable.reads:
        if not _only_called(read[0], self_methods, parent_of):
            return f"`{_shown(_reader(read[0], parent_of))}` hands it to code"
    return None


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
        if not _kept(read[0], name.value, self_methods, parent_of):
            shown = _shown(_reader(read[0], parent_of))
            return f"`{shown}` hands the trained model `{name.value}` to code"
    return None


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


def _built_from_constants(value: cst.Call, self_methods: frozenset[str]) -> bool:
    """``T(<constants>)`` with the map's self-returning methods after it (``.to(device)``)."""
    while isinstance(value.func, cst.Attribute) and value.func.attr.value in self_methods:
        inner = value.func.value
        if not isinstance(inner, cst.Call):
            return False
        value = inner
    if not isinstance(value.func, (cst.Name, cst.Attribute)):
        return False
    return all(not arg.star and _constant(arg.value) for arg in value.args)


def _fresh(value: cst.BaseExpression | None, name: str, self_methods: frozenset[str]) -> bool:
    """``T(<constants>)`` (a new object), or ``name`` itself through self-returning methods
    (``m = m.to(d)``)."""
    if not isinstance(value, cst.Call):
        return False
    if _built_from_constants(value, self_methods):
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
