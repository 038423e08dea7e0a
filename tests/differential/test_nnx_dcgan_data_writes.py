"""The old PyTorch DCGAN example (pytorch/examples dcgan/main.py, 2017): buffers built once
and rewritten in place each iteration through ``.data`` (``input.data.resize_(...).copy_(
real_cpu)``, ``label.data.resize_(n).fill_(1)``, ``noise.data.normal_(0, 1)`` between the two
backward passes), then the generator's step reading ``fake`` (pulled back through
``nnx.vjp``), and ``netD.state_dict()`` saved after each epoch. The writes before the
discriminator's first forward pass stay before the loss function; the others run inside it
where torch runs them (the noise drawn between the two forward passes, from torch's generator
in both runs). ``optimizer.TorchToNNX``'s own output matches PyTorch when run (both models'
parameters and running means, the recorded losses and ``D_x``, float64, 36 updates of each)."""

from __future__ import annotations

from functools import cache

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_gan_loops import GanRun, run_nnx_gan, run_torch_gan, worst_gan_rel
from tests.differential.nnx_loops import translate_nnx

OLD_DCGAN = """\
import torch

netG = make_generator()
netD = make_discriminator()
optimizerD = torch.optim.Adam(netD.parameters(), lr=1e-2, betas=(0.5, 0.999))
optimizerG = torch.optim.Adam(netG.parameters(), lr=1e-2, betas=(0.5, 0.999))
input = make_tensor(5, 4)
label = make_tensor(5, 1)
noise = make_tensor(5, 3)

for epoch in range(EPOCHS):
    for z, real_imgs, valid, fake_label in loader:
        netD.zero_grad()
        real_cpu = real_imgs
        batch_size = real_cpu.shape[0]
        input.data.resize_(batch_size, 4).copy_(real_cpu)
        label.data.resize_(batch_size, 1).fill_(1.0)

        output = netD(input)
        errD_real = ((output - label) ** 2).mean()
        errD_real.backward()
        D_x = output.max()

        noise.data.resize_(batch_size, 3)
        noise.data.normal_(0, 1)
        fake = netG(noise)
        label.data.fill_(-0.5)
        output = netD(fake.detach())
        errD_fake = ((output - label) ** 2).mean()
        errD_fake.backward()
        errD = errD_real + errD_fake
        optimizerD.step()

        netG.zero_grad()
        label.data.fill_(1.0)
        output = netD(fake)
        errG = ((output - label) ** 2).mean()
        errG.backward()
        optimizerG.step()
        d_losses.extend([errD.item(), D_x.item()])
        g_losses.append(errG.item())
    saved = netD.state_dict()
"""


@cache
def torch_run() -> GanRun:
    return run_torch_gan(OLD_DCGAN, norm=True, g_norm=True)


def test_the_translated_old_dcgan_matches_torch() -> None:
    translated = translate_nnx(OLD_DCGAN)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert translated.count("nnx.value_and_grad(") == 2, translated
    assert "        input.data.resize_(batch_size, 4).copy_(real_cpu)\n        label" in translated
    assert "            noise.data.normal_(0, 1)\n" in translated, translated
    rel = worst_gan_rel(torch_run(), run_nnx_gan(translated, norm=True, g_norm=True))
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_second_run_changes_nothing() -> None:
    once = translate_nnx(OLD_DCGAN)
    assert translate_nnx(once) == once


def test_the_harness_sees_the_noise_drawn_after_the_gradient() -> None:
    """The draw moved after the gradient (still once per iteration) is seen: the generator's
    forward pass in the loss function reads the previous iteration's noise."""
    translated = translate_nnx(OLD_DCGAN)
    moved = translated.replace("            noise.data.normal_(0, 1)\n", "").replace(
        "        optimizerD.update(", "        noise.data.normal_(0, 1)\n        optimizerD.update("
    )
    assert moved.count("noise.data.normal_(0, 1)") == 1 and moved != translated
    rel = worst_gan_rel(torch_run(), run_nnx_gan(moved, norm=True, g_norm=True))
    assert rel > 1e-3
