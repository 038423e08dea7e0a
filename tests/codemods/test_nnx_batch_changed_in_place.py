"""NNX step: a loop's item changed in place (``x /= 2.0``) changes, in torch, the tensor the
loop got, which a list of tensors or of views of a data set hands out again at the next pass;
a JAX array is only rebound (probe s32 H2: 3.5 relative over 36 updates; an in-place method
raises on a JAX array, never other numbers). The step escapes
unless the loop is over a DataLoader (new tensors each pass), also through enumerate, zip and
tqdm."""

from __future__ import annotations

import pytest

from tests.support import nnx_output, renders_a_step, step_escaped_with

LOOP = """\
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
{setup}
for epoch in range(3):
    for {target} in {iterable}:
        opt.zero_grad()
        {change}
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""
REASON = "which may hand out the same tensors again at its next pass"

ESCAPES = {  # (setup, loop target, iterable, the change)
    "a_list_of_split_views": (
        "data = list(zip(X.split(6), Y.split(6)))",
        "x, y",
        "data",
        "x /= 2.0",
    ),
    "zip_of_split_views": ("", "x, y", "zip(X.split(6), Y.split(6))", "x /= 2.0"),
    "an_unknown_loader": ("", "x, y", "loader", "y *= 0.9"),
    "another_operator": ("", "x, y", "batches", "x -= 0.5"),
    "zip_of_a_loader_and_a_list": (
        "loader = DataLoader(ds, batch_size=6)",
        "(x, _), y",
        "zip(loader, targets)",
        "x /= 2.0",
    ),
}
CONVERTS = {
    "a_data_loader": ("loader = DataLoader(ds, batch_size=6)", "x, y", "loader", "x /= 2.0"),
    "enumerate_of_a_data_loader": (
        "loader = DataLoader(ds, batch_size=6)",
        "i, (x, y)",
        "enumerate(loader)",
        "x /= 2.0",
    ),
    "tqdm_of_a_data_loader": ("", "x, y", "tqdm(DataLoader(ds, batch_size=6))", "x /= 2.0"),
}


def loop(shape: tuple[str, str, str, str]) -> str:
    setup, target, iterable, change = shape
    return LOOP.format(setup=setup, target=target, iterable=iterable, change=change)


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_a_batch_changed_in_place_escapes_unless_each_pass_is_new(name: str) -> None:
    step_escaped_with(loop(ESCAPES[name]), REASON)


@pytest.mark.parametrize("name", sorted(CONVERTS))
def test_a_batch_of_a_data_loader_changed_in_place_converts(name: str) -> None:
    output = nnx_output(loop(CONVERTS[name]))
    assert renders_a_step(output), output
