"""The PyTorch DCGAN tutorial's discriminator step: one ``label`` tensor, filled in place for
the fake batch between the two backward passes (``label.fill_(fake_label)``). In the loss
function it runs once per step between the two forward passes, as in torch (the generator's
step fills it again before reading it). ``optimizer.TorchToNNX``'s own output matches PyTorch
when run (both models' parameters, the recorded losses, float64, 36 updates)."""

from __future__ import annotations

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_gan_loops import run_nnx_gan, run_torch_gan, worst_gan_rel
from tests.differential.nnx_loops import translate_nnx

DCGAN_LABEL = """\
import torch

netG = make_generator()
netD = make_discriminator()
optimizerD = torch.optim.Adam(netD.parameters(), lr=1e-2, betas=(0.5, 0.999))
optimizerG = torch.optim.Adam(netG.parameters(), lr=1e-2, betas=(0.5, 0.999))

for epoch in range(EPOCHS):
    for z, real_imgs, valid, fake_label in loader:
        netD.zero_grad()
        label = make_label(1.0)
        output = netD(real_imgs)
        errD_real = ((output - label) ** 2).mean()
        errD_real.backward()

        fake = netG(z)
        label.fill_(-0.5)
        output = netD(fake.detach())
        errD_fake = ((output - label) ** 2).mean()
        errD_fake.backward()
        errD = errD_real + errD_fake
        optimizerD.step()
        optimizerG.zero_grad()
        d_losses.extend([errD.item(), label.sum().item()])
        g_losses.append(errD_fake.item())
"""


def test_the_translated_dcgan_matches_torch() -> None:
    translated = translate_nnx(DCGAN_LABEL)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert "            label.fill_(-0.5)\n" in translated, translated
    rel = worst_gan_rel(run_torch_gan(DCGAN_LABEL), run_nnx_gan(translated))
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_second_run_changes_nothing() -> None:
    once = translate_nnx(DCGAN_LABEL)
    assert translate_nnx(once) == once


def test_the_harness_sees_the_fill_run_after_the_loss_function() -> None:
    """The fill run after the gradient (both passes reading the real label) is seen."""
    translated = translate_nnx(DCGAN_LABEL)
    moved = translated.replace("            label.fill_(-0.5)\n", "").replace(
        "        optimizerD.update(", "        label.fill_(-0.5)\n        optimizerD.update("
    )
    assert moved.count("label.fill_(-0.5)") == 1 and moved != translated
    rel = worst_gan_rel(run_torch_gan(DCGAN_LABEL), run_nnx_gan(moved))
    assert rel > 1e-3
