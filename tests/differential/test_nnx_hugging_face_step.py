"""The Hugging Face step (``outputs = model(**batch)``, a loss named like an attribute it
reads): ``optimizer.TorchToNNX``'s own output matches PyTorch when run (losses and final
parameters, float64, 36 updates)."""

from __future__ import annotations

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel

# ``real = (...).real``: the attribute named like the variable the loss binds (HF's ``loss =
# outputs.loss``), on a value torch and jax arrays both have
HUGGING_FACE_SHAPE = """\
import torch

model = make_model()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
for epoch in range(EPOCHS):
    for x, y in loader:
        batch = {k: v for k, v in {"x": x}.items()}
        outputs = model(**batch)
        real = ((outputs - y) ** 2).mean().real
        real.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(real.item())
"""


def test_the_translated_loop_matches_torch() -> None:
    translated, rel = translated_rel(HUGGING_FACE_SHAPE)
    assert BEGIN not in translated and "model(**batch)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_second_run_changes_nothing() -> None:
    once = translate_nnx(HUGGING_FACE_SHAPE)
    assert translate_nnx(once) == once
