"""optimizer.TorchToOptax: ``self.x`` of a class holds what its bases and subclasses in the
file assign: an optimizer (and scheduler) built in a base class's ``__init__`` and stepped in a
subclass's method is the same value. A subclass that assigns its own ``self.opt`` makes the
value uncertain in the whole family, and the calls stay.
"""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod

FAMILY = """\
import torch


class Base:
    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)
        self.sched = torch.optim.lr_scheduler.ExponentialLR(self.opt, gamma=0.9)


class Child(Base):
    def train_step(self, x):
        self.opt.zero_grad()
        self.model(x).sum().backward()
        self.opt.step()
        self.sched.step()
"""


class SubclassFactsTest(SwitcherooTest):
    def test_a_subclass_zero_grad_of_the_base_optimizer_goes(self) -> None:
        self.assertNotIn("self.opt.zero_grad()", run_codemod(FAMILY))

    def test_a_subclass_scheduler_step_folds_the_base_schedule(self) -> None:
        out = run_codemod(FAMILY)
        self.assertIn("self.opt = optax.sgd(learning_rate=self.sched)", out)
        self.assertNotIn("self.sched.step()", out)

    def test_a_grandchild_steps_the_same_optimizer(self) -> None:
        code = FAMILY.replace(
            "class Child(Base):", "class Middle(Base):\n    pass\n\n\nclass Child(Middle):"
        )
        self.assertNotIn("self.opt.zero_grad()", run_codemod(code))

    def test_a_subclass_assigning_its_own_optimizer_keeps_the_base_calls(self) -> None:
        code = FAMILY.replace(
            "class Child(Base):",
            "    def zero(self):\n        self.opt.zero_grad()\n\n\nclass Child(Base):",
        ) + (
            "\n\nclass Other(Base):\n"
            "    def __init__(self, model):\n"
            "        super().__init__(model)\n"
            "        self.opt = make_optimizer(model)\n"
        )
        out = run_codemod(code)
        self.assertIn("`self.opt` is also bound at line 26 to `make_optimizer(...)`", out)
        self.assertIn("        self.opt.zero_grad()\n", out.split("def zero")[1])

    def test_a_sibling_assigning_its_own_optimizer_leaves_the_subclass_facts(self) -> None:
        code = FAMILY + (
            "\n\nclass Other(Base):\n"
            "    def __init__(self, model):\n"
            "        super().__init__(model)\n"
            "        self.opt = make_optimizer(model)\n"
        )
        out = run_codemod(code)
        self.assertNotIn(
            "self.opt.zero_grad()", out.split("class Child")[1].split("class Other")[0]
        )

    def test_a_base_method_stepping_what_a_subclass_builds_keeps_its_calls(self) -> None:
        code = (
            "import torch\n"
            "class Base:\n"
            "    def step(self):\n"
            "        self.opt.zero_grad()\n"
            "        self.opt.step()\n"
            "class A(Base):\n"
            "    def __init__(self, model):\n"
            "        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "class B(Base):\n"
            "    def __init__(self, model):\n"
            "        self.opt = torch.optim.LBFGS(model.parameters())\n"
        )
        out = run_codemod(code)
        self.assertIn("self.opt.zero_grad()", out)

    def test_an_unrelated_class_with_the_same_attribute_is_not_followed(self) -> None:
        code = FAMILY + (
            "\n\nclass Unrelated:\n    def step(self):\n        self.opt.zero_grad()\n"
        )
        out = run_codemod(code)
        self.assertIn("        self.opt.zero_grad()\n", out.split("class Unrelated")[1])


class TupleStoreTest(SwitcherooTest):
    def test_self_opt_stored_by_a_tuple_assignment_keeps_its_calls(self) -> None:
        code = (
            "import torch\n"
            "class T:\n"
            "    def __init__(self, model):\n"
            "        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "    def reset(self, a, b):\n"
            "        self.opt, self.x = a, b\n"
            "    def step(self):\n"
            "        self.opt.zero_grad()\n"
        )
        out = run_codemod(code)
        self.assertIn("        self.opt.zero_grad()\n", out.split("def step")[1])
