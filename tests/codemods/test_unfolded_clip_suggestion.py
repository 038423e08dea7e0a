"""A clip call before the step that the optimizer's chain cannot take (``norm_type=3.0`` in
stock mode, ``error_if_nonfinite=True``) is left out of the optax chain; the step's escape must
then say so, not that the clipping is in the chain (stop 24: it said "drop the clip call", and a
user following it trained without clipping). Its twin, a 2-norm clip, is in the chain."""

from __future__ import annotations

import pytest

from tests.support import run_codemod

LOOP = """\
import torch

model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1{extra})
    opt.step()
"""

FOLDED = "is now the head of `opt`'s optax chain: drop the clip call"


@pytest.mark.parametrize("extra", [", norm_type=3.0", ", error_if_nonfinite=True"])
def test_a_clip_left_out_of_the_chain_is_named_in_the_steps_escape(extra: str) -> None:
    output = run_codemod(LOOP.format(extra=extra))
    assert "opt = optax.sgd(learning_rate=0.1)" in output, output
    assert FOLDED not in output, output
    assert "is not in `opt`'s optax chain" in output, output
    assert "clip the gradients yourself, in order, before `opt.update`" in output, output


def test_a_two_norm_clip_is_in_the_chain_and_the_escape_says_so() -> None:
    output = run_codemod(LOOP.format(extra=""))
    assert "opt = optax.chain(optax.stateless(" in output, output
    assert FOLDED in output, output
    assert "is not in `opt`'s optax chain" not in output, output
