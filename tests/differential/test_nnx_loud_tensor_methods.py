"""Torch uses that converted and then raised when the NNX translation ran (s36, issue 13),
now written exactly or escaped with a reason:

- ``x.clone()`` in the loss function (a traced JAX array has no ``clone``: AttributeError):
  the map's ``array_lacks: clone`` writes ``x`` (a JAX array is never changed in place).
- ``x.norm()``: no ``norm`` method on a JAX array; after the update ``jnp.linalg.norm(x)``
  (the 2-norm of all elements), in the loss function it escapes (torch's gradient at a zero
  vector is 0, JAX's NaN), as do ``p``/``dim``.
- ``x.sum(1, keepdim=True)``, ``x.sum(dim=1)``, ``x.mean(1, True)``: a JAX array's ``sum``
  takes ``axis``/``keepdims``, its second positional argument is a dtype (TypeError): the map's
  ``array_namesakes: sum, mean`` write ``x.sum(axis=1, keepdims=True)``; ``x.sum(1)`` computes
  the same and is left as written (``same_positional``).
- ``float(out.mean())`` in the loss function (ConcretizationTypeError): escapes (the map's
  ``concrete_builtins``).
- ``model = model.to(dev)`` in the epoch loop (AttributeError on the nnx.Module): escapes (the
  map's ``module_moves``).

The codemod's own output run against torch: float64, 36 updates, recorded values < 1e-9."""

from __future__ import annotations

import re

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP

LOSS = "loss = ((out - y) ** 2).mean()"
STEP = "        opt.step()\n        losses.append(loss.item())\n"
EPOCH = "    for x, y in loader:\n"


def _in_loss(lines: str, term: str) -> str:
    """``PLAIN_LOOP`` with ``lines`` before the loss, which adds ``term``."""
    return PLAIN_LOOP.replace(f"        {LOSS}\n", f"{lines}        {LOSS} + {term}\n")


def _after(lines: str) -> str:
    return PLAIN_LOOP.replace(STEP, STEP + lines)


def _converts(source: str, written: str) -> None:
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert written in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated


def _escapes(source: str, said: str) -> None:
    translated = translate_nnx(source)
    assert BEGIN in translated and said in translated, translated
    assert not re.search(r"^ *opt\.update\(", translated, re.MULTILINE), translated


def test_clone_in_the_loss_is_the_value() -> None:
    _converts(
        _in_loss("        o2 = out.clone()\n", "0.1 * (o2 ** 2).mean()"),
        "o2 = out\n",
    )


def test_clone_with_a_memory_format_escapes() -> None:
    source = _in_loss(
        "        o2 = out.clone(memory_format=torch.contiguous_format)\n", "0.1 * o2.mean()"
    )
    _escapes(source, "has no `clone`")


def test_norm_after_the_update_is_the_2_norm_of_all_elements() -> None:
    _converts(
        _after("        losses.append(float(out.norm()))\n"),
        "losses.append(float(jnp.linalg.norm(out)))",
    )


@pytest.mark.parametrize("call", ["out.norm()", "out.norm(dim=1).sum()", "out.norm(1)"])
def test_norm_in_the_loss_escapes(call: str) -> None:
    _escapes(_in_loss("", f"0.1 * {call}"), "has no `norm` method")


@pytest.mark.parametrize(
    ("term", "written"),
    [
        ("(out.sum(1, keepdim=True) ** 2).mean()", "out.sum(axis=1, keepdims=True)"),
        ("(out.sum(1, True) ** 2).mean()", "out.sum(axis=1, keepdims=True)"),
        ("(out.sum(dim=-1) ** 2).mean()", "out.sum(axis=-1, keepdims=False)"),
        ("(out.mean(1, True) * out).mean()", "out.mean(axis=1, keepdims=True)"),
        ("out.sum()", "out.sum()"),
        ("((out - y) ** 2).mean(1).sum()", "((out - y) ** 2).mean(1).sum()"),  # left: the same
        ("out.sum((0, 1))", "out.sum((0, 1))"),
    ],
)
def test_reductions_with_torch_arguments_convert(term: str, written: str) -> None:
    _converts(_in_loss("", f"0.1 * {term}"), written)


def test_reduction_keepdim_after_the_update() -> None:
    _converts(
        _after("        losses.append(float(out.sum(1, keepdim=True).max()))\n"),
        "out.sum(axis=1, keepdims=True).max()",
    )


@pytest.mark.parametrize(
    "term",
    ["out.sum(1, keepdim=k)", "out.sum(dtype=torch.float64)", "(out * 2).sum(1, True)"],
)
def test_other_reductions_escape(term: str) -> None:
    _escapes(_in_loss("        k = True\n", f"0.1 * {term}"), "`axis` and `keepdims`")


@pytest.mark.parametrize(
    "lines",
    [
        "        s = float(out.mean())\n",
        "        s = int((out > 0).sum()) * 1.0\n",
        "        s = float(model(x).sum())\n",
    ],
)
def test_a_concrete_number_in_the_loss_escapes(lines: str) -> None:
    _escapes(_in_loss(lines, "0.1 * s * out.sum()"), "needs a concrete number")


def test_a_static_number_in_the_loss_converts() -> None:
    _converts(
        _in_loss("        s = float(out.shape[0]) + float(len(out))\n", "0.1 * out.sum() / s"),
        "s = float(out.shape[0]) + float(len(out))",
    )


@pytest.mark.parametrize(
    "line",
    ["    model = model.to(dev)\n", "    model.cuda()\n", "    model.hidden.double()\n"],
)
def test_a_model_moved_in_the_epoch_loop_escapes(line: str) -> None:
    source = PLAIN_LOOP.replace("model = make_model()\n", "model = make_model()\ndev = 'cpu'\n")
    _escapes(source.replace(EPOCH, line + EPOCH), "moves or casts the model")


def test_a_model_moved_before_the_loop_is_left_to_the_port() -> None:
    """Before the loops it belongs to the model's setup, ported with the model (left as
    written, as before)."""
    source = PLAIN_LOOP.replace("model = make_model()\n", "model = make_model()\nmodel.cpu()\n")
    translated = translate_nnx(source)
    assert BEGIN not in translated and "model.cpu()\n" in translated, translated


def test_torch_elementwise_functions_over_several_lines() -> None:
    """``torch.log(1 + torch.exp(...))`` written over lines (pytorch/examples'
    mnist_forward_forward): the map's ``array_functions`` write ``jnp.log``/``jnp.exp``, the
    argument parenthesized (before the fix the file failed: ParserSyntaxError)."""
    lines = (
        "        soft = torch.log(\n            1\n            + torch.exp(out)\n        ).mean()\n"
    )
    _converts(_in_loss(lines, "0.1 * soft"), "jnp.log((1\n")
