"""DCGAN's discriminator step (issue 13): ``netD.zero_grad()``, the real batch's loss and its
backward pass, ``D_x = output.max().item()``, the fake batch's forward pass (``netG``'s output
detached) and backward pass, then ``optimizerD.step()``. ``optimizer.TorchToNNX``'s loss
function returns the sum of both losses, ``D_x`` reads a snapshot of the real batch's output
returned as aux. Its own output matches PyTorch when run, the discriminator with BatchNorm
(its running mean moves at each of the three forward passes of an iteration) and the generator
with BatchNorm (its forward pass runs inside the discriminator's loss function, once per
iteration as in torch): both models' parameters and running means, the recorded losses and
``D_x``/``D_G_z1``, float64, 36 updates (the generator is not trained here)."""

from __future__ import annotations

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_gan_loops import run_nnx_gan, run_torch_gan, worst_gan_rel
from tests.differential.nnx_loops import translate_nnx

# DCGAN's discriminator step alone (the whole iteration: test_nnx_dcgan_generator.py); the
# generator's gradients are zeroed each iteration.
# `D_x` is the real batch's largest output: with BatchNorm (no affine) before the last layer,
# every batch's mean output is that layer's bias, the same for both batches.
DCGAN = """\
import torch

netG = make_generator()
netD = make_discriminator()
optimizerD = torch.optim.Adam(netD.parameters(), lr=1e-2, betas=(0.5, 0.999))
optimizerG = torch.optim.Adam(netG.parameters(), lr=1e-2, betas=(0.5, 0.999))

for epoch in range(EPOCHS):
    for z, real_imgs, valid, fake_label in loader:
        netD.zero_grad()
        output = netD(real_imgs)
        errD_real = ((output - valid) ** 2).mean()
        errD_real.backward()
        D_x = output.max().item()

        fake = netG(z)
        output = netD(fake.detach())
        errD_fake = ((output - fake_label) ** 2).mean()
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        optimizerD.step()
        optimizerG.zero_grad()
        d_losses.extend([errD.item(), D_x])
        g_losses.append(D_G_z1)
"""


def test_the_translated_dcgan_matches_torch_with_batchnorm() -> None:
    translated = translate_nnx(DCGAN)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert "D_x = output_1.max().item()" in translated, translated
    rel = worst_gan_rel(
        run_torch_gan(DCGAN, norm=True, g_norm=True),
        run_nnx_gan(translated, norm=True, g_norm=True),
    )
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_second_run_changes_nothing() -> None:
    once = translate_nnx(DCGAN)
    assert translate_nnx(once) == once


def test_the_harness_sees_d_x_read_from_the_fake_batch() -> None:
    """``D_x`` read from the fake batch's output (what moving it after the gradient without a
    snapshot would compute) is seen."""
    translated = translate_nnx(DCGAN)
    wrong = translated.replace("D_x = output_1.max()", "D_x = output.max()")
    assert wrong != translated
    rel = worst_gan_rel(run_torch_gan(DCGAN, norm=True), run_nnx_gan(wrong, norm=True))
    assert rel > 1e-3


def test_the_harness_sees_the_generator_forward_run_twice() -> None:
    """The generator's forward pass run a second time in the loss function (what computing
    ``fake`` again for another step would do: its BatchNorm statistics move twice, its output
    is the same) is seen: the generator's running mean is compared."""
    translated = translate_nnx(DCGAN)
    wrong = translated.replace("fake = netG(z)", "netG(z)\n            fake = netG(z)")
    assert wrong != translated
    torch_run = run_torch_gan(DCGAN, g_norm=True)
    assert worst_gan_rel(torch_run, run_nnx_gan(wrong, g_norm=True)) > 1e-3
