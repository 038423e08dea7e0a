"""The names a run of statements binds to torch tensors for sure (issue 13, s26d).

A torch method's namesake is written in JAX with torch's meaning (``out.max(1)``: values and
indices; ``out.pow(2)``: ``out ** 2``) only on a value known to be a torch tensor. A NumPy array
or a Python value under a name the loss binds (``w = np.arange(12.0).reshape(3, 4)``, then
``w.max(1)[0]``: NumPy's maximum of the first row in torch) computes other numbers with torch's
meaning (measured: the translated loss 7x torch's), so such a call keeps its escape.

A value is a torch tensor for sure when it is a call of a model (``model_call``: the NNX port's
outputs are JAX arrays as torch's are tensors), unpacked or not; a call of a function of the map's
tensor packages (``tensor_values.packages``: ``torch.exp(x)``, ``F.relu(x)``) but its
``python_values`` (``torch.numel``); a method of a tensor but the map's ``python_methods`` and
``other_methods`` (``t.item()``, ``t.numpy()``, ``t.size()``); an element of one (``t[0]``);
arithmetic or a comparison one operand of which is one (``ndarray * tensor`` is a tensor too: a
tensor's ``__array_priority__``); a name every binding of which in the statements is one
(a least fixpoint: ``x = x * 2`` on a batch ``x`` read from outside is not known).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.semantic_map import TensorValueSpec

_OPERATIONS = (cst.BinaryOperation, cst.UnaryOperation, cst.Comparison)


def known_tensors(
    statements: Sequence[cst.CSTNode],
    model_call: Callable[[cst.Call], bool],
    qualify: Callable[[cst.BaseExpression], list[str]],
    spec: TensorValueSpec,
    given: frozenset[str] = frozenset(),
    entry: Mapping[str, bool] = MappingProxyType({}),
) -> set[str]:
    """The names every binding of which in ``statements`` is a torch tensor for sure, and
    ``given`` (known otherwise: the loss torch calls ``backward()`` on). ``entry``: names bound
    before the statements (a function's parameters), True for a tensor: one binding more."""
    bindings: dict[str, list[cst.BaseExpression | bool | None]] = {
        name: [tensor or None] for name, tensor in entry.items()
    }
    for node in (n for s in statements for n in cst_walk.walk(s)):
        for name, value in _bindings(node):
            bindings.setdefault(name, []).append(value)
    found: set[str] = set(given)
    while True:
        more = {
            name
            for name, values in bindings.items()
            if name not in found
            and all(
                v is True
                or (
                    isinstance(v, cst.BaseExpression)
                    and is_tensor(v, found, model_call, qualify, spec)
                )
                for v in values
            )
        }
        if not more:
            return found
        found |= more


def is_tensor(
    node: cst.BaseExpression,
    tensors: set[str],
    model_call: Callable[[cst.Call], bool],
    qualify: Callable[[cst.BaseExpression], list[str]],
    spec: TensorValueSpec,
) -> bool:
    """Whether ``node`` is a torch tensor for sure, ``tensors`` being names known to be."""

    def tensor(n: cst.BaseExpression) -> bool:
        return is_tensor(n, tensors, model_call, qualify, spec)

    if isinstance(node, cst.Name):
        return node.value in tensors
    if isinstance(node, cst.Call):
        func = node.func
        if model_call(node):
            return True
        if isinstance(func, cst.Attribute) and func.attr.value in _not_tensors(spec):
            return False  # `t.numpy()`, also `torch.ones(2).numpy()`
        qualified = qualify(func)
        if qualified:
            return all(
                q.partition(".")[0] in spec.packages and q not in spec.python_values
                for q in qualified
            )
        return isinstance(func, cst.Attribute) and tensor(func.value)
    if isinstance(node, cst.Subscript):
        return tensor(node.value)
    if isinstance(node, cst.BinaryOperation):
        return tensor(node.left) or tensor(node.right)
    if isinstance(node, cst.UnaryOperation):
        return not isinstance(node.operator, cst.Not) and tensor(node.expression)
    if isinstance(node, cst.Comparison):
        return (
            len(node.comparisons) == 1
            and _compares(node)
            and (tensor(node.left) or tensor(node.comparisons[0].comparator))
        )
    return False


def _not_tensors(spec: TensorValueSpec) -> frozenset[str]:
    """The methods whose result is no tensor (``t.item()``, ``t.numpy()``, ``t.size()``)."""
    return spec.python_methods | spec.other_methods


def _compares(node: cst.Comparison) -> bool:
    """``a < b``, ``a == b``...: elementwise on a tensor (not ``is``, ``in``)."""
    return not isinstance(node.comparisons[0].operator, (cst.Is, cst.IsNot, cst.In, cst.NotIn))


def _bindings(node: cst.CSTNode) -> Iterable[tuple[str, cst.BaseExpression | None]]:
    """Each name ``node`` binds, with the value it binds (None: not followed: a loop target,
    an augmented assignment, a ``with`` target, a starred or nested unpacking...)."""
    if isinstance(node, cst.Assign):
        for target in (t.target for t in node.targets):
            yield from _target_values(target, node.value)
    elif isinstance(node, cst.AnnAssign):
        yield from _target_values(node.target, node.value)
    elif isinstance(node, cst.NamedExpr) and isinstance(node.target, cst.Name):
        yield node.target.value, node.value
    elif isinstance(node, (cst.AugAssign, cst.For, cst.CompFor)):
        yield from _unfollowed(node.target)
    elif isinstance(node, cst.WithItem) and node.asname is not None:
        yield from _unfollowed(node.asname.name)


def _unfollowed(target: cst.CSTNode) -> Iterable[tuple[str, None]]:
    """Each name under ``target``, its value not followed."""
    for name in cst_walk.walk(target):
        if isinstance(name, cst.Name):
            yield name.value, None


def _target_values(
    target: cst.BaseExpression, value: cst.BaseExpression | None
) -> Iterable[tuple[str, cst.BaseExpression | None]]:
    """``x = v``: (x, v); ``a, b = v``: each name with ``v[0]``... read as ``v`` (an element of
    a tensor, or of a model's outputs, is a tensor); anything else not followed."""
    if isinstance(target, cst.Name):
        yield target.value, value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            if isinstance(element, cst.Element) and isinstance(element.value, cst.Name):
                yield element.value.value, value
            else:
                yield from _unfollowed(element)
    else:  # `self.x = v`, `d[k] = v`: binds no name
        return
