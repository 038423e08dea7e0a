"""The transfer-learning tutorial's ``model_ft = train_model(model_ft, ...)`` (issue 13): the
argument ``model_ft`` is read before the call's result rebinds it (Python evaluates the right
side first), so the model the step in ``train_model`` trains is the one the optimizer was
built over (``analysis/reaching.py``). ``optimizer.TorchToNNX``'s output matches PyTorch when
run (losses of both phases and final parameters, float64, 30 updates). Where the rebinding
may reach the call (a loop, or another value bound before it), the step escapes."""

from __future__ import annotations

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel

TRAIN_MODEL = """\
import torch
from torch.optim import lr_scheduler


def train_model(model, optimizer, scheduler, loaders, num_epochs):
    for epoch in range(num_epochs):
        for phase in ['train', 'val']:
            if phase == 'train':
                model.train()
            else:
                model.eval()
            for inputs, labels in loaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == 'train'):
                    outputs = model(inputs)
                    loss = ((outputs - labels) ** 2).mean()
                    if phase == 'train':
                        loss.backward()
                        optimizer.step()
                losses.append(loss.item())
            if phase == 'train':
                scheduler.step()
    return {returned}

"""

REBOUND_ONCE = (
    TRAIN_MODEL.format(returned="model")
    + """
def main(model_ft, loaders):
    optimizer_ft = torch.optim.SGD(model_ft.parameters(), lr=0.1, momentum=0.9)
    exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=1, gamma=0.5)
    model_ft = train_model(model_ft, optimizer_ft, exp_lr_scheduler, loaders, num_epochs=EPOCHS)
    return model_ft


main(make_model(), {'train': loader[:10], 'val': loader[10:]})
"""
)

REBOUND_IN_A_LOOP = (
    TRAIN_MODEL.format(returned="make_other()")
    + """
def main(model_ft, loaders):
    optimizer_ft = torch.optim.SGD(model_ft.parameters(), lr=0.1, momentum=0.9)
    exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=1, gamma=0.5)
    for stage in range(2):
        model_ft = train_model(model_ft, optimizer_ft, exp_lr_scheduler, loaders, 1)
"""
)

REBOUND_IN_A_LOOP_TO_ITSELF = REBOUND_IN_A_LOOP.replace("make_other()", "model")

OTHER_BOUND_BEFORE_THE_CALL = (
    TRAIN_MODEL.format(returned="model")
    + """
def main(model_ft, loaders, other):
    optimizer_ft = torch.optim.SGD(model_ft.parameters(), lr=0.1, momentum=0.9)
    exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=1, gamma=0.5)
    model_ft = other
    model_ft = train_model(model_ft, optimizer_ft, exp_lr_scheduler, loaders, 1)
"""
)


A_LOCAL_REBOUND_IN_A_LOOP = (
    TRAIN_MODEL.format(returned="make_other()")
    + """
def main(loaders):
    model_ft = make_model()
    optimizer_ft = torch.optim.SGD(model_ft.parameters(), lr=0.1, momentum=0.9)
    exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=1, gamma=0.5)
    for stage in range(2):
        model_ft = train_model(model_ft, optimizer_ft, exp_lr_scheduler, loaders, 1)
"""
)

A_MODULE_NAME_REBOUND_IN_A_LOOP = (
    TRAIN_MODEL.format(returned="make_other()")
    + """
model_ft = make_model()
optimizer_ft = torch.optim.SGD(model_ft.parameters(), lr=0.1, momentum=0.9)
exp_lr_scheduler = lr_scheduler.StepLR(optimizer_ft, step_size=1, gamma=0.5)
for stage in range(2):
    model_ft = train_model(model_ft, optimizer_ft, exp_lr_scheduler, loaders, 1)
"""
)


def _step_escapes(source: str) -> str:
    translated = translate_nnx(source)
    assert BEGIN in translated, translated
    assert "reason: the forward pass does not call the trained model `model_ft`" in translated
    assert "\n" + " " * 24 + "optimizer.step()\n" in translated, translated
    return translated


def test_a_model_rebound_by_the_call_that_trains_it_matches_torch() -> None:
    translated, rel = translated_rel(REBOUND_ONCE)
    assert BEGIN not in translated and "optimizer.update(model, grads)" in translated, translated
    assert rel < EXACT, rel


def test_a_model_rebound_by_the_call_that_trains_it_converts_stably() -> None:
    once = translate_nnx(REBOUND_ONCE)
    assert translate_nnx(once) == once


def test_a_call_in_a_loop_rebinding_the_model_to_another_escapes() -> None:
    """The second iteration hands `train_model` the model it returned, not the optimizer's."""
    _step_escapes(REBOUND_IN_A_LOOP)


def test_a_call_in_a_loop_rebinding_the_model_to_its_own_result_escapes() -> None:
    """Even a function returning its `model` parameter escapes in a loop (not proven)."""
    _step_escapes(REBOUND_IN_A_LOOP_TO_ITSELF)


def test_another_model_bound_before_the_call_escapes() -> None:
    _step_escapes(OTHER_BOUND_BEFORE_THE_CALL)


def test_a_local_model_rebound_in_a_loop_by_the_training_call_escapes() -> None:
    """libcst's referents leave out the loop's later assignment; it reaches the next
    iteration's call (``Resolver._rebound_in_loop``)."""
    _step_escapes(A_LOCAL_REBOUND_IN_A_LOOP)


def test_a_module_level_model_rebound_in_a_loop_by_the_training_call_escapes() -> None:
    _step_escapes(A_MODULE_NAME_REBOUND_IN_A_LOOP)
