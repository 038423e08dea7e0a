"""GAN training loops (two models, two optimizers), run twice: the torch script as written
on torch models, and the NNX codemod's own translation of it on NNX models with the same
weights, in float64. What is compared: every recorded loss, the final parameters of both
models and the BatchNorm running mean and variance of each model that has one (``norm``: the
discriminator's, ``g_norm``: the generator's)."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from tests.differential.harness import float64
from tests.differential.nnx_loops import translate_nnx

LATENT, IMAGE, HIDDEN = 3, 4, 6
BATCHES = 12
BATCH = 5
EPOCHS = 3  # 36 iterations
# torch's BatchNorm running mean moves by `momentum`; flax's keeps `momentum` of the old one
TORCH_MOMENTUM = 0.1


class TorchMlp(torch.nn.Module):
    """Linear, tanh, (BatchNorm,) Linear."""

    def __init__(self, sizes: tuple[int, int, int], norm: bool = False) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(sizes[0], sizes[1])
        self.norm = torch.nn.BatchNorm1d(sizes[1], momentum=TORCH_MOMENTUM) if norm else None
        self.out = torch.nn.Linear(sizes[1], sizes[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.hidden(x))
        if self.norm is not None:  # after tanh: a shift of the input is not normalised away
            h = self.norm(h)
        return self.out(h)


class TorchBatchNorm(nnx.BatchNorm):
    """``nnx.BatchNorm`` whose running variance moves toward the unbiased batch variance (n /
    (n - 1) times the biased one), as torch's ``running_var`` does; both normalise a training
    batch with the biased one. flax 0.12.8 moves it toward the biased one."""

    def __call__(self, x: Any, use_running_average: bool | None = None, **kwargs: Any) -> Any:
        old = self.var[...]
        y = super().__call__(x, use_running_average, **kwargs)
        running = self.use_running_average if use_running_average is None else use_running_average
        if not running:
            n = x.size // x.shape[-1]  # the values each feature's statistics are taken over
            moved = self.var[...] - self.momentum * old  # (1 - momentum) * biased variance
            self.var[...] = self.momentum * old + moved * n / (n - 1)
        return y


class NnxMlp(nnx.Module):
    """The same network in NNX (the BatchNorm without scale and bias: torch's start at 1, 0)."""

    def __init__(self, sizes: tuple[int, int, int], norm: bool, rngs: nnx.Rngs) -> None:
        self.hidden = nnx.Linear(sizes[0], sizes[1], rngs=rngs, param_dtype=jnp.float64)
        self.norm = (
            TorchBatchNorm(
                sizes[1],
                momentum=1 - TORCH_MOMENTUM,
                epsilon=1e-5,
                use_scale=False,
                use_bias=False,
                dtype=jnp.float64,
                param_dtype=jnp.float64,
                rngs=rngs,
            )
            if norm
            else None
        )
        self.out = nnx.Linear(sizes[1], sizes[2], rngs=rngs, param_dtype=jnp.float64)

    def __call__(self, x: Any) -> Any:
        h = jnp.tanh(self.hidden(x))
        if self.norm is not None:
            h = self.norm(h)
        return self.out(h)

    def state_dict(self) -> Any:
        """The stand-in a port of ``torch.save(net.state_dict(), path)`` would write."""
        return nnx.state(self)


LAYERS = ("hidden", "out")
G_SIZES = (LATENT, HIDDEN, IMAGE)
D_SIZES = (IMAGE, HIDDEN, 1)


def torch_models(seed: int, norm: bool, g_norm: bool = False) -> tuple[TorchMlp, TorchMlp]:
    """The generator (with a BatchNorm when ``g_norm``) and the discriminator (``norm``)."""
    torch.manual_seed(seed)
    discriminator = TorchMlp(D_SIZES, norm)
    generator = TorchMlp(G_SIZES, g_norm)
    for model in (generator, discriminator):
        if model.norm is not None:  # no affine parameters: NnxMlp has none
            model.norm.weight.requires_grad_(False)
            model.norm.bias.requires_grad_(False)
    return generator, discriminator


def nnx_copy(model: TorchMlp, sizes: tuple[int, int, int]) -> NnxMlp:
    """An NNX network with ``model``'s weights."""
    net = NnxMlp(sizes, model.norm is not None, nnx.Rngs(0))
    for name in LAYERS:
        layer = getattr(model, name)
        getattr(net, name).kernel[...] = jnp.asarray(layer.weight.detach().numpy().T)
        getattr(net, name).bias[...] = jnp.asarray(layer.bias.detach().numpy())
    if net.norm is not None:  # flax 0.12.8 keeps the statistics in float32 whatever the dtypes
        net.norm.mean.value = jnp.zeros(sizes[1], jnp.float64)
        net.norm.var.value = jnp.ones(sizes[1], jnp.float64)
    return net


def torch_state(model: TorchMlp) -> list[np.ndarray]:
    arrays = [
        a.detach().numpy()
        for name in LAYERS
        for a in (getattr(model, name).weight.T, getattr(model, name).bias)
    ]
    if model.norm is not None:
        arrays += [model.norm.running_mean.numpy(), model.norm.running_var.numpy()]
    return arrays


def nnx_state(model: NnxMlp) -> list[np.ndarray]:
    arrays = [
        np.asarray(a[...])
        for name in LAYERS
        for a in (getattr(model, name).kernel, getattr(model, name).bias)
    ]
    if model.norm is not None:
        arrays += [np.asarray(model.norm.mean[...]), np.asarray(model.norm.var[...])]
    return arrays


def batches(seed: int) -> list[tuple[np.ndarray, ...]]:
    """(noise, real images, the `valid` label, the `fake` label) per batch."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.normal(size=(BATCH, LATENT)),
            rng.normal(size=(BATCH, IMAGE)),
            np.ones((BATCH, 1)),
            np.zeros((BATCH, 1)),
        )
        for _ in range(BATCHES)
    ]


@dataclass
class GanRun:
    g_losses: list[float]
    d_losses: list[float]
    state: list[np.ndarray]  # the generator's parameters, then the discriminator's


def run_torch_gan(source: str, norm: bool = False, seed: int = 0, g_norm: bool = False) -> GanRun:
    """``source`` run as written on torch models (``make_generator()``, ``make_discriminator()``)."""
    with float64():
        generator, discriminator = torch_models(seed, norm, g_norm)
        data = [tuple(torch.from_numpy(a) for a in batch) for batch in batches(seed)]
        scope = _scope(generator, discriminator, data, torch_label, torch.zeros)
        exec(compile(source, "<torch gan>", "exec"), scope)
        state = [*torch_state(generator), *torch_state(discriminator)]
        return GanRun(_floats(scope["g_losses"]), _floats(scope["d_losses"]), state)


def run_nnx_gan(translated: str, norm: bool = False, seed: int = 0, g_norm: bool = False) -> GanRun:
    """The translation run on NNX copies of the torch models ``run_torch_gan`` starts from."""
    with float64():
        torch_generator, torch_discriminator = torch_models(seed, norm, g_norm)
        generator = nnx_copy(torch_generator, G_SIZES)
        discriminator = nnx_copy(torch_discriminator, D_SIZES)
        data = [tuple(jnp.asarray(a) for a in batch) for batch in batches(seed)]
        scope = _scope(generator, discriminator, data, nnx_label, nnx_tensor)
        exec(compile(translated, "<nnx gan>", "exec"), scope)
        state = [*nnx_state(generator), *nnx_state(discriminator)]
        return GanRun(_floats(scope["g_losses"]), _floats(scope["d_losses"]), state)


class Fillable(np.ndarray):
    """A numpy array with torch's ``fill_`` (jax arrays have no in-place methods): the NNX
    run's label a script changes in place (``label.fill_(fake_label)``); for the old DCGAN
    example's buffers (``noise.data.resize_(n, k)``, ``.normal_(0, 1)``, ``.copy_(x)``) its
    ``.data`` is itself, ``resize_`` keeps its shape (the batches have one size) and
    ``normal_`` draws from torch's generator, the numbers the torch run's buffer gets."""

    def fill_(self, value: float) -> Fillable:
        self.fill(value)
        return self

    @property
    def data(self) -> Fillable:  # type: ignore[override]
        return self

    def resize_(self, *shape: int) -> Fillable:
        assert tuple(shape) == self.shape, (shape, self.shape)
        return self

    def copy_(self, source: Any) -> Fillable:
        self[...] = np.asarray(source)
        return self

    def normal_(self, mean: float, std: float) -> Fillable:
        self[...] = torch.empty(self.shape, dtype=torch.float64).normal_(mean, std).numpy()
        return self


def torch_label(value: float) -> torch.Tensor:
    """``make_label(value)`` of the torch run: a batch of labels ``value``."""
    return torch.full((BATCH, 1), value)


def nnx_label(value: float) -> Fillable:
    """``make_label(value)`` of the NNX run: the same labels, fillable in place."""
    return np.full((BATCH, 1), value).view(Fillable)


def nnx_tensor(*shape: int) -> Fillable:
    """``make_tensor(*shape)`` of the NNX run (``torch.zeros`` in torch's): zeros, changed in
    place by the script."""
    return np.zeros(shape).view(Fillable)


def _scope(
    generator: Any, discriminator: Any, data: list[Any], make_label: Any, make_tensor: Any
) -> dict[str, Any]:
    return {
        "make_label": make_label,
        "make_tensor": make_tensor,
        "make_generator": lambda: generator,
        "make_discriminator": lambda: discriminator,
        "loader": data,
        "g_losses": [],
        "d_losses": [],
        "EPOCHS": EPOCHS,
        "N_CRITIC": 3,
    }


def _floats(values: list[Any]) -> list[float]:
    return [float(v) for v in values]


def worst_gan_rel(torch_run: GanRun, nnx_run: GanRun) -> float:
    """The worst relative difference over both losses and both models' final state."""
    pairs = []
    for a, b in ((torch_run.g_losses, nnx_run.g_losses), (torch_run.d_losses, nnx_run.d_losses)):
        assert len(a) == len(b) and a, (len(a), len(b))
        pairs.append((np.asarray(a), np.asarray(b)))
    pairs += list(zip(torch_run.state, nnx_run.state, strict=True))
    return max(
        float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-300)) for a, b in pairs
    )


def translated_gan_rel(source: str, norm: bool = False, g_norm: bool = False) -> tuple[str, float]:
    """The NNX translation of ``source`` and its worst relative difference from torch."""
    translated = translate_nnx(source)
    torch_run = run_torch_gan(source, norm, g_norm=g_norm)
    return translated, worst_gan_rel(torch_run, run_nnx_gan(translated, norm, g_norm=g_norm))


@contextmanager
def torchvision_models(**functions: Any) -> Iterator[None]:
    """A ``torchvision.models`` holding ``functions`` while a script runs (a model of one of
    the map's ``model_libraries``; torchvision itself is not installed)."""
    models = types.ModuleType("torchvision.models")
    for name, function in functions.items():
        setattr(models, name, function)
    package = types.ModuleType("torchvision")
    package.models = models  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in ("torchvision", "torchvision.models")}
    sys.modules.update({"torchvision": package, "torchvision.models": models})
    try:
        yield
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module
