"""optimizer.TorchToNNX: the Hugging Face step (``outputs = model(**batch)``, ``loss =
outputs.loss``): the attribute ``.loss`` and the keyword of ``f(loss=...)`` are no reads of the
variable ``loss``; a dict of inputs built before the step is read by the loss function; a
dict computed from the model, or a model bound nowhere in the file, keeps the step escaped."""

from __future__ import annotations

from ml_switcheroo.codemods.optimizer import TorchToNNX
from tests.support import SwitcherooTest, nnx_output, renders_a_step, step_escaped_with

HEADER = """\
import torch

model = make_model()
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
"""


class HuggingFaceStepTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_outputs_loss_becomes_the_loss_functions_value(self) -> None:
        self.assertConverts(
            HEADER
            + """
for batch in loader:
    batch = {k: v.to(device) for k, v in batch.items()}
    outputs = model(**batch)
    loss = outputs.loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
""",
            """\
import optax
from flax import nnx

model = make_model()
optimizer = nnx.Optimizer(model, optax.adamw(learning_rate=5e-5, weight_decay=0.01), wrt=nnx.Param)

for batch in loader:
    batch = {k: v.to(device) for k, v in batch.items()}
    def loss_fn(model):
        outputs = model(**batch)
        loss = outputs.loss
        return loss
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
""",
        )


def test_a_keyword_named_like_the_loss_is_no_read_of_it() -> None:
    output = nnx_output(
        """
        for x, y in loader:
            dim = torch.sum(model(x) - y, dim=1).sum()
            dim.backward()
            optimizer.step()
            optimizer.zero_grad()
        """,
        HEADER,
    )
    assert renders_a_step(output), output


def test_a_loss_read_before_it_is_bound_still_escapes() -> None:
    step_escaped_with(
        """
        for x in loader:
            outputs = model(x) + loss
            loss = outputs.sum()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        """,
        "`loss` is read before the loss computes it",
        HEADER,
    )


def test_inputs_computed_from_the_model_before_the_step_escape() -> None:
    step_escaped_with(
        """
        batch = {"x": model.weight}
        for y in loader:
            outputs = model(**batch)
            loss = outputs.loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        """,
        "`batch`, which the loss reads, is computed from the model outside the step",
        HEADER,
    )


def test_a_model_bound_nowhere_in_the_file_escapes_saying_so() -> None:
    step_escaped_with(
        """
        import torch

        model.to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
        for batch in loader:
            outputs = model(**batch)
            loss = outputs.loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        """,
        "`model` is bound nowhere in this file",
    )
