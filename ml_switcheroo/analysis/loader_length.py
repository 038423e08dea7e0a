"""Whether ``len(loader)`` is, at every epoch, the number of batches a ``for`` loop over the
loader runs: the steps per epoch of a scheduler stepped once per epoch (``Planner._inferred_
length``), without ``--steps-per-epoch``.

Torch's ``DataLoader`` over a map-style dataset iterates its batch sampler, and its ``len()`` is
that sampler's: ``ceil(len(dataset) / batch_size)`` (``floor`` with ``drop_last``). That holds
when the loader is one of the map's ``measured_loaders`` given only the arguments the map lists
(no ``sampler=``/``batch_sampler=``, whose ``len()`` is whatever the object says), its dataset
one of the map's ``map_style_datasets`` (an ``IterableDataset``'s ``len()`` is only a hint), and
nothing can change either: each name bound once, the dataset read only by the loader's
construction and ``len()``, the loader only iterated (``for b in loader``, ``enumerate(loader)``),
measured (``len(loader)``, ``len(loader.dataset)``) or handed to the one epoch call whose
parameter is read the same ways. Any other shape: not proved (a reason).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import libcst as cst
from libcst.metadata import Assignment

from ml_switcheroo.analysis.cst_walk import in_tree_order
from ml_switcheroo.spec.semantic_map import SemanticMap
from ml_switcheroo.spec.signature import code_of

Qualify = Callable[[cst.BaseExpression], list[str]]


def _call_of(parent: dict[cst.CSTNode, cst.CSTNode], node: cst.CSTNode) -> cst.Call | None:
    """The call ``node`` is a positional argument of."""
    arg = parent.get(node)
    call = parent.get(arg) if isinstance(arg, cst.Arg) else None
    if isinstance(call, cst.Call) and isinstance(arg, cst.Arg) and arg.keyword is None:
        return call if not arg.star else None
    return None


def _is_len(call: cst.Call | None, builtin_len: bool) -> bool:
    return (
        builtin_len
        and call is not None
        and isinstance(call.func, cst.Name)
        and call.func.value == "len"
        and len(call.args) == 1
    )


def measured_read(
    node: cst.CSTNode,
    parent: dict[cst.CSTNode, cst.CSTNode],
    builtin_len: bool,
    handed: Collection[cst.Call] = (),
) -> bool:
    """Whether a read of the loader only iterates it (``for b in x``, ``enumerate(x)`` there),
    measures it (``len(x)``, ``len(x.dataset)``) or hands it to one of ``handed``."""
    holder = parent.get(node)
    if isinstance(holder, cst.For) and holder.iter is node:
        return True
    call = _call_of(parent, node)
    if call is not None and call in handed:
        return True
    if _is_len(call, builtin_len):
        return True
    if call is not None and isinstance(call.func, cst.Name) and call.func.value == "enumerate":
        loop = parent.get(call)
        return len(call.args) == 1 and isinstance(loop, cst.For) and loop.iter is call
    if (
        isinstance(holder, cst.Attribute)
        and holder.value is node
        and holder.attr.value == "dataset"
    ):
        return _is_len(_call_of(parent, holder), builtin_len)
    if isinstance(holder, cst.Arg) and holder.keyword is not None:
        call = parent.get(holder)
        return isinstance(call, cst.Call) and call in handed
    return False


def _size_kept(node: cst.CSTNode, parent: dict[cst.CSTNode, cst.CSTNode], builtin: bool) -> bool:
    """Whether a read of a tensor cannot change its size: indexed (``x[i]``, not assigned
    through), measured (``len(x)``), an operand (``x * 2``, ``x < 0``), or an attribute read
    that is neither called nor assigned (``x.shape``; ``x.resize_()``, ``x.data = ...`` are
    not)."""
    holder = parent.get(node)
    if isinstance(holder, cst.Subscript) and holder.value is node:
        return not _assigned(holder, parent)
    if _is_len(_call_of(parent, node), builtin):
        return True
    if isinstance(holder, cst.BinaryOperation | cst.UnaryOperation | cst.ComparisonTarget):
        return True
    if isinstance(holder, cst.Comparison) and holder.left is node:
        return True
    if isinstance(holder, cst.Attribute) and holder.value is node:
        above = parent.get(holder)
        called = isinstance(above, cst.Call) and above.func is holder
        return (
            not called
            and not _assigned(holder, parent)
            and not isinstance(above, cst.Attribute | cst.Subscript)
        )
    return False


def _assigned(node: cst.CSTNode, parent: dict[cst.CSTNode, cst.CSTNode]) -> bool:
    """Whether ``node`` is a target of an assignment or ``del``."""
    holder = parent.get(node)
    if isinstance(holder, cst.AssignTarget | cst.Del | cst.AugAssign | cst.AnnAssign):
        return True
    return isinstance(holder, cst.Tuple | cst.List | cst.Element) and _assigned(holder, parent)


class LoaderFacts:
    """What ``loader_problem`` reads of the file: the scopes, qualified names through imports,
    the parents of nodes and the map."""

    def __init__(
        self,
        scopes: dict[cst.CSTNode, object],
        qualify: Qualify,
        parent: dict[cst.CSTNode, cst.CSTNode],
        semantic_map: SemanticMap,
        uses_of: Callable[[cst.Name], list[cst.CSTNode]],
    ) -> None:
        self.scopes, self.qualify, self.parent = scopes, qualify, parent
        self.map, self.uses_of = semantic_map, uses_of

    def builtin_len(self, node: cst.CSTNode) -> bool:
        scope = self.scopes.get(node)
        return scope is not None and not any(
            isinstance(a, Assignment)
            for a in scope["len"]  # type: ignore[index]
        )

    def one_value(self, name: cst.Name) -> tuple[cst.Name, cst.BaseExpression] | str:
        """The target and value of the one binding ``name = value`` of ``name`` where it is
        read, or why there is no such one binding."""
        scope = self.scopes.get(name)
        if scope is None:
            return f"`{name.value}` has no scope"
        bindings = list(scope[name.value])  # type: ignore[index]
        if len(bindings) != 1 or not isinstance(bindings[0], Assignment):
            return f"`{name.value}` is bound {len(bindings)} times"
        target = bindings[0].node
        holder = self.parent.get(target)
        statement = self.parent.get(holder) if isinstance(holder, cst.AssignTarget) else None
        if not isinstance(target, cst.Name) or not isinstance(statement, cst.Assign):
            return f"`{name.value}` is not bound by `{name.value} = ...`"
        if len(statement.targets) != 1:
            return f"`{name.value}` is bound together with another name"
        return target, statement.value

    def loader_problem(self, name: cst.Name, handed: Collection[cst.Call]) -> str | None:
        """Why ``len(name)`` may not be the number of batches each pass over it yields (None:
        it is): see the module's doc."""
        found = self.one_value(name)
        if isinstance(found, str):
            return found
        target, value = found
        if not isinstance(value, cst.Call) or not set(self.qualify(value.func)) & set(
            self.map.measured_loaders
        ):
            return f"`{name.value}` is not built by a DataLoader of the map"
        dataset = self._dataset_argument(value)
        if isinstance(dataset, str):
            return dataset
        builtin = self.builtin_len(target)
        for read in self.uses_of(target):
            if not measured_read(read, self.parent, builtin, handed):
                return (
                    f"`{name.value}` is used otherwise than iterated or measured with len(): "
                    f"`{code_of(self.parent.get(read) or read).strip()[:60]}`"
                )
        return self._dataset_problem(dataset, value)

    def _dataset_argument(self, loader: cst.Call) -> cst.BaseExpression | str:
        positional = self.map.measured_loader_positional
        dataset: cst.BaseExpression | None = None
        for index, arg in enumerate(loader.args):
            if arg.star:
                return "the DataLoader's arguments are unpacked (`*`/`**`)"
            if arg.keyword is None:
                if index >= len(positional):
                    return "the DataLoader is given a sampler or another positional argument"
                word = positional[index]
            else:
                word = arg.keyword.value
                if word not in self.map.measured_loader_keywords:
                    return f"the DataLoader is given `{word}=`, whose len() may differ"
            if word == "dataset":
                dataset = arg.value
        return dataset if dataset is not None else "the DataLoader has no dataset argument"

    def _dataset_problem(self, dataset: cst.BaseExpression, loader: cst.Call) -> str | None:
        value = dataset
        if isinstance(dataset, cst.Name):
            found = self.one_value(dataset)
            if isinstance(found, str):
                return found
            target, value = found
            builtin = self.builtin_len(target)
            for read in self.uses_of(target):
                call = _call_of(self.parent, read)
                keyword = self.parent.get(read)
                in_loader = call is loader or (
                    isinstance(keyword, cst.Arg) and self.parent.get(keyword) is loader
                )
                if not in_loader and not _is_len(call, builtin):
                    return f"the dataset `{dataset.value}` is used otherwise than by the DataLoader"
        if not isinstance(value, cst.Call) or not set(self.qualify(value.func)) & set(
            self.map.map_style_datasets
        ):
            return "its dataset is not one the map knows is map-style with a fixed len()"
        if set(self.qualify(value.func)) & set(self.map.sized_by_arguments):
            return self._sized_argument_problem(value)
        return None

    def _sized_argument_problem(self, dataset: cst.Call) -> str | None:
        """Probe s37 L1: a dataset whose len() reads its arguments when asked (the map's
        ``sized_by_arguments``: ``TensorDataset(xs)`` is ``xs.size(0)``) has the size they have
        at each epoch, and ``xs.resize_(20)`` or ``xs.data = xs.data[:20]`` after the loader is
        built changes it (0.23 relative off torch). Each argument must be a name (an
        expression such as ``xs.to(device)`` may be ``xs`` itself) whose every read but this
        one is indexed, measured with ``len()``, an operand, or an attribute read that is
        neither called nor assigned (``xs.shape``)."""
        for arg in dataset.args:
            value = arg.value
            if arg.star or not isinstance(value, cst.Name):
                return (
                    f"the dataset's argument `{code_of(value).strip()[:40]}` is not a name: "
                    "its len() reads the argument's size when asked"
                )
            scope = self.scopes.get(value)
            if scope is None:
                return f"`{value.value}` has no scope"
            accesses = (  # in the order of the tree: the reason names the first
                access
                for assignment in scope[value.value]  # type: ignore[index]
                for access in getattr(assignment, "references", ())
            )
            for access in in_tree_order(self.scopes, accesses):
                read = access.node
                if read is value or _size_kept(read, self.parent, self.builtin_len(read)):
                    continue
                shown = code_of(self.parent.get(read) or read).strip()[:60]
                return (
                    f"`{value.value}`, whose size is the dataset's len(), is used otherwise "
                    f"than indexed, measured or read: `{shown}`"
                )
        return None
