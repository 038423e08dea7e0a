"""DCGAN's generator step (issue 13): its loss reads ``fake``, which ``netG(noise)`` computed in
the discriminator's step. The discriminator's loss function computes it through ``nnx.vjp``
and returns the pullback as aux; the generator's step differentiates its loss with respect to
``fake`` and pulls the gradient back (``targets/nnx/pullback.py``). Nearby shapes, where the
pullback would not be the gradient torch computes, escape; the discriminator's step then
computes ``fake`` as before."""

from __future__ import annotations

import pytest

from tests.codemods.test_nnx_dcgan_step import CRITERION, DCGAN, HEADER
from tests.support import code_lines, nnx_output

BEFORE_G = "    netG.zero_grad()\n"


def converted(loop: str) -> str:
    return nnx_output(loop, HEADER + CRITERION)


def code(output: str) -> str:
    return "\n".join(code_lines(output))


def test_the_discriminator_loss_returns_the_generator_pullback() -> None:
    output = converted(DCGAN)
    vjp = "fake, netG_vjp = nnx.vjp(lambda netG: netG(noise), netG, graph_updates=False)"
    assert f"        {vjp}\n" in output, output
    assert "errD_fake, netG_vjp, output_1)), grads = nnx.value_and_grad(" in output


def test_the_generator_step_differentiates_fake_and_pulls_back() -> None:
    output = converted(DCGAN)
    assert "    def loss_fn(fake, netD):\n        output = netD(fake)\n" in output, output
    assert (
        "    (errG, output), fake_grad = nnx.value_and_grad(loss_fn, has_aux=True)(fake, netD)\n"
        "    (grads,) = netG_vjp(fake_grad)\n"
    ) in output
    assert "    optimizerG.update(netG, grads)\n" in output
    assert "ESCAPE" not in output and ".backward(" not in output


def test_generated_names_are_fresh() -> None:
    loop = DCGAN.replace("for noise,", "netG_vjp = fake_grad = None\nfor noise,")
    output = converted(loop)
    assert "fake, netG_vjp_1 = nnx.vjp(" in output, output
    assert "fake_grad_1 = nnx.value_and_grad(" in output
    assert "(grads,) = netG_vjp_1(fake_grad_1)" in output


def test_fake_rebound_after_the_step_may_be_read_there() -> None:
    """The tutorial's samples: ``fake`` bound again (under ``torch.no_grad()``) before its
    read after the generator's step."""
    samples = "    if i % 500 == 0:\n        with torch.no_grad():\n            fake = netG(z0)\n"
    output = converted(DCGAN.replace("    print(", samples + "        keep(fake)\n    print(", 1))
    assert "    (grads,) = netG_vjp(fake_grad)\n" in output, output


def test_a_second_run_changes_nothing() -> None:
    once = converted(DCGAN)
    assert nnx_output(once, "") == once


TRAPS = {
    "netG called between its forward and its step": (
        DCGAN.replace(BEFORE_G, "    extra = netG(noise)\n" + BEFORE_G, 1),
        "`netG` is used between its forward pass and its step",
    ),
    "netG changed between": (
        DCGAN.replace(BEFORE_G, "    netG.fc.weight.data.mul_(0.5)\n" + BEFORE_G, 1),
        "`netG` is used between its forward pass and its step",
    ),
    "optimizerG used between": (
        DCGAN.replace("    errD = ", "    log(optimizerG.state_dict())\n    errD = ", 1),
        "`optimizerG` is used between the forward pass and its step",
    ),
    "fake changed in place": (
        DCGAN.replace(BEFORE_G, "    fake.add_(1.0)\n" + BEFORE_G, 1),
        "`fake` is used otherwise than as `fake.detach()` or another model's input",
    ),
    "fake.data changed in place": (
        DCGAN.replace(BEFORE_G, "    fake.data.clamp_(-1, 1)\n" + BEFORE_G, 1),
        "`fake` is used otherwise than as `fake.detach()` or another model's input",
    ),
    "fake item assigned": (
        DCGAN.replace(BEFORE_G, "    fake[0] = 0.0\n" + BEFORE_G, 1),
        "`fake` is used otherwise than as `fake.detach()` or another model's input",
    ),
    "fake rebound": (
        DCGAN.replace(BEFORE_G, "    fake = fake * 2.0\n" + BEFORE_G, 1),
        "the forward pass does not call the trained model `netG`",
    ),
    "fake used after the generator step": (
        DCGAN.replace("    print(", "    samples.append(fake.detach())\n    print(", 1),
        "`fake` may be read after the step with the value `fake = netG(noise)` gave it",
    ),
    "fake read in the next iteration": (
        DCGAN.replace("    netD.zero_grad()\n", "    keep(fake)\n    netD.zero_grad()\n", 1),
        "`fake` may be read after the step with the value `fake = netG(noise)` gave it",
    ),
    "fake rebound on one branch only, then read": (
        DCGAN.replace(
            "    print(", "    if i == 0:\n        fake = netG(z0)\n    keep(fake)\n    print(", 1
        ),
        "`fake` may be read after the step with the value `fake = netG(noise)` gave it",
    ),
    "the forward under no_grad": (
        DCGAN.replace(
            "    fake = netG(noise)\n", "    with torch.no_grad():\n        fake = netG(noise)\n", 1
        ),
        "not pulled back through `nnx.vjp`",
    ),
    "the forward before the discriminator's loss function": (
        DCGAN.replace("    fake = netG(noise)\n", "", 1).replace(
            "    netD.zero_grad()\n", "    netD.zero_grad()\n    fake = netG(noise)\n", 1
        ),
        "the step computing it is not translated, or computes it outside its loss function",
    ),
    "the discriminator step escapes": (
        DCGAN.replace("    netD.zero_grad()\n", "", 1),
        "the step computing it is not translated",
    ),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_a_nearby_generator_step_escapes(name: str) -> None:
    loop, reason = TRAPS[name]
    output = converted(loop)
    assert "optimizerG.update" not in code(output) and reason in output, output
    assert "netG_vjp" not in code(output)
