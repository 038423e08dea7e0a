"""optimizer.TorchToNNX: ``sched.get_last_lr()[0]`` and ``opt.param_groups[0]["lr"]`` read for
logging where the lr is written per epoch (a ReduceLROnPlateau stepped with a metric once per
epoch) become reads of the optimizer's stored lr; where it is not written (the plateau in the
optimizer's chain, an lr write through ``param_groups``) they escape."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import run_codemod

HEADER = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
"""

STORED = 'float(opt.opt_state.hyperparams["learning_rate"][...])'
EPOCH = """\
for epoch in range(10):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
{inner}    sched.step(loss.item())
{after}"""


def convert(inner: str = "", after: str = "") -> str:
    return run_codemod(HEADER + EPOCH.format(inner=inner, after=after), TorchToNNX)


def test_a_last_lr_read_after_the_plateau_step_reads_the_stored_lr() -> None:
    output = convert(after="    print(sched.get_last_lr()[0])\n")
    assert BEGIN not in output and f"    print({STORED})\n" in output, output


def test_a_param_groups_read_after_the_plateau_step_reads_the_stored_lr() -> None:
    output = convert(after='    lr = opt.param_groups[0]["lr"]\n')
    assert BEGIN not in output and f"    lr = {STORED}\n" in output, output


def test_an_lr_write_with_the_plateau_escapes() -> None:
    write = '        opt.param_groups[0]["lr"] = 0.1\n'
    output = convert(inner=write, after="    print(sched.get_last_lr()[0])\n")
    assert BEGIN in output and STORED not in output, output


def test_a_last_lr_read_of_a_plateau_stepped_every_batch_escapes() -> None:
    loop = """\
        for x, y in loader:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            sched.step(loss.item())
            print(sched.get_last_lr()[0])
        """
    output = run_codemod(HEADER + textwrap.dedent(loop), TorchToNNX)
    assert BEGIN in output and STORED not in output, output
