"""Held-out s39 item 3: a clip's ``max_norm`` read as an attribute that only set-up code writes
escapes the fold ("may change") in ikostrikov's PPO (``self.max_grad_norm`` stored in
``__init__`` before ``self.optimizer`` is built), cleanrl (``args.max_grad_norm`` of a
``parse_args()``) and JointBERT (``self.args`` where only ``self.args.num_train_epochs`` is
written). Session 40 folded them by attribute-granular write analysis, exact on these shapes;
a probe then found seven ways the value changes that the analysis did not see (a descriptor in
the class body, a ``__setattr__`` of the holder's class run by a sibling store, a mutable
object under the set-up attribute, ``delattr``, the method run on another object through its
class, the attribute dict bound to a name, ``setattr`` reached unnamed: 0.04-0.51 off torch),
and the fold was withdrawn. The three shapes escape again; every way the attribute can be
written keeps the escape (the trap twins, the probe's among them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.differential.harness import (
    translate,
)
from tests.differential.nnx_loops import translate_nnx
from tests.differential.test_hidden_code_of_another_file import _translated
from tests.support import SwitcherooTest

PPO = """\
import torch
class PPO:
    def __init__(self, model, lr, max_grad_norm):
        self.model = model
        self.max_grad_norm = max_grad_norm
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    def update(self, x, y):
        loss = ((self.model(x) - y) ** 2).mean() * 20
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self.optimizer.step()
        return loss
{extra}
agent = PPO(make_model(), 0.01, 0.05)
for epoch in range(EPOCHS):
    for x, y in loader:
        losses.append(agent.update(x, y).item())
"""
ARGS = """\
import argparse
import torch
def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-grad-norm", type=float, default=0.05)
    args = parser.parse_args([])
    args.batch_size = 4
    return args
args = parse_args()
{extra}
model = make_model()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01, eps=1e-5)
for update in range(1, EPOCHS + 1):
    optimizer.param_groups[0]["lr"] = (1.0 - (update - 1.0) / EPOCHS) * 0.01
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean() * 20
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        losses.append(loss.item())
"""
TRAINER = """\
import types
import torch
class Trainer(object):
    def __init__(self, args, model):
        self.args = args
        self.model = model
    def train(self):
        self.args.num_train_epochs = EPOCHS
        optimizer = torch.optim.Adam(self.model.parameters(), lr=0.01)
        for epoch in range(self.args.num_train_epochs):
            for x, y in loader:
                loss = ((self.model(x) - y) ** 2).mean() * 20
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
                losses.append(loss.item())
{extra}
Trainer(types.SimpleNamespace(max_grad_norm=0.05), make_model()).train()
"""
SHAPES = {"ctor_attribute": PPO, "argparse_namespace": ARGS, "other_attribute_written": TRAINER}


def _source(shape: str, extra: str = "") -> str:
    return SHAPES[shape].replace("{extra}", extra)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_held_out_shapes_escape(shape: str) -> None:
    """Withdrawn in session 40 after a probe (see the module): both targets escape."""
    source = _source(shape)
    assert "clip_grad_norm_(" in translate(source).code
    translated = translate_nnx(source)
    assert "ESCAPE" in translated and "clip_grad_norm_(" in translated, translated


# ------------------------------------------------------------------------- trap twins

TWINS = {
    "ctor_attribute": {
        "written_in_another_method": "    def set_clip(self, c):\n        self.max_grad_norm = c",
        "written_by_a_subclass_init": (
            "class PPO2(PPO):\n    def __init__(self, *a):\n        super().__init__(*a)\n"
            "        self.max_grad_norm = 0.1"
        ),
        "written_through_another_name": "def tweak(a):\n    a.max_grad_norm = 0.1",
        "setattr_with_a_computed_name": "def tweak(a, k):\n    setattr(a, k, 0.1)",
        "dict_item_with_a_computed_name": "def tweak(a, k):\n    a.__dict__[k] = 0.1",
        "dict_update": "def tweak(a, d):\n    a.__dict__.update(d)",
        "vars_update": "def tweak(a):\n    vars(a).update(max_grad_norm=0.1)",
        "set_up_again": "def reset(a):\n    a.__init__(a.model, 0.1, 0.1)",
        "the_instance_handed_to_a_function": "    def log(self):\n        report(self)",
        # probe s40 R1: a class-body binding may compute each read (and run each store)
        "a_property_built_by_a_call": "    max_grad_norm = property(get_clip, set_clip)",
        "a_descriptor_object": "    max_grad_norm = Growing()",
        # probe s40 R2: the attribute dict bound to a name and written through it
        # probe s40 R3: the setter reached by another way than a call of its name
        "setattr_reached_by_getattr": (
            "def tweak(a):\n    getattr(builtins, 'setattr')(a, 'max_grad_norm', 0.1)"
        ),
        "setattr_bound_to_another_name": (
            "put = setattr\ndef tweak(a):\n    put(a, 'max_grad_norm', 0.1)"
        ),
        "the_dict_bound_in_a_method": (
            "    def tweak(self):\n        d = self.__dict__\n        d['max_grad_norm'] = 0.1"
        ),
    },
    "argparse_namespace": {
        "assigned": "args.max_grad_norm = 0.1",
        "vars_update": "vars(args).update(max_grad_norm=0.1)",
        "dict_item": 'args.__dict__["max_grad_norm"] = 0.1',
        "dict_item_computed": "args.__dict__[k] = 0.1",
        "dict_update": "args.__dict__.update(d)",
        "another_binding_of_the_factory": "other = parse_args()",
        "handed_to_a_function": "adjust(args)",
        "an_alias_assigned": "a = args\na.max_grad_norm = 0.1",
        "the_dict_bound_to_a_name": "ns = args.__dict__\nns.update(max_grad_norm=0.1)",
        "the_dict_read_by_getattr": "ns = getattr(args, '__dict__')\nns['max_grad_norm'] = 0.1",
        "an_attribute_read_by_a_computed_name": "ns = getattr(args, k)",
    },
    "other_attribute_written": {
        "holder_rebound_in_another_method": "    def reset(self, args):\n        self.args = args",
        "handed_to_a_function": "    def seed(self):\n        set_seed(self.args)",
        "attribute_assigned": "    def tune(self):\n        self.args.max_grad_norm = 0.1",
    },
}
CASES = [(shape, name) for shape, twins in sorted(TWINS.items()) for name in sorted(twins)]


class TrapTwinsTest(SwitcherooTest):
    def test_every_write_keeps_the_escape(self) -> None:
        for shape, name in CASES:
            with self.subTest(shape=shape, twin=name):
                source = _source(shape, TWINS[shape][name])
                (record,) = [r for r in self.records(source) if r.api.endswith("clip_grad_norm_")]
                self.assertEqual(record.kind, "escaped", source)
                self.assertIn("is evaluated at every step in torch", record.reason)


def test_a_subclass_init_of_another_file_writing_it_keeps_the_escape(tmp_path: Path) -> None:
    """``self.max_grad_norm`` stored by a subclass's ``__init__`` after ``super().__init__``
    built the optimizer: the fold would have read the base's value."""
    subclass = (
        "from pkg.train import PPO\n"
        "class PPO2(PPO):\n    def __init__(self, *a):\n        super().__init__(*a)\n"
        "        self.max_grad_norm = 0.1\n"
    )
    translation = _translated(
        tmp_path, {"pkg/train.py": _source("ctor_attribute"), "pkg/sub.py": subclass}
    )
    (record,) = [r for r in translation.escapes if "clip_grad" in r.api]
    assert "is evaluated at every step in torch" in record.reason, record.reason
