"""The Flax NNX target: the optax target's hooks, with the optimizer constructor and the
training step rendered for a mutable NNX model (``nnx.Optimizer``, ``nnx.value_and_grad``)."""

from __future__ import annotations

from pathlib import Path

from ml_switcheroo.targets.nnx.epoch_lr import nnx_scheduler_step
from ml_switcheroo.targets.nnx.learning_rate import nnx_scheduler_read
from ml_switcheroo.targets.nnx.messages import MESSAGES
from ml_switcheroo.targets.nnx.optimizer import nnx_optimizer
from ml_switcheroo.targets.nnx.plateau import nnx_lr_scheduler
from ml_switcheroo.targets.nnx.restate import nnx_restate
from ml_switcheroo.targets.nnx.training_step import nnx_training_step
from ml_switcheroo.targets.nnx.wrappers import nnx_model_wrapper
from ml_switcheroo.targets.optax.target import OPTAX
from ml_switcheroo.targets.target import Target

NNX_MAP = Path(__file__).with_name("nnx.yaml")

NNX = Target(
    "nnx",
    {
        **OPTAX.hooks,
        "optimizer_constructor": nnx_optimizer,
        "training_step": nnx_training_step,
        "scheduler_read": nnx_scheduler_read,
        "scheduler_step": nnx_scheduler_step,
        "lr_scheduler": nnx_lr_scheduler,
        "model_wrapper": nnx_model_wrapper,
    },
    OPTAX.specs,
    state_name="{x}.opt_state",
    label="Flax NNX",
    optimizer_value="an nnx.Optimizer",
    maps=(NNX_MAP,),
    region_start="forward",
    writes_epoch_lr=True,
    messages=MESSAGES,  # the optax table (the tx is optax) and the NNX-only findings
    restate=nnx_restate,  # a scheduler's suggestion names where its optimizer's lr is stored
)
