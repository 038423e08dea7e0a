"""A hyper-parameter naming a NumPy array (``max_norm = np.array(10.0)``) that the code also
reads elsewhere may be written in place between steps (``m[...] = 0.05``, ``.fill``,
``np.copyto``): torch reads its value at every step, the translation once, so it stays torch
code (probe s30 F8). Twin: an array only handed to the torch call converts."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToOptax
from tests.support import run_codemod

LOOP = """\
import numpy as np
import torch

max_norm = np.array(10.0)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for i, batch in enumerate(batches):
    opt.zero_grad()
    batch().backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()
{after}"""


@pytest.mark.parametrize(
    "write", ["    max_norm[...] = 0.05\n", "    max_norm.fill(0.05)\n", "    m = max_norm\n"]
)
def test_an_array_read_elsewhere_keeps_the_clip(write: str) -> None:
    output = run_codemod(LOOP.format(after=write), TorchToOptax)
    assert "`max_norm=max_norm` names a NumPy array the code also reads at" in output, output
    assert "    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n" in output


def test_an_array_only_handed_to_the_clip_folds() -> None:
    output = run_codemod(LOOP.format(after=""), TorchToOptax)
    assert "opt = optax.chain(" in output and "max_norm_1=max_norm" in output, output
    assert "names a NumPy array" not in output, output
