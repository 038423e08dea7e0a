"""A value the loss reads, computed before the forward pass by a function or class of the file
that runs the model (probe s41a F3: ``target = teacher(x)`` with ``def teacher(inputs): return
model(inputs * 0.5)``; torch differentiates through it, the NNX step computed it outside the
loss function: 0.129 relative off torch over 36 updates). The step escapes; a helper that does
not reach the model still lets it translate."""

from __future__ import annotations

import pytest

from tests.differential.nnx_loops import translate_nnx

SCRIPT = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
{helper}

for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        target = {call}
        pred = model(x)
        loss = ((pred - target) ** 2).mean() + ((pred - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""
REACHING = {
    "module_function": ("def teacher(inputs):\n    return model(inputs * 0.5)\n", "teacher(x)"),
    "default_argument": (
        "def teacher(inputs, m=model):\n    return m(inputs * 0.5)\n",
        "teacher(x)",
    ),
    "alias_in_the_function": (
        "net = model\n\n\ndef teacher(inputs):\n    return net(inputs * 0.5)\n",
        "teacher(x)",
    ),
    "class_method": (
        "class Aug:\n    net = model\n\n    @classmethod\n    def run(cls, inputs):\n"
        "        return cls.net(inputs * 0.5)\n",
        "Aug.run(x)",
    ),
}


@pytest.mark.parametrize("name", sorted(REACHING))
def test_the_step_escapes(name: str) -> None:
    helper, call = REACHING[name]
    translated = translate_nnx(SCRIPT.format(helper=helper, call=call))
    assert "ESCAPE-BEGIN torch.optim.Optimizer.step" in translated, translated
    assert "is computed outside the loss function" in translated


def test_a_helper_that_does_not_run_the_model_translates() -> None:
    helper = "def scaled(inputs):\n    return inputs * 0.5\n"
    translated = translate_nnx(SCRIPT.format(helper=helper, call="scaled(y)"))
    assert "ESCAPE" not in translated and "nnx.value_and_grad" in translated, translated
