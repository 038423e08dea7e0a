"""A model bound on two branches (issue 13: pytorch/examples imagenet, ``if args.pretrained: model
= models.__dict__[args.arch](pretrained=True) else: model = models.__dict__[args.arch]()``, then
``optimizer = torch.optim.SGD(model.parameters(), ...)`` and ``train(train_loader, model,
criterion, optimizer, ...)``): two values reach ``model``, but the name the step calls holds the
object the optimizer was built over whichever branch bound it, when neither ``model`` nor the
optimizer's name is rebound on any path from the optimizer's line to the call
(``step_models._unrebound_since_built``). The NNX codemod's own output matches torch when run
(every recorded loss and the final parameters, float64, 36 updates, on either branch); the
shapes that break the rule escape (trap twins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    converted,
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    translated_package_runs,
    worst_rel,
)
from tests.support import write_package

IMAGENET_BRANCHES = """\
import torch
import torch.nn as nn


def accuracy(output, target):
    return float(abs(output - target).max())


def train(train_loader, model, criterion, optimizer, epoch, device):
    model.train()
    for i, (images, target) in enumerate(train_loader):
        images = images.to(device, non_blocking=True)
        target = target.to(device, non_blocking=True)
        output = model(images)
        loss = criterion(output, target)
        acc1 = accuracy(output, target)
        losses.append(loss.item())
        losses.append(acc1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main_worker(pretrained):
    device = torch.device("cpu")
    if pretrained:
        print("=> using pre-trained model")
        model = make_model()
    else:
        print("=> creating model")
        model = make_model()
    model = model.to(device)
    criterion = nn.MSELoss().to(device)
    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=1e-4)
    for epoch in range(EPOCHS):
        train(loader, model, criterion, optimizer, epoch, device)


main_worker(PRETRAINED)
"""

SAME_SCOPE = """\
import torch

if PRETRAINED:
    model = make_model()
else:
    model = make_model()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(EPOCHS):
    for x, y in loader:
        opt.zero_grad()
        out = model(x)
        loss = ((out - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""

PORTED = (
    ("nn.MSELoss().to(device)", "(lambda out, y: ((out - y) ** 2).mean())"),
    ("images.to(device, non_blocking=True)", "images"),
    ("target.to(device, non_blocking=True)", "target"),
    ("model = model.to(device)", "model = model"),
)


def ported(source: str, translated: str) -> str:
    """``translated`` with the user's ports of what stays torch code of ``source`` (each must
    be there)."""
    for torch_code, nnx_code in PORTED:
        if torch_code in source:
            assert torch_code in translated, torch_code
            translated = translated.replace(torch_code, nnx_code)
    return translated


SOURCES = {"imagenet_train_function": IMAGENET_BRANCHES, "same_scope": SAME_SCOPE}


@pytest.mark.parametrize("pretrained", [True, False])
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_model_of_either_branch_trains_as_in_torch(name: str, pretrained: bool) -> None:
    source = SOURCES[name]
    translated = translate_nnx(source)
    assert BEGIN not in translated and "nnx.value_and_grad" in translated, translated
    names = {"PRETRAINED": pretrained}
    torch_run = run_torch_loop(source, names=names)
    nnx_run = run_nnx_loop(source, ported(source, translated), names=names)
    assert len(torch_run.losses) >= 36
    assert worst_rel(torch_run, nnx_run) < EXACT


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_second_run_changes_nothing(name: str) -> None:
    once = translate_nnx(SOURCES[name])
    assert translate_nnx(once) == once


def _escaped(source: str, reason: str) -> None:
    translated = translate_nnx(source)
    code = "\n".join(line for line in translated.splitlines() if not line.strip().startswith("#"))
    assert "nnx.value_and_grad" not in code and "ESCAPE-BEGIN torch.optim.Optimizer.step" in (
        translated
    ), translated
    assert reason in translated, translated


OPTIMIZER_LINE = (
    "    optimizer = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=1e-4)\n"
)
CALL = "        train(loader, model, criterion, optimizer, epoch, device)\n"
NOT_PROVEN = "the forward pass does not call the trained model `model`"


def _imagenet(old: str, new: str) -> str:
    assert old in IMAGENET_BRANCHES
    return IMAGENET_BRANCHES.replace(old, new)


TWINS = {
    # `model` rebound on one path between the optimizer's line and the call
    "rebound_on_one_path_between": _imagenet(
        OPTIMIZER_LINE,
        OPTIMIZER_LINE + "    if pretrained:\n        model = make_model()\n",
    ),
    # wrapped between: the name now holds the wrapper (another object)
    "wrapped_between": _imagenet(
        OPTIMIZER_LINE, OPTIMIZER_LINE + "    model = torch.nn.DataParallel(model)\n"
    ),
    # rebound in the loop after the call: the next epoch's call passes another model
    "rebound_after_the_call_in_the_loop": _imagenet(CALL, CALL + "        model = make_model()\n"),
    # the optimizer built over one name, the step given another bound on the same branches
    "different_names": _imagenet(
        "        model = make_model()\n    model = model.to(device)\n",
        "        model = make_model()\n    net = model\n    model = model.to(device)\n",
    ).replace(CALL, CALL.replace("model,", "net,")),
    # one call site of `train` passes another variable
    "another_variable_at_one_call_site": _imagenet(
        CALL,
        CALL + "    other = make_model()\n"
        "    train(loader, other, criterion, optimizer, EPOCHS, device)\n",
    ),
    # the optimizer's name rebound between (the step may get an older optimizer's model)
    "optimizer_rebound_between": _imagenet(
        OPTIMIZER_LINE,
        OPTIMIZER_LINE + "    keep = optimizer\n    optimizer = keep\n",
    ),
    # deleted between
    "model_deleted_between": _imagenet(OPTIMIZER_LINE, OPTIMIZER_LINE + "    del model\n"),
}


REBOUND = "`model` holds more than one value, and `{}` at this file:{} binds `model` or `optimizer`"
REASONS = {
    "rebound_on_one_path_between": REBOUND.format("if pretrained: model = make_model()", 35),
    "wrapped_between": REBOUND.format("model = torch.nn.DataParallel(model)", 35),
    "rebound_after_the_call_in_the_loop": REBOUND.format(
        "for epoch in range(EPOCHS): train(loa...", 35
    ),
    "different_names": "passes `net` for `model`, not the optimizer's `model`",
    "another_variable_at_one_call_site": "passes `other` for `model`, not the optimizer's `model`",
    "optimizer_rebound_between": "`optimizer` holds more than one value",
    "model_deleted_between": REBOUND.format("del model", 35),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_a_model_not_proven_the_optimizer_s_escapes(name: str) -> None:
    _escaped(TWINS[name], REASONS[name])


SAME_SCOPE_TWINS = {
    "rebound_between": SAME_SCOPE.replace(
        "for epoch in range(EPOCHS):\n",
        "if PRETRAINED:\n    model = make_model()\nfor epoch in range(EPOCHS):\n",
    ),
    "rebound_in_the_loop_after_the_step": SAME_SCOPE.replace(
        "        losses.append(loss.item())\n",
        "        losses.append(loss.item())\n    model = make_model()\n",
    ),
    "global_declared_elsewhere": SAME_SCOPE
    + "\n\ndef reset():\n    global model\n    model = make_model()\n",
}


SAME_SCOPE_REASONS = {
    "rebound_between": "`if PRETRAINED: model = make_model()` at this file:8 binds `model`",
    "rebound_in_the_loop_after_the_step": "`for epoch in range(EPOCHS): for x, y ...` at this "
    "file:8 binds `model`",
    "global_declared_elsewhere": "a `global` or `nonlocal` statement of the module names it",
}


@pytest.mark.parametrize("name", sorted(SAME_SCOPE_TWINS))
def test_a_same_scope_model_not_proven_escapes(name: str) -> None:
    _escaped(SAME_SCOPE_TWINS[name], SAME_SCOPE_REASONS[name])


# The same across two files (the repository index, ``RepositoryIndex.model_mismatch``):
# ``train`` in ``engine.py``, the model bound on two branches in ``main.py``.
ENGINE = """\
def train(train_loader, model, criterion, optimizer, device):
    for i, (images, target) in enumerate(train_loader):
        images = images.to(device, non_blocking=True)
        output = model(images)
        loss = criterion(output, target)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""

MAIN = """\
import torch
import torch.nn as nn
from {package} import engine
from {package}.engine import train


def main(model, loader, epochs):
    device = torch.device("cpu")
    if epochs > 2:
        net = model
    else:
        print("=> creating model")
        net = model
    criterion = nn.MSELoss().to(device)
    optimizer = torch.optim.SGD(net.parameters(), 0.05, momentum=0.9, weight_decay=1e-4)
    engine.losses = []
    for epoch in range(epochs):
        train(loader, net, criterion, optimizer, device)
    return engine.losses
"""

PORTED_ACROSS_FILES = (
    ("nn.MSELoss().to(device)", "(lambda out, y: ((out - y) ** 2).mean())"),
    ("images.to(device, non_blocking=True)", "images"),
)


def _port(files: dict[str, str]):  # noqa: ANN202
    def port(outputs: dict[str, str]) -> dict[str, str]:
        assert all(BEGIN not in text for text in outputs.values()), outputs
        ported = {name: outputs[name] for name in files}
        for torch_code, nnx_code in PORTED_ACROSS_FILES:
            name = next(n for n, text in ported.items() if torch_code in text)
            ported[name] = ported[name].replace(torch_code, nnx_code)
        return ported

    return port


def test_the_model_of_either_branch_across_two_files_matches_torch(tmp_path: Path) -> None:
    package = "pkg_model_on_branches"
    files = {"engine.py": ENGINE, "main.py": MAIN.format(package=package)}
    outputs, torch_run, nnx_run = translated_package_runs(tmp_path, package, files, _port(files))
    assert "nnx.value_and_grad" in outputs["engine.py"], outputs["engine.py"]
    assert len(torch_run.losses) == 36
    assert worst_rel(torch_run, nnx_run) < EXACT


def test_a_model_rebound_between_across_two_files_escapes(tmp_path: Path) -> None:
    package = "pkg_model_on_branches_rebound"
    optimizer = (
        "    optimizer = torch.optim.SGD(net.parameters(), 0.05, momentum=0.9, weight_decay=1e-4)\n"
    )
    main = MAIN.format(package=package).replace(
        optimizer, optimizer + "    if epochs > 5:\n        net = model\n"
    )
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": main}, package)
    engine = converted(tmp_path, package)["engine.py"]
    assert "ESCAPE-BEGIN torch.optim.Optimizer.step" in engine, engine
    assert "or again between `optimizer = ...` and this call" in engine, engine
