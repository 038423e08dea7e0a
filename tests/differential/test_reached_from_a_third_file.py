"""Probe s39, D1: a trainer class (``trainer.py``) builds ``self.opt`` and ``self.sched`` and
steps both in ``train_step``; a THIRD file that never names the class reaches them through
something the text rules (``CrossFile.member_used_elsewhere``: ``<x>.sched.step()`` spelled
out; ``attribute_reached_elsewhere``: files naming the class) cannot see: an alias of a
parameter's attribute (``def bump(t): s = t.sched; s.step()``), ``getattr``/``vars``, the
scheduler handed on (``twice(t.sched)``), a mixin's ``self.sched``, a write of its
``last_epoch``, an extra ``t.opt.step()``. Both targets folded the schedule per update and
left the third file unmarked: torch's lr follows the extra steps, the translation's does not.
Fixed: ``CrossFile.attribute_used_elsewhere``: any use of the scheduler's (optimizer's)
attribute name in another file (``x.sched``, or the name as a string given to ``getattr``,
``setattr``, ``vars(x)[...]``) escapes the scheduler, naming ``file:line``."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.rewrite.engine import records_of

TRAINER = """\
import torch


class Trainer{bases}:
    def __init__(self, model, lr):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=5, gamma=0.5)

    def train_step(self, k):
        self.opt.zero_grad()
        loss = self.model(k)
        loss.backward()
        self.opt.step()
        self.sched.step()
"""

MAIN = """\
from s39pkg.trainer import Trainer
from s39pkg.util import bump


def main(model, loader):
    t = Trainer(model, 0.05)
    for k in loader:
        t.train_step(k)
        bump(t)
"""

ESCAPING = {
    "an_alias_of_a_parameter_steps_it": "def bump(t):\n    s = t.sched\n    s.step()\n",
    "getattr_steps_it": "def bump(t):\n    getattr(t, 'sched').step()\n",
    "vars_steps_it": "def bump(t):\n    vars(t)['sched'].step()\n",
    "handed_on_and_stepped": "def bump(t):\n    twice(t.sched)\n\n\ndef twice(s):\n    s.step()\n",
    "last_epoch_written": "def bump(t):\n    t.sched.last_epoch = 30\n",
    "an_alias_writes_the_lr": (
        "def bump(t):\n    o = t.opt\n    for g in o.param_groups:\n        g['lr'] = 0.01\n"
    ),
    "the_optimizer_stepped_again": "def bump(t):\n    t.opt.step()\n",
}

MIXIN = "class Stepper:\n    def bump(self):\n        s = self.sched\n        s.step()\n"


def _translate(tmp_path: Path, util: str, target: type, bases: str = "") -> tuple[str, list[str]]:
    files = {
        "s39pkg/__init__.py": "",
        "s39pkg/trainer.py": TRAINER.format(bases=bases),
        "s39pkg/util.py": util,
        "s39pkg/main.py": MAIN,
    }
    if bases:
        files["s39pkg/trainer.py"] = (
            "from s39pkg.util import Stepper\n" + files["s39pkg/trainer.py"]
        )
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    context = CodemodContext(filename=str(tmp_path / "s39pkg/trainer.py"))
    code = target(context).transform_module(cst.parse_module(files["s39pkg/trainer.py"])).code
    reasons = [r.reason for r in records_of(context) if r.kind == "escaped" and "lr_sch" in r.api]
    return code, reasons


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
@pytest.mark.parametrize("name", sorted(ESCAPING))
def test_a_third_file_reaching_the_scheduler_escapes(
    tmp_path: Path, name: str, target: type
) -> None:
    code, reasons = _translate(tmp_path, ESCAPING[name], target)
    assert any("s39pkg/util.py:" in r for r in reasons), (reasons, code)


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
def test_a_mixin_in_another_file_stepping_self_sched_escapes(tmp_path: Path, target: type) -> None:
    code, reasons = _translate(tmp_path, MIXIN, target, bases="(Stepper)")
    assert any("s39pkg/util.py:" in r for r in reasons), (reasons, code)


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
def test_a_third_file_using_other_attributes_leaves_it_folded(tmp_path: Path, target: type) -> None:
    code, reasons = _translate(tmp_path, "def bump(t):\n    s = t.other\n    s.step()\n", target)
    assert reasons == [] and "self.sched.step()" not in code, (reasons, code)
