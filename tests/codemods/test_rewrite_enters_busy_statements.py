"""The rewrite enters only the statements the plan marks busy (``Plan.busy``): those holding a
wired call or attribute read, a backward pass, an import, a region's or a torch-only use's
statement, and the statements around them; the others are left as they are."""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from tests.support import run_codemod

TORCH_ONLY_IN_AN_IDLE_FUNCTION = """\
import pickle
import torch

def save(fh):
    pickle.dump(opt, fh)

def other(x):
    return x + 1

opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""

LR_READ_IN_AN_IDLE_FUNCTION = """\
import torch

def lr_of():
    if True:
        return opt.param_groups[0]["lr"]

opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""


class _Entered(TorchToOptax):
    """TorchToOptax recording the functions its rewrite enters."""

    entered: list[str] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.entered.append(node.name.value)


def test_a_function_holding_nothing_to_rewrite_is_not_entered() -> None:
    _Entered.entered = []
    run_codemod(TORCH_ONLY_IN_AN_IDLE_FUNCTION, _Entered)
    assert _Entered.entered == ["save"]


def test_a_torch_only_use_in_a_function_without_wired_calls_escapes() -> None:
    save = run_codemod(TORCH_ONLY_IN_AN_IDLE_FUNCTION).split("def other")[0]
    assert "    # ml_switcheroo: ESCAPE-BEGIN torch.optim.SGD" in save
    assert "    pickle.dump(opt, fh)\n    # ml_switcheroo: ESCAPE-END" in save


def test_a_wired_attribute_read_nested_in_a_function_is_rewritten() -> None:
    output = run_codemod(LR_READ_IN_AN_IDLE_FUNCTION, TorchToNNX)
    assert 'return float(opt.opt_state.hyperparams["learning_rate"][...])' in output
