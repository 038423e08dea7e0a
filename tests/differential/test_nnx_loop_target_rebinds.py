"""A name the loss reads that the ``for`` around the step binds anew each iteration (``for x,
y in loader:``) is not the value a statement elsewhere computes from the model (minDiffusion:
``x = model.sample(16)`` after the batch loop, s31 corpus): the step translates, and matches
torch when run (float64, 36 updates: every loss and the final weights). Trap twins, each
escaping: the model's value bound in the loop's body before the step, a ``while`` loop, a name
the ``for`` does not bind (the last two with the value computed with a gradient), a walrus in
the loop's body (s42: before, it escaped only through the ``no_grad`` binding)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.support import renders_a_step

LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        x = model(x)
"""
REASON = "which the loss reads, is computed from the model outside the step"


def test_the_batch_rebinds_the_name_each_iteration_and_the_step_matches_torch() -> None:
    translated, rel = translated_rel(LOOP)
    assert BEGIN not in translated and renders_a_step(translated), translated
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"


WITH_GRADIENT = LOOP.replace(
    "    with torch.no_grad():\n        x = model(x)\n", "    x = model(x)\n"
)
TWINS = {
    # the model's value reaches the loss: bound in the loop's body before the step
    "bound_in_the_body_before_the_step": LOOP.replace(
        "        opt.zero_grad()\n", "        x = model(x) + x\n        opt.zero_grad()\n", 1
    ),
    # a while loop binds nothing each iteration (the model's value computed with a gradient:
    # under `torch.no_grad()` it carries none and stays outside the loss function, s42 R6)
    "a_while_loop": WITH_GRADIENT.replace(
        "    for x, y in loader:\n",
        "    i = 0\n    while i < len(loader):\n        x2, y = loader[i]\n        i += 1\n",
    ).replace("model(x) - y", "model(x) - y + 0 * x2"),
    # the for binds `y` only: `x` is the model's value of the last epoch
    "a_name_the_for_does_not_bind": WITH_GRADIENT.replace(
        "for x, y in loader:", "for _, y in loader:"
    ),
    # a walrus in the loop's body binds it again
    "a_walrus_in_the_body": LOOP.replace(
        "        losses.append(loss.item())\n",
        "        losses.append(loss.item())\n        if (x := model(x)) is None:\n            pass\n",
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_trap_twins_escape(name: str) -> None:
    output = translate_nnx(TWINS[name])
    assert not renders_a_step(output), output
    assert BEGIN in output, output
