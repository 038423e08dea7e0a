"""Under the NNX target, a method builder of another file whose constructor the NNX target escapes
(param groups: ``nnx.Optimizer`` trains one model's parameters) returns a torch optimizer: the
caller keeps its ``zero_grad()`` and its step as torch code. The dry run that answers "does the
constructor at file:line translate" for the caller runs the caller's target (it ran the optax
target, which translates param groups with masks, and the caller's ``zero_grad()`` was
removed). With ``model.parameters()`` the same builders still translate."""

from __future__ import annotations

from pathlib import Path

from ml_switcheroo.rewrite.engine import SwitcherooCommand, dry_command_for
from ml_switcheroo.targets.nnx.target import NNX
from tests.test_cross_file import write_package
from tests.test_nnx_cross_file import convert_in_process

METHOD_BUILDER = """\
import torch


class GPT:
    def __init__(self, config):
        self.config = config

    def configure_optimizers(self, weight_decay, learning_rate):
        decay = [p for p in self.parameters() if p.dim() >= 2]
        rest = [p for p in self.parameters() if p.dim() < 2]
        groups = [
            {{"params": decay, "weight_decay": weight_decay}},
            {{"params": rest, "weight_decay": 0.0}},
        ]
        optimizer = torch.optim.AdamW({params}, lr=learning_rate)
        return optimizer
"""

METHOD_CALLER = """\
from pkg.model import GPT

model = GPT(conf)
optimizer = model.configure_optimizers(0.1, 6e-4)


def fit(loader):
    for batch in loader:
        loss = model(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
"""


def outputs(root: Path, files: dict[str, str]) -> dict[str, str]:
    write_package(root, files)
    return convert_in_process(root)[0]


def test_a_method_builder_escaping_param_groups_keeps_the_callers_zero_grad(
    tmp_path: Path,
) -> None:
    """Groups split by names escape in NNX (split by rank they convert: the next test)."""
    model = (
        METHOD_BUILDER.format(params="groups")
        .replace(
            "for p in self.parameters() if p.dim() >= 2",
            'for n, p in self.named_parameters() if "bias" not in n',
        )
        .replace(
            "for p in self.parameters() if p.dim() < 2",
            'for n, p in self.named_parameters() if "bias" in n',
        )
    )
    assert model.count('"bias"') == 2
    found = outputs(tmp_path, {"model.py": model, "train.py": METHOD_CALLER})
    assert "ESCAPE-BEGIN torch.optim.AdamW" in found["model.py"], found["model.py"]
    assert found["train.py"] == METHOD_CALLER, found["train.py"]


def test_a_method_builder_of_groups_split_by_rank_converts(tmp_path: Path) -> None:
    model = METHOD_BUILDER.format(params="groups")
    found = outputs(tmp_path, {"model.py": model, "train.py": METHOD_CALLER})
    assert "optimizer = nnx.Optimizer(self, optax.adamw(" in found["model.py"], found["model.py"]
    assert "zero_grad" not in found["train.py"], found["train.py"]


def test_a_method_builder_over_the_models_parameters_still_converts(tmp_path: Path) -> None:
    model = METHOD_BUILDER.format(params="self.parameters()")
    found = outputs(tmp_path, {"model.py": model, "train.py": METHOD_CALLER})
    assert "optimizer = nnx.Optimizer(self, optax.adamw(" in found["model.py"], found["model.py"]
    assert "zero_grad" not in found["train.py"], found["train.py"]


def test_the_dry_run_of_another_file_runs_the_callers_target() -> None:
    assert dry_command_for(NNX).TARGET is NNX
    assert dry_command_for(NNX) is dry_command_for(NNX)  # one class: the dry runs' cache key
    assert dry_command_for(SwitcherooCommand.TARGET) is SwitcherooCommand
