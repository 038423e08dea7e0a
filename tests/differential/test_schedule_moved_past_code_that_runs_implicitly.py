"""Probe s35O, F4 (F2 continued, fixed): a statement between the optimizer and its schedule
runs code of the file without a call written in it (a decorator without parentheses, a
class body, a property read, an overloaded operator), and that code rebinds a name the
moved schedule reads (``global MAX``). ``Planner._changed_for`` looked for calls, so the
schedule moved up past it and read the old value: measured 1.76 relative off torch (float64,
60 updates).
Now, when a moved name may be rebound without being named (``_rebindable_by_calls``), a
statement between that may run code (``plan_walks.may_run_code``: decorators, class bodies,
attribute and item access, operators...) keeps the scheduler in its escape. The twins (the
same statements, the function rebinding another name) still fold and match torch."""

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
def test_code_run_between_escapes(name: str) -> None:
    translation = translate(HEAD + CASES[name] + TAIL, exact=True)
    reasons = [r.reason for r in translation.escapes if "lr_scheduler" in r.api]
    assert any("runs between the optimizer and the schedule" in r for r in reasons), reasons


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_twins_rebinding_another_name_fold_and_match_torch(name: str) -> None:
    twin = CASES[name].replace("global MAX\n", "global OTHER\n").replace("MAX = 0.5", "OTHER = 0.5")
    assert twin != CASES[name]
    rel, translation = measure_loop(HEAD + twin + TAIL, exact=True)
    assert "learning_rate=sched" in translation.code, translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"
