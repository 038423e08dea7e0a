"""Probe s35O, F4 (F2 continued): a statement between the optimizer and its schedule runs code
of the file without a call written in it (a decorator without parentheses, a class body, a
property read, an overloaded operator), and that code rebinds a name the moved schedule
reads (``global MAX``). ``Planner._changed_for`` looks for calls, so the schedule moves up
past it and reads the old value: measured 1.76 relative off torch (float64, 60 updates).
Correct: an escape of the scheduler, or equal numbers."""

from __future__ import annotations

import pytest

from tests.differential.harness import EXACT, measure_loop, translate

HEAD = """\
import torch
MAX = 0.1
"""
TAIL = """\
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX, total_steps=80)
for batch in batches:
    opt.zero_grad()
    loss = batch()
    loss.backward()
    opt.step()
    sched.step()
"""
OPT = "opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)\n"
CASES = {
    "decorator_without_a_call": """\
def register(f):
    global MAX
    MAX = 0.5
    return f
"""
    + OPT
    + """\
@register
def helper():
    pass
""",
    "class_body": OPT
    + """\
class Settings:
    global MAX
    MAX = 0.5
""",
    "property_read": """\
class P:
    @property
    def x(self):
        global MAX
        MAX = 0.5
        return 1
p = P()
"""
    + OPT
    + "y = p.x\n",
    "overloaded_operator": """\
class P:
    def __add__(self, other):
        global MAX
        MAX = 0.5
        return 1
p = P()
"""
    + OPT
    + "y = p + 1\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_code_run_between_escapes_or_matches_torch(name: str) -> None:
    source = HEAD + CASES[name] + TAIL
    translation = translate(source, exact=True)
    if any("lr_scheduler" in r.api for r in translation.escapes):
        return  # an escape: correct
    rel, translation = measure_loop(source, exact=True)
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"
