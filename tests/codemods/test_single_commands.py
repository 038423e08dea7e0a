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
            loss.backward()
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
            # ml_switcheroo: reason: torch's `opt.step()` updates the parameters in place; optax returns updates that you apply
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   updates, opt_state = opt.update(grads, opt_state, params)
            # ml_switcheroo: |   params = optax.apply_updates(params, updates)
            # ml_switcheroo: |   # once, after the optimizer is built: opt_state = opt.init(params)
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
