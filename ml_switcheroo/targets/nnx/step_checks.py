"""The NNX training step's checks and escapes on the statements around the loss: the tail after the
backward pass, zeroing of the gradients, scalers and clips, one optimizer and one backward pass,
the model's values outside the step (``_check_tail``, ``_model_zeroed``,
``_check_after_backward``...).

Split from ``training_step.py`` by ``tools/split_training_step.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.dominating import bound_names
from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.analysis.retained_graph import retained_graph_problem
from ml_switcheroo.analysis.shared_names import read_elsewhere
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.accumulation import Accumulation, accumulation, is_accumulated
from ml_switcheroo.targets.nnx.learning_rate import lr_write
from ml_switcheroo.targets.nnx.logged import logged_after_backward, records_values
from ml_switcheroo.targets.nnx.other_models import OtherModels
from ml_switcheroo.targets.nnx.step_lines import test_only_names
from ml_switcheroo.targets.nnx.step_models import _check_no_mapped_api, _same_model, _trains
from ml_switcheroo.targets.nnx.step_region import (
    _before_backward,
    _changed_in_place,
    _retains_graph,
)
from ml_switcheroo.targets.nnx.step_syntax import (
    _NESTED,
    _assigned_call,
    _bound_names,
    _callees,
    _calls_method,
    _is_assignment,
    _is_constructor,
    _is_optimizer,
    _is_scaler_call,
    _is_zero_grad,
    _lone_call,
    _one_value,
    _planned_first,
    _region_ids,
    _scope,
    _short,
    _shown,
    _statement_of,
    _target_names,
    _variable_names,
    _variables_of,
)
from ml_switcheroo.targets.optax.clipping import refused_clip


def _check_prefix_reads_no_forward_value(
    prefix: list[cst.BaseStatement], forward: list[cst.BaseStatement]
) -> None:
    """In a micro-step loop, the statements before the loss function run in each iteration:
    none may read what the loss function computes (the last iteration's value in torch, a
    name local to the loss function in NNX)."""
    bound = {t.value for s in forward for t in _target_names(s)}
    read = bound & _variables_of(prefix)
    if read:
        raise Untranslatable(
            f"`{sorted(read)[0]}`, which the loss computes, is read before it in the "
            "micro-step loop"
        )


def _accumulated_check(
    region: Region, constructor: cst.Call, ctx: HookContext
) -> tuple[cst.BaseStatement, list[cst.BaseStatement]]:
    """The region's statement holding the step: the step, or for a step every k backward
    passes the ``if`` around it, when the optimizer's tx accumulates them (optax.MultiSteps:
    the update then runs every batch and the ``if`` goes away); and the counter's increment
    when it runs between the backward pass and the ``if`` (kept after the update)."""
    if not region.gated:
        return region.anchor.statement, []
    found = accumulation(constructor, ctx)
    if not isinstance(found, Accumulation):
        reason = found or "the step runs under a condition that is not gradient accumulation"
        raise Untranslatable(reason)
    if not is_accumulated(ctx.translation_of(constructor), ctx):
        raise Untranslatable(
            "the step accumulates gradients, but the optimizer's tx is not optax.MultiSteps "
            "(a folded clipping outside the condition, or an lr write: not done with "
            "accumulation)"
        )
    if found.check is not region.statements[-1]:
        raise Untranslatable("the step's condition is not the region's last statement")
    inside = any(found.increment is s for s in region.statements)
    return found.check, [found.increment] if inside and found.increment is not None else []


def _model_zeroed(
    region: Region,
    backward_index: int,
    model: cst.BaseExpression,
    trained: cst.BaseExpression | None,
    optimizer: str,
    ctx: HookContext,
    owned: str | None = None,
) -> tuple[bool, list[cst.BaseStatement]]:
    """Whether the region zeroes the trained model's gradients before its backward pass or
    right after its step (``model.zero_grad()``, a method of the map's
    ``module_zero_grad_methods``, on the very model the optimizer is built over: its gradients
    are exactly the optimizer's), and the zero after the step kept as written (another
    model's: torch code, after the update). The zero calls the loss function drops are the
    optimizer's and the trained model's only; another object's zero before the backward
    (another model, a model holding more than the optimizer's parameters) escapes, as does a
    model's zero where the step runs under a condition (accumulation). ``owned``: the
    parameters the optimizer owns as written, when not all of ``model``'s (a submodule's)."""
    methods = ctx.semantic_map.module_zero_grad_methods
    owned = owned or code_of(model).strip()
    zeroed = False
    after_step = _trailing_module_zero(region, ctx)
    kept: list[cst.BaseStatement] = []
    for statement in [*region.statements[:backward_index], *after_step]:
        call = _lone_call(statement)
        if call is None or not _is_zero_grad(statement, ctx):
            continue
        if ctx.zero_call(statement) is not None:
            problem = _zero_function_problem(statement, ctx)
            if problem is not None:
                raise Untranslatable(problem)
            continue  # region.zeroed tells whether it zeroes the stepped optimizer each step
        receiver = call.func.value  # type: ignore[attr-defined]
        if dotted_name(receiver) == optimizer:
            continue  # the stepped optimizer's own zero_grad()
        shown = code_of(statement).strip()
        trains = call.func.attr.value in methods and _same_model(receiver, model, trained, ctx)  # type: ignore[attr-defined]
        if not trains and any(statement is s for s in after_step):
            kept.append(statement)
            continue
        if not trains:
            raise Untranslatable(
                f"`{shown}` zeroes the gradients of `{code_of(receiver).strip()}`, not exactly "
                f"those of `{optimizer}` (the parameters of `{owned}`): it is not the step's "
                "zero_grad, and the step's statements are not translated one by one"
            )
        if region.gated:
            raise Untranslatable(
                f"`{shown}` zeroes the gradients at every backward pass while the step runs "
                "under a condition: not gradient accumulation"
            )
        zeroed = True
    return zeroed, kept


def _zero_before_region(region: Region, ctx: HookContext) -> str:
    """`` (`netD.zero_grad()` runs before `noise.data.normal_(0, 1)`, ...)``: a zero_grad()
    earlier in the region's block, cut off from the step by the statement right before the
    region (one the loss function cannot take in); "" when there is none."""
    first = _planned_first(region)
    block = ctx.parent_of(first)
    body = list(getattr(block, "body", ()))
    start = next((i for i, s in enumerate(body) if s is first), 0)
    zero = next((s for s in body[:start] if _is_zero_grad(s, ctx)), None)
    if zero is None:
        return ""
    return (
        f" (`{_shown(zero)}` runs earlier in this block, but the step's statements start "
        f"after `{_shown(body[start - 1])}`, which neither binds a name the loss reads (nor "
        "changes one in place, alone on its line) nor only records values: a change the loss "
        "function cannot take in, where it would run traced)"
    )


def _trailing_module_zero(region: Region, ctx: HookContext) -> list[cst.BaseStatement]:
    """The region's last statement when it is a module's zero after the step
    (``opt.step(); model.zero_grad()``)."""
    last = region.statements[-1]
    call = _lone_call(last)
    if (
        last is region.anchor.statement
        or call is None
        or not isinstance(call.func, cst.Attribute)
        or call.func.attr.value not in ctx.semantic_map.module_zero_grad_methods
    ):
        return []
    return [last]


def _logged_before_check(
    region: Region,
    backward_index: int,
    step_statement: cst.BaseStatement,
    counted: list[cst.BaseStatement],
) -> list[cst.BaseStatement]:
    """For a step every k backward passes: the statements between the backward pass and the
    step's condition but the counter (``accumulation`` let only logging there: it runs after
    the gradient, before the update, as in torch after the backward and before the step)."""
    if step_statement is region.anchor.statement:
        return []
    between = region.statements[backward_index + 1 : -1]
    return [s for s in between if not any(s is kept for kept in counted)]


def _logged(
    region: Region,
    backward_index: int,
    step_statement: cst.BaseStatement,
    forward: list[cst.BaseStatement],
    ctx: HookContext,
) -> list[cst.BaseStatement]:
    """The statements between the backward pass and the step that only record values
    (``logged.logged_after_backward``): run after the gradient, before the update."""
    computed = {t.value for s in forward for t in _target_names(s)}
    return logged_after_backward(region, backward_index, step_statement, computed, ctx)


def _check_prefix_untouched(
    prefix: list[cst.BaseStatement], optimizer: str, ctx: HookContext
) -> None:
    """The statements kept before the loss function are emitted as written: none may use the
    optimizer, an API of the map or a value one builds (``sched.get_last_lr()``)."""
    _check_no_mapped_api(prefix, optimizer, ctx)
    for node in (n for s in prefix for n in cst_walk.walk(s)):
        value = _one_value(node, ctx) if isinstance(node, cst.Name) else None
        if isinstance(value, cst.Call) and any(
            q in ctx.semantic_map.apis for q in ctx.qualify(value.func)
        ):
            raise Untranslatable(
                f"`{node.value}` (built by an API of the map) is used by a statement of the "
                "step before the loss; the step's statements are not translated one by one"
            )


def _check_no_torch_only_model_use(
    region: Region, model: cst.BaseExpression, ctx: HookContext
) -> None:
    """The step's scope reads no attribute of the model (or of a module of it) that an NNX
    module lacks (the map's ``torch_only_module_names``: ``model.parameters()``,
    ``model.out.weight``) but in a call of an API of the map (the optimizer's constructor, a
    clip), which the translation rewrites: the NNX program would raise there."""
    names = ctx.semantic_map.torch_only_module_names
    text = dotted_name(model)
    if not names or text is None:
        return
    scope = _scope(region)
    if _defines_method(scope, "forward", ctx):  # the port keeps a `forward` of the file's class
        names = names - {"forward"}
    roots = scope.body.body if isinstance(scope, cst.FunctionDef) else [scope]  # type: ignore[attr-defined]
    nodes = [n for r in roots for n in cst_walk.walk(r, _NESTED)]
    apis = ctx.semantic_map.apis
    mapped = {
        id(inner)
        for call in nodes
        if isinstance(call, cst.Call) and any(q in apis for q in ctx.qualify(call.func))
        for inner in cst_walk.walk(call)
    }
    reads = [n for n in nodes if isinstance(n, cst.Attribute) and id(n) not in mapped]
    for node in (n for n in reads if n.attr.value in names):
        owner = dotted_name(node.value) or ""
        if owner == text or owner.startswith(f"{text}."):
            raise Untranslatable(
                f"`{code_of(node).strip()}` reads the model as a torch module: the NNX model "
                f"has no `{node.attr.value}` (the translation would raise there); port this "
                "use by hand (`nnx.state(model, nnx.Param)` holds the parameters)"
            )
    _check_torch_only_getattr(nodes, mapped, names, text, ctx)
    _check_argument_free_methods(nodes, text, ctx)
    _check_module_moves(nodes, region, text, ctx)
    _check_mode_attribute_stores(scope, ctx)
    _check_mode_calls_in_file(scope, text, ctx)
    _check_mode_set_elsewhere(ctx)


def _check_torch_only_getattr(
    nodes: list[cst.CSTNode],
    mapped: set[int],
    names: frozenset[str],
    model: str,
    ctx: HookContext,
) -> None:
    """``getattr(model, "forward")`` (a ``getter_functions`` call with a string naming one of
    the map's ``torch_only_module_names``) on the model or a module of it raises in the NNX
    program as ``model.forward`` does (probe s41a M2)."""
    getters = ctx.semantic_map.parameters.getter_functions
    for call in nodes:
        if not isinstance(call, cst.Call) or id(call) in mapped or len(call.args) < 2:
            continue
        written = dotted_name(call.func)
        if not (
            any(q in getters for q in ctx.qualify(call.func))
            or any(written == g.removeprefix("builtins.") for g in getters)  # a builtin
        ):
            continue
        attribute = call.args[1].value
        name = attribute.evaluated_value if isinstance(attribute, cst.SimpleString) else None
        owner = dotted_name(call.args[0].value) or ""
        if name in names and (owner == model or owner.startswith(f"{model}.")):
            raise Untranslatable(
                f"`{code_of(call).strip()}` reads the model as a torch module: the NNX model "
                f"has no `{name}` (the translation would raise there); port this use by hand"
            )


def _check_module_moves(
    nodes: list[cst.CSTNode], region: Region, model: str, ctx: HookContext
) -> None:
    """A method of the map's ``module_moves`` (``model.to(dev)``, ``model.cuda()``) called on
    the model or a module of it inside a loop holding the step (``model = model.to(dev)`` in
    the epoch loop): an nnx.Module has none (the translation raised AttributeError there,
    s36), so the step escapes naming the call."""
    methods = ctx.semantic_map.module_moves
    if not methods:
        return
    first = _planned_first(region)
    loops = [
        n
        for n in nodes
        if isinstance(n, (cst.For, cst.While)) and any(inner is first for inner in cst_walk.walk(n))
    ]
    for call in (c for loop in loops for c in cst_walk.walk(loop.body, _NESTED)):
        if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
            continue
        if call.func.attr.value not in methods:
            continue
        owner = dotted_name(call.func.value) or ""
        if owner == model or owner.startswith(f"{model}."):
            raise Untranslatable(
                f"`{code_of(call).strip()}` in the loop of the step moves or casts the model "
                f"as a torch module: an NNX module has no `{call.func.attr.value}` (the "
                "translation would raise there); JAX keeps the NNX model's arrays on their "
                "device: delete the call (a dtype cast changes the numbers: port it with the "
                "model)"
            )


def _check_mode_attribute_stores(scope: cst.CSTNode, ctx: HookContext) -> None:
    """A store of a torch module's mode flag (the map's ``module_mode_attributes``:
    ``training``) on any object, or ``setattr`` naming it, anywhere in the step's file (a
    script's model is set up before its loop, the step's scope): an NNX module has no such
    flag, takes the store and keeps its mode (probe s36 G3: ``model.norm.training = False``
    left the translated BatchNorm on the batch's statistics, 0.28 relative off)."""
    flags = ctx.semantic_map.module_mode_attributes
    if not flags:
        return
    root = ctx.root_of(scope)
    for node in cst_walk.walk(root):
        shown = None
        if isinstance(node, (cst.AssignTarget, cst.AugAssign, cst.AnnAssign)):
            target = node.target
            named = isinstance(target, cst.Attribute) and target.attr.value in flags
            # probe s37 M1: `m.__dict__["training"] = ...`, `vars(m)["training"] = ...`
            if named or _namespace_item(target, flags):
                shown = code_of(target).strip()
        elif (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Name)
            and node.func.value == "setattr"
            and len(node.args) >= 2
            and _names_flag(node.args[1].value, flags)
        ) or (isinstance(node, cst.Call) and _sets_flag_otherwise(node, flags)):
            shown = code_of(node).strip()
        if shown is not None:
            raise Untranslatable(
                f"`{shown}` sets a torch module's mode flag: an NNX module has none (its mode "
                "is `use_running_average`/`deterministic`), so it would keep its mode; write "
                "`module.eval()` / `module.train()`"
            )


def _names_flag(node: cst.BaseExpression, flags: frozenset[str]) -> bool:
    return isinstance(node, cst.SimpleString) and node.evaluated_value in flags


def _namespace(node: cst.BaseExpression) -> bool:
    """``x.__dict__`` or ``vars(x)``: an object's attributes as a dict."""
    if isinstance(node, cst.Attribute):
        return node.attr.value == "__dict__"
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Name)
        and node.func.value == "vars"
        and len(node.args) == 1
    )


def _namespace_item(target: cst.BaseExpression, flags: frozenset[str]) -> bool:
    """``x.__dict__["training"]`` / ``vars(x)["training"]`` (a torch module keeps its flag in
    its ``__dict__``: storing there sets it)."""
    if not isinstance(target, cst.Subscript) or not _namespace(target.value):
        return False
    return any(
        isinstance(element.slice, cst.Index) and _names_flag(element.slice.value, flags)
        for element in target.slice
    )


def _sets_flag_otherwise(call: cst.Call, flags: frozenset[str]) -> bool:
    """Probe s37 M1: a call that sets a mode flag without an attribute store or ``setattr``:
    ``object.__setattr__(m, "training", False)`` (any ``__setattr__``, the flag named by any
    argument), ``m.__dict__.update(training=False)`` / ``vars(m).update({"training": ...})``."""
    func = call.func
    if not isinstance(func, cst.Attribute):
        return False
    if func.attr.value == "__setattr__":
        return any(_names_flag(arg.value, flags) for arg in call.args)
    if func.attr.value in ("update", "setdefault", "__setitem__") and _namespace(func.value):
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value in flags:
                return True
            if _names_flag(arg.value, flags):
                return True
            if isinstance(arg.value, cst.Dict) and any(
                isinstance(e, cst.DictElement) and _names_flag(e.key, flags)
                for e in arg.value.elements
            ):
                return True
            if arg.star or not isinstance(arg.value, cst.Dict | cst.SimpleString):
                return True  # a dict built elsewhere: it may hold the flag
    return False


def _check_mode_calls_in_file(scope: cst.CSTNode, model: str, ctx: HookContext) -> None:
    """Probe s37 M1: ``_check_argument_free_methods`` over the step's whole file (a script
    sets its model up before the loop, the step's scope: ``model.norm.train(mode=False)``
    there left the translated BatchNorm on the batch's statistics, 0.28 relative off torch):
    a call of one of those methods with an argument on the model, a module of it, a name
    bound to one of those anywhere in the file (``bn = model.norm``), or, on any object, with
    torch's keyword ``mode=`` or a literal ``True``/``False`` (no nnx method takes them)."""
    methods = ctx.semantic_map.argument_free_module_methods
    if not methods:
        return
    root = ctx.root_of(scope)
    nodes = list(cst_walk.walk(root))
    aliases = {model}
    for node in nodes:
        if isinstance(node, cst.Assign) and _model_rooted(node.value, model):
            for target in node.targets:
                if isinstance(target.target, cst.Name):
                    aliases.add(target.target.value)
    unnamed = _mode_method_unnamed(nodes, methods, aliases)
    if unnamed is not None:
        shown = code_of(unnamed).strip()
        raise Untranslatable(
            f"`{shown}` reaches a module's `train`/`eval` without calling it by name (a "
            "`getattr` of it or by a computed name, or the bound method taken as a value): "
            "torch's `Module.train(mode)` sets evaluation mode when `mode` is false, while "
            "`nnx.Module.train(**attributes)` always sets training mode; call "
            "`module.train()` or `module.eval()` by name"
        )
    for call in (n for n in nodes if isinstance(n, cst.Call) and n.args):
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in methods:
            continue
        owner = dotted_name(func.value) or ""
        torch_form = any(
            (arg.keyword is not None and arg.keyword.value == "mode")
            or (isinstance(arg.value, cst.Name) and arg.value.value in ("True", "False"))
            for arg in call.args
        )
        if torch_form or any(owner == a or owner.startswith(f"{a}.") for a in aliases):
            _check_argument_free_methods([call], owner, ctx)


def _mode_method_unnamed(
    nodes: list[cst.CSTNode], methods: frozenset[str], aliases: set[str]
) -> cst.CSTNode | None:
    """The first ``getattr(m, "train")`` (one of ``methods``, or a computed name) or
    ``m.train`` read as a value instead of called, ``m`` the model, a module of it or a name
    bound to one (``aliases``; probe s40 p40b: ``getattr(model, "train")(mode=False)`` left the
    NNX model in training mode), or None."""

    def on_model(value: cst.BaseExpression) -> bool:
        return any(_model_rooted(value, alias) for alias in aliases)

    called = {id(n.func) for n in nodes if isinstance(n, cst.Call)}
    for node in nodes:
        if (
            isinstance(node, cst.Attribute)
            and node.attr.value in methods
            and id(node) not in called
            and on_model(node.value)
        ):
            return node
        if (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Name)
            and node.func.value == "getattr"
            and len(node.args) >= 2
            and on_model(node.args[0].value)
        ):
            name = node.args[1].value
            if not isinstance(name, cst.SimpleString) or name.evaluated_value in methods:
                return node
    return None


def _check_mode_set_elsewhere(ctx: HookContext) -> None:
    """Probe s37 M2: another file of the repository sets a module's mode in a form an NNX
    module takes quietly (``model.norm.train(mode=False)``, ``model.norm.training = False`` in
    ``helpers.freeze_bn``, called with the step's model: 0.28 relative off torch); which model
    it is handed is not known, so any such place escapes the step, naming it."""
    flags = ctx.semantic_map.module_mode_attributes
    methods = ctx.semantic_map.argument_free_module_methods
    if not flags and not methods:
        return
    place = ctx.mode_set_elsewhere(flags, methods)
    if place is not None:
        raise Untranslatable(
            f"{place} sets a torch module's mode (`training = ...`, `train(mode=...)`): an NNX "
            "module has no `training` flag and takes `train(mode=...)` as one more attribute, "
            "so it would keep its mode; write `module.eval()` / `module.train()` there"
        )


def _model_rooted(value: cst.BaseExpression, model: str) -> bool:
    text = dotted_name(value)
    return text is not None and (text == model or text.startswith(f"{model}."))


def _check_argument_free_methods(nodes: list[cst.CSTNode], model: str, ctx: HookContext) -> None:
    """A method of the map's ``argument_free_module_methods`` (``train``, ``eval``) called
    with an argument on the model or a module of it: torch's ``model.train(False)`` sets
    evaluation mode, nnx's ``train(**attributes)`` always sets training mode (a keyword is
    one more attribute, a positional flag raises TypeError), so the step escapes (probe s35N
    F2/F3: 0.28 relative off torch with a BatchNorm)."""
    methods = ctx.semantic_map.argument_free_module_methods
    for call in (n for n in nodes if isinstance(n, cst.Call) and n.args):
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in methods:
            continue
        owner = dotted_name(func.value) or ""
        if owner == model or owner.startswith(f"{model}."):
            shown = code_of(call).strip()
            raise Untranslatable(
                f"`{shown}` passes an argument to `{func.attr.value}`: torch's "
                "`Module.train(mode)` sets evaluation mode when `mode` is false, while "
                "`nnx.Module.train(**attributes)` always sets training mode (a keyword is one "
                "more attribute to set, a positional flag raises TypeError); write "
                f"`{owner}.train()` or `{owner}.eval()` (under an `if` on the flag)"
            )


def _with_dropped_comments(
    statements: list[cst.BaseStatement],
    region: Region,
    prefix: list[cst.BaseStatement],
    forward: list[cst.BaseStatement],
) -> list[cst.BaseStatement]:
    """The comments of the region's dropped statements (zero_grad, backward, step...) kept:
    those before the loss function's body above it, the others above the gradient. The lines
    above the region's first statement are left out: the engine puts them above the output."""
    kept = {id(s) for s in (*prefix, *forward)}
    before: list[cst.EmptyLine] = []
    after: list[cst.EmptyLine] = []
    seen_body = False
    for statement in region.statements:
        seen_body = seen_body or statement is forward[0]
        if id(statement) in kept:
            continue
        lines = _comment_lines(statement, leading=statement is not region.statements[0])
        (after if seen_body else before).extend(lines)
    index = len(prefix)  # the loss function
    statements[index] = _above(statements[index], before)
    statements[index + 1] = _above(statements[index + 1], after)
    first, above_region = statements[0], list(region.statements[0].leading_lines)  # type: ignore[attr-defined]
    lines = list(first.leading_lines)  # type: ignore[attr-defined]
    head = lines[: len(above_region)]  # (the map's templates written: equal lines, new nodes)
    if (
        above_region
        and len(head) == len(above_region)
        and all(a.deep_equals(b) for a, b in zip(head, above_region, strict=True))
    ):
        statements[0] = first.with_changes(leading_lines=lines[len(above_region) :])
    return statements


def _above(statement: cst.BaseStatement, lines: list[cst.EmptyLine]) -> cst.BaseStatement:
    return statement.with_changes(leading_lines=[*statement.leading_lines, *lines])  # type: ignore[attr-defined]


def _comment_lines(statement: cst.BaseStatement, leading: bool) -> list[cst.EmptyLine]:
    """A dropped statement's comment lines (``leading``: those above it too), its end-of-line
    comment as a line of its own."""
    above = statement.leading_lines if leading else ()  # type: ignore[attr-defined]
    lines = [line for line in above if line.comment is not None]
    trailing = getattr(statement, "trailing_whitespace", None)
    if trailing is not None and trailing.comment is not None:
        lines.append(cst.EmptyLine(comment=trailing.comment))
    return lines


def _check_backward(
    region: Region,
    ctx: HookContext,
    forward: list[cst.BaseStatement] | None = None,
    trained: cst.BaseExpression | None = None,
) -> None:
    """``loss.backward()`` or ``scaler.scale(loss).backward()`` with no argument (inputs, a
    gradient escape; ``retain_graph=True`` when ``retained_graph_problem`` proves no later
    backward pass walks the graph of ``forward`` again); ``loss`` a plain name."""
    backward = region.backward
    assert backward is not None
    _check_no_scaling_in_loss(region, forward or [], ctx)
    call = backward.call
    if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "backward"):
        raise Untranslatable(f"`{code_of(call).strip()}` is not `loss.backward()`")
    if (
        call.args
        and call.args[0].keyword is None
        and region.loss != code_of(call.func.value).strip()
    ):
        raise Untranslatable(
            f"`{code_of(call).strip()}` is a framework's backward (accelerate, Fabric, "
            "Lightning): the framework owns the step; port its training loop first"
        )
    receiver = call.func.value
    scaled = region.scaler is not None and _is_scaler_call(
        receiver, region, ctx.semantic_map.scaler_methods.scale
    )
    if call.args and not isinstance(receiver, cst.Name) and not scaled:
        raise Untranslatable(
            f"`{code_of(call).strip()}`: a backward pass with arguments of an expression is not "
            "translated (`(expression).backward()` without arguments is: the loss function "
            "returns the expression)"
        )
    if call.args:
        shown = ", ".join(code_of(a).strip() for a in call.args)
        retained = len(call.args) == 1 and _retains_graph(call.args[0])
        problem = _retained_graph_problem(region, forward, trained, ctx) if retained else None
        if not retained or problem is not None:
            raise Untranslatable(
                f"`backward({shown})`: retain_graph, inputs= and a gradient for a non-scalar "
                "loss have no nnx.value_and_grad equivalent"
                + (f" (retain_graph=True: {problem})" if problem else "")
            )
    loss = call.func.value
    if region.scaler is not None and _is_scaler_call(
        loss, region, ctx.semantic_map.scaler_methods.scale
    ):
        loss = loss.args[0].value if len(loss.args) == 1 else loss  # type: ignore[attr-defined]
    if not (isinstance(loss, cst.Name) and loss.value == region.loss):
        raise Untranslatable(f"the loss `{code_of(loss).strip()}` is not a plain name")


def _check_no_scaling_in_loss(
    region: Region, forward: list[cst.BaseStatement], ctx: HookContext
) -> None:
    """``scaled = scaler.scale(loss)`` in the forward pass (then ``scaled.backward()``): the
    loss function would call the GradScaler on a traced JAX array (TypeError; s36 probe) and
    differentiate the scaled loss. Only ``scaler.scale(loss).backward()`` drops the scaler; a
    call of the scaler's ``scale`` method (the map's ``scaler_methods``) on the step's scaler,
    or on a name bound to a constructor of the map returning the type whose ``step`` is a
    scaler step, escapes."""
    scale = ctx.semantic_map.scaler_methods.scale
    if scale is None:
        return
    for node in (n for s in forward for n in cst_walk.walk(s)):
        if not (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == scale
        ):
            continue
        receiver = node.func.value
        if dotted_name(receiver) != region.scaler and not _is_loss_scaler(receiver, ctx):
            continue
        raise Untranslatable(
            f"`{code_of(node).strip()}` runs in the forward pass (the loss function): the "
            "GradScaler would scale a traced JAX array (TypeError) and the scaled loss would be "
            f"differentiated; write `{code_of(node).strip()}.backward()` (the scaler is then "
            "dropped) or drop the scaler"
        )


def _is_loss_scaler(receiver: cst.BaseExpression, ctx: HookContext) -> bool:
    """``receiver`` holds one value, a call of a map API returning a type whose ``step`` is
    the map's scaler step (``torch.amp.GradScaler("cuda")``)."""
    value = _one_value(receiver, ctx)
    if not isinstance(value, cst.Call):
        return False
    apis = ctx.semantic_map.apis
    for name in ctx.qualify(value.func):
        entry = apis.get(name)
        returns = entry.returns if entry is not None else None
        stepped = apis.get(f"{returns}.step") if returns else None
        if stepped is not None and stepped.role == roles.SCALER_STEP:
            return True
    return False


def _retained_graph_problem(
    region: Region,
    forward: list[cst.BaseStatement] | None,
    trained: cst.BaseExpression | None,
    ctx: HookContext,
) -> str | None:
    """Why the graph a step's last ``backward(retain_graph=True)`` keeps may be walked again
    (``analysis/retained_graph.py``; None: it is not)."""
    if not forward or region.scaler is not None or region.gated:
        return "with a GradScaler, gradient accumulation or no forward pass: not translated"
    scope = _scope(region)
    module = ctx.root_of(scope)
    if not isinstance(module, cst.Module):
        return "the step's module is not known"
    spec = ctx.semantic_map
    return retained_graph_problem(
        forward,
        scope,
        module,
        ctx.parent_of,
        lambda node: _one_value(node, ctx),
        ctx.qualify,
        spec.graph_free_reads,
        spec.graph_free_modules,
        spec.graph_free_containers,
        region.backward.statement,  # type: ignore[union-attr]
        trained,
    )


def _check_not_under_with(
    region: Region,
    forward: list[cst.BaseStatement],
    trained: cst.BaseExpression,
    ctx: HookContext,
) -> None:
    """Escape naming the ``with`` when the step calls the trained model only under one
    (build-nanogpt's micro step: ``with torch.autocast(...): logits, loss = model(x, y)``):
    the loss function would compute the forward pass without it."""
    model = code_of(trained).strip()
    if any(_trains(callee, trained, ctx) for callee in _callees(forward)):
        return
    for statement in region.statements:
        if not isinstance(statement, cst.With):
            continue
        calls = [n for n in cst_walk.walk(statement.body) if isinstance(n, cst.Call)]
        if any(dotted_name(call.func) == model for call in calls):
            items = ", ".join(code_of(item).strip().rstrip(",") for item in statement.items)
            raise Untranslatable(
                f"the forward pass calls the trained model `{model}` under `with {items}:`, "
                "which the NNX loss function does not carry (a context manager such as "
                "torch.autocast changes how torch computes the forward pass, its dtype: port "
                "it by hand)"
            )


def _check_tail(
    tail: list[cst.BaseStatement],
    forward: list[cst.BaseStatement],
    region: Region,
    model: cst.BaseExpression,
    optimizer: str,
    ctx: HookContext,
    snapshots: Mapping[int, list[str]] = MappingProxyType({}),
) -> None:
    """The statements moved after the gradient: they must not read the model (its parameters
    change at the update), run a backward pass or use the optimizer or an API of the map, nor
    use a name a later statement of the loss reads (it may mutate it); before a statement of
    the loss function (``forward``), neither call nor store into an object (a global or an
    alias the loss reads may change). A statement run on ``snapshots`` of names the loss reads
    after it (``_snapshots``) reads the snapshots, and calls only their methods."""
    root = (dotted_name(model) or "").split(".")[0]
    backward = ctx.semantic_map.backward_methods
    computed = {t.value for s in forward for t in _target_names(s)}
    for statement in tail:
        shown = code_of(statement).strip()
        written = lr_write(statement, ctx)  # the optimizer's stored lr, read at the update
        used = (
            _variables_of([statement])
            if written is None
            else {name for read in written[1] for name in _variable_names(read)}
        )
        position = next(i for i, s in enumerate(region.statements) if s is statement)
        if root in used:
            first = next(
                (i for i, s in enumerate(region.statements) if any(s is f for f in forward)),
                position,
            )
            where = (
                "before the forward pass (the step would run it after the gradient)"
                if position < first
                else "between the loss and the backward"
            )
            raise Untranslatable(f"`{shown}` uses the model {where}")
        if any(_calls_method(statement, method) for method in backward):
            raise Untranslatable(f"`{shown}` runs another backward pass")
        if isinstance(statement, cst.If) and not records_values(statement, computed, ctx):
            raise Untranslatable(
                f"`{_short(shown)}` runs where torch runs the backward pass and is not only "
                "logging (an `if` moved after the gradient: a test and statements that read "
                "values, calling builtins, the map's recording functions and methods of the "
                "values the loss computes only)"
            )
        later = [s for s in region.statements[position + 1 :] if not any(s is t for t in tail)]
        snapshot = set(snapshots.get(id(statement), ()))
        read_later = (used - snapshot) & _variables_of(_before_backward(later, region))
        if read_later:
            raise Untranslatable(
                _changed_in_place(statement, read_later, ctx)
                or f"`{shown}` uses a name the loss reads after it (it would run after the loss "
                "function)"
            )
        crosses = any(s is f for s in region.statements[position + 1 :] for f in forward)
        if crosses and not snapshot and written is None and _may_change_other_values(statement):
            raise Untranslatable(
                f"`{shown}` may change what the loss reads after it, through a call or a "
                "store into an object (it would run after the loss function)"
            )
        shared = read_elsewhere(
            _bound_names(statement), ctx.parent_of, ctx.variable, ctx.global_shared
        )
        if crosses and shared is not None:
            raise Untranslatable(
                f"`{shown}` rebinds `{shared.value}`, which code of another scope may read (a "
                "global the model's forward reads), before the loss computes it (it would run "
                "after the loss function)"
            )
    _check_prefix_untouched([r for s in tail for r in _lr_reads_or(s, ctx)], optimizer, ctx)


def _lr_reads_or(statement: cst.BaseStatement, ctx: HookContext) -> list[cst.BaseStatement]:
    """For a learning-rate write through ``param_groups``, lines holding only what it reads
    (the user's nodes: those are checked, not the optimizer it writes to); else the statement."""
    written = lr_write(statement, ctx)
    if written is None:
        return [statement]
    return [cst.SimpleStatementLine([cst.Expr(read)]) for read in written[1]]


def _may_change_other_values(statement: cst.BaseStatement) -> bool:
    """Whether ``statement`` may change a value other than the names it binds: it calls
    something, stores through an attribute or a subscript, deletes, or updates in place."""
    if not _is_assignment(statement):
        return True
    return any(isinstance(n, (cst.Call, cst.AugAssign)) for n in cst_walk.walk(statement))


def _check_after_backward(
    region: Region,
    backward_index: int,
    model: str,
    optimizer: str,
    step_statement: cst.BaseStatement,
    kept: list[cst.BaseStatement],
    ctx: HookContext,
) -> None:
    """Between backward and step: only the GradScaler's ``unscale_(opt)``, clip calls folded
    into the chain (a zero_grad there would zero the gradients the step uses) and the
    statements ``kept`` (moved after the gradient: ``logged.py``, an accumulation's counter
    and logging); after the step only the GradScaler's ``update()``."""
    methods = ctx.semantic_map.scaler_methods
    if region.scaler is not None and region.anchor.role != roles.SCALER_STEP:
        between = region.statements[backward_index + 1 :]
        if not any(
            _is_scaler_call(call := _lone_call(s), region, methods.unscale)
            and [code_of(a.value).strip() for a in call.args] == [optimizer]  # type: ignore[union-attr]
            for s in between
        ):
            raise Untranslatable(
                f"`{optimizer}.step()` is called directly after `{region.scaler}.scale(...)"
                f".backward()` with no `{region.scaler}.{methods.unscale}({optimizer})` before "
                "it: torch's step applies the gradients of the scaled loss (times the scale), "
                "while the translation drops the scaler and applies the true ones (s37)"
            )
    last = len(region.statements) - 1 - len(_trailing_module_zero(region, ctx))
    if region.scaler is not None and _is_scaler_call(
        _lone_call(region.statements[last]), region, methods.update
    ):
        last -= 1
    if region.statements[last] is not step_statement:
        holder = region.statements[last]
        if isinstance(holder, cst.With) and any(n is step_statement for n in cst_walk.walk(holder)):
            items = ", ".join(code_of(i).strip().rstrip(",") for i in holder.items)
            raise Untranslatable(
                f"the step runs under `with {items}:`, which the NNX step does not render "
                f"(write `{code_of(step_statement).strip()}` outside it, if that context "
                "changes nothing there: torch's step() itself runs without autograd)"
            )
        raise Untranslatable("a statement after the step belongs to it")
    for statement in region.statements[backward_index + 1 : last]:
        if any(statement is k for k in kept):
            continue  # moved after the gradient, or the accumulation's counter
        if _folded_or_unscale(statement, region, model, optimizer, ctx):
            continue
        if any(statement is guard for guard in region.true_guards) and all(
            _lone_call(inner) is not None
            and _folded_or_unscale(inner, region, model, optimizer, ctx)
            for inner in statement.body.body  # type: ignore[attr-defined]
        ):
            continue  # `if grad_clip != 0.0:` always true (a module constant): the same calls
        raise Untranslatable(
            f"`{code_of(statement).strip()}` runs between backward and step (gradients read or "
            "edited by hand)"
        )


def _folded_or_unscale(
    statement: cst.BaseStatement, region: Region, model: str, optimizer: str, ctx: HookContext
) -> bool:
    """A clip folded into the chain, or the GradScaler's ``unscale_(opt)``."""
    if _is_folded_clip(statement, region, model, ctx):
        return True
    call = _lone_call(statement)
    return (
        region.scaler is not None
        and _is_scaler_call(call, region, ctx.semantic_map.scaler_methods.unscale)
        and [code_of(a.value).strip() for a in call.args] == [optimizer]  # type: ignore[union-attr]
    )


def _check_one_optimizer(
    region: Region, optimizer: str, ctx: HookContext, others: OtherModels | None = None
) -> None:
    """No other optimizer is stepped where this one is (one backward for several), unless
    torch discards the gradients this backward leaves in its model (``others``: a GAN's
    other step, ``analysis/other_models.discarded``)."""
    for node in cst_walk.walk(_scope(region)):
        if not (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "step"
        ):
            continue
        receiver = node.func.value
        if dotted_name(receiver) in (None, optimizer):
            continue
        value = _one_value(receiver, ctx)
        if isinstance(value, cst.Call) and _is_constructor(value, ctx):
            name = dotted_name(receiver) or ""
            why = others.optimizer_discards(value, name) if others is not None else ""
            if why is None:
                continue  # this backward's gradients in its model are zeroed before it steps
            raise Untranslatable(
                f"`{dotted_name(receiver)}` is stepped here too: one backward feeding several "
                "optimizers" + (f" ({why})" if why else "")
            )


def _check_one_backward(
    region: Region, ctx: HookContext, others: OtherModels | None = None, optimizer: str = ""
) -> None:
    """No other backward pass where this step is (its gradients would add up in torch),
    unless torch zeroes what it leaves in the trained model before this optimizer steps
    (``others``: a GAN's other step). The region as planned counts too: its ``(a +
    b).backward()`` is ``loss.backward()`` in ``region`` (``step_lines``)."""
    methods = ctx.semantic_map.backward_methods
    inside = _region_ids(region)
    for node in cst_walk.walk(_scope(region)):
        if (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in methods
            and id(node) not in inside
        ):
            statement = _statement_of(node, ctx)
            why = (
                others.backward_discarded(statement, optimizer)
                if others is not None and statement is not None
                else ""
            )
            if why is None:
                continue  # what it leaves in the trained model is zeroed before the step
            raise Untranslatable(
                f"another backward pass (`{code_of(node).strip()}`) runs where this step is: "
                "torch adds up the gradients of both" + (f" ({why})" if why else "")
            )


def _check_others_plain(
    others: OtherModels, forward: list[cst.BaseStatement], region: Region, micro: bool
) -> None:
    """Another model in the loss: only for one backward pass and one update per step."""
    if not (others.called or others.detached):
        return
    if micro or region.gated or region.scaler is not None:
        raise Untranslatable(
            "the loss reaches another model, in a micro-step loop, gradient accumulation or "
            "with a GradScaler: not translated"
        )


def _check_no_model_value_outside(
    region: Region, forward: list[cst.BaseStatement], model: cst.BaseExpression, ctx: HookContext
) -> None:
    """A name the loss reads but does not compute must not be computed from the model (or
    by any call through ``self``) elsewhere: its gradient would be lost (and, read once
    before the loop, it would keep the parameters of the first update). A binding of the
    model's own name (``model = DDP(model)``) is not such a name: the model is the loss
    function's parameter, proven the optimizer's (``_model_in_step``)."""
    bound = {t.value for s in forward for t in _target_names(s)}
    free = _variables_of(forward) - bound - _rebound_each_iteration(region)
    free -= test_only_names(forward)  # (read as a truth value: never differentiated)
    inside = _region_ids(region)
    root = dotted_name(model).split(".")[0]  # type: ignore[union-attr]
    for node in cst_walk.walk(_scope(region)):
        if id(node) in inside or not isinstance(node, cst.SimpleStatementLine):
            continue
        names = {t.value for t in _target_names(node)} & free
        if {t.value for t in _target_names(node)} == {root}:
            continue  # the model's own binding (``model = DDP(model)``): the identity proof's
        if names and _under_gradient_free_context(node, ctx):
            continue  # `with torch.no_grad(): target = model(x)`: torch keeps no gradient either
        if names and root in _variables_of([node]):
            raise Untranslatable(
                f"`{sorted(names)[0]}`, which the loss reads, is computed from the model "
                "outside the step (its gradient would be lost)"
            )
    for node in cst_walk.walk(_scope(region)):  # `if (x := model(x)) is None:` (probe s41a F3)
        if id(node) in inside or not isinstance(node, cst.NamedExpr):
            continue
        target = node.target.value if isinstance(node.target, cst.Name) else None
        if (
            target in free
            and root in _variable_names(node.value)
            and not _under_gradient_free_context(node, ctx)
        ):
            raise Untranslatable(
                f"`{target}`, which the loss reads, is computed from the model outside "
                f"the step (`{code_of(node).strip()}`: its gradient would be lost)"
            )


def _under_gradient_free_context(node: cst.CSTNode, ctx: HookContext) -> bool:
    """``node`` runs in the body of a ``with`` of the map's ``gradient_free_contexts``
    (``torch.no_grad()``, ``torch.inference_mode()``) or ``torch.set_grad_enabled(False)``,
    inside the same function: what it computes from the model carries no gradient in torch
    (probe s41a R6: a target computed so before the forward pass made the step escape)."""
    contexts = ctx.semantic_map.parameters.gradient_free_contexts
    parent = ctx.parent_of(node)
    while parent is not None and not isinstance(parent, (cst.FunctionDef, cst.Module)):
        if isinstance(parent, cst.With):
            for item in parent.items:
                call = item.item
                func = call.func if isinstance(call, cst.Call) else call
                names = set(ctx.qualify(func))
                if names & contexts and isinstance(call, cst.Call) and not call.args:
                    return True
                if "torch.set_grad_enabled" in names and isinstance(call, cst.Call):
                    flag = call.args[0].value if len(call.args) == 1 else None
                    if isinstance(flag, cst.Name) and flag.value == "False":
                        return True
        parent = ctx.parent_of(parent)
    return False


def _rebound_each_iteration(region: Region) -> set[str]:
    """Names the target of the innermost ``for`` around the step binds (``for x, _ in
    loader:``) and nothing else in that loop's body binds outside the region: each iteration
    binds them anew before the region reads them, so a binding elsewhere in the function
    (``x = model.sample(16)`` after the loop) never reaches the loss (minDiffusion)."""
    function = region.anchor.function
    controls = region.anchor.controls
    start = controls.index(function) + 1 if function is not None else 0
    loops = [c for c in controls[start:] if isinstance(c, cst.For)]
    if not loops or loops[-1].asynchronous is not None:
        return set()
    loop = loops[-1]
    names = set(bound_names(loop))
    inside = _region_ids(region)
    for node in cst_walk.walk(loop.body):
        if id(node) in inside:
            continue
        if isinstance(node, (cst.Global, cst.Nonlocal, cst.FunctionDef, cst.ClassDef)):
            return set()  # a scope of its own, or a name bound from one: not followed
        names -= set(bound_names(node))  # `except ... as x` too: its AsName is walked
    return names


def _check_no_model_value_reaching(
    forward: list[cst.BaseStatement], model: cst.BaseExpression, ctx: HookContext
) -> None:
    """The values reaching a name the loss reads but does not compute (through the flow: a
    module-level ``batch = {"x": model.weight}`` before the loop the step is in, a global a
    function reads) must not read the model (the last check: other reasons say more).
    Followed through the names those values read (probe s35N F1): a statement kept before the
    loss function (``_split_prefix``, it does not name the model) such as ``h = enc(x)`` with
    ``enc = model.hidden``, ``layers[0](x)`` with ``layers = [model.hidden, ...]``, or a
    parameter every caller passes ``model.hidden``, runs outside ``nnx.value_and_grad``:
    torch differentiates through it, the translation would lose that gradient (0.53 relative
    off torch over 36 updates)."""
    bound = {t.value for s in forward for t in _target_names(s)}
    root = (dotted_name(model) or "").split(".")[0]
    tested = test_only_names(forward)  # (read as a truth value: never differentiated)
    for name in (n for s in forward for n in cst_walk.walk(s) if isinstance(n, cst.Name)):
        if name.value in bound | tested or name.value == root or ctx.variable(name) is None:
            continue
        for value in ctx.origins(name) or []:
            if value is name or _under_gradient_free_context(value, ctx):
                continue  # (computed under `torch.no_grad()`: no gradient in torch either)
            if root in _variable_names(value):
                raise Untranslatable(
                    f"`{name.value}`, which the loss reads, is computed from the model "
                    f"outside the step (`{_short(code_of(value))}`: its gradient would be lost)"
                )
            through = _model_value_through(value, root, ctx)
            if through is not None:
                raise Untranslatable(
                    f"`{name.value}`, which the loss reads, is computed outside the loss "
                    f"function (`{_short(code_of(value))}`) from the model (`{through[0]}` is "
                    f"`{_short(code_of(through[1]))}`): torch differentiates through it, the "
                    "translation would lose its gradient"
                )


_REACH_LIMIT = 200  # names followed at most (a value reaching through more escapes nothing)


def _model_value_through(
    value: cst.BaseExpression, root: str, ctx: HookContext
) -> tuple[str, cst.BaseExpression] | None:
    """A name ``value`` reads (or one the values reaching it read, and so on) to which a value
    reading the model ``root`` reaches: that name and that value; None when none is found."""
    names: set[int] = set()
    values = {id(value)}
    pending = [value]
    while pending and len(names) < _REACH_LIMIT:
        current = pending.pop()
        for name in _read_names(current):
            if id(name) in names or name.value == root or ctx.variable(name) is None:
                continue
            names.add(id(name))
            origins = ctx.origins(name) or _definitions(name, ctx)
            for origin in origins:
                if origin is name or id(origin) in values:
                    continue
                if root in _variable_names(origin) or (
                    isinstance(origin, (cst.FunctionDef, cst.ClassDef))
                    and any(n.value == root for n in _read_names(origin))
                ):
                    return name.value, origin
                values.add(id(origin))
                pending.append(origin)
    return None


def _defines_method(node: cst.CSTNode, method: str, ctx: HookContext) -> bool:
    """Whether a class of the file holding ``node`` defines ``method`` (``def forward``: the
    user's port of that class keeps it, so ``self.forward(x)`` is no torch-only use)."""
    return any(
        isinstance(statement, cst.FunctionDef) and statement.name.value == method
        for klass in cst_walk.walk(_module_of(node, ctx))
        if isinstance(klass, cst.ClassDef)
        for statement in klass.body.body
    )


def _module_of(node: cst.CSTNode, ctx: HookContext) -> cst.CSTNode:
    """The root of the file's tree holding ``node`` (its module)."""
    while (parent := ctx.parent_of(node)) is not None:
        node = parent
    return node


def _definitions(name: cst.Name, ctx: HookContext) -> list[cst.CSTNode]:
    """The ``def`` and ``class`` statements of the file named ``name`` (any scope): what a
    name bound by no assignment may call (probe s41a F3: ``target = teacher(x)`` before the
    forward pass, ``def teacher(inputs): return model(inputs * 0.5)``, was computed outside
    the loss function: 0.129 relative off torch)."""
    kinds = (cst.FunctionDef, cst.ClassDef)
    return [
        node
        for node in cst_walk.walk(_module_of(name, ctx))
        if isinstance(node, kinds) and node.name.value == name.value
    ]


def _read_names(node: cst.CSTNode) -> list[cst.Name]:
    """The variable names under ``node`` (``_variable_names``, as nodes)."""
    nodes = list(cst_walk.walk(node))
    skipped = {id(n.attr) for n in nodes if isinstance(n, cst.Attribute)} | {
        id(n.keyword) for n in nodes if isinstance(n, cst.Arg) and n.keyword is not None
    }
    return [n for n in nodes if isinstance(n, cst.Name) and id(n) not in skipped]


def _is_folded_clip(
    statement: cst.BaseStatement, region: Region, model: str, ctx: HookContext
) -> bool:
    """A clip call alone on its line (or ``norm = clip(...)``, see ``_clip_norm``), of
    ``model.parameters()``, that heads the chain: one of the region's clips the plan folds
    (``Region.clip_sites``), which the chain takes (``refused_clip``: all or none). Any other
    clip of the model's parameters escapes the step: it stays torch code, which the step
    would drop."""
    call = _lone_call(statement) or _assigned_call(statement)
    if call is None:
        return False
    entry = ctx.semantic_map.apis.get(next(iter(ctx.qualify(call.func)), ""))
    if entry is None or entry.role != roles.CLIP or not call.args:
        return False
    if " ".join(code_of(call.args[0].value).split()) != f"{model}.parameters()":
        return False
    problem = None
    if not any(site.call is call for site in region.clip_sites):
        problem = "it escapes: see its own escape hatch"
    else:
        refused = refused_clip(region.clip_sites, ctx)
        if refused is not None:
            shown = " ".join(code_of(refused[0].call).split())
            problem = refused[1] if refused[0].call is call else f"`{shown}` is not: {refused[1]}"
    if problem is not None:
        raise Untranslatable(
            f"`{code_of(statement).strip()}` is not in the optimizer's tx ({problem}), and the "
            "step would drop it"
        )
    return True


def _zero_function_problem(statement: cst.BaseStatement, ctx: HookContext) -> str | None:
    """Why the line ``reset_grad()`` (a function of the file that only zeroes gradients) may
    not go with the step: each zero_grad() it runs must be that of an optimizer of the map
    bound once and translated here (the plan then drops it from the function's body, and
    nnx.value_and_grad computes fresh gradients); None when it may."""
    for call in ctx.zero_call(statement) or ():
        receiver = call.func.value  # type: ignore[attr-defined]
        value = _one_value(receiver, ctx)
        translated = (
            isinstance(value, cst.Call) and _is_optimizer(value, ctx) and ctx.translates(value)
        )
        if not translated:
            return (
                f"`{_shown(statement)}` runs `{code_of(call).strip()}`, whose receiver is not "
                "one optimizer built and translated here: the zero of a torch object stays "
                "torch code"
            )
    return None
