"""A file that replaces torch's API (monkeypatching: probe s31 G4) escapes its optimizers: what
runs is the replacement, not the torch optimizer the translation means (0.25 NNX to 7.8 optax
relative off torch over the probe's runs). Twins that still convert: assignments to other torch
attributes (`torch.backends.cudnn.benchmark = True`), to a user's own class, a name bound again."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX
from tests.support import run_codemod

OPT = "opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)\n"
SAID = "this file replaces torch's"

REPLACING = {
    "class": "torch.optim.SGD = MySGD\n",
    "class_through_a_module_alias": "from torch import optim\noptim.SGD = optim.Adam\n",
    "a_method_of_the_class": "torch.optim.SGD.step = my_step\n",
    "a_method_of_the_base_class": "from torch.optim import Optimizer\nOptimizer.zero_grad = noop\n",
    "setattr_of_the_module": 'setattr(torch.optim, "SGD", MySGD)\n',
    "setattr_of_a_computed_name": "setattr(torch.optim, name, MySGD)\n",
    "the_clip_function": "torch.nn.utils.clip_grad_norm_ = my_clip\n",
    "in_a_function": "def install():\n    torch.optim.SGD.step = my_step\n",
}
KEEPING = {
    "another_torch_attribute": "torch.backends.cudnn.benchmark = True\n",
    "a_user_class": "class Mine:\n    pass\nMine.step = my_step\n",
    "setattr_of_the_model": 'setattr(model, "fc", layer)\nmodel = make_model()\n',
}


@pytest.mark.parametrize("name", sorted(REPLACING))
def test_a_replaced_api_escapes_the_optimizer(name: str) -> None:
    for command in (None, TorchToNNX):
        source = "import torch\n" + REPLACING[name] + OPT
        output = run_codemod(source) if command is None else run_codemod(source, command)
        assert SAID in output and "optax.sgd(" not in output.replace("# ", "#"), output


@pytest.mark.parametrize("name", sorted(KEEPING))
def test_other_assignments_keep_the_translation(name: str) -> None:
    output = run_codemod("import torch\n" + KEEPING[name] + OPT)
    assert SAID not in output and "opt = optax.sgd(" in output, output
