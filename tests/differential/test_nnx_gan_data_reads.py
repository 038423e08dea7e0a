"""wgan_gp's generator step (s33): ``fake_imgs.data`` read in the critic's step (its gradient
penalty's ``compute_gradient_penalty(D, real_imgs.data, fake_imgs.data)``) no longer escapes
the generator's step: a read of the map's ``array_attributes`` in another step's statements is
that step's to write (after its update: ``fake_imgs``) or to escape (left in its escape on a
JAX array it raises AttributeError, never other numbers). The codemod's own output run against
torch: both models' parameters and recorded values, float64, 36 critic updates and 12 of the
generator's. A torch namesake with other numbers there (``fake_imgs.std()``) keeps both
escapes."""

from __future__ import annotations

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_gan_loops import translated_gan_rel
from tests.differential.nnx_loops import translate_nnx
from tests.differential.test_nnx_gan_steps import N_CRITIC_LOOP

CRITIC_UPDATE = "        optimizer_D.step()\n"
GENERATOR_UPDATE = "            optimizer_G.step()\n"

CRITIC_BACKWARD = "        d_loss.backward()\n"

# in the critic's step, between its backward pass and its update (in its region, as wgan_gp's
# gradient penalty reads it in its forward pass)
DATA_READS = (
    N_CRITIC_LOOP.replace(
        CRITIC_BACKWARD, CRITIC_BACKWARD + "        seen = float(fake_imgs.data.mean())\n"
    )
    .replace(CRITIC_UPDATE, CRITIC_UPDATE + "        d_losses.append(seen)\n")
    .replace(
        GENERATOR_UPDATE,
        GENERATOR_UPDATE + "            g_losses.append(float(fake_imgs.data[:2].sum()))\n",
    )
)


def test_data_reads_in_both_steps_convert_exactly() -> None:
    assert DATA_READS != N_CRITIC_LOOP
    translated, rel = translated_gan_rel(DATA_READS)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert "float(fake_imgs.mean())" in translated, translated
    assert "float(fake_imgs[:2].sum())" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated


def test_a_namesake_with_other_numbers_in_the_critic_step_keeps_the_escapes() -> None:
    source = N_CRITIC_LOOP.replace(
        CRITIC_UPDATE, CRITIC_UPDATE + "        d_losses.append(float(fake_imgs.std()))\n"
    )
    translated = translate_nnx(source)
    assert "optimizer_G.step()" in translated and "optimizer_D.step()" in translated, translated
    assert "`fake_imgs.std()` runs on JAX arrays there" in translated, translated
