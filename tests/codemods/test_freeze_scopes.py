"""Where a nested def's decorators and defaults run (probe s41 F1): in the enclosing function,
not in the def. ``def evaluate(x, _=freeze(hidden))`` with a local ``hidden = deepcopy(model)``
inside ``evaluate`` freezes the trained model's ``hidden`` (1.49 relative off torch over 36
NNX updates when it converted as "a freeze of a copy kept to itself"). Both escape now in both
targets; the twin, the freeze of the copy inside the nested def's body, still converts."""

from __future__ import annotations

import pytest

from tests.differential.harness import translate
from tests.differential.nnx_loops import translate_nnx

SOURCE = """\
import copy

import torch


def freeze(m):
    for p in m.parameters():
        p.requires_grad_(False)
    return torch.no_grad()


def train(model, loader):
    hidden = model.hidden
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)

{evaluate}
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
"""
FROZEN = {
    "default": "    def evaluate(x, _unused=freeze(hidden)):\n"
    "        hidden = copy.deepcopy(model)\n        return hidden(x)\n",
    "decorator": "    @freeze(hidden)\n    def evaluate(x):\n"
    "        hidden = copy.deepcopy(model)\n        return hidden(x)\n",
    "annotation": "    def evaluate(x) -> freeze(hidden):\n"
    "        hidden = copy.deepcopy(model)\n        return hidden(x)\n",
}
TWIN = (
    "    def evaluate(x):\n        hidden = copy.deepcopy(model)\n        freeze(hidden)\n"
    "        return hidden(x)\n"
)


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_a_freeze_run_by_the_enclosing_function_escapes(name: str) -> None:
    source = SOURCE.format(evaluate=FROZEN[name])
    (record,) = [r for r in translate(source).escapes if r.api == "torch.optim.SGD"]
    assert "freezes parameters" in record.reason, record.reason
    assert "ESCAPE-BEGIN torch.optim.SGD" in translate_nnx(source)


def test_the_freeze_of_the_copy_in_the_body_converts() -> None:
    translation = translate(SOURCE.format(evaluate=TWIN))
    assert "torch.optim.SGD" not in {r.api for r in translation.escapes}, translation.code
