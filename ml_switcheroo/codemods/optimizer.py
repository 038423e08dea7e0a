"""``optimizer.*`` commands: PyTorch optimizer code to JAX/Optax.

``TorchToOptax`` runs every hook in one pass; the others run one transformation each.
"""

from __future__ import annotations

from typing import ClassVar

from ml_switcheroo.rewrite.engine import SwitcherooCommand
from ml_switcheroo.targets.nnx.target import NNX
from ml_switcheroo.targets.target import Target


class TorchToOptax(SwitcherooCommand):
    DESCRIPTION = (
        "Translate torch.optim code to optax in one pass: constructors, step() escape "
        "hatches, zero_grad() removal and imports."
    )
    HOOKS = None


class TorchToNNX(SwitcherooCommand):
    DESCRIPTION = (
        "Translate a PyTorch training loop to Flax NNX in one pass (the model must already be "
        "an nnx.Module): nnx.Optimizer(model, <optax tx>, wrt=nnx.Param), the training step as "
        "nnx.value_and_grad of a loss function and optimizer.update(model, grads)."
    )
    HOOKS = None
    TARGET: ClassVar[Target] = NNX


class OptimizerInit(SwitcherooCommand):
    DESCRIPTION = (
        "Rewrite torch.optim optimizer constructors into optax transformations, and mark the "
        "code that still uses them as torch optimizers."
    )
    HOOKS = frozenset({"optimizer_constructor", "torch_only"})


class OptimizerStep(SwitcherooCommand):
    DESCRIPTION = "Wrap optimizer.step() calls in escape hatches suggesting the optax update."
    HOOKS = frozenset({"optimizer_step"})


class StripZeroGrad(SwitcherooCommand):
    DESCRIPTION = "Remove optimizer.zero_grad() calls (no-ops in functional JAX code)."
    HOOKS = frozenset({"optimizer_zero_grad"})
