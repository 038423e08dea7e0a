"""The map's ``modules:`` section (``ModuleSpec``): self-returning module methods and
forwarding wrappers come from the shipped map, the NNX target's loss modules and model wrappers
from its layer (a later map's key replaces that key only), validated."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ml_switcheroo.spec.errors import SemanticMapError
from ml_switcheroo.spec.semantic_map import SemanticMap
from ml_switcheroo.targets.catalogue import load_semantic_map
from ml_switcheroo.targets.nnx.target import NNX


def nnx_map(tmp_path: Path | None = None, text: str | None = None) -> SemanticMap:
    extra = []
    if tmp_path is not None and text is not None:
        path = tmp_path / "extra.yaml"
        path.write_text("version: 1\n" + text, encoding="utf-8")
        extra.append(path)
    return load_semantic_map(extra, NNX)


def test_the_nnx_layer_lists_losses_without_parameters() -> None:
    losses = nnx_map().modules.losses
    assert "torch.nn.CrossEntropyLoss" in losses and "torch.nn.MSELoss" in losses
    assert "torch.nn.AdaptiveLogSoftmaxWithLoss" not in losses


def test_the_nnx_layer_keeps_the_shipped_self_returning_methods() -> None:
    assert {"to", "cuda", "cpu", "double"} <= nnx_map().modules.self_methods


def test_a_layer_giving_one_modules_key_keeps_the_others(tmp_path: Path) -> None:
    layered = nnx_map(tmp_path, "modules: {losses: [torch.nn.MSELoss]}\n").modules
    assert layered.losses == {"torch.nn.MSELoss"}
    assert "to" in layered.self_methods and "torch.compile" in layered.forwarding


def test_the_shipped_map_lists_what_torch_compiles_wrapper_answers_itself() -> None:
    # OptimizedModule.__getattr__ forwards to the wrapped module only the names neither its
    # class nor its instance has (torch 2.13): the map must list every public one of those
    import inspect
    import re

    from torch._dynamo.eval_frame import OptimizedModule

    own = {n for n in dir(OptimizedModule) if not n.startswith("_")}
    own |= set(re.findall(r"self\.([a-zA-Z]\w*)\s*=", inspect.getsource(OptimizedModule)))
    assert own <= load_semantic_map().modules.forwarding["torch.compile"]


def test_forwarding_names_that_are_not_identifiers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SemanticMapError, match="'forwarding' 'torch.compile' must be a list"):
        nnx_map(tmp_path, "modules: {forwarding: {torch.compile: ['to(x)']}}\n")


def test_the_nnx_layer_lists_data_parallel_as_a_wrapper() -> None:
    assert "torch.nn.DataParallel" in nnx_map().modules.wrappers


def test_the_optax_map_has_no_module_lists() -> None:
    assert not load_semantic_map().modules.losses


def test_a_self_method_that_is_not_a_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SemanticMapError, match="'self_methods' must be a list of method names"):
        nnx_map(tmp_path, "modules: {self_methods: ['to(device)']}\n")


def test_an_unknown_modules_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SemanticMapError, match="unknown field 'models' in 'modules'"):
        nnx_map(tmp_path, "modules: {models: [torch.nn.Linear]}\n")


def test_the_nnx_layer_lists_set_grad_enabled_as_a_grad_context() -> None:
    assert "torch.set_grad_enabled" in nnx_map().modules.grad_contexts


def test_a_grad_context_that_is_not_a_dotted_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SemanticMapError, match="is not a dotted Python name"):
        nnx_map(tmp_path, "modules: {grad_contexts: ['set grad']}\n")


def test_the_nnx_layer_unwraps_ddp_through_module() -> None:
    assert nnx_map().modules.unwrapped_by["torch.nn.parallel.DistributedDataParallel"] == "module"


@pytest.mark.parametrize("wrapper", ["torch.nn.DataParallel", "torch.compile"])
def test_the_unwrapping_attribute_is_the_wrapped_module_in_torch(wrapper: str) -> None:
    """What the map says is torch's: the attribute of the wrapper is the module itself (DDP
    needs a process group: its run is tests/differential/test_nnx_model_wrappers.py)."""
    model = torch.nn.Linear(2, 2)
    wrap = torch.nn.DataParallel if wrapper == "torch.nn.DataParallel" else torch.compile
    assert getattr(wrap(model), nnx_map().modules.unwrapped_by[wrapper]) is model


def test_an_unwrapping_of_no_listed_wrapper_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SemanticMapError, match="'unwrapped_by' 'torch.jit.script' is not one"):
        nnx_map(
            tmp_path,
            "modules: {wrappers: [torch.compile], unwrapped_by: {torch.jit.script: module}}\n",
        )


def test_an_unwrapping_attribute_that_is_not_a_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SemanticMapError, match="must name an attribute"):
        nnx_map(
            tmp_path, "modules: {wrappers: [torch.compile], unwrapped_by: {torch.compile: 'a.b'}}\n"
        )
