"""optimizer.TorchToNNX, schedulers whose ``step()`` calls are counted where they run
(``analysis/counted.py``, ``targets/nnx/counted_lr.py``): a counter set to 0 after the
schedule, and at each ``step()`` the counter incremented and ``sched(count)`` written to the
optimizer's injected lr. Trap twins, where a step would not be counted or something else
changes the lr, escape naming the place; the optax target's output does not change. Run
against torch: ``tests/differential/test_nnx_counted_lr.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import convert_in_process, nnx_output, run_codemod, write_package
from tests.test_properties import check_invariants

# the epoch loop under a condition: not the scheduler's block, so `epoch + 1` is not proved
LOOP = """\
import torch


def report(s):
    print(s)


model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
if run:
    for epoch in range(n):
        for x, y in loader:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
        sched.step()  # decay
"""

STEP = "        sched.step()  # decay\n"
START = "sched_count = 0\n"
WRITE = 'opt.opt_state.hyperparams["learning_rate"][...] = sched(sched_count)  # decay\n'


def with_step(replacement: str) -> str:
    """``LOOP`` with its ``sched.step()`` line replaced."""
    return LOOP.replace(STEP, replacement)


BUILT = "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)"


def scheduler_escape(code: str, built_line: str = BUILT) -> str:
    """The escape reason of the scheduler's construction (``built_line``, stripped) in the
    NNX output of ``code``, which counts nothing."""
    output = nnx_output(code)
    assert "sched_count" not in output, output
    lines = output.splitlines()
    built = next(i for i, line in enumerate(lines) if line.strip() == built_line)
    reasons = [line for line in lines[:built] if "reason:" in line]
    assert reasons and BEGIN in "\n".join(lines[:built]), output
    return reasons[-1]


def test_a_step_under_another_block_is_counted_next_to_the_scheduler() -> None:
    output = nnx_output(LOOP)
    assert "learning_rate=float(sched(0))" in output, output
    assert START in output and "        sched_count += 1\n        " + WRITE in output, output
    assert output.index("sched = optax.") < output.index(START) < output.index("if run:")
    assert BEGIN not in output, output


def test_a_step_in_a_while_loop_is_counted_there() -> None:
    output = nnx_output(
        with_step(
            "        while loss.item() > 1.0:\n            sched.step()\n            loss = loss / 2\n"
        )
    )
    assert "            sched_count += 1\n            opt.opt_state" in output, output
    assert START in output and BEGIN not in output, output


def test_the_counted_output_is_valid_minimal_and_a_fixed_point() -> None:
    check_invariants(LOOP, TorchToNNX)


def test_the_optax_target_still_escapes_the_scheduler() -> None:
    output = run_codemod(LOOP, TorchToOptax)
    assert "sched_count" not in output and "torch.optim.lr_scheduler.StepLR(" in output


def test_a_counter_name_the_code_uses_escapes() -> None:
    output = nnx_output(
        LOOP.replace("model = make_model()\n", "model = make_model()\nsched_count = 7\n")
    )
    assert "a name this code already uses" in output and "sched_count += 1" not in output
    # the optimizer escapes too: it would start from `float(sched(0))` of a torch scheduler
    assert "opt = torch.optim.SGD(model.parameters(), lr=0.1)" in output, output
    assert "sched(0)" not in output, output


TRAPS = {
    "a_step_in_the_test_of_a_while_loop": (
        "        while sched.step() is None and len(losses) < 3:\n            losses.append(1)\n",
        "is not a statement of its own",
    ),
    "the_scheduler_handed_to_a_function": (
        STEP + "        report(sched)\n",
        "`sched` is passed to `report`",
    ),
    "a_step_with_an_epoch": ("        sched.step(epoch)\n", "epoch argument"),
    "two_schedulers_on_one_optimizer": (
        STEP + "        other = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)\n"
        "        other.step()\n",
        "several schedulers step the same optimizer",
    ),
    "the_scheduler_name_rebound": (STEP + "    sched = None\n", "`sched` is bound again at"),
    "the_scheduler_stored_in_a_list": (
        STEP + "        kept = [sched]\n",
        "otherwise than by calling its methods",
    ),
    "a_step_in_a_nested_function": (
        "        def advance():\n            sched.step()\n        advance()\n",
        "in another function than the one that builds it",
    ),
    "a_restored_scheduler": (
        STEP + "        sched.load_state_dict(state)\n",
        "may change its step count",
    ),
    "a_manual_lr_write": (
        STEP + "        opt.param_groups[0]['lr'] = 0.1\n",
        "param_groups",
    ),
    "the_optimizer_handed_to_another_module": (
        STEP + "        helpers.adjust(opt)\n",
        "`opt` is used at example.py:",
    ),
    "a_step_not_alone_on_its_line": (
        "        sched.step(); print(epoch)\n",
        "is not a statement of its own",
    ),
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_a_trap_twin_escapes_with_the_place(trap: str) -> None:
    replacement, said = TRAPS[trap]
    reason = scheduler_escape(with_step(replacement))
    assert said in reason, reason


def handing(function: str) -> str:
    """``LOOP`` with ``report(s, optimizer)`` defined as ``function`` and handed ``opt``."""
    code = LOOP.replace("def report(s):\n    print(s)\n", function)
    return code.replace(STEP, STEP + "        report(0.1, opt)\n")


def test_the_optimizer_handed_to_a_function_of_the_file_calling_its_methods_is_counted() -> None:
    output = nnx_output(handing("def report(s, optimizer):\n    optimizer.zero_grad()\n"))
    assert "sched_count += 1" in output and BEGIN not in output, output


def test_a_function_of_the_file_writing_the_handed_optimizers_lr_escapes() -> None:
    code = handing("def report(s, optimizer):\n    optimizer.param_groups[0]['lr'] = s\n")
    reason = scheduler_escape(code)
    assert "`optimizer.param_groups` is used otherwise than to read" in reason, reason


def test_a_star_import_escapes_the_scheduler_and_the_optimizer_translates_alone() -> None:
    # pytorch_cifar: `from models import *` may bind `float`, which the first lr calls
    output = nnx_output(LOOP.replace("import torch\n", "import torch\nfrom models import *\n"))
    assert "opt = nnx.Optimizer(model, optax.sgd(learning_rate=0.1), wrt=nnx.Param)" in output
    assert "may be: a star import" in output and "sched_count" not in output, output
    assert "opt.update(model, grads)" in output, output


def test_the_step_of_a_scheduler_left_out_names_the_scheduler_not_the_optimizer() -> None:
    output = nnx_output(LOOP.replace("import torch\n", "import torch\nfrom models import *\n"))
    assert "its scheduler (`torch.optim.lr_scheduler.StepLR(...)`) is not translated" in output
    assert "belongs to an optimizer that was not translated" not in output, output


def test_a_module_level_scheduler_another_file_names_escapes(tmp_path: Path) -> None:
    root = write_package(tmp_path, {"train.py": LOOP, "hooks.py": "from pkg.train import sched\n"})
    outputs, _ = convert_in_process(root, TorchToNNX)
    assert "another file of the repository mentions" in outputs["train.py"], outputs["train.py"]
    assert "sched_count" not in outputs["train.py"]


def test_a_module_level_scheduler_no_other_file_names_is_counted(tmp_path: Path) -> None:
    root = write_package(tmp_path, {"train.py": LOOP, "hooks.py": "import math\n"})
    outputs, _ = convert_in_process(root, TorchToNNX)
    assert "sched_count += 1" in outputs["train.py"], outputs["train.py"]
