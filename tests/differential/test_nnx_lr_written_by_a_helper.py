"""A learning rate written through ``param_groups`` by a function of the file the optimizer is
handed to (``adjust_learning_rate(optimizer, epoch, args)``: MoCo, the ImageNet example): the
optimizer's tx injects its lr, and the helper's write becomes the write of the stored lr, when
every call of the helper passes that one optimizer. Before (s31 corpus, MoCo), the write in the
helper escaped. Run against torch (float64, 36 updates: every loss and the final weights).
Trap twins escape the helper's write: a second optimizer passed to it, a write of another
option, the parameter bound again, GPT-style groups with the first group's lr written."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    run_nnx_loop,
    run_torch_loop,
    translate_nnx,
    translated_rel,
    worst_rel,
)
from tests.support import code_lines, convert_in_process, gpt_groups, write_package

LOOP = """\
import torch


def adjust_learning_rate(optimizer, epoch):
    lr = 0.2 * 0.5 ** epoch
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr


model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
for epoch in range(EPOCHS):
    adjust_learning_rate(opt, epoch)
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""
WRITE = 'optimizer.opt_state.hyperparams["learning_rate"][...] = lr'
INJECTED = "optax.inject_hyperparams(optax.sgd)(learning_rate=0.2"


@pytest.mark.parametrize(
    "loop",
    [
        LOOP,
        LOOP.replace(
            "adjust_learning_rate(opt, epoch)", "adjust_learning_rate(epoch=epoch, optimizer=opt)"
        ),
    ],
    ids=["positional", "keywords"],
)
def test_the_helper_writes_the_stored_lr_and_matches_torch(loop: str) -> None:
    translated, rel = translated_rel(loop)
    assert BEGIN not in translated, translated
    assert WRITE in translated and INJECTED in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"


def test_without_the_write_the_run_differs() -> None:
    """The lr writes matter here (else the test above proves nothing)."""
    translated = translate_nnx(LOOP)
    skipped = translated.replace(WRITE, "pass")
    assert worst_rel(run_torch_loop(LOOP), run_nnx_loop(LOOP, skipped)) > 1e-3


TWINS = {
    "a_second_optimizer_passed_to_it": LOOP.replace(
        "    adjust_learning_rate(opt, epoch)\n",
        "    adjust_learning_rate(opt, epoch)\n    adjust_learning_rate(other, epoch)\n",
    ).replace(
        "model = make_model()\n",
        "model = make_model()\nother = torch.optim.SGD(make_model().parameters(), lr=0.1)\n",
    ),
    "a_write_of_another_option": LOOP.replace(
        '        param_group["lr"] = lr\n',
        '        param_group["lr"] = lr\n    optimizer.param_groups[0]["momentum"] = 0.5\n',
    ),
    "the_parameter_bound_again": LOOP.replace(
        "    lr = 0.2 * 0.5 ** epoch\n", "    lr = 0.2 * 0.5 ** epoch\n    optimizer = optimizer\n"
    ),
    "gpt_groups_with_the_first_group_lr_written": LOOP.replace(
        '    for param_group in optimizer.param_groups:\n        param_group["lr"] = lr\n',
        '    optimizer.param_groups[0]["lr"] = lr\n',
    ).replace(
        "opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)\n",
        gpt_groups("model", "0.1") + "opt = torch.optim.AdamW(optim_groups, lr=0.2)\n",
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_trap_twins_keep_the_helper_write_torch_code(name: str) -> None:
    output = translate_nnx(TWINS[name])
    code = "\n".join(code_lines(output))
    assert 'hyperparams["learning_rate"][...] = lr' not in code, output
    assert 'param_group["lr"] = lr' in code or '["lr"] = lr' in code, output  # torch code
    assert BEGIN in output, output


MAIN_FUNCTION = """\
import torch


def adjust_learning_rate(optimizer, epoch):
    lr = 0.2 * 0.5 ** epoch
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr


def main(make_model, loader, losses, epochs):
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    for epoch in range(epochs):
        adjust_learning_rate(opt, epoch)
        for x, y in loader:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
"""
OTHER = """\
import torch

from pkg.main import adjust_learning_rate


def run(groups):
    opt = torch.optim.SGD(groups, lr=0.1)
    adjust_learning_rate(opt, 1)
"""


def test_a_helper_another_file_hands_a_torch_optimizer_keeps_its_write(tmp_path: Path) -> None:
    """``other.py`` calls the helper with an optimizer that stays torch code (its params
    unknown): the helper's write stays torch code, in an escape hatch (an nnx write would fail
    on the torch optimizer, the torch write on the nnx.Optimizer main.py hands it)."""
    write_package(tmp_path, {"main.py": MAIN_FUNCTION, "other.py": OTHER})
    outputs, _ = convert_in_process(tmp_path, TorchToNNX)
    assert "opt = nnx.Optimizer(" in outputs["main.py"], outputs["main.py"]
    code = "\n".join(code_lines(outputs["main.py"]))
    assert "opt_state.hyperparams" not in code, outputs["main.py"]
    assert 'param_group["lr"] = lr' in code, outputs["main.py"]
    # torch code on a parameter this file hands an nnx.Optimizer: marked (it was not)
    assert "ESCAPE-BEGIN torch.optim.Optimizer.param_groups" in outputs["main.py"]
