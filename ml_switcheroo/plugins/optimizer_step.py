"""The seed's import path of its three hooks; they live in ``targets.optax.optimizer_step``."""

from ml_switcheroo.targets.optax.optimizer_step import (
    strip_zero_grad,
    transform_optimizer_init,
    transform_optimizer_step,
)

__all__ = ["strip_zero_grad", "transform_optimizer_init", "transform_optimizer_step"]
