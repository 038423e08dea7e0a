"""Probe s35O, F5 (open): a statement between the optimizer and its schedule reads a property
whose getter stores to an attribute path the moved schedule reads (``cfg.lr``). No call is
written and nothing is stored in the statement itself, so ``Planner._changed_for`` lets the
schedule move above it: measured 1.76 relative off torch (float64, 60 updates). Correct: an
escape of the scheduler, or equal numbers. (Contrived; catching it with
``plan_walks.may_run_code`` for every path argument would escape common shapes.)"""

from __future__ import annotations

from tests.differential.harness import EXACT, measure_loop, translate

SOURCE = """\
import torch
class Cfg:
    lr = 0.1
cfg = Cfg()
class P:
    @property
    def x(self):
        cfg.lr = 0.5
        return 1
p = P()
opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
y = p.x
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=80)
for batch in batches:
    opt.zero_grad()
    loss = batch()
    loss.backward()
    opt.step()
    sched.step()
"""


def test_a_property_read_changing_a_moved_path_escapes_or_matches_torch() -> None:
    translation = translate(SOURCE, exact=True)
    if any("lr_scheduler" in r.api for r in translation.escapes):
        return  # an escape: correct
    rel, translation = measure_loop(SOURCE, exact=True)
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"
