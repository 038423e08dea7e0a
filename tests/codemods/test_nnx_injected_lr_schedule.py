"""NNX: an optimizer whose translation computes its learning rate from the update count
(Adagrad's ``lr_decay``: ``learning_rate=lambda count: lr / (1 + count * lr_decay)``) does not
get its lr injected. inject_hyperparams re-evaluates a callable hyperparameter at every update,
so a plateau's per-epoch write was lost (probe s32 H3: 2.4e-2 relative over 36 updates), an lr
read gave the decayed rate where torch reads the group lr (0.45), and a ``param_groups`` write
became ``learning_rate=float(lambda ...)`` (TypeError). The constructor escapes, naming it."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import nnx_output

HEAD = """\
import torch

model = make_model()
opt = torch.optim.Adagrad(model.parameters(), lr=0.1, {decay}eps=0)
"""
LOOP = """\
for epoch in range(EPOCHS):
    total = 0.0
    for x, y in loader:
        {before}opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        total += loss.item()
        {after}
    {epoch_end}
"""
SHAPES = {  # (before the loop, in the loop before the step, after the step, at the epoch's end)
    "a_plateau_written_per_epoch": (
        "sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)\n",
        "",
        "pass",
        "sched.step(total)",
    ),
    "an_lr_write_through_param_groups": (
        "",
        'for g in opt.param_groups:\n            g["lr"] = 0.05\n        ',
        "pass",
        "pass",
    ),
    "an_lr_read_through_param_groups": ("", "", 'losses.append(opt.param_groups[0]["lr"])', "pass"),
}
REASON = "computes the rate from the update count (`lambda count: 0.1 / (1 + count * 0.05)`)"


def source(name: str, decay: str) -> str:
    setup, before, after, epoch_end = SHAPES[name]
    loop = LOOP.format(before=before, after=after, epoch_end=epoch_end)
    return HEAD.format(decay=decay) + setup + loop


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_an_lr_decayed_by_the_update_count_is_not_injected(name: str) -> None:
    output = nnx_output(source(name, "lr_decay=0.05, "))
    assert REASON in output, output
    code = "\n".join(line for line in output.splitlines() if "# ml_switcheroo" not in line)
    assert "float(lambda" not in code and "inject_hyperparams" not in code, code
    assert "opt = torch.optim.Adagrad(" in code


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_without_lr_decay_the_lr_is_injected(name: str) -> None:
    output = nnx_output(source(name, ""))
    assert "optax.inject_hyperparams(optax.adagrad)(learning_rate=0.1" in output, output
    assert BEGIN not in output.split("for epoch")[0]
