"""optimizer.TorchToNNX on a function of the file that only zeroes gradients (``def
reset_grad(): d_optimizer.zero_grad(); g_optimizer.zero_grad()``, yunjey's GAN tutorial):
each line ``reset_grad()`` runs those zero_grad() calls where it stands. The GAN converts
(``tests/differential/test_nnx_reset_grad_gan.py``); every nearby shape where the function
does more, or where torch keeps gradients the NNX step would not, escapes with the reason."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.nnx_loops import translate_nnx
from tests.differential.test_nnx_reset_grad_gan import RESET_GRAD_GAN
from tests.support import run_codemod

RESET = """\
def reset_grad():
    d_optimizer.zero_grad()
    g_optimizer.zero_grad()
"""

TRAPS = {
    # the function does something else too: not only zeroes
    "also_prints": (RESET, RESET + "    print('reset')\n", "calls `reset_grad`"),
    # it zeroes only the discriminator: torch's generator sums both losses' gradients
    "only_one_optimizer": (RESET, RESET.replace("    g_optimizer.zero_grad()\n", ""), "G"),
    # a parameter, a decorator: not a plain zero
    "parameter": (RESET, RESET.replace("reset_grad()", "reset_grad(flag=True)", 1), "reset_grad"),
    "decorated": (RESET, "@staticmethod\n" + RESET, "reset_grad"),
    # the name is bound again, or read other than called alone on a line
    "rebound": (RESET, RESET + "\nreset_grad = print\n", "reset_grad"),
    "passed_on": (RESET, RESET + "\nhooks = [reset_grad]\n", "reset_grad"),
    # the zero of the generator only every other iteration: torch sums two iterations'
    # gradients (the discriminator loss's among them) in the generator
    "generator_zeroed_every_other_iteration": (
        "        reset_grad()\n        g_loss.backward()",
        "        if i % 2 == 0:\n            reset_grad()\n        g_loss.backward()",
        "g_loss.backward()",
    ),
    # a module's zero of the generator model (not an optimizer translated here)
    "module_zero": (
        "    g_optimizer.zero_grad()\n",
        "    G.zero_grad()\n",
        "reset_grad",
    ),
}


def _steps_escaped(output: str) -> int:
    return output.count("ESCAPE-BEGIN torch.optim.Optimizer.step")


def test_the_reset_grad_gan_converts() -> None:
    out = translate_nnx(RESET_GRAD_GAN)
    assert BEGIN not in out, out
    assert out.count("nnx.value_and_grad(loss_fn, has_aux=True)") == 2, out
    assert "reset_grad()" not in out.split("def reset_grad():")[1], out


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_a_nearby_shape_escapes(name: str) -> None:
    old, new, named = TRAPS[name]
    assert old in RESET_GRAD_GAN
    source = RESET_GRAD_GAN.replace(old, new, 1)
    out = translate_nnx(source)
    assert _steps_escaped(out) >= 1, out
    reasons = "\n".join(line for line in out.splitlines() if "reason:" in line)
    assert named in reasons, reasons


def test_the_optax_target_drops_the_zeroes_and_escapes_the_steps() -> None:
    """optimizer.TorchToOptax: the zero_grad() calls of ``reset_grad`` run with each step (at
    its call sites) and go, as a zero_grad() written there would; the steps stay escape
    hatches (optax steps are ported by hand), ``reset_grad()`` calls stay."""
    out = run_codemod(RESET_GRAD_GAN, TorchToOptax)
    assert "def reset_grad():\n    pass\n" in out, out
    assert out.count("ESCAPE-BEGIN torch.optim.Optimizer.step") == 2, out
    assert out.count("reset_grad()") == 3, out


def test_the_optax_target_keeps_a_zero_of_other_control() -> None:
    """Called only every other iteration, the generator's zero is gradient accumulation for
    optax too: it escapes with the reason, in the function's body."""
    source = RESET_GRAD_GAN.replace(
        "        reset_grad()\n        d_loss.backward()",
        "        if i % 2 == 0:\n            reset_grad()\n        d_loss.backward()",
    ).replace("        reset_grad()\n        g_loss.backward()", "        g_loss.backward()")
    out = run_codemod(source, TorchToOptax)
    body = out.split("def reset_grad():")[1].split("\nfor ")[0]
    assert "ESCAPE-BEGIN torch.optim.Optimizer.zero_grad" in body, out
    assert "under other loops or conditions" in body, out
