"""Param groups given by name (``SGD([group])``, ``SGD(groups)``): torch keeps those very
dicts as the optimizer's ``param_groups``, so a write through the name changes the optimizer.
The translation reads only the literal the name is bound to: any other read escapes."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from tests.support import run_codemod

LOOP = """\
import torch

{groups}
opt = torch.optim.SGD({argument}, lr=0.1, momentum=0.9)
for batch in batches:
    opt.zero_grad()
    loss = batch.sum()
    loss.backward()
    opt.step()
{after}
"""

CASES = {
    "dict_written_after": ('group = {"params": params}', "[group]", '    group["lr"] *= 0.9'),
    "list_written_after": ('groups = [{"params": params}]', "groups", '    groups[0]["lr"] = 0.01'),
    "dict_in_a_named_list": (
        'group = {"params": params}\ngroups = [group]',
        "groups",
        '    group["lr"] = 0.01',
    ),
    "dict_written_before": ('group = {"params": params}\ngroup["lr"] = 0.5', "[group]", ""),
    "handed_to_a_function": ('group = {"params": params}', "[group]", "    decay(group)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
def test_a_group_read_elsewhere_escapes(case: str, command: type) -> None:
    groups, argument, after = CASES[case]
    output = run_codemod(LOOP.format(groups=groups, argument=argument, after=after), command)
    assert "optax.sgd(" not in output.split("suggestion")[0], output
    assert "given by name" in output and "is read again at example.py:" in output, output


def test_a_group_read_only_by_the_call_translates() -> None:
    code = LOOP.format(groups='group = {"params": params}', argument="[group]", after="")
    output = run_codemod(code, TorchToOptax)
    assert "opt = optax.sgd(learning_rate=0.1, momentum=0.9)" in output, output
