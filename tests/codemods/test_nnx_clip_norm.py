"""optimizer.TorchToNNX: the norm ``clip_grad_norm_`` returns, and the clips whose norm (or
clipping) the translation cannot reproduce. The norm is ``optax.tree.norm(grads)`` only for
the 2-norm over the parameters the optimizer trains, with the clip folded into its tx; a clip
the tx cannot take escapes the step rather than being dropped with it."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import renders_a_step, run_codemod, stock_clip

NORM_LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    {clip}
    opt.step()
    print(grad_norm.item())
"""

ACCUMULATED_NORM = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for i, (x, y) in enumerate(loader):
    loss = ((model(x) - y) ** 2).mean() / 4
    loss.backward()
{body}
"""


def convert(code: str, **options: object) -> str:
    return run_codemod(textwrap.dedent(code), TorchToNNX, **options)


def assert_escaped_step(output: str) -> None:
    assert BEGIN in output and not renders_a_step(output), output


def test_a_norm_with_integer_norm_type_two_is_the_norm_of_the_gradients() -> None:
    clip = "grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5, norm_type=2)"
    output = convert(NORM_LOOP.format(clip=clip))
    assert "grad_norm = optax.tree.norm(grads)" in output, output
    assert f"optax.chain({stock_clip('0.5')}, optax.sgd(" in output, output


def test_a_norm_with_foreach_and_error_if_nonfinite_is_the_norm_of_the_gradients() -> None:
    clip = (
        "grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5, "
        "error_if_nonfinite=False, foreach=True)"
    )
    output = convert(NORM_LOOP.format(clip=clip))
    assert "grad_norm = optax.tree.norm(grads)" in output, output


def test_an_infinity_norm_is_the_inf_norm_of_the_gradients() -> None:
    clip = 'grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5, norm_type=float("inf"))'
    output = convert(NORM_LOOP.format(clip=clip))
    assert "grad_norm = optax.tree.norm(grads, ord=jnp.inf)" in output, output
    assert "optax.tree.norm(updates, ord=jnp.inf)" in output, output


def test_a_norm_of_order_three_escapes_the_step() -> None:
    clip = "grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5, norm_type=3.0)"
    output = convert(NORM_LOOP.format(clip=clip))
    assert_escaped_step(output)
    assert clip in output and "optax.sgd(learning_rate=0.1), wrt=nnx.Param)" in output, output


def test_an_unassigned_order_three_clip_escapes_the_step_instead_of_being_dropped() -> None:
    clip = "torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5, norm_type=3.0)"
    output = convert(NORM_LOOP.format(clip=clip).replace("grad_norm.item()", "loss.item()"))
    assert_escaped_step(output)
    assert clip in output, output
    assert "is not in the optimizer's tx (optax.tree.norm computes the 1-, 2- and inf" in output
    assert "drop the clip call" not in output, output


def test_an_infinity_norm_clip_with_exact_folds_and_the_step_renders() -> None:
    clip = "torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5, norm_type='inf')"
    output = convert(
        NORM_LOOP.format(clip=clip).replace("grad_norm.item()", "loss.item()"), exact=True
    )
    assert renders_a_step(output) and BEGIN not in output, output
    assert "optax_torch.clip_by_global_norm(0.5, norm_type='inf')" in output, output


def test_a_norm_of_a_part_of_the_model_escapes_the_step() -> None:
    clip = "grad_norm = torch.nn.utils.clip_grad_norm_(model.hidden.parameters(), 0.5)"
    output = convert(NORM_LOOP.format(clip=clip))
    assert_escaped_step(output)
    assert clip in output and "optax.tree.norm" not in output.split("ESCAPE-END")[-1], output


def test_a_norm_of_another_models_parameters_escapes_the_step() -> None:
    clip = "grad_norm = torch.nn.utils.clip_grad_norm_(critic.parameters(), 0.5)"
    output = convert(NORM_LOOP.format(clip=clip))
    assert_escaped_step(output)
    assert clip in output, output


def test_a_norm_in_a_step_that_escapes_stays_torch_code() -> None:
    clip = "grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)"
    loop = NORM_LOOP.format(clip=clip).replace("opt.step()", "opt.step(closure)")
    output = convert(loop)
    assert BEGIN in output and not renders_a_step(output), output
    assert clip in output, output


def test_a_norm_read_under_accumulation_escapes_the_step() -> None:
    body = (
        "    if (i + 1) % 4 == 0:\n"
        "        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)\n"
        "        opt.step()\n"
        "        opt.zero_grad()\n"
        "        print(grad_norm.item())"
    )
    output = convert(ACCUMULATED_NORM.format(body=body))
    assert_escaped_step(output)
    assert "= optax.tree.norm(grads)  # the norm before clipping" not in output, output


def test_a_norm_of_each_micro_batch_under_accumulation_escapes_the_step() -> None:
    body = (
        "    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)\n"
        "    if (i + 1) % 4 == 0:\n"
        "        opt.step()\n"
        "        opt.zero_grad()\n"
        "    print(grad_norm.item())"
    )
    output = convert(ACCUMULATED_NORM.format(body=body))
    assert_escaped_step(output)


def test_a_clip_that_raises_on_nonfinite_norms_escapes_the_step() -> None:
    output = convert(
        NORM_LOOP.format(
            clip="grad_norm = torch.nn.utils.clip_grad_norm_("
            "model.parameters(), 1.0, error_if_nonfinite=True)"
        )
    )
    assert_escaped_step(output)
    assert "torch raises when the gradients' total norm is NaN or inf" in output
