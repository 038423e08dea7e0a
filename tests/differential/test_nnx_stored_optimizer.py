"""Issue 12 (deliverable 1), run: an optimizer handed to a trainer class that stores it in
``self.optimizer`` and steps it (the shape of pytorch/examples' ddp-tutorial-series
``Trainer``, without DDP), in one file and with the class in another file of the package: the
torch code as written against the NNX codemod's own output, on an NNX model with the same
weights, float64, 36 updates: every recorded loss and the final parameters < 1e-9 relative."""

from __future__ import annotations

from pathlib import Path

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    EPOCHS,
    batches,
    translated_package_runs,
    translated_rel,
    worst_rel,
)

TRAINER_CLASS = """\
class Trainer:
    def __init__(self, model, train_data, optimizer, save_every):
        self.model = model
        self.train_data = train_data
        self.optimizer = optimizer
        self.save_every = save_every

    def _run_batch(self, source, targets):
        self.optimizer.zero_grad()
        output = self.model(source)
        loss = ((output - targets) ** 2).mean()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def train(self, max_epochs):
        losses = []
        for epoch in range(max_epochs):
            for source, targets in self.train_data:
                losses.append(self._run_batch(source, targets))
        return losses
"""

ONE_FILE = f"""\
import torch


{TRAINER_CLASS}

model = make_model()
optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
trainer = Trainer(model, loader, optimizer, 10)
losses.extend(trainer.train(EPOCHS))
"""

MAIN = """\
import torch
from {package}.trainer import Trainer


def main(model, loader, epochs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    trainer = Trainer(model, loader, optimizer, 10)
    return trainer.train(epochs)
"""

UPDATE = "self.optimizer.update(self.model, grads)"


def test_the_class_in_the_file_matches_torch() -> None:
    translated, rel = translated_rel(ONE_FILE)
    assert BEGIN not in translated and UPDATE in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


def package_rel(tmp_path: Path, drop_update: bool = False) -> tuple[dict[str, str], float]:
    """The NNX translation of the package (class in ``trainer.py``, built in ``main.py``) and
    its worst relative difference from torch (``drop_update``: the runner's own check)."""
    package = "pkg_stored_optimizer"
    files = {"trainer.py": TRAINER_CLASS, "main.py": MAIN.format(package=package)}

    def port(outputs: dict[str, str]) -> dict[str, str]:
        if not drop_update:
            return outputs
        return {**outputs, "trainer.py": outputs["trainer.py"].replace(UPDATE, "pass")}

    outputs, torch_run, nnx_run = translated_package_runs(tmp_path, package, files, port)
    assert len(torch_run.losses) == len(batches()) * EPOCHS
    return outputs, worst_rel(torch_run, nnx_run)


def test_the_class_in_another_file_matches_torch(tmp_path: Path) -> None:
    outputs, rel = package_rel(tmp_path)
    assert all(BEGIN not in text for text in outputs.values()), outputs
    assert UPDATE in outputs["trainer.py"] and "nnx.Optimizer(" in outputs["main.py"]
    assert rel < EXACT, f"rel {rel:.3e}"


def test_the_package_runner_sees_a_missing_update(tmp_path: Path) -> None:
    _, rel = package_rel(tmp_path, drop_update=True)
    assert rel > 1e-6
