"""DCGAN's whole iteration (issue 13): the discriminator's step as in
``test_nnx_dcgan_step.py``, then the generator's step, whose loss reads the ``fake`` the
discriminator's step computed. ``optimizer.TorchToNNX`` computes ``fake`` through ``nnx.vjp``
in the discriminator's loss function and pulls the generator's loss gradient with respect to
``fake`` back through it (``targets/nnx/pullback.py``). Its own output matches PyTorch when
run, BatchNorm in both models (the generator's forward pass, and its running mean's move, once
per iteration as in torch): both models' parameters and running means, the recorded losses,
``D_x`` and ``D_G_z2``, float64, 36 updates of each model."""

from __future__ import annotations

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_gan_loops import translated_gan_rel
from tests.differential.test_nnx_dcgan_step import DCGAN as D_STEP

DCGAN = D_STEP.replace(
    "        optimizerG.zero_grad()\n",
    """
        netG.zero_grad()
        output = netD(fake)
        errG = ((output - valid) ** 2).mean()
        errG.backward()
        D_G_z2 = output.mean().item()
        optimizerG.step()
""",
).replace("g_losses.append(D_G_z1)", "g_losses.extend([D_G_z1, errG.item(), D_G_z2])")


def test_the_translated_dcgan_iteration_matches_torch_with_batchnorm() -> None:
    assert DCGAN.count("optimizerG.step()") == 1
    translated, rel = translated_gan_rel(DCGAN, norm=True, g_norm=True)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert "(grads,) = netG_vjp(fake_grad)" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


def test_noise_drawn_in_the_step_leaves_no_detach_on_the_array() -> None:
    """The tutorial draws ``noise`` in the discriminator's step: ``fake`` then comes out of
    ``nnx.vjp`` inside the loss function, from a model it does not differentiate, and
    ``fake.detach()`` reads as ``fake`` (a JAX array has no ``.detach()``)."""
    loop = DCGAN.replace(
        "        fake = netG(z)\n", "        noise = z * 1.0\n        fake = netG(noise)\n"
    )
    assert loop != DCGAN
    translated, rel = translated_gan_rel(loop, norm=True, g_norm=True)
    assert ".detach()" not in translated and "(grads,) = netG_vjp(fake_grad)" in translated
    assert rel < EXACT, f"rel {rel:.3e}"
