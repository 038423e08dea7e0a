"""optimizer.TorchToNNX: an optimizer rebuilt as training goes (``optimizer = torch.optim.Adam(
model.parameters(), lr=lr)`` in the epoch loop) steps when every binding of its name is a
translated constructor over the one model and the name is only the receiver of ``step()`` and
``zero_grad()``; a binding to something else, another model, or a use that belongs to one
construction only (a scheduler) keeps the step escaped. Run against torch:
``tests/differential/test_nnx_rebuilt_optimizer.py``."""

from __future__ import annotations

from tests.support import nnx_output, renders_a_step, step_escaped_with

LOOP = """\
import torch

model = make_model()
other = make_model()
lr = 0.01
optimizer = torch.optim.Adam(model.parameters(), lr=lr)
for epoch in range(n):
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
    if epoch % 20 == 0:
        lr /= 3
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
"""

REASON = "the optimizer `optimizer` is not one built here and translated"


def test_a_rebuilt_optimizer_of_the_same_model_steps() -> None:
    output = nnx_output(LOOP)
    assert renders_a_step(output) and output.count("nnx.Optimizer(model, ") == 2, output


def test_a_rebuild_of_another_class_steps() -> None:
    output = nnx_output(
        LOOP.replace(
            "optimizer = torch.optim.Adam(model.parameters(), lr=lr)\nfor",
            "optimizer = torch.optim.SGD(model.parameters(), lr=lr)\nfor",
        )
    )
    assert renders_a_step(output) and "optax.sgd(" in output, output


def test_a_rebuild_over_another_model_escapes() -> None:
    step_escaped_with(
        LOOP.replace(
            "        optimizer = torch.optim.Adam(model.",
            "        optimizer = torch.optim.Adam(other.",
        ),
        REASON,
    )


def test_a_binding_to_something_else_escapes() -> None:
    step_escaped_with(
        LOOP.replace(
            "        optimizer = torch.optim.Adam(model.parameters(), lr=lr)",
            "        optimizer = make_optimizer(model, lr)",
        ),
        REASON,
    )


def test_a_rebuilt_optimizer_with_a_scheduler_escapes() -> None:
    code = LOOP.replace(
        "for epoch", "sched = torch.optim.lr_scheduler.StepLR(optimizer, 5)\nfor epoch"
    )
    step_escaped_with(code, REASON)
