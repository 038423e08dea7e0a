"""Probe s36, G3 (fixed): a torch module's ``training`` flag written directly around an NNX step
(``model.norm.training = False``, ``setattr(model.norm, "training", False)``, or through
another name, ``bn = model.norm; bn.training = False``). torch's BatchNorm then normalises with
its running statistics; an ``nnx.BatchNorm`` has no ``training`` attribute (its mode is
``use_running_average``, set by ``model.eval()``/``model.train()``), so the translated program
sets an attribute nothing reads and trains with the batch's statistics. Measured, the codemod's
own output against torch (a BatchNorm whose statistics are frozen at 0 and 1, so the two modes
differ only by which statistics normalise), float64, 36 updates: 0.28 relative off in each
shape. Reading ``model.norm.training`` raised AttributeError (loud). Now the map's
``module_mode_attributes: [training]`` (targets/nnx/nnx.yaml) makes a store of it on any
object, or a ``setattr`` naming it, anywhere in the step's file escape the step
(``step_checks._check_mode_attribute_stores``), and ``training`` joins
``torch_only_module_names`` (a read through the model escapes instead of raising). The twins
(``model.norm.eval()``, ``model.eval()``, another attribute named like it on another object)
convert and match torch exactly."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, worst_rel
from tests.differential.test_nnx_module_mode_arguments import runs

LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.05)
{mode}
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""
ESCAPING = {
    "a_module_of_the_model": "model.norm.training = False",
    "setattr": 'setattr(model.norm, "training", False)',
    "another_name": "bn = model.norm\nbn.training = False",
    "before_the_optimizer": None,
}


def _source(name: str) -> str:
    if name == "before_the_optimizer":
        return LOOP.format(mode="").replace(
            "opt = torch.optim", "model.norm.training = False\nopt = torch.optim"
        )
    return LOOP.format(mode=ESCAPING[name])


@pytest.mark.parametrize("name", sorted(ESCAPING))
def test_a_training_flag_written_by_hand_escapes_the_step(name: str) -> None:
    translated = translate_nnx(_source(name))
    assert BEGIN in translated and "training" in translated, translated


TWINS = {
    "eval_of_the_module": "model.norm.eval()",
    "eval_of_the_model": "model.eval()",
    "another_flag_of_another_object": "class Flags:\n    pass\nflags = Flags()\nflags.train = False",
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_twins_convert_and_match_torch(name: str) -> None:
    source = LOOP.format(mode=TWINS[name])
    translated = translate_nnx(source)
    assert BEGIN not in translated and "nnx.value_and_grad" in translated, translated
    rel = worst_rel(*runs(source, translated))
    assert rel < EXACT, f"rel={rel:.3e}\n{translated}"
