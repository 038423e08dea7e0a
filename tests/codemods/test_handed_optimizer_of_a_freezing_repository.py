"""An optimizer escaped because a file its file imports freezes parameters (or a file
importing it may) stays torch code: the files it is handed to keep its ``zero_grad()`` and
step. The dry run other files ask (does the constructor at file:line translate?) reads no
other file; before, it said yes, and ``engine.py``'s ``opt.zero_grad()`` was removed while
``main.py``'s optimizer stayed torch: the torch program then summed every batch's gradients
(s32, found while reviewing G8's twin check)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from tests.support import convert_package, write_package

MODELS = """\
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(3, 3)
        self.head = nn.Linear(3, 1)

    def forward(self, x):
        return self.head(self.backbone(x))


def freeze_backbone(m):
    for p in m.backbone.parameters():
        p.requires_grad = FROZEN
"""
ENGINE = """\
def train_one_epoch(model, loader, opt):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""
MAIN = """\
import torch

from handed.engine import train_one_epoch
from handed.models import Net, freeze_backbone

model = Net()
freeze_backbone(model)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    train_one_epoch(model, [], opt)
"""


def converted(root: Path, command: type) -> dict[str, str]:
    return convert_package(root, "handed", command)


@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
def test_a_file_handed_an_optimizer_escaped_for_an_imported_freeze_keeps_its_calls(
    tmp_path: Path, command: type
) -> None:
    files = {"models.py": MODELS.replace("FROZEN", "False"), "engine.py": ENGINE, "main.py": MAIN}
    write_package(tmp_path, files, "handed")
    outputs = converted(tmp_path, command)
    assert "freezes parameters" in outputs["main.py"], outputs["main.py"]
    assert outputs["engine.py"] == ENGINE, outputs["engine.py"]


def test_without_the_freeze_the_handed_optimizer_translates(tmp_path: Path) -> None:
    files = {"models.py": MODELS.replace("FROZEN", "True"), "engine.py": ENGINE, "main.py": MAIN}
    write_package(tmp_path, files, "handed")
    outputs = converted(tmp_path, TorchToOptax)
    assert "optax.sgd(learning_rate=0.1)" in outputs["main.py"], outputs["main.py"]
    assert "opt.zero_grad()" not in outputs["engine.py"], outputs["engine.py"]


SCRIPT_MAIN = MAIN.replace("from handed.engine", "from engine").replace(
    "from handed.models", "from models"
)


@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
def test_an_import_only_a_script_resolves_escapes_the_optimizers(
    tmp_path: Path, command: type
) -> None:
    """``from models import ...`` in a package's file names ``models.py`` beside it only when
    the file runs as a script; the index, rooted above the package, does not read it, and
    its freeze went unseen (the optimizer converted, training the frozen backbone)."""
    files = {
        "models.py": MODELS.replace("FROZEN", "False"),
        "engine.py": ENGINE,
        "main.py": SCRIPT_MAIN,
    }
    write_package(tmp_path, files, "handed")
    main = converted(tmp_path, command)["main.py"]
    assert "imports `engine` (handed/main.py:3) as a script does" in main, main
    assert "opt = torch.optim.SGD(" in main


def test_a_package_path_import_is_read(tmp_path: Path) -> None:
    files = {"models.py": MODELS.replace("FROZEN", "True"), "engine.py": ENGINE, "main.py": MAIN}
    write_package(tmp_path, files, "handed")
    assert "as a script does" not in converted(tmp_path, TorchToOptax)["main.py"]
