"""Two silent wrong numbers of main found by the session-40 probe (p40a): a module class of
the file overriding ``parameters()`` (torch's optimizer trains what it returns; the
translation trained every parameter of the model) and ``nn.Embedding(..., _freeze=True)``
(its weight is made without a gradient; the translation trained it). Both escape now; the
twins without the override or with ``_freeze=False`` still translate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.differential.test_hidden_code_of_another_file import _translated
from tests.support import converts_in_both_targets, escapes_in_both_targets

NET = """\
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4{freeze})
        self.out = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.emb(x).sum(1))
{override}

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
"""
OVERRIDE = (
    "\n    def parameters(self, recurse=True):\n        return self.out.parameters(recurse)\n"
)
SHAPES = {
    "parameters_overridden": (NET.format(freeze="", override=OVERRIDE), "defines `parameters`"),
    "embedding_frozen": (NET.format(freeze=", _freeze=True", override=""), "_freeze=True"),
}
TWINS = {
    "no_override": NET.format(freeze="", override=""),
    "embedding_not_frozen": NET.format(freeze=", _freeze=False", override=""),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_the_optimizer_escapes_in_both_targets(name: str) -> None:
    source, said = SHAPES[name]
    escapes_in_both_targets(source, "torch.optim.SGD", said)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_twin_translates(name: str) -> None:
    converts_in_both_targets(TWINS[name], "torch.optim.SGD")


def test_an_override_in_an_imported_file_escapes(tmp_path: Path) -> None:
    net = NET.format(freeze="", override=OVERRIDE).split("\nmodel = Net()")[0]
    train = "import torch\nfrom pkg.net import Net\nmodel = Net()\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    translation = _translated(tmp_path, {"pkg/net.py": net, "pkg/train.py": train})
    (record,) = [r for r in translation.escapes if r.api == "torch.optim.SGD"]
    assert "pkg/net.py" in record.reason and "defines `parameters`" in record.reason
