"""The NNX training step's region in the shape the loss function takes (issue 13, s40): one
simple statement per line, and the loss a plain name.

* ``image = a.to(d); mask = b.to(d);`` on one line: Python runs the simple statements of a line
  one after the other, exactly as on lines of their own, so the region's lines are split
  (``_split_lines``): each then meets the loss function's rules on its own. Not a line holding
  a walrus (``:=``): the name it binds is no assignment target the step follows (the loss
  function would keep it local, and a read after the step would see an older value).
* ``(v * c + a - e * c).backward()``, ``loss.mean().backward()``: the expression differentiated
  is bound to a fresh name (``loss``, else ``loss_1``...: no name of the step's scope nor one
  visible there) on a line of its own right before ``<name>.backward()`` (``_bound_loss``); the
  loss function computes it where torch did and returns it, every call in it checked and
  written as the map says for the loss function's other lines (``_check_traceable``: a torch
  method on a traced value is written by the map's template, or the step escapes). Only a
  ``backward()`` without arguments (``retain_graph=``, ``inputs=``, a gradient: escapes), and
  not under a GradScaler (``scaler.scale(expr).backward()``).

The rewritten lines hold the user's own nodes (the checks resolve names by identity); only the
line around them, the fresh name and its ``.backward()`` call are new.
"""

from __future__ import annotations

import operator
from dataclasses import replace

import libcst as cst

from ml_switcheroo.analysis import cst_walk
from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.analysis.statements import loss_branch_names
from ml_switcheroo.model.hygiene import fresh_name
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of, dotted_name
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.step_syntax import (
    _names_of,
    _scope,
    _target_names,
    _variable_names,
)

# the names the rendering writes next to the loss (``training_step``'s templates)
RENDERED_NAMES = frozenset({"loss_fn", "grads"})


def lines_for_loss(region: Region, ctx: HookContext) -> Region:
    """``region`` with its simple statements one per line and its loss a plain name (see the
    module's docstring); the region itself when nothing changes."""
    planned = region.planned or region.statements
    region = _backward_alone(region)
    backward = region.backward
    kept = [region.anchor.call, *([backward.call] if backward is not None else [])]
    statements = _split_lines(region.statements, kept)
    bound = _bound_loss(region, ctx) if backward is not None else None
    if bound is not None:
        line, site, name = bound
        index = next(i for i, s in enumerate(statements) if s is backward.statement)  # type: ignore[union-attr]
        statements[index : index + 1] = [line, site.statement]
        return replace(region, statements=statements, backward=site, loss=name, planned=planned)
    if len(statements) == len(planned) and all(map(operator.is_, statements, planned)):
        return region
    return replace(region, statements=statements, planned=planned)


def _backward_alone(region: Region) -> Region:
    """``out = model(x); loss = f(out); loss.backward()`` on one line (the backward pass its
    last statement, the step not on it): that line split, the backward site on its own line."""
    backward = region.backward
    statement = backward.statement if backward is not None else None
    if (
        backward is None
        or not _splittable(statement)  # type: ignore[arg-type]
        or not isinstance(statement.body[-1], cst.Expr)  # type: ignore[union-attr]
        or statement.body[-1].value is not backward.call  # type: ignore[union-attr]
        or any(n is region.anchor.call for n in cst_walk.walk(statement))  # type: ignore[arg-type]
    ):
        return region
    lines = _split_line(statement)  # type: ignore[arg-type]
    site = replace(backward, statement=lines[-1])
    index = next(i for i, s in enumerate(region.statements) if s is statement)
    statements = [*region.statements[:index], *lines, *region.statements[index + 1 :]]
    return replace(region, statements=statements, backward=site)


def _split_lines(
    statements: list[cst.BaseStatement], kept: list[cst.Call]
) -> list[cst.BaseStatement]:
    """The statements with each line of several simple statements (no walrus, none of the
    ``kept`` calls: the step's and its backward pass's lines are found by identity) split."""
    result: list[cst.BaseStatement] = []
    for statement in statements:
        if not _splittable(statement) or any(
            n is call for n in cst_walk.walk(statement) for call in kept
        ):
            result.append(statement)
        else:
            result.extend(_split_line(statement))  # type: ignore[arg-type]
    return result


def _split_line(statement: cst.SimpleStatementLine) -> list[cst.SimpleStatementLine]:
    """One line per simple statement, the first keeping the line's leading lines, the last its
    ``;`` as written and its end-of-line comment."""
    body = list(statement.body)
    lines = []
    for index, small in enumerate(body):
        last = index == len(body) - 1
        lines.append(
            cst.SimpleStatementLine(
                body=[small if last else small.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)],
                leading_lines=statement.leading_lines if index == 0 else (),
                trailing_whitespace=(
                    statement.trailing_whitespace if last else cst.TrailingWhitespace()
                ),
            )
        )
    return lines


def _splittable(statement: cst.BaseStatement) -> bool:
    """A line of several expressions and assignments (no ``global``, ``del``, ``import``...)."""
    simple = (cst.Expr, cst.Assign, cst.AugAssign, cst.AnnAssign)
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) > 1
        and all(isinstance(small, simple) for small in statement.body)
        and not any(isinstance(n, cst.NamedExpr) for n in cst_walk.walk(statement))
    )


def _bound_loss(
    region: Region, ctx: HookContext
) -> tuple[cst.SimpleStatementLine, object, str] | None:
    """For ``<expression>.backward()`` alone on its line (no argument, no GradScaler, the
    expression not a plain name): the line binding it to a fresh name, the backward site
    rewritten to ``<name>.backward()``, and the name; None for any other backward pass."""
    backward = region.backward
    assert backward is not None
    call, statement = backward.call, backward.statement
    if (
        region.scaler is not None
        or call.args
        or not isinstance(call.func, cst.Attribute)
        or call.func.attr.value != "backward"
        or isinstance(call.func.value, cst.Name)
        or not _alone_on_line(statement, call)
    ):
        return None
    expression = call.func.value
    taken = _names_of([_scope(region)]) | ctx.visible_names(region.anchor.call) | RENDERED_NAMES
    name = fresh_name("loss", taken)
    if expression.lpar and "\n" not in code_of(expression):
        expression = expression.with_changes(lpar=[], rpar=[])
    line = cst.SimpleStatementLine(
        body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=expression)],
        leading_lines=statement.leading_lines,  # type: ignore[attr-defined]
    )
    new_call = call.with_changes(func=call.func.with_changes(value=cst.Name(name)))
    new_statement = statement.with_changes(  # type: ignore[attr-defined]
        body=[statement.body[0].with_changes(value=new_call)],  # type: ignore[attr-defined]
        leading_lines=(),
    )
    site = replace(backward, call=new_call, statement=new_statement, receiver=cst.Name(name))
    return line, site, name


def _alone_on_line(statement: cst.BaseStatement, call: cst.Call) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and statement.body[0].value is call
    )


def check_scalar_loss(forward: list[cst.BaseStatement], loss: str, ctx: HookContext) -> None:
    """The loss's last binding in the forward pass is not a reduction over given dimensions
    (the map's ``dim_reductions``: ``loss = out.sum(dim=0)``, ``torch.mean(x, 0)``): it may be
    a tensor of one element and some dimensions, which torch's backward() takes and
    nnx.value_and_grad refuses."""
    value = None
    for statement in forward:
        small = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
        if isinstance(small, cst.Assign) and any(
            isinstance(t.target, cst.Name) and t.target.value == loss for t in small.targets
        ):
            value = small.value
    if not (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in ctx.semantic_map.dim_reductions
    ):
        return
    # `torch.mean(x)` (a function of a module: its first argument is the tensor), `x.mean()`
    given = value.args[1:] if ctx.qualify(value.func) else value.args
    if given:
        raise Untranslatable(
            f"the loss `{code_of(value).strip()}` reduces over the dimensions given: it may be "
            "a tensor of one element and more dimensions, which torch's backward() takes (an "
            "implicit gradient of 1) and nnx.value_and_grad refuses (a scalar output only); "
            "reduce it to a scalar (`.sum()`, `.mean()`) to translate the step"
        )


def check_untraced_tests(
    forward: list[cst.BaseStatement], model: cst.BaseExpression, others: frozenset[str]
) -> None:
    """Each ``if`` the loss function keeps (``statements.loss_branch_names``) tests a value the
    loss function does not compute (``args.clip_vloss``, a constant, a loop counter): Python
    then takes the branch torch takes. A test reading a name the forward pass binds, the model
    (``model``) or another model the loss calls (``others``), or calling anything, escapes: a
    traced value has no truth value (TracerBoolConversionError), and a call may read one."""
    assigned = {t.value for s in forward for t in _target_names(s)}
    model_text = dotted_name(model) or ""
    for statement in forward:
        for node in cst_walk.walk(statement):
            if not isinstance(node, cst.If) or loss_branch_names(node) is None:
                continue
            shown = f"if {code_of(node.test).strip()}:"
            if any(isinstance(n, cst.Call) for n in cst_walk.walk(node.test)):
                raise Untranslatable(
                    f"the test of `{shown}` in the forward pass calls a function: it may read a "
                    "value the loss function computes (traced: no truth value in JAX)"
                )
            read = _variable_names(node.test) & (assigned | others)
            if not read and model_text and _reads_model(node.test, model_text):
                read = {model_text}
            if read:
                raise Untranslatable(
                    f"the test of `{shown}` reads `{sorted(read)[0]}`, which the loss function "
                    "computes: a traced value there (JAX has no truth value for it: "
                    "TracerBoolConversionError), and the branch torch takes depends on its number"
                )


def _reads_model(test: cst.BaseExpression, model: str) -> bool:
    """``test`` reads the model expression or an attribute of it (``self.net.training``)."""
    return any(
        (text := dotted_name(n)) is not None and (text == model or text.startswith(model + "."))
        for n in cst_walk.walk(test)
        if isinstance(n, cst.Name | cst.Attribute)
    )


def test_only_names(forward: list[cst.BaseStatement]) -> set[str]:
    """The names the forward pass reads only in the tests of the ``if`` statements it keeps
    (``loss_branch_names``): Python reads them as a truth value, never differentiated, so a
    value computed from the model outside the step (``prev = loss.item()`` after it) is read
    there exactly as torch reads it."""
    tests = [
        test
        for statement in forward
        for node in cst_walk.walk(statement)
        if isinstance(node, cst.If) and loss_branch_names(node) is not None
        for test in [node.test]
    ]
    in_tests = {id(n) for test in tests for n in cst_walk.walk(test)}
    tested = {n for test in tests for n in _variable_names(test)}
    elsewhere = {
        n.value
        for statement in forward
        for n in cst_walk.walk(statement)
        if isinstance(n, cst.Name) and id(n) not in in_tests
    }
    return tested - elsewhere
