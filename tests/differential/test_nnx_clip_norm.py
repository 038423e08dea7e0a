"""The norm ``clip_grad_norm_`` returns, recorded at every update of a whole loop (36 updates,
float64): torch's script as written against the NNX codemod's own translation, where the clip
is the head of the tx and the norm is ``optax.tree.norm(grads)`` of the gradients before
clipping. Both the recorded norms and the parameters are compared."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import run_nnx_loop, run_torch_loop, translated_rel, worst_rel

NORM_EVERY_UPDATE = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=0.05)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss = ((model(x) - y) ** 2).sum()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0, norm_type=2, foreach=True)
        opt.step()
        losses.append(grad_norm.item())
"""

# both write torch's max_norm / (norm + 1e-6) (the stock output with optax.stateless)
TOLERANCE = {"exact": EXACT, "stock": EXACT}


@pytest.mark.parametrize("mode", sorted(TOLERANCE))
def test_the_recorded_norms_and_parameters_match_torch(mode: str) -> None:
    translated, rel = translated_rel(NORM_EVERY_UPDATE, exact=mode == "exact")
    assert BEGIN not in translated and "grad_norm = optax.tree.norm(grads)" in translated
    assert rel < TOLERANCE[mode], f"rel {rel:.3e}\n{translated}"


def test_the_norms_are_clipped_at_some_updates() -> None:
    """The case tests something: torch's norm exceeds max_norm at some updates (so the clip
    acts), and a norm taken after clipping would not match."""
    torch_run = run_torch_loop(NORM_EVERY_UPDATE)
    assert len(torch_run.losses) == 36 and max(torch_run.losses) > 1.0
    translated, _ = translated_rel(NORM_EVERY_UPDATE, exact=True)
    clipped = translated.replace(
        "grad_norm = optax.tree.norm(grads)", "grad_norm = optax.tree.norm(grads).clip(max=1.0)"
    )
    assert worst_rel(torch_run, run_nnx_loop(NORM_EVERY_UPDATE, clipped)) > 1e-3
