"""A clip call followed by another backward pass before the optimizer's step: torch clips the
gradients so far and adds the later ones unclipped, a clip at the head of the chain would clip
their sum. It stays torch code with the place of that backward pass; a clip after the last
backward pass folds."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from tests.support import run_codemod

LOOP = """\
import torch

opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for x, y in loader:
    opt.zero_grad()
    loss1 = model(x).sum()
    loss1.backward()
{middle}
    opt.step()
"""

CLIP = "    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)\n"
LATER = "    loss2 = model(y).mean()\n    loss2.backward()\n"


@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
def test_a_clip_before_another_backward_pass_escapes(command: type) -> None:
    output = run_codemod(LOOP.format(middle=CLIP + LATER), command)
    assert "clip_by_global_norm" not in output.split("suggestion")[0], output
    assert "(`loss2.backward()` at example.py:10)" in output, output


def test_a_clip_after_the_last_backward_pass_folds() -> None:
    output = run_codemod(LOOP.format(middle=LATER + CLIP), TorchToOptax)
    assert "optax.chain(" in output and "a backward pass runs after it" not in output, output
