"""NNX constructor: ``torch.optim.X(model.parameters(), ...)`` ->
``nnx.Optimizer(model, <the optax target's translation>, wrt=nnx.Param)``."""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.learning_rate import injected_tx
from ml_switcheroo.targets.nnx.model import trained_model
from ml_switcheroo.targets.optax.optimizer_step import transform_optimizer_init

OPTIMIZER = "nnx.Optimizer({model}, {tx}, wrt=nnx.Param)"


def nnx_optimizer(node: cst.Call, ctx: HookContext) -> cst.BaseExpression:
    """The optax translation (schedule and clipping folded) as the ``tx`` of the model's
    ``nnx.Optimizer``; with its hyper-parameters injected when the code writes its lr."""
    model = code_of(trained_model(node, ctx)).strip()
    tx = code_of(injected_tx(node, transform_optimizer_init(node, ctx), ctx)).strip()
    ctx.add_import("nnx")
    return cst.parse_expression(OPTIMIZER.format(model=model, tx=tx))
