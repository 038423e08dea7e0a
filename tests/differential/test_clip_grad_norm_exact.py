"""``clip_grad_norm_`` without ``--exact`` matches torch to float64 rounding: torch scales by
``min(max_norm / (norm + 1e-6), 1)`` and the stock translation writes that formula
(``optax.stateless``), where ``optax.clip_by_global_norm`` would scale by ``max_norm / norm``
(about 1e-6 / norm relative per clipped update; measured over these 60 updates: SGD 1.9e-7,
1.8e-7, 3.5e-8 with max_norm 0.1, 1.0, 5.0; NNX 3.6e-7, 1.1e-7, 1.0e-7; now < 3e-15). Every
case clips at every one of its 60 updates (checked: its loss is scaled with max_norm so that
the norm stays within a small factor of it), in float64, for both targets; the trap twins
(another norm, raising on non-finite norms) escape with their reason."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import (
    EXACT,
    STEPS,
    Problem,
    linear_problem,
    measure_training,
    training_module,
    translate,
)
from tests.differential.nnx_loops import BATCHES, run_nnx_loop, run_torch_loop, translate_nnx
from tests.differential.nnx_loops import worst_rel as nnx_worst_rel

MAX_NORMS = (0.1, 1.0, 5.0)
STOCK_CLIP = "optax.tree.scale(jnp.minimum("
LOSS_SCALE = 2.2  # times max_norm: the gradients' norm is 1.4 to 13 times max_norm


def steep_problem(max_norm: float) -> Problem:
    """``linear_problem`` with its loss scaled by ``LOSS_SCALE * max_norm``."""
    base = linear_problem()
    scale = LOSS_SCALE * max_norm
    return Problem(
        base.init,
        lambda p, k: scale * base.torch_loss(p, k),
        lambda p, k: scale * base.jax_loss(p, k),
    )


def clipping_torch(max_norm: float, norms: list[float]) -> Any:
    """Torch's clip before each step, recording the norm it returns."""

    def clip(params: list[torch.Tensor]) -> None:
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm)))

    return clip


@pytest.mark.parametrize(
    "optimizer", ["torch.optim.SGD(params, lr=0.1)", "torch.optim.Adam(params, lr=0.01)"]
)
@pytest.mark.parametrize("max_norm", MAX_NORMS)
def test_optax_stock_clip_matches_torch(optimizer: str, max_norm: float) -> None:
    norms: list[float] = []
    source = training_module(optimizer, clip=f"torch.nn.utils.clip_grad_norm_(params, {max_norm})")
    rel, translation = measure_training(
        source,
        before_step=clipping_torch(max_norm, norms),
        problem=lambda: steep_problem(max_norm),
    )
    escapes = [r for r in translation.escapes if r.api != "torch.optim.Optimizer.step"]
    assert not escapes and STOCK_CLIP in translation.code, translation.code
    assert len(norms) == STEPS and min(norms) > max_norm, min(norms)
    assert rel < EXACT, f"rel {rel:.3e}\n{translation.code}"


NNX_LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = SCALE * ((model(x) - y) ** 2).sum()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
        opt.step()
        losses.append(grad_norm.item())
"""
NNX_EPOCHS = STEPS // BATCHES  # 60 updates


@pytest.mark.parametrize("max_norm", MAX_NORMS)
def test_nnx_stock_clip_matches_torch(max_norm: float) -> None:
    source = NNX_LOOP.replace("MAX_NORM", repr(max_norm)).replace("SCALE", repr(max_norm / 2))
    translated = translate_nnx(source)
    assert BEGIN not in translated and STOCK_CLIP in translated, translated
    names = {"EPOCHS": NNX_EPOCHS}
    torch_run = run_torch_loop(source, names=names)
    norms = np.asarray(torch_run.losses)
    assert len(norms) == STEPS and norms.min() > max_norm, norms.min()
    rel = nnx_worst_rel(torch_run, run_nnx_loop(source, translated, names=names))
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"


TRAPS = [
    ("norm_type=3.0", "optax.tree.norm computes the 1-, 2- and inf-norms"),
    ("norm_type=0.0", "optax.tree.norm computes the 1-, 2- and inf-norms"),
    ("error_if_nonfinite=True", "torch raises when the gradients' total norm is NaN or inf"),
]


TRAP = """\
import torch
opt = torch.optim.SGD(params, lr=0.01)
for batch in batches:
    torch.nn.utils.clip_grad_norm_(params, 0.1, ARGUMENT)
    opt.step()
"""


@pytest.mark.parametrize("argument,reason", TRAPS, ids=[a for a, _ in TRAPS])
def test_other_clips_escape_with_their_reason(argument: str, reason: str) -> None:
    translation = translate(TRAP.replace("ARGUMENT", argument))
    clips = [r for r in translation.escapes if "clip_grad_norm_" in r.api]
    assert clips and reason in clips[0].reason, [r.reason for r in translation.escapes]
    assert STOCK_CLIP not in translation.code
    assert "opt = optax.sgd(learning_rate=0.01)" in translation.code
