"""A scheduler stepped before its optimizer in the same loop body (``sched.step()`` then
``opt.step()``, as in held-out real code): torch's update ``u`` (from 0) uses the schedule at
``u + 1``, so the optimizer gets ``lambda count: (schedule)(count + 1)``. Measured against
torch (float64, 60 updates; NNX: the whole loop, 36 updates). Trap twins escape: something
between the two that may skip the update (``continue``, a ``try`` around), the learning rate
read (the reads' translation would be one step ahead), a step under its own condition."""

from __future__ import annotations

import pytest

from tests.differential.harness import EXACT, measure_loop, translate
from tests.differential.nnx_loops import translate_nnx, translated_rel

HEAD = "import torch\nopt = torch.optim.SGD(params, lr=0.1, momentum=0.9)\n"
SCHEDULERS = {
    "StepLR": "torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5)",
    "CosineAnnealingLR": "torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=80)",
    "LinearLR": "torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=20)",
    "OneCycleLR": "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=100, "
    "cycle_momentum=False)",
    "LambdaLR": "torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))",
}
# where `sched.step()` sits in the loop body, before `opt.step()`
BODIES = {
    "first": "    sched.step()\n    opt.zero_grad()\n    loss = batch()\n    loss.backward()\n"
    "    opt.step()\n",
    "after the forward pass": "    opt.zero_grad()\n    loss = batch()\n    sched.step()\n"
    "    loss.backward()\n    opt.step()\n",
}


def _loop(scheduler: str, body: str) -> str:
    return HEAD + f"sched = {scheduler}\nfor batch in batches:\n" + body


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
@pytest.mark.parametrize("body", sorted(BODIES))
def test_stepped_before_the_update_matches_torch(scheduler: str, body: str) -> None:
    rel, translation = measure_loop(_loop(SCHEDULERS[scheduler], BODIES[body]), exact=True)
    assert "(count + 1)" in translation.code, translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


NNX_LOOP = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=0.05)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
for epoch in range(3):
    for x, y in loader:
        sched.step()
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""


def test_nnx_whole_loop_matches_torch() -> None:
    translated, rel = translated_rel(NNX_LOOP, exact=True)
    assert "sched.step()" not in translated and "(count + 1)" in translated, translated
    assert rel < EXACT, f"rel={rel:.3e}\n{translated}"


def test_nnx_escapes_a_step_among_the_training_steps_statements() -> None:
    """NNX's training step starts at the forward pass: a step() after it stays in the step's
    statements, so the scheduler escapes (s40's counted twin: tests/differential/
    test_nnx_counted_lr.py)."""
    source = NNX_LOOP.replace(
        "        sched.step()\n        opt.zero_grad()\n        loss = ((model(x) - y) ** 2).mean()\n",
        "        opt.zero_grad()\n        loss = ((model(x) - y) ** 2).mean()\n        sched.step()\n",
    )
    assert source != NNX_LOOP
    translated = translate_nnx(source)
    assert "ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR" in translated, translated
    assert "among the training step's statements" in translated


STEP = "    opt.zero_grad()\n    loss = batch()\n    loss.backward()\n    opt.step()\n"
TRAPS = {
    "a continue between": (
        "    sched.step()\n    if skip(batch):\n        continue\n" + STEP,
        "can skip the update",
    ),
    "a try around": (
        "    try:\n        sched.step()\n        loss = batch()\n        loss.backward()\n"
        "        opt.step()\n    except ValueError:\n        pass\n",
        "caught by the `try`",
    ),
    "the lr read": (
        "    sched.step()\n    print(sched.get_last_lr())\n" + STEP,
        "learning rate is read",
    ),
    "param_groups read": (
        "    sched.step()\n" + STEP + "    lr = opt.param_groups[0]['lr']\n",
        "learning rate is read",
    ),
    "under its own condition": (
        "    if ok(batch):\n        sched.step()\n" + STEP,
        "",
    ),
    "stepped twice": ("    sched.step()\n" + STEP + "    sched.step()\n", ""),
    # among the statements the step's escape hatch keeps (optax: from the backward pass)
    "after backward": (
        "    opt.zero_grad()\n    loss = batch()\n    loss.backward()\n    sched.step()\n"
        "    opt.step()\n",
        "among the training step's statements",
    ),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_trap_twins_escape(name: str) -> None:
    body, said = TRAPS[name]
    translation = translate(_loop(SCHEDULERS["StepLR"], body))
    (record,) = [r for r in translation.escapes if r.api.endswith("StepLR")]
    assert said in record.reason, record.reason
    assert "learning_rate=sched" not in translation.code
