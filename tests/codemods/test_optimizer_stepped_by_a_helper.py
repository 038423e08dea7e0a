"""A per-update scheduler whose optimizer a function of the file also steps (probe F1b): torch's
schedule follows the scheduler's own steps, the folded one every update, so warm-up steps before
the scheduler is built, a second step per iteration or fine-tuning after the loop shift it. The
scheduler stays torch code naming the call (and, for a function of another file of the
repository, the step there); a helper that does not step folds."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from tests.support import convert_in_process, run_codemod, write_package

HELPER = """\
import torch


def warmup(opt):
    for batch in warm_batches:
        batch.sum().backward()
        opt.step()


def report(opt):
    print("lr", opt)


opt = torch.optim.SGD(params, lr=0.1)
"""

LOOP = """\
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
for batch in batches:
    batch.sum().backward()
    opt.step()
    sched.step()
"""

SHAPES = {
    "before": "warmup(opt)\n" + LOOP,
    "every_update": LOOP.replace("    sched.step()\n", "    warmup(opt)\n    sched.step()\n"),
    "after": LOOP + "warmup(opt)\n",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_helper_that_steps_the_optimizer_keeps_the_scheduler(shape: str) -> None:
    output = run_codemod(HELPER + SHAPES[shape], TorchToOptax)
    assert "learning_rate=sched" not in output, output
    assert "the optimizer is also handed to warmup() at example.py:" in output, output


def test_a_helper_that_does_not_step_it_folds() -> None:
    output = run_codemod(HELPER + "report(opt)\n" + LOOP, TorchToOptax)
    assert "learning_rate=sched" in output, output


WARMUP_FILE = """\
def warmup(opt, batches):
    for x in batches:
        x.sum().backward()
        opt.step()


def report(opt):
    print("lr", opt)
"""

TRAIN_FILE = """\
import torch
from pkg.helpers import {helper}


def main(model, batches):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    {helper}(opt, batches)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    for x in batches:
        x.sum().backward()
        opt.step()
        sched.step()
"""


@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
def test_a_helper_of_another_file_that_steps_the_optimizer_keeps_the_scheduler(
    tmp_path: Path, command: type
) -> None:
    files = {"helpers.py": WARMUP_FILE, "train.py": TRAIN_FILE.format(helper="warmup")}
    outputs, _ = convert_in_process(write_package(tmp_path, files), command)
    assert "StepLR(opt, step_size=3" in outputs["train.py"], outputs["train.py"]
    assert "(its step at pkg/helpers.py:4)" in outputs["train.py"], outputs["train.py"]


def test_a_helper_of_another_file_that_does_not_step_it_folds(tmp_path: Path) -> None:
    files = {"helpers.py": WARMUP_FILE, "train.py": TRAIN_FILE.format(helper="report")}
    outputs, _ = convert_in_process(write_package(tmp_path, files))
    assert "learning_rate=sched" in outputs["train.py"], outputs["train.py"]


OUT_OF_SIGHT = {
    "bound_method": ("do_step = opt.step\n", "do_step = opt.step"),
    "alias": ("other = opt\n", "other = opt"),
    "container": ('opts = {"main": opt}\n', 'opts = {"main": opt}'),
}


@pytest.mark.parametrize("shape", sorted(OUT_OF_SIGHT))
def test_an_optimizer_read_out_of_sight_keeps_the_scheduler(shape: str) -> None:
    """An alias, a container or a bound method may step the optimizer where the scheduler
    does not count (``do_step()`` in a warm-up loop, ``opts["main"].step()``)."""
    line, shown = OUT_OF_SIGHT[shape]
    output = run_codemod(HELPER + line + LOOP, TorchToOptax)
    assert "learning_rate=sched" not in output, output
    assert f"the optimizer is also read at example.py:15 (`{shown}`)" in output, output


def test_a_class_whose_method_steps_what_it_is_given_keeps_the_scheduler() -> None:
    warm = (
        "\n\nclass Warm:\n    def __init__(self, o):\n        self.o = o\n\n"
        "    def run(self):\n        self.o.step()\n\n\n"
    )
    output = run_codemod(HELPER + warm + "Warm(opt).run()\n" + LOOP, TorchToOptax)
    assert "learning_rate=sched" not in output, output
    assert "the optimizer is also handed to Warm() at example.py:" in output, output


def test_reads_as_receiver_attribute_or_argument_fold() -> None:
    reads = 'print(opt.param_groups[0]["lr"])\nsd = opt.state_dict()\nreport(opt)\n'
    output = run_codemod(HELPER + reads + LOOP, TorchToOptax)
    assert "learning_rate=sched" in output, output


WARM_CLASS_FILE = """\
class Warm:
    def __init__(self, o):
        self.o = o

    def run(self, batches):
        for x in batches:
            x.sum().backward()
            self.o.step()
"""


def test_a_class_of_another_file_whose_method_steps_it_keeps_the_scheduler(
    tmp_path: Path,
) -> None:
    train = TRAIN_FILE.replace("from pkg.helpers import {helper}", "from pkg.warm import Warm")
    train = train.replace("    {helper}(opt, batches)\n", "    Warm(opt).run(batches)\n")
    files = {"warm.py": WARM_CLASS_FILE, "train.py": train}
    outputs, _ = convert_in_process(write_package(tmp_path, files))
    assert "learning_rate=sched" not in outputs["train.py"], outputs["train.py"]
    assert "(its step at pkg/warm.py:8)" in outputs["train.py"], outputs["train.py"]
