"""``opt.param_groups[0]["lr"] = lr`` writes the first group's lr alone. With one group it is
every parameter's lr (the injected ``hyperparams["learning_rate"]``); with GPT-style decay and
no-decay groups (one masked, injected AdamW) it was written as that one lr too, changing the
no-decay group's lr torch keeps: 0.17 relative off torch over 36 AdamW updates (float64, the
codemod's own output run). Such a write escapes now unless the optimizer surely has one group
(``analysis.param_groups.one_group``); the loop over every group still converts (s23d)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential import nnx_loops
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.support import gpt_groups

INJECTED = 'hyperparams["learning_rate"][...] = lr'

GROUPS = (
    "import torch\n\nmodel = make_model()\n"
    + gpt_groups("model", "0.5")
    + """\
opt = torch.optim.AdamW(optim_groups, lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
for epoch in range(EPOCHS):
    EPOCH_WRITE
    for step, (x, y) in enumerate(loader):
        lr = 0.05 / (1 + step + epoch)
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).sum()
        loss.backward()
        STEP_WRITE
        opt.step()
        losses.append(loss.item())
"""
)

ONE_GROUP = """\
import torch

model = make_model()
opt = torch.optim.AdamW(PARAMS, lr=1e-2, weight_decay=0.1)
for epoch in range(EPOCHS):
    for step, (x, y) in enumerate(loader):
        lr = 0.05 / (1 + step + epoch)
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).sum()
        loss.backward()
        opt.param_groups[0]["lr"] = lr
        opt.step()
        losses.append(loss.item())
"""

FIRST = 'opt.param_groups[0]["lr"] = lr'
EVERY = 'for g in opt.param_groups:\n        g["lr"] = lr'


def _groups(epoch_write: str = "pass", step_write: str = "pass") -> str:
    return GROUPS.replace("EPOCH_WRITE", epoch_write).replace("STEP_WRITE", step_write)


@pytest.mark.parametrize(
    "source",
    [
        _groups(step_write=FIRST),
        _groups(epoch_write=FIRST.replace("= lr", "= 0.02 / (1 + epoch)")),
    ],
)
def test_the_first_group_written_alone_of_two_groups_escapes(source: str) -> None:
    translated = translate_nnx(source)
    assert BEGIN in translated and FIRST.replace("= lr", "") in translated, translated
    assert INJECTED not in translated, translated


def test_every_group_written_still_converts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        nnx_loops.NnxNet, "named_parameters", nnx_loops.torch_named_parameters, raising=False
    )
    translated, rel = translated_rel(_groups(step_write=EVERY.replace("\n", "\n    ")))
    assert BEGIN not in translated and INJECTED in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


def test_the_first_group_of_one_group_still_converts() -> None:
    translated, rel = translated_rel(ONE_GROUP.replace("PARAMS", "model.parameters()"))
    assert BEGIN not in translated and INJECTED in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
