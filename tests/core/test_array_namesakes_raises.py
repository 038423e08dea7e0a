"""The NNX layer's ``raises`` flag on array namesakes (s34): a torch call that raises on a JAX
array (loud) is told apart from one that computes other numbers (silent), measured on jax."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from ml_switcheroo.spec.errors import SemanticMapError
from tests.core.test_module_spec import nnx_map

# a call of each `array_namesakes` method as torch code writes it
TORCH_CALLS = {
    "std": (),
    "var": (),
    "max": (1,),
    "min": (1,),
    "sort": (0,),
    "repeat": (2, 1),
    "transpose": (0, 1),
    "nonzero": (),
    "size": (0,),
    "view": (-1,),
    # s36: torch's dim/keepdim; a JAX array's second positional argument is a dtype
    "sum": (1, True),
    "mean": (1, True),
}

# `array_lacks` entries a concrete JAX array has with torch's numbers, a traced one lacks (the
# loss function runs traced: AttributeError there, s36); measured below
CONCRETE_SAME = {"clone"}


def _raises(name: str, args: tuple[int, ...]) -> bool:
    x = jnp.arange(6.0).reshape(2, 3)
    try:
        getattr(x, name)(*args)
    except (AttributeError, TypeError, ValueError):
        return True
    return False


def test_every_namesake_is_measured_here() -> None:
    """Every namesake flagged silent (``raises: false``) is measured by the next test."""
    namesakes = nnx_map().array_namesakes
    assert set(TORCH_CALLS) <= set(namesakes)
    assert {n for n, e in namesakes.items() if not e.raises} <= set(TORCH_CALLS)


@pytest.mark.parametrize("name", sorted(TORCH_CALLS))
def test_raises_is_what_jax_does(name: str) -> None:
    entry = nnx_map().array_namesakes[name]
    assert entry.raises == _raises(name, TORCH_CALLS[name])


def test_every_lacked_method_raises() -> None:
    namesakes = nnx_map().array_namesakes
    lacked = [n for n, e in namesakes.items() if n not in TORCH_CALLS]
    assert lacked and all(namesakes[n].raises for n in lacked)
    assert not any(hasattr(jnp.zeros(2), n) for n in lacked if n not in CONCRETE_SAME)
    seen: list[bool] = []

    def traced(x: jax.Array) -> jax.Array:
        seen.extend(hasattr(x, n) for n in lacked)
        return x.sum()

    jax.grad(traced)(jnp.zeros(2))
    assert seen and not any(seen)


@pytest.mark.parametrize("name", sorted(CONCRETE_SAME))
def test_a_concrete_array_computes_the_same(name: str) -> None:
    x = jnp.arange(6.0).reshape(2, 3)
    assert name in nnx_map().array_namesakes
    assert bool(jnp.array_equal(getattr(x, name)(), x))


def test_raises_must_be_true_or_false(tmp_path: Path) -> None:
    with pytest.raises(SemanticMapError, match="'raises' must be true or false"):
        nnx_map(tmp_path, "array_namesakes: {std: {reason: r, raises: 'yes'}}\n")
