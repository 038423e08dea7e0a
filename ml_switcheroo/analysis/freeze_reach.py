"""What a freeze may reach (issues 12 and 13): a new tensor, or a copy of a model kept to itself.

A file writing ``x.requires_grad = False`` escaped every optimizer of it. Two freezes touch
no parameter an optimizer over ``m.parameters()`` trains, whatever else the file does:

- ``FRESH_TENSOR``: ``x`` is a local of a function whose every binding makes a new tensor
  (``new_tensor``: ``x.clone()``, ``x.detach()``, the map's ``new_tensor_functions``,
  arithmetic on such a tensor, ``self_methods`` on one, a function of the file returning
  only such tensors). torch 2.13 returns a plain Tensor there, never a Parameter, and a
  module registers only Parameters, so no module's parameter is that tensor. An optimizer
  given other tensors (``SGD([w])``) may train it: the caller asks only for optimizers over
  a model's parameters.
- ``OTHER_MODEL``: the frozen parameters are those of a model ``m`` bound once, in a
  function, to a ``new_models`` call (``copy.deepcopy(model)``: new Parameters), whose every
  read keeps them there (``_kept_read``): no optimizer is ever given one. A freeze on the
  parameter of a function of the file (``def requires_grad(model, flag)``) is such a freeze
  when every call of the function hands it such a model (and no other file calls it).

Anything else (an alias ``ema = model``, a container, a function parameter, ``w =
model.fc.weight``) is unknown: the freeze counts. ``plan_models.freeze_reaching`` asks this
of the file's own freezes; ``CrossFile`` of another file's (``OTHER_MODEL`` only there: a
dry run of that file cannot tell what the optimizer asking trains), and checks that a dry
run of a file reads its freezes as its own run does (``freezes_read_alone``).

Probe s40 (p40a) holes closed: ``deepcopy(model, memo)`` keeps the memo's objects (only
``deepcopy(x)`` makes a new model); a class of the repository defining how it is copied or
pickled (``__reduce__``, ``__setstate__``...) or code naming ``copyreg`` decides what deepcopy
returns; ``m._parameters[n] = w`` (or ``__dict__``, ``vars``, a computed ``setattr``)
registers a plain tensor; ``torch.zeros(n, out=p)`` returns ``p``; ``sys.modules[__name__]``
(or an import of the file itself) calls a freezing function unnamed. Not seen: a model's
forward pass handing its own parameters to an optimizer, a library object's ``clone()``
returning a Parameter.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ml_switcheroo.analysis import ast_nodes
from ml_switcheroo.spec.semantic_map import SemanticMap

FRESH_TENSOR = "fresh tensor"
OTHER_MODEL = "other model"
_SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.Lambda,
    ast.ClassDef,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
# builtins (as names) and identifiers reaching a module's namespace (a function of it
# called without its name written)
_DYNAMIC_CALLS = frozenset({"globals", "locals", "vars", "eval", "exec", "__import__"})
_DYNAMIC = frozenset(
    {
        "__import__",
        "import_module",
        "__globals__",
        "__dict__",
        "__main__",
        "run_module",
        "run_path",
        "getmembers",
        # a frame's namespaces (probe s41 F22: `sys._getframe().f_globals["requires_grad"]`)
        "f_globals",
        "f_locals",
        "_getframe",
        "currentframe",
    }
)
# what decides what copy.deepcopy returns besides torch's own classes
_COPY_HOOKS = (
    "__deepcopy__",
    "__copy__",
    "__reduce__",
    "__reduce_ex__",
    "__setstate__",
    "__getstate__",
)
_COPY_TABLES = ("copyreg", "dispatch_table", "_deepcopy_dispatch", "_reconstruct")
# writing into a module's namespace bypasses the check that only Parameters are registered
# and so do these, making a tensor a Parameter object or swapping one's flags (probe s40 p40a)
_REGISTRY_WORDS = (
    "_parameters",
    "__dict__",
    "__setattr__",
    "vars",
    "as_subclass",
    "__class__",
    "_make_subclass",
    "swap_tensors",
    "set_",
)
_MAX_DEPTH = 3


@dataclass(frozen=True)
class ReachFacts:
    """The map's facts the proofs read (``parameters`` and ``modules.self_methods``)."""

    freeze_attributes: frozenset[str]
    freeze_methods: frozenset[str]
    module_methods: frozenset[str]
    self_methods: frozenset[str]
    detached_methods: frozenset[str]
    new_models: frozenset[str]
    new_tensor_methods: frozenset[str]
    new_tensor_functions: frozenset[str]
    kept_tensor_methods: frozenset[str]
    transparent_decorators: frozenset[str]
    dict_builders: frozenset[str]
    tensor_attributes: frozenset[str]
    replacing: frozenset[tuple[str, str]]  # (method, argument): `load_state_dict(assign=...)`
    group_methods: frozenset[str]  # `opt.add_param_group(g)`
    arguments: frozenset[str]  # `params`: a group's key holding its tensors


def reach_facts(semantic_map: SemanticMap) -> ReachFacts:
    """``ReachFacts`` of a ``SemanticMap``."""
    spec = semantic_map.parameters
    return ReachFacts(
        spec.freeze_attributes,
        spec.freeze_methods,
        spec.module_methods,
        semantic_map.modules.self_methods,
        spec.detached_methods,
        spec.new_models,
        spec.new_tensor_methods,
        spec.new_tensor_functions,
        spec.kept_tensor_methods,
        spec.transparent_decorators,
        spec.dict_builders,
        spec.tensor_attributes,
        frozenset((method, argument) for method, _, argument in spec.replacing_arguments),
        spec.group_methods,
        frozenset(spec.arguments),
    )


def _never(name: str) -> bool:
    return False


class FreezeReach:
    """The freezes of one file's ``ast`` tree and what they may reach (``kind``).
    ``defined_elsewhere(name)``: another file of the repository defines a function so named;
    ``called_elsewhere(name)``: another file calls this file's module-level function;
    ``named_elsewhere(word)``: another file linked to this one names the identifier;
    ``own_name``: the file's module name (``train`` of ``train.py``), when known."""

    def __init__(
        self,
        tree: ast.Module,
        facts: ReachFacts,
        defined_elsewhere: Callable[[str], bool] = _never,
        called_elsewhere: Callable[[str], bool] = _never,
        named_elsewhere: Callable[[str], bool] = _never,
        own_name: str | None = None,
    ) -> None:
        self.tree = tree
        self.facts = facts
        self.defined_elsewhere = defined_elsewhere
        self.called_elsewhere = called_elsewhere
        self.named_elsewhere = named_elsewhere
        self.own_name = own_name
        self.identifiers = _identifiers(tree)
        self.code_identifiers = _identifiers(tree, strings=False)
        self.parents = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        self.imports = _imports(tree)
        self.functions = _module_functions(tree)

    # ------------------------------------------------------------------ the question

    def kind(self, node: ast.AST) -> str | None:
        """``FRESH_TENSOR`` or ``OTHER_MODEL`` when the freeze ``node`` (``x.requires_grad =
        v``, ``x.requires_grad_(v)``) provably touches such an object only; else None."""
        frozen = self.frozen_object(node)
        if not isinstance(frozen, ast.Name):
            return None
        function = self._scope(node)
        if not isinstance(function, _FUNCTIONS):
            return None
        if (
            self._tensors_registered_only()
            and self._fresh_name(frozen.id, function, set(), 0)
            and self._kept_to_itself(frozen.id, function)
        ):
            return FRESH_TENSOR
        model = self._iterated_model(node, frozen, function) or frozen
        if self._other_model(model, function, node):
            return OTHER_MODEL
        return None

    def frozen_object(self, node: ast.AST) -> ast.expr | None:
        """``x`` of the freeze ``x.requires_grad = v`` or ``x.requires_grad_(v)``, else None."""
        attributes, methods = self.facts.freeze_attributes, self.facts.freeze_methods
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return node.func.value if node.func.attr in methods else None
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AugAssign):
            targets = [node.target]
        if len(targets) == 1 and isinstance(targets[0], ast.Attribute):
            return targets[0].value if targets[0].attr in attributes else None
        return None

    def _iterated_model(
        self, node: ast.AST, frozen: ast.Name, function: ast.AST
    ) -> ast.Name | None:
        """``m`` when ``frozen`` is ``p`` of the loop ``for p in m.parameters():`` holding
        ``node``, read only in that loop (``_loop_parameter``)."""
        loop = self.parents.get(id(node))
        while loop is not None and not isinstance(loop, (ast.For, *_SCOPES)):
            loop = self.parents.get(id(loop))
        if not isinstance(loop, ast.For):
            return None
        model = self._loop_model(loop, frozen.id)
        if model is None or not self._loop_only(loop, frozen.id, function):
            return None
        return model

    def _loop_model(self, loop: ast.For, name: str) -> ast.Name | None:
        """``m`` of ``for <name> in m.parameters():`` or ``for n, <name> in
        m.named_parameters():`` (no ``else``)."""
        call = loop.iter
        if loop.orelse or not _method_call(call, self.facts.module_methods, ast.Name):
            return None
        method = call.func.attr  # type: ignore[attr-defined]
        target = loop.target
        if isinstance(target, ast.Name) and method == "parameters" and target.id == name:
            return call.func.value  # type: ignore[attr-defined]
        elements = target.elts if isinstance(target, ast.Tuple) else []
        second = elements[1] if method == "named_parameters" and len(elements) == 2 else None
        if isinstance(second, ast.Name) and second.id == name:
            return call.func.value  # type: ignore[attr-defined]
        return None

    # ------------------------------------------------------------------ new tensors

    def _fresh_name(self, name: str, function: ast.AST, seen: set[str], depth: int) -> bool:
        """Every value the local ``name`` of ``function`` is bound to is a new tensor (a name
        met again on the way: assumed so, each binding then makes one)."""
        if name in seen:
            return True
        values = self._bindings(name, function)
        if not values or any(isinstance(v, ast.arg) for v in values):
            return False
        seen = seen | {name}
        return all(
            isinstance(v, ast.AugAssign) or self._new_tensor(v, function, seen, depth)  # type: ignore[arg-type]
            for v in values
        )

    def _new_tensor(self, value: ast.expr, function: ast.AST, seen: set[str], depth: int) -> bool:
        """``value`` makes a tensor no module registers (the module docstring's list)."""
        if isinstance(value, ast.Name):
            return self._fresh_name(value.id, function, seen, depth)
        if isinstance(value, ast.BinOp):
            if self._new_tensor(value.left, function, seen, depth):
                return True
            number = isinstance(value.left, ast.Constant) and type(value.left.value) in (int, float)
            return number and self._new_tensor(value.right, function, seen, depth)
        if isinstance(value, ast.UnaryOp):
            return self._new_tensor(value.operand, function, seen, depth)
        if not isinstance(value, ast.Call):
            return False
        if any(k.arg in (None, "out") for k in value.keywords):
            return False  # `torch.zeros(n, out=p)` returns `p`
        func = value.func
        if isinstance(func, ast.Attribute):
            if func.attr in self.facts.new_tensor_methods:
                return not self.defines(func.attr)
            if func.attr in self.facts.self_methods:
                return self._new_tensor(func.value, function, seen, depth)
        if self._qualified(func) in self.facts.new_tensor_functions:
            return True
        callee = self._function_called(func)
        return callee is not None and depth < _MAX_DEPTH and self._returns_new(callee, depth + 1)

    def _kept_to_itself(self, name: str, function: ast.AST) -> bool:
        """Every read of ``name`` in ``function`` hands its tensor to no code (probe s40 p40a
        items 9-13: a tensor passed on may become a Parameter object keeping its flag): a
        freeze of it, an operand of arithmetic, the receiver of a ``new_tensor_methods`` or
        in-place (``kept_tensor_methods``) call, an argument of a ``new_tensor_functions``
        call, or its ``grad``/``shape`` read. Not returned, not called with, not stored."""
        return all(
            self._read_kept(node)
            for node in _own_nodes(function)
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)
        )

    def _read_kept(self, read: ast.Name) -> bool:
        parent = self.parents.get(id(read))
        if isinstance(parent, (ast.BinOp, ast.UnaryOp, ast.Compare)):
            return True
        if isinstance(parent, ast.Call) and read in parent.args:
            written = self._qualified(parent.func)
            keywords = all(k.arg not in (None, "out") for k in parent.keywords)
            return written in self.facts.new_tensor_functions and keywords
        if not (isinstance(parent, ast.Attribute) and parent.value is read):
            return False
        if parent.attr in ("grad", "shape") and isinstance(parent.ctx, ast.Load):
            return True
        if parent.attr in self.facts.freeze_attributes:
            return isinstance(parent.ctx, ast.Store)
        call = self.parents.get(id(parent))
        if not (isinstance(call, ast.Call) and call.func is parent):
            return False
        if parent.attr in self.facts.new_tensor_methods:
            return not self.defines(parent.attr)
        return self._kept_tensor(read)

    def _returns_new(self, function: ast.FunctionDef, depth: int) -> bool:
        """``function`` (not decorated, no ``yield``) returns a new tensor at every
        ``return``, and has one."""
        if function.decorator_list or not isinstance(function, ast.FunctionDef):
            return False
        own = list(_own_nodes(function))
        if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own):
            return False
        returns = [n for n in own if isinstance(n, ast.Return)]
        return bool(returns) and all(
            r.value is not None and self._new_tensor(r.value, function, set(), depth)
            for r in returns
        )

    def adds_tensors(self) -> bool:
        """The file may give an optimizer tensors after it is built: it names one of the
        ``group_methods`` (``add_param_group``) or writes or reads an item keyed by one of
        the ``arguments`` (``group["params"]``)."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute) and node.attr in self.facts.group_methods:
                return True
            key = node.slice if isinstance(node, ast.Subscript) else None
            if isinstance(key, ast.Constant) and key.value in self.facts.arguments:
                return True
        return False

    def names(self, word: str) -> bool:
        """The file, or another file linked to it, names the identifier ``word`` (a name, an
        attribute, an import, a string)."""
        return word in self.identifiers or self.named_elsewhere(word)

    def _copies_plainly(self) -> bool:
        """``copy.deepcopy`` makes new objects of everything here: no code of the repository
        names how a class is copied or pickled (``_COPY_HOOKS``: a ``def __deepcopy__``,
        ``__deepcopy__ = f``, ``setattr(C, "__reduce__", f)``) or deepcopy's tables
        (``_COPY_TABLES``: ``copyreg``, ``copy._deepcopy_dispatch``)."""
        return not any(self.names(word) for word in (*_COPY_HOOKS, *_COPY_TABLES))

    def _tensors_registered_only(self) -> bool:
        """A module's parameters are Parameters it registered: no code linked to this file
        writes into a module's namespace (``_REGISTRY_WORDS``: ``m._parameters[n] = w``),
        this file reads no attribute by a computed name, and no tensor class of the
        repository defines ``__torch_function__``."""
        if self.defines("__torch_function__") or any(self.names(w) for w in _REGISTRY_WORDS):
            return False
        return not any(
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id in ("getattr", "setattr", "delattr")
            and not (len(n.args) >= 2 and isinstance(n.args[1], ast.Constant))
            for n in ast.walk(self.tree)
        )

    def _module_reached(self) -> bool:
        """The file may reach its own module's namespace (a function of it called unnamed):
        ``globals()``, ``vars()``, ``sys.modules``, ``import_module``, ``__globals__``,
        ``__main__``... (``_DYNAMIC``), or it imports itself (``own_name``)."""
        names = {n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name)}
        if names & _DYNAMIC_CALLS or self.code_identifiers & _DYNAMIC:
            return True  # (a string `"__main__"` reaches nothing: `if __name__ == "__main__"`)
        if {"sys", "modules"} <= self.code_identifiers:
            return True  # `sys.modules[__name__]`, also imported in a function
        return any(self._imports_itself(node) for node in ast.walk(self.tree))

    def _imports_itself(self, node: ast.AST) -> bool:
        """``node`` imports a module named as this file (``import train`` in train.py)."""
        if not self.own_name or not isinstance(node, (ast.Import, ast.ImportFrom)):
            return False
        names = [a.name for a in node.names]
        if isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
        return any(n.rpartition(".")[2] == self.own_name for n in names)

    def defines(self, name: str) -> bool:
        """The file, or another file of the repository, binds ``name`` where a class or
        module may get it (``binds_anywhere``: ``def clone``, ``clone = copy.copy`` in a class
        body, ``X.clone = f``, ``setattr(X, "clone", f)``)."""
        return binds_anywhere(self.tree, name) or self.defined_elsewhere(name)

    # ------------------------------------------------------------------ other models

    def _other_model(self, model: ast.Name, function: ast.AST, node: ast.AST) -> bool:
        """The model ``model`` names in ``function`` is a new one kept to itself: a local
        (``_kept_model``), or the parameter of a module-level function of the file every call
        of which hands it such a model."""
        if self._kept_model(model.id, function, 0):
            return True
        position = self._parameter(function, model.id)
        if position is None or not self._kept_in(function, model.id, 0):
            return False
        calls = self._calls_of(function)  # type: ignore[arg-type]
        if calls is None or not calls:
            return False
        for call, caller in calls:
            handed = _argument(call, *position)
            if not isinstance(handed, ast.Name) or not self._kept_model(handed.id, caller, 0):
                return False
        return True

    def _kept_model(self, name: str, function: ast.AST, depth: int) -> bool:
        """``name`` is a local of ``function``, bound once, to a ``new_models`` call
        (``self_methods`` after it allowed), and every read of it keeps its parameters
        (``_kept_read``)."""
        if not isinstance(function, _FUNCTIONS) or not self._copies_plainly():
            return False
        values = self._bindings(name, function)
        if values is None or len(values) != 1 or not isinstance(values[0], ast.expr):
            return False
        value = values[0]
        while _method_call(value, self.facts.self_methods):
            value = value.func.value  # type: ignore[attr-defined]
        if (
            not isinstance(value, ast.Call)
            or self._qualified(value.func) not in self.facts.new_models
        ):
            return False
        if len(value.args) != 1 or value.keywords or isinstance(value.args[0], ast.Starred):
            return False  # `deepcopy(model, memo)`: the memo's objects are kept
        return self._kept_in(function, name, depth)

    def _kept_in(self, function: ast.AST, name: str, depth: int) -> bool:
        """Every read of ``name`` in ``function``'s own code keeps the model's parameters."""
        return all(
            self._kept_read(node, depth)
            for node in _own_nodes(function)
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)
        )

    def _kept_read(self, read: ast.expr, depth: int) -> bool:
        """A read of a model that hands none of its parameters on: called, a self-returning
        method dropped, a ``detached_methods`` call (``state_dict()`` without arguments,
        ``load_state_dict`` without a replacing argument, dropped), frozen, its parameters
        iterated (``_kept_parameters``), or handed to a function of the file keeping it."""
        parent = self.parents.get(id(read))
        if isinstance(parent, ast.Call) and parent.func is read:
            return True
        if isinstance(parent, ast.Call):
            return self._handed(parent, read, depth)
        if not isinstance(parent, ast.Attribute):
            return False
        call = self.parents.get(id(parent))
        if not (isinstance(call, ast.Call) and call.func is parent):
            return False
        method = parent.attr
        dropped = isinstance(self.parents.get(id(call)), ast.Expr)
        if method in self.facts.self_methods:
            return self._kept_read(call, depth) if not dropped else True
        if method in self.facts.freeze_methods:
            return dropped
        if method in self.facts.detached_methods:
            return self._detached(call, method, dropped)
        if method in self.facts.module_methods and not call.args and not call.keywords:
            return self._kept_parameters(call, method)
        return False

    def _detached(self, call: ast.Call, method: str, dropped: bool) -> bool:
        """``m.state_dict()`` with no argument (detached tensors, anywhere), or a dropped
        call of a method with a replacing argument (``load_state_dict(sd)``, copying into
        the parameters) without it and with at most its two positional arguments."""
        if not call.args and not call.keywords:
            return True
        replaced = {a for m, a in self.facts.replacing if m == method}
        keywords = {k.arg for k in call.keywords}
        if not replaced or replaced & keywords or None in keywords:
            return False
        return (
            dropped
            and len(call.args) <= 2
            and not any(isinstance(a, ast.Starred) for a in call.args)
        )

    def _handed(self, call: ast.Call, read: ast.expr, depth: int) -> bool:
        """``read`` is an argument of a call of a module-level function of the file whose
        parameter keeps it (``_kept_in``)."""
        function = self._function_called(call.func)
        if function is None or depth >= _MAX_DEPTH:
            return False
        if any(isinstance(a, ast.Starred) for a in call.args) or any(
            k.arg is None for k in call.keywords
        ):
            return False
        names = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        name = next((names[i] for i, a in enumerate(call.args) if a is read), None)
        name = name or next((k.arg for k in call.keywords if k.value is read), None)
        if name is None or name not in names or not self._only_parameter(name, function):
            return False
        return self._kept_in(function, name, depth + 1)

    def _kept_parameters(self, call: ast.Call, method: str) -> bool:
        """``m.parameters()`` (``named_parameters()``) iterated by a ``for`` (alone or in
        ``zip``) whose variable only freezes or changes in place its parameter, or the
        argument of a ``dict_builders`` dict bound once and read only by item so."""
        parent = self.parents.get(id(call))
        loop, position = parent, None
        if isinstance(parent, ast.Call) and self._qualified(parent.func) == "builtins.zip":
            if call not in parent.args or parent.keywords:
                return False
            loop, position = self.parents.get(id(parent)), parent.args.index(call)
            if not (isinstance(loop, ast.For) and loop.iter is parent):
                return False
        if isinstance(loop, ast.For) and loop.iter in (call, parent):
            return self._kept_loop(loop, method, position)
        if (
            isinstance(parent, ast.Call)
            and self._qualified(parent.func) in self.facts.dict_builders
        ):
            return parent.args == [call] and not parent.keywords and self._kept_dict(parent)
        return False

    def _kept_loop(self, loop: ast.For, method: str, position: int | None) -> bool:
        target = loop.target
        if position is not None:
            elements = target.elts if isinstance(target, ast.Tuple) else []
            target = elements[position] if position < len(elements) else None  # type: ignore[assignment]
        if method == "named_parameters":
            pair = target.elts if isinstance(target, ast.Tuple) else []
            target = pair[1] if len(pair) == 2 else None  # type: ignore[assignment]
        function = self._scope(loop)
        if loop.orelse or not isinstance(target, ast.Name) or function is None:
            return False
        if not self._loop_only(loop, target.id, function):
            return False
        inside = (n for n in ast.walk(loop) if n is not loop.target and n is not loop.iter)
        reads = [n for n in inside if isinstance(n, ast.Name) and n.id == target.id]
        return all(self._kept_tensor(r) for r in reads if isinstance(r.ctx, ast.Load))

    def _kept_dict(self, built: ast.Call) -> bool:
        """``d = OrderedDict(m.named_parameters())``: ``d`` a local bound once there, every
        read ``d[k]`` a kept tensor (``_kept_tensor``)."""
        assign = self.parents.get(id(built))
        function = self._scope(built)
        if not (
            isinstance(assign, ast.Assign)
            and len(assign.targets) == 1
            and isinstance(assign.targets[0], ast.Name)
            and function is not None
        ):
            return False
        name = assign.targets[0].id
        bound = self._bindings(name, function)
        if bound is None or len(bound) != 1 or bound[0] is not built:
            return False
        for node in _own_nodes(function):
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load):
                item = self.parents.get(id(node))
                if not (isinstance(item, ast.Subscript) and item.value is node):
                    return False
                if not self._kept_tensor(item):
                    return False
        return True

    def _kept_tensor(self, tensor: ast.expr) -> bool:
        """A parameter read only to freeze it (``p.requires_grad = v``, ``p.requires_grad_(
        v)`` dropped) or change it in place (``p.mul_(d).add_(q)``, through ``p.data``),
        the value dropped."""
        node = tensor
        while True:
            parent = self.parents.get(id(node))
            if not (isinstance(parent, ast.Attribute) and parent.value is node):
                return False
            if parent.attr in self.facts.freeze_attributes and isinstance(parent.ctx, ast.Store):
                return True
            if parent.attr == "data" and "data" in self.facts.tensor_attributes:
                node = parent
                continue
            call = self.parents.get(id(parent))
            methods = self.facts.kept_tensor_methods | self.facts.freeze_methods
            if not (isinstance(call, ast.Call) and call.func is parent and parent.attr in methods):
                return False
            if isinstance(self.parents.get(id(call)), ast.Expr):
                return True
            node = call

    # ------------------------------------------------------------------ names and scopes

    def _only_parameter(self, name: str, function: ast.AST) -> bool:
        """``name`` is a parameter of ``function`` bound nowhere else in it."""
        values = self._bindings(name, function)
        return values is not None and len(values) == 1 and isinstance(values[0], ast.arg)

    def _bindings(self, name: str, function: ast.AST) -> list[ast.AST] | None:
        """The values ``name``, a local of ``function``, is bound to in its own code (the
        ``ast.arg`` of a parameter, the ``AugAssign`` of an augmented assignment, which
        keeps the object for a tensor); None when it is bound otherwise (unpacked, a loop,
        ``with``...), declared ``global`` or ``nonlocal``, or named in a nested scope."""
        if any(
            isinstance(n, ast.Name) and n.id == name
            for scope in _inner_scopes(function)
            for n in ast.walk(scope)
        ):
            return None
        found: list[ast.AST] = []
        if isinstance(function, _FUNCTIONS):
            arguments = function.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            found += [a for a in every if a.arg == name]
        for node in _own_nodes(function):
            if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
                return None
            if _binds_unnamed(node, name):
                return None  # an import, `except ... as`, a nested def or class, a match
            if not (isinstance(node, ast.Name) and node.id == name) or isinstance(
                node.ctx, ast.Load
            ):
                continue
            parent = self.parents.get(id(node))
            assigned = isinstance(parent, ast.Assign) and parent.targets == [node]
            if assigned or (isinstance(parent, ast.AnnAssign) and parent.value is not None):
                found.append(parent.value)  # type: ignore[union-attr, arg-type]
            elif isinstance(parent, ast.AugAssign):
                found.append(parent)
            else:
                return None
        return found

    def _loop_only(self, loop: ast.For, name: str, function: ast.AST) -> bool:
        """``name`` is bound only by ``loop``'s target in ``function`` and named nowhere
        outside ``loop``."""
        inside = {id(n) for n in ast.walk(loop)}
        target = {id(n) for n in ast.walk(loop.target)}
        for node in ast.walk(function):
            if isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
                return False
            if _binds_unnamed(node, name) and node is not function:
                return False
            if not (isinstance(node, ast.Name) and node.id == name):
                continue
            if id(node) not in inside:
                return False
            if not isinstance(node.ctx, ast.Load) and id(node) not in target:
                return False
        return True

    def _scope(self, node: ast.AST) -> ast.AST | None:
        """The function, lambda, class or comprehension whose code evaluates ``node`` (a
        decorator or default of a nested def runs in the enclosing one: probe s41 F1)."""
        path, parent = {id(node)}, self.parents.get(id(node))
        while parent is not None:
            if isinstance(parent, _SCOPES) and not any(
                id(n) in path for n in ast_nodes.evaluated_outside(parent)
            ):
                return parent
            path.add(id(parent))
            parent = self.parents.get(id(parent))
        return None

    def _parameter(self, function: ast.AST, name: str) -> tuple[int, str] | None:
        """``(index, name)`` of the positional parameter ``name`` of a module-level function
        never binding it again; None otherwise."""
        if not isinstance(function, ast.FunctionDef) or function not in self.tree.body:
            return None
        names = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        if name not in names or not self._only_parameter(name, function):
            return None
        return names.index(name), name

    def _calls_of(self, function: ast.FunctionDef) -> list[tuple[ast.Call, ast.AST]] | None:
        """Each call of the module-level ``function`` in the file with the function holding
        it; None when its name is read otherwise, it may be called unnamed (decorated, or
        another file calls it) or the name is bound again."""
        name = function.name
        if self.functions.get(name) is not function or self.called_elsewhere(name):
            return None
        if self._module_reached():
            return None  # `globals()["requires_grad"](m, False)`, `sys.modules[__name__]...`
        if not self._transparent(function):
            return None
        calls: list[tuple[ast.Call, ast.AST]] = []
        for node in ast.walk(self.tree):
            if not (isinstance(node, ast.Name) and node.id == name):
                continue
            call = self.parents.get(id(node))
            caller = self._scope(node)
            if not (isinstance(node.ctx, ast.Load) and isinstance(call, ast.Call)):
                return None
            if call.func is not node or caller is None:
                return None
            calls.append((call, caller))
        return calls

    def _transparent(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """Undecorated, or decorated only by ``transparent_decorators`` (``@torch.no_grad()``)."""
        for decorator in function.decorator_list:
            called = decorator.func if isinstance(decorator, ast.Call) else decorator
            if self._qualified(called) not in self.facts.transparent_decorators:
                return False
        return True

    def _function_called(self, func: ast.expr) -> ast.FunctionDef | None:
        """The module-level function of the file ``func`` (a plain name) calls, when the
        name is bound only by it and it is a plain function (``_transparent``)."""
        if not isinstance(func, ast.Name):
            return None
        function = self.functions.get(func.id)
        if function is None or not isinstance(function, ast.FunctionDef):
            return None
        if self.called_elsewhere(func.id) or self._module_reached():
            return None  # another file or `globals()` may rebind it (probe s41 F4)
        scope = self._scope(func)
        if scope is not None and self._bindings(func.id, scope) != []:
            return None  # a local of that name (or named in a nested scope)
        return function if self._transparent(function) else None

    def _qualified(self, func: ast.expr) -> str | None:
        """The dotted name ``func`` spells through the file's imports (a builtin when its
        head is bound nowhere in the module)."""
        parts: list[str] = []
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if not isinstance(func, ast.Name):
            return None
        head = self.imports.get(func.id)
        if head is None:
            if func.id in _module_bound(self.tree):
                return None
            head = f"builtins.{func.id}"
        return ".".join([head, *reversed(parts)])


def nodes_by_place(tree: ast.Module) -> dict[tuple[int, int, str], ast.AST]:
    """The assignments and calls of ``tree`` by ``(line, column, kind)`` (libcst's start
    position; two nodes at one place, ``f(a)(b)``: neither)."""
    found: dict[tuple[int, int, str], ast.AST] = {}
    clashes: set[tuple[int, int, str]] = set()
    for node in ast_nodes.walk(tree):  # ast.walk's nodes (but contexts), the module's kept walk
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.Call)):
            key = (node.lineno, node.col_offset, type(node).__name__)
            if key in found:
                clashes.add(key)
            found[key] = node
    return {k: v for k, v in found.items() if k not in clashes}


def binds_anywhere(tree: ast.Module, name: str) -> bool:
    """``tree`` binds ``name`` where a class or module may get it: a ``def`` or ``class``,
    an assignment or import at module level or in a class body, an attribute store
    (``X.clone = f``) or a string naming it (``setattr(X, "clone", f)``, a ``type(...)``
    dict); a function's local of that name is none."""
    for node in ast.walk(tree):
        if isinstance(node, (*_FUNCTIONS, ast.ClassDef)) and node.name == name:
            return True
        stored = isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load)
        if (stored and node.attr == name) or (  # type: ignore[union-attr]
            isinstance(node, ast.Constant) and node.value == name
        ):
            return True
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef))]
    return any(
        _binds_unnamed(node, name)
        or (isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load))
        for scope in scopes
        for node in _own_nodes(scope)
    )


def _identifiers(tree: ast.Module, strings: bool = True) -> frozenset[str]:
    """Every name, ``def``/``class`` name, attribute, import (each dotted part) and, with
    ``strings``, identifier-like word of a string of ``tree``."""
    found: set[str] = set()
    for node in ast_nodes.walk(tree):  # ast.walk's nodes (but contexts), the module's kept walk
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.alias):
            found.update(node.name.split("."))
            found.update([node.asname] if node.asname else [])
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update(node.module.split("."))
        elif strings and isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", node.value))
    return frozenset(found)


def _binds_unnamed(node: ast.AST, name: str) -> bool:
    """``node`` binds ``name`` other than through a name node: an import, ``except ... as``,
    a ``def`` or ``class``, a ``match`` capture."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return any((a.asname or a.name.partition(".")[0]) == name for a in node.names)
    if isinstance(node, (ast.ExceptHandler, *_FUNCTIONS, ast.ClassDef)):
        return node.name == name
    if isinstance(node, (ast.MatchAs, ast.MatchStar)):
        return node.name == name
    return isinstance(node, ast.MatchMapping) and node.rest == name


def _method_call(node: ast.AST, methods: frozenset[str], receiver: type = ast.AST) -> bool:
    """``x.<method>(...)`` for one of ``methods``, ``x`` of type ``receiver``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in methods
        and isinstance(node.func.value, receiver)
    )


def _argument(call: ast.Call, index: int, name: str) -> ast.expr | None:
    """The argument ``call`` gives the parameter at ``index`` named ``name`` (None: none
    written, or unpacked)."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
        return None
    if index < len(call.args):
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == name), None)


def _imports(tree: ast.Module) -> dict[str, str]:
    """Local name -> qualified name of the module-level imports bound once."""
    found: dict[str, str] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                local = alias.asname or alias.name.partition(".")[0]
                found[local] = alias.name if alias.asname else local
        elif isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
            for alias in statement.names:
                found[alias.asname or alias.name] = f"{statement.module}.{alias.name}"
    counts: dict[str, int] = {}
    for node in ast_nodes.walk(tree):  # ast.walk's nodes (but contexts), the module's kept walk
        for name in _bound_names(node):
            counts[name] = counts.get(name, 0) + 1
    return {k: v for k, v in found.items() if counts.get(k, 0) == 1}


def _bound_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        return [node.id]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name.partition(".")[0]) for a in node.names]
    if isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    return []


def _module_bound(tree: ast.Module) -> set[str]:
    return {name for node in ast.walk(tree) for name in _bound_names(node)}


def _module_functions(tree: ast.Module) -> dict[str, ast.AST]:
    """Each name bound exactly once in the module, by a module-level ``def``."""
    counts: dict[str, int] = {}
    for node in ast_nodes.walk(tree):  # ast.walk's nodes (but contexts), the module's kept walk
        for name in _bound_names(node):
            counts[name] = counts.get(name, 0) + 1
    return {s.name: s for s in tree.body if isinstance(s, _FUNCTIONS) and counts.get(s.name) == 1}


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``scope``'s body outside nested scopes (functions, classes, lambdas,
    comprehensions)."""
    return ast_nodes.own_nodes(scope, _SCOPES)


def _inner_scopes(scope: ast.AST) -> Iterator[ast.AST]:
    return (n for n in _own_nodes(scope) if isinstance(n, _SCOPES))
