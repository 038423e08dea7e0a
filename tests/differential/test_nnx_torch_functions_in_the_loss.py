"""Converted NNX steps that raised when run (probe s36, issue 13), now written exactly or
escaped naming the call (s37):

- ``x.tolist()`` in the loss function (ConcretizationTypeError on a traced array): escapes
  (the map's ``concrete_methods``), in a function of the file the loss calls too.
- A torch function on a value the loss function computes (``torch.cat([out, y], 1)``,
  ``F.mse_loss(out, y)``, ``F.relu(out)``: TypeError on a traced array), in the loss function
  or in a function of the file it calls: escapes naming the call (the map's
  ``tracer_rejecting_packages``), unless the map's ``array_functions`` writes it with torch's
  numbers: ``torch.cat`` -> ``jnp.concatenate``, ``F.nll_loss`` with torch's defaults (the
  ``ignore_index=-100`` mask written out), ``torch.sum``/``torch.exp`` in a copied helper.
  ``F.binary_cross_entropy`` escapes (torch clamps its gradient's denominator at 1e-12).
- GradScaler: ``scaled = scaler.scale(loss); scaled.backward()`` kept ``scaler.scale`` in the
  loss function (TypeError): escapes. ``scaler.unscale_(opt); opt.step(); scaler.update()``
  left ``scaler.update()`` (AssertionError: the scaler never scaled): the update belongs to
  the step and goes with the scaler. ``scaler.scale(loss).backward(); opt.step()`` (no
  ``unscale_``: torch steps with the scaled gradients) converted silently to other numbers
  (1.0 relative): escapes.

The codemod's own output run against torch: float64, 36 updates, recorded values < 1e-9."""

from __future__ import annotations

import re

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP, TRAINER_CLASS

LOSS = "loss = ((out - y) ** 2).mean()"
WITH_F = PLAIN_LOOP.replace("import torch\n", "import torch\nimport torch.nn.functional as F\n")
# log-probabilities of the net's 2 outputs and 0/1 targets, written with calls the map writes
LOG_PROBS = (
    "        lp = out - torch.log(torch.sum(torch.exp(out), 1, keepdim=True))\n"
    "        t = (y[:, 0] > 0) * 1\n"
)


def _in_loss(lines: str, term: str, source: str = PLAIN_LOOP) -> str:
    """``source`` with ``lines`` before the loss, which adds ``term``."""
    return source.replace(f"        {LOSS}\n", f"{lines}        {LOSS} + {term}\n")


def _loss(lines: str, source: str = WITH_F) -> str:
    """``source`` with the loss line replaced by ``lines``."""
    return source.replace(f"        {LOSS}\n", lines)


def _helper(body: str, source: str = PLAIN_LOOP) -> str:
    """``source`` whose loss is ``crit(out, y)``, ``def crit(a, b): return <body>``."""
    head = source.split("\n\n", 1)
    return f"{head[0]}\n\n\ndef crit(a, b):\n    return {body}\n\n{head[1]}".replace(
        f"        {LOSS}\n", "        loss = crit(out, y)\n"
    )


def _converts(source: str, written: str = "") -> str:
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(" in translated, translated
    assert written in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated
    return translated


def _escapes(source: str, said: str) -> None:
    translated = translate_nnx(source)
    assert BEGIN in translated and said in translated, translated
    assert not re.search(r"^ *(self\.)?opt\.update\(", translated, re.MULTILINE), translated


# ------------------------------------------------------------------ tolist


@pytest.mark.parametrize("read", ["out.tolist()", "out.mean().tolist()"])
def test_tolist_in_the_loss_escapes(read: str) -> None:
    _escapes(_in_loss(f"        v = {read}\n", "0.0 * len([v])"), "`.tolist()` in the forward pass")


def test_tolist_in_a_helper_escapes() -> None:
    _escapes(_helper("((a - b) ** 2).mean() + 0 * len(a.tolist())"), "`.tolist()`")


def test_tolist_after_the_update_converts() -> None:
    """Twin: after the gradient the values are concrete arrays."""
    source = PLAIN_LOOP.replace(
        "        losses.append(loss.item())\n",
        "        losses.append(loss.item())\n        losses.append(out.tolist()[0][0])\n",
    )
    _converts(source)


# ------------------------------------------------------------------ torch functions


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        (f"        c = torch.stack([out, y])\n        {LOSS} + 0.1 * c.mean()\n", "torch.stack"),
        ("        loss = F.mse_loss(out, y, reduction='none').mean()\n", "F.mse_loss(out, y"),
        (f"        {LOSS} + 0.1 * F.relu(out).mean()\n", "F.relu(out)"),
        (f"        {LOSS} + 0.1 * torch.softmax(model(x), 1).mean()\n", "torch.softmax"),
        (f"        {LOSS} + 0.1 * torch.tanh(out, out=y).mean()\n", "torch.tanh(out, out=y)"),
        (
            f"        {LOSS} + 0.1 * torch.nn.utils.parameters_to_vector(model.parameters()).sum()\n",
            "parameters_to_vector",
        ),
    ],
)
def test_a_torch_function_on_a_loss_value_escapes(lines: str, said: str) -> None:
    _escapes(_loss(lines), said)


TRAINER_LOSS = "loss = ((pred - y) ** 2).mean() + 0.01 * (pred ** 2).sum()"


def test_a_torch_function_on_a_call_of_self_model_escapes() -> None:
    """The model read as ``self.model``: its call's output is traced too."""
    loss = TRAINER_LOSS + " + 0.1 * torch.softmax(self.model(x), 1).mean()"
    _escapes(TRAINER_CLASS.replace(TRAINER_LOSS, loss), "torch.softmax(self.model(x), 1)")


def test_a_mapped_torch_function_on_a_call_of_self_model_escapes() -> None:
    """Not written: the template is keyed by the source's code (`self.model(x)`), the loss
    function calls `model(x)` (before s37: converted, then TypeError)."""
    loss = TRAINER_LOSS + " + 0.1 * torch.tanh(self.model(x)).mean()"
    source = TRAINER_CLASS.replace(TRAINER_LOSS, loss)
    assert source != TRAINER_CLASS
    _escapes(source, "`torch.tanh(self.model(x))` is not written in JAX here")


def test_a_mapped_torch_function_on_a_value_of_self_model_converts() -> None:
    loss = TRAINER_LOSS + " + 0.1 * torch.tanh(pred).mean()"
    _converts(TRAINER_CLASS.replace(TRAINER_LOSS, loss), "jnp.tanh(pred)")


def test_a_torch_function_on_a_static_read_converts() -> None:
    """Twin: ``torch.zeros(out.shape[0])`` reads no traced value (only its length is used)."""
    _converts(_loss(f"        n = len(torch.zeros(out.shape[0]))\n        {LOSS} * n / n\n"))


def test_cat_is_concatenate() -> None:
    _converts(
        _in_loss("        c = torch.cat([out, y], 1)\n", "0.1 * (c ** 2).mean()"),
        "jnp.concatenate([out, y], axis=1)",
    )


def test_cat_with_out_escapes() -> None:
    _escapes(
        _in_loss("        c = torch.cat([out, y], 1, out=y)\n", "0.1 * c.mean()"),
        "torch.cat([out, y], 1, out=y)",
    )


def test_nll_loss_with_torch_defaults() -> None:
    _converts(_loss(LOG_PROBS + "        loss = F.nll_loss(lp, t)\n"), "jnp.take_along_axis(x, ")


def test_nll_loss_of_an_expression_reads_it_once() -> None:
    """pytorch/examples' mnist_hogwild: ``F.nll_loss(output, target.to(device))``."""
    translated = _converts(_loss(LOG_PROBS + "        loss = F.nll_loss(lp, t + 0)\n"))
    assert translated.count("t + 0") == 1, translated


def test_nll_loss_ignores_minus_100() -> None:
    """torch's ``ignore_index=-100``: those rows count in neither the sum nor the mean."""
    targets = "        t = t * ((y[:, 1] <= 0.5) * 1) - 100 * ((y[:, 1] > 0.5) * 1)\n"
    _converts(_loss(LOG_PROBS + targets + "        loss = F.nll_loss(lp, t)\n"))


@pytest.mark.parametrize(
    "call",
    [
        "F.nll_loss(lp, t, reduction='sum')",
        "F.nll_loss(lp, t, ignore_index=0)",
        "F.nll_loss(lp, t, torch.ones(2))",
    ],
)
def test_nll_loss_otherwise_escapes(call: str) -> None:
    _escapes(_loss(LOG_PROBS + f"        loss = {call}\n"), call)


def test_torch_functions_in_a_helper_are_written() -> None:
    source = _helper("torch.sum(torch.cat([a, b], 1) ** 2) * 0.01 + torch.exp(a).mean() * 0.1")
    translated = _converts(source, "jnp.sum(jnp.concatenate([a, b], axis=1) ** 2")
    assert "jnp.exp(a)" in translated


def test_a_torch_function_in_a_helper_escapes() -> None:
    _escapes(_helper("F.l1_loss(a, b)", WITH_F), "calls `F.l1_loss(...)`")


def test_a_helper_without_torch_functions_runs_as_it_is() -> None:
    """Twin: nothing to write, the helper is not copied."""
    translated = _converts(_helper("((a - b) ** 2).mean()"))
    assert "def crit" not in translated.split("def loss_fn", 1)[1]


SLOW = WITH_F.replace("lr=0.05", "lr=0.005")  # (a summed loss at 0.05 diverges: 7e4)


@pytest.mark.parametrize(("source", "reduction"), [(WITH_F, ""), (SLOW, ", reduction='sum'")])
def test_mse_loss(source: str, reduction: str) -> None:
    _converts(_loss(f"        loss = F.mse_loss(out, y{reduction})\n", source), "(x - t) ** 2")


MASKED = "        t = t * ((y[:, 1] <= 0.5) * 1) - 100 * ((y[:, 1] > 0.5) * 1)\n"
PROBABILITIES = "torch.exp(y) / torch.sum(torch.exp(y), 1, keepdim=True)"


@pytest.mark.parametrize(
    ("lines", "call"),
    [
        ("", "F.cross_entropy(out, t)"),
        (MASKED, "F.cross_entropy(out, t)"),
        (MASKED, "F.cross_entropy(out, t, reduction='sum')"),
        ("", f"F.cross_entropy(out, {PROBABILITIES})"),
        ("", f"F.cross_entropy(out, {PROBABILITIES}, reduction='sum')"),
    ],
)
def test_cross_entropy(lines: str, call: str) -> None:
    """Class-index targets (the -100 rows masked out) and probability targets."""
    targets = "        t = (y[:, 0] > 0) * 1\n" + lines
    _converts(_loss(f"{targets}        loss = {call}\n"), "jax.nn.log_softmax(x, axis=1)")


@pytest.mark.parametrize(
    "keyword", ["label_smoothing=0.1", "ignore_index=0", "reduction='none'", "weight=w"]
)
def test_cross_entropy_otherwise_escapes(keyword: str) -> None:
    call = f"F.cross_entropy(out, (y[:, 0] > 0) * 1, {keyword})"
    _escapes(_loss(f"        loss = {call}.mean()\n"), "F.cross_entropy")


def test_sigmoid_and_tanh() -> None:
    translated = _converts(
        _in_loss("", "0.1 * (torch.sigmoid(out) * torch.tanh(out)).mean()"),
        "jax.nn.sigmoid(out)",
    )
    assert "jnp.tanh(out)" in translated


# torch's binary cross entropy of saturated probabilities (`out * 40`: p(1 - p) < 1e-12 for
# some outputs, where torch's gradient is not the gradient of its clamped logs)
BCE_TARGETS = "(y > 0) * 1.0"


@pytest.mark.parametrize(
    ("probabilities", "reduction"),
    [("torch.sigmoid(out)", ""), ("torch.sigmoid(out * 40)", ", reduction='sum'")],
)
def test_binary_cross_entropy_is_torchs(probabilities: str, reduction: str) -> None:
    call = f"F.binary_cross_entropy({probabilities}, {BCE_TARGETS}{reduction})"
    _converts(_loss(f"        loss = {call}\n"), "jax.lax.stop_gradient((p - t)")


@pytest.mark.parametrize(
    "call",
    [
        f"F.binary_cross_entropy(torch.sigmoid(out), {BCE_TARGETS}, reduction='none').mean()",
        f"F.binary_cross_entropy(torch.sigmoid(out), {BCE_TARGETS}, torch.ones(2))",
        # the target carries a gradient in torch, none in the template
        "F.binary_cross_entropy(torch.sigmoid(out), torch.sigmoid(out * 2))",
        "F.binary_cross_entropy(torch.sigmoid(out), torch.sigmoid(model(x)))",
        f"F.binary_cross_entropy(torch.sigmoid(out), model.out.bias * 0 + {BCE_TARGETS})",
        # (a third positional argument is torch's `weight`, not the reduction)
        f"F.binary_cross_entropy(torch.sigmoid(out), {BCE_TARGETS}, 'sum')",
    ],
)
def test_binary_cross_entropy_otherwise_escapes(call: str) -> None:
    _escapes(_loss(f"        loss = {call}\n"), "binary_cross_entropy")


def test_binary_cross_entropy_in_a_helper() -> None:
    """pytorch/examples' VAE: ``loss_function(recon_batch, data, mu, logvar)`` copied with the
    batch as the target."""
    source = _helper("F.binary_cross_entropy(torch.sigmoid(a), b, reduction='sum')", WITH_F)
    source = source.replace("crit(out, y)", f"crit(out, {BCE_TARGETS})")
    _converts(source, "def crit(a, b)")


@pytest.mark.parametrize(
    "target", ["torch.sigmoid(out * 2)", f"model.out.bias * 0 + {BCE_TARGETS}"]
)
def test_binary_cross_entropy_in_a_helper_given_a_computed_target_escapes(target: str) -> None:
    source = _helper("F.binary_cross_entropy(torch.sigmoid(a), b, reduction='sum')", WITH_F)
    source = source.replace("crit(out, y)", f"crit(out, {target})")
    _escapes(source, "binary_cross_entropy")


def test_mse_loss_with_a_positional_third_argument_escapes() -> None:
    """torch's third positional parameter is the deprecated ``size_average`` ('sum' is truthy:
    a mean), not ``reduction``."""
    _escapes(_loss("        loss = F.mse_loss(out, y, 'sum')\n"), "F.mse_loss(out, y, 'sum')")


# ------------------------------------------------------------------ GradScaler

SCALED = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05)
scaler = torch.amp.GradScaler("cpu")
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad(set_to_none=True)
        loss = ((model(x) - y) ** 2).mean()
BODY
        losses.append(loss.item())
"""


def _scaled(*lines: str) -> str:
    return SCALED.replace("BODY", "\n".join(f"        {line}" for line in lines))


def test_scaled_loss_bound_to_a_name_escapes() -> None:
    source = _scaled(
        "scaled = scaler.scale(loss)", "scaled.backward()", "scaler.step(opt)", "scaler.update()"
    )
    _escapes(source, "`scaler.scale(loss)` runs in the forward pass")


def test_unscale_then_a_plain_step_then_update() -> None:
    source = _scaled(
        "scaler.scale(loss).backward()", "scaler.unscale_(opt)", "opt.step()", "scaler.update()"
    )
    translated = _converts(source)
    assert "scaler.update()" not in translated and "unscale_" not in translated


def test_a_plain_step_on_scaled_gradients_escapes() -> None:
    """torch steps with the gradients of the scaled loss (times 65536 here)."""
    _escapes(_scaled("scaler.scale(loss).backward()", "opt.step()"), "no `scaler.unscale_(opt)`")


def test_scaler_step_then_update() -> None:
    """Twin: the usual shape, unchanged."""
    _converts(_scaled("scaler.scale(loss).backward()", "scaler.step(opt)", "scaler.update()"))
