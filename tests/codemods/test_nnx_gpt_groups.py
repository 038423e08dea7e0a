"""GPT-style optimizers: decay / no-decay param groups split by rank over one model become
``nnx.Optimizer(model, <tx with the mask>, wrt=nnx.Param)``; ``**extra_args`` of kernel
options only binds statically (both targets). Near misses escape.

The numbers are checked in ``tests/differential/test_nnx_gpt_groups.py`` (NNX) and
``tests/differential/test_param_group_masks.py`` (optax)."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import code_lines, gpt_groups, nnx_output, renders_a_step, run_codemod

MASK = "mask=lambda params: jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)"

SCRIPT = """\
import torch
model = make_model()
decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
no_decay = [p for n, p in OTHER.named_parameters() if NO_DECAY]
groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
opt = torch.optim.AdamW(groups, lr=3e-4)
for x, y in loader:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
"""

GPT_METHOD = (
    """\
import torch
class GPT(torch.nn.Module):
    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
"""
    + gpt_groups("self", "weight_decay", " " * 8)
    + """\
        use_fused = device_type == "cuda"
        extra_args = dict(fused=True) if use_fused else dict()
        optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas, **extra_args)
        return optimizer
"""
)


def script(other: str = "model", no_decay: str = "p.dim() < 2") -> str:
    return SCRIPT.replace("OTHER", other).replace("NO_DECAY", no_decay)


def constructor_line(output: str) -> str:
    (line,) = [line for line in code_lines(output) if "opt = " in line or "optimizer = " in line]
    return line.strip()


def test_rank_split_groups_of_one_model_become_its_masked_nnx_optimizer() -> None:
    output = nnx_output(script())
    assert constructor_line(output) == (
        "opt = nnx.Optimizer(model, optax.adamw(learning_rate=3e-4, weight_decay=0.1, "
        f"{MASK}), wrt=nnx.Param)"
    ), output
    assert renders_a_step(output) and BEGIN not in output, output


def test_the_gpt_method_s_groups_of_self_with_fused_extra_args_train_self() -> None:
    output = nnx_output(GPT_METHOD)
    assert constructor_line(output) == (
        "optimizer = nnx.Optimizer(self, optax.adamw(learning_rate=learning_rate, b1=betas[0], "
        f"b2=betas[1], weight_decay=weight_decay, {MASK}), wrt=nnx.Param)"
    ), output


def test_a_second_run_changes_nothing() -> None:
    output = nnx_output(script())
    assert run_codemod(output, TorchToNNX) == output


def test_groups_of_two_models_escape() -> None:
    output = nnx_output(script(other="other"))
    assert "filter the parameters of different models (`model`, `other`)" in output, output
    assert "nnx.Optimizer(" not in "".join(code_lines(output)), output


def test_groups_leaving_parameters_out_escape() -> None:
    output = nnx_output(script(no_decay="p.dim() < 1"))
    assert "overlap or leave parameters out" in output, output
    assert "nnx.Optimizer(" not in "".join(code_lines(output)), output


def test_groups_filtering_requires_grad_in_a_file_that_freezes_escape() -> None:
    frozen = script(no_decay="p.dim() < 2 and p.requires_grad").replace(
        "model = make_model()\n",
        "model = make_model()\nfor p in model.embed.parameters():\n    p.requires_grad = False\n",
    )
    output = nnx_output(frozen)
    assert "this file freezes parameters" in output, output
    assert "nnx.Optimizer(" not in "".join(code_lines(output)), output


def test_name_based_groups_escape_with_the_path_mask_written_out() -> None:
    named = script().replace("p.dim() >= 2]", "'bias' not in n]")
    output = nnx_output(named.replace("p.dim() < 2]", "'bias' in n]"))
    assert "split by parameter names" in output, output
    assert "jax.tree_util.tree_map_with_path(lambda path, p: (lambda n: 'bias' not in n)" in output
    assert "nnx.Optimizer(" not in "".join(code_lines(output)), output


def test_groups_without_options_of_their_own_still_escape() -> None:
    plain = script().replace(', "weight_decay": 0.1', "").replace(', "weight_decay": 0.0', "")
    output = nnx_output(plain)
    assert "nnx.Optimizer trains one model's parameters" in output, output


EXTRA = """\
import torch
model = make_model()
BEFORE
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **extra_args)
"""
COMPILED = {
    TorchToOptax: "opt = optax.adamw(learning_rate=1e-3, weight_decay=0.01)",
    TorchToNNX: (
        "opt = nnx.Optimizer(model, optax.adamw(learning_rate=1e-3, weight_decay=0.01), "
        "wrt=nnx.Param)"
    ),
}
BOUND = {
    "conditional_dict_calls": "extra_args = dict(fused=True) if use_fused else dict()",
    "empty_braces": "extra_args = {}",
    "several_kernel_options": "extra_args = {'foreach': False, 'capturable': False}",
}
UNBOUND = {
    "mutated_before": "extra_args = dict()\nextra_args['weight_decay'] = 0.5",
    "updated_before": "extra_args = dict()\nextra_args.update(weight_decay=0.5)",
    "a_key_of_the_math": "extra_args = dict(weight_decay=0.5) if use_decay else dict()",
    "dict_shadowed": "def dict(**kw):\n    return {'weight_decay': 0.5}\nextra_args = dict(fused=True)",
    "dict_imported": "from mylib import dict\nextra_args = dict(fused=True)",
    "rebound_on_a_branch": "extra_args = dict(fused=True)\nif c:\n    extra_args = dict(weight_decay=0.5)",
    "a_key_also_given": "extra_args = dict(fused=True)",
}
COMMANDS = {"optax": TorchToOptax, "nnx": TorchToNNX}


@pytest.mark.parametrize("target", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(BOUND))
def test_extra_args_of_kernel_options_bind_statically(target: str, case: str) -> None:
    command = COMMANDS[target]
    output = run_codemod(EXTRA.replace("BEFORE", BOUND[case]), command)
    assert constructor_line(output) == COMPILED[command], output
    assert BOUND[case].splitlines()[0] in output  # the dict's statement stays


@pytest.mark.parametrize("target", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(UNBOUND))
def test_extra_args_that_may_change_the_math_escape(target: str, case: str) -> None:
    source = EXTRA.replace("BEFORE", UNBOUND[case])
    if case == "a_key_also_given":
        source = source.replace("lr=1e-3,", "lr=1e-3, fused=False,")
    output = run_codemod(source, COMMANDS[target])
    assert "`**` keyword unpacking cannot be bound statically" in output, output
    assert "**extra_args)" in constructor_line(output), output


def test_name_based_groups_suggest_the_model_s_nnx_optimizer_with_the_path_mask() -> None:
    named = script().replace("p.dim() >= 2]", "'bias' not in n]")
    output = nnx_output(named.replace("p.dim() < 2]", "'bias' in n]"))
    assert (
        "# ml_switcheroo: |   nnx.Optimizer(model, optax.adamw(learning_rate=3e-4, "
        "weight_decay=0.1, mask=lambda params: jax.tree_util.tree_map_with_path("
    ) in output, output
    assert "wrt=nnx.Param)  # n: the leaf's path in nnx.state(model, nnx.Param)" in output


def test_name_based_groups_of_two_models_suggest_no_nnx_optimizer() -> None:
    named = script(other="other").replace("p.dim() >= 2]", "'bias' not in n]")
    output = nnx_output(named.replace("p.dim() < 2]", "'bias' in n]"))
    assert "split by parameter names" in output and "nnx.Optimizer(" not in output, output


REBOUND_BETWEEN_GROUPS = {
    "rebound": """\
import torch
model = make_model()
decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
model = make_other()
no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
opt = torch.optim.AdamW(groups, lr=3e-4)
""",
    "rebound_on_a_branch": """\
import torch
def build(model, other):
    every = {n: p for n, p in model.named_parameters()}
    decay = [p for n, p in every.items() if p.dim() >= 2]
    if other is not None:
        model = other
    rest = {n: p for n, p in model.named_parameters()}
    no_decay = [p for n, p in rest.items() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=3e-4)
""",
}


ATTRIBUTE_STORED_BETWEEN_GROUPS = """\
import torch
class Trainer:
    def build(self, other):
        decay = [p for n, p in self.net.named_parameters() if p.dim() >= 2]
        self.net = other
        no_decay = [p for n, p in self.net.named_parameters() if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
        opt = torch.optim.AdamW(groups, lr=3e-4)
"""


@pytest.mark.parametrize("target", sorted(COMMANDS))
def test_groups_of_an_attribute_stored_again_between_them_escape(target: str) -> None:
    """``self.net`` read by two groups may be two objects although ``self`` is bound once."""
    output = run_codemod(ATTRIBUTE_STORED_BETWEEN_GROUPS, COMMANDS[target])
    assert "`self.net` may be another object in each group" in output, output
    assert "torch.optim.AdamW(groups" in constructor_line(output), output


def test_groups_of_one_attribute_read_once_convert() -> None:
    """One ``self.net.named_parameters()`` dict read by both groups is one object (twin)."""
    once = (
        ATTRIBUTE_STORED_BETWEEN_GROUPS.replace(
            "        decay = [p for n, p in self.net.named_parameters() if",
            "        every = {n: p for n, p in self.net.named_parameters()}\n"
            "        decay = [p for n, p in every.items() if",
        )
        .replace("        self.net = other\n", "")
        .replace(
            "no_decay = [p for n, p in self.net.named_parameters()",
            "no_decay = [p for n, p in every.items()",
        )
    )
    output = run_codemod(once, COMMANDS["optax"])
    assert "optax.adamw(" in constructor_line(output), output


@pytest.mark.parametrize("target", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(REBOUND_BETWEEN_GROUPS))
def test_groups_of_one_name_bound_to_two_models_escape(target: str, case: str) -> None:
    output = run_codemod(REBOUND_BETWEEN_GROUPS[case], COMMANDS[target])
    assert "`model` may be another object in each group" in output, output
    assert "torch.optim.AdamW(groups" in constructor_line(output), output


def test_groups_of_a_model_rebound_before_the_constructor_escape() -> None:
    """The groups hold the first model's parameters; ``nnx.Optimizer(model, ...)`` written at
    the constructor would train the second."""
    rebound = (
        script()
        .replace("decay = [", "every = {n: p for n, p in model.named_parameters()}\ndecay = [", 1)
        .replace("model.named_parameters() if", "every.items() if")
        .replace("opt = torch.optim", "model = make_other()\nopt = torch.optim")
    )
    assert rebound.count("named_parameters()") == 1
    output = nnx_output(rebound)
    assert "nnx.Optimizer trains one model's parameters" in output, output
    assert "torch.optim.AdamW(groups" in constructor_line(output), output


def test_groups_of_an_attribute_escape() -> None:
    """``self.model`` may be stored again between the groups and the constructor."""
    attribute = (
        script()
        .replace(
            "decay = [", "every = {n: p for n, p in self.model.named_parameters()}\ndecay = [", 1
        )
        .replace("model.named_parameters() if", "every.items() if")
    )
    assert attribute.count("named_parameters()") == 1
    output = nnx_output(attribute)
    assert "nnx.Optimizer trains one model's parameters" in output, output
