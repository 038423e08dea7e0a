"""A namesake template on a call of the model (``model(x).max(1)``) is written only when it
uses its receiver once (s26d): ``(jnp.take_along_axis(model(x), model(x).argmax(...)...),
model(x).argmax(...))`` ran the model three times in the loss function, so BatchNorm statistics
moved three times and dropout drew other masks for the values and for the indices."""

from __future__ import annotations

from tests.support import nnx_output, renders_a_step, step_escaped_with

HEADER = """\
import torch

model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
"""

LOOP = """
for x, y in loader:
    opt.zero_grad()
    loss = LOSS
    loss.backward()
    opt.step()
"""


def test_a_template_reading_a_model_call_twice_escapes() -> None:
    step_escaped_with(
        LOOP.replace("LOSS", "model(x).max(1)[0].mean()"), "`model(x).max(1)`", HEADER
    )


def test_a_template_reading_a_model_call_once_converts() -> None:
    output = nnx_output(LOOP.replace("LOSS", "model(x).pow(2).mean()"), HEADER)
    assert renders_a_step(output) and "(model(x) ** 2).mean()" in output, output
    assert output.count("model(x)") == 1, output
