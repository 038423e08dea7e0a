"""Folding a schedule moves the optimizer down to it or the schedule up to the optimizer (and a
named group dict's option into the optimizer call): a value they read must not change on the
way (probe s30 F1, F2, F6). Each change below keeps the scheduler torch code; the twins, a value
that cannot change there, fold."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import run_codemod

BETAS = """\
import torch

betas = [0.9, 0.999]
opt = torch.optim.Adam(params, lr=0.1, betas=betas)
{between}steps = len(batches) // 4
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=steps, gamma=0.5)
for x in batches:
    x.sum().backward()
    opt.step()
    sched.step()
"""

MILESTONES = """\
import torch

milestones = [30, 35]
opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
{between}sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.5)
for x in batches:
    x.sum().backward()
    opt.step()
    sched.step()
"""

CHANGES = {
    "item_store": "betas[0] = 0.5\n",
    "alias_item_store": "b = betas\nb[0] = 0.5\n",
    "del_then_insert": "del betas[0]\nbetas[0:0] = [0.5]\n",
    "global_function": "tweak()\n",
}


@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_list_changed_between_keeps_the_schedule(change: str, command: type) -> None:
    for template in (BETAS, MILESTONES):
        between = CHANGES[change].replace(
            "betas", "milestones" if template is MILESTONES else "betas"
        )
        output = run_codemod(template.format(between=between), command)
        assert BEGIN + " torch.optim.lr_scheduler." in output, output


def test_a_literal_tuple_folds() -> None:
    code = BETAS.replace("[0.9, 0.999]", "(0.9, 0.999)").format(between="print('built')\n")
    output = run_codemod(code, TorchToOptax)
    assert "learning_rate=sched" in output, output


SPE = """\
import torch

loader = list(range(8))
opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
{between}sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
for epoch in range(6):
    for batch in loader:
        batch.backward()
        opt.step()
    sched.step()
"""


@pytest.mark.parametrize(
    "between", ["loader = loader[:4]\n", "del loader[4:]\n", "train_loader = make(loader)\n"]
)
def test_the_steps_per_epoch_expression_changed_between_keeps_the_schedule(between: str) -> None:
    expression = "len(train_loader)" if "train_loader" in between else "len(loader)"
    code = SPE.format(between=between)
    output = run_codemod(code, TorchToOptax, steps_per_epoch=expression)
    assert "learning_rate=sched" not in output, output
    assert BEGIN + " torch.optim.lr_scheduler.StepLR" in output, output


def test_the_steps_per_epoch_expression_unchanged_folds() -> None:
    output = run_codemod(SPE.format(between=""), TorchToOptax, steps_per_epoch="len(loader)")
    assert "learning_rate=sched" in output, output


GROUPS = """\
import torch

wd = 0.3
g1 = {{"params": [p for p in model.parameters() if p.dim() >= 2], "weight_decay": wd}}
{between}opt = torch.optim.AdamW(
    [g1, {{"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}}],
    lr=0.02,
)
"""


@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
def test_a_named_group_option_rebound_before_the_optimizer_escapes(command: type) -> None:
    output = run_codemod(GROUPS.format(between="wd = 0.0\n"), command)
    assert "the group option `wd` is evaluated where the param groups are built" in output


def test_a_named_group_option_bound_once_masks() -> None:
    output = run_codemod(GROUPS.format(between=""), TorchToOptax)
    assert "weight_decay=wd, mask=" in output, output
