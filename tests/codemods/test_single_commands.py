"""The single transformations as commands of their own: each does only its part."""

from __future__ import annotations

from ml_switcheroo.codemods.optimizer import OptimizerInit, OptimizerStep, StripZeroGrad
from tests.support import SwitcherooTest

SOURCE = """
import torch
opt = torch.optim.SGD(model.parameters(), lr=0.1)
opt.zero_grad()
loss.backward()
opt.step()
"""


class OptimizerInitTest(SwitcherooTest):
    TRANSFORM = OptimizerInit

    def test_rewrites_only_the_constructor(self) -> None:
        self.assertConverts(
            SOURCE,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            """,
        )


class OptimizerStepTest(SwitcherooTest):
    TRANSFORM = OptimizerStep

    def test_wraps_only_the_step(self) -> None:
        self.assertConverts(
            SOURCE,
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            opt.zero_grad()
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
            # ml_switcheroo: reason: torch computes gradients into .grad (`loss.backward()`) and `opt.step()` applies them in place; JAX takes gradients of a loss function and optax returns updates to apply
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   def loss_fn(params):  # the forward pass that computes `loss`, as a function of the parameters
            # ml_switcheroo: |       ...
            # ml_switcheroo: |       return loss
            # ml_switcheroo: |   loss, grads = jax.value_and_grad(loss_fn)(params)
            # ml_switcheroo: |   updates, opt_state = opt.update(grads, opt_state, params)
            # ml_switcheroo: |   params = optax.apply_updates(params, updates)
            # ml_switcheroo: |   # once, after `opt` is built: opt_state = opt.init(params)
            loss.backward()
            opt.step()
            # ml_switcheroo: ESCAPE-END
            """,
        )


class StripZeroGradTest(SwitcherooTest):
    TRANSFORM = StripZeroGrad

    def test_removes_only_zero_grad(self) -> None:
        self.assertConverts(
            SOURCE,
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            loss.backward()
            opt.step()
            """,
        )


class OptimizerInitTorchOnlyTest(SwitcherooTest):
    TRANSFORM = OptimizerInit

    def test_marks_a_torch_only_member_of_the_optimizer_it_rewrote(self) -> None:
        (escape,) = [
            r for r in self.records(SOURCE + "s = opt.state_dict()\n") if r.kind == "escaped"
        ]
        self.assertEqual(escape.api, "torch.optim.Optimizer.state_dict")

    def test_does_not_mark_a_scheduler_it_does_not_rewrite(self) -> None:
        records = self.records(
            "from torch.optim.lr_scheduler import StepLR\n"
            + SOURCE
            + "sched = StepLR(opt, 10)\nsd = sched.state_dict()\n"
        )
        self.assertEqual([r.snippet for r in records if r.kind == "escaped"], ["StepLR(opt, 10)"])
