"""A loss helper whose body calls torch tensor methods a JAX array lacks or computes otherwise
(pytorch/examples' VAE: ``mu.pow(2)``, ``logvar.exp()`` in ``loss_function``) is copied into the
NNX loss function with those calls written by the map's templates, on values known to be torch
tensors (``targets/nnx/helper_copies.py``, s26d). ``optimizer.TorchToNNX``'s own output matches
PyTorch when run (losses and final parameters, float64, 36 updates); every nearby shape the copy
cannot prove escapes with its reason."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    translated_rel,
    worst_rel,
)
from tests.support import step_escaped_with

HEADER = """\
import numpy as np
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)

"""

VAE_LIKE = '''
def loss_function(recon_x, x, mu, logvar):
    """Reconstruction + KL-like terms, summed over the batch."""
    rec = ((recon_x - x) ** 2).sum()
    # 0.5 * sum(1 + log(sigma^2) - mu^2 - sigma^2)
    kld = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()
    return rec + 0.1 * kld + recon_x.abs().mean()
'''

LOOP = """
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        recon = model(x)
        loss = loss_function(recon, y, recon[:, 0], recon[:, 1])
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

SOURCE = HEADER + VAE_LIKE + LOOP


def test_the_copied_helper_matches_torch() -> None:
    translated, rel = translated_rel(SOURCE)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert "(mu ** 2) - jnp.exp(logvar)" in translated and "jnp.abs(recon_x)" in translated
    assert rel < EXACT, f"rel {rel:.3e}"


def test_the_copy_sits_in_the_loss_function_and_the_module_function_stays() -> None:
    translated = translate_nnx(SOURCE)
    assert "        def loss_fn(model):\n            def loss_function(" in translated
    assert VAE_LIKE in translated  # the module's function, for its other callers


def test_a_second_run_changes_nothing() -> None:
    once = translate_nnx(SOURCE)
    assert translate_nnx(once) == once


def test_two_calls_with_tensors_share_one_copy() -> None:
    source = SOURCE.replace(
        "loss = loss_function(recon, y, recon[:, 0], recon[:, 1])",
        "loss = loss_function(recon, y, recon[:, 0], recon[:, 1]) + loss_function("
        "recon, y, recon[:, 1], recon[:, 0])",
    )
    translated, rel = translated_rel(source)
    assert translated.count("def loss_function(") == 2, translated  # the module's and one copy
    assert rel < EXACT, f"rel {rel:.3e}"


def test_the_harness_sees_a_term_of_the_copy_left_out() -> None:
    translated = translate_nnx(SOURCE).replace("- jnp.exp(logvar)", "")
    rel = worst_rel(run_torch_loop(SOURCE), run_nnx_loop(SOURCE, translated))
    assert rel > 1e-3


TRAPS = {
    "mutates a global": (
        VAE_LIKE.replace("    rec = ", "    losses.append(mu)\n    rec = "),
        "`losses.append(mu)`, evaluated for its effect",
    ),
    "calls .item()": (
        VAE_LIKE.replace("recon_x.abs().mean()", "recon_x.abs().mean().item()"),
        "calls `.item()`",
    ),
    "calls a namesake on a NumPy value": (
        VAE_LIKE.replace("    rec = ", "    w = np.ones((2, 3))\n    rec = w.max(1)[0].sum() + "),
        "calls a torch method on `w`, not known to be a torch tensor",
    ),
    "calls a namesake on a parameter given the batch": (
        VAE_LIKE.replace("logvar.exp()", "x.exp().mean(1)"),
        "calls a torch method on `x`, not known to be a torch tensor",
    ),
    "is defined twice": (VAE_LIKE + VAE_LIKE, "`loss_function` is not bound once in this file"),
    "is rebound later": (
        VAE_LIKE + "loss_function = None\n",
        "`loss_function` is not bound once in this file",
    ),
    "is imported from another file": (
        "from losses import loss_function\n",
        "`loss_function` is not a module-level function of this file",
    ),
    "is a lambda": (
        "loss_function = lambda recon_x, x, mu, logvar: mu.pow(2).sum()\n",
        "a JAX array has no `pow` method",
    ),
    "rebinds a parameter to a NumPy value": (
        VAE_LIKE.replace("    rec = ", "    mu = np.ones(3)\n    rec = "),
        "calls a torch method on `mu`, not known to be a torch tensor",
    ),
    "takes *args": (
        VAE_LIKE.replace("(recon_x, x, mu, logvar)", "(recon_x, x, mu, logvar, *rest)"),
        "has parameters other than plain ones",
    ),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_a_helper_the_copy_cannot_prove_escapes_with_its_reason(name: str) -> None:
    helper, reason = TRAPS[name]
    step_escaped_with(helper + LOOP, reason, HEADER)
