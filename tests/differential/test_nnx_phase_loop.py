"""The transfer-learning tutorial's loop (issue 13) translated by ``optimizer.TorchToNNX``: a
``train`` and a ``val`` phase each epoch, the StepLR handed to ``train_model`` and stepped
there under ``if phase == 'train':``; the lr written as ``scheduler(epoch + 1)``. Run against
PyTorch in float64: every loss of both phases and the final parameters, 30 updates over 3
epochs (``nnx_loops.EPOCHS``), 3 x 2 validation batches without update."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.nnx_loops import translated_rel

TRAIN_MODEL = """\
import torch
from torch.optim import lr_scheduler


def train_model(model, optimizer, scheduler, loaders, num_epochs):
    for epoch in range(num_epochs):
        for phase in ['train', 'val']:
            for inputs, labels in loaders[phase]:
                if phase == 'train':
                    optimizer.zero_grad()
                    loss = ((model(inputs) - labels) ** 2).mean()
                    loss.backward()
                    optimizer.step()
                else:
                    loss = ((model(inputs) - labels) ** 2).mean()
                losses.append(loss.item())
            if phase == 'train':
                scheduler.step()


def main(model, loaders):
    optimizer_ft = torch.optim.{optimizer}
    exp_lr_scheduler = lr_scheduler.{scheduler}
    train_model(model, optimizer_ft, exp_lr_scheduler, loaders, EPOCHS)


main(make_model(), {{'train': loader[:10], 'val': loader[10:]}})
"""

LOOPS = {
    "step_lr_of_sgd_momentum": TRAIN_MODEL.format(
        optimizer="SGD(model.parameters(), lr=0.1, momentum=0.9)",
        scheduler="StepLR(optimizer_ft, step_size=1, gamma=0.5)",
    ),
    "exponential_lr_of_adam": TRAIN_MODEL.format(
        optimizer="Adam(model.parameters(), lr=1e-2)",
        scheduler="ExponentialLR(optimizer_ft, gamma=0.6)",
    ),
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_scheduler_handed_to_train_model_matches_torch(name: str) -> None:
    translated, rel = translated_rel(LOOPS[name])
    assert BEGIN not in translated, translated
    assert "scheduler(epoch + 1)" in translated, translated
    assert rel < 1e-9, (name, rel, translated)
