"""Parameters that may get no gradient in a step (s42, probe s41 F21, F25, F26): torch's
optimizer skips a parameter whose ``.grad`` is None (no update, no weight decay, no moment or
step count), the translation gives it a zero gradient and still moves it (measured in
``tests/differential/test_gradient_skips_measured.py``). Code that may leave a trained
parameter without a gradient escapes the optimizer in both targets; the twins, where every
parameter gets one in every step, still translate."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.rewrite.report import Record
from tests.support import converts_in_both_targets, escapes_in_both_targets

HEAD = "import random\n\nimport torch\nimport torch.nn as nn\n\n\n"
CLASS = """\
class Net(nn.Module):
    def __init__(self, heads=2, use_extra=False):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.heads = nn.ModuleList([nn.Linear(8, 2) for _ in range(heads)])
        self.head0 = nn.Linear(8, 2)
        self.head1 = nn.Linear(8, 2)
        self.use_extra = use_extra
        if use_extra:
            self.extra = nn.Linear(8, 8)

    def forward(self, x, task=0):
{forward}

"""
LOOP = """\
model = Net()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
for x, y, task in loader:
    optimizer.zero_grad()
{step}
    loss.backward()
    optimizer.step()
"""
WHOLE = "    loss = ((model(x, task) - y) ** 2).mean()"


def _source(forward: str, step: str = WHOLE) -> str:
    return HEAD + CLASS.format(forward=forward) + LOOP.format(step=step)


SKIPS = {
    "head_picked_by_task": (
        _source("        return self.heads[task](torch.tanh(self.hidden(x)))"),
        "picked by a computed index",
    ),
    "head_picked_by_name": (
        _source("        return getattr(self, f'head{task}')(torch.tanh(self.hidden(x)))"),
        "picked by a computed index",
    ),
    "head_chosen_by_branch": (
        _source(
            "        h = torch.tanh(self.hidden(x))\n        if task == 0:\n"
            "            return self.head0(h)\n        return self.head1(h)"
        ),
        "runs different submodules by a value",
    ),
    "layer_drop": (
        _source(
            "        h = torch.tanh(self.hidden(x))\n        for head in self.heads:\n"
            "            if self.training and random.random() < 0.1:\n                continue\n"
            "            h = h + head(h).sum()\n        return h"
        ),
        "`continue`, `break` or `return`",
    ),
    "backbone_under_no_grad": (
        _source(
            "        with torch.no_grad():\n            h = self.hidden(x)\n"
            "        return self.head0(h)"
        ),
        "only cut from the gradient",
    ),
    "backbone_detached": (
        _source("        return self.head0(torch.tanh(self.hidden(x)).detach())"),
        "only cut from the gradient",
    ),
    "backbone_in_a_no_grad_method": (
        _source("        return self.head0(self.features(x))").replace(
            "    def forward(",
            "    @torch.no_grad()\n    def features(self, x):\n        return self.hidden(x)\n\n"
            "    def forward(",
        ),
        "only cut from the gradient",
    ),
    "part_detached_in_the_step": (
        _source(
            "        return self.head0(self.hidden(x))",
            "    h = torch.tanh(model.hidden(x)).detach()\n"
            "    loss = ((model.head0(h) - y) ** 2).mean()",
        ),
        "only cut from the gradient",
    ),
    "part_gradients_set_to_none": (
        _source(
            "        return self.head0(self.hidden(x))",
            WHOLE + "\n    for p in model.hidden.parameters():\n        p.grad = None",
        ),
        "sets gradients to None",
    ),
    "part_zero_grad": (
        _source(
            "        return self.head0(self.hidden(x))", WHOLE + "\n    model.hidden.zero_grad()"
        ),
        "sets gradients to None",
    ),
    "grad_deleted": (
        _source(
            "        return self.head0(self.hidden(x))",
            WHOLE + "\n    del model.hidden.weight.grad",
        ),
        "sets gradients to None",
    ),
    "grad_none_by_setattr": (
        _source(
            "        return self.head0(self.hidden(x))",
            WHOLE + "\n    setattr(model.hidden.bias, 'grad', None)",
        ),
        "sets gradients to None",
    ),
}

# probe s42 (each converted before, measured 0.035-0.85 relative off torch over 36 updates)
SKIPS.update(
    {
        "head_assigned_then_called": (
            _source(
                "        head = self.heads[task]\n        return head(torch.tanh(self.hidden(x)))"
            ),
            "picked by a computed index",
        ),
        "heads_in_a_dict_display": (
            _source("        return {0: self.head0, 1: self.head1}[task](self.hidden(x))"),
            "picked by a computed index",
        ),
        "heads_chosen_by_a_loop_over_tasks": (
            _source("        return sum(self.heads[t](self.hidden(x)) for t in task)"),
            "picked by a computed index",
        ),
        "detached_through_a_local": (
            _source(
                "        h = torch.tanh(self.hidden(x))\n        h = h.detach()\n"
                "        return self.head0(h)"
            ),
            "only cut from the gradient",
        ),
        "detached_by_the_class_method": (
            _source("        return self.head0(torch.Tensor.detach(self.hidden(x)))"),
            "only cut from the gradient",
        ),
        "grad_enabled_by_a_setting": (
            _source(
                "        with torch.set_grad_enabled(self.use_extra):\n"
                "            h = self.hidden(x)\n        return self.head0(h)"
            ),
            "only cut from the gradient",
        ),
        "a_part_run_only_in_eval": (
            _source(
                "        out = self.head0(self.hidden(x))\n        if not self.training:\n"
                "            out = out + self.head1(self.hidden(x))\n        return out"
            ),
            "only cut from the gradient",
        ),
        "frozen_in_one_phase": (
            _source(
                "        if task == 0:\n            with torch.no_grad():\n"
                "                h = self.hidden(x)\n        else:\n            h = self.hidden(x)\n"
                "        return self.head0(h)"
            ),
            "only cut from the gradient",
        ),
        "stochastic_depth": (
            _source(
                "        h = self.hidden(x)\n        if self.training and random.random() < 0.5:\n"
                "            return self.head0(h)\n        return self.head1(h)"
            ),
            "runs different submodules by a value",
        ),
        "layer_skipped_under_an_if": (
            _source(
                "        h = self.hidden(x)\n        for head in self.heads:\n"
                "            if random.random() > 0.1:\n                h = h + head(h).sum()\n"
                "        return h"
            ),
            "may skip a submodule",
        ),
        "layers_filtered": (
            _source(
                "        h = self.hidden(x)\n"
                "        for head in [m for m in self.heads if random.random() > 0.1]:\n"
                "            h = h + head(h).sum()\n        return h"
            ),
            "may skip a submodule",
        ),
        "branch_in_a_helper_method": (
            _source("        return self._head(self.hidden(x), task)").replace(
                "    def forward(",
                "    def _head(self, h, task):\n        if task == 0:\n"
                "            return self.head0(h)\n        return self.head1(h)\n\n    def forward(",
            ),
            "runs different submodules by a value",
        ),
        "match_on_the_task": (
            _source(
                "        h = self.hidden(x)\n        match task:\n            case 0:\n"
                "                return self.head0(h)\n            case _:\n"
                "                return self.head1(h)"
            ),
            "runs different submodules by a value",
        ),
        "a_no_grad_alias": (
            _source(
                "        with ng():\n            h = self.hidden(x)\n        return self.head0(h)"
            ).replace("class Net", "ng = torch.no_grad\n\n\nclass Net"),
            "only cut from the gradient",
        ),
        "parameters_through_a_variable": (
            _source(
                "        return self.head0(self.hidden(x))", "    loss = model.heads[task](x).sum()"
            )
            .replace(
                "torch.optim.AdamW(model.parameters(), lr=1e-3)",
                "torch.optim.AdamW(params, lr=1e-3)",
            )
            .replace("model = Net()\n", "model = Net()\nparams = list(model.parameters())\n"),
            "picked by a computed index",
        ),
        "a_part_run_in_some_steps_of_the_loop": (
            _source(
                "        return self.head0(self.hidden(x))",
                WHOLE + "\n    if task == 0:\n        loss = loss + model.head1(x).sum()",
            ),
            "runs different submodules by a value",
        ),
        "gradients_of_autograd_that_may_be_none": (
            _source(
                "        return self.head0(self.hidden(x))",
                WHOLE + "\n    params = list(model.parameters())\n"
                "    grads = torch.autograd.grad(loss, params, allow_unused=True)\n"
                "    for p, g in zip(params, grads):\n        p.grad = g",
            ),
            "sets gradients to None",
        ),
        "unused_parameters_declared": (
            _source("        return self.head0(self.hidden(x))").replace(
                "model = Net()",
                "model = torch.nn.parallel.DistributedDataParallel(Net(), "
                "find_unused_parameters=True)",
            ),
            "declares that some parameters get no gradient",
        ),
        "an_item_zeroed": (
            _source(
                "        return self.head0(self.hidden(x))",
                WHOLE + "\n    model.heads[1].zero_grad()",
            ),
            "sets gradients to None",
        ),
        "grad_none_in_some_steps": (
            _source(
                "        return self.head0(self.hidden(x))",
                WHOLE
                + "\n    model.hidden.weight.grad = None if task else model.hidden.weight.grad",
            ),
            "sets gradients to None",
        ),
        # probe s42 c32: the step function's model has another name
        "head_picked_in_a_step_function_by_another_name": (
            HEAD
            + CLASS.format(forward="        return self.head0(self.hidden(x))")
            + "def train_step(net, opt, x, y, task):\n    opt.zero_grad()\n"
            "    loss = ((net.heads[task](net.hidden(x)) - y) ** 2).mean()\n"
            "    loss.backward()\n    opt.step()\n\n\nmodel = Net()\n"
            "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\n"
            "for x, y, task in loader:\n    train_step(model, optimizer, x, y, task)\n",
            "picked by a computed index",
        ),
        # the wrapped model of `model = DistributedDataParallel(model)`
        "head_picked_through_the_wrapped_module": (
            _source(
                "        return self.head0(self.hidden(x))",
                "    loss = ((model.module.heads[task](x) - y) ** 2).mean()",
            ).replace("model = Net()\n", "model = Net()\nmodel = torch.nn.DataParallel(model)\n"),
            "picked by a computed index",
        ),
        # probe s43 S4: the step function bound to the model by functools.partial
        "head_picked_in_a_step_function_bound_by_partial": (
            HEAD
            + "import functools\n\n"
            + CLASS.format(forward="        return self.head0(self.hidden(x))")
            + "def train_step(net, opt, x, y, task):\n    opt.zero_grad()\n"
            "    loss = ((net.heads[task](net.hidden(x)) - y) ** 2).mean()\n"
            "    loss.backward()\n    opt.step()\n\n\nmodel = Net()\n"
            "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\n"
            "step = functools.partial(train_step, model)\n"
            "for x, y, task in loader:\n    step(optimizer, x, y, task)\n",
            "picked by a computed index",
        ),
        # probe s43 S2: a wrapper module running a head of the model it holds (CenterNet)
        "head_picked_through_a_held_model": (
            _source("        return self.head0(self.hidden(x))").replace(
                "model = Net()\n",
                "class WithLoss(nn.Module):\n    def __init__(self, model):\n"
                "        super().__init__()\n        self.model = model\n\n"
                "    def forward(self, x, task):\n        return self.model.heads[task](x)\n\n\n"
                "model = WithLoss(Net())\n",
            ),
            "picked by a computed index",
        ),
        # probe s43 S7: a pick in a step method the loop calls on the model
        "head_picked_in_a_training_step_method": (
            HEAD
            + CLASS.format(forward="        return torch.tanh(self.hidden(x))").replace(
                "    def forward(",
                "    def training_step(self, x, y, task):\n"
                "        return ((self.heads[task](self(x)) - y) ** 2).mean()\n\n"
                "    def configure_optimizers(self):\n"
                "        return torch.optim.AdamW(self.parameters(), lr=1e-3)\n\n"
                "    def forward(",
            )
            + "model = Net()\noptimizer = model.configure_optimizers()\n"
            "for x, y, task in loader:\n    optimizer.zero_grad()\n"
            "    loss = model.training_step(x, y, task)\n    loss.backward()\n"
            "    optimizer.step()\n",
            "picked by a computed index",
        ),
        # probe s43b i04: the step's own loop over heads skips the tasks a batch lacks
        "heads_skipped_by_the_step_loop": (
            _source(
                "        return self.head0(self.hidden(x))",
                "    h = model.hidden(x)\n    loss = 0\n"
                "    for t, head in enumerate(model.heads):\n        if t != task:\n"
                "            continue\n        loss = loss + ((head(h) - y) ** 2).mean()",
            ),
            "may skip a submodule",
        ),
        # probe s43b S1, S2: a context chosen by a flag; a conditional unwrap
        "a_context_chosen_by_a_flag": (
            _source(
                "        return self.head0(self.hidden(x))",
                "    ctx = torch.no_grad() if task else contextlib.nullcontext()\n"
                "    with ctx:\n        h = model.hidden(x)\n"
                "    loss = ((model.head0(h) - y) ** 2).mean()",
            ),
            "only cut from the gradient",
        ),
        "a_head_picked_through_a_conditional_unwrap": (
            _source(
                "        return self.head0(self.hidden(x))",
                "    net = model.module if hasattr(model, 'module') else model\n"
                "    loss = ((net.heads[task](x) - y) ** 2).mean()",
            ),
            "picked by a computed index",
        ),
        # probe s42 c90: a part its forward never runs, under no_grad next to a whole call
        "a_part_outside_forward_under_no_grad_next_to_a_whole_call": (
            _source(
                "        return self.head0(self.hidden(x))",
                "    with torch.no_grad():\n        target = model.head1(x)\n"
                "    loss = ((model(x, task) - target) ** 2).mean()",
            ),
            "only cut from the gradient",
        ),
    }
)

TWINS = {
    "every_head_run": _source(
        "        h = torch.tanh(self.hidden(x))\n"
        "        return sum(self.heads[i](h) for i in range(len(self.heads)))"
    ),
    "a_constant_head": _source("        return self.heads[0](torch.tanh(self.hidden(x)))"),
    "a_branch_on_configuration": _source(
        "        h = torch.tanh(self.hidden(x))\n        if self.use_extra:\n"
        "            h = self.extra(h)\n        return self.head0(h)"
    ),
    "both_branches_run_the_module": _source(
        "        if x.is_cuda:\n            h = nn.parallel.data_parallel(self.hidden, x)\n"
        "        else:\n            h = self.hidden(x)\n        return self.head0(h)"
    ),
    "output_detached_for_metrics": _source(
        "        return self.head0(self.hidden(x))",
        WHOLE + "\n    preds = model(x, task).detach().argmax(1)",
    ),
    "stop_gradient_of_a_trained_branch": _source(
        "        z = self.hidden(x)\n        return self.head0(z) - z.detach().sum()"
    ),
    "every_gradient_set_to_none": _source(
        "        return self.head0(self.hidden(x))",
        "    for p in model.parameters():\n        p.grad = None\n" + WHOLE,
    ),
    "part_zeroed_keeping_zeros": _source(
        "        return self.head0(self.hidden(x))",
        WHOLE + "\n    model.hidden.zero_grad(set_to_none=False)",
    ),
    # false escapes of the first version (probe s42)
    "moco_key_detached_query_not": _source(
        "        q = self.hidden(x)\n        k = self.hidden(x * 2).detach()\n"
        "        return self.head0(q) + k.sum()"
    ),
    "the_last_layer_by_a_negative_index": _source("        return self.heads[-1](self.hidden(x))"),
    "continue_after_the_layer_ran": _source(
        "        h = self.hidden(x)\n        for head in self.heads:\n"
        "            h = h + head(h).sum()\n            if h.sum() > 1e9:\n                continue\n"
        "        return h"
    ),
    "a_loss_module_under_a_branch": _source(
        "        out = self.head0(self.hidden(x))\n        if task is not None:\n"
        "            out = out + self.criterion(out, out)\n        return out"
    ).replace(
        "        self.use_extra = use_extra\n",
        "        self.use_extra = use_extra\n        self.criterion = nn.MSELoss()\n",
    ),
    "a_constant_under_no_grad": _source(
        "        with torch.no_grad():\n            scale = self.decay * 2\n"
        "        return self.head0(self.hidden(x)) * scale"
    ).replace(
        "        self.use_extra = use_extra\n",
        "        self.use_extra = use_extra\n        self.decay = 0.5\n",
    ),
    "a_branch_outside_the_forward_pass": _source(
        "        return self.head0(self.hidden(x))"
    ).replace(
        "    def forward(",
        "    def n_params(self, extra=True):\n        n = self.hidden.weight.numel()\n"
        "        if extra:\n            n += self.head1.weight.numel()\n        return n\n\n    def forward(",
    ),
    "the_same_part_in_both_branches_of_the_loop": _source(
        "        return self.head0(self.hidden(x))",
        WHOLE + "\n    if task == 0:\n        loss = loss + model.head1(x).sum()\n"
        "    else:\n        loss = loss - model.head1(x).sum()",
    ),
    "a_part_under_the_main_guard": _source("        return self.head0(self.hidden(x))").replace(
        "model = Net()\n", "model = Net()\nif __name__ == '__main__':\n    print(model.head1(0))\n"
    ),
    "gradients_of_autograd_set_by_hand": _source(
        "        return self.head0(self.hidden(x))",
        WHOLE + "\n    params = list(model.parameters())\n"
        "    grads = torch.autograd.grad(loss, params)\n"
        "    for p, g in zip(params, grads):\n        p.grad = g",
    ),
    "a_method_under_no_grad": _source(
        "        return self.head0(self.hidden(x))",
        "    with torch.no_grad():\n        baseline = model.value(x)\n"
        "    loss = ((model.act(x) - y) ** 2).mean() + 0 * baseline.sum()",
    ).replace(
        "    def forward(",
        "    def value(self, x):\n        return self.head1(self.hidden(x))\n\n"
        "    def act(self, x):\n        return self.head0(self.hidden(x))\n\n    def forward(",
    ),
    "a_constant_head_through_the_wrapped_module": _source(
        "        return self.head0(self.hidden(x))",
        "    loss = ((model.module.heads[0](x) - y) ** 2).mean()",
    ).replace("model = Net()\n", "model = Net()\nmodel = torch.nn.DataParallel(model)\n"),
    # false escapes of probe s43
    "a_no_grad_feature_extractor_given_the_model_by_another_name": _source(
        "        return self.head0(self.hidden(x))",
        "    feats = extract(model, x)\n    loss = ((model(x, task) - y) ** 2).mean() + 0 * feats.sum()",
    ).replace(
        "model = Net()\n",
        "@torch.no_grad()\ndef extract(net, x):\n    return net.hidden(x)\n\n\nmodel = Net()\n",
    ),
    "an_evaluation_under_no_grad_picking_a_head": _source(
        "        return sum(head(self.hidden(x)).sum() for head in self.heads)",
        WHOLE,
    ).replace(
        "model = Net()\n",
        "def evaluate(net, x, task):\n    with torch.no_grad():\n"
        "        return net.heads[task](net.hidden(x))\n\n\nmodel = Net()\n",
    )
    + "    evaluate(model, x, task)\n",
    "a_head_picked_only_for_its_state_dict": _source(
        "        return sum(head(self.hidden(x)).sum() for head in self.heads)",
        WHOLE + "\n    torch.save(model.heads[task].state_dict(), 'head.pt')",
    ),
    # false escapes of probe s43 round 2
    "a_method_named_like_a_call_on_another_object": _source(
        "        return sum(head(self.hidden(x)).sum() for head in self.heads)",
        WHOLE + "\n    with torch.no_grad():\n        model.predict(x, task)\n    knn.predict(x)",
    ).replace(
        "    def forward(",
        "    def predict(self, x, task):\n        return self.heads[task](self.hidden(x))\n\n"
        "    def forward(",
    ),
    "a_no_grad_method_picking_a_head": _source(
        "        return sum(head(self.hidden(x)).sum() for head in self.heads)",
        WHOLE + "\n    model.predict(x, task)",
    ).replace(
        "    def forward(",
        "    @torch.no_grad()\n    def predict(self, x, task):\n"
        "        return self.heads[task](self.hidden(x))\n\n    def forward(",
    ),
    "a_delayed_loss_through_a_part_the_forward_runs": _source(
        "        return self.head0(self.hidden(x))",
        WHOLE + "\n    if task == 0:\n        loss = loss + model.head0(x).sum()",
    ),
    "a_periodic_sample_under_no_grad": _source(
        "        return self.head0(self.hidden(x))",
        WHOLE + "\n    if task == 0:\n        with torch.no_grad():\n            model.hidden(x)",
    ),
    "the_step_loop_over_every_head": _source(
        "        return self.head0(self.hidden(x))",
        "    h = model.hidden(x)\n    loss = 0\n    for head in model.heads:\n"
        "        loss = loss + ((head(h) - y) ** 2).mean()\n"
        "    for p in model.parameters():\n        if p.grad is None:\n            continue\n"
        "        p.data.mul_(1.0)",
    ),
    "a_step_function_running_the_whole_model": HEAD
    + CLASS.format(forward="        return self.head0(self.hidden(x))")
    + "def train_step(net, opt, x, y, task):\n    opt.zero_grad()\n"
    "    loss = ((net(x, task) - y) ** 2).mean()\n    loss.backward()\n    opt.step()\n\n\n"
    "model = Net()\noptimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\n"
    "for x, y, task in loader:\n    train_step(model, optimizer, x, y, task)\n",
    "a_part_its_forward_runs_under_no_grad_next_to_a_whole_call": _source(
        "        return self.head0(self.hidden(x))",
        "    with torch.no_grad():\n        target = model.head0(x)\n"
        "    loss = ((model(x, task) - target) ** 2).mean()",
    ),
}


@pytest.mark.parametrize("name", sorted(SKIPS))
def test_a_possible_gradient_skip_escapes_the_optimizer(name: str) -> None:
    source, said = SKIPS[name]
    escapes_in_both_targets(source, "torch.optim.AdamW", said)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_twin_translates(name: str) -> None:
    converts_in_both_targets(TWINS[name], "torch.optim.AdamW")


IMPORTING = (
    "import torch\nfrom pkg.net import Net\n\nmodel = Net()\n"
    "opt = torch.optim.AdamW(model.parameters(), lr=1e-3)\n"
)


def _escapes_of_a_package(tmp_path: Path, files: dict[str, str]) -> list[Record]:
    """The AdamW escapes of ``pkg/train.py`` converted with the package ``files``."""
    from tests.differential.test_hidden_code_of_another_file import _translated

    translation = _translated(tmp_path, files)
    return [r for r in translation.escapes if r.api == "torch.optim.AdamW"]


def test_a_skip_in_an_imported_model_file_escapes(tmp_path: Path) -> None:
    net = HEAD + CLASS.format(forward="        return self.heads[task](self.hidden(x))")
    (record,) = _escapes_of_a_package(tmp_path, {"pkg/net.py": net, "pkg/train.py": IMPORTING})
    assert "pkg/net.py:" in record.reason and "picked by a computed index" in record.reason


def test_an_imported_model_file_without_a_skip_translates(tmp_path: Path) -> None:
    net = HEAD + CLASS.format(forward="        return self.heads[0](self.hidden(x))")
    assert not _escapes_of_a_package(tmp_path, {"pkg/net.py": net, "pkg/train.py": IMPORTING})


def test_a_manual_zero_grad_helper_in_an_imported_file_translates(tmp_path: Path) -> None:
    helpers = "def clear(model):\n    for p in model.parameters():\n        p.grad = None\n"
    train = (
        "import torch\nfrom pkg.helpers import clear\n\nmodel = torch.nn.Linear(4, 2)\n"
        "opt = torch.optim.AdamW(model.parameters(), lr=1e-3)\nclear(model)\n"
    )
    assert not _escapes_of_a_package(tmp_path, {"pkg/helpers.py": helpers, "pkg/train.py": train})


FACTORY = (
    "import torch\n\n\ndef build_optimizer(model, lr=1e-3):\n"
    "    return torch.optim.AdamW(model.parameters(), lr=lr)\n"
)
FACTORY_LOOP = """\
import torch
from pkg.factory import build_optimizer
from pkg.net import Net

model = Net()
optimizer = build_optimizer(model)
for x, y, task in loader:
    optimizer.zero_grad()
{step}
    loss.backward()
    optimizer.step()
"""


def _factory_escapes(tmp_path: Path, step: str) -> list[Record]:
    """The AdamW escapes of an optimizer factory file whose optimizer the loop file steps
    (probe s42 c77, c78: as in timm, mmcv, detectron)."""
    from tests.differential.harness import translate_package

    net = HEAD + CLASS.format(forward="        return self.head0(torch.tanh(self.hidden(x)))")
    files = {
        "pkg/__init__.py": "",
        "pkg/net.py": net,
        "pkg/factory.py": FACTORY,
        "pkg/train.py": FACTORY_LOOP.format(step=step),
    }
    translation = translate_package(tmp_path, files, exact=True)["pkg/factory.py"]
    return [r for r in translation.escapes if r.api == "torch.optim.AdamW"]


@pytest.mark.parametrize(
    ("step", "said"),
    [
        (
            "    with torch.no_grad():\n        h = model.hidden(x)\n"
            "    loss = ((model.head0(h) - y) ** 2).mean()",
            "`model.hidden(x)` at pkg/train.py:10 runs only cut from the gradient",
        ),
        (
            "    loss = ((model.heads[task](model.hidden(x)) - y) ** 2).mean()",
            "`model.heads[task]` at pkg/train.py:9 runs one submodule picked",
        ),
    ],
)
def test_a_skip_where_a_factory_built_optimizer_is_stepped_escapes(
    tmp_path: Path, step: str, said: str
) -> None:
    (record,) = _factory_escapes(tmp_path, step)
    assert said in record.reason, record.reason


def test_a_factory_built_optimizer_stepped_on_the_whole_model_translates(tmp_path: Path) -> None:
    assert not _factory_escapes(tmp_path, "    loss = ((model(x, task) - y) ** 2).mean()")


def _imported_by_name_escapes(tmp_path: Path, forward: str) -> list[Record]:
    """The AdamW escapes of a loop whose model class comes from
    ``importlib.import_module("pkg.net")`` (probe s42 c40)."""
    train = (
        "import importlib\n\nimport torch\n\n"
        "model = importlib.import_module('pkg.net').Net()\n"
        "opt = torch.optim.AdamW(model.parameters(), lr=1e-3)\n"
    )
    files = {"pkg/net.py": HEAD + CLASS.format(forward=forward), "pkg/train.py": train}
    return _escapes_of_a_package(tmp_path, files)


def test_a_skip_in_a_model_file_imported_by_name_escapes(tmp_path: Path) -> None:
    forward = "        return self.heads[task](self.hidden(x))"
    (record,) = _imported_by_name_escapes(tmp_path, forward)
    assert "pkg/net.py:" in record.reason and "picked by a computed index" in record.reason


def test_a_model_file_imported_by_name_without_a_skip_translates(tmp_path: Path) -> None:
    assert not _imported_by_name_escapes(tmp_path, "        return self.heads[0](self.hidden(x))")


TRAINER = """\
import torch


class Trainer:
    def __init__(self, net, optimizer):
        self.model = net
        self.optimizer = optimizer

    def step(self, x, y, task):
        self.optimizer.zero_grad()
{step}
        loss.backward()
        self.optimizer.step()
"""
TRAINER_MAIN = (
    "import torch\nfrom pkg.net import Net\nfrom pkg.trainer import Trainer\n\nmodel = Net()\n"
    "opt = torch.optim.AdamW(model.parameters(), lr=1e-3)\ntrainer = Trainer(model, opt)\n"
)


def _trainer_escapes(tmp_path: Path, step: str) -> list[Record]:
    """The AdamW escapes of a file handing its model and optimizer to a trainer class of
    another file (``self.model = net``)."""
    from tests.differential.harness import translate_package

    net = HEAD + CLASS.format(forward="        return self.head0(torch.tanh(self.hidden(x)))")
    files = {
        "pkg/__init__.py": "",
        "pkg/net.py": net,
        "pkg/trainer.py": TRAINER.format(step=step),
        "pkg/train.py": TRAINER_MAIN,
    }
    translation = translate_package(tmp_path, files, exact=True)["pkg/train.py"]
    return [r for r in translation.escapes if r.api == "torch.optim.AdamW"]


def test_a_head_picked_by_a_trainer_class_of_another_file_escapes(tmp_path: Path) -> None:
    step = "        loss = ((self.model.heads[task](x) - y) ** 2).mean()"
    reasons = [r.reason for r in _trainer_escapes(tmp_path, step)]
    assert any("`self.model.heads[task]` at pkg/trainer.py:11" in r for r in reasons), reasons


def test_a_trainer_class_running_the_whole_model_translates(tmp_path: Path) -> None:
    assert not _trainer_escapes(tmp_path, "        loss = ((self.model(x, task) - y) ** 2).mean()")


# probe s43: the model handed on across files
ENGINE = """\
import torch


def train_one_epoch(model, optimizer, loader):
    for x, y, task in loader:
        optimizer.zero_grad()
{step}
        loss.backward()
        optimizer.step()
"""
PICK = "        loss = ((model.heads[task](x) - y) ** 2).mean()"
RUN = "        loss = ((model(x, task) - y) ** 2).mean()"
TWO_HOPS = (
    "        loss = compute_loss(model, x, y, task)",
    "def compute_loss(net, x, y, task):\n    return ((net.heads[task](x) - y) ** 2).mean()\n",
)
MAIN_DDP = (
    "import torch\nfrom pkg.engine import train_one_epoch\nfrom pkg.net import Net\n\n"
    "model = Net()\nmodel_without_ddp = model\n"
    "optimizer = torch.optim.AdamW(model_without_ddp.parameters(), lr=1e-3)\n"
    "train_one_epoch(model, optimizer, loader)\n"
)
MAIN_ALIAS = (
    "import torch\nfrom pkg.engine import train_one_epoch as fit\nfrom pkg.net import Net\n\n"
    "model = Net()\noptimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\n"
    "fit(model, optimizer, loader)\n"
)
FACTORY_OF_PARAMETERS = (
    "import torch\n\n\ndef build_optimizer(params):\n"
    "    return torch.optim.AdamW(params, lr=1e-3)\n"
)
TRAINER_BUILDING = (
    "import torch\n\n\nclass Trainer:\n    def __init__(self, model):\n"
    "        self.model = model\n"
    "        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3)\n"
)
TRAINER_LOOP = (
    "import torch\nfrom pkg.net import Net\nfrom pkg.trainer import Trainer\n\nmodel = Net()\n"
    "trainer = Trainer(model)\nfor x, y, task in loader:\n    trainer.optimizer.zero_grad()\n"
    "{step}\n    loss.backward()\n    trainer.optimizer.step()\n"
)


def _handed_escapes(tmp_path: Path, files: dict[str, str], where: str) -> list[Record]:
    """The AdamW escapes of ``pkg/<where>`` in the package ``files`` (with ``pkg/net.py``)."""
    from tests.differential.harness import translate_package

    net = HEAD + CLASS.format(forward="        return self.head0(torch.tanh(self.hidden(x)))")
    package = {"pkg/__init__.py": "", "pkg/net.py": net, **files}
    translation = translate_package(tmp_path, package, exact=True)[f"pkg/{where}"]
    return [r for r in translation.escapes if r.api == "torch.optim.AdamW"]


HANDED = {
    # DeiT / DETR: the optimizer over `model_without_ddp`, the engine given `model`
    "model_without_ddp": ({"pkg/train.py": MAIN_DDP, "pkg/engine.py": ENGINE}, "train.py"),
    "an_import_alias": ({"pkg/train.py": MAIN_ALIAS, "pkg/engine.py": ENGINE}, "train.py"),
    "two_hops": (
        {
            "pkg/train.py": MAIN_DDP,
            "pkg/engine.py": "from pkg.helpers import compute_loss\n" + ENGINE,
            "pkg/helpers.py": TWO_HOPS[1],
        },
        "train.py",
    ),
    "a_factory_given_parameters": (
        {
            "pkg/factory.py": FACTORY_OF_PARAMETERS,
            "pkg/train.py": FACTORY_LOOP.replace(
                "build_optimizer(model)", "build_optimizer(model.parameters())"
            ),
        },
        "factory.py",
    ),
    "a_trainer_building_the_optimizer": (
        {"pkg/trainer.py": TRAINER_BUILDING, "pkg/train.py": TRAINER_LOOP},
        "trainer.py",
    ),
}


def _handed_files(name: str, step: str) -> tuple[dict[str, str], str]:
    files, where = HANDED[name]
    if name == "two_hops":
        step = TWO_HOPS[0] if step == PICK else step
    indent = (
        "    " if name in ("a_factory_given_parameters", "a_trainer_building_the_optimizer") else ""
    )
    body = step[4:] if indent else step
    return {k: v.replace("{step}", body) for k, v in files.items()}, where


@pytest.mark.parametrize("name", sorted(HANDED))
def test_a_pick_where_the_model_is_handed_on_escapes(tmp_path: Path, name: str) -> None:
    files, where = _handed_files(name, PICK)
    reasons = [r.reason for r in _handed_escapes(tmp_path, files, where)]
    assert reasons and all("picked by a computed index" in r for r in reasons), reasons


@pytest.mark.parametrize("name", sorted(HANDED))
def test_the_whole_model_where_it_is_handed_on_translates(tmp_path: Path, name: str) -> None:
    files, where = _handed_files(name, RUN)
    assert not _handed_escapes(tmp_path, files, where)


FEATURES = "import torch\n\n\n@torch.no_grad()\ndef extract(net, x):\n    return net.hidden(x)\n"
FEATURES_LOOP = (
    "import torch\nfrom pkg.features import extract\nfrom pkg.net import Net\n\nmodel = Net()\n"
    "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\nfor x, y, task in loader:\n"
    "    optimizer.zero_grad()\n    h = extract(model, x)\n{step}\n    loss.backward()\n"
    "    optimizer.step()\n"
)


def test_a_no_grad_helper_of_another_file_next_to_a_whole_call_translates(tmp_path: Path) -> None:
    step = "    loss = ((model(x, task) - y) ** 2).mean() + 0 * h.sum()"
    files = {"pkg/features.py": FEATURES, "pkg/train.py": FEATURES_LOOP.format(step=step)}
    reasons = [r.reason for r in _handed_escapes(tmp_path, files, "train.py")]
    assert not any("no gradient" in r for r in reasons), reasons  # (another rule escapes it)


def test_a_no_grad_helper_of_another_file_is_the_only_run_of_a_part_escapes(tmp_path: Path) -> None:
    step = "    loss = ((model.head0(h) - y) ** 2).mean()"
    files = {"pkg/features.py": FEATURES, "pkg/train.py": FEATURES_LOOP.format(step=step)}
    reasons = [r.reason for r in _handed_escapes(tmp_path, files, "train.py")]
    assert reasons and all("`net.hidden(x)` at pkg/features.py:6" in r for r in reasons), reasons


HOLDERS = {
    "an_args_namespace": (
        "import torch\nfrom pkg.engine import train\nfrom pkg.net import Net\n\nmodel = Net()\n"
        "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\nargs.model = model\n"
        "train(args, optimizer, loader)\n",
        "def train(args, optimizer, loader):\n    for x, y, task in loader:\n"
        "        optimizer.zero_grad()\n{step}\n        loss.backward()\n        optimizer.step()\n",
        "        loss = ((args.model.heads[task](x) - y) ** 2).mean()",
    ),
    "a_trainer_subclass": (
        "import torch\nfrom pkg.engine import Mine\nfrom pkg.net import Net\n\n\nclass Base:\n"
        "    def __init__(self, model):\n        self.model = model\n"
        "        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3)\n",
        "from pkg import train\n\n\nclass Mine(train.Base):\n    def fit(self, loader):\n"
        "        for x, y, task in loader:\n            self.optimizer.zero_grad()\n"
        "{step}\n            loss.backward()\n            self.optimizer.step()\n",
        "            loss = ((self.model.heads[task](x) - y) ** 2).mean()",
    ),
}


@pytest.mark.parametrize("name", sorted(HOLDERS))
def test_a_pick_through_a_holder_or_a_subclass_escapes(tmp_path: Path, name: str) -> None:
    main, engine, step = HOLDERS[name]
    files = {"pkg/train.py": main, "pkg/engine.py": engine.replace("{step}", step)}
    reasons = [r.reason for r in _handed_escapes(tmp_path, files, "train.py")]
    assert reasons and all("picked by a computed index" in r for r in reasons), reasons


TEACHER_LOOP = (
    "import torch\nfrom pkg.net import Net\n\nmodel = Net()\n"
    "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\nfor x, y, task in loader:\n"
    "    optimizer.zero_grad()\n    with torch.no_grad():\n        target = model.{part}(x)\n"
    "    loss = ((model(x, task) - target) ** 2).mean()\n    loss.backward()\n"
    "    optimizer.step()\n"
)


def test_a_part_the_model_file_never_runs_cut_next_to_a_whole_call_escapes(tmp_path: Path) -> None:
    files = {"pkg/train.py": TEACHER_LOOP.format(part="head1")}
    reasons = [r.reason for r in _handed_escapes(tmp_path, files, "train.py")]
    assert reasons and all("`model.head1(x)` at train.py:9 runs only cut" in r for r in reasons)


def test_a_part_the_model_file_runs_cut_next_to_a_whole_call_translates(tmp_path: Path) -> None:
    files = {"pkg/train.py": TEACHER_LOOP.format(part="hidden")}
    assert not _handed_escapes(tmp_path, files, "train.py")


EVALUATORS = (
    "import torch\nfrom pkg.trainer import Evaluator\n\n\nclass FeatureEvaluator(Evaluator):\n"
    "    def run(self, x):\n        with torch.no_grad():\n            return self.model.hidden(x)\n"
)
EVALUATED = (
    "import torch\n\n\nclass Trainer:\n    def __init__(self, model, optimizer):\n"
    "        self.model = model\n        self.optimizer = optimizer\n\n"
    "    def fit(self, loader):\n        for x, y, task in loader:\n"
    "            self.optimizer.zero_grad()\n"
    "            loss = ((self.model(x, task) - y) ** 2).mean()\n"
    "            loss.backward()\n            self.optimizer.step()\n\n\n"
    "class Evaluator:\n    def __init__(self, model):\n        self.model = model\n"
)
EVALUATED_MAIN = (
    "import torch\nfrom pkg.evaluators import FeatureEvaluator\nfrom pkg.net import Net\n"
    "from pkg.trainer import Trainer\n\nmodel = Net()\n"
    "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\n"
    "Trainer(model, optimizer).fit(loader)\nFeatureEvaluator(Net()).run(x)\n"
)


def test_an_evaluator_of_another_model_beside_the_trainer_translates(tmp_path: Path) -> None:
    """Probe s43b FE4: only the class holding the trained model hands `self.model` on."""
    files = {
        "pkg/train.py": EVALUATED_MAIN,
        "pkg/trainer.py": EVALUATED,
        "pkg/evaluators.py": EVALUATORS,
    }
    reasons = [r.reason for r in _handed_escapes(tmp_path, files, "train.py")]
    assert not any("no gradient" in r for r in reasons), reasons
