"""A loss computed by functions of the same file (issue 13, the VAE example's
``loss_function(recon_batch, data, mu, logvar)``): proven to read only their arguments and
torch, they run unchanged inside the loss function. ``optimizer.TorchToNNX``'s own output
matches PyTorch when run (losses and final parameters, float64, 36 updates)."""

from __future__ import annotations

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    translated_rel,
    worst_rel,
)

VAE_LIKE = """\
import math

import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)


def bounded(v, low=0.25):
    # a helper of the helper: reads its parameters only
    return abs(v) ** 3 / (1.0 + v ** 2) + low


def loss_function(recon_x, x, mu, logvar):
    \"\"\"Reconstruction + KL-like terms, summed over the batch.\"\"\"
    rec = ((recon_x - x) ** 2).sum()
    penalty = bounded(recon_x).mean()
    kld = -0.5 * (1 + logvar - mu ** 2 - math.e ** logvar).sum()
    return rec + penalty + 0.1 * kld


scaled = lambda loss, n: loss / n

for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        recon = model(x)
        loss = scaled(loss_function(recon, y, recon[:, 0], recon[:, 1]), len(x))
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""


def test_the_translated_loop_matches_torch() -> None:
    translated, rel = translated_rel(VAE_LIKE)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_second_run_changes_nothing() -> None:
    once = translate_nnx(VAE_LIKE)
    assert translate_nnx(once) == once


def test_the_harness_sees_a_term_of_the_helper_left_out() -> None:
    """Dropping the nested helper's term from the translation (not from torch's) is seen."""
    translated = translate_nnx(VAE_LIKE).replace("bounded(recon_x).mean()", "0.0")
    rel = worst_rel(run_torch_loop(VAE_LIKE), run_nnx_loop(VAE_LIKE, translated))
    assert rel > 1e-3
