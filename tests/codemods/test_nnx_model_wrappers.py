"""optimizer.TorchToNNX over a model wrapped by a wrapper of the map (``modules: wrappers``:
DistributedDataParallel, DataParallel, torch.compile; issue 13): the step trains the unwrapped
model when every value reaching the forward pass's callee is the optimizer's model or such a
wrapper of it, and the wrapper's statement escapes in place with the map's text. Twins: a
wrapper of another model, a wrapper called together with the model, a function of the user,
a wrapper's model not given positionally, ``model.module``."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import run_codemod

SOURCE = """\
import torch
from torch.nn.parallel import DistributedDataParallel as DDP


def main(loader, args, other):
    model = make_model()
{wrap}
    optimizer = torch.optim.SGD({params}, lr=0.1)
    for x, y in loader:
        optimizer.zero_grad()
        out = {call}(x)
        loss = ((out - y) ** 2).mean()
        loss.backward()
        optimizer.step()
"""

LOSS_FUNCTION = "        def loss_fn("
DDP_ESCAPE = "# ml_switcheroo: ESCAPE-BEGIN torch.nn.parallel.DistributedDataParallel"
COMPILE_ESCAPE = "# ml_switcheroo: ESCAPE-BEGIN torch.compile"


def convert(wrap: str, call: str = "model", params: str = "model.parameters()") -> str:
    return run_codemod(SOURCE.format(wrap=wrap, call=call, params=params), TorchToNNX)


def step_converted(output: str) -> bool:
    return LOSS_FUNCTION in output and "optimizer.step()" not in output


def constructor_converted(output: str) -> bool:
    return "optimizer = nnx.Optimizer(model, optax.sgd(learning_rate=0.1), wrt=nnx.Param)" in output


def escape_before(output: str, marker: str, line: str) -> bool:
    """Whether ``line`` sits right after an escape hatch opened by ``marker``."""
    begin = output.index(marker)
    end = output.index("# ml_switcheroo: ESCAPE-END", begin)
    return line in output[begin:end]


CONVERTED = {
    "a wrapper rebinding the name": "    model = DDP(model, device_ids=[args.gpu])",
    "a wrapper under an if": "    if args.distributed:\n        model = DDP(model)",
    "wrappers on two branches": (
        "    if args.distributed:\n        model = DDP(model, device_ids=[args.gpu])\n"
        "    else:\n        model = torch.nn.DataParallel(model).cuda()"
    ),
    "torch.compile under an if": "    if args.compile:\n        model = torch.compile(model)",
    "nested wrappers": "    model = torch.compile(DDP(model.to(args.gpu)))",
    "compile then DDP (nanoGPT)": (
        "    if args.compile:\n        model = torch.compile(model)\n"
        "    if args.ddp:\n        model = DDP(model, device_ids=[args.rank])"
    ),
    "a wrapper moved to a device": "    model = model.to(args.gpu)\n    model = DDP(model)",
}


@pytest.mark.parametrize("wrap", CONVERTED.values(), ids=CONVERTED.keys())
def test_a_step_over_a_wrapped_model_converts(wrap: str) -> None:
    output = convert(wrap)
    assert step_converted(output) and constructor_converted(output), output
    assert "optimizer.update(model, grads)" in output, output


def test_the_wrapper_statement_escapes_in_place() -> None:
    output = convert("    model = DDP(model, device_ids=[args.gpu])")
    assert escape_before(output, DDP_ESCAPE, "    model = DDP(model, device_ids=[args.gpu])\n")


def test_the_ddp_escape_says_it_averages_and_what_removing_it_does() -> None:
    output = convert("    model = DDP(model, device_ids=[args.gpu])")
    reason = next(line for line in output.splitlines() if "reason: DistributedDataParallel" in line)
    assert "averages the gradients" in reason and "trains each process on its own data" in reason
    assert "jax.lax.pmean(grads" in output and "model = model  #" in output, output


def test_the_compile_escape_suggests_nnx_jit() -> None:
    output = convert("    model = torch.compile(model)")
    assert COMPILE_ESCAPE in output and "@nnx.jit" in output, output


def test_a_wrapper_under_another_name_converts_over_that_name() -> None:
    output = convert("    ddp_model = DDP(model)", call="ddp_model")
    assert step_converted(output), output
    assert "nnx.value_and_grad(loss_fn)(ddp_model)" in output, output
    assert "ddp_model = model  #" in output, output


def test_an_optimizer_built_over_the_wrappers_parameters_converts_over_the_model() -> None:
    output = convert("    model = DDP(model)")  # SGD(model.parameters()) after the wrapping
    assert constructor_converted(output) and step_converted(output), output


def test_a_second_run_changes_nothing() -> None:
    once = convert("    if args.distributed:\n        model = DDP(model)")
    assert run_codemod(once, TorchToNNX) == once


# --- twins that must still escape


def test_a_wrapper_of_another_model_escapes_the_step() -> None:
    output = convert("    model = DDP(other)")
    assert not step_converted(output) and BEGIN in output, output


def test_a_wrapper_of_another_model_on_a_branch_escapes_the_constructor_too() -> None:
    output = convert("    if args.distributed:\n        model = DDP(other)")
    assert not step_converted(output) and not constructor_converted(output), output
    assert "may be `DDP(other)` (example.py:8)" in output, output


def test_the_wrapper_and_the_model_both_called_escapes() -> None:
    wrap = "    ddp_model = DDP(model)"
    output = convert(wrap, call="ddp_model(x) + model")
    assert not step_converted(output) and "called by two names" in output, output


def test_a_function_of_the_user_wrapping_the_model_before_the_optimizer_converts() -> None:
    """The optimizer is built over what ``my_wrap(model)`` returned, the very object the step
    calls (``step_models._unrebound_since_built``): a model the user builds."""
    output = convert("    model = my_wrap(model)")
    assert step_converted(output) and constructor_converted(output), output


def test_a_function_of_the_user_wrapping_the_model_after_the_optimizer_escapes() -> None:
    source = SOURCE.format(wrap="", call="model", params="model.parameters()").replace(
        "    for x, y in loader:\n", "    model = my_wrap(model)\n    for x, y in loader:\n"
    )
    output = run_codemod(source, TorchToNNX)
    assert not step_converted(output) and BEGIN in output, output


def test_a_wrapper_given_the_model_by_keyword_escapes() -> None:
    output = convert("    model = DDP(module=model)")
    assert not step_converted(output) and not constructor_converted(output), output


def test_an_optimizer_of_an_inline_wrappers_parameters_escapes() -> None:
    output = convert("", params="DDP(model).parameters()")
    assert not step_converted(output) and "nnx.Optimizer trains one model" in output, output


def test_an_optimizer_of_model_module_never_wrapped_escapes_the_step() -> None:
    output = convert("    raw_model = model.module", params="raw_model.parameters()")
    assert not step_converted(output) and BEGIN in output, output


def test_model_module_of_a_model_never_wrapped_is_its_submodule() -> None:
    output = convert("", call="model.module")  # a submodule of the model: the same in NNX
    assert step_converted(output) and "out = model.module(x)" in output, output


def test_model_module_of_a_wrapped_model_is_the_model_in_the_loss() -> None:
    """The read provably sees the wrapper (``analysis/dominating.py``): its ``.module`` is the
    model the loss function trains (numbers: tests/differential/test_nnx_model_wrappers.py)."""
    output = convert("    model = DDP(model)", call="model.module")
    assert step_converted(output) and "            out = model(x)\n" in output, output


def test_nanogpts_raw_model_escapes_for_now() -> None:
    wrap = "    if args.ddp:\n        model = DDP(model)\n    raw_model = model.module if args.ddp else model"
    output = convert(wrap, call="raw_model")
    assert not step_converted(output) and BEGIN in output, output


WITHOUT_OPTIMIZER = """\
import torch


def wrap(model, rank):
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank])
"""


def test_a_wrapper_in_a_file_without_a_translated_optimizer_is_left_alone() -> None:
    assert run_codemod(WITHOUT_OPTIMIZER, TorchToNNX) == WITHOUT_OPTIMIZER


def test_a_model_of_two_branches_wrapped_by_itself_keeps_its_constructor() -> None:
    wrap = "    if args.pretrained:\n        model = make_model(True)\n    model = DDP(model)"
    output = convert(wrap)  # two models, but the optimizer's line reads the one the step calls
    assert constructor_converted(output) and step_converted(output), output
    assert DDP_ESCAPE in output, output


def test_a_model_of_two_branches_wrapped_after_the_optimizer_escapes() -> None:
    wrap = "    if args.pretrained:\n        model = make_model(True)"
    source = SOURCE.format(wrap=wrap, call="model", params="model.parameters()").replace(
        "    for x, y in loader:\n", "    model = DDP(model)\n    for x, y in loader:\n"
    )
    output = run_codemod(source, TorchToNNX)  # two models: the step calls the wrapper's
    assert constructor_converted(output) and not step_converted(output), output
