"""A second target is a ``Target`` a command chooses: tiny fake targets (test-only, not shipped)
run through the engine with no change to analysis, spec or model."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import libcst as cst
from libcst.codemod import CodemodContext

from ml_switcheroo.analysis.plan import Region
from ml_switcheroo.codemods.optimizer import TorchToOptax
from ml_switcheroo.rewrite.engine import records_of
from ml_switcheroo.targets.hooks import HookContext, HookResult, Replace, ReplaceRegion
from ml_switcheroo.targets.optax.target import OPTAX
from ml_switcheroo.targets.target import Target

SOURCE = """\
import torch

model = torch.nn.Linear(2, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in data:
    loss = model(x).sum()
    loss.backward()
    opt.step()
"""


def nnx_constructor(node: cst.Call, ctx: HookContext) -> HookResult:
    """Renders any optimizer as ``nnx.Optimizer(model, tx, wrt=nnx.Param)``."""
    return Replace(cst.parse_expression("nnx.Optimizer(model, tx, wrt=nnx.Param)"))


def nnx_training_step(node: cst.Call, ctx: HookContext) -> HookResult:
    """Renders a whole training-step region as one call of a jitted step."""
    assert isinstance(ctx.plan, Region) and ctx.plan.anchor.receiver is not None
    optimizer = cst.Module([]).code_for_node(ctx.plan.anchor.receiver)
    return ReplaceRegion((cst.parse_statement(f"loss = train_step(model, {optimizer})\n"),))


def with_hooks(name: str, state_name: str = "{x}_state", **hooks: object) -> Target:
    hooks = {**OPTAX.hooks, **hooks}
    return replace(OPTAX, name=name, hooks=hooks, state_name=state_name)  # type: ignore[arg-type]


def convert(target: Target, source: str = SOURCE) -> tuple[str, CodemodContext]:
    class Command(TorchToOptax):
        TARGET: ClassVar[Target] = target

    context = CodemodContext(filename=None)
    return Command(context).transform_module(cst.parse_module(source)).code, context


def test_a_target_renders_the_constructor_its_own_way() -> None:
    code, _ = convert(with_hooks("nnx-constructor", optimizer_constructor=nnx_constructor))
    assert "opt = nnx.Optimizer(model, tx, wrt=nnx.Param)\n" in code


def test_the_shipped_target_still_renders_optax_for_the_same_source() -> None:
    code, _ = convert(OPTAX)
    assert "opt = optax.sgd(learning_rate=0.1)\n" in code


def test_a_target_replaces_a_training_step_region_with_its_statements() -> None:
    target = with_hooks("nnx-step", training_step=nnx_training_step)
    code, _ = convert(target)
    assert code.endswith("    loss = model(x).sum()\n    loss = train_step(model, opt)\n")


def test_a_replaced_region_is_reported_as_converted() -> None:
    _, context = convert(with_hooks("nnx-step-report", training_step=nnx_training_step))
    records = [r for r in records_of(context) if r.suggestion.startswith("loss = train_step")]
    assert [(r.kind, r.snippet) for r in records] == [("converted", "loss.backward()\nopt.step()")]


def test_the_optax_target_keeps_the_region_in_an_escape_hatch() -> None:
    code, _ = convert(OPTAX)
    assert "    # ml_switcheroo: ESCAPE-END\n" in code and "train_step" not in code


def test_a_target_names_the_optimizer_state_in_its_suggestions() -> None:
    code, _ = convert(with_hooks("state-naming", state_name="{x}_opt_state"))
    assert "opt.update(grads, opt_opt_state, params)" in code
    assert "updates, opt_state =" not in code
