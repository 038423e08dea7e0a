"""The reason given when a scheduler's step() is not next to its optimizer's step() does not
claim that the optimizer's step() is missing from the file when it is there under another
name (probe s34A: ``opt = t.opt; opt.step()`` with ``self.sched.step()`` in a method)."""

from __future__ import annotations

from tests.differential.harness import translate

ALIASED = """\
import torch
class Base:
    def make(self, model):
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, 5, 0.5)
    def upd(self):
        self.sched.step()
class Child(Base):
    def upd(self):
        pass
model = Model(params)
t = Child()
t.make(model)
opt = t.opt
for batch in batches:
    opt.zero_grad(); loss = batch(); loss.backward(); opt.step()
    t.upd()
"""

ELSEWHERE = """\
import torch
class Base:
    def make(self, model):
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, 5, 0.5)
    def upd(self):
        self.sched.step()
"""


def _scheduler_reason(source: str) -> str:
    translation = translate(source)
    reasons = [r.reason for r in translation.escapes if "lr_scheduler" in r.api]
    assert len(reasons) == 1, reasons
    return reasons[0]


def test_aliased_step_is_not_called_missing() -> None:
    reason = _scheduler_reason(ALIASED)
    assert "cannot tell whether step() runs once per optimizer update" in reason
    assert "step() is not in this file" not in reason
    assert "no `self.opt.step()` is found in this file" in reason


def test_no_step_at_all_still_escapes_with_the_search_named() -> None:
    reason = _scheduler_reason(ELSEWHERE)
    assert "no `self.opt.step()` is found in this file" in reason


SELECTED_BY_A_NAME = """\
import torch
from transformers import get_scheduler
NAME = "linear"
model = Model(params)
opt = torch.optim.AdamW(model.parameters(), lr=0.05)
sched = get_scheduler(NAME, opt, num_warmup_steps=5, num_training_steps=60)
NAME = "cosine"
for batch in batches:
    opt.zero_grad(); loss = batch(); loss.backward(); opt.step(); sched.step()
"""


def test_dispatch_reason_names_the_argument_given() -> None:
    """``get_scheduler(NAME, ...)``: the reason shows `NAME`, not only the parameter `name`."""
    translation = translate(SELECTED_BY_A_NAME)
    reasons = [r.reason for r in translation.escapes if r.api == "transformers.get_scheduler"]
    assert reasons == [
        "`name` (`NAME`) is not a literal, so which API this call stands for is not known "
        "before the program runs"
    ], reasons
