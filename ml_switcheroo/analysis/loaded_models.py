"""Names of a file that may hold a model loaded whole (s41, the map's
``parameters.loaded_models``: ``torch.load``, ``pickle.load``...): such a model's frozen
parameters were saved with it, not written in the code.

Flow-insensitive and scope-insensitive, by dotted name (``model``, ``self.model``), to a
fixpoint: a name is loaded when an assignment binds it (a target of ``=``, ``:=``, an
annotated assignment, a tuple element) to a value holding a loading reference (a reference to
a ``loaded_models`` function, called or not: ``load = torch.load``, ``partial(torch.load)``),
a loaded name (``model = net``, ``Wrapper(net)``, ``deepcopy(net)``, ``net if r else m``), or
a call of a loading function (a ``def`` or lambda of the file whose code holds one of those:
``def restore(p): return torch.load(p)``); every parameter of a function or class of the
file (its ``__init__``) called with such a value is loaded too (``Trainer(torch.load(p))``,
then ``self.model = model``). A value only handed to ``load_state_dict`` binds nothing: a
state dict loaded into a model built by code keeps its flags (probe s41a F2: 20 spellings of
the load carried on by an alias, a return, an argument converted before), and neither does a
value given to a call whose result holds nothing of it (the map's ``value_free_calls``:
``len(dataset.classes)``, s42). A module class of the file (one defining ``forward``) storing a
loaded value on ``self`` (in any method: ``self.backbone = torch.load(p)``) makes its calls
loaded (probe s41 F14: ``model
= Net()`` then held a model loaded whole; a class of another file: ``CrossFile.loaded_in_class``).
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.spec.signature import dotted_name

#: whether a Name or Attribute refers to a ``loaded_models`` function (or a call gets one by
#: name: ``getattr(torch, "load")``)
IsLoading = Callable[[cst.BaseExpression], bool]


# Type tests of ``loaded_names``' walk, answered once per node type (libcst's node classes
# are ABCs: an ``isinstance`` that misses is a Python-level call per class).
_is_reference = cst_walk.instance_test((cst.Name, cst.Attribute, cst.Call))
_is_read = cst_walk.instance_test(
    (cst.Assign, cst.AnnAssign, cst.NamedExpr, cst.FunctionDef, cst.ClassDef, cst.Call)
)


def loaded_names(
    module: cst.Module,
    is_loading: IsLoading,
    value_free: Callable[[cst.Call], bool] = lambda call: False,
) -> dict[str, cst.CSTNode]:
    """Each loaded dotted name of ``module`` -> the loading reference it comes from;
    ``value_free``: whether a call's result holds nothing of its arguments (``len(x)``: a
    loaded value given to it is not carried on)."""
    bindings: list[tuple[list[str], cst.BaseExpression]] = []
    # a class's stores on `self` (`self.backbone = torch.load(p)` in `__init__`): its
    # instances hold what they store (probe s41 F14)
    held: dict[str, list[cst.BaseExpression]] = {}
    functions: dict[str, list[cst.CSTNode]] = {}
    parameters: dict[str, list[cst.Parameters]] = {}
    calls: list[cst.Call] = []
    references = False  # a loading reference anywhere: else nothing is loaded (one walk)
    for node in cst_walk.walk(module):
        if not references and _is_reference(node):
            references = is_loading(node)  # type: ignore[arg-type]
        if not _is_read(node):
            continue  # none of the kinds below (answered once per node type)
        if isinstance(node, cst.Assign):
            targets = [t.target for t in node.targets]
            bindings.append(([n for t in targets for n in _names(t)], node.value))
        elif isinstance(node, (cst.AnnAssign, cst.NamedExpr)) and node.value is not None:
            bindings.append((_names(node.target), node.value))
        elif isinstance(node, cst.FunctionDef):
            functions.setdefault(node.name.value, []).append(node)
            parameters.setdefault(node.name.value, []).append(node.params)
        elif isinstance(node, cst.ClassDef):
            if _defines_forward(node):  # a module class (a data set's loads are no model)
                held.setdefault(node.name.value, []).extend(_self_stores(node))
            for statement in node.body.body:
                if isinstance(statement, cst.FunctionDef) and statement.name.value == "__init__":
                    parameters.setdefault(node.name.value, []).append(statement.params)
        elif isinstance(node, cst.Call):
            calls.append(node)
    if not references:
        return {}
    for names, value in bindings:
        if isinstance(value, cst.Lambda):
            for name in names:
                functions.setdefault(name, []).append(value)
    loaded: dict[str, cst.CSTNode] = {}
    loading: dict[str, cst.CSTNode] = {}

    def origin(node: cst.CSTNode) -> cst.CSTNode | None:
        """The loading reference ``node`` holds (or one a name it reads comes from); what
        ``load_state_dict(...)`` is given does not count."""
        stack = [node]
        while stack:
            inner = stack.pop()
            if _state_dict_call(inner):
                continue
            if isinstance(inner, cst.Call) and value_free(inner):
                continue
            if isinstance(inner, (cst.Name, cst.Attribute)):
                text = dotted_name(inner)
                if text is not None and text in loaded:
                    return loaded[text]
                if is_loading(inner):
                    return inner
            if isinstance(inner, cst.Call) and is_loading(inner):  # getattr(torch, "load")
                return inner
            if isinstance(inner, cst.Call):
                callee = inner.func
                name = callee.attr.value if isinstance(callee, cst.Attribute) else None
                name = callee.value if isinstance(callee, cst.Name) else name
                if name is not None and name in loading:
                    return loading[name]
            stack.extend(cst_walk.children(inner))
        return None

    def returned(definition: cst.CSTNode) -> list[cst.CSTNode]:
        """What a function returns (a lambda: its body)."""
        if isinstance(definition, cst.Lambda):
            return [definition.body]
        stop = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
        found = [n for c in cst_walk.children(definition) for n in cst_walk.walk(c, stop=stop)]
        return [n.value for n in found if isinstance(n, cst.Return) and n.value is not None]

    changed = True
    while changed:
        changed = False
        for name, values in held.items():
            if name in loading:
                continue
            found = next((o for v in values if (o := origin(v))), None)
            if found is not None:
                loading[name] = found  # `Net()` holds what its `__init__` loaded
                changed = True
        for name, definitions in functions.items():
            if name in loading:
                continue
            for definition in definitions:
                found = next((o for v in returned(definition) if (o := origin(v))), None)
                if found is not None:
                    loading[name] = found
                    changed = True
                    break
        for names, value in bindings:
            fresh = [n for n in names if n not in loaded]
            found = origin(value) if fresh else None
            for name in fresh if found is not None else ():
                loaded[name] = found  # type: ignore[assignment]
                changed = True
        for call in calls:
            callee = call.func
            name = callee.attr.value if isinstance(callee, cst.Attribute) else None
            name = callee.value if isinstance(callee, cst.Name) else name
            for argument in call.args:
                found = origin(argument.value)
                if found is None:
                    continue
                for params in parameters.get(name or "", ()):
                    for parameter in _receiving(params, call.args.index(argument), argument):
                        if parameter not in loaded:
                            loaded[parameter] = found
                            changed = True
    return loaded


def loaded_in(expression: cst.BaseExpression, loaded: dict[str, cst.CSTNode]) -> cst.CSTNode | None:
    """The loading reference a name ``expression`` reads (or what holds it: ``model`` of
    ``model.encoder.parameters()``; ``self`` alone never) comes from, else None."""
    for node in cst_walk.walk(expression):
        text = dotted_name(node) if isinstance(node, (cst.Name, cst.Attribute)) else None
        parts = text.split(".") if text else []
        for size in range(len(parts), 0, -1):
            held = ".".join(parts[:size])
            if held != "self" and held in loaded:
                return loaded[held]
    return None


def _names(target: cst.BaseExpression) -> list[str]:
    """The dotted names a target binds (each element of a tuple or list, starred too)."""
    found: list[str] = []
    stack = [target]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.Tuple, cst.List)):
            stack.extend(element.value for element in node.elements)
        elif isinstance(node, cst.StarredElement):
            stack.append(node.value)
        elif (name := dotted_name(node)) is not None:
            found.append(name)
    return found


def _receiving(params: cst.Parameters, index: int, argument: cst.Arg) -> list[str]:
    """The parameters of a signature (``self`` left out: a method called on its object) the
    argument at ``index`` of a call may bind: the positional one at its place or the keyword
    of its name; every one for ``*args`` / ``**kwargs`` or a signature that gathers them."""
    positional = [p for p in (*params.posonly_params, *params.params) if p.name.value != "self"]
    every = [*positional, *params.kwonly_params]
    gathered = [p for p in (params.star_arg, params.star_kwarg) if isinstance(p, cst.Param)]
    if argument.star:
        return [p.name.value for p in [*every, *gathered]]
    if argument.keyword is not None:
        named = [p for p in every if p.name.value == argument.keyword.value]
        return [p.name.value for p in named or gathered]
    if index < len(positional):
        return [positional[index].name.value]
    return [p.name.value for p in gathered]


def _defines_forward(node: cst.ClassDef) -> bool:
    """The class body defines ``forward`` (a torch module class)."""
    return any(isinstance(s, cst.FunctionDef) and s.name.value == "forward" for s in node.body.body)


def _self_stores(node: cst.ClassDef) -> list[cst.BaseExpression]:
    """The values the methods of ``node`` assign to an attribute of ``self``."""
    found: list[cst.BaseExpression] = []
    for inner in cst_walk.walk(node.body):
        if isinstance(inner, cst.Assign):
            targets = [t.target for t in inner.targets]
        elif isinstance(inner, cst.AnnAssign) and inner.value is not None:
            targets = [inner.target]
        else:
            continue
        names = [n for t in targets for n in _names(t)]
        if any(n.startswith("self.") for n in names):
            found.append(inner.value)  # type: ignore[arg-type]
    return found


def _state_dict_call(node: cst.CSTNode) -> bool:
    """Whether ``node`` is a call of ``load_state_dict`` (its arguments bind nothing)."""
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "load_state_dict"
    )
