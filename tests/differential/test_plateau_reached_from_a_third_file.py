"""Probe s39, D5: D1's shape with ``self.plateau = ReduceLROnPlateau(self.opt)`` stepped with
the loss in ``train_step``: the scheduler joins the optimizer's chain (the constructor
converts, its ``step(metric)`` escapes to be fed as ``value=`` to each update), and a third
file that steps it again through an alias (``def bump(t): s = t.plateau; s.step(1.0)``) or
writes the optimizer's lr was not looked at: torch's plateau sees two metrics per update (or
works from the written lr), the chain one. Fixed: the chain path runs
``_attributes_used_elsewhere`` too; the constructor escapes naming the file."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.rewrite.engine import records_of

TRAINER = """\
import torch


class Trainer:
    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, patience=2)

    def train_step(self, k):
        self.opt.zero_grad()
        loss = self.model(k)
        loss.backward()
        self.opt.step()
        self.plateau.step(loss.item())
"""

UTIL = {
    "an_alias_steps_it": "def bump(t):\n    s = t.plateau\n    s.step(1.0)\n",
    "the_lr_written": "def bump(t):\n    o = t.opt\n    o.param_groups[0]['lr'] = 0.5\n",
}


def _constructor(tmp_path: Path, util: str, target: type) -> list[tuple[str, str]]:
    files = {"s39pkg/__init__.py": "", "s39pkg/trainer.py": TRAINER, "s39pkg/util.py": util}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    context = CodemodContext(filename=str(tmp_path / "s39pkg/trainer.py"))
    target(context).transform_module(cst.parse_module(TRAINER))
    api = "torch.optim.lr_scheduler.ReduceLROnPlateau"
    return [(r.kind, r.reason) for r in records_of(context) if r.api == api]


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
@pytest.mark.parametrize("name", sorted(UTIL))
def test_a_third_file_reaching_the_plateau_escapes(tmp_path: Path, name: str, target: type) -> None:
    found = _constructor(tmp_path, UTIL[name], target)
    assert [k for k, _ in found] == ["escaped"] and "s39pkg/util.py:" in found[0][1], found


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
def test_a_third_file_leaving_it_converts(tmp_path: Path, target: type) -> None:
    found = _constructor(tmp_path, "def bump(t):\n    pass\n", target)
    assert [k for k, _ in found] == ["converted"], found
