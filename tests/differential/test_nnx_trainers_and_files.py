"""Issue 13 (items 1-3), run: a trainer class whose step calls ``self.model`` over the
constructor's ``model``, a training step in another file of the package, and a per-epoch
StepLR whose epoch calls that step's function: the torch code as written against the NNX
codemod's own output (every file converted as the runner converts it, then imported), on an
NNX model with the same weights, float64, 36 updates: every recorded loss and the final
parameters < 1e-9 relative."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    EPOCHS,
    batches,
    translated_package_runs,
    translated_rel,
    worst_rel,
)

TRAINER_OF_THE_CONSTRUCTORS_MODEL = """\
import torch


class Trainer:
    def __init__(self, model, lr):
        self.model = model
        self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)

    def train_step(self, x, y):
        loss = ((self.model(x) - y) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item()


trainer = Trainer(make_model(), 1e-2)
for epoch in range(EPOCHS):
    for x, y in loader:
        losses.append(trainer.train_step(x, y))
"""

ENGINE = """\
def train_one_epoch(model, criterion, loader, optimizer):
    losses = []
    for x, y in loader:
        out = model(x)
        loss = criterion(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
"""

MAIN = """\
import torch
from {package}.engine import train_one_epoch


def main(model, loader, epochs):
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for epoch in range(epochs):
        epoch_losses = train_one_epoch(model, criterion, loader, optimizer)
        losses.extend(epoch_losses)
    return losses
"""

MAIN_PER_EPOCH = """\
import torch
from {package}.engine import train_one_epoch


def main(model, loader, epochs):
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    losses = []
    for epoch in range(epochs):
        epoch_losses = train_one_epoch(model, criterion, loader, optimizer)
        scheduler.step()
        losses.extend(epoch_losses)
    return losses
"""

# The user ports the criterion with the model (the codemod leaves torch.nn.MSELoss() as it is).
PORTED_CRITERION = ("torch.nn.MSELoss()", "(lambda out, y: ((out - y) ** 2).mean())")

MAIN_THROUGH_FIT = """\
import torch
from {package}.fit import fit


def main(model, loader, epochs):
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    return fit(model, loader, optimizer, epochs)
"""

# A function between the optimizer's file and the step's, passing model and optimizer on.
FIT = """\
from {package}.engine import train_one_epoch


def fit(model, loader, optimizer, epochs):
    losses = []
    for epoch in range(epochs):
        epoch_losses = train_one_epoch(model, loader, optimizer)
        losses.extend(epoch_losses)
    return losses
"""

ENGINE_OWN_LOSS = """\
def train_one_epoch(model, loader, optimizer):
    losses = []
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
"""

# name -> the package's files (``{package}``: its name)
PACKAGES = {
    "step_in_another_file": {"engine.py": ENGINE, "main.py": MAIN},
    "per_epoch_step_lr_across_files": {"engine.py": ENGINE, "main.py": MAIN_PER_EPOCH},
    "step_reached_through_a_function_passing_it_on": {
        "engine.py": ENGINE_OWN_LOSS,
        "fit.py": FIT,
        "main.py": MAIN_THROUGH_FIT,
    },
}


def package_rel(
    tmp_path: Path, name: str, edit: Callable[[str], str] = lambda main: main
) -> tuple[dict[str, str], float]:
    """The NNX translation of package ``name`` and its worst relative difference from torch
    (``edit``: applied to the translated ``main.py`` before it runs, to check the runner)."""
    package = f"pkg_{name}"
    files = {file: text.format(package=package) for file, text in PACKAGES[name].items()}

    def port(outputs: dict[str, str]) -> dict[str, str]:
        return {**outputs, "main.py": edit(outputs["main.py"]).replace(*PORTED_CRITERION)}

    outputs, torch_run, nnx_run = translated_package_runs(tmp_path, package, files, port)
    assert len(torch_run.losses) == len(batches()) * EPOCHS
    return outputs, worst_rel(torch_run, nnx_run)


def test_a_trainer_of_the_constructors_model_matches_torch() -> None:
    translated, rel = translated_rel(TRAINER_OF_THE_CONSTRUCTORS_MODEL)
    assert BEGIN not in translated and "self.opt.update(self.model, grads)" in translated
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_the_translated_package_matches_torch(tmp_path: Path, name: str) -> None:
    outputs, rel = package_rel(tmp_path, name)
    assert all(BEGIN not in text for text in outputs.values()), outputs
    assert "nnx.value_and_grad(" in outputs["engine.py"]
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


def test_the_per_epoch_package_writes_the_lr_per_epoch(tmp_path: Path) -> None:
    outputs, _ = package_rel(tmp_path, "per_epoch_step_lr_across_files")
    assert 'hyperparams["learning_rate"][...] = scheduler(epoch + 1)' in outputs["main.py"]


def test_the_package_runner_sees_a_missing_lr_write(tmp_path: Path) -> None:
    """The same runner, the NNX lr write left out (the schedule ignored): a difference."""
    lr_write = 'optimizer.opt_state.hyperparams["learning_rate"][...] = scheduler(epoch + 1)'
    _, rel = package_rel(
        tmp_path, "per_epoch_step_lr_across_files", lambda main: main.replace(lr_write, "pass")
    )
    assert rel > 1e-6
