"""A model reparametrized after its optimizer took its parameters (s24d; the map's
``parameters.structure_functions``). ``torch.nn.utils.weight_norm(model.out)`` replaces
``out.weight`` by ``weight_g`` and ``weight_v``, ``parametrize.register_parametrization`` and
the ``prune`` functions move it behind a parametrization or a mask: torch's optimizer keeps
the old tensor, while an NNX (or optax) optimizer updates every leaf it is handed. These
converted before (the NNX translation then handed the NNX module to the torch function and
raised). They escape now, naming the call; the same call before the optimizer converts, and
``setattr(model, "flag", 1)`` (a literal, no parameter) after it still converts exactly."""

from __future__ import annotations

import pytest

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import run_nnx_loop, run_torch_loop, translate_nnx, worst_rel
from tests.differential.test_nnx_model_changed import REASON, _loop

CALLS = {
    "weight_norm": ("", "torch.nn.utils.weight_norm(model.out)"),
    "spectral_norm": ("", "torch.nn.utils.parametrizations.spectral_norm(model.out)"),
    "parametrize": (
        "from torch.nn.utils import parametrize\n",
        "parametrize.register_parametrization(model.out, 'weight', make_head())",
    ),
    "prune": (
        "import torch.nn.utils.prune as prune\n",
        "prune.l1_unstructured(model.out, 'weight', 0.5)",
    ),
}


def _source(case: str, where: str) -> str:
    imports, call = CALLS[case]
    source = _loop(after=call) if where == "after" else _loop(before=call)
    return source.replace("import torch\n", f"import torch\n{imports}", 1)


@pytest.mark.parametrize("case", sorted(CALLS))
def test_a_reparametrization_after_the_optimizer_escapes_it(case: str) -> None:
    translated = translate_nnx(_source(case, "after"))
    assert BEGIN in translated and "opt = nnx.Optimizer" not in translated, translated
    assert REASON.format(change=CALLS[case][1]) in translated, translated


@pytest.mark.parametrize("case", sorted(CALLS))
def test_a_reparametrization_before_the_optimizer_converts(case: str) -> None:
    translated = translate_nnx(_source(case, "before"))
    assert BEGIN not in translated and "opt = nnx.Optimizer" in translated, translated


def test_a_literal_set_on_the_model_after_the_optimizer_converts_exactly() -> None:
    source = _loop(after="setattr(model, 'flag', 1)")
    translated = translate_nnx(source)
    assert BEGIN not in translated and "opt = nnx.Optimizer" in translated, translated
    rel = worst_rel(run_torch_loop(source), run_nnx_loop(source, translated))
    assert rel < EXACT, f"rel {rel:.3e}"
