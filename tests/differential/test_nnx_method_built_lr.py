"""build-nanogpt's lr schedule through its method-built optimizer (issue 13): ``optimizer =
model.configure_optimizers(...)`` (a method of the model's class in the same file returning
AdamW over rank-split groups of ``self``) and, in the caller, ``lr = get_lr(step)`` then
``for param_group in optimizer.param_groups: param_group["lr"] = lr`` between the backward pass
and the step. The method's constructor becomes ``nnx.Optimizer(self,
optax.inject_hyperparams(optax.adamw)(...), ...)`` and the caller's write a write of its stored
lr (the method's ``return`` stands for the caller's name: ``Plan.method_caller``). The codemod's
own output (the model class ported by hand, as a user would) is run against torch: float64, 36
updates, losses, lrs and parameters compared. The twins keep their escape."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import (
    converted,
    translated_package_runs,
    worst_rel,
)
from tests.differential.test_nnx_method_built_step import port
from tests.support import gpt_groups, renders_a_step, write_package

MAIN = (
    """\
import math
import torch
from torch import nn

max_lr = 0.05
min_lr = max_lr * 0.1
warmup_steps = 5
max_steps = 30


def get_lr(it):
    if it < warmup_steps:
        return max_lr * (it + 1) / warmup_steps
    if it > max_steps:
        return min_lr
    decay_ratio = (it - warmup_steps) / (max_steps - warmup_steps)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (max_lr - min_lr)


class GPT(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)

    def configure_optimizers(self, weight_decay, learning_rate):
"""
    + gpt_groups("self", "weight_decay", " " * 8)
    + """\
        optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=(0.9, 0.95), eps=1e-8)
        return optimizer


def main(net, loader, epochs):
    losses = []
    model = GPT(net)
    optimizer = model.configure_optimizers(weight_decay=0.5, learning_rate=6e-4)
    for step in range(epochs * len(loader)):
        x, y = loader[step % len(loader)]
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).sum()
        loss.backward()
        lr = get_lr(step)
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        optimizer.step()
        losses.append(loss.item())
        losses.append(lr)
    return losses
"""
)

WRITTEN = 'optimizer.opt_state.hyperparams["learning_rate"][...] = lr'
INJECTED = (
    'optimizer = nnx.Optimizer(self, optax.inject_hyperparams(optax.adamw, static_args=("mask",))('
)


def test_the_lr_written_through_the_method_built_optimizer_matches_torch(tmp_path: Path) -> None:
    outputs, torch_run, nnx_run = translated_package_runs(
        tmp_path, "gptlr", {"main.py": MAIN}, port
    )
    text = outputs["main.py"]
    assert BEGIN not in text and INJECTED in text and WRITTEN in text, text
    assert "optimizer.update(model, grads)" in text, text
    assert len(torch_run.losses) == 2 * 36 and len(set(torch_run.losses[1::2])) > 10
    rel = worst_rel(torch_run, nnx_run)
    assert rel < EXACT, f"rel {rel:.3e}\n{text}"


def test_the_case_discriminates(tmp_path: Path) -> None:
    """A translation that forgot the write differs from torch."""

    def forgetting(outputs: dict[str, str]) -> dict[str, str]:
        ported = port(outputs)
        return {"main.py": ported["main.py"].replace(WRITTEN, "pass")}

    outputs, torch_run, nnx_run = translated_package_runs(
        tmp_path, "gptlrforgot", {"main.py": MAIN}, forgetting
    )
    assert WRITTEN in outputs["main.py"]
    assert worst_rel(torch_run, nnx_run) > 1e-3


WRITE = '        for param_group in optimizer.param_groups:\n            param_group["lr"] = lr\n'
TWINS = {
    # only the first group's lr: the decay group; the injected lr is every group's
    "first group written": (WRITE, '        optimizer.param_groups[0]["lr"] = lr\n'),
    "lr written under an if with an else": (
        WRITE,
        "        if step % 3 == 0:\n"
        "            for param_group in optimizer.param_groups:\n"
        '                param_group["lr"] = lr\n'
        "        else:\n"
        "            pass\n",
    ),
    "a second caller": (
        "    for step in range(",
        "    spare = model.configure_optimizers(weight_decay=0.0, learning_rate=1e-3)\n"
        "    for step in range(",
    ),
    "the loop also reads the group": (
        'param_group["lr"] = lr\n',
        'param_group["lr"] = lr * param_group["weight_decay"]\n',
    ),
    "the clip folded through the method (not done)": (
        "        lr = get_lr(step)\n",
        "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
        "        lr = get_lr(step)\n",
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_twins_keep_an_escape(name: str, tmp_path: Path) -> None:
    old, new = TWINS[name]
    assert old in MAIN
    write_package(tmp_path, {"main.py": MAIN.replace(old, new)}, "gptlrtwin")
    text = converted(tmp_path, "gptlrtwin")["main.py"]
    assert BEGIN in text, text
    assert not renders_a_step(text) or WRITTEN not in text, text


# the lr written after the step: torch's next step reads it, as the next update reads the
# stored lr (the first update uses the constructor's lr in both)
AFTER_THE_STEP = MAIN.replace("        lr = get_lr(step)\n" + WRITE, "").replace(
    "        optimizer.step()\n", "        optimizer.step()\n        lr = get_lr(step)\n" + WRITE
)


def test_an_lr_written_after_the_step_matches_torch(tmp_path: Path) -> None:
    assert AFTER_THE_STEP != MAIN
    outputs, torch_run, nnx_run = translated_package_runs(
        tmp_path, "gptlrafter", {"main.py": AFTER_THE_STEP}, port
    )
    text = outputs["main.py"]
    assert BEGIN not in text and INJECTED in text and WRITTEN in text, text
    rel = worst_rel(torch_run, nnx_run)
    assert rel < EXACT, f"rel {rel:.3e}\n{text}"


# the receiver rebound through torch.compile: the repository's fact follows the method (the
# wrapper forwards it), the file's does not (no injected lr): the loop, outside the step,
# escapes on its own instead of staying torch code on the nnx.Optimizer
COMPILED = (
    MAIN.replace("        lr = get_lr(step)\n" + WRITE, "")
    .replace(
        "        optimizer.zero_grad()\n",
        "        lr = get_lr(step)\n" + WRITE + "        optimizer.zero_grad()\n",
    )
    .replace("    model = GPT(net)\n", "    model = GPT(net)\n    model = torch.compile(model)\n")
)


def test_an_lr_loop_not_injected_escapes(tmp_path: Path) -> None:
    write_package(tmp_path, {"main.py": COMPILED}, "gptlrcompiled")
    text = converted(tmp_path, "gptlrcompiled")["main.py"]
    assert "optimizer = nnx.Optimizer(self, optax.adamw(" in text, text
    loop = "        # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.param_groups\n"
    assert loop in text and WRITTEN not in text, text
