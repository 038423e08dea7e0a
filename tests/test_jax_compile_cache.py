"""The session's JAX compilation cache (``tests/conftest.py``): fresh, and used by code run
eagerly, where a control-flow primitive is traced and compiled anew at each call."""

from __future__ import annotations

import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp


def cache() -> Path:
    return Path(jax.config.jax_compilation_cache_dir)


def test_the_cache_is_a_directory_of_the_session_not_the_users() -> None:
    assert cache().is_dir() and cache().name.startswith("jax-compiles-")
    assert cache().parent == Path(tempfile.gettempdir())


def test_an_eager_cond_retraced_at_each_call_is_compiled_once() -> None:
    def step(x: jax.Array) -> jax.Array:  # new branch functions each call, as in MultiSteps
        return jax.lax.cond(x.sum() > 0, lambda v: v * 2.5, lambda v: v - 1.5, x)

    x = jnp.arange(7.0) - 2.0
    step(x)
    entries = set(cache().iterdir())
    assert entries
    step(x)
    assert set(cache().iterdir()) == entries
