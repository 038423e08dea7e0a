"""pytorch/examples' DCGAN saves samples after both steps: ``fake = netG(fixed_noise)`` then
``vutils.save_image(fake.detach(), ...)`` (s26d). The generator's step differentiates through
the discriminator (``nnx.vjp``), and ``netG`` is still the model it trains: its output is a JAX
array, ``fake.detach()`` after the update reads ``fake``. The codemod's own output matches
PyTorch (BatchNorm in both models, float64, 36 updates of each, the samples recorded); a
``fake`` bound by anything else than a ported model keeps the escape."""

from __future__ import annotations

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_gan_loops import translated_gan_rel
from tests.differential.nnx_loops import translate_nnx
from tests.differential.test_nnx_dcgan_generator import DCGAN

SAMPLES = DCGAN + (
    "        if epoch == EPOCHS - 1:\n"
    "            fake = netG(z * 0.5)\n"
    "            g_losses.append(fake.detach().sum().item())\n"
)


def test_samples_of_the_generator_after_both_steps_match_torch() -> None:
    translated, rel = translated_gan_rel(SAMPLES, norm=True, g_norm=True)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert "g_losses.append(fake.sum().item())" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


def test_a_sample_bound_by_another_call_keeps_the_escape() -> None:
    translated = translate_nnx(SAMPLES.replace("fake = netG(z * 0.5)", "fake = sampler(z)"))
    assert BEGIN in translated and "fake.detach()" in translated, translated
