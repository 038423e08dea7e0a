"""Param groups written other than as dicts in the call (probe F4): a name bound to a dict,
``dict(...)``, a comprehension of dicts, ``[*base]``, ``[groups[0]]``, a call returning one, a
parameter a caller passes a dict. Torch applies each group's options; the translation must
read them (a named dict counts like one in the call) or escape, never drop them."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from tests.support import run_codemod

STEP = "for batch in batches:\n    batch.sum().backward()\n    opt.step()\n"

HIDDEN = {
    "named_dict": 'group = {"params": params, "lr": 0.5}\nopt = torch.optim.SGD([group], lr=0.1)\n',
    "named_dict_in_a_tuple": 'group = {"params": params, "lr": 0.5}\n'
    "opt = torch.optim.SGD((group,), lr=0.1)\n",
    "named_list_of_named_dicts": 'group = {"params": params, "lr": 0.5}\ngroups = [group]\n'
    "opt = torch.optim.SGD(groups, lr=0.1)\n",
    "dict_call": "group = dict(params=params, lr=0.5)\nopt = torch.optim.SGD([group], lr=0.1)\n",
    "comprehension": 'opt = torch.optim.SGD([{"params": p, "lr": 0.5} for p in [params]], lr=0.1)\n',
    "starred": 'base = [{"params": params, "lr": 0.5}]\nopt = torch.optim.SGD([*base], lr=0.1)\n',
    "subscript": "groups = build_groups()\nopt = torch.optim.SGD([groups[0]], lr=0.1)\n",
    "call": "opt = torch.optim.SGD([make_group(params)], lr=0.1)\n",
    "parameter": "def build(group):\n    return torch.optim.SGD([group], lr=0.1)\n"
    'opt = build({"params": params, "lr": 0.5})\n',
}


@pytest.mark.parametrize("case", sorted(HIDDEN))
@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
def test_groups_whose_options_cannot_be_read_escape(case: str, command: type) -> None:
    output = run_codemod("import torch\n" + HIDDEN[case] + STEP, command)
    assert "optax.sgd(" not in output.split("suggestion")[0], output


def test_a_named_group_without_options_translates() -> None:
    code = 'import torch\ngroup = {"params": params}\nopt = torch.optim.SGD([group], lr=0.1)\n'
    output = run_codemod(code + STEP, TorchToOptax)
    assert "opt = optax.sgd(learning_rate=0.1)" in output, output


def test_named_rank_split_groups_get_the_mask() -> None:
    code = (
        "import torch\n"
        "decay = [p for p in model.parameters() if p.dim() >= 2]\n"
        "nodecay = [p for p in model.parameters() if p.dim() < 2]\n"
        'g_decay = {"params": decay, "weight_decay": 0.1}\n'
        'g_plain = {"params": nodecay, "weight_decay": 0.0}\n'
        "opt = torch.optim.AdamW([g_decay, g_plain], lr=0.05)\n"
    )
    output = run_codemod(code + STEP, TorchToOptax)
    assert "optax.adamw(learning_rate=0.05, weight_decay=0.1, mask=" in output, output
