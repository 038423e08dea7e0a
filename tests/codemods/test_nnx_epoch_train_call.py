"""optimizer.TorchToNNX, a per-epoch scheduler whose epoch calls ``train(model, optimizer,
loader)`` of the same file (issue 13, item 3): the lr is written at ``scheduler.step()``; a
scheduler handed to a function as well (which may step it there too) escapes."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import run_codemod

SOURCE = """\
import torch


def train(model, optimizer, loader{extra}):
    for x, y in loader:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
{inside}

def main(model, loader, epochs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for epoch in range(epochs):
        train(model, optimizer, loader{passed})
        scheduler.step()
"""

WRITE = 'optimizer.opt_state.hyperparams["learning_rate"][...] = scheduler(epoch + 1)'


def convert(extra: str = "", inside: str = "", passed: str = "") -> str:
    source = SOURCE.format(extra=extra, inside=inside, passed=passed)
    return run_codemod(textwrap.dedent(source), TorchToNNX)


def test_a_train_call_in_the_epoch_keeps_the_per_epoch_write() -> None:
    output = convert()
    assert WRITE in output and BEGIN not in output, output


def test_a_scheduler_stepped_inside_train_as_well_escapes() -> None:
    output = convert(", scheduler", "    scheduler.step()\n", ", scheduler")
    assert WRITE not in output and BEGIN in output, output


def test_a_scheduler_only_handed_to_train_escapes() -> None:
    output = convert(", scheduler", "", ", scheduler")
    assert WRITE not in output and BEGIN in output, output
