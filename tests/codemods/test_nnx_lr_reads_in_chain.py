"""optimizer.TorchToNNX: reads of the lr of an optimizer whose folded schedule sits in a chain
(weight decay at its head) or in ``optax.inject_hyperparams`` (OneCycleLR) become the schedule
at the nnx.Optimizer's update count; the nearby shapes where torch's lr is not that escape."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import run_codemod

HEADER = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
sched = {scheduler}
"""
STEP_LR = "torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)"
ONE_CYCLE = "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=100)"
READ = "float(sched(int(opt.step[...])))"
STEP = """\
    loss = ((model(x) - y) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


def convert(code: str, scheduler: str = STEP_LR) -> str:
    return run_codemod(HEADER.format(scheduler=scheduler) + textwrap.dedent(code), TorchToNNX)


def test_a_read_of_a_schedule_chained_after_weight_decay_is_the_schedule_at_the_count() -> None:
    output = convert(
        "for x, y in loader:\n" + STEP + "    sched.step()\n" + "print(sched.get_last_lr()[0])\n"
    )
    assert "optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(learning_rate=sched" in output
    assert f"print({READ})" in output and BEGIN not in output, output


def test_a_param_groups_read_of_a_chained_schedule_is_the_schedule_at_the_count() -> None:
    output = convert(
        "for x, y in loader:\n" + STEP + "    sched.step()\n" + 'print(opt.param_groups[0]["lr"])\n'
    )
    assert f"print({READ})" in output and BEGIN not in output, output


def test_a_read_of_an_injected_one_cycle_schedule_is_the_schedule_at_the_count() -> None:
    code = "for x, y in loader:\n" + STEP + "    sched.step()\n" + "print(sched.get_last_lr()[0])\n"
    output = convert(code, ONE_CYCLE)
    assert "optax.inject_hyperparams(optax.sgd)(learning_rate=sched, momentum=" in output
    assert f"print({READ})" in output and BEGIN not in output, output


def test_a_read_before_the_first_step_is_the_schedule_at_the_count() -> None:
    output = convert(
        "print(sched.get_last_lr()[0])\nfor x, y in loader:\n" + STEP + "    sched.step()\n"
    )
    assert f"print({READ})" in output and BEGIN not in output, output


def test_the_whole_list_of_last_lrs_of_a_chained_schedule_escapes() -> None:
    output = convert(
        "for x, y in loader:\n" + STEP + "    sched.step()\n" + "print(sched.get_last_lr())\n"
    )
    assert BEGIN in output and READ not in output, output
    assert "print(sched.get_last_lr())" in output


def test_a_read_between_the_optimizer_and_the_scheduler_step_in_a_chain_escapes() -> None:
    code = (
        "for x, y in loader:\n" + STEP + '    print(opt.param_groups[0]["lr"])\n    sched.step()\n'
    )
    output = convert(code)
    assert BEGIN in output and READ not in output, output


def test_a_read_of_a_rebound_scheduler_escapes() -> None:
    code = (
        "for x, y in loader:\n" + STEP + "    sched.step()\n"
        f"sched = {STEP_LR}\n" + "print(sched.get_last_lr()[0])\n"
    )
    output = convert(code)
    assert BEGIN in output and READ not in output, output


def test_a_read_of_a_scheduler_stepped_under_a_condition_in_an_epoch_loop_reads_the_count() -> None:
    # its steps are counted where they run (analysis/counted.py): the read is the written lr
    code = (
        "for epoch in range(3):\n"
        "    for i, (x, y) in enumerate(loader):\n"
        + textwrap.indent(STEP, "    ")
        + "        if i % 2 == 0:\n            sched.step()\n"
        + "    print(sched.get_last_lr()[0])\n"
    )
    output = convert(code)
    assert BEGIN not in output and "sched(sched_count)" in output, output
    assert 'print(float(opt.opt_state[1].hyperparams["learning_rate"][...]))' in output, output
