"""pytorch/examples super_resolution's criterion: ``criterion = nn.MSELoss()`` then, under
``if cuda:``, ``criterion = criterion.cuda()`` (here ``.to(device)``: the map's self-returning
module methods, the same object on both paths). The loss calls that one loss module; the
NNX codemod's own output matches torch when run, float64, 36 updates, with and without the
move: every recorded loss and the final parameters."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import run_nnx_loop, run_torch_loop, translate_nnx, worst_rel

MOVED_CRITERION = """\
import torch
import torch.nn as nn
import torch.optim as optim

device = torch.device("cpu")
model = make_model()
criterion = nn.MSELoss()

if MOVED:
    model = model.to(device)
    criterion = criterion.to(device)

optimizer = optim.Adam(model.parameters(), lr=0.01)


def train(epoch):
    for iteration, (input, target) in enumerate(loader, 1):
        optimizer.zero_grad()
        loss = criterion(model(input), target)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()


for epoch in range(EPOCHS):
    train(epoch)
"""

# What the user ports with the model (left as torch code): the loss module, the device moves.
PORTED = (
    ("nn.MSELoss()", "(lambda out, y: ((out - y) ** 2).mean())"),
    ("model = model.to(device)", "model = model"),
    ("criterion = criterion.to(device)", "criterion = criterion"),
)


def ported(translated: str) -> str:
    for torch_code, nnx_code in PORTED:
        assert torch_code in translated, torch_code
        translated = translated.replace(torch_code, nnx_code)
    return translated


@pytest.mark.parametrize("moved", [True, False])
def test_a_criterion_moved_to_its_device_matches_torch(moved: bool) -> None:
    translated = translate_nnx(MOVED_CRITERION)
    assert BEGIN not in translated and "nnx.value_and_grad" in translated, translated
    names = {"MOVED": moved}
    torch_run = run_torch_loop(MOVED_CRITERION, names=names)
    nnx_run = run_nnx_loop(MOVED_CRITERION, ported(translated), names=names)
    assert len(torch_run.losses) == 36
    assert worst_rel(torch_run, nnx_run) < EXACT


def test_a_second_run_changes_nothing() -> None:
    once = translate_nnx(MOVED_CRITERION)
    assert translate_nnx(once) == once
