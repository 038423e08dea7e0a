"""optimizer.TorchToNNX: escapes of real GAN steps (PyTorch-GAN's CycleGAN) say what keeps
the step from rendering: the escaped constructor of the stepped optimizer, by its line, and a
method of an unknown object (a replay buffer) called in the loss, not "a model"."""

from __future__ import annotations

from tests.support import step_escaped_with

MODELS = """\
import itertools
import torch

G_AB = make_generator()
G_BA = make_generator()
D_A = make_discriminator()
optimizer_G = torch.optim.Adam(itertools.chain(G_AB.parameters(), G_BA.parameters()), lr=1e-3)
optimizer_D_A = torch.optim.Adam(D_A.parameters(), lr=1e-3)
fake_A_buffer = ReplayBuffer()
"""

D_STEP = """\
for real_A, fake_A, valid, fake in loader:
    optimizer_D_A.zero_grad()
    loss_real = ((D_A(real_A) - valid) ** 2).mean()
    fake_A_ = fake_A_buffer.push_and_pop(fake_A)
    loss_fake = ((D_A(fake_A_.detach()) - fake) ** 2).mean()
    loss_D_A = (loss_real + loss_fake) / 2
    loss_D_A.backward()
    optimizer_D_A.step()
"""

G_STEP = """\
for real_A, real_B in loader:
    optimizer_G.zero_grad()
    loss_G = ((G_BA(G_AB(real_A)) - real_A) ** 2).mean()
    loss_G.backward()
    optimizer_G.step()
"""


def test_a_buffer_method_in_the_loss_is_named_as_a_method() -> None:
    output = step_escaped_with(
        MODELS + D_STEP,
        "the loss calls `fake_A_buffer.push_and_pop(fake_A)`, a method of `fake_A_buffer` "
        "(bound to `ReplayBuffer()` at ",
    )
    assert "the loss calls `fake_A_buffer` too" not in output, output


def test_a_buffer_method_on_an_undetached_value_escapes_alike() -> None:
    step_escaped_with(
        MODELS + D_STEP.replace("fake_A_.detach()", "fake_A_"),
        "so it can neither run in the traced loss function nor move out of it",
    )


def test_a_buffer_called_itself_keeps_the_model_wording() -> None:
    step_escaped_with(
        MODELS + D_STEP.replace("fake_A_buffer.push_and_pop(fake_A)", "fake_A_buffer(fake_A)"),
        "the loss calls `fake_A_buffer` too (several models in one loss, or an unknown loss)",
    )


def test_an_escaped_constructor_is_named_with_its_line() -> None:
    step_escaped_with(
        MODELS + G_STEP,
        "the optimizer `optimizer_G` is not one built here and translated: "
        "`torch.optim.Adam(itertools.chain(G_AB...` (example.py:7), the one value reaching it, "
        "is not translated to an nnx.Optimizer",
    )


def test_several_values_of_the_optimizer_are_listed() -> None:
    rebound = MODELS + "if flag:\n    optimizer_D_A = make_optimizer()\n" + D_STEP
    step_escaped_with(rebound, "`optimizer_D_A` holds more than one value (")


# PyTorch-GAN's wgan_gp (2018): the critic's last backward pass is the gradient penalty's, a
# function of the file given the critic
GP_HELPER = """\
def compute_gradient_penalty(D, real_samples):
    interpolates = real_samples.requires_grad_(True)
    gradients = torch.autograd.grad(D(interpolates).sum(), interpolates, create_graph=True)[0]
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean()
"""

GP_STEP = """\
for real_imgs, z in loader:
    optimizer_D.zero_grad()
    gradient_penalty = compute_gradient_penalty(discriminator, real_imgs)
    gradient_penalty.backward()
    optimizer_D.step()
"""

GP_MODELS = """\
import torch

discriminator = make_discriminator()
optimizer_D = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
"""


def test_a_model_passed_to_a_function_of_the_file_names_the_call_and_why() -> None:
    step_escaped_with(
        GP_MODELS + GP_HELPER + GP_STEP,
        "the forward pass does not call the trained model `discriminator`: it passes it to "
        "`compute_gradient_penalty(discriminato...`; the step renders a loss that calls the model "
        "itself (a function given the model is not followed: `compute_gradient_penalty` has a "
        "call of `real_samples.requires_grad_`",
    )


def test_a_model_passed_to_an_imported_function_names_the_call() -> None:
    imported = "from penalties import compute_gradient_penalty\n" + GP_MODELS + GP_STEP
    step_escaped_with(
        imported,
        "it passes it to `compute_gradient_penalty(discriminato...`; the step renders a loss "
        "that calls the model itself (a function given the model is not followed: "
        "`compute_gradient_penalty` is not a module-level function of this file)",
    )


def test_a_step_passing_another_value_keeps_the_plain_reason() -> None:
    other = (GP_MODELS + GP_HELPER + GP_STEP).replace(
        "compute_gradient_penalty(discriminator, real_imgs)",
        "compute_gradient_penalty(critic, real_imgs)",
    )
    output = step_escaped_with(other, "does not call the trained model `discriminator`")
    assert "it passes it to" not in output, output


def test_an_optimizer_rebound_by_a_tuple_target_says_its_value_is_not_followed() -> None:
    prepared = MODELS.replace(
        "fake_A_buffer = ReplayBuffer()\n",
        "G_AB, optimizer_G = accelerator.prepare(G_AB, optimizer_G)\n",
    )
    step_escaped_with(
        prepared + G_STEP,
        "no one value reaches `optimizer_G` (bound 2 time(s) in its scope, 1 by a statement "
        "whose value is not followed",
    )


# A forward pass the step does not see whole says where the model's call went (probe s32's
# misleading reasons: "the forward pass does not call the trained model" alone).
HEADER = "import torch\nimport torch.nn.functional as F\n\n"


def test_a_loss_built_in_a_loop_with_a_jump_names_the_loop() -> None:
    """(A loop of plain assignments runs in the loss function: ``test_nnx_loss_loops.py``.)"""
    step_escaped_with(
        HEADER + "def train(model, loader, targets):\n"
        "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    for x, y in loader:\n"
        "        opt.zero_grad()\n"
        "        out = model(x)\n"
        "        style = 0.0\n"
        "        for t in targets:\n"
        "            if t is None:\n"
        "                break\n"
        "            style += F.mse_loss(out, t)\n"
        "        loss = style * 2.0\n"
        "        loss.backward()\n"
        "        opt.step()\n",
        "it reads `style`, computed by the `for` statement at ",
    )


def test_a_def_between_the_forward_pass_and_the_loss_names_the_def() -> None:
    """Probe s34: the reason said `out`, computed by `model(x)` in the step, was computed
    "before the step"."""
    output = step_escaped_with(
        HEADER + "def train(model, loader):\n"
        "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    for x, y in loader:\n"
        "        opt.zero_grad()\n"
        "        out = model(x)\n"
        "        def crit(t):\n"
        "            return ((t - y) ** 2).mean()\n"
        "        loss = crit(out)\n"
        "        loss.backward()\n"
        "        opt.step()\n",
        "it reads `crit`, computed by the `def` statement at ",
    )
    assert "before the step" not in output, output


def test_a_loss_appended_to_a_list_names_the_append() -> None:
    step_escaped_with(
        HEADER + "def train(model, loader):\n"
        "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    for x, y in loader:\n"
        "        terms = []\n"
        "        opt.zero_grad()\n"
        "        terms.append(F.mse_loss(model(x), y))\n"
        "        loss = sum(terms)\n"
        "        loss.backward()\n"
        "        opt.step()\n",
        "it reads `terms`, changed by `terms.append(F.mse_loss(model(x), y))` at ",
    )


def test_a_loss_from_a_method_of_self_names_the_method() -> None:
    step_escaped_with(
        HEADER + "class Trainer:\n"
        "    def __init__(self, model):\n"
        "        self.model = model\n"
        "        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)\n\n"
        "    def compute_loss(self, x, y):\n"
        "        return F.mse_loss(self.model(x), y)\n\n"
        "    def fit(self, loader):\n"
        "        for x, y in loader:\n"
        "            self.opt.zero_grad()\n"
        "            loss = self.compute_loss(x, y)\n"
        "            loss.backward()\n"
        "            self.opt.step()\n",
        "it calls `self.compute_loss(x, y)`, code of this file the step does not follow into",
    )


def test_a_step_under_no_grad_names_the_with() -> None:
    step_escaped_with(
        HEADER + "def train(model, loader):\n"
        "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    for x, y in loader:\n"
        "        opt.zero_grad()\n"
        "        loss = F.mse_loss(model(x), y)\n"
        "        loss.backward()\n"
        "        with torch.no_grad():\n"
        "            opt.step()\n",
        "the step runs under `with torch.no_grad():`, which the NNX step does not render",
    )


def test_a_mode_switch_before_the_forward_pass_says_before() -> None:
    step_escaped_with(
        HEADER + "def train(model, loader):\n"
        "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    for x, y in loader:\n"
        "        opt.zero_grad()\n"
        "        model.eval()\n"
        "        loss = F.mse_loss(model(x), y)\n"
        "        loss.backward()\n"
        "        opt.step()\n",
        "`model.eval()` uses the model before the forward pass",
    )
