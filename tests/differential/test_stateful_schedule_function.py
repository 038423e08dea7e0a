"""Probe s39, D4: a ``LambdaLR`` function that keeps state between calls (``nonlocal g; g =
g * 0.99`` or a ``global``): torch calls it once when the scheduler is built and once per
``step()``; the folded optax schedule calls it whenever the schedule is evaluated (once per
update eagerly, once in all under ``jax.jit``, which keeps the value traced first), so the lr
follows the number of calls, not the step. Both targets folded it: the name the function
rebinds counted as one of its locals. Fixed: a name the function declares ``nonlocal`` or
``global`` is not local; the schedule escapes naming it."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.rewrite.engine import records_of

SOURCE = """\
import torch
from torch.optim.lr_scheduler import LambdaLR

G = 0.9


def fit(model, loader):
    g = 0.9

    def f(e):
{body}

    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = LambdaLR(opt, f)
    for b in loader:
        opt.zero_grad()
        loss = model(b)
        loss.backward()
        opt.step()
        sched.step()
"""

STATEFUL = {
    "nonlocal": "        nonlocal g\n        g = g * 0.99\n        return g ** e",
    "global": "        global G\n        G = G * 0.99\n        return G ** e",
}


def _escapes(body: str, target: type) -> list[str]:
    context = CodemodContext(filename="case.py")
    target(context).transform_module(cst.parse_module(SOURCE.format(body=body)))
    return [r.reason for r in records_of(context) if r.kind == "escaped" and "Lambda" in r.api]


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_a_schedule_function_keeping_state_escapes(name: str, target: type) -> None:
    reasons = _escapes(STATEFUL[name], target)
    declared = "g" if name == "nonlocal" else "G"
    assert any(f"`{declared}`" in r for r in reasons), reasons


@pytest.mark.parametrize("target", [TorchToOptax, TorchToNNX])
def test_a_schedule_function_reading_its_locals_folds(target: type) -> None:
    assert _escapes("        h = 0.9\n        return h ** e", target) == []
