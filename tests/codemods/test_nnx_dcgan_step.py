"""DCGAN's training iteration (issue 13): the discriminator's step (``netD.zero_grad()``, two
backward passes summed into ``optimizerD.step()``, ``D_x`` recorded between them) renders;
the generator's, whose loss reads ``fake`` computed by ``netG`` before the discriminator's
step, escapes saying why when it cannot be pulled back (``test_nnx_dcgan_generator.py``);
nearby shapes escape."""

from __future__ import annotations

import pytest

from tests.support import code_lines, nnx_output

HEADER = """\
import torch

netG = make_generator()
netD = make_discriminator()
optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4)
optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4)
"""

DCGAN = """
for noise, real, ones, zeros in loader:
    netD.zero_grad()
    output = netD(real)
    errD_real = criterion(output, ones)
    errD_real.backward()
    D_x = output.mean().item()

    fake = netG(noise)
    output = netD(fake.detach())
    errD_fake = criterion(output, zeros)
    errD_fake.backward()
    D_G_z1 = output.mean().item()
    errD = errD_real + errD_fake
    optimizerD.step()

    netG.zero_grad()
    output = netD(fake)
    errG = criterion(output, ones)
    errG.backward()
    D_G_z2 = output.mean().item()
    optimizerG.step()
    print(errD.item(), errG.item(), D_x, D_G_z1, D_G_z2)
"""

CRITERION = "criterion = torch.nn.BCEWithLogitsLoss()\n"


def converted(loop: str) -> str:
    return nnx_output(loop, HEADER + CRITERION)


def updates_d(output: str) -> bool:
    return any("optimizerD.update(netD, grads)" in line for line in code_lines(output))


def test_the_discriminator_step_sums_both_losses_and_snapshots_d_x() -> None:
    output = converted(DCGAN)
    assert updates_d(output), output
    assert "        output_1 = output\n" in output
    assert "return errD_real + errD_fake, (" in output
    assert "output = netD(fake)\n" in output.split("def loss_fn")[1]  # `.detach()` dropped
    assert "\n    D_x = output_1.mean().item()\n" in output


def test_a_generator_step_not_pulled_back_escapes_naming_the_second_forward_pass() -> None:
    output = converted(DCGAN.replace("    print(", "    keep(fake)\n    print(", 1))
    assert "the loss reads `fake`, which `netG(noise)` computed before the step" in output
    assert "BatchNorm's running statistics updated twice" in output
    assert "optimizerG.update" not in "\n".join(code_lines(output))


TRAPS = {
    "zero_grad of the other model": (
        DCGAN.replace("    netD.zero_grad()\n", "    netG.zero_grad()\n", 1),
        "not exactly those of `optimizerD`",
    ),
    "no zero_grad": (
        DCGAN.replace("    netD.zero_grad()\n", "", 1),
        "no `optimizerD.zero_grad()` runs with each step",
    ),
    "a step between the backward passes": (
        DCGAN.replace("    D_x = output.mean().item()\n", "    optimizerD.step()\n", 1),
        "no `optimizerD.zero_grad()` runs with each step",
    ),
    "the second loss reads a value changed in place by a computed value": (
        DCGAN.replace(
            "    fake = netG(noise)\n",
            "    fake = netG(noise)\n    zeros.fill_(real.mean())\n",
            1,
        ),
        "`zeros.fill_(real.mean())` changes `zeros` in place between forward passes of the loss",
    ),
    "the model changed in place between the passes": (
        DCGAN.replace(
            "    fake = netG(noise)\n", "    fake = netG(noise)\n    netD.requires_grad_(True)\n", 1
        ),
        "`netD.requires_grad_(True)` changes `netD` in place between forward passes",
    ),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_a_nearby_discriminator_step_escapes(name: str) -> None:
    loop, reason = TRAPS[name]
    output = converted(loop)
    assert not updates_d(output) and reason in output, output


def test_a_statement_binding_a_name_the_loss_binds_again_stays_in_the_loss() -> None:
    """Run after the gradient it would overwrite the loss's ``errD_fake``: it runs where torch
    runs it, in the loss function."""
    loop = DCGAN.replace("    D_x = output.mean().item()\n", "    errD_fake = output.mean()\n", 1)
    output = converted(loop)
    assert updates_d(output), output
    assert "        errD_fake = output.mean()\n" in output.split("return")[0]


def test_retain_graph_on_the_first_backward_pass_still_sums() -> None:
    """``retain_graph=True`` keeps torch's graph; the gradients summed are the same."""
    output = converted(
        DCGAN.replace("errD_real.backward()", "errD_real.backward(retain_graph=True)")
    )
    assert updates_d(output), output


def test_a_second_run_changes_nothing() -> None:
    once = converted(DCGAN)
    assert nnx_output(once) == once


def test_a_draw_in_place_before_the_fake_pass_runs_in_the_loss_function() -> None:
    # pytorch/examples dcgan: `noise.data.normal_(0, 1)` before `fake = netG(noise)`
    loop = DCGAN.replace(
        "    fake = netG(noise)\n", "    noise.normal_(0, 1)\n    fake = netG(noise)\n"
    )
    output = converted(loop)
    assert updates_d(output), output
    assert "        noise.normal_(0, 1)\n" in output.split("return")[0], output


def test_a_zero_grad_cut_off_by_a_block_says_where_the_step_starts() -> None:
    loop = DCGAN.replace(
        "    fake = netG(noise)\n",
        "    with torch.no_grad():\n        noise.normal_(0, 1)\n    fake = netG(noise)\n",
    )
    output = converted(loop)
    assert not updates_d(output), output
    assert (
        "(`netD.zero_grad()` runs earlier in this block, but the step's statements start after "
        "`with torch.no_grad():"
    ) in output, output


def test_a_label_filled_in_place_between_the_passes_runs_in_the_loss_function() -> None:
    # the PyTorch DCGAN tutorial: `label.fill_(fake_label)` before the fake batch's pass
    loop = DCGAN.replace(
        "    fake = netG(noise)\n", "    fake = netG(noise)\n    zeros.fill_(0.1)\n"
    )
    output = converted(loop)
    assert updates_d(output), output
    lines = [line.strip() for line in output.splitlines()]
    fill = lines.index("zeros.fill_(0.1)")
    assert (
        lines[fill - 1].startswith("fake, netG_vjp = nnx.vjp(lambda netG: netG(noise), netG")
        and lines.index("def loss_fn(netD, netG):") < fill
    )
