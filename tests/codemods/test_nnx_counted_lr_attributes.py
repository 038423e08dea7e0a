"""optimizer.TorchToNNX, schedulers of a trainer class counted where they step
(``analysis/counted_attributes.py``): ``self.sched`` built in ``__init__`` and stepped in
another method gets ``self.sched_count = 0`` next to its construction and, at each
``step()``, the counter incremented and ``self.sched(self.sched_count)`` written to the
optimizer's injected lr. Trap twins, where a step of that object might not be counted or
something else changes the lr, escape naming why. Run against torch:
``tests/differential/test_nnx_counted_lr.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.codemods.test_nnx_counted_lr import scheduler_escape
from tests.support import convert_in_process, nnx_output, run_codemod, write_package
from tests.test_properties import check_invariants

TRAINER = """\
import torch


class Trainer:
    def __init__(self, model, loader):
        self.model = model
        self.loader = loader
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=2, gamma=0.9)

    def train_epoch(self):
        for i, (x, y) in enumerate(self.loader):
            self.opt.zero_grad()
            loss = ((self.model(x) - y) ** 2).mean()
            loss.backward()
            self.opt.step()
            if i % 3 == 2:
                self.sched.step()  # decay

    def fit(self, epochs):
        for epoch in range(epochs):
            self.train_epoch()
"""

STEP = "                self.sched.step()  # decay\n"
BUILT = "self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=2, gamma=0.9)"
START = "        self.sched_count = 0\n"
INCREMENT = "                self.sched_count += 1\n"
WRITE = (
    '                self.opt.opt_state.hyperparams["learning_rate"][...] = '
    "self.sched(self.sched_count)  # decay\n"
)


def test_a_scheduler_built_in_init_is_counted_in_an_attribute() -> None:
    output = nnx_output(TRAINER)
    assert "learning_rate=float(self.sched(0))" in output, output
    assert START + "\n    def train_epoch" in output, output
    assert INCREMENT + WRITE in output and BEGIN not in output, output


def test_the_counted_output_is_valid_minimal_and_a_fixed_point() -> None:
    check_invariants(TRAINER, TorchToNNX)


def test_the_optax_target_still_escapes_the_scheduler() -> None:
    output = run_codemod(TRAINER, TorchToOptax)
    assert "sched_count" not in output and "torch.optim.lr_scheduler.StepLR(" in output


def test_a_step_in_a_method_above_the_one_that_builds_is_counted() -> None:
    stepping, building = (
        TRAINER.split("    def train_epoch(self):\n")[1],
        TRAINER.split("    def train_epoch(self):\n")[0].split("class Trainer:\n")[1],
    )
    building = building.replace("model.parameters()", "self.model.parameters()")
    building = building.replace(
        "self.opt = ", "self.setup()\n\n    def setup(self):\n        self.opt = "
    )
    code = (
        "import torch\n\n\nclass Trainer:\n    def train_epoch(self):\n"
        + stepping
        + "\n"
        + building
    )
    output = nnx_output(code)
    assert INCREMENT + WRITE in output and BEGIN not in output, output


def test_a_counter_attribute_the_code_uses_escapes() -> None:
    output = nnx_output(
        TRAINER.replace(
            "        self.loader = loader\n",
            "        self.loader = loader\n        self.sched_count = 7\n",
        )
    )
    assert "a name this code already uses" in output and "self.sched_count += 1" not in output


TRAPS = {
    "the_attribute_rebound_in_another_method": (
        TRAINER + "\n    def reset(self):\n        self.sched = None\n",
        "`.sched` is assigned again at example.py:",
    ),
    "the_attribute_set_from_outside_the_class": (
        TRAINER + "\n\ntrainer = Trainer(make_model(), loader)\ntrainer.sched = None\n",
        "`.sched` is assigned again at example.py:",
    ),
    "two_instances_sharing_it": (
        TRAINER + "\n    def share(self, other):\n        other.sched = self.sched\n",
        "`.sched` is assigned again at example.py:",
    ),
    "a_subclass_overriding_the_stepping_method": (
        TRAINER + "\n\nclass Fast(Trainer):\n    def train_epoch(self):\n"
        "        super().train_epoch()\n        self.sched.step()\n",
        "is not read through `self` in a method of `Trainer` itself",
    ),
    "the_scheduler_handed_to_other_code": (
        TRAINER.replace(STEP, STEP + "                report(self.sched)\n"),
        "`self.sched` is used at example.py:",
    ),
    "a_function_given_the_trainer_stepping_it": (
        TRAINER + "\n\ndef extra(t):\n    t.sched.step()\n",
        "`t.sched` at example.py:",
    ),
    "getattr_with_the_attribute_name": (
        TRAINER.replace(STEP, STEP + "                getattr(self, 'sched').step()\n"),
        "the string 'sched' is in this file",
    ),
    "getattr_with_a_computed_name": (
        TRAINER.replace(STEP, STEP + "                getattr(self, name).step()\n"),
        "takes a computed name",
    ),
    "setattr": (
        TRAINER + "\n    def load(self, name, value):\n        setattr(self, name, value)\n",
        "may be set otherwise than by assignment",
    ),
    "the_instance_dict": (
        TRAINER + "\n    def restore(self, state):\n        self.__dict__.update(state)\n",
        "reaches attributes by computed names",
    ),
    "a_shallow_copy_stepping_the_shared_scheduler": (
        TRAINER + "\n    def twin(self):\n        copy.copy(self).train_epoch()\n",
        "may copy an object shallowly",
    ),
    "a_restored_scheduler": (
        TRAINER + "\n    def restore(self, state):\n        self.sched.load_state_dict(state)\n",
        "may change its step count",
    ),
    "a_step_in_a_nested_function": (
        TRAINER.replace(
            STEP,
            "                def advance():\n                    self.sched.step()\n"
            "                advance()\n",
        ),
        "is not read through `self` in a method of `Trainer` itself",
    ),
    "the_optimizer_handed_to_other_code": (
        TRAINER.replace(STEP, STEP + "                adjust(self.opt)\n"),
        "`self.opt` is used at example.py:",
    ),
    "a_manual_lr_write": (
        TRAINER.replace(STEP, STEP + "                self.opt.param_groups[0]['lr'] = 0.1\n"),
        "`self.opt.param_groups` at example.py:",
    ),
    "built_in_two_methods": (
        TRAINER.replace(
            "        self.sched = torch", "\n    def setup(self):\n        self.sched = torch"
        ),
        "the scheduler and its optimizer are not both assigned in the same block",
    ),
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_a_trap_twin_escapes_with_the_reason(trap: str) -> None:
    code, said = TRAPS[trap]
    reason = scheduler_escape(code, BUILT)
    assert said in reason, reason


def test_an_attribute_another_file_names_escapes(tmp_path: Path) -> None:
    other = "def extra(t):\n    t.sched.step()\n"
    root = write_package(tmp_path, {"train.py": TRAINER, "hooks.py": other})
    outputs, _ = convert_in_process(root, TorchToNNX)
    assert "named by another file of the repository" in outputs["train.py"], outputs["train.py"]
    assert "self.sched_count" not in outputs["train.py"]


def test_an_attribute_no_other_file_names_is_counted(tmp_path: Path) -> None:
    root = write_package(tmp_path, {"train.py": TRAINER, "hooks.py": "import math\n"})
    outputs, _ = convert_in_process(root, TorchToNNX)
    assert INCREMENT + WRITE in outputs["train.py"], outputs["train.py"]


def test_a_shallow_copy_in_another_file_escapes(tmp_path: Path) -> None:
    """``copy.copy(trainer)`` elsewhere: torch's two trainers share one scheduler, a counter
    attribute would be copied (each copy counting alone; measured 0.44 off torch)."""
    other = (
        "import copy\n\n\ndef twins(trainer, epochs):\n    other = copy.copy(trainer)\n"
        "    for _ in range(epochs):\n        trainer.train_epoch()\n        other.train_epoch()\n"
    )
    root = write_package(tmp_path, {"train.py": TRAINER, "main.py": other})
    outputs, _ = convert_in_process(root, TorchToNNX)
    assert "may copy an object shallowly (pkg/main.py:5)" in outputs["train.py"], outputs[
        "train.py"
    ]
    assert "self.sched_count" not in outputs["train.py"]


def test_a_deep_copy_in_another_file_keeps_the_count(tmp_path: Path) -> None:
    """``copy.deepcopy`` copies the scheduler too: each copy has its own, as its counter."""
    other = "import copy\n\n\ndef twin(trainer):\n    return copy.deepcopy(trainer)\n"
    root = write_package(tmp_path, {"train.py": TRAINER, "main.py": other})
    outputs, _ = convert_in_process(root, TorchToNNX)
    assert INCREMENT + WRITE in outputs["train.py"], outputs["train.py"]
