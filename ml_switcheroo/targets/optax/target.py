"""The optax target: importing the hook modules registers them; ``OPTAX`` holds them."""

from __future__ import annotations

from ml_switcheroo.targets.hooks import hook_specs, registered_renderers
from ml_switcheroo.targets.optax import (  # noqa: F401  (registers the optax hooks)
    clipping,
    lr_scheduler,
    optimizer_step,
    torch_only_uses,
    training_step,
)
from ml_switcheroo.targets.optax.messages import MESSAGES
from ml_switcheroo.targets.target import Target

OPTAX = Target(
    "optax",
    registered_renderers(),
    hook_specs(),
    state_name="{x}_state",
    label="optax",
    optimizer_value="an optax GradientTransformation",
    messages=MESSAGES,
)
