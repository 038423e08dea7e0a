"""Held-out s39 F3: the reasons a clip's ``max_norm`` escapes the fold name what may change it.
JointBERT's said "`self.args.max_grad_norm` is assigned in this file" (only
``self.args.num_train_epochs`` was); ikostrikov's PPO said "`self` is assigned after the
optimizer is built" (``self`` is the parameter of another method)."""

from __future__ import annotations

from tests.support import SwitcherooTest

TRAINER = """\
import torch
class Trainer(object):
    def __init__(self, args, model):
        self.args = args
        self.model = model
    def train(self):
        self.args.num_train_epochs = 3
        optimizer = torch.optim.Adam(self.model.parameters(), lr=0.01)
        set_seed(self.args)
        for x, y in loader:
            loss = ((self.model(x) - y) ** 2).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
"""
PPO = """\
import torch
class PPO:
    def __init__(self, model, max_grad_norm):
        self.model = model
        self.max_grad_norm = max_grad_norm
        self.optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    @timed
    def update(self, x, y):
        loss = ((self.model(x) - y) ** 2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self.optimizer.step()
"""
HOLDER = """\
import torch
def train(model, loader, args):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in loader:
        opt.zero_grad()
        model(x).sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.opt.clip)
        opt.step()
    args.opt = None
"""


class ClipValueReasonTest(SwitcherooTest):
    def reason(self, source: str) -> str:
        (record,) = [r for r in self.records(source) if r.api.endswith("clip_grad_norm_")]
        self.assertEqual(record.kind, "escaped")
        return record.reason

    def test_a_sibling_store_of_the_holder_is_named(self) -> None:
        self.assertIn("`self.args` is assigned in this file", self.reason(TRAINER))

    def test_another_attribute_written_is_not_called_the_clip_value(self) -> None:
        self.assertNotIn("`self.args.max_grad_norm` is assigned", self.reason(TRAINER))

    def test_a_receiver_of_another_method_is_called_a_parameter(self) -> None:
        self.assertIn(
            "`self` is a parameter of `update()`, which is called after the optimizer is built",
            self.reason(PPO),
        )

    def test_a_stored_holder_is_named_with_its_line(self) -> None:
        self.assertIn(
            "`args.opt` is assigned in this file (example.py:9), so `args.opt.clip` may change",
            self.reason(HOLDER),
        )


NAMESPACE = """\
import torch
def train(model, loader, args):
    wandb.init(config=vars(args))
    print({k: v for k, v in vars(args).items()})
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in loader:
        opt.zero_grad()
        model(x).sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
"""


class NamespaceHandedOnTest(SwitcherooTest):
    def test_the_call_the_attribute_dict_is_handed_to_is_named(self) -> None:
        (record,) = [r for r in self.records(NAMESPACE) if r.api.endswith("clip_grad_norm_")]
        self.assertIn("`wandb.init(config=vars(args))` may change `args.clip`", record.reason)
