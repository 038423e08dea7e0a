"""Probe s39, D2: ``main`` builds ``opt`` and ``sched = StepLR(opt, ...)`` and steps both once
per update in its loop, and hands ``opt`` before the loop to ``warm(model, opt)``. A ``warm``
that steps ``opt`` itself escaped (``steps_in``); one that hands it on to a function stepping
it (in its own file or a third), writes its lr through ``param_groups`` or stores it where
other code may step it was trusted: both targets folded the schedule into the optimizer,
counting the warm-up's updates too (torch's ``sched`` does not: its schedule starts after
them), or missing the written lr. Fixed: the function handed the optimizer (this file's or
another file's) must read its parameter only as the receiver of a method other than a step
(``opt.zero_grad()``, ``opt.state_dict()``) or as ``opt.param_groups[i]["lr"]``; any other
use escapes the scheduler, naming ``file:line``."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.rewrite.engine import records_of

MAIN = """\
import torch
from s39pkg.util import warm


def main(model, loader):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    warm(model, opt)
    for b in loader:
        opt.zero_grad()
        loss = model(b)
        loss.backward()
        opt.step()
        sched.step()
"""

INNER = "def inner(o):\n    for _ in range(5):\n        o.step()\n"

ESCAPING = {
    "handed_on_in_its_file": "def warm(model, opt):\n    inner(opt)\n\n\n" + INNER,
    "handed_on_to_a_third_file": (
        "from s39pkg.util2 import inner\n\n\ndef warm(model, opt):\n    inner(opt)\n"
    ),
    "lr_written": "def warm(model, opt):\n    for g in opt.param_groups:\n        g['lr'] = 0.5\n",
    "stored": "HELD = []\n\n\ndef warm(model, opt):\n    HELD.append(opt)\n",
    "aliased": "def warm(model, opt):\n    o = opt\n    o.step()\n",
}
CONVERTING = {
    "unused": "def warm(model, opt):\n    print(model)\n",
    "zero_grad_and_lr_read": (
        "def warm(model, opt):\n    opt.zero_grad()\n    print(opt.param_groups[0]['lr'])\n"
    ),
}


def _translate(tmp_path: Path, util: str, target: type, main: str = MAIN) -> list[str]:
    files = {
        "s39pkg/__init__.py": "",
        "s39pkg/main.py": main,
        "s39pkg/util.py": util,
        "s39pkg/util2.py": INNER,
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    context = CodemodContext(filename=str(tmp_path / "s39pkg/main.py"))
    target(context).transform_module(cst.parse_module(main))
    return [r.reason for r in records_of(context) if r.kind == "escaped" and "lr_sch" in r.api]


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
@pytest.mark.parametrize("name", sorted(ESCAPING))
def test_an_optimizer_handed_on_escapes_the_schedule(
    tmp_path: Path, name: str, target: type
) -> None:
    reasons = _translate(tmp_path, ESCAPING[name], target)
    assert any("s39pkg/util.py:" in r for r in reasons), reasons


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
@pytest.mark.parametrize("name", sorted(CONVERTING))
def test_an_optimizer_only_read_by_the_callee_folds(
    tmp_path: Path, name: str, target: type
) -> None:
    assert _translate(tmp_path, CONVERTING[name], target) == []


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
def test_an_optimizer_handed_on_in_the_same_file_escapes(tmp_path: Path, target: type) -> None:
    main = MAIN.replace("from s39pkg.util import warm\n", "") + (
        "\n\ndef warm(model, optim):\n    inner(optim)\n\n\n" + INNER
    )
    reasons = _translate(tmp_path, "", target, main)
    assert any("main.py:" in r for r in reasons), reasons


HOLDER = {
    "hands_it_on": "    def go(self):\n        inner(self.o)\n",
    "reads_its_lr": "    def go(self):\n        print(self.o.param_groups[0]['lr'])\n",
}


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
@pytest.mark.parametrize("name", sorted(HOLDER))
def test_a_class_of_another_file_keeping_the_optimizer(
    tmp_path: Path, name: str, target: type
) -> None:
    """D2b: ``Holder(opt).go()`` with ``Holder`` (another file) keeping ``opt`` and handing it
    to ``inner`` from a method folded (``steps_in`` looks for a step in the class only)."""
    main = MAIN.replace("import warm", "import Holder").replace(
        "warm(model, opt)", "Holder(opt).go()"
    )
    util = (
        INNER
        + "\n\nclass Holder:\n    def __init__(self, o):\n        self.o = o\n\n"
        + HOLDER[name]
    )
    reasons = _translate(tmp_path, util, target, main)
    if name == "reads_its_lr":
        assert reasons == [], reasons
    else:
        assert any("s39pkg/util.py:" in r for r in reasons), reasons
