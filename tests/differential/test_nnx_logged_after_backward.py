"""Issue 13: statements between the backward pass and the step that only record values
(pytorch/examples' VAE: ``train_loss += loss.item()`` there; functions of the map's
``recording_modules``, ``logging.debug``, ``math.fsum``) run in the NNX step after the
gradient, before the update. The torch script as written against the NNX codemod's own output
on an NNX model with the same weights, float64, 36 updates: every recorded value (appended
between backward and step) and the final parameters."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translated_rel

RUNNING_SUM_BETWEEN = """\
import logging
import math

import torch

model = make_model()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
train_loss = 0.0
history = []
for epoch in range(EPOCHS):
    for x, y in loader:
        optimizer.zero_grad()
        out = model(x)
        loss = ((out - y) ** 2).mean()
        loss.backward()
        train_loss += loss.item()
        logging.debug("loss %f", loss.item())
        history.append(math.fsum([train_loss, 0.0]))
        optimizer.step()
losses.extend(history)
"""

WITH_A_FOLDED_CLIP = """\
import torch

model = make_model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
means = []
for epoch in range(EPOCHS):
    for x, y in loader:
        optimizer.zero_grad()
        out = model(x)
        loss = ((out - y) ** 2).sum()
        loss.backward()
        means.append(float(out.mean().item()))
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        print("loss {:.4f}".format(loss.item()))
        optimizer.step()
losses.extend(means)
"""

# minDiffusion's loop (superminddpm.py): a loss EMA under if/else and a tqdm bar's
# description between the backward pass and the step
EMA_AND_A_PROGRESS_BAR = """\
import torch
from tqdm import tqdm

model = make_model()
optim = torch.optim.Adam(model.parameters(), lr=0.01)
emas = []
for epoch in range(EPOCHS):
    pbar = tqdm(loader, disable=True)
    loss_ema = None
    for x, y in pbar:
        optim.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        if loss_ema is None:
            loss_ema = loss.item()
        else:
            loss_ema = 0.9 * loss_ema + 0.1 * loss.item()
        pbar.set_description(f"loss: {loss_ema:.4f}")
        emas.append(loss_ema)
        optim.step()
losses.extend(emas)
"""

SHAPES = {
    "a loss EMA under if/else and a progress bar": EMA_AND_A_PROGRESS_BAR,
    "a running sum and a record between backward and step": RUNNING_SUM_BETWEEN,
    "records around a folded clip": WITH_A_FOLDED_CLIP,
}


@pytest.mark.parametrize("source", SHAPES.values(), ids=SHAPES.keys())
def test_values_recorded_between_backward_and_step_match_torch(source: str) -> None:
    translated, rel = translated_rel(source, exact=True)  # torch's clip: max_norm / (norm + 1e-6)
    assert BEGIN not in translated and "nnx.value_and_grad(" in translated, translated
    assert rel < EXACT, (rel, translated)
