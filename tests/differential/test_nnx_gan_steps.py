"""GAN steps (issue 13): the generator's loss calls the discriminator, whose gradients torch
fills and then discards (``optimizer_D.zero_grad()`` before anything uses them).
``optimizer.TorchToNNX``'s own output matches PyTorch when run: both models' parameters and
both recorded losses, float64, 36 updates of each optimizer (12 of the generator's with
``n_critic = 3``)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_gan_loops import (
    run_nnx_gan,
    run_torch_gan,
    translated_gan_rel,
    worst_gan_rel,
)
from tests.differential.nnx_loops import translate_nnx

SIMPLE_GAN = """\
import torch

generator = make_generator()
discriminator = make_discriminator()
optimizer_G = torch.optim.Adam(generator.parameters(), lr=1e-2, betas=(0.5, 0.999))
optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=1e-2, betas=(0.5, 0.999))

for epoch in range(EPOCHS):
    for z, real_imgs, valid, fake in loader:
        optimizer_G.zero_grad()
        gen_imgs = generator(z)
        g_loss = ((discriminator(gen_imgs) - valid) ** 2).mean()
        g_loss.backward()
        optimizer_G.step()

        optimizer_D.zero_grad()
        real_loss = ((discriminator(real_imgs) - valid) ** 2).mean()
        fake_loss = ((discriminator(gen_imgs.detach()) - fake) ** 2).mean()
        d_loss = (real_loss + fake_loss) / 2
        d_loss.backward()
        optimizer_D.step()
        g_losses.append(g_loss.item())
        d_losses.append(d_loss.item())
"""

# wgan_gp's shape without the gradient penalty: the critic every iteration, its loss calling
# the generator too (no .detach()), the generator every N_CRITIC iterations
N_CRITIC_LOOP = """\
import torch

generator = make_generator()
discriminator = make_discriminator()
optimizer_G = torch.optim.RMSprop(generator.parameters(), lr=5e-3)
optimizer_D = torch.optim.SGD(discriminator.parameters(), lr=1e-2, momentum=0.9)

for epoch in range(EPOCHS):
    for i, (z, real_imgs, valid, fake) in enumerate(loader):
        optimizer_D.zero_grad()
        fake_imgs = generator(z)
        real_validity = discriminator(real_imgs)
        fake_validity = discriminator(fake_imgs)
        d_loss = -real_validity.mean() + fake_validity.mean()
        d_loss.backward()
        optimizer_D.step()
        d_losses.append(d_loss.item())

        optimizer_G.zero_grad()

        if i % N_CRITIC == 0:
            fake_imgs = generator(z)
            fake_validity = discriminator(fake_imgs)
            g_loss = -fake_validity.mean()
            g_loss.backward()
            optimizer_G.step()
            g_losses.append(g_loss.item())
"""

LOOPS = {"simple_gan": SIMPLE_GAN, "n_critic_loop": N_CRITIC_LOOP}


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_the_translated_gan_matches_torch(name: str) -> None:
    translated, rel = translated_gan_rel(LOOPS[name])
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert rel < EXACT, f"{name}: rel {rel:.3e}"


def test_the_batchnorm_statistics_of_both_models_match_torch() -> None:
    """The discriminator's BatchNorm running mean moves during the generator's forward pass
    in torch; passed to the loss function as an argument, the NNX module's moves the same.
    The generator's moves once per iteration: its output ``gen_imgs`` comes out of the
    generator's loss function as aux, and the discriminator's step reads it, not a second
    forward pass. (Not on the n_critic loop: a WGAN critic with BatchNorm before its last
    layer outputs a batch mean independent of its input, whose gradients are rounding noise.)"""
    translated, rel = translated_gan_rel(SIMPLE_GAN, norm=True, g_norm=True)
    assert BEGIN not in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_a_second_run_changes_nothing(name: str) -> None:
    once = translate_nnx(LOOPS[name])
    assert translate_nnx(once) == once


def test_the_harness_sees_the_discriminator_differentiated() -> None:
    """Differentiating the discriminator too in the generator's loss (its gradient added to
    the generator's update is impossible; here: the G step's grads taken w.r.t. both and the
    discriminator updated with them) is seen: the comparison depends on who is trained."""
    translated = translate_nnx(SIMPLE_GAN)
    wrong = translated.replace(
        "optimizer_G.update(generator, grads)",
        "optimizer_G.update(generator, grads)\n"
        "        optimizer_D.update(discriminator, nnx.grad(lambda d: loss_fn(generator, d)[0])"
        "(discriminator))",
    )
    assert wrong != translated
    rel = worst_gan_rel(run_torch_gan(SIMPLE_GAN), run_nnx_gan(wrong))
    assert rel > 1e-3
