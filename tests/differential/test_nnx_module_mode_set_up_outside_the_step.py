"""Probe s37, M1: a torch module's mode set, outside the step's scope or through a form the
s35N F2 / s36 G3 checks do not read, around a converted NNX step:

- ``model.norm.train(mode=False)`` (or ``model.train(False)``-like calls through another name,
  ``bn = model.norm; bn.train(mode=False)``) in a script's set-up, before its loop: F2's
  ``_check_argument_free_methods`` read the step's scope only (a script's: the outermost
  loop). flax's ``nnx.Module.train(**attributes)`` takes ``mode=False`` as one more attribute,
  quietly ignored, and keeps training mode;
- ``model.norm.__dict__["training"] = False``, ``vars(model.norm)["training"] = False``,
  ``object.__setattr__(model.norm, "training", False)``: G3 read attribute stores and
  ``setattr`` only.

torch then normalises with the running statistics, the translated BatchNorm with the batch's:
measured, the codemod's own output against torch (float64, 36 updates, statistics frozen at 0
and 1), 0.28 relative off in each shape. Fixed: ``step_checks._check_mode_calls_in_file`` reads
the calls of the whole file (on the model, a module of it, a name bound to one, or with torch's
``mode=`` / a literal flag on any object), ``_check_mode_attribute_stores`` the ``__dict__`` /
``vars()`` items and updates and any ``__setattr__`` naming the flag. The twins (``eval()`` of a
module before the loop, another object's ``train(n)``, a dict item named ``"training"``,
another object's ``__dict__``) convert and match torch."""

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
    "train_mode_keyword_on_a_module_before_the_loop": "model.norm.train(mode=False)",
    "train_mode_keyword_on_the_model_before_the_loop": "model.train(mode=False)",
    "train_through_another_name": "bn = model.norm\nbn.train(mode=False)",
    "instance_dict_item": 'model.norm.__dict__["training"] = False',
    "vars_item": 'vars(model.norm)["training"] = False',
    "object_setattr": 'object.__setattr__(model.norm, "training", False)',
}


@pytest.mark.parametrize("name", sorted(ESCAPING))
def test_a_mode_set_outside_the_step_escapes(name: str) -> None:
    translated = translate_nnx(LOOP.format(mode=ESCAPING[name]))
    assert BEGIN in translated, translated


TWINS = {
    "eval_of_a_module_before_the_loop": "model.norm.eval()",
    "another_objects_train_method": (
        "class Runner:\n    def train(self, n):\n        return n\nrunner = Runner()\nrunner.train(3)"
    ),
    "a_dict_item_named_training": 'cfg = {}\ncfg["training"] = False\nprint("training", cfg)',
    "another_objects_namespace": (
        "class Flags:\n    pass\nflags = Flags()\nflags.__dict__['verbose'] = False"
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_twins_convert_and_match_torch(name: str) -> None:
    source = LOOP.format(mode=TWINS[name])
    translated = translate_nnx(source)
    assert BEGIN not in translated and "nnx.value_and_grad" in translated, translated
    rel = worst_rel(*runs(source, translated))
    assert rel < EXACT, f"rel={rel:.3e}\n{translated}"
