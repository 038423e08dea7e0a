"""pytorch/examples' DCGAN (issue 13, main.py:254): after both steps, ``fake =
netG(fixed_noise)`` and ``vutils.save_image(fake.detach(), ...)``. ``netG`` is the model of a
translated optimizer, ported to NNX: its output is a JAX array, and ``.detach()`` of it is the
array itself (nothing is differentiated there; the map's ``after`` template of
``array_lacks: detach``). Before (main f20f630) the discriminator's step escaped on that read
("`fake.detach()` runs on JAX arrays there"); now such a binding counts as one of the loss
function's values (``training_step._ported_outputs``) and the step converts.

The codemod's own output run against torch (float64, 36 updates, BatchNorm in both models,
the value read after the loop recorded). A name rebound to a torch value, or to a model no
translated optimizer trains, keeps the escape."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_gan_loops import run_nnx_gan, run_torch_gan, worst_gan_rel
from tests.differential.nnx_loops import translate_nnx
from tests.differential.test_nnx_dcgan_step import DCGAN

AFTER = "    fake = netG(z)\n    g_losses.append(fake.detach().sum().item())\n"
DCGAN_SAMPLES = DCGAN + AFTER


def test_a_ported_models_output_read_detached_converts_exactly() -> None:
    translated = translate_nnx(DCGAN_SAMPLES)
    assert BEGIN not in translated and ".backward(" not in translated, translated
    assert "    g_losses.append(fake.sum().item())\n" in translated, translated
    rel = worst_gan_rel(
        run_torch_gan(DCGAN_SAMPLES, norm=True, g_norm=True),
        run_nnx_gan(translated, norm=True, g_norm=True),
    )
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated


@pytest.mark.parametrize(
    "rebound",
    [
        "    fake = torch.zeros(2)\n",  # a torch value
        "    fake = make_generator()(z)\n",  # a model no translated optimizer trains
        "    fake = netG(z) if EPOCHS else torch.zeros(2)\n",  # not a call of the model
    ],
)
def test_other_values_read_detached_keep_the_escape(rebound: str) -> None:
    source = DCGAN + rebound + "    g_losses.append(fake.detach().sum().item())\n"
    translated = translate_nnx(source)
    assert BEGIN in translated and "`fake.detach()` runs on JAX arrays there" in translated
