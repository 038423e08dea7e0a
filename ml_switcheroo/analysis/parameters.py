"""Which parameters an optimizer trains, or a clip call clips, read from its source.

A functional optimizer applies to the whole params tree it is given: a torch optimizer over
part of a model (``model.fc.parameters()``, a ``requires_grad`` filter) has no one-line
equivalent there, and a clip call joins an optimizer's chain only when it clips the same parameters.
What the calls mean comes from the map's ``parameters`` section (``ParameterSpec``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import libcst as cst

from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.semantic_map import ApiEntry, ParameterSpec
from ml_switcheroo.spec.signature import code_of, dotted_name

WHOLE = "whole"  # every parameter of one or more whole models (or explicit tensors)
PART = "part"  # part of a model: the reason says which
UNKNOWN = "unknown"  # not known from this file (a parameter of a function, a helper's result)

_MAX_DEPTH = 8  # names followed through assignments


@dataclass(frozen=True)
class Selection:
    """What a parameters argument selects."""

    kind: str
    key: str  # the canonical source (names followed, wrappers dropped), to compare two sets
    reason: str | None = None  # for PART: what is selected
    # Every parameter of one module and nothing else: the receiver of its ``.parameters()``
    # (a dotted name: ``model``, ``self.actor``, ``model.encoder``, a submodule when the kind
    # is PART); None when the selection is not shown to be exactly one module's.
    module: cst.BaseExpression | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Names:
    """Name resolution at the call: the one value a name is bound to, and qualified names."""

    value: Callable[[cst.BaseExpression], cst.BaseExpression | None]
    qualified: Callable[[cst.BaseExpression], list[str]]
    module_self: bool = False  # `self` is a model (its class derives from a module class)
    # Whether the file's code binds a name where a node is (so it is not the builtin), or may.
    binds: Callable[[cst.CSTNode, str], bool] = lambda node, name: True
    # For a Name: a read of its variable that may change or consume what it holds (anything
    # but a plain argument of a torch call: ``ps.pop()``, ``next(ps)``, ``drop(ps)``, an
    # alias), as ``out_of_sight_read`` finds; None: none, or not known (then not followed).
    other_read: Callable[[cst.Name], cst.CSTNode | None] = lambda name: name


def is_module_class(
    node: cst.ClassDef | None,
    qualified: Callable[[cst.BaseExpression], list[str]],
    spec: ParameterSpec,
) -> bool:
    """Whether the class derives (directly) from one of the map's ``module_classes``."""
    if node is None:
        return False
    return any(set(qualified(base.value)) & spec.module_classes for base in node.bases)


def parameters_argument(entry: ApiEntry, call: cst.Call, spec: ParameterSpec) -> cst.BaseExpression:
    """The argument of ``call`` holding the parameters (``params``, ``parameters``)."""
    bound = entry.signature.bind(call)
    for name in spec.arguments:
        if name in bound:
            return bound[name].value
    raise Untranslatable("the parameters argument is missing")


def select(
    node: cst.BaseExpression, names: Names, spec: ParameterSpec, depth: int = 0
) -> Selection:
    """What ``node`` (an optimizer's ``params``, a clip call's ``parameters``) selects."""
    if depth > _MAX_DEPTH:
        return Selection(UNKNOWN, _code(node))
    if isinstance(node, (cst.Name, cst.Attribute)):
        value = names.value(node)
        if value is not None and value is not node:
            # what a name holds is its value only while nothing else reads it (a list filled
            # by `append`, popped, a generator consumed): `self.x` is not followed at all
            if isinstance(node, cst.Attribute) or names.other_read(node) is not None:
                return Selection(UNKNOWN, _code(node))
            return select(value, names, spec, depth + 1)
        if isinstance(node, cst.Name):
            return Selection(UNKNOWN, _code(node))
    if isinstance(node, cst.Call):
        return _select_call(node, names, spec, depth)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
        return _union([node.left, node.right], _code(node), names, spec, depth)
    if isinstance(node, (cst.List, cst.Tuple)):
        return _select_display(node, names, spec, depth)
    if isinstance(node, (cst.ListComp, cst.GeneratorExp)):
        return _select_comprehension(node, names, spec, depth)
    return Selection(UNKNOWN, _code(node))


def whole_module(node: cst.BaseExpression, spec: ParameterSpec, module_self: bool) -> bool:
    """``model``, ``self``, ``self.model`` (unless ``self`` is itself a model: then it is a
    submodule) and ``<one of those>.module`` (a DDP wrapper)."""
    if isinstance(node, cst.Name):
        return True
    if not isinstance(node, cst.Attribute):
        return False
    if node.attr.value in spec.wrapped_module and whole_module(node.value, spec, module_self):
        return True
    return isinstance(node.value, cst.Name) and node.value.value == "self" and not module_self


def _select_call(node: cst.Call, names: Names, spec: ParameterSpec, depth: int) -> Selection:
    func = node.func
    if isinstance(func, cst.Attribute) and func.attr.value in spec.module_methods:
        module = func.value
        if node.args:
            return Selection(PART, _code(node), f"only the parameters `{_code(node)}` selects")
        bound = names.value(module) if isinstance(module, cst.Name) else None
        for _ in range(_MAX_DEPTH):  # `last = m`: the name it is bound to, followed
            if not isinstance(bound, cst.Name):
                break
            found = names.value(bound)
            if found is None and names.binds(bound, bound.value):  # a loop target, say
                shown = f"`{_code(module)}` (`{_code(bound)}`)"
                return Selection(UNKNOWN, _code(node), f"the parameters of {shown}")
            if found is None:
                break
            bound = found
        if isinstance(bound, cst.Subscript):  # `head = model[2]`
            return Selection(
                PART, _code(node), f"only `{_code(module)}`'s (`{_code(bound)}`) parameters"
            )
        if isinstance(bound, cst.Attribute) and not whole_module(bound, spec, names.module_self):
            return Selection(
                PART, _code(node), f"only `{_code(module)}`'s (`{_code(bound)}`) parameters"
            )
        dotted = module if dotted_name(module) is not None else None
        if whole_module(module, spec, names.module_self):
            return Selection(WHOLE, _code(node), module=dotted)
        if _through_wrapper(module, spec):  # `model.module.fc`: the port has no `.module`
            dotted = None
        return Selection(PART, _code(node), f"only `{_code(module)}`'s parameters", dotted)
    called = _called_names(func, names)
    positional = [a.value for a in node.args if a.keyword is None and not a.star]
    if called & spec.filters:
        return Selection(PART, _code(node), f"only the parameters `{_code(node)}` selects")
    if called & spec.wrappers and len(node.args) == 1 and len(positional) == 1:
        return select(positional[0], names, spec, depth + 1)
    if called & spec.unions and len(positional) == len(node.args):
        return _union(positional, _code(node), names, spec, depth)
    return Selection(UNKNOWN, _code(node))


def _through_wrapper(node: cst.BaseExpression, spec: ParameterSpec) -> bool:
    """An attribute on the path is a wrapper's (``spec.wrapped_module``: DDP's ``.module``)."""
    while isinstance(node, cst.Attribute):
        if node.attr.value in spec.wrapped_module:
            return True
        node = node.value
    return False


def one_shot_value(
    node: cst.BaseExpression, names: Names, spec: ParameterSpec
) -> cst.BaseExpression | None:
    """The iterator a name holds, which its first full pass consumes (``ps =
    model.parameters()``, ``filter(...)``, a generator expression; names followed), else None."""
    value: cst.BaseExpression | None = node
    for _ in range(_MAX_DEPTH):
        if not isinstance(value, cst.Name):
            break
        value = names.value(value)
    if value is node:
        return None
    if isinstance(value, cst.GeneratorExp):
        return value
    if not isinstance(value, cst.Call):
        return None
    func = value.func
    if isinstance(func, cst.Attribute) and func.attr.value in spec.module_methods:
        return value
    return value if _called_names(func, names) & spec.iterators else None


def _called_names(func: cst.BaseExpression, names: Names) -> set[str]:
    """Qualified names of the callee, plus its bare name for builtins (``list``, ``filter``)."""
    found = set(names.qualified(func))
    if isinstance(func, cst.Name) and not found and names.value(func) is None:
        found.add(func.value)
    return found


def _union(
    parts: list[cst.BaseExpression], key: str, names: Names, spec: ParameterSpec, depth: int
) -> Selection:
    selections = [select(part, names, spec, depth + 1) for part in parts]
    for selection in selections:
        if selection.kind == PART:
            return Selection(PART, key, selection.reason)
    if any(selection.kind == UNKNOWN for selection in selections):
        return Selection(UNKNOWN, key)
    keys = [selection.key for selection in selections]
    if len(set(keys)) < len(keys):  # `chain(m.parameters(), m.parameters())` (probe s31 G5)
        return Selection(
            PART,
            key,
            f"the parameters `{key}` lists, some of them more than once (torch updates a "
            "parameter once for each time it is listed),",
        )
    return Selection(WHOLE, "+".join(keys))


def _select_display(
    node: cst.List | cst.Tuple, names: Names, spec: ParameterSpec, depth: int
) -> Selection:
    """``[w, b]`` (explicit tensors), ``[*a.parameters(), *b.parameters()]``, param groups."""
    parts: list[cst.BaseExpression] = []
    explicit = False
    for element in node.elements:
        value = element.value
        if isinstance(element, cst.StarredElement) or isinstance(value, cst.Call):
            parts.append(value)
        elif isinstance(value, cst.Dict):
            group = _group_parameters(value)
            if group is None:
                return Selection(UNKNOWN, _code(node))
            if _free(group, names):
                explicit = True  # a snippet's free name: as in `[w, b]`
            else:
                parts.append(group)
        elif isinstance(value, cst.Attribute) and not whole_module(value, spec, names.module_self):
            return Selection(PART, _code(node), f"only the tensors `{_code(node)}`")
        elif isinstance(value, cst.Name) and isinstance(names.value(value), cst.Dict):
            group = _group_parameters(names.value(value))  # type: ignore[arg-type]
            if group is None:
                return Selection(UNKNOWN, _code(node))
            if _free(group, names):
                explicit = True
            else:
                parts.append(group)  # `group = {...}; SGD([group])`
        elif isinstance(value, cst.Name) and not _tensor_of_its_own(value, names):
            return Selection(UNKNOWN, _code(node))  # `w` of `w, b = model.parameters()`
        else:
            explicit = True
    if not parts:
        return Selection(WHOLE, _code(node))
    selection = _union(parts, _code(node), names, spec, depth)
    if explicit and selection.kind != PART:
        return Selection(selection.kind, _code(node))
    return selection


def _free(node: cst.BaseExpression, names: Names) -> bool:
    """A name the file never binds (no star import may either): a snippet's free name."""
    return isinstance(node, cst.Name) and not names.binds(node, node.value)


def _tensor_of_its_own(name: cst.Name, names: Names) -> bool:
    """Whether the Name ``name`` (an element of ``[w, b]``) is a tensor the code makes itself
    (bound once to a torch call: ``torch.randn(...)``, ``nn.Parameter(...)``), or a name the file
    never binds (a snippet's): not a part of a model (``w = model.fc.weight``, ``w, b =
    model.parameters()``)."""
    value = names.value(name)
    if value is None:
        return not names.binds(name, name.value)
    if not isinstance(value, cst.Call):
        return False
    return any(q.startswith("torch.") for q in names.qualified(value.func))


def out_of_sight_read(
    reads: Iterable[tuple[cst.CSTNode, ...]] | None,
    qualified: Callable[[cst.BaseExpression], list[str]],
) -> cst.CSTNode | None:
    """The first of a variable's ``reads`` (each: the read and its nearest parents) that is
    not a plain argument of a torch call (``torch.optim.SGD(ps)``, ``clip_grad_norm_(ps, 1)``):
    one that may change or consume what the variable holds (``ps.pop()``, ``next(ps)``,
    ``drop(ps)``, ``qs = ps``), shown by its outermost known parent. None: none. Reads not
    known (None): a placeholder node, as if one were found."""
    if reads is None:
        return cst.Name("unknown")
    for chain in reads:
        read, parent, call = (*chain, None, None)[:3]
        plain = isinstance(parent, cst.Arg) and parent.value is read and not parent.star
        torch_call = isinstance(call, cst.Call) and parent in call.args
        if plain and torch_call and any(q.startswith("torch.") for q in qualified(call.func)):  # type: ignore[union-attr]
            continue
        return _shown_read(chain)
    return None


def _shown_read(chain: tuple[cst.CSTNode, ...]) -> cst.CSTNode:
    """What a reason shows of a read (the read and its nearest parents): the small statement
    holding it, else its outermost parent below the module."""
    for node in chain:
        if isinstance(node, cst.BaseSmallStatement):
            return node
    below = [node for node in chain if not isinstance(node, (cst.Module, cst.BaseStatement))]
    return below[-1] if below else chain[0]


def _group_parameters(group: cst.Dict) -> cst.BaseExpression | None:
    for element in group.elements:
        if (
            isinstance(element, cst.DictElement)
            and isinstance(element.key, cst.SimpleString)
            and element.key.evaluated_value == "params"
        ):
            return element.value
    return None


def _select_comprehension(
    node: cst.ListComp | cst.GeneratorExp, names: Names, spec: ParameterSpec, depth: int
) -> Selection:
    """``[p for p in m.parameters()]`` is ``m``'s; a condition selects part of them."""
    # A condition selects part of them, `p.requires_grad` too: the filter is the code's sign
    # that something may freeze a parameter, which no check here can rule out (a library's
    # builder or hook, `torch.load`, a class overriding `train()`: s40 probe p40a 1-10).
    clause = node.for_in
    if clause.ifs:
        return Selection(PART, _code(node), f"only the parameters `{_code(node)}` selects")
    if clause.inner_for_in is not None or not _yields_the_parameter(node.elt, clause.target):
        return Selection(UNKNOWN, _code(node))
    return select(clause.iter, names, spec, depth + 1)


def trainable(condition: cst.BaseExpression, parameter: str, spec: ParameterSpec) -> bool:
    """``p.requires_grad`` (the map's ``freeze_attributes`` of the variable ``parameter``), read
    as always true by the param-group split (``param_groups``): a file that freezes parameters
    escapes its optimizers (``plan_models._plan_frozen_parameters``). The one function to
    change when that check asks, per model, whether a freeze can reach it."""
    return (
        isinstance(condition, cst.Attribute)
        and isinstance(condition.value, cst.Name)
        and condition.value.value == parameter
        and condition.attr.value in spec.freeze_attributes
    )


def _yields_the_parameter(element: cst.BaseExpression, target: cst.BaseExpression) -> bool:
    """``p for p in ...`` or ``p for name, p in ...named_parameters()``."""
    if not isinstance(element, cst.Name):
        return False
    if isinstance(target, cst.Name):
        return target.value == element.value
    if isinstance(target, cst.Tuple) and len(target.elements) == 2:
        last = target.elements[1].value
        return isinstance(last, cst.Name) and last.value == element.value
    return False


def _code(node: cst.CSTNode) -> str:
    return " ".join(code_of(node).split())


def may_be_tensor_class(base: str, tensor_classes: frozenset[str]) -> bool:
    """Whether a class base written ``base`` may be a tensor class: its dotted name (a
    subscript's value) ends with one of ``tensor_classes``, or it is no dotted name."""
    name = base.partition("[")[0]
    if not all(part.isidentifier() for part in name.split(".")):
        return True
    return name.rpartition(".")[2] in tensor_classes
