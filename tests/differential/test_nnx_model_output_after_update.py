"""A call of the trained model read through a namesake after the update (the forward-forward
example's ``return self.forward(x_pos).detach(), self.forward(x_neg).detach()`` after its
training loop, s26d): the NNX model's output is a JAX array, so the map's after-update
template writes ``self.forward(x_pos)`` when it reads its receiver once (the model runs once, as
in torch). The codemod's own output matches torch (float64, 36 updates: losses, parameters and
the returned outputs); a template reading the call more than once, or a call of something else
than the model, keeps the escape."""

from __future__ import annotations

import numpy as np

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.nnx_loops import translate_nnx
from tests.differential.test_nnx_own_optimizer_step import SOURCE, _nnx_run, _rel, _torch_run
from tests.support import renders_a_step

RETURNED = (
    SOURCE.replace("(self.forward(x_pos) ** 2)", "self.forward(x_pos).pow(2)")
    .replace(
        "            losses.append(loss.item())\n",
        "            losses.append(loss.item())\n"
        "        return self.forward(x_pos).detach(), self.forward(x_neg).detach()\n",
    )
    .replace(
        "layer.fit(x_pos, x_neg)\n",
        "h_pos, h_neg = layer.fit(x_pos, x_neg)\nlosses.extend((h_pos - 2 * h_neg).sum(1).tolist())\n",
    )
)


def test_detached_model_outputs_returned_after_the_loop_match_torch() -> None:
    translated = translate_nnx(RETURNED)
    assert renders_a_step(translated) and BEGIN not in translated, translated
    assert "return self.forward(x_pos), self.forward(x_neg)\n" in translated, translated
    assert translate_nnx(translated) == translated
    torch_losses, torch_weights = _torch_run(RETURNED)
    nnx_losses, nnx_weights = _nnx_run(translated)
    assert len(torch_losses) == len(nnx_losses) == 36 + 6
    pairs = [(np.asarray(torch_losses), np.asarray(nnx_losses))]
    pairs += list(zip(torch_weights, nnx_weights, strict=True))
    rel = max(_rel(a, b) for a, b in pairs)
    assert rel < 1e-12, (rel, translated)


def test_a_template_reading_the_model_call_twice_after_the_loop_escapes() -> None:
    source = RETURNED.replace(
        "return self.forward(x_pos).detach(), self.forward(x_neg).detach()",
        "return self.forward(x_pos).max(1), self.forward(x_neg).detach()",
    )
    translated = translate_nnx(source)
    assert BEGIN in translated and "self.opt.step()" in translated, translated


def test_a_call_of_another_object_after_the_loop_escapes() -> None:
    source = RETURNED.replace(
        "return self.forward(x_pos).detach()", "return make_linear()(x_pos).detach()"
    )
    translated = translate_nnx(source)
    assert BEGIN in translated and "self.opt.step()" in translated, translated
