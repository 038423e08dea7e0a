"""Probe s35O, F5 (fixed): a statement between the optimizer and its schedule reads a
property (or an item, or applies an operator) whose method stores to an attribute path the
moved schedule reads (``max_lr=cfg.lr``). No call is written and nothing is stored in the
statement itself, so the schedule moved up past it and read the old value: measured 1.76
relative off torch (float64, 60 updates).
Now, when the moved values read a path and a class of the file has a method run without a
call (a decorated method, a dunder) whose body may change a value
(``plan_walks.defines_hidden_code``), a statement between that may run code keeps the
scheduler in its escape. The twins (the same getter a plain ``return``) fold and match torch.
A class defined in another file: ``test_hidden_code_of_another_file.py`` (probe s37 H1)."""

from __future__ import annotations

import pytest

from tests.differential.harness import EXACT, measure_loop, translate

HEAD = """\
import torch
class Cfg:
    lr = 0.1
cfg = Cfg()
"""
TAIL = """\
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=80)
for batch in batches:
    opt.zero_grad()
    loss = batch()
    loss.backward()
    opt.step()
    sched.step()
"""
OPT = "opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)\n"
CHANGE = "        cfg.lr = 0.5\n"
CASES = {
    "property_read": """\
class P:
    @property
    def x(self):
"""
    + CHANGE
    + """\
        return self._x
p = P()
p._x = 1
"""
    + OPT
    + "y = p.x\n",
    "item_read": """\
class P:
    def __getitem__(self, key):
"""
    + CHANGE
    + """\
        return self._x
p = P()
p._x = 1
"""
    + OPT
    + "y = p[0]\n",
    "overloaded_operator": """\
class P:
    def __add__(self, other):
"""
    + CHANGE
    + """\
        return self._x
p = P()
p._x = 1
"""
    + OPT
    + "y = p + 1\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_getter_changing_the_moved_path_escapes(name: str) -> None:
    translation = translate(HEAD + CASES[name] + TAIL, exact=True)
    reasons = [r.reason for r in translation.escapes if "lr_scheduler" in r.api]
    assert reasons, translation.code


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_plain_getter_twins_fold_and_match_torch(name: str) -> None:
    twin = CASES[name].replace(CHANGE, "")
    assert twin != CASES[name]
    rel, translation = measure_loop(HEAD + twin + TAIL, exact=True)
    assert "learning_rate=sched" in translation.code, translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"
