"""Probe s39, D6: ``trainer.py`` builds ``opt`` and ``sched`` at module level and steps both in
``train``; another file reaches the module's ``sched`` through a module object the text rule
(``module_globals._reading_line``: an import of the name, ``T.sched`` with ``T`` an import of
the module, ``getattr(T, "sched")``) does not see: ``vars(T)["sched"]``,
``sys.modules["pkg.trainer"].sched``, ``importlib.import_module("pkg.trainer").sched``, and
steps it again. Both targets folded the schedule. Fixed: in a file naming the module, any
attribute named like the global, or the name as a key of ``vars(x)``/``x.__dict__``, reads it."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.rewrite.engine import records_of

TRAINER = """\
import torch
from torch.optim.lr_scheduler import StepLR

model = torch.nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = StepLR(opt, step_size=5, gamma=0.5)


def train(loader):
    for b in loader:
        opt.zero_grad()
        loss = model(b).sum()
        loss.backward()
        opt.step()
        sched.step()
"""

UTIL = {
    "vars_of_the_module": "import s39pkg.trainer as T\n\n\ndef bump():\n    vars(T)['sched'].step()\n",
    "sys_modules": (
        "import sys\n\n\ndef bump():\n    sys.modules['s39pkg.trainer'].sched.step()\n"
    ),
    "importlib": (
        "import importlib\n\n\ndef bump():\n"
        "    importlib.import_module('s39pkg.trainer').sched.step()\n"
    ),
}


def _reasons(tmp_path: Path, util: str, target: type) -> list[str]:
    files = {
        "s39pkg/__init__.py": "",
        "s39pkg/trainer.py": TRAINER,
        "s39pkg/util.py": util,
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    context = CodemodContext(filename=str(tmp_path / "s39pkg/trainer.py"))
    target(context).transform_module(cst.parse_module(TRAINER))
    return [r.reason for r in records_of(context) if r.kind == "escaped" and "lr_sch" in r.api]


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
@pytest.mark.parametrize("name", sorted(UTIL))
def test_a_module_global_reached_dynamically_escapes(
    tmp_path: Path, name: str, target: type
) -> None:
    reasons = _reasons(tmp_path, UTIL[name], target)
    assert any("s39pkg/util.py:" in r for r in reasons), reasons


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
def test_a_file_naming_the_module_without_reaching_it_converts(
    tmp_path: Path, target: type
) -> None:
    util = "import s39pkg.trainer as T\n\n\ndef bump():\n    print(T.model)\n"
    assert _reasons(tmp_path, util, target) == []
