"""NNX training steps whose loss reaches another model (GAN steps, issue 13).

``g_loss = criterion(discriminator(generator(z)), valid)`` trains the generator; torch also
fills the discriminator's ``.grad``. When torch provably discards those gradients
(``analysis/other_models.discarded``: the discriminator's optimizer zeroes them on every path
before anything uses them), the step is exactly

    def loss_fn(generator, discriminator):
        ...
    g_loss, grads = nnx.value_and_grad(loss_fn)(generator, discriminator)

``nnx.value_and_grad`` differentiates the first argument only; the discriminator is passed as
a second argument rather than captured, because flax 0.12.8 refuses to update a captured
module's state inside the transform (``TraceContextError: Cannot mutate BatchStat from a
different trace level``), while an argument's BatchNorm statistics and Dropout rng counts are
updated as torch updates them during the generator's forward pass (checked).

The zeroes may be a function of the file that only zeroes gradients (yunjey's GAN tutorial:
``def reset_grad(): d_optimizer.zero_grad(); g_optimizer.zero_grad()``): each line
``reset_grad()`` zeroes them where it stands (``HookContext.zero_call``); the training step
drops such a line from its region when every optimizer it zeroes is translated here.

A value an other model computed outside the loss (``gen_imgs = generator(z)``, read as
``gen_imgs.detach()`` in the discriminator's loss) is an array computed outside the loss
function: ``nnx.value_and_grad`` never differentiates it, so ``.detach()`` is dropped (no
``jax.lax.stop_gradient`` needed: the array does not depend on the loss function's argument).
Read without ``.detach()``, torch's backward reaches that model: the same proof is needed.
A model that is another model's optimizer's must be a plain name, the optimizer's one
``X.parameters()`` (param groups, a part of the model: not proven, escaped).
Not done (issue 13, s16): a GAN loop in a function (its end is a path out: escaped), models
or optimizers in ``self.x`` (trainer classes), dcgan's D step (``netD.zero_grad()``, two
backward passes with ``.item()`` and ``label.fill_`` between them). A model no optimizer
trains (a perceptual loss's frozen feature extractor, fast_neural_style's ``vgg``) is passed
the same way when no code reads its gradients (``frozen``: ``analysis/unobserved_models.py``).
Models sharing a submodule are not checked (the
proof reads names); flax 0.12.8 then refuses the call at run time (``ValueError: Inconsistent
aliasing detected``, checked), never silent numbers. ``parameters``/``named_parameters``/
``detach`` are names in code, not yet map facts.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.other_models import GradientOwner, TorchFacts, discarded
from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.analysis.statements import (
    DETACH,
    STEP,
    assigned_names,
    is_detached,
    lone_method_call,
)
from ml_switcheroo.analysis.unobserved_models import (
    confined_model,
    constructor_func,
    constructor_root,
    model_facts,
    unobserved_model,
)
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.model import trained_model

Trains = Callable[[cst.BaseExpression, cst.BaseExpression], bool]
_Node = TypeVar("_Node", bound=cst.CSTNode)
# torch.nn.Module methods handing out the parameters (whose .grad a caller may then read)
PARAMETER_METHODS = frozenset({"parameters", "named_parameters"})


@dataclass
class _Optimizer:
    """A translated optimizer constructor of the file, the name it is bound to, its model."""

    constructor: cst.Call
    name: str | None
    model: cst.BaseExpression | None


@dataclass
class OtherModels:
    """The models a step's loss reaches besides the one it trains (``called``: passed to the
    loss function after it, in order; ``detached``: other models' outputs read through
    ``.detach()``, which the loss function reads as they are; ``frozen``: the called models no
    optimizer trains)."""

    region: Region
    ctx: HookContext
    trains: Trains
    trained: cst.BaseExpression
    called: list[str] = field(default_factory=list)
    detached: set[str] = field(default_factory=set)
    frozen: set[str] = field(default_factory=set)
    _optimizers: list[_Optimizer] | None = None

    def accepts(self, callee: cst.BaseExpression, value: cst.BaseExpression | None) -> bool:
        """Whether the loss may call ``callee`` (not the trained model): another optimizer's
        model whose gradients torch discards, an object built from constants here whose
        gradients no code reads (``frozen``: a feature extractor, or a loss module of the
        user's, either ported with the model), or an array such a model computed. Raises
        with the reason when it is another optimizer's model and the gradients are not
        discarded."""
        model = self._model_of(callee)
        if model is not None:
            self._check_discarded(model, callee)
            if callee.value not in self.called:  # type: ignore[attr-defined]
                self.called.append(callee.value)  # type: ignore[attr-defined]
            return True
        if isinstance(callee, cst.Name) and self.unobserved(callee) is None:
            self.frozen.add(callee.value)
            if callee.value not in self.called:
                self.called.append(callee.value)
            return True
        return isinstance(callee, cst.Name) and self._output_of(value) is not None

    def ported_model(self, callee: cst.BaseExpression) -> bool:
        """``callee`` is a model ported to NNX besides the trained one: another translated
        optimizer's, or one of ``frozen`` (its outputs are JAX arrays)."""
        return self.other_model(callee) or (
            isinstance(callee, cst.Name) and callee.value in self.frozen
        )

    def other_model(self, callee: cst.BaseExpression) -> bool:
        """``callee`` is the model of another translated optimizer of the file."""
        return self._model_of(callee) is not None

    def check_outputs(self, forward: list[cst.BaseStatement], bound: set[str]) -> None:
        """Every array another model computed outside the loss: read only as ``x.detach()``
        (a constant of the loss function), else that model's gradients must be discarded."""
        for name, reads in _free_reads(forward, bound).items():
            value = _one_value(reads[0], self.ctx)
            model = self._output_of(value)
            if model is None:
                continue
            if all(is_detached(read, self.ctx) for read in reads):
                self.detached.add(name)
            else:
                self._check_discarded(model, model)

    def computed_inside(self, forward: list[cst.BaseStatement], bound: set[str]) -> None:
        """An array another model computes in the loss function from values of outside it
        (DCGAN: ``fake = netG(noise)`` before ``netD(fake.detach())``): that model is an
        argument ``nnx.value_and_grad`` does not differentiate, so the array depends on no
        differentiated parameter and ``fake.detach()`` reads as ``fake`` (``detached``). Only
        for a name the loss binds once, by that one call."""
        targets = [t for s in forward for t in assigned_names(s)]
        for statement in forward:
            small = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
            if not isinstance(small, cst.Assign) or len(statement.body) != 1:  # type: ignore[union-attr]
                continue
            target, value = small.targets[0].target, small.value
            if (
                len(small.targets) == 1
                and isinstance(target, cst.Name)
                and [t.value for t in targets].count(target.value) == 1
                and isinstance(value, cst.Call)
                and isinstance(value.func, cst.Name)
                and value.func.value in self.called
                and not _free_names(value.args) & bound
            ):
                self.detached.add(target.value)

    def optimizer_discards(self, constructor: cst.Call, name: str) -> str | None:
        """None when the gradients this step's backward leaves in the model of ``name``
        (another optimizer, built by ``constructor``) are discarded before it steps; else why
        not."""
        try:
            model = trained_model(constructor, self.ctx)
        except Untranslatable as exc:
            return exc.reason
        dotted = dotted_name(model)
        if dotted is None or not name.isidentifier():
            return f"`{name}` or its model `{code_of(model).strip()}` is not a plain name"
        if not self._one_optimizer_named(name):
            return f"`{name}` names several optimizers of this file"
        return self._discarded(GradientOwner(dotted, name))

    def other_optimizers_discard(self, constructor: cst.Call) -> str | None:
        """For a loss differentiated through a model holding the optimizer's submodule (s40):
        None when every other optimizer constructor of the file is one of the step's scope,
        bound to a plain name, whose model's gradients this backward leaves are discarded
        before it steps (``optimizer_discards``); else why not (the loss fills every .grad of
        the model, so another optimizer over a part of it might step on them)."""
        scope = _function_of(self.region.anchor.call, self.ctx)
        for node in cst_walk.walk(self.ctx.root_of(self.region.anchor.call)):
            if node is constructor or not (
                isinstance(node, cst.Call) and _is_constructor(node, self.ctx)
            ):
                continue
            shown = " ".join(code_of(node).split())[:60]
            target = self.ctx.assigned_to(node)
            if _function_of(node, self.ctx) is not scope or not isinstance(target, cst.Name):
                return f"`{shown}` is another optimizer of the file, not one of this scope"
            why = self.optimizer_discards(node, target.value)
            if why is not None:
                return f"`{shown}`: {why}"
        return None

    def backward_discarded(self, backward: cst.BaseStatement, optimizer: str) -> str | None:
        """None when the gradients another backward pass leaves in the trained model are
        discarded before ``optimizer`` steps; else why not."""
        if not isinstance(self.trained, cst.Name) or not self._one_optimizer_named(optimizer):
            return f"`{optimizer}` is not one optimizer built under a plain name in this scope"
        stepped, summed = self._stepped_after(backward), frozenset[int]()
        if stepped is None:
            stepped, summed = self._region_step(backward)
        if stepped is None or stepped == optimizer:
            return "it is not the backward pass of another optimizer's step"
        owner = GradientOwner(self.trained.value, optimizer)
        return discarded(backward, owner, _facts(self.ctx), self.ctx.parent_of, summed)

    def without_detach(self, statement: cst.BaseStatement) -> cst.BaseStatement:
        """``statement`` with ``x.detach()`` read as ``x`` for the detached outputs."""
        if not self.detached:
            return statement
        return read_undetached(statement, self.detached)

    def _check_discarded(self, model: cst.BaseExpression, shown: cst.BaseExpression) -> None:
        text = code_of(shown).strip()
        owners = [
            o for o in self._optimizers_of() if o.model is not None and self.trains(model, o.model)
        ]
        if (
            len(owners) != 1
            or owners[0].name is None
            or not isinstance(model, cst.Name)
            or not self._one_optimizer_named(owners[0].name)
        ):
            raise Untranslatable(
                f"the loss reaches `{text}` too, which is not the model of one optimizer of this "
                "file built over all of its parameters (`model.parameters()`, bound to a name): "
                "several models in one loss"
            )
        reason = self._discarded(GradientOwner(model.value, owners[0].name))
        if reason is not None:
            raise Untranslatable(
                f"the loss reaches `{text}` too, and torch keeps the gradients this backward "
                f"pass leaves in it ({reason}): several models trained by one loss"
            )

    def _stepped_after(self, backward: cst.BaseStatement) -> str | None:
        """The optimizer of the scope whose ``name.step()`` is the first step after
        ``backward`` in its block, with no other backward pass between (the backward pass
        is that step's: translated or escaped with it)."""
        block = self.ctx.parent_of(backward)
        statements = list(getattr(block, "body", ()))
        index = next((i for i, s in enumerate(statements) if s is backward), None)
        if index is None:
            return None
        names = {o.name for o in self._optimizers_of() if o.name is not None}
        for statement in statements[index + 1 :]:
            call = lone_method_call(statement)
            if call is None:
                continue
            method, receiver = call
            if method in self.ctx.semantic_map.backward_methods:
                return None
            if method == STEP:
                return receiver if receiver in names else None
        return None

    def _region_step(self, backward: cst.BaseStatement) -> tuple[str | None, frozenset[int]]:
        """The optimizer of the scope the training-step region holding ``backward`` steps
        (DCGAN's discriminator step: two backward passes, then its step), and the ids of the
        region's other lines ``loss.backward()`` (their gradients are summed with these)."""
        region = self.ctx.region_at(backward)
        receiver = region.anchor.receiver if region is not None else None
        names = {o.name for o in self._optimizers_of() if o.name is not None}
        if region is None or not isinstance(receiver, cst.Name) or receiver.value not in names:
            return None, frozenset()
        methods = self.ctx.semantic_map.backward_methods
        calls = [(s, lone_method_call(s)) for s in region.statements if s is not backward]
        summed = frozenset(id(s) for s, call in calls if call is not None and call[0] in methods)
        return receiver.value, summed

    def _one_optimizer_named(self, name: str) -> bool:
        """``name`` is bound by one optimizer constructor of the file (its zero_grad() and
        uses, found by name, are that optimizer's)."""
        return [o.name for o in self._optimizers_of()].count(name) == 1

    def _discarded(self, owner: GradientOwner) -> str | None:
        backward = self.region.backward
        assert backward is not None
        return discarded(backward.statement, owner, _facts(self.ctx), self.ctx.parent_of)

    def unobserved(self, callee: cst.Name) -> str | None:
        """Why ``callee`` may be a model whose parameters code reaches, or the trained model
        may be reached by its code (``analysis/unobserved_models.py``); None when neither."""
        trained = self.trained
        variable = self.ctx.variable(callee)
        own = self.ctx.variable(trained) if isinstance(trained, cst.Name) else None
        if variable is None or own is None or len(variable.values) != 1:
            return f"`{callee.value}` or the trained model is not one variable of this file"
        facts = model_facts(self.ctx.semantic_map)
        parent_of = self.ctx.parent_of
        return (
            unobserved_model(callee, variable, facts, parent_of)
            or confined_model(
                trained,  # type: ignore[arg-type]
                own,
                variable,
                callee.value,
                facts.self_methods,
                parent_of,
            )
            or self._code_of_the_file(variable.values[0], facts.self_methods)  # type: ignore[arg-type]
            or self._python_callable(variable.values[0], facts.self_methods)  # type: ignore[arg-type]
            or self._not_a_library_model(variable.values[0], facts.self_methods)  # type: ignore[arg-type]
        )

    def _not_a_library_model(
        self, value: cst.BaseExpression, self_methods: frozenset[str]
    ) -> str | None:
        """Why the object ``value`` builds may not be a model the user ports to NNX: its
        constructor is no function of the map's ``model_libraries`` (``torchvision.models``,
        ``timm``). A class or factory of another file of the repository may hold no layer (a
        loss of the user's with tensor methods only runs unported on JAX arrays: ``.std()``
        0.040 relative off torch, probe s39probe2) or close over the trained model through a
        cache of its module (its gradient lost: 0.094); neither is read here, so it escapes."""
        func = constructor_func(value, self_methods)
        qualified = self.ctx.qualify(func) if func is not None else []
        libraries = self.ctx.semantic_map.parameters.model_libraries
        if libraries and qualified and all(q.startswith(libraries) for q in qualified):
            return None
        shown = qualified[0] if qualified else code_of(func if func is not None else value)
        known = ", ".join(library.rstrip(".") for library in libraries) or "none"
        return (
            f"`{shown}` is not a model of a library the map knows ({known}): its code is "
            "not read here, and called in the loss function it may run tensor methods on JAX "
            "arrays with other numbers (a loss of your own) or call the trained model outside "
            "the loss function's argument; port it to NNX and pass it as the loss function's "
            "second argument by hand"
        )

    def _code_of_the_file(
        self, value: cst.BaseExpression, self_methods: frozenset[str]
    ) -> str | None:
        """Why the object ``value`` builds may run code of this file when called: the name
        its constructor calls (``T`` of ``T(...)``, ``mod`` of ``mod.T(...)``) is bound here
        (a ``class`` or ``def`` left as written, any binding: not an import; ``zoo`` of
        ``zoo.critic(1)`` may hold the trained model, which a closure would call outside the
        loss function's argument, its gradient lost). The loss function would run its torch
        tensor methods on JAX arrays, some with other numbers (``x.std()``: the map's
        ``array_namesakes``), where a model of another file or library is the user's to port
        (unported, its torch layers raise on JAX arrays). Not proven: a class of another file
        whose call runs tensor methods only (a loss of the user's, no layer) runs unported
        with those numbers (probe s39probe2: ``.std()``, 0.040 relative off torch)."""
        root = constructor_root(value, self_methods)
        if root is None or self.ctx.variable(root) is None:
            return None
        return (
            f"`{root.value}` is bound in this file (a class, a factory or an object of it, "
            "left as written): called in the loss function, its code would run as written on "
            "JAX arrays, where tensor methods may compute other numbers, and may call the "
            "trained model outside the loss function's argument (port it to NNX)"
        )

    def _python_callable(
        self, value: cst.BaseExpression, self_methods: frozenset[str]
    ) -> str | None:
        """Why the object ``value`` builds is Python's own, no model: its constructor a
        builtin (``eval(...)``) or of the standard library (``operator.methodcaller("std")``).
        Its call runs tensor methods on JAX arrays as written, where no port is asked of the
        user (``_code_of_the_file``)."""
        root = constructor_root(value, self_methods)
        if root is None:
            return None
        func = constructor_func(value, self_methods)
        qualified = self.ctx.qualify(func) if func is not None else []
        if qualified:
            python = qualified[0].split(".")[0] in sys.stdlib_module_names
        else:
            python = hasattr(builtins, root.value) and not self.ctx.binds(root, root.value)
        if not python:
            return None
        shown = qualified[0] if qualified else root.value
        return (
            f"`{shown}` is Python's, no model: its call would run as written on JAX arrays, "
            "where tensor methods may compute other numbers"
        )

    def _model_of(self, callee: cst.BaseExpression) -> cst.BaseExpression | None:
        """``callee`` when it is the model of another translated optimizer of the file."""
        if not isinstance(callee, cst.Name):
            return None
        for optimizer in self._optimizers_of():
            model = optimizer.model
            other = model is not None and not self.trains(model, self.trained)
            if other and self.trains(callee, model):  # type: ignore[arg-type]
                return callee
        return None

    def _output_of(self, value: cst.BaseExpression | None) -> cst.Name | None:
        """The model ``M`` of ``value = M(...)``, another optimizer's model."""
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
            model = self._model_of(value.func)
            return model if isinstance(model, cst.Name) else None
        return None

    def _optimizers_of(self) -> list[_Optimizer]:
        """The translated optimizer constructors of the step's scope (its function, else the
        module: names there mean what they mean at the step), each with its model (None when
        its parameters are not one model's)."""
        if self._optimizers is None:
            scope = _function_of(self.region.anchor.call, self.ctx)
            root = self.ctx.root_of(self.region.anchor.call)
            found = []
            for node in cst_walk.walk(root):
                if (
                    isinstance(node, cst.Call)
                    and _is_constructor(node, self.ctx)
                    and _function_of(node, self.ctx) is scope
                ):
                    target = self.ctx.assigned_to(node)
                    name = target.value if isinstance(target, cst.Name) else None
                    found.append(_Optimizer(node, name, _model_or_none(node, self.ctx)))
            self._optimizers = found
        return self._optimizers


def _facts(ctx: HookContext) -> TorchFacts:
    """The map's torch facts the proof reads (the clip functions by their last name)."""
    zeroes = ctx.semantic_map.module_zero_grad_methods | {"zero_grad"}
    clips = {
        name.rsplit(".", 1)[-1]
        for name, entry in ctx.semantic_map.apis.items()
        if entry.role == roles.CLIP
    }
    return TorchFacts(
        ctx.semantic_map.backward_methods,
        frozenset(zeroes),
        ctx.semantic_map.gradient_attributes,
        frozenset(clips | PARAMETER_METHODS),
        ctx.semantic_map.gradient_free_methods,
        lambda statement: _zeroed_names(statement, ctx),
    )


def _zeroed_names(statement: cst.CSTNode, ctx: HookContext) -> frozenset[str]:
    """The receivers of the zero_grad() calls a line ``reset_grad()`` runs (``zero_call``)."""
    calls = ctx.zero_call(statement) or ()
    return frozenset(c.func.value.value for c in calls)  # type: ignore[attr-defined]


def _model_or_none(constructor: cst.Call, ctx: HookContext) -> cst.BaseExpression | None:
    if not ctx.translates(constructor):
        return None
    try:
        return trained_model(constructor, ctx)
    except Untranslatable:
        return None


def _is_constructor(call: cst.Call, ctx: HookContext) -> bool:
    entries = (ctx.semantic_map.apis.get(q) for q in ctx.qualify(call.func))
    return any(e is not None and e.role == roles.CONSTRUCTOR for e in entries)


def _free_reads(forward: list[cst.BaseStatement], bound: set[str]) -> dict[str, list[cst.Name]]:
    """The reads of each name the statements read but do not bind."""
    reads: dict[str, list[cst.Name]] = {}
    for statement in forward:
        attributes = {id(n.attr) for n in cst_walk.walk(statement) if isinstance(n, cst.Attribute)}
        for node in cst_walk.walk(statement):
            free = isinstance(node, cst.Name) and node.value not in bound
            if free and id(node) not in attributes:
                reads.setdefault(node.value, []).append(node)
    return reads


def _free_names(args: Sequence[cst.Arg]) -> set[str]:
    """The variables the arguments read (not the ``attr`` of ``x.attr``)."""
    nodes = [n for a in args for n in cst_walk.walk(a.value)]
    attributes = {id(n.attr) for n in nodes if isinstance(n, cst.Attribute)}
    return {n.value for n in nodes if isinstance(n, cst.Name) and id(n) not in attributes}


def _one_value(node: cst.BaseExpression, ctx: HookContext) -> cst.BaseExpression | None:
    values = ctx.origins(node)
    distinct = list({id(v): v for v in values}.values()) if values is not None else []
    return distinct[0] if len(distinct) == 1 else None


def _function_of(node: cst.CSTNode, ctx: HookContext) -> cst.CSTNode | None:
    """The innermost function holding ``node`` (None: the module)."""
    parent = ctx.parent_of(node)
    while parent is not None and not isinstance(parent, (cst.FunctionDef, cst.Lambda)):
        parent = ctx.parent_of(parent)
    return parent


def read_undetached(node: _Node, names: set[str]) -> _Node:
    """``node`` with ``x.detach()`` read as ``x`` for each ``x`` of ``names`` (arrays that
    ``nnx.value_and_grad`` never differentiates: a JAX array has no ``.detach()``)."""

    def undetached(call: cst.CSTNode) -> bool:
        func = call.func if isinstance(call, cst.Call) else None
        return (
            isinstance(func, cst.Attribute)
            and func.attr.value == DETACH
            and isinstance(func.value, cst.Name)
            and func.value.value in names
            and not call.args  # type: ignore[attr-defined]
        )

    class Undetach(cst.CSTTransformer):
        def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> Any:  # type: ignore[override]
            if undetached(original):
                return updated.func.value  # type: ignore[attr-defined]
            # (the nodes without such a call kept as they are: their metadata, the resolver's
            # qualified names, is found by identity: `torch.log(p)` beside it, s36)
            return original if not any(map(undetached, cst_walk.walk(original))) else updated

    if not any(map(undetached, cst_walk.walk(node))):
        return node
    return node.visit(Undetach())  # type: ignore[return-value]
