"""NNX: the names the map's array templates import in a training step (``jnp`` of
``torch.cat`` -> ``jnp.concatenate``, ``jax`` of ``torch.sigmoid`` -> ``jax.nn.sigmoid``) must
mean those modules where the step is written, as ``nnx`` and ``optax`` must where the optimizer
is (``the name ... is already bound here to something else``, checked by the constructor's
hook).

Probe s40: the step region's imports were never checked. A script binding ``jnp`` (a module
variable, a loop variable) converted to code calling ``0.0.concatenate`` (AttributeError); one
importing ``numpy as jnp`` got ``import jax.numpy as jnp`` added after it, so every other use
of its ``jnp`` (NumPy) silently became ``jax.numpy`` (float32 by default, immutable arrays).
Each escapes now, naming the name; twins: the import already there (``import jax.numpy as
jnp``, ``from jax import numpy as jnp``, ``import jax.nn``), a name the templates do not use, ``jnp`` bound only in another function: convert,
< 1e-9 against torch (float64, 36 updates)."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP

LOSS = "        loss = ((out - y) ** 2).mean()\n"
CAT = "        loss = (torch.cat([out, y], 1) ** 2).mean()\n"
SIGMOID = "        loss = ((torch.sigmoid(out) - y) ** 2).mean()\n"


def _source(loss: str, before: str = "", head: str = "", loop: str = "epoch") -> str:
    source = PLAIN_LOOP.replace(LOSS, loss).replace("for epoch in", f"for {loop} in")
    source = source.replace("model = make_model()\n", f"model = make_model()\n{before}")
    return source.replace("import torch\n", f"import torch\n{head}")


ESCAPES = {
    "module_variable_jnp": (_source(CAT, before="jnp = 0.0\n"), "jnp"),
    "module_variable_jax": (_source(SIGMOID, before="jax = 0.0\n"), "jax"),
    "loop_variable_jnp": (_source(CAT, loop="jnp"), "jnp"),
    "loop_variable_jax": (_source(SIGMOID, loop="jax"), "jax"),
    "numpy_imported_as_jnp": (_source(CAT, head="import numpy as jnp\n"), "jnp"),
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_a_template_name_bound_otherwise_escapes(case: str) -> None:
    source, name = ESCAPES[case]
    translated = translate_nnx(source)
    assert BEGIN in translated, translated
    assert f"the name `{name}` is already bound here to something else" in translated
    assert "opt.update(" not in translated
    assert "\nimport jax.numpy as jnp\n" not in translated  # (the user's `jnp` kept as it is)


CONVERTS = {
    "import_already_there": _source(CAT, head="import jax.numpy as jnp\n"),
    "imported_from_jax": _source(CAT, head="from jax import numpy as jnp\n"),
    "jax_imported_with_a_submodule": _source(SIGMOID, head="import jax.nn\n"),
    "another_name": _source(CAT, before="jnq = 0.0\n"),
    "bound_in_another_function": _source(
        SIGMOID, before="\n\ndef other():\n    jax = 1\n    return jax\n\n\n"
    ),
}


@pytest.mark.parametrize("case", sorted(CONVERTS))
def test_twins_convert(case: str) -> None:
    translated, rel = translated_rel(CONVERTS[case])
    assert BEGIN not in translated and "opt.update(" in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"
