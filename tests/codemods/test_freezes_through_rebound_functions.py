"""Freezes whose "new tensor" or "copy" proof trusted a function's name (probe s41 F4, F22;
each measured 1.4-1.5 relative off torch over 36 NNX updates before): a module-level function
another file or ``globals()`` may rebind (``train.noised = lambda t: t``), and a freezing
function called through a frame's globals (``sys._getframe().f_globals[...]``). The optimizer
escapes in both targets; the twins, where nothing reaches the names, still translate."""

from __future__ import annotations

from pathlib import Path

from tests.support import converts_in_both_targets, escapes_in_both_targets

SGD = "torch.optim.SGD"
NOISED = """\
import torch


def noised(t):
    return torch.clamp(t + 0.01, -1, 1)

{rebind}
def train(model):
    w = noised(model.hidden.weight)
    w.requires_grad = False
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
"""
FRAME = """\
import copy
import sys

import torch


def requires_grad(model, flag=True):
    for p in model.parameters():
        p.requires_grad = flag


def train(model):
    ema = copy.deepcopy(model)
    requires_grad(ema, False)
{call}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
"""
GLOBALS_REBIND = "\nif not NOISE:\n    globals()['noised'] = lambda t: t\n\n"


def test_a_function_globals_may_rebind_is_no_new_tensor_proof() -> None:
    source = "NOISE = False\n" + NOISED.format(rebind=GLOBALS_REBIND)
    escapes_in_both_targets(source, SGD, "w.requires_grad = False")


def test_a_freezing_function_reached_through_a_frame_escapes() -> None:
    call = "    sys._getframe().f_globals['requires_grad'](model.get_submodule('hidden'), False)"
    escapes_in_both_targets(FRAME.format(call=call), SGD, "requires_grad")


def test_the_twins_translate() -> None:
    converts_in_both_targets(NOISED.format(rebind=""), SGD)
    converts_in_both_targets(FRAME.format(call=""), SGD)


def test_a_function_another_file_rebinds_is_no_new_tensor_proof(tmp_path: Path) -> None:
    from tests.differential.test_hidden_code_of_another_file import _translated

    run = "from pkg import train\n\ntrain.noised = lambda t: t\n"
    translation = _translated(
        tmp_path, {"pkg/train.py": NOISED.format(rebind=""), "pkg/run.py": run}
    )
    (record,) = [r for r in translation.escapes if r.api == SGD]
    assert "w.requires_grad = False" in record.reason, record.reason
