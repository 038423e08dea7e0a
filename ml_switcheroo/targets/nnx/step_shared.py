"""The NNX training step's checks on names and memory the step shares with the code around it:
namesakes read after the step, arrays changed in place, aliases of a stored value
(``_check_namesakes_after``, ``_check_no_shared_change``, ``_check_traceable``...).

Split from ``training_step.py`` by ``tools/split_training_step.py``.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Mapping, Sequence, Set
from functools import partial

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.dominating import module_of
from ml_switcheroo.analysis.loss_helpers import module_function, namesake_problem
from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.analysis.statements import DETACH
from ml_switcheroo.analysis.torch_tensors import known_tensors
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.semantic_map import ArrayNamesake
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.namesake_rewrite import (
    after_text,
    any_array_read,
    array_call,
    attribute_receivers,
    exact_text,
    operand_text,
    rendered_by_code,
    rendered_by_id,
)
from ml_switcheroo.targets.nnx.other_models import OtherModels
from ml_switcheroo.targets.nnx.step_loss_fn import _added_undetached
from ml_switcheroo.targets.nnx.step_models import _model_output_calls, _one_criterion
from ml_switcheroo.targets.nnx.step_syntax import (
    _NESTED,
    _bound_names,
    _calls_method,
    _calls_method_named,
    _planned_first,
    _region_ids,
    _scope,
    _target_names,
    _variable_names,
)


def _check_traceable(
    forward: list[cst.BaseStatement],
    ctx: HookContext,
    others: OtherModels | None,
    model: cst.BaseExpression | None = None,
    differentiated: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """The loss function's body runs traced on JAX arrays: no ``.item()``, no method a JAX
    array has under a torch name with other numbers or lacks (the map's ``array_namesakes``,
    ``array_lacks``), but for the ``.detach()`` of other models' outputs the render drops, and
    a namesake the map's ``exact`` template writes on a name the loss function computes
    (returned: the call's code to its JAX text); ``differentiated``: further names the loss
    function differentiates (a pulled-back output, its parameter: ``Variable(fake)`` there
    detaches it in torch)."""
    if not forward:
        raise Untranslatable("the loss does not use the model")
    for method in sorted(ctx.semantic_map.concrete_methods):  # `.item()`, `.tolist()`
        if any(_calls_method(statement, method) for statement in forward):
            raise Untranslatable(
                f"`.{method}()` in the forward pass (a traced value has no "
                + ("number)" if method == "item" else "concrete value: ConcretizationTypeError)")
            )
    body = [others.without_detach(s) for s in forward] if others is not None else forward
    calls = [n for s in body for n in cst_walk.walk(s) if isinstance(n, cst.Call)]
    arrays = {t.value for s in forward for t in _target_names(s)} | differentiated
    outputs = _model_output_calls(calls, model)
    _check_concrete_builtins(calls, arrays, outputs, ctx)
    tensors = _tensors(body, outputs, others, ctx)  # not a NumPy `w` (`w.max(1)`: NumPy's)
    root = dotted_name(model).split(".")[0] if model is not None and dotted_name(model) else None
    computed = arrays | ({root} if root else set())  # (`model.weight` carries a gradient)
    exact, written = _exact_texts(calls, body, tensors, ctx, outputs, computed)
    model_text = code_of(model).strip() if model is not None else None
    called = outputs | {  # (any call of the model: `self.model(x)`, `model.encode(x)`)
        id(c)
        for c in calls
        if model_text is not None
        and (text := dotted_name(c.func)) is not None
        and (text == model_text or text.startswith(model_text + "."))
    }
    if not isinstance(model, cst.Name):  # (s37) `torch.tanh(self.model(x))`: the loss
        # function calls `model(x)`, so the template keyed by the source's code would not
        # be found in the rendered body: not written (the call's checks below decide)
        for call in [c for c in calls if id(c) in written]:
            if any(id(n) in called for n in cst_walk.walk(call)):
                written.discard(id(call))
                exact.pop(code_of(call).strip(), None)
    for call in (c for c in calls if id(c) not in written):
        _check_rejecting_function(call, computed, frozenset(called), ctx)
        problem = namesake_problem(
            call, ctx.semantic_map.array_namesakes, _qualify(call, computed, ctx)
        )
        function = _function_parts(call, ctx)  # `torch.max(out, 1).indices`, `Variable(out)`
        if function is not None and _array_names(function[0], ctx) & arrays:
            problem = _array_problem(call, [], ctx)
        if problem is not None:
            raise Untranslatable(f"in the forward pass (the loss function): {problem}")
    nodes = [n for s in body for n in cst_walk.walk(s)]
    for node in (n for n in nodes if isinstance(n, cst.Attribute)):
        problem = _array_problem(node, nodes, ctx)
        if problem is not None and _variable_names(node.value) & arrays:
            raise Untranslatable(f"in the forward pass (the loss function): {problem}")
    return exact


def _qualify(
    call: cst.Call, computed: Set[str], ctx: HookContext
) -> Callable[[cst.BaseExpression], list[str]]:
    """``ctx.qualify`` for ``call``'s namesake check in the loss function, but a method of a
    value reading one of ``computed`` is a method of an array (``torch.max(out, 1)[0].std()``:
    libcst's ``torch.max.std`` hid JAX's ``std`` dividing by n, s40); a method of a tensor
    torch makes (``Variable(torch.randn(n, k)).cuda()``) stays torch's."""
    receiver = _receiver(call)
    if receiver is not None and _array_names(receiver, ctx) & computed:
        return partial(module_function, qualify=ctx.qualify)
    return ctx.qualify


def _check_rejecting_function(
    call: cst.Call, arrays: Set[str], outputs: frozenset[int], ctx: HookContext
) -> None:
    """A function of the map's ``tracer_rejecting_packages`` (``torch.cat([out, y], 1)``,
    ``F.nll_loss(out, y)``) the map's ``array_functions`` did not write, given a value the loss
    function computes: torch takes only its own tensors and raised TypeError on the traced JAX
    array (s37). The step escapes naming the call: the README's "port the loss's torch calls
    first", instead of converted code that raises. (An entry of ``array_functions`` given other
    arguments escapes with its own reason, ``_array_problem``.)"""
    names = ctx.qualify(call.func)
    packages = ctx.semantic_map.tracer_rejecting_packages
    if not names or not all(_in_packages(n, packages) for n in names):
        return
    if not any(_traced_read(a.value, arrays, outputs) for a in call.args):
        return
    functions = ctx.semantic_map.array_functions
    entry = next((functions[n] for n in names if n in functions), None)
    if entry is not None:  # an entry the template did not write here (other arguments)
        raise Untranslatable(
            f"in the forward pass (the loss function): `{_short_call(call)}` is not written "
            f"in JAX here (torch's `{names[0]}` raises TypeError on the traced JAX arrays "
            f"there): {entry.reason}"
        )
    raise Untranslatable(
        f"in the forward pass (the loss function): `{_short_call(call)}` is a torch function "
        "the map does not write in JAX, and the loss function's values are traced JAX arrays "
        f"there (torch's `{names[0]}` raises TypeError on them): port it to JAX first (a "
        "`jnp`/`optax` function with the same numbers), then convert the step"
    )


def _in_packages(name: str, packages: Set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _short_call(call: cst.Call) -> str:
    text = " ".join(code_of(call).split())
    return text if len(text) <= 60 else text[:57] + "..."


# Reads of an array that give a Python value, not a traced number (`float(x.shape[0])`).
_STATIC_READS = frozenset({"shape", "ndim", "dtype"})


def _check_concrete_builtins(
    calls: list[cst.Call], arrays: Set[str], outputs: frozenset[int], ctx: HookContext
) -> None:
    """A builtin needing a concrete number (the map's ``concrete_builtins``: ``float(x)``) of
    a value the loss function computes (a name in ``arrays``, a call of the model in
    ``outputs``) raised ConcretizationTypeError in ``nnx.value_and_grad`` (s36): the step
    escapes. Reads of a static property (``x.shape[0]``, ``len(x)``) are no traced number."""
    builtins = ctx.semantic_map.concrete_builtins
    for call in calls:
        func = call.func
        if not (isinstance(func, cst.Name) and func.value in builtins) or ctx.qualify(func):
            continue
        if any(_traced_read(a.value, arrays, outputs) for a in call.args):
            raise Untranslatable(
                f"in the forward pass (the loss function): `{code_of(call).strip()}` needs a "
                "concrete number, and the loss function's values are traced JAX arrays there "
                "(ConcretizationTypeError); compute it from the returned values after the "
                "gradient, or keep it a JAX array (`x.astype(...)`)"
            )


def _traced_read(node: cst.CSTNode, arrays: Set[str], outputs: frozenset[int]) -> bool:
    """Whether ``node`` reads a name of ``arrays`` or a model call of ``outputs`` other than
    through a static property (``x.shape``, ``x.ndim``, ``len(x)``)."""
    if id(node) in outputs:
        return True
    if isinstance(node, cst.Name):
        return node.value in arrays
    if isinstance(node, cst.Attribute) and node.attr.value in _STATIC_READS:
        return False
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value == "len":
        return False
    if isinstance(node, cst.Attribute):
        return _traced_read(node.value, arrays, outputs)
    return any(_traced_read(child, arrays, outputs) for child in node.children)


def _tensors(
    body: Sequence[cst.BaseStatement],
    outputs: frozenset[int],
    others: OtherModels | None,
    ctx: HookContext,
) -> set[str]:
    """The names the loss function's statements bind to torch tensors for sure
    (``torch_tensors.known_tensors``): a call of the trained model (``outputs``, by id), of
    another ported model or of a torch loss module makes one."""
    model_call = _makes_tensor(outputs, others, ctx)
    return known_tensors(body, model_call, ctx.qualify, ctx.semantic_map.tensor_values)


def _loss_tensors(
    forward: Sequence[cst.BaseStatement],
    model: cst.BaseExpression | None,
    others: OtherModels | None,
    ctx: HookContext,
) -> tuple[set[str], Callable[[cst.Call], bool]]:
    """``_tensors`` of the loss function's statements, and whether a call makes one."""
    calls = [n for s in forward for n in cst_walk.walk(s) if isinstance(n, cst.Call)]
    model_call = _makes_tensor(_model_output_calls(calls, model), others, ctx)
    spec = ctx.semantic_map.tensor_values
    return known_tensors(forward, model_call, ctx.qualify, spec), model_call


def _makes_tensor(
    outputs: frozenset[int], others: OtherModels | None, ctx: HookContext
) -> Callable[[cst.Call], bool]:
    """Whether a call makes a torch tensor: the trained model's (``outputs``, by id), another
    ported model's, a torch loss module's."""

    def model_call(call: cst.Call) -> bool:
        func = call.func
        return (
            id(call) in outputs
            or (others is not None and isinstance(func, cst.Name) and others.ported_model(func))
            or _one_criterion(func, ctx)
        )

    return model_call


def _scope_tensors(
    roots: Sequence[cst.CSTNode],
    model: cst.BaseExpression | None,
    others: OtherModels | None,
    ctx: HookContext,
    loss: str,
) -> set[str]:
    """The names the step's scope binds to torch tensors for sure, every binding counted
    (``torch_tensors.known_tensors``): a call of the trained model by name (``model(x)``,
    ``model.forward(x)``), of another ported model or of a torch loss module makes one; the
    ``loss`` torch differentiates is one. The trained model is ``others.trained`` too (a
    generator's step pulled back through the discriminator's forward pass: DCGAN's)."""
    names = {
        m.value for m in (model, others.trained if others else None) if isinstance(m, cst.Name)
    }

    def model_call(call: cst.Call) -> bool:
        func = call.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            return func.value.value in names
        return _one_criterion(func, ctx) or (
            isinstance(func, cst.Name)
            and (func.value in names or (others is not None and others.ported_model(func)))
        )

    spec = ctx.semantic_map.tensor_values
    return known_tensors(roots, model_call, ctx.qualify, spec, frozenset({loss}))


def _exact_texts(
    calls: list[cst.Call],
    statements: Sequence[cst.BaseStatement],
    arrays: set[str],
    ctx: HookContext,
    outputs: frozenset[int] = frozenset(),
    computed: Set[str] = frozenset(),
) -> tuple[dict[str, str], set[int]]:
    """The calls of ``array_namesakes`` on ``arrays`` the map's ``exact`` writes in JAX with
    torch's numbers (code -> JAX text, and their ids); none whose result an attribute is read
    of (``out.max(1).indices``: such a call with the same code escapes the step)."""
    read = attribute_receivers(statements)
    namesakes, functions = ctx.semantic_map.array_namesakes, ctx.semantic_map.array_functions
    texts: dict[str, str] = {}
    written: set[int] = set()
    render = rendered_by_code(texts)  # (an argument's own calls first: `x.view(x.size(0), -1)`)
    for call in reversed(calls):
        text = exact_text(
            call,
            namesakes,
            arrays,
            ctx.qualify,
            False,
            read,
            outputs,
            functions,
            render,
            partial(_is_device, ctx=ctx),
            computed,
        )
        if text is not None:
            texts[code_of(call).strip()] = text
            written.add(id(call))

    return texts, written


def _check_namesakes_after(
    region: Region,
    forward: list[cst.BaseStatement],
    tail: Sequence[cst.BaseStatement],
    ctx: HookContext,
    outside: dict[int, str] | None = None,
    prefix: Sequence[cst.BaseStatement] = (),
    model: cst.BaseExpression | None = None,
    others: OtherModels | None = None,
) -> dict[str, str]:
    """What the loss function computes comes out of the gradient as JAX arrays, and what it
    reads (the batch: ``_data_names``) is one too for the NNX model to run on it: a method of
    the map's ``array_namesakes`` called with other numbers on one of those names (or on a
    name assigned from one) in a statement the step runs after the gradient (``tail``:
    ``spread = out.std().item()``) or elsewhere in the step's scope, outside the step
    (``_, pred = out.max(1)`` after it), computes other numbers than torch (s22b); in
    ``tail`` unless the map's ``exact`` writes it (returned: the call's code to its JAX text);
    outside the step unless it comes after the step's first statement on a name every binding
    of which the loss function computes, and the map's template after the update writes it
    (put in ``outside`` by id: ``out.cpu()`` -> ``out``; s23a); one the map's ``array_lacks``
    raises. A ``x.detach()`` in another training step of the scope is not checked: a converted
    step reading ``fake.detach()`` reads ``fake`` (``OtherModels.without_detach``). A binding
    by a call of a ported model (this step's or another translated optimizer's: ``fake =
    netG(fixed_noise)`` after the steps, a JAX array) counts as one of the loss function's."""
    scope = _scope(region)
    inside = _region_ids(region)
    roots = scope.body.body if isinstance(scope, cst.FunctionDef) else [scope]  # type: ignore[attr-defined]
    walked = [n for r in roots for n in cst_walk.walk(r, _NESTED)]
    first = _planned_first(region)
    start = next((i for i, n in enumerate(walked) if n is first), len(walked))
    outside_nodes = [n for n in walked if id(n) not in inside]
    later = {id(n) for n in walked[start:] if id(n) not in inside}
    prefix_nodes = [n for s in prefix for n in cst_walk.walk(s, _NESTED)]  # checked, not written
    computed = {t.value for s in forward for t in _target_names(s)} | {region.loss}
    rendered = [_added_undetached(s, computed) for s in tail]  # `acc += loss.detach()`: exact
    nodes = [*(n for s in rendered for n in cst_walk.walk(s, _NESTED)), *outside_nodes]
    nodes += prefix_nodes
    stepped = _in_other_steps(outside_nodes, ctx)
    undetached = {
        id(n) for n in outside_nodes if id(n) in stepped and _calls_method_named(n, DETACH)
    }
    stores = [(n, _stored_value(n)) for n in nodes]
    returned = _assigned_from(stores, computed)  # what the loss function computes, and values of it
    computed = _assigned_from(
        stores, computed | _sources(stores, _data_names(forward, model, ctx), ctx)
    )
    in_tail = [n for s in rendered for n in cst_walk.walk(s, _NESTED)]
    tensors = _scope_tensors(
        [*roots, *rendered], model, others, ctx, region.loss
    )  # never a NumPy `w`
    tail_texts = _after_update_texts(  # (a template of any array on the batch too: `x.size(0)`)
        in_tail,
        lambda name: name.value in computed and name.value in tensors,
        ctx,
        lambda name: name.value in computed,
    )
    prefix_texts = _any_array_texts(prefix_nodes, computed, ctx)  # `n = x.size(0)`
    tail_texts.update(prefix_texts)
    by_id = {id(n): n for n in [*in_tail, *prefix_nodes]}
    exact = {code_of(by_id[key]).strip(): text for key, text in tail_texts.items()}
    written = set(tail_texts)
    if outside is not None:
        after = [n for n in outside_nodes if id(n) in later and id(n) not in stepped]
        assigned = {id(n) for s in forward for n in cst_walk.walk(s)}
        assigned |= _before_backwards(walked, ctx)
        assigned |= _ported_outputs(walked, model, others)
        bound = partial(_bound_in, assigned=assigned, ctx=ctx, unpacked=_unpacked(walked))
        outputs = _model_output_calls([n for n in after if isinstance(n, cst.Call)], model)
        while True:  # `_, pred = out.max(1)` rewritten: `pred.eq(y)` may be, to a fixpoint
            texts = _after_update_texts(
                after,
                lambda n: n.value in computed and n.value in tensors and bound(n),
                ctx,
                lambda n: n.value in computed,
                outputs,
            )
            if set(texts) <= assigned:
                break
            assigned |= set(texts)
        outside.update(texts)
        before = [n for n in outside_nodes if id(n) not in later and id(n) not in stepped]
        outside.update(_any_array_texts(before, computed, ctx))
        written |= set(outside)
    skipped = written | undetached | _other_steps_any_array(nodes, stepped, ctx)
    for node in (n for n in nodes if id(n) not in skipped):
        problem = _array_problem(node, nodes, ctx)
        function = _function_parts(node, ctx)
        receiver = function[0] if function is not None else _receiver(node)
        # An attribute a JAX array lacks (`label.data`) on the batch only: a port feeding JAX
        # arrays raises there, one keeping torch buffers (the old DCGAN) runs as torch does;
        # never other numbers (s23int).
        arrays = returned if isinstance(node, cst.Attribute) else computed
        # (`Variable(torch.ones(n)).cuda()`: a tensor torch makes, ported by hand)
        if problem is not None and receiver is not None and _array_names(receiver, ctx) & arrays:
            raise Untranslatable(
                f"a value the loss function returns or reads is a JAX array: {problem}"
            )
    _check_file_functions_given_arrays([n for n in nodes if id(n) not in skipped], computed, ctx)
    forward_nodes = [n for s in forward for n in cst_walk.walk(s, _NESTED)]
    _check_no_shared_change([*forward_nodes, *nodes], computed, ctx, returned)
    _check_batch_not_changed_in_place([*forward_nodes, *nodes], ctx)
    after_update = [*in_tail, *(n for n in outside_nodes if id(n) in later)]
    outputs = _assigned_from(stores, _model_output_names(forward, model) | {region.loss})
    _check_no_in_place_call(after_update, outputs, ctx)
    return exact


def _check_file_functions_given_arrays(
    nodes: Sequence[cst.CSTNode], arrays: Set[str], ctx: HookContext
) -> None:
    """A function of this file given a JAX array (``log_stats(out)`` after the step, with
    ``out.std()`` in its body) runs the map's ``array_namesakes`` on it with other numbers
    than torch, silently (probe s34): a call of a ``def`` of the file, by name (or a method
    through ``self``: ``_own_callee``), with an argument reading one of ``arrays``, escapes
    when the body of a ``def`` of that name (or of a function it calls so, transitively) calls
    a namesake that computes other numbers on any receiver (one that raises,
    ``ArrayNamesake.raises``, is loud: left to the port); a function of another file of the
    repository (``from utils import spread``) escapes when its body calls one by name
    (``HookContext.method_call_elsewhere``: its own body only, any arguments)."""
    module = module_of(nodes[0], ctx.parent_of) if nodes else None
    if module is None:
        return
    defs: dict[str, list[cst.FunctionDef]] = {}
    for node in cst_walk.walk(module):
        if isinstance(node, cst.FunctionDef):
            defs.setdefault(node.name.value, []).append(node)
    silent = frozenset(k for k, v in ctx.semantic_map.array_namesakes.items() if not v.raises)
    for call in nodes:
        if not (
            isinstance(call, cst.Call) and any(_variable_names(a.value) & arrays for a in call.args)
        ):
            continue
        where = ctx.method_call_elsewhere(call, silent)
        if where is not None:
            raise Untranslatable(
                f"a value the loss function returns or reads is a JAX array, and "
                f"`{code_of(call).strip()}` gives it to a function of another file that calls "
                f"a method a JAX array computes other numbers with ({where}: "
                f"{', '.join(f'`x.{m}()`' for m in sorted(silent))})"
            )
        name = _own_callee(call.func)
        if name is None or name not in defs:
            continue
        problem = _namesake_in_functions(name, defs, ctx, set())
        if problem is not None:
            raise Untranslatable(
                f"a value the loss function returns or reads is a JAX array, and "
                f"`{code_of(call).strip()}` gives it to `{name}` of this file: {problem}"
            )


def _own_callee(func: cst.BaseExpression) -> str | None:
    """The name of a function of the file a call reads: ``log_stats`` of ``log_stats(out)``,
    ``log`` of a method call on ``self`` (``self.log(out)``: every ``def log`` of the file is
    read, a method of another class too)."""
    if isinstance(func, cst.Name):
        return func.value
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
        return func.attr.value if func.value.value == "self" else None
    return None


def _namesake_in_functions(
    name: str, defs: Mapping[str, list[cst.FunctionDef]], ctx: HookContext, seen: set[str]
) -> str | None:
    """The first call of a namesake computing other numbers (``namesake_problem``) in the
    ``def``s named ``name`` or the ``def``s of the file they call by name (None: none)."""
    seen.add(name)
    silent = {k: v for k, v in ctx.semantic_map.array_namesakes.items() if not v.raises}
    for function in defs.get(name, ()):
        for node in cst_walk.walk(function.body):
            if not isinstance(node, cst.Call):
                continue
            problem = namesake_problem(node, silent, ctx.qualify)
            if problem is not None:
                return problem
            callee = _own_callee(node.func)
            if callee in defs and callee not in seen:
                problem = _namesake_in_functions(callee, defs, ctx, seen)
                if problem is not None:
                    return problem
    return None


def _ported_outputs(
    nodes: Sequence[cst.CSTNode], model: cst.BaseExpression | None, others: OtherModels | None
) -> set[int]:
    """Ids of the values of ``nodes`` that call a model the translation ports to NNX by name
    (``model(x)``, the trained one, or ``netG(z)``, another translated optimizer's): JAX
    arrays wherever they are computed; the trained model is ``others.trained`` too, DCGAN's
    generator pulled back through the discriminator: ``fake = netG(fixed_noise)``)."""
    trained = {
        m.value for m in (model, others.trained if others else None) if isinstance(m, cst.Name)
    }
    found: set[int] = set()
    for node in nodes:
        value = _stored_value(node)
        if not isinstance(value, cst.Call) or not isinstance(value.func, cst.Name):
            continue
        if value.func.value in trained or (others is not None and others.ported_model(value.func)):
            found.add(id(value))
    return found


def _model_output_names(
    forward: Sequence[cst.BaseStatement], model: cst.BaseExpression | None
) -> set[str]:
    """The names the loss function's statements assign from a value calling the trained model
    (``out = model(x)``: JAX arrays once the step runs)."""
    root = (dotted_name(model) or "").partition(".")[0] if model is not None else ""
    found: set[str] = set()
    for node in (n for s in forward for n in cst_walk.walk(s, _NESTED)):
        value = _stored_value(node)
        calls = (n for n in cst_walk.walk(value) if isinstance(n, cst.Call)) if value else ()
        if root and any((dotted_name(c.func) or "").partition(".")[0] == root for c in calls):
            found |= _stored_names(node)
    return found


def _check_no_in_place_call(
    nodes: Sequence[cst.CSTNode], outputs: set[str], ctx: HookContext
) -> None:
    """An in-place method (the map's ``in_place_suffix``: ``out.add_(1)``, ``loss.clamp_(0,
    1)``, also through a view or an item: ``out[0].mul_(2)``) called after the update on the
    model's output or the loss (``outputs``, JAX arrays there: they have none) raised
    AttributeError when the translation ran (s24b): the step escapes naming the call."""
    suffix = ctx.semantic_map.in_place_suffix or "_"
    views = ctx.semantic_map.array_views
    for node in (n for n in nodes if isinstance(n, cst.Call)):
        changed = _shared_change_of(node, suffix, views)
        if changed is not None and changed in outputs:
            raise Untranslatable(
                f"`{code_of(node).strip()}` changes `{changed}` in place after the update; it"
                " is a JAX array there, which has no in-place methods: write"
                f" `{changed} = <the new value>` (a JAX array's `.at[...].set(...)` for an item)"
            )


def _assigned_from(
    stores: Sequence[tuple[cst.CSTNode, cst.BaseExpression | None]], names: set[str]
) -> set[str]:
    """``names`` and the names assigned from one of them, to a fixpoint."""
    found = set(names)
    while True:
        more = {
            name
            for node, value in stores
            if value is not None and _variable_names(value) & found
            for name in _stored_names(node)
        } - found
        if not more:
            return found
        found |= more


def _check_no_shared_change(
    nodes: Sequence[cst.CSTNode],
    computed: set[str],
    ctx: HookContext,
    returned: set[str] | None = None,
) -> None:
    """A name bound to a value of ``computed`` or to a view of one (the map's
    ``array_views``: ``keep = out.detach()``, ``row = out[0]``), or such a value, changed in
    place (``keep += 1``, ``keep[0] = 5``, ``keep.add_(1)``) changes the other too in torch,
    never with JAX arrays (s23int: ``keep = out.detach(); keep += 1`` after the step, ``out``
    recorded: 0.785 relative off torch over 36 updates). Bindings by a conditional, a walrus,
    a dict, a ``for`` loop or a comprehension (rows of a tensor are views of it) and values
    passed to a function (``torch.squeeze(out)``, ``list(out)``) count too (s24d: ``keep =
    out if c else None``, ``(keep := out.detach())``, ``d = {"o": out}`` then changed in place
    converted, 0.785 relative off torch each). A loop binds views only over ``returned``
    (values of the loss function): a batch of the loader is a new tensor (DCGAN's
    ``noise.normal_(0, 1)``). An in-place method (``x.t_()``) of a name none of ``returned``
    reaches (the batch, values made from it: ``_batch_method``) is left to the port: torch's
    own change on the torch tensors of a port keeping them (both names change, as in torch),
    AttributeError on a JAX or NumPy array, never other numbers (s40: cnn-text-classification's
    ``feature.t_()`` beside ``feature, target = feature.cuda(), target.cuda()``). The step
    escapes naming the change."""
    views = ctx.semantic_map.array_views
    moves = ctx.semantic_map.array_moves
    nodes = [n for n in nodes if not _writes_itself_back(n, moves)]
    numbers = _python_numbers(nodes)  # `running_loss += loss.item()`: rebound, never changed
    shared: set[str] = set()
    for node in nodes:
        value = None if isinstance(node, cst.AugAssign) else _stored_value(node)
        names = _shared_names(value, views) & computed if value is not None else set()
        names -= numbers
        if isinstance(node, (cst.For, cst.CompFor)):
            names &= returned if returned is not None else computed
        if names:
            shared |= names | _stored_names(node)
    if not shared:
        return
    suffix = ctx.semantic_map.in_place_suffix or "_"
    of_the_step = returned if returned is not None else computed
    for node in nodes:
        changed = _shared_change_of(node, suffix, views)
        if changed is None or changed not in shared:
            continue
        if changed not in of_the_step and _batch_method(node, suffix):
            continue
        raise Untranslatable(
            f"`{code_of(node).strip()}` changes `{changed}` in place, which shares its memory"
            " with a value of the step in torch (a view, `x.detach()`, the same tensor);"
            " JAX arrays are never changed in place: the other name would keep its value"
        )


_NUMBER_BUILTINS = frozenset({"float", "int", "len", "round", "abs"})


def _python_numbers(nodes: Sequence[cst.CSTNode]) -> set[str]:
    """The names every store of ``nodes`` binds to a Python number (a number literal,
    ``x.item()``, ``float(...)``/``int(...)``/``len(...)``/``round(...)``/``abs(...)`` of the
    builtins, arithmetic of those and of such names; ``+=`` of one), to a fixpoint, named by
    no ``global``/``nonlocal``: a number is never changed in place, ``running_loss +=
    loss.item()`` rebinds it and shares nothing (probe s41a R2: ``best = running_loss`` made
    the step escape)."""
    stores: dict[str, list[cst.BaseExpression | None]] = {}
    declared: set[str] = set()
    for node in nodes:
        if isinstance(node, (cst.Global, cst.Nonlocal)):
            declared |= {n.name.value for n in node.names}
        for name in _stored_names(node):
            value = _stored_value(node) if not isinstance(node, (cst.For, cst.CompFor)) else None
            stores.setdefault(name, []).append(value)
    numbers = set(stores) - declared

    def number(value: cst.BaseExpression | None) -> bool:
        if isinstance(value, (cst.Integer, cst.Float)):
            return True
        if isinstance(value, cst.Name):
            return value.value in numbers
        if isinstance(value, cst.UnaryOperation):
            return number(value.expression)
        if isinstance(value, cst.BinaryOperation):
            return number(value.left) and number(value.right)
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
            return value.func.attr.value == "item" and not value.args
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
            return value.func.value in _NUMBER_BUILTINS and value.func.value not in stores
        return False

    changed = True
    while changed:
        kept = {n for n in numbers if all(number(v) for v in stores[n])}
        changed, numbers = kept != numbers, kept
    return numbers


def _batch_method(node: cst.CSTNode, suffix: str) -> bool:
    """Whether ``node`` calls a method named with the map's ``in_place_suffix`` (``x.t_()``,
    ``x.data.add_(1)``, ``x[0].mul_(2)``): a JAX or NumPy array has none (AttributeError), so
    on a name the loss function does not compute it is loud or torch's own change, never other
    numbers. An augmented assignment or an item store is not one (``x += 1`` rebinds a JAX
    array silently)."""
    if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute):
        return False
    name = node.func.attr.value
    return name.endswith(suffix) and not name.startswith("__")


def _writes_itself_back(node: cst.CSTNode, moves: Set[str]) -> bool:
    """``images[0] = images[0].cuda(args.gpu, non_blocking=True)``: an item at literal indices
    assigned the map's ``array_moves`` of itself (its very values, in its shape): no value
    changes in torch (a list's item rebound, a tensor's row copied onto itself)."""
    if not isinstance(node, cst.Assign) or len(node.targets) != 1:
        return False
    target = node.targets[0].target
    if not isinstance(target, cst.Subscript) or _literal_item_base(target) is target:
        return False
    value = node.value
    moved = False
    while True:
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
            attribute = value.func
        elif isinstance(value, cst.Attribute):
            attribute = value
        else:
            break
        if attribute.attr.value not in moves:
            return False
        value, moved = attribute.value, True
    return moved and isinstance(_literal_item_base(target), cst.Name) and value.deep_equals(target)


def _check_batch_not_changed_in_place(nodes: Sequence[cst.CSTNode], ctx: HookContext) -> None:
    """A loop's item changed in place in the step (``for x, y in data: ... x /= 2.0``) changes
    in torch the tensor the loop got, which the next pass over ``data`` may hand out again (a
    list of tensors, views of a data set: probe s32 H2, 3.5 relative over 36 updates); with JAX
    arrays it rebinds the name alone. Escapes unless the loop is over one of the map's
    ``fresh_loaders`` (through ``batch_wrappers``): new tensors at every pass. Only an
    augmented assignment counts (it reads the old value; an in-place method raises on a JAX
    array, never other numbers; an item store, `g["lr"] = lr`, is the loop's own dict)."""
    for node in nodes:
        target = node.target if isinstance(node, cst.AugAssign) else None
        changed = target.value if isinstance(target, cst.Name) else None
        loop = _loop_binding(node, changed, ctx) if changed is not None else None
        if loop is not None and not _fresh_batches(loop.iter, ctx, 0):
            raise Untranslatable(
                f"`{code_of(node).strip()}` changes `{changed}` in place, an item of the loop "
                f"over `{code_of(loop.iter).strip()}`, which may hand out the same tensors "
                "again at its next pass (a list of tensors, views of a data set): torch changes "
                "them for later passes, a JAX array is never changed in place (only the name "
                "is rebound)"
            )


def _loop_binding(node: cst.CSTNode, name: str, ctx: HookContext) -> cst.For | None:
    """The ``for`` loop around ``node`` whose target binds ``name``."""
    parent = ctx.parent_of(node)
    while parent is not None:
        if isinstance(parent, cst.For) and any(
            isinstance(n, cst.Name) and n.value == name for n in cst_walk.walk(parent.target)
        ):
            return parent
        parent = ctx.parent_of(parent)
    return None


def _fresh_batches(iterable: cst.BaseExpression, ctx: HookContext, depth: int) -> bool:
    """Whether every pass over ``iterable`` yields new tensors: a call of one of the map's
    ``fresh_loaders``, a name bound only to one, or ``batch_wrappers`` of such (``enumerate``,
    ``zip`` of them, ``tqdm(loader)``)."""
    if depth > 4:
        return False
    semantic_map = ctx.semantic_map
    if isinstance(iterable, cst.Name):
        values = ctx.origins(iterable)
        return bool(values) and all(
            v is not iterable and _fresh_batches(v, ctx, depth + 1)  # type: ignore[arg-type]
            for v in values
        )
    if not isinstance(iterable, cst.Call):
        return False
    called = set(ctx.qualify(iterable.func))
    if isinstance(iterable.func, cst.Name) and not ctx.binds(iterable.func, iterable.func.value):
        called.add(iterable.func.value)
    if called & semantic_map.fresh_loaders:
        return True
    if not called or not called <= semantic_map.batch_wrappers:
        return False
    items = [a.value for a in iterable.args if a.keyword is None and not a.star]
    yielded = items if "zip" in called else items[:1]  # the arguments whose items it yields
    return bool(yielded) and all(_fresh_batches(item, ctx, depth + 1) for item in yielded)


def _shared_names(value: cst.BaseExpression, views: frozenset[str]) -> set[str]:
    """The variables ``value`` may share memory with: a name, an item (``x[0]``), a view
    (``x.detach()``, ``x.data``), an object's attribute (``batch.text``: the batch's tensor,
    s40; not a static read, ``x.shape``), each element of a tuple, list, set or dict, either
    branch of a conditional or ``or``, a walrus's value, what a comprehension iterates or
    yields, and the arguments of a view function (``torch.squeeze(out)``) or of a Python builtin
    (``max(out)``, ``list(out)``: items of a tensor are views). Not seen: a function of the
    user's returning its argument (a model's output is a new tensor: ``fake = netG(noise)``)."""
    if isinstance(value, cst.Name):
        return {value.value}
    if isinstance(value, (cst.Tuple, cst.List, cst.Set, cst.Dict)):
        return set().union(*(_shared_names(e.value, views) for e in value.elements))
    if isinstance(value, (cst.Subscript, cst.NamedExpr)):
        return _shared_names(value.value, views)
    if isinstance(value, cst.Attribute) and value.attr.value not in _STATIC_READS:
        return _shared_names(value.value, views)  # a view, or an object's (`batch.text`)
    if isinstance(value, cst.IfExp):
        return _shared_names(value.body, views) | _shared_names(value.orelse, views)
    if isinstance(value, cst.BooleanOperation):
        return _shared_names(value.left, views) | _shared_names(value.right, views)
    if isinstance(value, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
        return _comprehension_shares(value, views)
    if isinstance(value, cst.Call):
        passed = set().union(*(_shared_names(a.value, views) for a in value.args))
        if isinstance(value.func, cst.Attribute) and value.func.attr.value in views:
            return _shared_names(value.func.value, views) | passed
        if isinstance(value.func, cst.Name) and value.func.value in views:
            return passed  # `Variable(x)`: x's storage
        if isinstance(value.func, cst.Name) and hasattr(builtins, value.func.value):
            return passed  # `list(out)`, `next(iter(out))`, `max(out)`: its items, views
        return set()
    return set()


def _comprehension_shares(
    value: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp, views: frozenset[str]
) -> set[str]:
    """What a comprehension's items may share memory with: what it iterates (the rows of a
    tensor are views of it) and what its item reads as a view."""
    items = [value.key, value.value] if isinstance(value, cst.DictComp) else [value.elt]
    shared = set().union(*(_shared_names(item, views) for item in items))
    loop: cst.CompFor | None = value.for_in
    while loop is not None:
        shared |= _shared_names(loop.iter, views)
        loop = loop.inner_for_in
    return shared


def _shared_change_of(node: cst.CSTNode, suffix: str, views: frozenset[str]) -> str | None:
    """The variable an augmented assignment, an item or attribute store, or an in-place method
    (``x.add_(1)``: the map's ``in_place_suffix``) changes in place, through views of it
    (``x.detach().mul_(2)``); None: no such change."""
    targets: list[cst.BaseExpression] = []
    if isinstance(node, cst.AugAssign):
        targets = [node.target]
    elif isinstance(node, cst.Assign):
        stores = [t.target for t in node.targets]
        targets = [t for t in stores if isinstance(t, (cst.Subscript, cst.Attribute))]
    elif (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value.endswith(suffix)
        and not node.func.attr.value.startswith("__")
    ):
        targets = [node.func.value]
    for target in targets:
        while True:
            if isinstance(target, (cst.Subscript, cst.Attribute)):
                target = target.value
            elif isinstance(target, cst.Call) and _shared_names(target, views):
                target = target.func.value  # type: ignore[attr-defined]  # `x.detach().mul_(2)`
            else:
                break
        if isinstance(target, cst.Name):
            return target.value
    return None


def _array_problem(node: cst.CSTNode, nodes: Sequence[cst.CSTNode], ctx: HookContext) -> str | None:
    """What a call of the map's ``array_namesakes`` (``array_lacks``) or a read of one of its
    ``array_attributes`` (``out.data``) does on a JAX array (None: nothing the map names)."""
    function = _function_parts(node, ctx)
    if function is not None and not function[1].left:
        return f"`{code_of(node).strip()}` runs on JAX arrays there: {function[1].reason}"
    if isinstance(node, cst.Call):  # (`torch.max(out, 1)[1].view(-1)`: a method of a value)
        qualify = partial(module_function, qualify=ctx.qualify)
        return namesake_problem(node, ctx.semantic_map.array_namesakes, qualify)
    entry = (
        ctx.semantic_map.array_attributes.get(node.attr.value)
        if isinstance(node, cst.Attribute)
        else None
    )
    if entry is None or any(isinstance(n, cst.Call) and n.func is node for n in nodes):
        return None
    return f"`{code_of(node).strip()}` runs on JAX arrays there: {entry.reason}"


def _in_other_steps(nodes: Sequence[cst.CSTNode], ctx: HookContext) -> set[int]:
    """Ids of ``nodes`` inside a statement of another training-step region of the file."""
    found: set[int] = set()
    for node in nodes:
        if isinstance(node, cst.BaseStatement) and ctx.region_at(node) is not None:
            found.update(id(n) for n in cst_walk.walk(node))
    return found


def _before_backwards(nodes: Sequence[cst.CSTNode], ctx: HookContext) -> set[int]:
    """Ids of ``nodes`` inside a statement of a training step of the file before its backward
    pass (this step's or another's: ``d_loss`` of a GAN's other step, a JAX array once that
    step is converted or ported as its escape says; ``real_scores = real_out`` beside the
    loss)."""
    found: set[int] = set()
    for node in (n for n in nodes if isinstance(n, cst.BaseStatement)):
        other = ctx.region_at(node)
        if other is None or other.backward is None:
            continue
        backward = other.backward.statement
        index = next((i for i, s in enumerate(other.statements) if s is backward), None)
        if index is not None and any(s is node for s in other.statements[:index]):
            found.update(id(n) for n in cst_walk.walk(node))
    return found


def _after_update_texts(
    nodes: Sequence[cst.CSTNode],
    receivable: Callable[[cst.Name], bool],
    ctx: HookContext,
    covered: Callable[[cst.Name], bool] | None = None,
    outputs: frozenset[int] = frozenset(),
) -> dict[int, str]:
    """The calls and attribute reads of ``nodes`` (statements after the gradient) the map's
    templates after the update write (by id: their JAX text): on a ``receivable`` name (after
    the step: one whose every binding is an assignment of the loss function's statements,
    ``_bound_in``), or on such a read written as a name (``output.cpu().data`` -> ``output``),
    or, for a template of any array (``any_array``: ``y.size(0)``), on a ``covered`` name (one
    the step's check covers: the batch too); not a tuple read for an attribute
    (``out.max(1).indices``) nor a store (``out.data = y``). ``outputs``: calls of the ported
    model, by id (``self.forward(x_pos).detach()`` -> ``self.forward(x_pos)``: a JAX array), a
    receiver only of a template reading it once (the model runs once)."""
    read = attribute_receivers(nodes)
    called = {id(n.func) for n in nodes if isinstance(n, cst.Call)}
    called |= {id(n) for t in _store_targets(nodes) for n in cst_walk.walk(t)}  # `out.data = y`
    namesakes = ctx.semantic_map.array_namesakes
    attributes = ctx.semantic_map.array_attributes
    texts: dict[int, str] = {}
    render = rendered_by_id(texts)
    for node in reversed(nodes):  # (pre-order reversed: a receiver before what reads it)
        function = _function_parts(node, ctx)  # `torch.max(out, 1)`: `out`, the entry, `1`
        receiver = function[0] if function is not None else _receiver(node)
        if receiver is None or id(node) in called:
            continue
        entry_args = function[1:] if function is not None else None
        reads_once = _reads_once(node, function[1] if function is not None else None, ctx)
        x = _receiver_text(receiver, texts, receivable, reads_once)
        if x is None and reads_once:
            x = _written_item(receiver, texts)
        if x is None and _any_array_receiver(receiver, node, covered, ctx):
            x = code_of(receiver).strip()  # a name or an item of one: `images[0]`
        model_call = x is None and id(receiver) in outputs
        x = code_of(receiver).strip() if model_call else x
        if x is None and function is not None:
            x = _expression_receiver(receiver, function[1], receivable, covered, render, ctx)
        if x is None:
            continue
        is_device = partial(_is_device, ctx=ctx)
        text = after_text(
            node, x, namesakes, attributes, read, entry_args, render, is_device, model_call
        )
        if text is not None:
            texts[id(node)] = text
    return texts


def _array_names(node: cst.CSTNode, ctx: HookContext) -> set[str]:
    """The variables ``node`` reads (``_variable_names``) but inside the arguments of a
    function of an import (``torch.ones(n)``: a tensor torch makes, ported by hand with the
    model) unless the map writes that function on arrays (``torch.max(out, 1)``)."""
    if (
        isinstance(node, cst.Call)
        and module_function(node.func, ctx.qualify)
        and _function_parts(node, ctx) is None
    ):
        return set()
    names = _variable_names(node) if isinstance(node, cst.Name) else set()
    for child in node.children:
        names |= _array_names(child, ctx)
    return names & _variable_names(node)


_DEVICE = re.compile(r"(cpu|cuda|mps|xpu)(:[0-9]+)?")


def _is_device(node: cst.BaseExpression, ctx: HookContext, depth: int = 0) -> bool:
    """Whether ``node`` is a device (``x.to(device)`` then moves, never converts): a string
    such as ``"cuda"``/``"cpu:0"``, a call of one of the map's ``device_calls``
    (``torch.device(...)``), its ``.type`` (a string), either branch of a conditional of these,
    or a name every binding of which is one (``device = torch.device("cuda" if ... else
    "cpu")``); not a parameter (a caller may pass a dtype)."""
    if depth > 8:
        return False
    if isinstance(node, cst.SimpleString):
        return _DEVICE.fullmatch(node.evaluated_value) is not None  # type: ignore[arg-type]
    if isinstance(node, cst.IfExp):
        return _is_device(node.body, ctx, depth + 1) and _is_device(node.orelse, ctx, depth + 1)
    if isinstance(node, cst.Attribute) and node.attr.value == "type":
        node = node.value
    if isinstance(node, cst.Call):
        return any(q in ctx.semantic_map.device_calls for q in ctx.qualify(node.func))
    if not isinstance(node, cst.Name) or ctx.qualify(node):
        return False
    variable = ctx.variable(node)
    values = variable.values if variable is not None else []
    return bool(values) and all(
        value is not None and _is_device(value, ctx, depth + 1) for value in values
    )


def _expression_receiver(
    receiver: cst.BaseExpression,
    entry: ArrayNamesake,
    receivable: Callable[[cst.Name], bool],
    covered: Callable[[cst.Name], bool] | None,
    render: Callable[[cst.BaseExpression], str],
    ctx: HookContext,
) -> str | None:
    """The text of the array a function of the map is called on when it is an expression
    (``torch.mean((out - y) ** 2)``, ``Variable(batch[0])``) reading a ``receivable`` name or,
    for a template of any array, a ``covered`` one, and the template reads it once
    (parenthesized as needed); None otherwise."""
    template = entry.template(after_update=True) or ""
    if isinstance(receiver, cst.Name) or template.count("{x}") != 1:
        return None
    names = [n for n in cst_walk.walk(receiver) if isinstance(n, cst.Name)]
    arrays = _array_names(receiver, ctx)
    reads = [n for n in names if n.value in arrays]
    if not any(receivable(n) or (entry.any_array and covered and covered(n)) for n in reads):
        return None
    return operand_text(receiver, render, template)


def _function_parts(
    node: cst.CSTNode, ctx: HookContext
) -> tuple[cst.BaseExpression, ArrayNamesake, list[cst.Arg]] | None:
    """For a call of one of the map's ``array_functions`` (``torch.max(out, 1)``): the array
    it is called on, the entry and the other arguments (None for anything else)."""
    if not isinstance(node, cst.Call) or not ctx.qualify(node.func):
        return None
    semantic_map = ctx.semantic_map
    parts = array_call(node, {}, ctx.qualify, semantic_map.array_functions)
    return None if parts is None else (parts[1], parts[0], parts[2])


def _other_steps_any_array(
    nodes: Sequence[cst.CSTNode], stepped: set[int], ctx: HookContext
) -> set[int]:
    """Ids of the reads of an ``any_array`` template, and the calls of the map's
    ``array_functions``, in another step's statements (``stepped``): that step writes them
    (``num = x.size(0)`` as its prefix, ``torch.mean(fake_validity)`` in its loss function)
    or escapes; and of the map's ``array_attributes`` there (wgan_gp's
    `compute_gradient_penalty(D, real_imgs.data, fake_imgs.data)` in the critic's step, s33):
    that step checks them itself, and left in its escape on a JAX array they raise
    AttributeError, never other numbers."""
    semantic_map = ctx.semantic_map
    namesakes, attributes = semantic_map.array_namesakes, semantic_map.array_attributes
    return {
        id(n)
        for n in nodes
        if id(n) in stepped
        and (
            any_array_read(n, namesakes, attributes)
            or _function_parts(n, ctx) is not None
            or (isinstance(n, cst.Attribute) and n.attr.value in attributes)
        )
    }


def _any_array_texts(
    nodes: Sequence[cst.CSTNode], covered: set[str], ctx: HookContext
) -> dict[int, str]:
    """The reads of ``nodes`` (the step's scope before it) the map's templates of any array
    write (``num = x.size(0)`` -> ``num = x.shape[0]``: the same int on a torch tensor) on a
    name of ``covered``, by id."""
    return _after_update_texts(nodes, lambda name: False, ctx, lambda n: n.value in covered)


def _any_array_receiver(
    receiver: cst.BaseExpression,
    node: cst.CSTNode,
    covered: Callable[[cst.Name], bool] | None,
    ctx: HookContext,
) -> bool:
    """Whether ``node`` reads an ``any_array`` entry of the map on a ``covered`` name or on an
    item of one at literal indices (``images[0].size(0)``: a batch of two views, moco's)."""
    receiver = _literal_item_base(receiver)
    if covered is None or not isinstance(receiver, cst.Name) or not covered(receiver):
        return False
    function = _function_parts(node, ctx)
    if function is not None:
        return function[1].any_array
    semantic_map = ctx.semantic_map
    return any_array_read(node, semantic_map.array_namesakes, semantic_map.array_attributes)


def _literal_item_base(node: cst.BaseExpression) -> cst.BaseExpression:
    """The name ``images[0]``, ``batch["x"][1]`` index at literal indices (an integer or a
    string: no slice, nothing computed); ``node`` itself otherwise."""
    while isinstance(node, cst.Subscript) and all(
        isinstance(e.slice, cst.Index)
        and isinstance(e.slice.value, (cst.Integer, cst.SimpleString))
        and e.slice.star is None
        for e in node.slice
    ):
        node = node.value
    return node


def _store_targets(nodes: Sequence[cst.CSTNode]) -> list[cst.CSTNode]:
    """What the assignments, ``for`` loops and ``del`` statements of ``nodes`` store into."""
    targets: list[cst.CSTNode] = []
    for node in nodes:
        if isinstance(node, cst.Assign):
            targets.extend(t.target for t in node.targets)
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor, cst.Del)):
            targets.append(node.target)
    return targets


def _receiver(node: cst.CSTNode) -> cst.BaseExpression | None:
    """``x`` of ``x.m(...)`` or ``x.a`` (None for other nodes)."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        return node.func.value
    return node.value if isinstance(node, cst.Attribute) else None


def _receiver_text(
    receiver: cst.BaseExpression,
    texts: Mapping[int, str],
    receivable: Callable[[cst.Name], bool],
    once: bool = False,
) -> str | None:
    """A ``receivable`` name, or a rewritten read whose text is a name or an item or
    attribute of one (``Variable(batch[1])`` -> ``batch[1]``: no call in it), or any rewritten
    read when the template reads its receiver ``once`` (``out.view(-1).view_as(out)``:
    parenthesized as needed)."""
    if isinstance(receiver, cst.Name):
        return receiver.value if receivable(receiver) else None
    text = texts.get(id(receiver))
    if text is None or text.isidentifier():
        return text
    node = cst.parse_expression(text)
    if once:
        primary = (cst.Name, cst.Attribute, cst.Subscript, cst.Call)
        return text if node.lpar or isinstance(node, primary) else f"({text})"
    if node.lpar or not isinstance(node, (cst.Subscript, cst.Attribute)):
        return None
    return None if any(isinstance(n, cst.Call) for n in cst_walk.walk(node)) else text


def _written_item(receiver: cst.BaseExpression, texts: Mapping[int, str]) -> str | None:
    """``torch.max(out, 1)[1]``: an item at literal indices of a read ``texts`` writes, its
    text with the read's (parenthesized as needed: ``(values, indices)[1]``); None otherwise
    (s40: cnn-text-classification's ``torch.max(logit, 1)[1].view(target.size()).data``)."""
    base = _literal_item_base(receiver)
    if base is receiver or id(base) not in texts:
        return None
    written = cst.parse_expression(texts[id(base)])
    primary = (cst.Name, cst.Attribute, cst.Subscript, cst.Call)
    if not written.lpar and not isinstance(written, primary):
        written = cst.parse_expression(f"({texts[id(base)]})")
    return code_of(receiver.deep_replace(base, written)).strip()


def _reads_once(node: cst.CSTNode, entry: ArrayNamesake | None, ctx: HookContext) -> bool:
    """Whether the template after the update of ``node``'s entry (``entry``: a function's)
    reads its receiver once."""
    if entry is None and isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        entry = ctx.semantic_map.array_namesakes.get(node.func.attr.value)
    elif entry is None and isinstance(node, cst.Attribute):
        entry = ctx.semantic_map.array_attributes.get(node.attr.value)
    template = entry.template(after_update=True) if entry is not None else None
    return template is not None and template.count("{x}") == 1


def _bound_in(
    name: cst.Name,
    *,
    assigned: set[int],
    ctx: HookContext,
    unpacked: Mapping[str, list[cst.BaseExpression]],
) -> bool:
    """Whether every binding of ``name``'s variable assigns a value among ``assigned``: its
    bindings by a value, and as many unpackings of its scope (``unpacked``: ``_, pred =
    out.max(1)``, a binding without a value of its own) as it has bindings without one."""
    variable = ctx.variable(name)
    if variable is None or not variable.values:
        return False
    values = [value for value in variable.values if value is not None]
    sites = unpacked.get(name.value, [])
    if len(variable.values) - len(values) != len(sites):
        return False  # a loop target, a parameter, an unpacking elsewhere...
    return all(id(value) in assigned for value in (*values, *sites))


def _unpacked(nodes: Sequence[cst.CSTNode]) -> dict[str, list[cst.BaseExpression]]:
    """For each name a flat tuple or list target of an assignment of ``nodes`` binds, the
    value of each such assignment (``_, pred = out.max(1)``: ``pred`` -> ``out.max(1)``)."""
    found: dict[str, list[cst.BaseExpression]] = {}
    for node in (n for n in nodes if isinstance(n, cst.Assign)):
        for target in (t.target for t in node.targets):
            if isinstance(target, (cst.Tuple, cst.List)):
                for element in target.elements:
                    if isinstance(element, cst.Element) and isinstance(element.value, cst.Name):
                        found.setdefault(element.value.value, []).append(node.value)
    return found


def _data_names(
    forward: Sequence[cst.BaseStatement], model: cst.BaseExpression | None, ctx: HookContext
) -> set[str]:
    """The variables the loss function reads but does not compute (the batch ``x``, ``y``):
    JAX (or NumPy) arrays for the translated step to run, so torch's namesakes on them
    compute other numbers anywhere (s23d: ``y.std()`` after the step 0.044 relative off
    torch). Not the model's root name (nor ``self``, a called function, an import)."""
    bound = {t.value for s in forward for t in _bound_names(s)}
    root = (dotted_name(model) or "").partition(".")[0] if model is not None else ""
    return set().union(*(_read_names(s, ctx) for s in forward)) - bound - {root}


def _read_names(node: cst.CSTNode, ctx: HookContext) -> set[str]:
    """Variables read under ``node`` (``_variable_names``) but the functions it calls by
    name, imports, builtins and ``self``."""
    nodes = list(cst_walk.walk(node, _NESTED))
    called = {id(n.func) for n in nodes if isinstance(n, cst.Call)}
    names = [n for n in nodes if isinstance(n, cst.Name) and id(n) not in called]
    kept = {n.value for n in names if not ctx.qualify(n)}
    return (kept & _variable_names(node)) - set(dir(builtins)) - {"self"}


def _sources(
    stores: Sequence[tuple[cst.CSTNode, cst.BaseExpression | None]],
    names: set[str],
    ctx: HookContext,
) -> set[str]:
    """``names`` and, to a fixpoint, the variables read by a value stored into one of them
    (``t = y.max(0)[0]`` before the step: ``y`` is an array if ``t`` is)."""
    found = set(names)
    while True:
        more = {
            name
            for node, value in stores
            if value is not None and _stored_names(node) & found
            for name in _read_names(value, ctx)
        } - found
        if not more:
            return found
        found |= more


def _stored_value(node: cst.CSTNode) -> cst.BaseExpression | None:
    """The value an assignment or a ``for`` loop stores (None for other nodes)."""
    if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.NamedExpr)):
        return node.value
    if isinstance(node, (cst.For, cst.CompFor)):
        return node.iter
    return None


def _stored_names(node: cst.CSTNode) -> set[str]:
    """The names an assignment or a ``for`` loop binds (in tuples too)."""
    targets: list[cst.CSTNode] = []
    if isinstance(node, cst.Assign):
        targets = [t.target for t in node.targets]
    elif isinstance(node, (cst.AugAssign, cst.AnnAssign, cst.NamedExpr, cst.For, cst.CompFor)):
        targets = [node.target]
    return {
        n.value
        for t in targets
        for n in cst_walk.walk(t)
        if isinstance(n, cst.Name) and isinstance(t, (cst.Name, cst.Tuple, cst.List))
    }
