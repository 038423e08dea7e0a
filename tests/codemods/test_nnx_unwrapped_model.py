"""NNX step: a loss calling the wrapped model through the wrapper (``model.module(x)`` after
``model = DDP(model)``, ``model._orig_mod(x)`` after ``torch.compile``) trains the model only
where the read provably sees that wrapper (the map's ``unwrapped_by``); the twins escape.
Their runs against torch: ``tests/differential/test_nnx_model_wrappers.py``."""

from __future__ import annotations

import pytest

from tests.support import nnx_output, renders_a_step, step_escaped_with

LOOP = """\
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

model = make_model()
{wrap}
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    opt.zero_grad()
    loss = ((model.{attribute}(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
    {after}
"""


def loop(wrap: str = "model = DDP(model)", attribute: str = "module", after: str = "") -> str:
    return LOOP.format(wrap=wrap, attribute=attribute, after=after or "pass")


def test_the_wrapped_model_read_through_module_is_the_loss_functions_parameter() -> None:
    output = nnx_output(loop())
    assert renders_a_step(output), output
    assert "model(x)" in output and "model.module" not in output.split("def loss_fn")[1]


def test_the_translation_is_stable() -> None:
    output = nnx_output(loop())
    assert nnx_output(output) == output


READS_THE_WRAPPER = "the loss reads `model.{attribute}` of `model`, a wrapper"
NOT_THE_MODEL = "the forward pass does not call the trained model `model`"

TWINS = {  # the source, the reason its step escapes with
    "wrapped_on_one_branch_only": (
        loop(wrap="if distributed:\n    model = DDP(model)"),
        READS_THE_WRAPPER.format(attribute="module"),
    ),
    "compiled_read_through_module": (
        loop(wrap="model = torch.compile(model)"),
        READS_THE_WRAPPER.format(attribute="module"),
    ),
    "ddp_read_through_orig_mod": (
        loop(attribute="_orig_mod"),
        READS_THE_WRAPPER.format(attribute="_orig_mod"),
    ),
    "rebound_in_the_loop_after_the_read": (
        loop(after="model = DDP(make_model())"),
        NOT_THE_MODEL,
    ),
    "rewrapped_in_the_loop_after_the_read": (
        loop(after="model = DDP(model)"),
        READS_THE_WRAPPER.format(attribute="module"),
    ),
    "rewrapped_by_a_function_declaring_it_global": (
        loop(wrap="model = DDP(model)\ndef rewrap():\n    global model\n    model = DDP(model)"),
        READS_THE_WRAPPER.format(attribute="module"),
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_a_read_not_proven_to_be_the_wrapped_model_escapes(name: str) -> None:
    source, reason = TWINS[name]
    step_escaped_with(source, reason)


def test_the_escape_names_the_reads_that_translate() -> None:
    output = step_escaped_with(*TWINS["wrapped_on_one_branch_only"])
    assert "`.module` of DistributedDataParallel" in output, output
    assert "`._orig_mod` of torch.compile" in output, output
