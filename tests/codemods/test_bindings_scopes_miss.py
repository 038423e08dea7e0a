"""Bindings libcst's scope analysis does not record (probe s31 G7): a ``match`` capture
(``case lr:``, ``case {"gamma": gamma}``, ``case [lr, *rest]``), ``exec("lr = ...")`` or
``globals()[...] =`` between an optimizer and its scheduler, or anywhere for a clip's threshold,
would be crossed by the fold's move (the schedule read the old value: 2.1-106 relative off torch
before). The schedule and the clip now stay torch code; twins that do not bind the moved names
still fold."""

from __future__ import annotations

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX
from tests.support import code_lines, run_codemod

HEAD = "import torch\nmodel = make_model()\nlr = 0.1\ngamma = 0.7\n"
OPT = "opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)\n"
SCHED = "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=gamma)\n"
LOOP = "for x, y in loader:\n    loss = model(x)\n    loss.backward()\n    CLIP\n    opt.step()\n    sched.step()\n"

BETWEEN = {
    "match_capture": "match 0.5:\n    case gamma:\n        pass\n",
    "match_mapping_capture": 'match {"gamma": 0.2}:\n    case {"gamma": gamma}:\n        pass\n',
    "match_sequence_capture": "match [0.5, 1]:\n    case [gamma, *rest]:\n        pass\n",
    "exec": 'exec("gamma = 0.5")\n',
    "globals": 'globals()["gamma"] = 0.2\n',
}


def folded(output: str) -> bool:
    return any("exponential_decay" in line or "lambda count" in line for line in code_lines(output))


@pytest.mark.parametrize("command", [None, TorchToNNX], ids=["optax", "nnx"])
@pytest.mark.parametrize("name", sorted(BETWEEN))
def test_a_binding_scopes_miss_keeps_the_schedule(name: str, command: type | None) -> None:
    source = HEAD + OPT + BETWEEN[name] + SCHED + LOOP.replace("    CLIP\n", "")
    output = run_codemod(source) if command is None else run_codemod(source, command)
    assert not folded(output), output


@pytest.mark.parametrize("command", [None, TorchToNNX], ids=["optax", "nnx"])
def test_the_optimizer_moved_down_past_a_capture_of_its_lr_stays(command: type | None) -> None:
    """``step`` is bound after the optimizer: the optimizer would move down to the schedule,
    its ``lr`` read after ``case lr:`` rebinds it."""
    between = "step = 3\nmatch 0.5:\n    case lr:\n        pass\n"
    source = HEAD + OPT + between + SCHED.replace("step_size=3", "step_size=step")
    source += LOOP.replace("    CLIP\n", "")
    output = run_codemod(source) if command is None else run_codemod(source, command)
    assert not folded(output), output


def test_a_match_capturing_other_names_still_folds() -> None:
    source = (
        HEAD
        + OPT
        + "match 0.5:\n    case other:\n        pass\n"
        + SCHED
        + LOOP.replace("    CLIP\n", "")
    )
    assert folded(run_codemod(source))


CLIPS = {
    "match_capture_in_the_loop": "match step:\n        case max_norm:\n            pass\n",
    "exec_in_the_loop": 'exec("max_norm = 0.05")\n',
}


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_a_clip_threshold_a_binding_scopes_miss_may_change_stays(name: str) -> None:
    clip = CLIPS[name] + "    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)"
    source = "max_norm = 1.0\n" + HEAD + OPT + SCHED + LOOP.replace("CLIP", clip)
    output = run_codemod(source)
    assert not any("optax.stateless(" in line for line in code_lines(output)), output
    assert "may bind it again" in output, output


def test_vars_of_an_object_does_not_count() -> None:
    """``vars(args)`` reads an object's attributes (their own checks see them)."""
    clip = "print(vars(cfg))\n    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)"
    source = "max_norm = 1.0\n" + HEAD + OPT + SCHED + LOOP.replace("CLIP", clip)
    assert any("optax.stateless(" in line for line in code_lines(run_codemod(source)))


@pytest.mark.parametrize(
    ("case", "params"), [("case [w, b]:", "[w]"), ("case [w, *rest]:", "rest")]
)
def test_parameters_bound_by_a_match_capture_escape(case: str, params: str) -> None:
    """A name a capture binds is not a snippet's free name (0.565 / 1.31 relative before)."""
    source = (
        "import torch\nmodel = Net()\nmatch list(model.parameters()):\n"
        f"    {case}\n        pass\nopt = torch.optim.SGD({params}, lr=0.05, momentum=0.9)\n"
    )
    output = run_codemod(source)
    assert "= optax.sgd(" not in output and "ESCAPE-BEGIN torch.optim.SGD" in output, output
