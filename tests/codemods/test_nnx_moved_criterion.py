"""A criterion rebound to itself moved (``criterion = criterion.cuda()`` under ``if cuda:``)
is the one loss module of the map it held; anything else reaching the name keeps the step
escaped, with the reason (trap twins of ``tests/differential/test_nnx_moved_criterion.py``)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.nnx_loops import translate_nnx

HEAD = """\
import torch
import torch.nn as nn

model = make_model()
criterion = nn.MSELoss()
"""

STEP = """
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
for input, target in loader:
    optimizer.zero_grad()
    loss = criterion(model(input), target)
    loss.backward()
    optimizer.step()
"""

CONVERTS = {
    "cuda": "if cuda:\n    criterion = criterion.cuda()\n",
    "to_device_twice": "if cuda:\n    criterion = criterion.to(device).cuda()\n",
}

ESCAPES = {
    # another value on one path: the move is of that value
    "replaced_then_moved": "if cuda:\n    criterion = make_model()\n    criterion = criterion.cuda()\n",
    "replaced_on_one_path": "if cuda:\n    criterion = make_model()\n",
    # two loss modules: not one object
    "another_loss": "if cuda:\n    criterion = nn.L1Loss()\n",
    "another_loss_moved": "if cuda:\n    criterion = nn.L1Loss().cuda()\n",
    # a method the map does not know to return the module itself
    "unknown_method": "if cuda:\n    criterion = criterion.half_precision()\n",
}


@pytest.mark.parametrize("name", sorted(CONVERTS))
def test_the_moved_criterion_converts(name: str) -> None:
    out = translate_nnx(HEAD + CONVERTS[name] + STEP)
    assert BEGIN not in out and "nnx.value_and_grad(loss_fn)(model)" in out, out


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_another_value_of_the_criterion_escapes(name: str) -> None:
    out = translate_nnx(HEAD + ESCAPES[name] + STEP)
    assert "nnx.value_and_grad" not in out.split("# ml_switcheroo: ESCAPE-END")[-1], out
    assert "the loss calls `criterion`" in out, out
