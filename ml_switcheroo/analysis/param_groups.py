"""Param groups that one transformation with a mask over the params expresses exactly.

GPT-style trainers give one model's parameters to an optimizer in two groups, split by their
number of dimensions: matrices decay, biases and norm weights do not
(``[p for n, p in param_dict.items() if p.dim() >= 2]`` and ``... if p.dim() < 2``). A
predicate on the rank means the same on a JAX array (``p.ndim >= 2``), so the split is a mask
of the params pytree. It is exact only when every parameter is in exactly one group: the two
groups come from the same whole model, their predicates are complementary, and nothing
changes the lists between where they are built and the optimizer. Anything else escapes.
The spellings recognised come from the map's ``parameters`` section (``ParameterSpec``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.parameters import WHOLE, Names, select, trainable
from ml_switcheroo.analysis.resolver import Variable
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding, Render, stated
from ml_switcheroo.spec.semantic_map import ParameterSpec
from ml_switcheroo.spec.signature import NotALiteral, code_of, literal_value

VariableOf = Callable[[cst.Name], Variable | None]

_RANKS = tuple(range(10))  # ranks at which predicates are compared
_MAX_CONSTANT = 7  # a larger integer in a comparison escapes (its effect lies beyond _RANKS)
_MAX_DEPTH = 8  # names followed through assignments
_COMPARE = {
    cst.GreaterThanEqual: lambda r, c: r >= c,
    cst.GreaterThan: lambda r, c: r > c,
    cst.LessThanEqual: lambda r, c: r <= c,
    cst.LessThan: lambda r, c: r < c,
    cst.Equal: lambda r, c: r == c,
    cst.NotEqual: lambda r, c: r != c,
}
_FLIPPED = {
    cst.GreaterThanEqual: cst.LessThanEqual,
    cst.GreaterThan: cst.LessThan,
    cst.LessThanEqual: cst.GreaterThanEqual,
    cst.LessThan: cst.GreaterThan,
    cst.Equal: cst.Equal,
    cst.NotEqual: cst.NotEqual,
}
_SPELLED = {">=": lambda r, c: r >= c, "<": lambda r, c: r < c, "==": lambda r, c: r == c}
_SPELLED["!="] = lambda r, c: r != c


class NotASplit(Exception):
    """A group's parameters are not a comprehension over a model's parameters at all."""


class NameBased(Untranslatable):
    """Groups split by parameter names: ``mask`` is the decay group's predicate on the leaves'
    paths (``path_mask``), for the suggestion; ``receiver`` the model's ``.named_parameters()``
    receiver in the decay group (None: not one)."""

    def __init__(self, mask: str, receiver: cst.BaseExpression | None = None) -> None:
        super().__init__(
            "the param groups are split by parameter names, which depend on how the model is "
            "ported to JAX (the paths of the params pytree)",
            f"one optimizer with mask={mask}  # n: the leaf's path, written as the torch name",
        )
        self.mask = mask
        self.receiver = receiver


@dataclass(frozen=True)
class Context:
    """Name resolution and the map's spellings, for one optimizer call."""

    names: Names
    spec: ParameterSpec
    variable: VariableOf
    render: Render = stated  # the target's words for a finding


@dataclass
class _Reads:
    """Variables followed, and the reads of them that are the ones followed."""

    variables: list[tuple[str, Variable]] = field(default_factory=list)
    followed: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class _Group:
    model: str  # the whole model whose parameters the group filters
    receiver: cst.BaseExpression | None  # ... as the receiver of `.named_parameters()`
    condition: cst.BaseExpression | None  # the comprehension's condition (None: every one)
    parameter: str  # the comprehension's variable for a parameter
    name: str | None  # ... and for its name (`named_parameters()`), if any


def follow(
    node: cst.BaseExpression, context: Context, reads: _Reads | None = None
) -> cst.BaseExpression:
    """The value a Name stands for when it has one binding (else the node itself)."""
    for _ in range(_MAX_DEPTH):
        if not isinstance(node, cst.Name):
            return node
        variable = context.variable(node)
        if variable is None or len(variable.values) != 1 or variable.values[0] is None:
            return node
        if reads is not None:
            reads.variables.append((node.value, variable))
            reads.followed.add(id(node))
        node = variable.values[0]
    return node


def single_binding(node: cst.BaseExpression, context: Context) -> bool:
    """Whether a Name is bound once in its scope (its value is the same wherever it is read)."""
    if not isinstance(node, cst.Name):
        return False
    variable = context.variable(node)
    return variable is not None and len(variable.values) == 1


@dataclass(frozen=True)
class RankSplit:
    """Groups that split one whole model by rank: the model (its source text, ``self`` of
    ``self.named_parameters()``, and that receiver of the first group, when the model is one)
    and the comparison (``">= 2"``) selecting the decay group."""

    model: str
    receiver: cst.BaseExpression | None
    comparison: str


def rank_mask(
    params: list[cst.BaseExpression], decay: int, context: Context, list_name: cst.Name | None
) -> RankSplit:
    """The model the groups split and the comparison on a leaf's rank that selects group
    ``decay``'s parameters.

    ``params`` are the groups' ``params`` values; ``list_name`` the variable holding the group
    list, if any. Raises ``NotASplit`` when a group is not a comprehension over parameters,
    ``Untranslatable`` when it is one but the groups do not split one whole model by rank."""
    reads = _Reads()
    if list_name is not None:
        if not single_binding(list_name, context):
            raise context.render(
                Finding(findings.PARAM_GROUP_LIST_REBOUND, {"name": list_name.value})
            )
        follow(list_name, context, reads)
    groups = [_group(node, context, reads) for node in params]
    name_based = [g for g in groups if g.name is not None and _uses(g.condition, g.name)]
    if name_based:
        one_model = len({group.model for group in groups}) == 1
        raise _name_based(groups[decay], context.spec, one_model)
    if len({group.model for group in groups}) != 1:
        models = ", ".join(f"`{group.model}`" for group in groups)
        raise context.render(Finding(findings.PARAM_GROUPS_SEVERAL_MODELS, {"models": models}))
    if len({_binding(group.receiver, context) for group in groups}) != 1:
        models = f"`{groups[0].model}` may be another object in each group"
        raise context.render(Finding(findings.PARAM_GROUPS_SEVERAL_MODELS, {"models": models}))
    ranks = [_ranks(group, context) for group in groups]
    if ranks[0] & ranks[1] or (ranks[0] | ranks[1]) != frozenset(_RANKS):
        raise context.render(Finding(findings.PARAM_GROUPS_OVERLAP))
    _check_reads(reads, context)
    return RankSplit(groups[0].model, groups[0].receiver, _spelled(ranks[decay], context))


def rank_split_of(params: cst.BaseExpression, context: Context) -> RankSplit | None:
    """The rank split of one whole model that the param groups ``params`` make (two dict
    literals with ``params``, in a list or tuple written there or bound once to a name), for
    any options they have; None when they are not shown to be one."""
    list_name = params if isinstance(params, cst.Name) else None
    value = follow(params, context)
    if not isinstance(value, (cst.List, cst.Tuple)) or len(value.elements) != 2:
        return None
    groups = []
    for element in value.elements:
        group = element.value if isinstance(element, cst.Element) else None
        found = _dict_params(group) if isinstance(group, cst.Dict) else None
        if found is None:
            return None
        groups.append(found)
    try:
        return rank_mask(groups, 0, context, list_name)
    except (NotASplit, Untranslatable):
        return None


def _dict_params(group: cst.Dict) -> cst.BaseExpression | None:
    """The ``params`` value of a group dict literal whose keys are all strings (no ``**``)."""
    found = None
    for element in group.elements:
        key = element.key if isinstance(element, cst.DictElement) else None
        if not isinstance(key, cst.SimpleString):
            return None
        if key.evaluated_value == "params":
            found = element.value
    return found


def _group(node: cst.BaseExpression, context: Context, reads: _Reads) -> _Group:
    """A group's ``params``: a list comprehension over one whole model's parameters."""
    reads.followed.add(id(node))
    value = follow(node, context, reads)
    if not isinstance(value, cst.ListComp):
        raise NotASplit
    clause = value.for_in
    target = _target(clause.target)
    if clause.inner_for_in is not None or target is None or not _is_name(value.elt, target[1]):
        raise NotASplit
    name, parameter = target
    model, receiver = _model(clause.iter, name is not None, context, reads)
    return _Group(model, receiver, _conjunction(clause.ifs), parameter, name)


def _binding(receiver: cst.BaseExpression | None, context: Context) -> tuple[object, ...]:
    """The one binding of the name ``receiver`` is that reaches it (its value and the reads of
    the variable, by identity; a name the file never binds: the name): equal for two receivers
    only when both read the same object; else the receiver itself. An attribute (``self.net``)
    is the receiver itself: it may be stored again between two groups (``self.net = other``)
    while the name at its root stays bound once."""
    root = receiver
    if not isinstance(root, cst.Name):
        return (id(receiver),)
    variable = context.variable(root)
    if variable is None:
        return ("free", root.value)
    if len(variable.values) != 1:
        return (id(receiver),)
    return (id(variable.values[0]), *sorted(id(read[0]) for read in variable.reads))


def _target(node: cst.BaseExpression) -> tuple[str | None, str] | None:
    """``p`` -> (None, "p"); ``n, p`` -> ("n", "p"); anything else None."""
    if isinstance(node, cst.Name):
        return None, node.value
    if isinstance(node, cst.Tuple) and len(node.elements) == 2:
        first, second = (element.value for element in node.elements)
        if isinstance(first, cst.Name) and isinstance(second, cst.Name):
            return first.value, second.value
    return None


def _is_name(node: cst.BaseExpression, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name


_Model = tuple[str, cst.BaseExpression | None]  # a model's text, its receiver node if any


def _model(iterable: cst.BaseExpression, named: bool, context: Context, reads: _Reads) -> _Model:
    """The whole model whose parameters ``iterable`` yields (named or not), or escape."""
    if named:
        found = _named_dict(iterable, context, reads, set())
        if found is not None:
            return found
    selection = select(iterable, context.names, context.spec)
    shown = " ".join(code_of(iterable).split())
    if selection.kind != WHOLE:
        raise context.render(Finding(findings.PARAM_GROUP_PART_OF_MODEL, {"shown": shown}))
    func = iterable.func if isinstance(iterable, cst.Call) else None
    if isinstance(func, cst.Attribute) and func.attr.value in context.spec.module_methods:
        return " ".join(code_of(func.value).split()), func.value
    return selection.key, None


def _named_dict(
    iterable: cst.BaseExpression, context: Context, reads: _Reads, seen: set[str]
) -> _Model | None:
    """``d.items()`` of a dict built only by ``{n: p for n, p in <named parameters>}``
    comprehensions (which may keep only trainable ones): the model, else None."""
    if not (
        isinstance(iterable, cst.Call)
        and not iterable.args
        and isinstance(iterable.func, cst.Attribute)
        and iterable.func.attr.value in context.spec.dict_methods
        and isinstance(iterable.func.value, cst.Name)
    ):
        return None
    receiver = iterable.func.value
    variable = context.variable(receiver)
    if variable is None:
        return None
    reads.followed.add(id(receiver))
    if receiver.value in seen:
        return "", None
    reads.variables.append((receiver.value, variable))
    models: dict[str, cst.BaseExpression | None] = {}
    for value in variable.values:
        model = _dict_comprehension(value, context, reads, seen | {receiver.value})
        if model is None:
            return None
        models.setdefault(*model)
    models.pop("", None)  # a comprehension over the dict itself filters it
    return models.popitem() if len(models) == 1 else None


def _dict_comprehension(
    value: cst.BaseExpression | None, context: Context, reads: _Reads, seen: set[str]
) -> _Model | None:
    if not isinstance(value, cst.DictComp) or value.for_in.inner_for_in is not None:
        return None
    target = _target(value.for_in.target)
    if target is None or target[0] is None:
        return None
    if not (_is_name(value.key, target[0]) and _is_name(value.value, target[1])):
        return None
    condition = _conjunction(value.for_in.ifs)
    for atom in _atoms(condition):
        if not _always_true(atom, target[1], context.spec):
            return None
    iterable = value.for_in.iter
    found = _named_dict(iterable, context, reads, seen)
    if found is not None:
        return found
    selection = select(iterable, context.names, context.spec)
    func = iterable.func if isinstance(iterable, cst.Call) else None
    if selection.kind != WHOLE or not isinstance(func, cst.Attribute):
        return None
    return " ".join(code_of(func.value).split()), func.value


def _conjunction(ifs: tuple[cst.CompIf, ...] | list[cst.CompIf]) -> cst.BaseExpression | None:
    """The ``if`` clauses of a comprehension as one condition (None: no clause)."""
    condition: cst.BaseExpression | None = None
    for clause in ifs:
        test = clause.test
        condition = test if condition is None else cst.BooleanOperation(condition, cst.And(), test)
    return condition


def _atoms(condition: cst.BaseExpression | None) -> Iterator[cst.BaseExpression]:
    """The terms of a conjunction (``a and b`` -> a, b)."""
    if condition is None:
        return
    if isinstance(condition, cst.BooleanOperation) and isinstance(condition.operator, cst.And):
        yield from _atoms(condition.left)
        yield from _atoms(condition.right)
        return
    yield condition


def _always_true(atom: cst.BaseExpression, parameter: str, spec: ParameterSpec) -> bool:
    """``p.requires_grad``: true for every parameter of a file that freezes none
    (``parameters.trainable``)."""
    return trainable(atom, parameter, spec)


def _ranks(group: _Group, context: Context) -> frozenset[int]:
    """The ranks (in ``_RANKS``) of the parameters the group's condition keeps."""
    selected = frozenset(_RANKS)
    for atom in _atoms(group.condition):
        if _always_true(atom, group.parameter, context.spec):
            continue
        selected &= _rank_comparison(atom, group.parameter, context)
    return selected


def _rank_comparison(atom: cst.BaseExpression, parameter: str, context: Context) -> frozenset[int]:
    """The ranks ``p.dim() >= 2`` (or ``2 <= len(p.shape)``...) keeps, or escape."""
    spec = context.spec
    shown = " ".join(code_of(atom).split())
    unknown = context.render(Finding(findings.PARAM_GROUP_CONDITION_UNKNOWN, {"shown": shown}))
    if not isinstance(atom, cst.Comparison) or len(atom.comparisons) != 1:
        raise unknown
    target = atom.comparisons[0]
    operator = type(target.operator)
    left, right = atom.left, target.comparator
    if _is_rank(right, parameter, spec):
        left, right, operator = right, left, _FLIPPED.get(operator, operator)
    constant = _small_integer(right)
    if operator not in _COMPARE or not _is_rank(left, parameter, spec) or constant is None:
        raise unknown
    compare = _COMPARE[operator]
    return frozenset(r for r in _RANKS if compare(r, constant))


def _is_rank(node: cst.BaseExpression, parameter: str, spec: ParameterSpec) -> bool:
    shown = "".join(code_of(node).split())
    return any(_spelling(pattern, parameter) == shown for pattern in spec.rank)


def _spelling(pattern: str, parameter: str) -> str:
    """The map's ``p.dim()`` written with the comprehension's variable, without spaces."""
    renamed = cst.parse_expression(pattern).visit(_Rename({"p": parameter}))
    return "".join(code_of(renamed).split())


def _small_integer(node: cst.BaseExpression) -> int | None:
    try:
        value = literal_value(node)
    except NotALiteral:
        return None
    if type(value) is not int or not 0 <= value <= _MAX_CONSTANT:
        return None
    return value


def _spelled(ranks: frozenset[int], context: Context) -> str:
    """``">= 2"``: the comparison with an integer that keeps exactly ``ranks``."""
    for operator, compare in _SPELLED.items():
        for constant in range(len(_RANKS) + 1):
            if ranks == frozenset(r for r in _RANKS if compare(r, constant)):
                return f"{operator} {constant}"
    raise context.render(Finding(findings.PARAM_GROUPS_RANK_SPLIT_UNSAID))


def _uses(node: cst.CSTNode | None, name: str) -> bool:
    """Whether ``node`` reads the variable ``name``."""
    if node is None:
        return False
    if isinstance(node, cst.Name):
        return node.value == name
    if isinstance(node, cst.Attribute):
        return _uses(node.value, name)
    return any(_uses(child, name) for child in cst_walk.children(node))


def _check_reads(reads: _Reads, context: Context) -> None:
    """Every variable followed is only read where it was followed, iterated or measured
    (``len(x)``): nothing appends to a group or changes the dict of parameters."""
    for name, variable in reads.variables:
        for read in variable.reads:
            if not _harmless(read, reads.followed):
                use = " ".join(code_of(read[-1]).split())
                raise context.render(
                    Finding(findings.PARAM_GROUP_VARIABLE_USED, {"name": name, "use": use})
                )


def _harmless(read: tuple[cst.CSTNode, ...], followed: set[int]) -> bool:
    node = read[0]
    if id(node) in followed:
        return True
    parent = read[1] if len(read) > 1 else None
    if isinstance(parent, cst.CompFor) and parent.iter is node:
        return True
    call = read[2] if len(read) > 2 else None
    return (
        isinstance(parent, cst.Arg)
        and isinstance(call, cst.Call)
        and len(call.args) == 1
        and _is_name(call.func, "len")
    )


def _name_based(group: _Group, spec: ParameterSpec, one_model: bool) -> NameBased:
    """The escape for groups split by parameter names, with the mask on the leaves' paths
    (and the model, when every group filters the same one)."""
    assert group.name is not None
    condition = group.condition
    predicate = "True"
    if condition is not None:
        renamed = condition.visit(_Rename({group.name: "n", group.parameter: "p"}))
        predicate = " ".join(code_of(renamed).split())
    mask = (spec.path_mask or "").replace("{predicate}", predicate)
    return NameBased(mask, group.receiver if one_model else None)


class _Rename(cst.CSTTransformer):
    """Renames variables (not attributes or keywords)."""

    def __init__(self, names: dict[str, str]) -> None:
        super().__init__()
        self.names = names

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.Attribute:
        return updated_node.with_changes(attr=original_node.attr)

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        return updated_node.with_changes(keyword=original_node.keyword)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        return updated_node.with_changes(
            value=self.names.get(updated_node.value, updated_node.value)
        )


def one_group(params: cst.BaseExpression, variable: VariableOf) -> bool:
    """Whether an optimizer built over ``params`` (its first argument) surely has one param
    group: the argument, followed through names bound once, is a call (``model.parameters()``)
    or a comprehension or display of no dict, or a display of one dict. Anything else (two
    groups, a name bound twice or unbound here) is not known to be one group."""
    value = params
    for _ in range(_MAX_DEPTH):
        if not isinstance(value, cst.Name):
            break
        bound = variable(value)
        if bound is None or len(bound.values) != 1 or bound.values[0] is None:
            return False
        value = bound.values[0]
    if isinstance(value, (cst.List, cst.Tuple)):
        if any(isinstance(e, cst.StarredElement) for e in value.elements):
            return False
        dicts = sum(isinstance(e.value, cst.Dict) for e in value.elements)
        return dicts == 0 or len(value.elements) == 1
    if isinstance(value, (cst.ListComp, cst.GeneratorExp)):
        return not isinstance(value.elt, cst.Dict)
    return isinstance(value, (cst.Call, cst.Attribute))
