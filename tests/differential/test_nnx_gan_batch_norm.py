"""The GAN harness's NNX model keeps torch's BatchNorm running statistics: training-mode
forward passes move its running mean and its running variance (torch: toward the unbiased
batch variance) as torch's ``BatchNorm1d`` does, float64; and the compared state holds both."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import torch

from tests.differential.harness import EXACT, float64
from tests.differential.nnx_gan_loops import (
    D_SIZES,
    batches,
    nnx_copy,
    nnx_state,
    torch_models,
    torch_state,
)


def test_training_passes_move_the_running_variance_as_torch() -> None:
    with float64():
        _, torch_model = torch_models(0, norm=True)
        nnx_model = nnx_copy(torch_model, D_SIZES)
        for _, images, _, _ in batches(0):
            torch_model(torch.from_numpy(images))
            nnx_model(jnp.asarray(images))
        running_var = torch_model.norm.running_var.numpy()
        assert not np.allclose(running_var, 1.0)  # the passes moved it
        difference = np.abs(running_var - np.asarray(nnx_model.norm.var[...]))
        rel = float(np.max(difference) / np.max(np.abs(running_var)))
        assert rel < EXACT, f"rel {rel:.3e}"


def test_the_compared_state_ends_with_the_running_mean_and_variance() -> None:
    with float64():
        _, torch_model = torch_models(0, norm=True)
        torch_model(torch.from_numpy(batches(0)[0][1]))
        norm = torch_model.norm
        *_, mean, var = torch_state(torch_model)
        *_, nnx_mean, nnx_var = nnx_state(nnx_copy(torch_model, D_SIZES))
    assert np.array_equal(mean, norm.running_mean.numpy()) and np.array_equal(
        var, norm.running_var.numpy()
    )
    assert np.array_equal(nnx_mean, np.zeros(D_SIZES[1])) and np.array_equal(
        nnx_var, np.ones(D_SIZES[1])
    )
