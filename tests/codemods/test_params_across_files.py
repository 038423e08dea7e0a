"""An optimizer over a parameter of a module-level function (``build(params, lr)``) converts
only when every call in the repository passes ``model.parameters()``: a call passing anything
else (param groups with options of their own, part of a model) or no call at all keeps it torch
code naming the place, and the files stepping what it returns keep their torch calls."""

from __future__ import annotations

from pathlib import Path

from tests.support import convert_in_process, write_package

BUILD = """\
import torch


def build(params, lr):
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.1)
"""

TRAIN = """\
from pkg.build import build


def main(model, batches, groups):
    opt = build({params}, 1e-3)
    for x in batches:
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
"""


def test_every_call_passing_model_parameters_converts(tmp_path: Path) -> None:
    files = {"build.py": BUILD, "train.py": TRAIN.format(params="model.parameters()")}
    outputs, _ = convert_in_process(write_package(tmp_path, files))
    assert "optax.adamw(" in outputs["build.py"], outputs["build.py"]
    assert "opt.zero_grad()" not in outputs["train.py"], outputs["train.py"]


def test_a_call_passing_groups_keeps_the_optimizer_and_its_callers_torch(tmp_path: Path) -> None:
    files = {
        "build.py": BUILD,
        "train.py": TRAIN.format(params="model.parameters()"),
        "train2.py": TRAIN.format(params="groups"),
    }
    outputs, _ = convert_in_process(write_package(tmp_path, files))
    assert "(pkg/train2.py:5 passes `groups` for `params`)" in outputs["build.py"]
    assert "    return torch.optim.AdamW(params" in outputs["build.py"], outputs["build.py"]
    for name in ("train.py", "train2.py"):
        assert "        opt.zero_grad()\n" in outputs[name], outputs[name]


def test_no_call_in_the_repository_keeps_it_torch(tmp_path: Path) -> None:
    outputs, _ = convert_in_process(write_package(tmp_path, {"build.py": BUILD}))
    assert (
        "(no call of `build` in the repository shows what `params` holds)" in (outputs["build.py"])
    )


def test_a_call_in_another_file_counts_when_this_file_calls_it_too(tmp_path: Path) -> None:
    here = BUILD + (
        "\n\ndef local(model, batches):\n"
        "    opt = build(model.parameters(), 0.1)\n"
        "    for x in batches:\n"
        "        opt.zero_grad()\n"
        "        model(x).sum().backward()\n"
        "        opt.step()\n"
    )
    files = {"build.py": here, "train2.py": TRAIN.format(params="groups")}
    outputs, _ = convert_in_process(write_package(tmp_path, files))
    assert "(pkg/train2.py:5 passes `groups` for `params`)" in outputs["build.py"]
    assert "    return torch.optim.AdamW(params" in outputs["build.py"], outputs["build.py"]
