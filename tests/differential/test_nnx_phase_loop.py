"""The transfer-learning tutorial's loop (issue 13) translated by ``optimizer.TorchToNNX``: a
``train`` and a ``val`` phase each epoch, the StepLR handed to ``train_model`` and stepped
there under ``if phase == 'train':`` (the lr written as ``scheduler(epoch + 1)``), and the
tutorial's step: backward and step under ``if phase == 'train':`` in
``with torch.set_grad_enabled(phase == 'train'):`` after the forward pass (the step rendered
in that branch, the forward pass as written in an ``else:``). Run against PyTorch in float64:
every loss of both phases (and the tutorial's predictions) and the final parameters, 30
updates over 3 epochs (``nnx_loops.EPOCHS``), 3 x 2 validation batches without update."""

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

TUTORIAL = """\
import torch
from torch.optim import lr_scheduler


def train_model(model, optimizer, scheduler, loaders, num_epochs):
    for epoch in range(num_epochs):
        for phase in ['train', 'val']:
            if phase == 'train':
                model.train()
            else:
                model.eval()
            for inputs, labels in loaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == 'train'):
                    outputs = model(inputs)
                    preds = outputs.argmax(1)
                    loss = ((outputs - labels) ** 2).mean()
                    if phase == 'train':
                        loss.backward()
                        optimizer.step()
                losses.append(loss.item())
                losses.append(float((preds == labels.argmax(1)).sum()))
            if phase == 'train':
                scheduler.step()


def main(model, loaders):
    optimizer_ft = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=1, gamma=0.5)
    train_model(model, optimizer_ft, exp_lr_scheduler, loaders, EPOCHS)


main(make_model(), {'train': loader[:10], 'val': loader[10:]})
"""

LOOPS = {
    "the_tutorials_loop": TUTORIAL,
    "step_lr_of_sgd_momentum": TRAIN_MODEL.format(
        optimizer="SGD(model.parameters(), lr=0.1, momentum=0.9)",
        scheduler="StepLR(optimizer_ft, step_size=1, gamma=0.5)",
    ),
    "exponential_lr_of_adam": TRAIN_MODEL.format(
        optimizer="Adam(model.parameters(), lr=1e-2)",
        scheduler="ExponentialLR(optimizer_ft, gamma=0.6)",
    ),
    # the name rebound after its one call (s19: the value the call hands on is dead there)
    "step_lr_name_rebound_after_the_call": TRAIN_MODEL.format(
        optimizer="SGD(model.parameters(), lr=0.1, momentum=0.9)",
        scheduler="StepLR(optimizer_ft, step_size=1, gamma=0.5)",
    ).replace(
        "loaders, EPOCHS)\n",
        "loaders, EPOCHS)\n    exp_lr_scheduler = None\n    losses.append(0.0)\n",
    ),
}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_scheduler_handed_to_train_model_matches_torch(name: str) -> None:
    translated, rel = translated_rel(LOOPS[name])
    assert BEGIN not in translated, translated
    assert "scheduler(epoch + 1)" in translated, translated
    assert rel < 1e-9, (name, rel, translated)


def test_the_tutorials_step_is_rendered_in_the_train_branch() -> None:
    translated, _ = translated_rel(TUTORIAL)
    branch = " " * 20 + "if phase == 'train':\n" + " " * 24 + "def loss_fn(model):"
    assert branch in translated, translated
    assert " " * 20 + "else:\n" + " " * 24 + "outputs = model(inputs)\n" in translated
