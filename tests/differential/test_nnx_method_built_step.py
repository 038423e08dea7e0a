"""build-nanogpt's shape (issue 12): ``model = GPT(...)``, ``optimizer =
model.configure_optimizers(...)`` (a method of the model's class in the same file returning
AdamW over rank-split groups of ``self``), the caller's loop stepping it. The method's
constructor becomes ``nnx.Optimizer(self, <masked adamw>, wrt=nnx.Param)`` and the caller's
step trains the receiver. The codemod's own output (the model class ported by hand to NNX, as a
user would) is run against torch: float64, 36 updates, losses and parameters compared. The
twins keep the step escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    converted,
    translated_package_runs,
    worst_rel,
)
from tests.support import gpt_groups, renders_a_step, write_package

MAIN = (
    """\
import torch
from torch import nn


class GPT(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)

    def configure_optimizers(self, weight_decay, learning_rate):
"""
    + gpt_groups("self", "weight_decay", " " * 8)
    + """\
        optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=(0.9, 0.95), eps=1e-8)
        return optimizer


def main(net, loader, epochs):
    losses = []
    model = GPT(net)
    optimizer = model.configure_optimizers(weight_decay=0.5, learning_rate=0.05)
    for epoch in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            loss = ((model(x) - y) ** 2).sum()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses
"""
)

# the user's port of the model class; ``named_parameters`` gives torch copies for the group
# lists the translation keeps (built and not used by the nnx.Optimizer)
NNX_CLASS = '''\
class GPT(nnx.Module):
    def __init__(self, net):
        self.net = net

    def __call__(self, x):
        return self.net(x)

    def named_parameters(self):
        """Torch copies of the parameters."""
        for path, value in nnx.to_flat_state(nnx.state(self, nnx.Param)):
            yield ".".join(map(str, path)), torch.tensor(np.array(value[...]))

    def configure_optimizers('''
TORCH_CLASS = MAIN[MAIN.index("class GPT") : MAIN.index("    def configure_optimizers(")]


def port(outputs: dict[str, str]) -> dict[str, str]:
    text = outputs["main.py"]
    assert TORCH_CLASS in text, text
    text = text.replace(TORCH_CLASS + "    def configure_optimizers(", NNX_CLASS)
    return {"main.py": "import numpy as np\nimport torch\n" + text}


def test_the_method_built_optimizer_trains_the_receiver_as_torch_does(tmp_path: Path) -> None:
    outputs, torch_run, nnx_run = translated_package_runs(
        tmp_path, "gptpkg", {"main.py": MAIN}, port
    )
    text = outputs["main.py"]
    assert BEGIN not in text and "optimizer = nnx.Optimizer(self, optax.adamw(" in text, text
    assert "optimizer.update(model, grads)" in text, text
    assert len(torch_run.losses) == 36
    rel = worst_rel(torch_run, nnx_run)
    assert rel < EXACT, f"rel {rel:.3e}\n{text}"


TWINS = {
    "receiver not the trained model": (
        "    optimizer = model.configure_optimizers(",
        "    other = GPT(net)\n    optimizer = other.configure_optimizers(",
    ),
    "method called twice": (
        "    for epoch in range(epochs):\n",
        "    spare = model.configure_optimizers(weight_decay=0.5, learning_rate=0.05)\n"
        "    for epoch in range(epochs):\n",
    ),
    "method changes the model": (
        "        optimizer = torch.optim.AdamW(",
        "        self.head = nn.Linear(2, 2)\n        optimizer = torch.optim.AdamW(",
    ),
    "model changed after the call": (
        "    for epoch in range(epochs):\n",
        "    model.head = nn.Linear(2, 2)\n    for epoch in range(epochs):\n",
    ),
    "model changed after the call by a function of the file": (
        "    for epoch in range(epochs):\n",
        "    def replace_head(m):\n        m.head = nn.Linear(2, 2)\n\n"
        "    replace_head(model)\n    for epoch in range(epochs):\n",
    ),
    "method overridden in a subclass": (
        "\n\ndef main(",
        "\n\nclass Small(GPT):\n    def configure_optimizers(self, weight_decay, learning_rate):\n"
        "        return torch.optim.SGD(self.parameters(), lr=learning_rate)\n\n\ndef main(",
    ),
    "different optimizers on branches": (
        "        optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=(0.9, 0.95), eps=1e-8)\n",
        "        if weight_decay:\n"
        "            optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=(0.9, 0.95), eps=1e-8)\n"
        "        else:\n"
        "            optimizer = torch.optim.SGD(self.parameters(), lr=learning_rate)\n",
    ),
    "optimizer over a part of the model": (
        "        optimizer = torch.optim.AdamW(optim_groups,",
        "        optimizer = torch.optim.AdamW(self.net.parameters(),",
    ),
    "method stores state on self": (
        "        optimizer = torch.optim.AdamW(",
        "        self.lr = learning_rate\n        optimizer = torch.optim.AdamW(",
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_twins_keep_the_step_escaped(name: str, tmp_path: Path) -> None:
    old, new = TWINS[name]
    assert old in MAIN
    write_package(tmp_path, {"main.py": MAIN.replace(old, new)}, "gptpkg")
    text = converted(tmp_path, "gptpkg")["main.py"]
    assert not renders_a_step(text) and BEGIN in text, text
