"""Probe s35O, F3 (fixed): an argument of a torch constructor that the optax translation does not
emit is dropped with its expression: ``foreach=flag()`` (an argument the map ignores), or
``lr=pick()`` of an optimizer whose folded schedule sets the lr (OneCycleLR). A call there
runs in torch and not in the translation; when it changes state the program reads later, the
numbers differ: measured 0.83 relative off torch (``foreach=flag()`` doubling the next
optimizer's lr), 1.53 (``lr=pick()`` counting calls that OneCycleLR's ``max_lr`` reads),
float64, 60 updates. Now the constructor hook escapes when an argument of the constructor
or of a clip folded into it (their parameters aside) is not in the rendered translation and
may do something (``_check_nothing_dropped``: not ``is_pure``, a literal or a lambda, nor a
call of the map's ``pure_calls``/``python_values``). The twins still convert and match."""

from __future__ import annotations

import pytest

from tests.differential.harness import (
    EXACT,
    execute,
    float64,
    linear_problem,
    rel_error,
    run_optax,
    run_torch_loop,
    translate,
)

LOOP = """\
for batch in batches:
    opt.zero_grad()
    loss = batch()
    loss.backward()
    opt.step()
"""
CASES = {
    "ignored_argument_with_a_call": """\
import torch
state = {"scale": 1.0}
def flag():
    state["scale"] = 2.0
    return False
first = torch.optim.SGD(params, lr=0.05, foreach=flag())
opt = torch.optim.SGD(params, lr=0.05 * state["scale"], momentum=0.9)
"""
    + LOOP,
    "lr_replaced_by_the_schedule_with_a_call": """\
import torch
state = {"calls": 0}
def pick():
    state["calls"] += 1
    return 0.05
opt = torch.optim.SGD(params, lr=pick(), momentum=0.9)
sched = torch.optim.lr_scheduler.OneCycleLR(
    opt, max_lr=0.1 * (1 + state["calls"]), total_steps=80
)
"""
    + LOOP
    + "    sched.step()\n",
}


CASES["clip_argument_with_a_call"] = (
    CASES["ignored_argument_with_a_call"]
    .replace(", foreach=flag()", "")
    .replace(
        "    opt.step()\n",
        "    torch.nn.utils.clip_grad_norm_(params, 0.5, foreach=flag())\n    opt.step()\n",
    )
)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_dropped_argument_with_a_call_escapes(name: str) -> None:
    translation = translate(CASES[name], exact=True)
    reasons = [r.reason for r in translation.escapes if r.api != "torch.optim.Optimizer.step"]
    assert any("is not part of the translation" in r for r in reasons), translation.code


TWINS = {
    "ignored_literal": CASES["ignored_argument_with_a_call"].replace(
        "foreach=flag()", "foreach=False"
    ),
    "ignored_python_value": CASES["ignored_argument_with_a_call"].replace(
        "foreach=flag()", "fused=torch.cuda.is_available()"
    ),
    "replaced_lr_pure": CASES["lr_replaced_by_the_schedule_with_a_call"].replace(
        "lr=pick()", 'lr=float(state["calls"])'
    ),
    "clip_literal": CASES["clip_argument_with_a_call"].replace("foreach=flag()", "foreach=None"),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_twins_convert_and_match_torch(name: str) -> None:
    source = TWINS[name]
    assert source not in CASES.values(), name  # the replacement took
    rel = measure(source)
    assert rel < EXACT, f"rel={rel:.3e}"


def measure(source: str) -> float:
    translation = translate(source, exact=True)
    escaped = [r.reason for r in translation.escapes if r.api != "torch.optim.Optimizer.step"]
    assert not escaped, escaped
    with float64():
        problem = linear_problem()
        torch_traj = run_torch_loop(problem, source, {})
        params = list(problem.init.values())
        tx = execute(translation.code, {"params": params, "batches": []})["opt"]
        optax_traj, _ = run_optax(problem, tx)
        return rel_error(problem, torch_traj, optax_traj)
