"""Probe s35N F1: a statement the NNX step keeps before the loss function (``_split_prefix``:
it does not name the model) that computes from a submodule of the trained model reached
through another name: ``enc = model.hidden`` then ``h = enc(x)``, ``layers = [model.hidden,
...]``, a dict of submodules, a parameter every caller passes ``model.hidden``. torch
differentiates through it; the translation ran it outside ``nnx.value_and_grad`` and lost that
gradient (0.53 relative off torch over 36 updates, float64). Now the names the loss reads are
followed through the values reaching them (``step_checks._model_value_through``) and the step
escapes saying so. Trap twins: the same shapes computing from the model inside the step, or
from values that do not reach the model, still convert, exactly."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel

LOOP = """\
import torch

model = make_model()
{alias}
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        {prefix}
        loss = ((model(x) - y) ** 2).mean() + 0.1 * (h ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

IN_A_FUNCTION = """\
import torch


def train(model, enc, opt):
    for epoch in range(EPOCHS):
        for x, y in loader:
            opt.zero_grad()
            h = enc(x)
            loss = ((model(x) - y) ** 2).mean() + 0.1 * (h ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())


model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
train(model, model.hidden, opt)
"""

ESCAPING = {
    "alias": LOOP.format(alias="enc = model.hidden", prefix="h = enc(x)"),
    "list": LOOP.format(alias="layers = [model.hidden, model.out]", prefix="h = layers[0](x)"),
    "dict": LOOP.format(alias='parts = {"enc": model.hidden}', prefix='h = parts["enc"](x)'),
    "dict_call": LOOP.format(alias="mods = dict(enc=model.hidden)", prefix='h = mods["enc"](x)'),
    "two_steps": LOOP.format(alias="enc = model.hidden\nfirst = enc", prefix="h = first(x)"),
    "parameter": IN_A_FUNCTION,
}

CONVERTING = {
    # the list built in the step names the model: the statement runs in the loss function
    "list_in_the_step": LOOP.format(
        alias="", prefix="subs = [model.hidden]\n        h = subs[0](x)"
    ),
    # values that do not reach the model stay before the loss function, as before
    "constant": LOOP.format(alias="SCALE = 0.5", prefix="h = x * SCALE"),
    "device": LOOP.format(
        alias='device = torch.device("cpu")', prefix="x = x.to(device)\n        h = x * 0.5"
    ),
}


@pytest.mark.parametrize("name", sorted(ESCAPING))
def test_a_prefix_computed_from_a_submodule_escapes(name: str) -> None:
    translated = translate_nnx(ESCAPING[name])
    assert BEGIN in translated, f"{name}: converted\n{translated}"
    assert "from the model" in translated and "gradient" in translated, translated


@pytest.mark.parametrize("name", sorted(CONVERTING))
def test_a_prefix_that_does_not_reach_the_model_still_converts_exactly(name: str) -> None:
    translated, rel = translated_rel(CONVERTING[name])
    assert BEGIN not in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}\n{translated}"
