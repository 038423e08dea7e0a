"""Torch methods and attributes on values of the NNX loss function read in the statements
after the update (s23a, issue 13): the map's ``after`` templates (``array_lacks``,
``array_namesakes``, ``array_attributes`` in targets/nnx/nnx.yaml) write them where every
binding of the receiver is an assignment of the loss function's statements:
``_, predicted = outputs.max(1)`` (kuangliu/pytorch-cifar), ``output.cpu().data``
(pytorch-beginner's autoencoder), ``x.detach()`` -> ``x`` (nothing is differentiated there),
``loss.data.numpy()`` -> ``np.asarray(loss)``; ``x.pow(k)`` -> ``(x ** k)`` in the loss too.
Before, each such step escaped, but for ``.detach()``/``.data`` after the step, which converted
and raised AttributeError when run (measured on main 10f8f36: ``out.detach()`` after the step,
``AttributeError: 'ArrayImpl' object has no attribute 'detach'``).
The codemod's own output run against torch (float64, 36 updates), the values read after the
step recorded. A receiver rebound after the step, read before it, a template-less method, an
assignment through ``.data``: the step escapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.spec.errors import SemanticMapError
from ml_switcheroo.spec.escape_hatch import BEGIN
from ml_switcheroo.targets.catalogue import NNX, load_semantic_map
from tests.differential.harness import EXACT
from tests.differential.nnx_gan_loops import run_nnx_gan, run_torch_gan, worst_gan_rel
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP

STEP = "        opt.step()\n        losses.append(loss.item())\n"
EPOCH_END = "    losses.append(float(LAST))\n"


def _after(lines: str, last: str | None = None) -> str:
    """``PLAIN_LOOP`` with ``lines`` after the step (in the batch loop) and, with ``last``, the
    value ``last`` recorded once an epoch after the batch loop."""
    assert STEP in PLAIN_LOOP
    source = PLAIN_LOOP.replace(STEP, STEP + lines)
    return source + EPOCH_END.replace("LAST", last) if last is not None else source


CONVERTED = [
    (  # kuangliu/pytorch-cifar: the accuracy count's input
        _after(
            "        _, predicted = out.max(1)\n"
            "        losses.append(float(predicted.sum().item()))\n"
        ),
        "_, predicted = (jnp.take_along_axis(out, out.argmax(axis=1, keepdims=True), axis=1)"
        ".squeeze(1), out.argmax(axis=1))",
    ),
    (  # kuangliu/pytorch-cifar's count: `predicted` unpacked from a rewritten call
        _after(
            "        label = y.argmax(1)\n"
            "        _, predicted = out.max(1)\n"
            "        losses.append(float(predicted.eq(label).sum().item()))\n"
            "        losses.append(float(predicted.ne(1).sum().item()))\n"
        ),
        "losses.append(float((predicted == label).sum().item()))",
    ),
    (  # the values too
        _after("        top = out.min(dim=1)[0]\n        losses.append(top.sum().item())\n"),
        "top = (jnp.take_along_axis(out, out.argmin(axis=1",
    ),
    (  # pytorch-beginner's autoencoder: after the batch loop, `.cpu().data`
        _after("", "out.cpu().data.sum().item()"),
        "losses.append(float(out.sum().item()))",
    ),
    (
        _after("        kept = out.detach()\n        losses.append(kept.sum().item())\n"),
        "kept = out\n",
    ),
    (
        _after("        losses.append(float(loss.data.numpy()))\n"),
        "losses.append(float(np.asarray(loss)))",
    ),
    (
        _after("        losses.append(out.cpu().pow(3).sum().item())\n"),
        "losses.append((out ** 3).sum().item())",
    ),
    (  # in the loss function: `(out ** 2)` (parenthesized: `.mean()` reads the power)
        PLAIN_LOOP.replace(
            "loss = ((out - y) ** 2).mean()", "loss = ((out - y) ** 2).mean() + out.pow(2).mean()"
        ),
        "loss = ((out - y) ** 2).mean() + (out ** 2).mean()",
    ),
]


@pytest.mark.parametrize(("source", "written"), CONVERTED)
def test_reads_after_the_update_convert_exactly(source: str, written: str) -> None:
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert written in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated  # a second run changes nothing


def test_a_torch_value_keeps_its_methods() -> None:
    """``t.cpu()`` on a tensor the loss function does not compute stays torch code."""
    source = _after("        t = torch.ones(2)\n        w = t.cpu().data\n")
    translated = translate_nnx(source)
    assert BEGIN not in translated and "w = t.cpu().data\n" in translated, translated


@pytest.mark.parametrize(
    ("source", "said"),
    [
        (  # rebound after the step: the name is not only the loss function's value
            _after("        out = torch.zeros(2, 2)\n        w = out.cpu()\n"),
            "`out.cpu()`",
        ),
        (  # read before the step (a previous batch's value)
            PLAIN_LOOP.replace(
                "        opt.zero_grad()\n",
                "        if losses:\n            w = out.cpu()\n        opt.zero_grad()\n",
            ),
            "`out.cpu()`",
        ),
        (_after("        w = out.numel()\n"), "`out.numel()`"),  # no template in the map
        (_after("        w = out.pow(0.5)\n"), "`out.pow(0.5)`"),  # a float exponent
        (_after("        w = out.sort(1)[0]\n"), "`out.sort(1)`"),  # other numbers
        (_after("        w = out.max(1).indices\n"), "`out.max(1)`"),  # a tuple's field
        (  # an operand computed in the call: not a name or a number
            _after("        _, p = out.max(1)\n        w = p.eq(y.argmax(1))\n"),
            "`p.eq(y.argmax(1))`",
        ),
        (  # `p` is also a loop target
            _after("        _, p = out.max(1)\n        w = p.eq(y)\n").replace(
                "for x, y in loader:", "for p in [0]:\n      for x, y in loader:"
            ),
            "`p.eq(y)`",
        ),
        (_after("        out.data = out * 2\n"), "`out.data`"),  # a write through `.data`
        (_after("        o = out\n        w = o.cpu()\n"), "`o.cpu()`"),  # bound after the step
        (
            PLAIN_LOOP.replace("((out - y) ** 2)", "((out.data - y) ** 2)"),
            "`out.data`",
        ),
    ],
)
def test_other_reads_keep_the_escape(source: str, said: str) -> None:
    translated = translate_nnx(source)
    assert BEGIN in translated and "loss.backward()" in translated, translated
    assert f"{said} runs on JAX arrays there" in translated, translated


def test_a_helper_of_the_loss_with_a_lacking_method_is_copied_and_written() -> None:
    """pytorch/examples' vae: ``loss_function(...)`` computing ``mu.pow(2)``. Escaped until
    s26d; now copied into the loss function with the call written
    (``tests/differential/test_nnx_helper_copies.py``)."""
    source = "def penalty(o):\n    return o.pow(2).mean()\n\n\n" + PLAIN_LOOP.replace(
        "loss = ((out - y) ** 2).mean()", "loss = ((out - y) ** 2).mean() + penalty(out)"
    )
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "return (o ** 2).mean()" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


# pytorch-beginner's simple_Gan: each step reads the other's loss and values after its update
# (`d_loss.data`, `g_loss.data`, `real_scores.data.mean()`, `fake_img.cpu().data`); every
# binding of those names is a statement of one of the two steps before its backward pass.
BEGINNER_GAN = """\
import torch

G = make_generator()
D = make_discriminator()
d_optimizer = torch.optim.Adam(D.parameters(), lr=1e-2)
g_optimizer = torch.optim.Adam(G.parameters(), lr=1e-2)
for epoch in range(EPOCHS):
    for z, real_img, real_label, fake_label in loader:
        real_out = D(real_img)
        d_loss_real = ((real_out - real_label) ** 2).mean()
        real_scores = real_out
        fake_img = G(z)
        fake_out = D(fake_img)
        d_loss_fake = ((fake_out - fake_label) ** 2).mean()
        d_loss = d_loss_real + d_loss_fake
        d_optimizer.zero_grad()
        d_loss.backward()
        d_optimizer.step()

        fake_img = G(z)
        output = D(fake_img)
        g_loss = ((output - real_label) ** 2).mean()
        g_optimizer.zero_grad()
        g_loss.backward()
        g_optimizer.step()
        d_losses.append(d_loss.data.item() + real_scores.data.mean().item())
        g_losses.append(g_loss.data.item())
    g_losses.append(fake_img.cpu().data.sum().item())
"""


def test_both_steps_of_a_gan_read_each_others_values_exactly() -> None:
    translated = translate_nnx(BEGINNER_GAN)
    assert BEGIN not in translated, translated
    assert translated.count("nnx.value_and_grad(") == 2, translated
    assert "d_losses.append(d_loss.item() + real_scores.mean().item())" in translated
    assert "g_losses.append(fake_img.sum().item())" in translated, translated
    rel = worst_gan_rel(run_torch_gan(BEGINNER_GAN), run_nnx_gan(translated))
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated


def test_a_gan_value_rebound_outside_the_steps_keeps_the_escape() -> None:
    """``fake_img`` rebound after both steps to a value no ported model computes (a torch
    tensor): not a value of a loss function; its ``.cpu()`` is not rewritten."""
    source = BEGINNER_GAN.replace(
        "    g_losses.append(fake_img.cpu()",
        "    fake_img = torch.ones(2, 2)\n    g_losses.append(fake_img.cpu()",
    )
    translated = translate_nnx(source)
    assert BEGIN in translated and "`fake_img.cpu().data` runs on JAX arrays" in translated


def test_a_ported_models_output_after_the_steps_converts_exactly() -> None:
    """``fake_img = G(z)`` after both steps (dcgan's ``fake = netG(fixed_noise)``): ``G`` is
    the model of a translated optimizer, its output a JAX array (s24b; before, the step
    escaped): ``fake_img.cpu().data`` is ``fake_img``."""
    source = BEGINNER_GAN.replace(
        "    g_losses.append(fake_img.cpu()",
        "    fake_img = G(z)\n    g_losses.append(fake_img.cpu()",
    )
    translated = translate_nnx(source)
    assert BEGIN not in translated and "    g_losses.append(fake_img.sum().item())" in translated
    rel = worst_gan_rel(run_torch_gan(source), run_nnx_gan(translated))
    assert rel < EXACT, f"rel {rel:.3e}"


def test_data_between_the_backward_pass_and_the_step_converts_exactly() -> None:
    """``running += loss.data.item()`` before ``opt.step()`` (after the gradient: ``loss``)."""
    source = "running = 0.0\n" + PLAIN_LOOP.replace(
        "        opt.step()\n", "        running += loss.data.item()\n        opt.step()\n"
    ).replace("losses.append(loss.item())", "losses.append(running)")
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "running += loss.item()" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("array_lacks:\n  eq:\n    reason: r\n    exact: '{x}'\n", "go together"),
        (
            "array_lacks:\n  eq:\n    reason: r\n    params: {a: null}\n    exact: '{x}'\n"
            "    operands: [b]\n",
            "'operands' must list names of 'params'",
        ),
        ("array_attributes:\n  data:\n    reason: r\n    params: {}\n", "params"),
    ],
)
def test_the_map_checks_the_templates_fields(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SemanticMapError, match=said):
        load_semantic_map([path], NNX)
