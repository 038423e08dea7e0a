"""Optimizers over every parameter of one submodule (s40, held-out item 1: minimalRL's
``optim.Adam(self.actor.parameters())``, an encoder fine-tuned alone). ``optimizer.TorchToNNX``'s
own output, run against
the torch script as written: every recorded loss and the final parameters of the whole model
(the part torch does not step must not move either), float64, 36 updates.

The NNX optimizer is ``nnx.Optimizer(model.hidden, tx, wrt=nnx.Param)``; a loss computed
through the whole model differentiates the whole model and the update applies the submodule's
part of the gradient (``optimizer.update(model.hidden, grads['hidden'])``): torch's backward
fills every .grad, its optimizer steps its own parameters only. Trap twins that must escape
are in ``tests/codemods/test_submodule_optimizer_traps.py``."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import run_torch_loop, translated_rel, worst_rel

ENCODER_ONLY = """\
import torch
model = make_model()
optimizer = torch.optim.SGD(model.hidden.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
for epoch in range(EPOCHS):
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
"""

# the clip over exactly the optimizer's parameters: torch's norm is over those alone
CLIP_OVER_THE_SUBMODULE = """\
import torch
model = make_model()
optimizer = torch.optim.Adam(model.hidden.parameters(), lr=0.05)
for epoch in range(EPOCHS):
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.hidden.parameters(), 0.3)
        optimizer.step()
        losses.append(loss.item())
"""

# a trainer class holding the model: `self.net.hidden` (issue 13, deliverable 2)
TRAINER_ATTRIBUTE = """\
import torch
class Trainer:
    def __init__(self, net):
        self.net = net
        self.optimizer = torch.optim.Adam(self.net.hidden.parameters(), lr=0.02)

    def step(self, x, y):
        self.optimizer.zero_grad()
        loss = ((self.net(x) - y) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.hidden.parameters(), 0.2)
        self.optimizer.step()
        return loss

trainer = Trainer(make_model())
for epoch in range(EPOCHS):
    for x, y in loader:
        losses.append(trainer.step(x, y).item())
"""

# two optimizers over disjoint submodules, the actor's loss through the critic: torch's actor
# backward fills the critic's .grad, which `critic_optim.zero_grad()` clears before its own
# backward (the GAN proof, ``analysis/other_models.py``, with a dotted model)
ACTOR_CRITIC = """\
import torch
model = make_model()
actor_optim = torch.optim.Adam(model.hidden.parameters(), lr=0.01)
critic_optim = torch.optim.SGD(model.out.parameters(), lr=0.05, momentum=0.9)
for epoch in range(EPOCHS):
    for x, y in loader:
        critic_optim.zero_grad()
        critic_loss = ((model.out(torch.tanh(model.hidden(x))) - y) ** 2).mean()
        critic_loss.backward()
        critic_optim.step()
        actor_optim.zero_grad()
        actor_loss = -model.out(torch.tanh(model.hidden(x))).mean()
        actor_loss.backward()
        actor_optim.step()
        losses.append(critic_loss.item())
        losses.append(actor_loss.item())
"""

SUBMODULE_LOOPS = {
    "actor_critic": (ACTOR_CRITIC, "actor_optim.update(model.hidden, grads['hidden'])"),
    "encoder_only": (ENCODER_ONLY, "optimizer.update(model.hidden, grads['hidden'])"),
    "clip_over_the_submodule": (
        CLIP_OVER_THE_SUBMODULE,
        "optimizer.update(model.hidden, grads['hidden'])",
    ),
    "trainer_attribute": (
        TRAINER_ATTRIBUTE,
        "self.optimizer.update(self.net.hidden, grads['hidden'])",
    ),
}


@pytest.mark.parametrize("name", sorted(SUBMODULE_LOOPS))
def test_a_submodule_optimizer_matches_torch(name: str) -> None:
    source, update = SUBMODULE_LOOPS[name]
    translated, rel = translated_rel(source)
    assert BEGIN not in translated and update in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}\n{translated}"


def test_the_clip_over_the_submodule_clips_at_some_updates() -> None:
    """The clip is not vacuous: without it the run ends elsewhere."""
    unclipped = CLIP_OVER_THE_SUBMODULE.replace(
        "        torch.nn.utils.clip_grad_norm_(model.hidden.parameters(), 0.3)\n", ""
    )
    _, clipped_rel = translated_rel(CLIP_OVER_THE_SUBMODULE)
    assert worst_rel(run_torch_loop(CLIP_OVER_THE_SUBMODULE), run_torch_loop(unclipped)) > 1e-3
    assert clipped_rel < EXACT
