"""Issue 13, pytorch/examples imagenet's step, run: ``criterion = nn.MSELoss().to(device)`` and
``model = model.to(device)`` in the caller, ``train(...)`` called once per epoch, the inputs
moved with ``.to(device, non_blocking=True)`` in the step, the output's accuracy read after it:
the torch script as written against the NNX codemod's own output on an NNX model with the same
weights, float64, 36 updates: every recorded loss and accuracy, and the final parameters; in
one file, and with ``train`` in another file than its caller (the repository index)."""

from __future__ import annotations

from pathlib import Path

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    EPOCHS,
    batches,
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    translated_package_runs,
    worst_rel,
)

IMAGENET_SHAPE = """\
import torch
import torch.nn as nn


def accuracy(output, target):
    return float(abs(output - target).max())


def train(train_loader, model, criterion, optimizer, epoch, device):
    model.train()
    for i, (images, target) in enumerate(train_loader):
        # move data to the same device as model
        images = images.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)

        # compute output
        output = model(images)
        loss = criterion(output, target)

        # measure accuracy and record loss
        acc1 = accuracy(output, target)
        losses.append(loss.item())
        losses.append(acc1)

        # compute gradient and do SGD step
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main_worker():
    device = torch.device("cpu")
    model = make_model()
    model = model.to(device)
    criterion = nn.MSELoss().to(device)
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=1e-4)
    for epoch in range(EPOCHS):
        train(loader, model, criterion, optimizer, epoch, device)


main_worker()
"""

# What the user ports with the model (the codemod leaves them as torch code): the loss
# module, the device moves of the data and of the model (jax arrays and NNX modules have no
# `.to`; `model.train()` is an NNX method too).
PORTED = (
    ("nn.MSELoss().to(device)", "(lambda out, y: ((out - y) ** 2).mean())"),
    ("images.to(device, non_blocking=True)", "images"),
    ("target.to(device, non_blocking=True)", "target"),
    ("model = model.to(device)", "model = model"),
)


def ported(translated: str) -> str:
    """``translated`` with the user's ports; each must be there (else the test is wrong)."""
    for torch_code, nnx_code in PORTED:
        assert torch_code in translated, torch_code
        translated = translated.replace(torch_code, nnx_code)
    return translated


def test_the_imagenet_shaped_step_matches_torch() -> None:
    translated = translate_nnx(IMAGENET_SHAPE)
    assert BEGIN not in translated and "has_aux=True" in translated, translated
    torch_run = run_torch_loop(IMAGENET_SHAPE)
    nnx_run = run_nnx_loop(IMAGENET_SHAPE, ported(translated))
    assert len(torch_run.losses) == 2 * 36
    assert worst_rel(torch_run, nnx_run) < EXACT


ENGINE = """\
def train(train_loader, model, criterion, optimizer, device):
    for i, (images, target) in enumerate(train_loader):
        images = images.to(device, non_blocking=True)
        output = model(images)
        loss = criterion(output, target)
        acc1 = float(abs(output - target).max())
        losses.append(loss.item())
        losses.append(acc1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""

MAIN = """\
import torch
import torch.nn as nn
from {package} import engine
from {package}.engine import train


def main(model, loader, epochs):
    device = torch.device("cpu")
    model = model.to(device)
    criterion = nn.MSELoss().to(device)
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=1e-4)
    engine.losses = []
    for epoch in range(epochs):
        train(loader, model, criterion, optimizer, device)
    return engine.losses
"""

PORTED_ACROSS_FILES = (
    ("nn.MSELoss().to(device)", "(lambda out, y: ((out - y) ** 2).mean())"),
    ("images.to(device, non_blocking=True)", "images"),
    ("model = model.to(device)", "model = model"),
)


def test_the_imagenet_shape_across_two_files_matches_torch(tmp_path: Path) -> None:
    package = "pkg_imagenet_shape"
    files = {"engine.py": ENGINE, "main.py": MAIN.format(package=package)}

    def port(outputs: dict[str, str]) -> dict[str, str]:
        assert all(BEGIN not in text for text in outputs.values()), outputs
        ported = {name: outputs[name] for name in files}
        for torch_code, nnx_code in PORTED_ACROSS_FILES:
            name = next(n for n, text in ported.items() if torch_code in text)
            ported[name] = ported[name].replace(torch_code, nnx_code)
        return ported

    _, torch_run, nnx_run = translated_package_runs(tmp_path, package, files, port)
    assert len(torch_run.losses) == 2 * len(batches()) * EPOCHS
    assert worst_rel(torch_run, nnx_run) < EXACT
