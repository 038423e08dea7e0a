"""Re-export of :mod:`ml_switcheroo.codemods.optimizer` for the repository's libcst config."""

from ml_switcheroo.codemods.optimizer import (
    OptimizerInit,
    OptimizerStep,
    StripZeroGrad,
    TorchToNNX,
    TorchToOptax,
)

__all__ = ["OptimizerInit", "OptimizerStep", "StripZeroGrad", "TorchToNNX", "TorchToOptax"]
