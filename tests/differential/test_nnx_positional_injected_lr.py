"""An lr read through ``param_groups`` where the injected chain element takes its learning rate
positionally (``optax.inject_hyperparams(optax.scale_by_learning_rate)(lr)``: RMSprop with
momentum and a folded clip, the UNet shape of the held-out corpus): ``optimizer.TorchToNNX``
reads ``opt_state[4].hyperparams["learning_rate"]``, and the loop matches torch (float64,
36 updates, the lr added to each recorded loss)."""

from __future__ import annotations

from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translated_rel

UNET_SHAPE = """\
import torch

model = make_model()
optimizer = torch.optim.RMSprop(model.parameters(), lr=0.01, weight_decay=1e-3, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item() + optimizer.param_groups[0]["lr"])
"""


def test_the_read_translates_and_matches_torch() -> None:
    translated, rel = translated_rel(UNET_SHAPE)
    assert 'optimizer.opt_state[4].hyperparams["learning_rate"]' in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
