"""Probe s35O, F2 (fixed): the schedule moves next to its optimizer (up, or the optimizer moves down
to it). A call between the two that rebinds a name the moving arguments read, through a
``global`` (or ``nonlocal``) declaration in a function of the file, is not seen as a change
(``Planner._changed_for`` in analysis/plan_schedules.py counts a call only when it mentions
the name or the value may be mutable): the moved expression then reads the value from the
other side of the call. Measured 1.76 relative off torch (OneCycleLR ``max_lr=MAX`` read
before ``bump()`` set it), 1.68 (the optimizer's ``lr=LR`` read after ``bump()``), float64,
60 updates. Now ``_changed_for`` also counts any call that is not harmless when a moved
name may be rebound without being named (``_rebindable_by_calls``: declared ``global`` or
``nonlocal`` in the file, or ``Plan.global_shared``): the scheduler escapes. The twins (no
function rebinds the name, another name declared ``global``, the call after the scheduler)
still fold and match torch."""

from __future__ import annotations

import pytest

from tests.differential.harness import EXACT, measure_loop, translate

LOOP = """\
for batch in batches:
    opt.zero_grad()
    loss = batch()
    loss.backward()
    opt.step()
    sched.step()
"""
CASES = {
    "global_read_by_the_schedule": """\
import torch
MAX = 0.1
def bump():
    global MAX
    MAX = 0.5
opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
bump()
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX, total_steps=80)
"""
    + LOOP,
    "global_through_a_method": """\
import torch
MAX = 0.1
class Bumper:
    def bump(self):
        global MAX
        MAX = 0.5
b = Bumper()
opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
b.bump()
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX, total_steps=80)
"""
    + LOOP,
    "nonlocal_read_by_the_schedule": """\
import torch
def main(params, batches):
    MAX = 0.1
    def bump():
        nonlocal MAX
        MAX = 0.5
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    bump()
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX, total_steps=80)
"""
    + "\n".join("    " + line for line in LOOP.splitlines())
    + "\n    return opt\nopt = main(params, batches)\n",
    "global_read_by_the_optimizer_moved_down": """\
import torch
LR = 0.05
def bump():
    global LR
    LR = 0.2
opt = torch.optim.SGD(params, lr=LR, momentum=0.9)
bump()
gamma = 0.9
sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
"""
    + LOOP,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_call_rebinding_a_moved_value_escapes(name: str) -> None:
    translation = translate(CASES[name], exact=True)
    reasons = [r.reason for r in translation.escapes if "lr_scheduler" in r.api]
    assert any("runs between the optimizer and the schedule" in r for r in reasons), reasons
    assert "learning_rate=sched" not in translation.code, translation.code


TWINS = {
    "no_function_rebinds_it": CASES["global_read_by_the_schedule"].replace(
        "    global MAX\n    MAX = 0.5\n", "    return MAX\n"
    ),
    "another_name_declared_global": CASES["global_read_by_the_schedule"].replace(
        "    global MAX\n    MAX = 0.5\n", "    global OTHER\n    OTHER = 0.5\n"
    ),
    "the_call_after_the_scheduler": CASES["global_read_by_the_schedule"].replace(
        "bump()\nsched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX, total_steps=80)\n",
        "sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX, total_steps=80)\nbump()\n",
    ),
    "optimizer_down_past_a_harmless_call": CASES["global_read_by_the_optimizer_moved_down"].replace(
        "    global LR\n    LR = 0.2\n", "    return LR\n"
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_twins_fold_and_match_torch(name: str) -> None:
    assert TWINS[name] not in CASES.values(), name  # the replacement took
    rel, translation = measure_loop(TWINS[name], exact=True)
    assert "learning_rate=sched" in translation.code, translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"
