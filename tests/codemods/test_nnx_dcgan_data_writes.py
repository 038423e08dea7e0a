"""optimizer.TorchToNNX on the old PyTorch DCGAN example (buffers rewritten in place through
``.data`` each iteration): a line of in-place calls changing a name the loss reads belongs to
the step (``Planner._forward_start``); before the model's first use it stays before the loss
function as written, after it only a single in-place call of names and numbers runs inside
(``_in_place_for_loss``); ``netD.state_dict()`` reads no gradient. Nearby shapes escape. Run
against torch: ``tests/differential/test_nnx_dcgan_data_writes.py``."""

from __future__ import annotations

from tests.differential.test_nnx_dcgan_data_writes import OLD_DCGAN
from tests.support import nnx_output, renders_a_step, step_escaped_with


def steps_rendered(source: str) -> int:
    return nnx_output(source).count("nnx.value_and_grad(")


def test_both_steps_of_the_old_dcgan_render() -> None:
    assert steps_rendered(OLD_DCGAN) == 2


def test_a_chain_of_in_place_calls_after_the_models_first_use_escapes() -> None:
    chained = OLD_DCGAN.replace(
        "        noise.data.resize_(batch_size, 3)\n        noise.data.normal_(0, 1)\n",
        "        noise.data.resize_(batch_size, 3).normal_(0, 1)\n",
    )
    step_escaped_with(
        chained,
        "`noise.data.resize_(batch_size, 3).normal_(0, 1)` in the forward pass is not an "
        "assignment to names",
    )


def test_an_in_place_write_from_the_model_before_the_loss_escapes() -> None:
    written = OLD_DCGAN.replace(
        "        input.data.resize_(batch_size, 4).copy_(real_cpu)\n",
        "        input.data.resize_(batch_size, 4).copy_(netD(real_cpu))\n",
    )
    step_escaped_with(written, "in the forward pass is not an assignment to names")


def test_a_write_of_a_name_the_loss_does_not_read_escapes() -> None:
    other = OLD_DCGAN.replace(
        "        noise.data.normal_(0, 1)\n",
        "        noise.data.normal_(0, 1)\n        spare.data.normal_(0, 1)\n",
    )
    step_escaped_with(other, "`spare.data.normal_(0, 1)` may change what the loss reads after it")


def test_a_call_on_the_buffer_that_is_not_in_place_escapes() -> None:
    drawn = OLD_DCGAN.replace("noise.data.normal_(0, 1)", "noise.data.normal(0, 1)")
    step_escaped_with(drawn, "`noise.data.normal(0, 1)` uses a name the loss reads after it")


def test_a_state_dict_with_its_parameters_keeps_the_discriminator_escaped() -> None:
    kept = OLD_DCGAN.replace("netD.state_dict()", "netD.state_dict(keep_vars=True)")
    output = step_escaped_with(
        kept, "`saved = netD.state_dict(keep_vars=True)` uses `netD` other than calling it"
    )
    assert not renders_a_step(output)


ONE_MODEL = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    opt.zero_grad()
    buffer.data.resize_(4, 2).copy_(x)
    loss = ((model(buffer) - y) ** 2).mean()
    loss.backward()
    opt.step()
"""


def test_a_buffer_written_before_a_single_models_forward_stays_before_the_loss() -> None:
    output = nnx_output(ONE_MODEL)
    assert renders_a_step(output), output
    assert "    buffer.data.resize_(4, 2).copy_(x)\n    def loss_fn(" in output, output


def test_a_buffer_written_from_the_model_before_its_forward_escapes() -> None:
    step_escaped_with(
        ONE_MODEL.replace(".copy_(x)", ".copy_(model(x))"),
        "in the forward pass is not an assignment to names",
    )
