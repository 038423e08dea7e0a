"""A tensor method the map's ``exact`` template writes in JAX, called on the model's output
itself in the loss (the forward-forward example's ``self.forward(x_pos).pow(2)``), is written
by the template as on a name the loss function computes (``out = model(x); out.pow(2)``): the
NNX model's output is a JAX array as ``out`` is. The codemod's own output matches torch
(float64, 36 updates). Trap twins escape: a namesake without a template (``.numel()``), an
argument the template does not take (a variable exponent), the model held in an attribute (the
loss function's parameter is renamed there, so the call's code differs)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.support import renders_a_step

LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        pred = {pred}
        loss = ((pred - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""


@pytest.mark.parametrize("pred", ["model(x).pow(2)", "0.5 * model(x).pow(3) + model(x)"])
def test_a_template_on_the_models_output_converts_and_matches_torch(pred: str) -> None:
    translated, rel = translated_rel(LOOP.format(pred=pred))
    assert renders_a_step(translated) and BEGIN not in translated, translated
    assert ".pow(" not in translated, translated
    assert rel < 1e-12, (rel, translated)


TRAPS = {
    "a namesake without a template": "model(x).numel()",
    "a variable exponent": "model(x).pow(len(x) // 3)",
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_a_namesake_on_the_models_output_not_written_escapes(name: str) -> None:
    output = translate_nnx(LOOP.format(pred=TRAPS[name]))
    assert BEGIN in output and not renders_a_step(output), output
    assert "runs on JAX arrays there" in output, output


HELD = """\
import torch


class Holder:
    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.05)

    def fit(self):
        for epoch in range(EPOCHS):
            for x, y in loader:
                self.opt.zero_grad()
                loss = ((self.model(x).pow(2) - y) ** 2).mean()
                loss.backward()
                self.opt.step()
                losses.append(loss.item())


Holder(make_model()).fit()
"""


def test_a_namesake_on_an_attribute_models_output_escapes() -> None:
    output = translate_nnx(HELD)
    assert BEGIN in output and not renders_a_step(output), output
    assert "runs on JAX arrays there" in output, output
