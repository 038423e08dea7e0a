"""``analysis/torch_tensors.known_tensors``: names bound to torch tensors for sure."""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.analysis.torch_tensors import known_tensors
from ml_switcheroo.spec.semantic_map import TensorValueSpec

SPEC = TensorValueSpec(
    packages=frozenset({"torch"}),
    python_values=frozenset({"torch.numel"}),
    python_methods=frozenset({"item"}),
    other_methods=frozenset({"numpy", "size"}),
)


def _known(source: str) -> set[str]:
    module = cst.parse_module(source)

    def qualify(node: cst.BaseExpression) -> list[str]:
        text = module.code_for_node(node)
        return [text] if text.startswith(("torch.", "np.")) else []

    def model_call(call: cst.Call) -> bool:
        return isinstance(call.func, cst.Name) and call.func.value == "model"

    return known_tensors(module.body, model_call, qualify, SPEC)


def test_model_outputs_and_what_torch_computes_from_them_are_known() -> None:
    source = "out, aux = model(x)\nw = out * 2.0\nv = torch.exp(w)[0]\nm = v.max(0)\n"
    assert _known(source) == {"out", "aux", "w", "v", "m"}


def test_numpy_values_and_python_values_are_not_known() -> None:
    source = (
        "out = model(x)\na = np.ones(3)\nb = out.numpy()\nn = torch.numel(out)\ns = out.size(0)\n"
    )
    assert _known(source) == {"out"}


def test_a_name_rebound_to_something_unknown_is_not_known() -> None:
    assert _known("w = model(x)\nw = np.ones(3)\n") == set()


def test_a_name_read_before_its_binding_is_not_known() -> None:
    """``x = x * 2`` reads the ``x`` from outside (a batch: maybe a NumPy array)."""
    assert _known("x = x * 2.0\n") == set()


def test_a_loop_target_is_not_known() -> None:
    assert _known("out = model(x)\nfor row in out:\n    r = row\n") == {"out"}
