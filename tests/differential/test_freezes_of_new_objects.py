"""Freezes of objects no optimizer trains (issues 12 and 13, held-out trial s39 item 2).

DiT freezes its EMA, ``ema = deepcopy(model)``, through ``requires_grad(ema, False)`` (a
function of the file freezing what it is given) and moves it towards the model with
``update_ema`` (``OrderedDict(ema.named_parameters())``, in-place ``mul_``/``add_``);
jeonsworld's PGD attack writes ``adv_x.requires_grad = False`` on an input tensor made by
``x.detach().clone()``. Both escaped every optimizer of their file ("this file freezes
parameters"); ``analysis/freeze_reach.py`` proves neither touches a parameter an optimizer
trains, so they convert: the codemod's own output against torch, float64, 36 updates (NNX:
every recorded loss, the EMA's among them, and the final weights; optax: the trajectory of
its transformation), with the user's port of the torch-only helpers (JAX has no
``requires_grad``). Trap twins, where the freeze may reach a trained parameter, escape naming
it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import (
    EXACT,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    run_torch,
    translate,
)
from tests.differential.nnx_loops import (
    converted,
    converted_helper_main,
    helper_package,
    run_nnx_loop,
    run_torch_loop,
    torch_batches,
    torch_net,
    translate_nnx,
    translated_package_runs,
    worst_rel,
)
from tests.support import write_package

HELPERS = """\
def requires_grad(model, flag=True):
    for p in model.parameters():
        p.requires_grad = flag


@torch.no_grad()
def update_ema(ema_model, model, decay=0.5):
    ema_params = OrderedDict(ema_model.named_parameters())
    model_params = OrderedDict(model.named_parameters())
    for name, param in model_params.items():
        ema_params[name].mul_(decay).add_(param.data, alpha=1 - decay)
"""

NNX_HELPERS = """\
def requires_grad(model, flag=True):
    pass


def update_ema(ema_model, model, decay=0.5):
    moved = jax.tree.map(
        lambda e, p: e * decay + p * (1 - decay),
        nnx.state(ema_model, nnx.Param),
        nnx.state(model, nnx.Param),
    )
    nnx.update(ema_model, moved)
"""

EMA = f"""\
from collections import OrderedDict
from copy import deepcopy

import torch


{HELPERS}

def train():
    model = make_model()
    ema = deepcopy(model)
    requires_grad(ema, False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0)
    update_ema(ema, model, decay=0)
    ema.eval()
    for epoch in range(EPOCHS):
        for x, y in loader:
            optimizer.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            update_ema(ema, model)
            losses.append(loss.item())
        losses.append(((ema(x) - y) ** 2).mean().item())
    checkpoint = {{"ema": ema.state_dict()}}


SCRIPT = __name__ == "__main__"  # DiT runs main() under this test; the string names nothing
train()
"""


def _nnx_port(translated: str) -> str:
    """The user's port of the torch-only helpers (the codemod leaves them as written)."""
    assert HELPERS in translated, translated
    ported = translated.replace(HELPERS, NNX_HELPERS)
    return "import jax\n" + ported.replace('{"ema": ema.state_dict()}', "nnx.state(ema)")


def test_a_frozen_ema_copy_keeps_the_exact_nnx_translation() -> None:
    translated = translate_nnx(EMA)
    assert BEGIN not in translated, translated
    assert "optimizer = nnx.Optimizer(model" in translated, translated
    torch_run = run_torch_loop(EMA)
    nnx_run = run_nnx_loop(EMA, _nnx_port(translated))
    assert len(torch_run.losses) == 36 + 3
    assert worst_rel(torch_run, nnx_run) < EXACT


PGD = """\
import torch


def make_noise(x, epsilon=0.03):
    delta = torch.zeros_like(x)
    delta.uniform_(-epsilon, epsilon)
    return torch.clamp(delta + x, -1, 1)


def perturb(x, eps=0.03):
    adv_x = make_noise(x.detach().clone(), eps)
    adv_x.requires_grad = False
    adv_x = adv_x + 0.5 * eps * torch.sign(adv_x)
    return torch.clamp(adv_x, -1, 1)


def train():
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    for epoch in range(EPOCHS):
        for x, y in loader:
            noised = perturb(x)
            optimizer.zero_grad()
            loss = ((model(noised) - y) ** 2).mean()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())


train()
"""

# The user's port of the attack: the same numbers (a fixed pattern instead of uniform noise,
# in both runs), on JAX arrays.
TORCH_NOISE = "    delta.uniform_(-epsilon, epsilon)\n"
FIXED_NOISE = (
    "    delta.copy_(torch.linspace(-epsilon, epsilon, delta.numel()).reshape(delta.shape))\n"
)
NNX_PGD = """\
def make_noise(x, epsilon=0.03):
    delta = jnp.linspace(-epsilon, epsilon, x.size).reshape(x.shape)
    return jnp.clip(delta + x, -1, 1)


def perturb(x, eps=0.03):
    adv_x = make_noise(x, eps)
    adv_x = adv_x + 0.5 * eps * jnp.sign(adv_x)
    return jnp.clip(adv_x, -1, 1)
"""


def test_a_frozen_input_tensor_keeps_the_exact_nnx_translation() -> None:
    source = PGD.replace(TORCH_NOISE, FIXED_NOISE)
    translated = translate_nnx(source)
    assert BEGIN not in translated, translated
    assert "optimizer = nnx.Optimizer(model" in translated, translated
    start, end = translated.index("def make_noise"), translated.index("def train")
    ported = "import jax.numpy as jnp\n" + translated[:start] + NNX_PGD + "\n\n" + translated[end:]
    torch_run = run_torch_loop(source)
    nnx_run = run_nnx_loop(source, ported)
    assert len(torch_run.losses) == 36
    assert worst_rel(torch_run, nnx_run) < EXACT


class _Holder(torch.nn.Module):
    """A model whose parameters are the harness's tensors (``deepcopy`` copies them)."""

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        super().__init__()
        self.tensors = tensors

    def parameters(self, recurse: bool = True) -> Any:
        return iter(self.tensors)

    def named_parameters(self, *args: Any, **kwargs: Any) -> Any:
        return ((str(i), t) for i, t in enumerate(self.tensors))


OPTAX_EMA = f"""\
from collections import OrderedDict
from copy import deepcopy

import torch


{HELPERS}

def keep_average(model):
    ema = deepcopy(model)
    requires_grad(ema, False)
    update_ema(ema, model, decay=0)


keep_average(model)
opt = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0)
"""

OPTAX_PGD = PGD.replace(
    "\n\ndef train():",
    "\n\nnoised = perturb(data)\nopt = torch.optim.SGD(model.parameters(), "
    "lr=0.05, momentum=0.9)\n\n\ndef train():",
).replace("train()\n", "")


@pytest.mark.parametrize("source", [OPTAX_EMA, OPTAX_PGD], ids=["ema", "input"])
def test_the_optax_translation_is_exact(source: str) -> None:
    """The freeze runs in torch (on the copy, on the input); optax's transformation follows
    torch's trajectory exactly."""
    translation = translate(source)
    apis = {"torch.optim.SGD", "torch.optim.AdamW"}
    constructors = [r for r in translation.conversions if r.api in apis]
    assert constructors and not any(r.api in apis for r in translation.escapes)
    with float64():
        problem = linear_problem()
        data = torch.ones(3, dtype=torch.float64)

        def make(plist: list[torch.Tensor]) -> Any:
            return execute(source, {"model": _Holder(plist), "data": data})["opt"]

        torch_traj = run_torch(problem, make)
        tx = execute(translation.code, {"model": _Holder([]), "data": data})["opt"]
        optax_traj, _ = run_optax(problem, tx)
    assert rel_error(problem, torch_traj, optax_traj) < EXACT


LOAD_BACK = EMA.replace(
    "        losses.append(((ema(x) - y) ** 2).mean().item())\n",
    "        losses.append(((ema(x) - y) ** 2).mean().item())\n"
    "        model.load_state_dict(ema.state_dict())\n",
)


def test_loading_the_frozen_copy_back_keeps_torch_training_every_parameter() -> None:
    """``model.load_state_dict(ema.state_dict())`` copies values, not flags (torch 2.x,
    measured): the model keeps ``requires_grad`` and torch's numbers are those of the same
    script without the freeze, so the optimizer converts."""
    with float64():
        model = torch_net()
        ema = torch_net(1)
        for p in ema.parameters():
            p.requires_grad = False
        model.load_state_dict(ema.state_dict())
        assert all(p.requires_grad for p in model.parameters())
    unfrozen = LOAD_BACK.replace("    requires_grad(ema, False)\n", "")
    frozen_run, unfrozen_run = run_torch_loop(LOAD_BACK), run_torch_loop(unfrozen)
    assert frozen_run.losses == unfrozen_run.losses
    translated = translate_nnx(LOAD_BACK)
    assert "optimizer = nnx.Optimizer(model" in translated, translated
    assert len(torch_batches()) * 3 + 3 == len(frozen_run.losses)
    load = "model.load_state_dict(ema.state_dict())"
    ported = _nnx_port(translated).replace(load, "nnx.update(model, nnx.state(ema, nnx.Param))")
    assert worst_rel(frozen_run, run_nnx_loop(LOAD_BACK, ported)) < EXACT


FREEZES = "this file freezes parameters"
FROZEN_COPY = "    requires_grad(ema, False)\n"
TRAPS = {
    # the freeze reaches the trained model through an alias
    "alias": (FROZEN_COPY, "    alias = model\n    requires_grad(alias, False)\n"),
    # no copy: the EMA is the model
    "no_copy": ("    ema = deepcopy(model)\n", "    ema = model\n"),
    # a container holding both
    "container": (FROZEN_COPY, "    for m in [ema, model]:\n        m.requires_grad_(False)\n"),
    # the copy is trained too
    "copy_trained": (
        "    ema.eval()\n",
        "    ema.eval()\n    ema_opt = torch.optim.SGD(ema.parameters(), lr=0.1)\n",
    ),
    # the copy's Parameters become the model's
    "assigned_back": (
        "    ema.eval()\n",
        "    ema.eval()\n    model.load_state_dict(ema.state_dict(keep_vars=True), assign=True)\n",
    ),
    # the freezing function is called on the model
    "freezer_on_model": (FROZEN_COPY, FROZEN_COPY + "    requires_grad(model, False)\n"),
    # frozen, then re-enabled
    "reenabled": (
        FROZEN_COPY,
        "    for p in model.parameters():\n        p.requires_grad = False\n"
        "    for p in model.parameters():\n        p.requires_grad = True\n",
    ),
    # a parameter of the model, under a tensor's name
    "parameter": (FROZEN_COPY, "    w = model.out.weight\n    w.requires_grad = False\n"),
    "input_named_parameter": (
        FROZEN_COPY,
        "    adv_x = model.out.weight\n    adv_x.requires_grad = False\n",
    ),
    # a loop's parameter read after the loop
    "leaked_parameter": (
        FROZEN_COPY,
        "    for p in ema.parameters():\n        p.requires_grad = False\n    keep = [p]\n",
    ),
    # the freezing function called by a computed name, on the model
    "computed_call": (FROZEN_COPY, FROZEN_COPY + '    globals()["requires_grad"](model, False)\n'),
    # probe s40 p40a: deepcopy's memo keeps the model's head in the copy
    "memo": (
        "    ema = deepcopy(model)\n",
        "    ema = deepcopy(model, {id(model.out): model.out})\n",
    ),
    # probe s40 p40a: the freezing function called through the module object
    "sys_modules": (
        FROZEN_COPY,
        FROZEN_COPY + "    import sys\n    sys.modules[__name__].requires_grad(model.out, False)\n",
    ),
    # probe s40 p40a: a class deciding how it is pickled decides what deepcopy returns
    "reduce": (
        "\n\ndef train():",
        "\n\nclass Shared(torch.nn.Module):\n    def __reduce__(self):\n"
        "        return (SHARED.get, ('out',))\n\n\ndef train():",
    ),
    "copyreg": ("    ema = deepcopy(model)\n", "    import copyreg\n    ema = deepcopy(model)\n"),
    # probe s40 p40a 3c, 3d: a copy hook bound by assignment; deepcopy's own table
    "deepcopy_attribute": (
        "\n\ndef train():",
        "\n\ndef _keep(self, memo):\n    return self\n\n\nclass Shared(torch.nn.Module):\n"
        "    __deepcopy__ = _keep\n\n\ndef train():",
    ),
    "deepcopy_dispatch": (
        "    ema = deepcopy(model)\n",
        "    import copy\n    copy._deepcopy_dispatch[type(model)] = lambda m, memo: m\n"
        "    ema = deepcopy(model)\n",
    ),
    # the copy leaves the function
    "returned": ("    checkpoint = ", "    return ema\n    checkpoint = "),
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_a_freeze_that_may_reach_a_trained_parameter_escapes(trap: str) -> None:
    source = EMA.replace(*TRAPS[trap])
    assert source != EMA
    translated = translate_nnx(source)
    assert "optimizer = nnx.Optimizer" not in translated, translated
    assert FREEZES in translated, translated


GAN = f"""\
from collections import OrderedDict

import torch


{HELPERS}

def train():
    generator = make_model()
    discriminator = make_model()
    g_optim = torch.optim.Adam(generator.parameters(), lr=0.01)
    d_optim = torch.optim.Adam(discriminator.parameters(), lr=0.01)
    for x, y in loader:
        requires_grad(generator, False)
        requires_grad(discriminator, True)
        d_loss = (discriminator(generator(x)) ** 2).mean()
        d_optim.zero_grad()
        d_loss.backward()
        d_optim.step()
        requires_grad(generator, True)
        requires_grad(discriminator, False)
        g_loss = ((discriminator(generator(x)) - y) ** 2).mean()
        g_optim.zero_grad()
        g_loss.backward()
        g_optim.step()


train()
"""


def test_gan_toggling_escapes_both_optimizers() -> None:
    """stylegan2: torch skips the frozen model's parameters between the two steps."""
    translated = translate_nnx(GAN)
    assert "= nnx.Optimizer(" not in translated, translated
    assert translated.count(FREEZES) == 2, translated


CLONED = ("    adv_x = make_noise(x.detach().clone(), eps)\n",)
PGD_TRAPS: dict[str, Any] = {
    # the optimizer trains tensors that may be the frozen one
    "raw_tensors": (
        "torch.optim.SGD(model.parameters(), ",
        "torch.optim.SGD([w for w in params], ",
    ),
    # a function of the file named `clone` may return anything
    "own_clone": (
        ("\n\ndef train():", "\n\ndef clone(x):\n    return x\n\n\ndef train():"),
        (CLONED[0], "    adv_x = x.clone()\n"),
    ),
    # the frozen tensor is an argument (it may be a parameter)
    "argument": ("    adv_x = make_noise(x.detach().clone(), eps)\n", "    adv_x = x\n"),
    # probe s40 p40a items 11-13: the frozen tensor handed on (a library may register it as
    # a Parameter keeping its flag) or returned
    "handed_on": (
        "    adv_x.requires_grad = False\n",
        "    adv_x.requires_grad = False\n    install_weight(MODEL, 'weight', adv_x)\n",
    ),
    "returned_frozen": ("    return torch.clamp(adv_x, -1, 1)\n", "    return adv_x\n"),
    # the name is bound again by an import (a library's tensor)
    "imported_again": (
        "    adv_x = make_noise(x.detach().clone(), eps)\n",
        "    adv_x = make_noise(x.detach().clone(), eps)\n    from weights import adv_x\n",
    ),
    # a tensor class of the repository may make torch's functions return anything
    "torch_function": (
        "\n\ndef train():",
        "\n\nclass Wrapped(torch.Tensor):\n    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        return PARAMETER\n\n\ndef train():",
    ),
    # probe s40 p40a: a plain tensor registered straight into a module's parameters
    "raw_registration": (
        "lr=0.05, momentum=0.9)\n",
        "lr=0.05, momentum=0.9)\nmodel.out._parameters['weight'] = noised\n",
    ),
    # probe s40 p40a 8, 9, 10: `clone` bound by assignment; a tensor made a Parameter object
    # or swapped into one (its flags travel)
    "clone_bound": (
        (
            "\n\ndef train():",
            "\n\nclass Twin(torch.nn.Module):\n    clone = print\n\n\ndef train():",
        ),
        (CLONED[0], "    adv_x = x.clone()\n"),
    ),
    "as_subclass": (
        "lr=0.05, momentum=0.9)\n",
        "lr=0.05, momentum=0.9)\nmodel.out.weight = noised.as_subclass(torch.nn.Parameter)\n",
    ),
    "class_swap": (
        "lr=0.05, momentum=0.9)\n",
        "lr=0.05, momentum=0.9)\nnoised.__class__ = torch.nn.Parameter\n",
    ),
    "swap_tensors": (
        "lr=0.05, momentum=0.9)\n",
        "lr=0.05, momentum=0.9)\ntorch.utils.swap_tensors(model.out.weight, noised)\n",
    ),
    # probe s40 p40a: `out=` returns the tensor it is given
    "out_keyword": (
        "    adv_x = make_noise(x.detach().clone(), eps)\n",
        "    adv_x = torch.zeros(3, out=x)\n",
    ),
    # the optimizer is given more tensors: the new one may be among them
    "param_group_added": (
        "lr=0.05, momentum=0.9)\n",
        "lr=0.05, momentum=0.9)\nopt.add_param_group({'params': [noised]})\n",
    ),
    "params_appended": (
        "lr=0.05, momentum=0.9)\n",
        "lr=0.05, momentum=0.9)\nopt.param_groups[0]['params'].append(noised)\n",
    ),
}


@pytest.mark.parametrize("trap", sorted(PGD_TRAPS))
def test_an_input_freeze_that_may_reach_a_trained_tensor_escapes(trap: str) -> None:
    changes = PGD_TRAPS[trap]
    source = OPTAX_PGD
    for old, new in changes if isinstance(changes[0], tuple) else [changes]:
        assert old in source, old
        source = source.replace(old, new)
    translation = translate(source)
    escaped = [r for r in translation.escapes if r.api == "torch.optim.SGD"]
    assert escaped and FREEZES in escaped[0].reason, translation.code


IMPORTED_COPY = """\
import torch


def change(model):
    copy = deepcopy(model)
    copy.requires_grad_(False)
"""


def test_an_imported_file_freezing_a_new_model_keeps_the_exact_nnx_translation(
    tmp_path: Path,
) -> None:
    """The cross-file check reads the freezes of ``helpers.py`` as this file's own: a new
    model kept to itself touches none of ``main.py``'s optimizer."""
    package = "new_objects_imported"
    helper = "from copy import deepcopy\n\n" + IMPORTED_COPY
    files = helper_package(package, helper)
    outputs, torch_run, nnx_run = translated_package_runs(
        tmp_path,
        package,
        files,
        lambda outputs: {**outputs, "helpers.py": "def change(m):\n    pass\n"},
    )
    assert BEGIN not in outputs["main.py"], outputs["main.py"]
    assert "opt = nnx.Optimizer(model" in outputs["main.py"], outputs["main.py"]
    assert worst_rel(torch_run, nnx_run) < EXACT


@pytest.mark.parametrize(
    "change",
    [
        ("    copy = deepcopy(model)\n", "    copy = model\n"),
        # a new tensor's freeze in another file counts: whether it may reach an optimizer
        # depends on what the optimizer trains, which a dry run of that file does not ask
        (
            "    copy = deepcopy(model)\n",
            "    copy = deepcopy(model)\n    probe = torch.zeros(3).clone()\n    probe.requires_grad = False\n",
        ),
    ],
    ids=["alias", "new_tensor"],
)
def test_an_imported_file_freezing_what_may_be_a_trained_parameter_escapes(
    tmp_path: Path, change: tuple[str, str]
) -> None:
    package = f"new_objects_imported_{len(change[1])}"
    helper = "from copy import deepcopy\n\n" + IMPORTED_COPY.replace(*change)
    translated = converted_helper_main(tmp_path, package, helper)
    assert "opt = nnx.Optimizer" not in translated, translated
    assert f"in `{package}/helpers.py:" in translated, translated


RUN = """\
import torch

from PACKAGE import tensors  # noqa: F401
from PACKAGE.steps import train


def main(model, loader, epochs):
    losses = []
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    probe = torch.zeros(3).clone()
    probe.requires_grad = False
    for epoch in range(epochs):
        train(model, opt, loader, losses)
    return losses
"""

STEPS = """\
def train(model, opt, loader, losses):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""


def test_a_function_stepping_an_optimizer_its_file_escapes_for_a_freeze_keeps_it_torch(
    tmp_path: Path,
) -> None:
    """``main.py``'s new tensor is proven so alone (its dry run translates the optimizer), not
    with the repository (a file it imports defines a ``clone``): ``main.py`` escapes its
    optimizer, so ``steps.py`` must keep ``opt``'s torch calls (``CrossFile.
    freezes_read_alone``): a deleted ``zero_grad()`` would sum every batch's gradients."""
    package = "new_objects_dry_run"
    files = {
        "main.py": RUN.replace("PACKAGE", package),
        "steps.py": STEPS,
        "tensors.py": "class Box:\n    def clone(self):\n        return self\n",
    }
    write_package(tmp_path, files, package)
    outputs = converted(tmp_path, package)
    assert "opt = nnx.Optimizer" not in outputs["main.py"], outputs["main.py"]
    assert "opt.zero_grad()" in outputs["steps.py"], outputs["steps.py"]
    assert "nnx.value_and_grad" not in outputs["steps.py"], outputs["steps.py"]


OWN_FRESH = {
    "optim_utils.py": "import torch\n\n\ndef perturb(x):\n    adv = x.detach().clone()\n"
    "    adv.requires_grad = False\n    return adv * 1.0\n\n\ndef build(model):\n"
    "    return torch.optim.SGD(model.parameters(), lr=0.1)\n",
    "train.py": "from PACKAGE.optim_utils import build, perturb\n\n\ndef main(model, loader):\n"
    "    opt = build(model)\n    return perturb\n",
}


def test_a_file_s_own_new_tensor_is_not_blamed_on_a_file_importing_it(tmp_path: Path) -> None:
    """Probe s40 p40a item 6: the importing file's freezes were read through the files it
    imports, this one among them, where a new tensor's freeze counts: the escape named "a
    file importing this file" for this file's own freeze, already judged."""
    package = "new_objects_own_fresh"
    files = {k: v.replace("PACKAGE", package) for k, v in OWN_FRESH.items()}
    write_package(tmp_path, files, package)
    translated = converted(tmp_path, package)["optim_utils.py"]
    assert "`adv.requires_grad = False`" not in translated, translated


REGISTRY_MAIN = """\
import importlib
from copy import deepcopy

import torch


def main(model, loader, epochs):
    model = importlib.import_module("PACKAGE.heads").build(model)
    ema = deepcopy(model)
    ema.requires_grad_(False)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    return opt
"""

HEADS = """\
import torch


class SharedHead(torch.nn.Module):
    def __deepcopy__(self, memo):
        return self


def build(model):
    return model
"""


def test_a_copy_hook_in_a_file_reached_by_name_escapes(tmp_path: Path) -> None:
    """Probe s40 p40a item 7: ``heads.py`` is imported by name (a registry), linked to no
    file by an import; its ``__deepcopy__`` still decides what ``deepcopy`` returns."""
    package = "new_objects_registry"
    files = {"main.py": REGISTRY_MAIN.replace("PACKAGE", package), "heads.py": HEADS}
    write_package(tmp_path, files, package)
    translated = converted(tmp_path, package)["main.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    assert FREEZES in translated, translated
