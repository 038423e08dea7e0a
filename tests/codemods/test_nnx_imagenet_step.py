"""optimizer.TorchToNNX on pytorch/examples imagenet's step (issue 13): a criterion built in the
caller from a loss of the map, through self-returning module methods (``.to(device)``), is a
loss at every call site; a model rebound to itself (``model = model.to(device)``) is the model
the optimizer was built over; a wrapped model, a criterion with parameters and a criterion
rebound at one call site escape."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import run_codemod, write_package

TRAIN = """\
def train(train_loader, model, criterion, optimizer, device):
    for i, (images, target) in enumerate(train_loader):
        images = images.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        output = model(images)
        loss = criterion(output, target)
        acc1, acc5 = accuracy(output, target, topk=(1, 5))
        losses.update(loss.item(), images.size(0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""

SOURCE = """\
import torch
import torch.nn as nn


{train}

def main_worker(loader, epochs):
    device = torch.device("cpu")
    model = make_model()
{model}
    criterion = {criterion}
    optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9)
    for epoch in range(epochs):
        train(loader, model, criterion, optimizer, device)
{after}
"""

LOSS_FUNCTION = "        def loss_fn(model):\n"
AUX = "(loss, output), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)"


def convert(
    criterion: str = "nn.CrossEntropyLoss().to(device)", model: str = "", after: str = ""
) -> str:
    source = SOURCE.format(train=TRAIN, model=model, criterion=criterion, after=after)
    return run_codemod(source, TorchToNNX)


def reason_of(output: str) -> str:
    return next(line for line in output.splitlines() if "reason:" in line)


@pytest.mark.parametrize("method", ["to(device)", "cuda()", "cpu()", "double()"])
def test_a_loss_of_the_map_through_a_self_returning_method_converts(method: str) -> None:
    output = convert(criterion=f"nn.CrossEntropyLoss().{method}")
    assert BEGIN not in output and LOSS_FUNCTION in output and AUX in output, output


def test_the_data_moves_stay_before_the_loss_function() -> None:
    output = convert()
    moves = "        images = images.to(device, non_blocking=True)\n"
    assert output.index(moves) < output.index(LOSS_FUNCTION), output


def test_the_accuracy_and_the_meter_run_after_the_gradient() -> None:
    output = convert()
    accuracy = "        acc1, acc5 = accuracy(output, target, topk=(1, 5))\n"
    update = "        optimizer.update(model, grads)\n"
    assert output.index(AUX) < output.index(accuracy) < output.index(update), output


def test_a_model_moved_to_the_device_by_rebinding_converts() -> None:
    output = convert(model="    model = model.to(device)")
    assert BEGIN not in output and LOSS_FUNCTION in output, output


def test_a_model_moved_on_either_branch_converts() -> None:
    moved = "    if device.type == 'cpu':\n        model = model.to(device)\n    else:\n"
    output = convert(model=moved + "        model = model.cuda()")
    assert BEGIN not in output and LOSS_FUNCTION in output, output


def test_a_data_parallel_model_converts_and_its_line_escapes() -> None:
    output = convert(model="    model = torch.nn.DataParallel(model).cuda()")
    assert LOSS_FUNCTION in output, output
    wrapper = "# ml_switcheroo: ESCAPE-BEGIN torch.nn.DataParallel\n"
    assert output.index(wrapper) < output.index("    model = torch.nn.DataParallel("), output


def test_a_distributed_model_converts_and_its_line_escapes() -> None:
    output = convert(model="    model = torch.nn.parallel.DistributedDataParallel(model)")
    assert LOSS_FUNCTION in output and "(all-reduce)" in reason_of(output), output


def test_a_model_rebound_to_another_module_method_before_the_optimizer_converts() -> None:
    """The optimizer is built over what ``model.to_empty(...)`` returned, the very object the
    step is given (``step_models._unrebound_since_built``)."""
    output = convert(model="    model = model.to_empty(device=device)")
    assert LOSS_FUNCTION in output, output


def test_a_model_rebound_after_the_call_in_the_epoch_loop_escapes() -> None:
    call = "        train(loader, model, criterion, optimizer, device)\n"
    source = SOURCE.format(
        train=TRAIN, model="", criterion="nn.CrossEntropyLoss().to(device)", after=""
    )
    assert call in source
    source = source.replace(call, call + "        model = make_model()\n")
    output = run_codemod(source, TorchToNNX)
    code = [line for line in output.splitlines() if not line.strip().startswith("#")]
    assert not any("nnx.value_and_grad" in line for line in code), output
    assert "binds `model` or `optimizer` on a path from" in reason_of(output), output


def test_a_user_module_criterion_with_parameters_escapes() -> None:
    output = convert(criterion="LearnedLoss().to(device)")
    assert LOSS_FUNCTION not in output and "criterion" in reason_of(output), output


def test_a_torch_loss_with_parameters_escapes() -> None:
    output = convert(criterion="nn.AdaptiveLogSoftmaxWithLoss(8, 10, [4]).to(device)")
    assert LOSS_FUNCTION not in output and "criterion" in reason_of(output), output


def test_a_criterion_rebound_at_one_call_site_escapes() -> None:
    again = "    criterion = LearnedLoss()\n    train(loader, model, criterion, optimizer, device)"
    output = convert(after=again)
    assert LOSS_FUNCTION not in output and "criterion" in reason_of(output), output


def test_a_criterion_through_an_unknown_method_escapes() -> None:
    output = convert(criterion="nn.CrossEntropyLoss().compile()")
    assert LOSS_FUNCTION not in output and "criterion" in reason_of(output), output


OTHER_CALLER = """\
from {package}.engine import train


def other(loader, model, optimizer, device):
    train(loader, model, LearnedLoss(), optimizer, device)
"""


def converted_engine(root: Path, other: str | None) -> str:
    """``engine.py`` (the imagenet shape: train() called by its own main_worker) through
    ``TorchToNNX`` in a package where ``other.py`` may call train() too."""
    files = {"engine.py": SOURCE.format(train=TRAIN, model="", criterion="nn.MSELoss()", after="")}
    if other is not None:
        files["other.py"] = other.format(package="pkg")
    engine = write_package(root, files) / "pkg" / "engine.py"
    tree = cst.parse_module(engine.read_text(encoding="utf-8"))
    command = TorchToNNX(CodemodContext(filename=str(engine)))
    return command.transform_module(tree).code


def test_a_criterion_passed_by_this_file_only_converts_in_a_package(tmp_path: Path) -> None:
    output = converted_engine(tmp_path, None)
    assert BEGIN not in output and LOSS_FUNCTION in output, output


def test_a_criterion_another_file_passes_a_user_module_for_escapes(tmp_path: Path) -> None:
    output = converted_engine(tmp_path, OTHER_CALLER)
    assert LOSS_FUNCTION not in output and "criterion" in reason_of(output), output


ENGINE_ALONE = """\
def train(train_loader, model, criterion, optimizer, device):
    for i, (images, target) in enumerate(train_loader):
        output = model(images)
        loss = criterion(output, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""

MAIN_ELSEWHERE = """\
import torch
import torch.nn as nn
from pkg.engine import train


def main(model, loader, epochs, device):
{moved}
    criterion = nn.CrossEntropyLoss().to(device)
    optimizer = torch.optim.SGD(model.parameters(), 0.1)
    for epoch in range(epochs):
        train(loader, model, criterion, optimizer, device)
"""


def engine_called_from_main(root: Path, moved: str) -> str:
    """``engine.py`` through ``TorchToNNX`` with its ``train`` called by ``main.py``."""
    main = MAIN_ELSEWHERE.format(moved=moved)
    engine = write_package(root, {"main.py": main, "engine.py": ENGINE_ALONE}) / "pkg" / "engine.py"
    command = TorchToNNX(CodemodContext(filename=str(engine)))
    return command.transform_module(cst.parse_module(ENGINE_ALONE)).code


def test_a_model_moved_by_rebinding_in_another_file_converts(tmp_path: Path) -> None:
    output = engine_called_from_main(tmp_path, "    model = model.to(device)")
    assert BEGIN not in output and LOSS_FUNCTION in output, output


@pytest.mark.parametrize(
    "moved", ["    model = torch.nn.DataParallel(model)", "    model = make_other().to(device)"]
)
def test_a_model_rebound_before_the_optimizer_in_another_file_converts(
    tmp_path: Path, moved: str
) -> None:
    """The optimizer is built over the object the call then passes (a wrapper's line escapes
    in place in ``main.py``): ``repository._unrebound_since``."""
    output = engine_called_from_main(tmp_path, moved)
    assert BEGIN not in output and LOSS_FUNCTION in output, output


def engine_rebound_after_the_optimizer(root: Path, moved: str) -> str:
    """``engine_called_from_main`` with ``moved`` between the optimizer's line and the loop."""
    line = "    optimizer = torch.optim.SGD(model.parameters(), 0.1)\n"
    main = MAIN_ELSEWHERE.format(moved="").replace(line, line + moved + "\n")
    engine = write_package(root, {"main.py": main, "engine.py": ENGINE_ALONE}) / "pkg" / "engine.py"
    command = TorchToNNX(CodemodContext(filename=str(engine)))
    return command.transform_module(cst.parse_module(ENGINE_ALONE)).code


def test_a_model_wrapped_in_another_file_escapes(tmp_path: Path) -> None:
    output = engine_rebound_after_the_optimizer(
        tmp_path, "    model = torch.nn.DataParallel(model)"
    )
    assert LOSS_FUNCTION not in output and "main.py" in reason_of(output), output


def test_a_model_rebound_to_another_model_in_another_file_escapes(tmp_path: Path) -> None:
    output = engine_rebound_after_the_optimizer(tmp_path, "    model = make_other().to(device)")
    assert LOSS_FUNCTION not in output and BEGIN in output, output
