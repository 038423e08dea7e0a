"""optimizer.TorchToNNX on the transfer-learning tutorial's loop (issue 13): a backward and
step under ``if phase == 'train':`` after a forward pass that also runs for the ``val`` phase,
a scheduler handed to ``train_model`` and stepped there once per epoch (its lr written as
``scheduler(epoch + 1)``), and the nearby shapes that must not convert. The step after a
forward pass outside its condition is not translated yet: it escapes with a reason."""

from __future__ import annotations

import textwrap

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import renders_a_step, run_codemod

PHASE_LOOP = """\
import torch

model = make_model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    for phase in ['train', 'val']:
        for inputs, labels in loaders[phase]:
            optimizer.zero_grad()
            with torch.set_grad_enabled(phase == 'train'):
                outputs = model(inputs)
                _, preds = torch.max(outputs, 1)
                loss = ((outputs - labels) ** 2).mean()
                if phase == 'train':
                    loss.backward()
                    optimizer.step()
            running_corrects += torch.sum(preds == labels)
"""

EXPECTED_PHASE_LOOP = """\
            with torch.set_grad_enabled(phase == 'train'):
                if phase == 'train':
                    def loss_fn(model):
                        outputs = model(inputs)
                        _, preds = (jnp.take_along_axis(outputs, outputs.argmax(axis=1, keepdims=True), axis=1).squeeze(1), outputs.argmax(axis=1))
                        loss = ((outputs - labels) ** 2).mean()
                        return loss, preds
                    (loss, preds), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
                    optimizer.update(model, grads)
                else:
                    outputs = model(inputs)
                    _, preds = (jnp.take_along_axis(outputs, outputs.argmax(axis=1, keepdims=True), axis=1).squeeze(1), outputs.argmax(axis=1))
                    loss = ((outputs - labels) ** 2).mean()
            running_corrects += jnp.sum(preds == labels, axis=None, keepdims=False)
"""

TRAIN_MODEL = """\
import torch
from torch.optim import lr_scheduler


def train_model(model, optimizer, scheduler, loaders, num_epochs):
    for epoch in range(num_epochs):
        for phase in ['train', 'val']:
            for inputs, labels in loaders[phase]:
                if phase == 'train':
                    optimizer.zero_grad()
                    loss = ((model(inputs) - labels) ** 2).mean()
                    loss.backward()
                    optimizer.step()
            if phase == 'train':
                scheduler.step()


def main(model, loaders):
    optimizer_ft = torch.optim.SGD(model.parameters(), lr=0.1)
    exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=7, gamma=0.1)
    train_model(model, optimizer_ft, exp_lr_scheduler, loaders, 25)
"""


def convert(code: str) -> str:
    return run_codemod(textwrap.dedent(code), TorchToNNX)


def test_the_tutorials_step_becomes_a_train_branch_and_an_else() -> None:
    output = convert(PHASE_LOOP)
    assert BEGIN not in output, output
    assert EXPECTED_PHASE_LOOP in output, output


def test_a_grad_context_with_another_test_than_the_branch_escapes_with_the_condition() -> None:
    output = convert(
        PHASE_LOOP.replace("set_grad_enabled(phase == 'train')", "set_grad_enabled(True)")
    )
    assert not renders_a_step(output), output
    assert (
        "reason: the forward pass that computes `loss` is not in the step: the backward pass "
        "and the step run under `if phase == 'train':`"
    ) in output


def test_a_no_grad_context_escapes() -> None:
    output = convert(
        PHASE_LOOP.replace("torch.set_grad_enabled(phase == 'train')", "torch.no_grad()")
    )
    assert not renders_a_step(output), output


def test_a_branch_with_an_else_escapes() -> None:
    step = "                    optimizer.step()\n"
    other = "                else:\n                    print('val')\n"
    assert not renders_a_step(convert(PHASE_LOOP.replace(step, step + other)))


def test_a_step_outside_the_branch_of_its_backward_escapes() -> None:
    step = "                    optimizer.step()\n"
    assert not renders_a_step(
        convert(PHASE_LOOP.replace(step, "                optimizer.step()\n"))
    )


def test_a_step_under_another_condition_than_its_backward_escapes() -> None:
    step = "                    optimizer.step()\n"
    other = "                if epoch > 0:\n                    optimizer.step()\n"
    assert not renders_a_step(
        convert(
            PHASE_LOOP.replace(step, "").replace(
                "                    loss.backward()\n",
                "                    loss.backward()\n" + other,
            )
        )
    )


def test_a_zero_grad_outside_the_batch_loop_escapes() -> None:
    zero = "            optimizer.zero_grad()\n"
    moved = PHASE_LOOP.replace(zero, "").replace(
        "    for phase in ['train', 'val']:\n",
        "    optimizer.zero_grad()\n    for phase in ['train', 'val']:\n",
    )
    assert not renders_a_step(convert(moved))


def test_a_call_between_the_forward_statements_escapes() -> None:
    outputs = "                outputs = model(inputs)\n"
    assert not renders_a_step(
        convert(PHASE_LOOP.replace(outputs, outputs + "                record(outputs)\n"))
    )


WRITE = 'optimizer.opt_state.hyperparams["learning_rate"][...] = scheduler(epoch + 1)'
STEPPED = "            if phase == 'train':\n                scheduler.step()\n"


def escaped_scheduler(code: str) -> str:
    """The NNX output of ``code``, asserting the scheduler's step is not written."""
    output = convert(code)
    assert WRITE not in output and "scheduler.step()" in output, output
    assert "ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR" in output, output
    return output


def test_a_scheduler_handed_to_train_model_writes_the_lr_at_its_step() -> None:
    output = convert(TRAIN_MODEL)
    assert BEGIN not in output, output
    assert f"            if phase == 'train':\n                {WRITE}\n" in output, output


def test_the_written_scheduler_is_the_optimizers_injected_schedule() -> None:
    output = convert(TRAIN_MODEL)
    assert "optax.inject_hyperparams(optax.sgd)(learning_rate=float(exp_lr_scheduler(0)))" in (
        output
    ), output


def test_a_second_run_changes_nothing() -> None:
    once = convert(TRAIN_MODEL)
    assert convert(once) == once


def test_a_scheduler_stepped_in_both_phases_escapes() -> None:
    output = escaped_scheduler(TRAIN_MODEL.replace(STEPPED, "            scheduler.step()\n"))
    assert "its step count is not proved" in output


def test_a_phase_list_with_train_twice_escapes() -> None:
    escaped_scheduler(TRAIN_MODEL.replace("['train', 'val']", "['train', 'val', 'train']"))


def test_a_continue_before_the_scheduler_step_escapes() -> None:
    skip = "            if epoch == 1:\n                continue\n"
    escaped_scheduler(TRAIN_MODEL.replace(STEPPED, skip + STEPPED))


def test_a_break_of_the_epoch_loop_escapes() -> None:
    stop = "        if epoch == 1:\n            break\n"
    epoch_loop = "    for epoch in range(num_epochs):\n"
    escaped_scheduler(TRAIN_MODEL.replace(epoch_loop, epoch_loop + stop))


def test_another_scheduler_at_a_second_call_site_escapes() -> None:
    other = (
        "    other_optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    other = lr_scheduler.StepLR(other_optimizer, step_size=2, gamma=0.5)\n"
        "    train_model(model, other_optimizer, other, loaders, 25)\n"
    )
    output = escaped_scheduler(TRAIN_MODEL + other)
    assert "hands `scheduler` another value" in output


# The tutorial: the name bound to a second scheduler, handed to a second call (s19)
SECOND = (
    "    optimizer_ft = torch.optim.Adam(model.parameters(), lr=0.01)\n"
    "    exp_lr_scheduler = lr_scheduler.ExponentialLR(optimizer_ft, gamma=0.5)\n"
    "    train_model(model, optimizer_ft, exp_lr_scheduler, loaders, 25)\n"
)
RELEASED = "    exp_lr_scheduler = None\n    print(exp_lr_scheduler)\n"


def test_the_name_rebound_to_a_second_scheduler_for_a_second_call_names_it() -> None:
    output = escaped_scheduler(TRAIN_MODEL + SECOND)
    assert "hands `scheduler` another value (`lr_scheduler.ExponentialLR(" in output, output
    assert "example.py:23): one step() there would have to write the schedule of each" in output


def test_the_name_rebound_after_the_one_call_keeps_the_write() -> None:
    output = convert(TRAIN_MODEL + RELEASED)
    assert f"            if phase == 'train':\n                {WRITE}\n" in output, output
    assert BEGIN not in output, output


@pytest.mark.parametrize(
    "after",
    [
        "    exp_lr_scheduler = wrap(exp_lr_scheduler)\n    print(exp_lr_scheduler)\n",
        "    if again:\n        exp_lr_scheduler = None\n    print(exp_lr_scheduler)\n",
        "    print(exp_lr_scheduler)\n" + RELEASED,
    ],
    ids=["rebound_from_itself", "rebound_under_a_condition", "read_before_the_rebinding"],
)
def test_a_read_the_scheduler_may_reach_after_the_call_escapes(after: str) -> None:
    output = escaped_scheduler(TRAIN_MODEL + after)
    assert "`exp_lr_scheduler` is passed to train_model() at example.py:21; `exp_lr_" in output


def test_the_name_rebound_in_a_loop_then_read_escapes() -> None:
    looped = TRAIN_MODEL.replace(
        "\n    optimizer_ft", "\n    for run in range(2):\n     optimizer_ft"
    )
    looped = looped.replace("\n    exp_lr", "\n     exp_lr").replace(
        "\n    train_model(", "\n     train_model("
    )
    escaped_scheduler(looped + "     exp_lr_scheduler = None\n     print(exp_lr_scheduler)\n")


def test_the_scheduler_handed_to_train_model_twice_escapes() -> None:
    again = "    train_model(model, optimizer_ft, exp_lr_scheduler, loaders, 25)\n"
    escaped_scheduler(TRAIN_MODEL + again)


def test_another_optimizer_handed_with_the_scheduler_escapes() -> None:
    output = convert(
        TRAIN_MODEL.replace(
            "train_model(model, optimizer_ft,", "train_model(model, make_optimizer(),"
        )
    )
    assert WRITE not in output, output


def test_a_scheduler_read_in_train_model_escapes() -> None:
    read = "                print(scheduler.get_last_lr())\n"
    escaped_scheduler(TRAIN_MODEL.replace(STEPPED, STEPPED + read))


def test_a_step_outside_the_condition_of_its_backward_is_not_rendered() -> None:
    split = TRAIN_MODEL.replace(
        "                    loss.backward()\n                    optimizer.step()\n",
        "                    loss.backward()\n                optimizer.step()\n",
    )
    code = [line for line in convert(split).splitlines() if not line.strip().startswith("#")]
    assert not any("nnx.value_and_grad(" in line for line in code)


def test_the_optax_target_still_escapes_the_handed_scheduler() -> None:
    from ml_switcheroo.codemods.optimizer import TorchToOptax

    output = run_codemod(TRAIN_MODEL, TorchToOptax)
    assert "ESCAPE-BEGIN torch.optim.lr_scheduler.StepLR" in output
    assert "scheduler.step()" in output


def test_comments_around_the_branch_are_kept_once() -> None:
    commented = PHASE_LOOP.replace(
        "                outputs = model(inputs)\n",
        "                # the forward\n                outputs = model(inputs)\n",
    ).replace(
        "                if phase == 'train':\n",
        "                # train only\n                if phase == 'train':  # guard\n",
    )
    output = convert(commented)
    assert output.count("# the forward") == 1 and output.count("# train only") == 1, output
    assert output.count("# guard") == 1, output


def test_a_second_run_of_the_branch_changes_nothing() -> None:
    once = convert(PHASE_LOOP)
    assert convert(once) == once


def test_a_branch_test_the_forward_pass_binds_escapes() -> None:
    loop = """\
import torch

model = make_model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for inputs, labels in loader:
    optimizer.zero_grad()
    outputs = model(inputs)
    loss = ((outputs - labels) ** 2).mean()
    train = outputs.sum() > 0
    if train:
        loss.backward()
        optimizer.step()
"""
    assert not renders_a_step(convert(loop))


def test_a_branch_in_a_loop_body_without_a_grad_context_is_rendered() -> None:
    loop = """\
import torch

model = make_model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for phase, inputs, labels in batches:
    optimizer.zero_grad()
    outputs = model(inputs)
    loss = ((outputs - labels) ** 2).mean()
    if phase == 'train':
        loss.backward()
        optimizer.step()
"""
    assert renders_a_step(convert(loop))


def test_a_zero_grad_in_the_grad_context_is_not_copied_to_the_else() -> None:
    zero = "            optimizer.zero_grad()\n"
    outputs = "                outputs = model(inputs)\n"
    moved = PHASE_LOOP.replace(zero, "").replace(
        outputs, "                optimizer.zero_grad()\n" + outputs
    )
    output = convert(moved)
    assert renders_a_step(output) and "zero_grad" not in output, output


def test_an_assignment_between_forward_statements_stays_in_the_loss_function_as_aux() -> None:
    loop = """\
import torch

model = make_model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for inputs, labels in loader:
    optimizer.zero_grad()
    outputs = model(inputs)
    preds = outputs.argmax(1)
    loss = ((outputs - labels) ** 2).mean()
    loss.backward()
    optimizer.step()
    record(preds)
"""
    output = convert(loop)
    assert "        preds = outputs.argmax(1)\n        loss = " in output, output
    assert "(loss, preds), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)" in output
