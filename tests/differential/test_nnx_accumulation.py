"""Gradient accumulation translated by ``optimizer.TorchToNNX`` (optax.MultiSteps summing in
the parameters' dtype) matches PyTorch when run: every recorded loss and the final parameters,
float64, at least 32 updates. And the facts the translation rests on, measured."""

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

# 60 batches (the 12 of the loader, 5 times), k = 2: 30 updates.
ENUMERATE_INDEX = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=0.01)
accumulation_steps = 2
for i, (x, y) in enumerate(loader * 5):
    loss = ((model(x) - y) ** 2).mean() / accumulation_steps
    loss.backward()
    if (i + 1) % accumulation_steps == 0:
        opt.step()
        opt.zero_grad()
    losses.append(loss.item())
"""

COUNTER_ACROSS_EPOCHS = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
step = 0
opt.zero_grad()
for epoch in range(5):
    for x, y in loader:
        out = model(x)
        loss = ((out - y) ** 2).mean() / 2
        loss.backward()
        step += 1
        if step % 2 == 0:
            opt.step()
            opt.zero_grad()
        losses.append(loss.item())
"""

COUNTER_AFTER_THE_CHECK = """\
import torch

model = make_model()
opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
seen = 0
for epoch in range(5):
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean() / 2
        loss.backward()
        if (seen + 1) % 2 == 0:
            opt.step()
            opt.zero_grad()
        seen += 1
        losses.append(loss.item())
"""

# torch sums the gradients whatever the loss is divided by: MultiSteps summing matches.
UNDIVIDED_LOSS = """\
import torch

model = make_model()
opt = torch.optim.RMSprop(model.parameters(), lr=0.01)
for i, (x, y) in enumerate(loader * 5):
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    if (i + 1) % 2 == 0:
        opt.step()
        opt.zero_grad()
    losses.append(loss.item())
"""

# The accumulated gradients clipped before the step: the clip heads the chain in MultiSteps.
CLIPPED_SUM = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=0.01)
for i, (x, y) in enumerate(loader * 5):
    loss = ((model(x) - y) ** 2).mean() / 2
    loss.backward()
    if (i + 1) % 2 == 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.3)
        opt.step()
        opt.zero_grad()
    losses.append(loss.item())
"""

LOOPS = {
    "clipped_sum": CLIPPED_SUM,
    "enumerate_index": ENUMERATE_INDEX,
    "counter_across_epochs": COUNTER_ACROSS_EPOCHS,
    "counter_after_the_check": COUNTER_AFTER_THE_CHECK,
    "undivided_loss": UNDIVIDED_LOSS,
}


# The clip's translation is exact with --exact (the map: torch adds 1e-6 to the norm).
OPTIONS = {"clipped_sum": {"exact": True}}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_accumulating_loop_matches_torch(name: str) -> None:
    translated, rel = translated_rel(LOOPS[name], **OPTIONS.get(name, {}))
    assert BEGIN not in translated and "optax.MultiSteps(" in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_changes_nothing(name: str) -> None:
    once = translate_nnx(LOOPS[name], **OPTIONS.get(name, {}))
    assert translate_nnx(once, **OPTIONS.get(name, {})) == once


def _with_tx_arguments(source: str, old: str, new: str) -> str:
    translated = translate_nnx(source)
    assert old in translated, translated
    return translated.replace(old, new)


def test_multisteps_accumulating_in_float32_is_not_exact() -> None:
    """optax 0.2.8's default accumulator_dtype (float32) is ~1e-8 relative off in float64:
    the translation passes accumulator_dtype=None (the parameters' dtype)."""
    source = ENUMERATE_INDEX
    float32 = _with_tx_arguments(source, ", accumulator_dtype=None", "")
    rel = worst_rel(run_torch_loop(source), run_nnx_loop(source, float32))
    assert rel > EXACT


def test_multisteps_averaging_is_not_torch() -> None:
    """The default use_grad_mean=True averages the k gradients; torch sums them."""
    source = COUNTER_ACROSS_EPOCHS
    averaged = _with_tx_arguments(source, "use_grad_mean=False", "use_grad_mean=True")
    rel = worst_rel(run_torch_loop(source), run_nnx_loop(source, averaged))
    assert rel > 1e-3


RESTARTING_INDEX = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(3):
    for i, (x, y) in enumerate(loader):
        loss = ((model(x) - y) ** 2).mean() / 5
        loss.backward()
        if (i + 1) % 5 == 0:
            opt.step()
            opt.zero_grad()
        losses.append(loss.item())
"""


def test_an_index_restarting_per_epoch_carries_gradients_in_torch() -> None:
    """With 12 batches per epoch and k = 5, torch steps after batches 5 and 10 of each epoch
    and carries the last two batches' gradients into the next epoch's first step; MultiSteps
    counts across epochs: other numbers (why a restarting index escapes)."""
    counting = COUNTER_ACROSS_EPOCHS.replace("% 2", "% 5").replace("/ 2", "/ 5")
    counting = counting.replace("range(5)", "range(3)")
    counting = counting.replace("momentum=0.9, nesterov=True", "")
    translated = translate_nnx(counting)
    assert BEGIN not in translated, translated
    rel = worst_rel(run_torch_loop(RESTARTING_INDEX), run_nnx_loop(RESTARTING_INDEX, translated))
    assert rel > 1e-6
