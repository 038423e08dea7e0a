"""Held-out s39 F3: the NNX suggestions that write an optimizer's learning rate named
``opt.opt_state.hyperparams[...]`` also when its tx is a chain (weight decay, a folded clip),
whose state is a tuple: AttributeError. They name ``opt.opt_state[i]`` now, the element the
codemod's own reads use; and the ``param_groups`` reason says what the NNX target does
translate (a write with a folded clip: ``opt.opt_state[1]``)."""

from __future__ import annotations

from tests.differential.nnx_loops import translate_nnx
from tests.support import SwitcherooTest

WD_WRITE = """\
import torch
model = make_model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
for update in range(1, EPOCHS + 1):
    optimizer.param_groups[0]["lr"] = (1.0 - (update - 1.0) / EPOCHS) * 0.01
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""
PLATEAU_IN_CHAIN = """\
import torch
model = make_model()
optimizer = torch.optim.RMSprop(model.parameters(), lr=0.01, weight_decay=1e-8, momentum=0.9)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, 'max', patience=2)
for epoch in range(EPOCHS):
    for i, (x, y) in enumerate(loader):
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 0.1)
        optimizer.step()
        if i % 2 == 0:
            scheduler.step(loss.item())
            print(optimizer.param_groups[0]['lr'])
"""


def _suggestions(output: str) -> str:
    return "\n".join(line for line in output.splitlines() if line.lstrip().startswith("#"))


class LrStateTest(SwitcherooTest):
    def test_a_param_groups_suggestion_names_the_chain_element(self) -> None:
        shown = _suggestions(translate_nnx(WD_WRITE))
        self.assertIn("optimizer.opt_state[1].hyperparams['learning_rate']", shown)
        self.assertNotIn("optimizer.opt_state.hyperparams", shown)

    def test_a_plateau_suggestion_names_the_injected_element(self) -> None:
        shown = _suggestions(translate_nnx(PLATEAU_IN_CHAIN))
        self.assertIn(
            "`optimizer.opt_state[4].hyperparams['learning_rate'][...] = lr * plateau_state.scale`",
            shown,
        )

    def test_the_param_groups_reason_says_a_folded_clip_translates(self) -> None:
        shown = _suggestions(translate_nnx(WD_WRITE))
        self.assertIn("when clip calls fold into it, a chain of the clips and the optimizer", shown)
        self.assertNotIn("without a schedule or clipping", shown)
