"""Hooks and ``p.detach_()`` in a file whose optimizer is translated (s24d). torch steps with
the gradient a hook returns (``p.register_hook(lambda g: g * 0.5)``) and ``p.detach_()`` on a
parameter freezes it; the gradient of a JAX loss function runs no hook and knows no
requires_grad. Measured at main on the codemod's own output (``opt = optax.sgd(...)``) against
torch, float64, 60 updates: the hook 0.75 relative off torch, ``params[0].detach_()`` 1.31.
Such a file's optimizers escape (the map's ``parameters.hook_methods`` and ``freeze_calls``);
a ``p.detach()`` (a new tensor, nothing frozen) keeps the translation, exact."""

from __future__ import annotations

import pytest

from tests.differential.harness import EXACT, measure, translate
from tests.differential.nnx_loops import translate_nnx
from tests.differential.test_nnx_loops import PLAIN_LOOP

OPTIMIZER = "opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)\n"

ESCAPING = {
    "tensor_hook": (
        "for p in params:\n    p.register_hook(lambda g: g * 0.5)\n",
        "this file registers a hook (`p.register_hook(lambda g: g * 0.5)`)",
    ),
    "post_accumulate_hook": (
        "for p in params:\n    p.register_post_accumulate_grad_hook(lambda p: None)\n",
        "this file registers a hook (`p.register_post_accumulate_grad_hook(lambda p: None)`)",
    ),
    "detach_": (
        "params[0].detach_()\n",
        "this file freezes parameters (`params[0].detach_()`)",
    ),
    # torch's global optimizer hooks run in every optimizer's step() (probe s31 G3: 9.73
    # relative off torch over 40 updates for a pre-hook scaling the lr)
    "global_optimizer_pre_hook": (
        "from torch.optim.optimizer import register_optimizer_step_pre_hook\n"
        "register_optimizer_step_pre_hook(hook)\n",
        "this file registers a hook (`register_optimizer_step_pre_hook(hook)`)",
    ),
    "global_optimizer_post_hook_under_another_name": (
        "from torch.optim.optimizer import register_optimizer_step_post_hook as on_step\n"
        "on_step(hook)\n",
        "this file registers a hook (`on_step(hook)`)",
    ),
    "global_optimizer_hook_through_the_module": (
        "torch.optim.optimizer.register_optimizer_step_pre_hook(hook)\n",
        "this file registers a hook",
    ),
}


@pytest.mark.parametrize("case", sorted(ESCAPING))
def test_a_hook_or_an_in_place_detach_escapes_the_optax_optimizer(case: str) -> None:
    line, said = ESCAPING[case]
    translation = translate("import torch\n" + line + OPTIMIZER)
    assert translation.escapes and not translation.conversions, translation.code
    assert said in translation.escapes[0].reason, translation.escapes[0].reason


def test_a_detached_copy_keeps_the_optax_translation_exact() -> None:
    """``p.detach()`` makes a new tensor and freezes nothing: the optimizer converts, to the
    same transformation as without it, which runs as torch does."""
    translation = translate("import torch\nkept = params[0].detach()\n" + OPTIMIZER)
    assert not translation.escapes, translation.code
    rel, plain = measure("import torch\n" + OPTIMIZER)
    line = "opt = optax.sgd(learning_rate=0.05, momentum=0.9)"
    assert line in translation.code and line in plain.code, translation.code
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize(
    ("helper", "said"),
    [
        (
            "def prepare(model):\n    model.out.register_full_backward_hook(hook)\n",
            "`model.out.register_full_backward_hook(hook)`",
        ),
        (
            "def prepare(model):\n    model.out.register_forward_hook(hook)\n",
            "`model.out.register_forward_hook(hook)`",
        ),
        ("def prepare(model):\n    model.out.bias.detach_()\n", "`model.out.bias.detach_()`"),
    ],
)
def test_a_module_hook_or_detach_in_a_helper_escapes_the_nnx_optimizer(
    helper: str, said: str
) -> None:
    """The NNX translation ran the helper on the NNX model and raised (no such method on an
    nnx.Module or a JAX array); now the optimizer escapes, naming the call."""
    source = PLAIN_LOOP.replace("import torch\n", f"import torch\n\n\n{helper}\n\n").replace(
        "model = make_model()\n", "model = make_model()\nprepare(model)\n"
    )
    translated = translate_nnx(source)
    assert "opt = nnx.Optimizer" not in translated and said in translated, translated


def test_a_global_optimizer_hook_escapes_the_nnx_optimizer() -> None:
    """Every torch optimizer's step() runs it; an nnx.Optimizer's update runs none."""
    source = PLAIN_LOOP.replace(
        "import torch\n",
        "import torch\nfrom torch.optim.optimizer import register_optimizer_step_pre_hook\n"
        "register_optimizer_step_pre_hook(hook)\n",
    )
    translated = translate_nnx(source)
    assert "opt = nnx.Optimizer" not in translated, translated
    assert "`register_optimizer_step_pre_hook(hook)`" in translated, translated
