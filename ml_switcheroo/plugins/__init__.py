"""Shipped hooks. Importing this package registers them."""

from ml_switcheroo.plugins import (  # noqa: F401
    clipping,
    lr_scheduler,
    optimizer_step,
    torch_only,
    training_step,
)
