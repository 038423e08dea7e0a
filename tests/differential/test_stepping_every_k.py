"""A scheduler stepped every k updates (``if step % k == 0: sched.step()``) folds as
``schedule((count + r) // k)``: torch's own loop, run with its counter, against optax running
the translated optimizer (float64, 60 updates). Trap twins escape."""

from __future__ import annotations

import pytest

from tests.differential.harness import EXACT, measure_loop, translate

HEAD = (
    "import torch\n"
    "opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)\n"
    "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)\n"
)
BODY = "    opt.zero_grad()\n    loss = batch()\n    loss.backward()\n    opt.step()\n"


def _loop(start: str, after_step: str, before_step: str = "") -> str:
    return HEAD + start + "for batch in batches:\n" + before_step + BODY + after_step


# (counter start, statements after opt.step(), statements before the body)
EVERY_K = {
    "increment then check": (
        "step = 0\n",
        "    step += 1\n    if step % 3 == 0:\n        sched.step()\n",
        "",
    ),
    "check then increment": (
        "step = 0\n",
        "    if step % 3 == 0:\n        sched.step()\n    step += 1\n",
        "",
    ),
    "check (step + 1) then increment": (
        "step = 0\n",
        "    if (step + 1) % 4 == 0:\n        sched.step()\n    step += 1\n",
        "",
    ),
    "increment first in the body": (
        "global_step = 5\n",
        "    if global_step % 4 == 0:\n        sched.step()\n",
        "    global_step += 1\n",
    ),
    "start at one, one-line if": (
        "step = 1\n",
        "    if step % 2 == 0: sched.step()\n    step += 1\n",
        "",
    ),
    "k bound to a name": (
        "EVERY = 4\nstep = 0\n",
        "    step += 1\n    if step % EVERY == 0:\n        sched.step()\n",
        "",
    ),
    "step = step + 1": (
        "step = 0\n",
        "    step = step + 1\n    if step % 3 == 0:\n        sched.step()\n",
        "",
    ),
    "every update": (
        "step = 0\n",
        "    step += 1\n    if step % 1 == 0:\n        sched.step()\n",
        "",
    ),
    "not step % k": (
        "step = 0\n",
        "    step += 1\n    if not step % 3:\n        sched.step()\n",
        "",
    ),
    "not (step + 1) % k, then increment": (
        "step = 0\n",
        "    if not (step + 1) % 4:\n        sched.step()\n    step += 1\n",
        "",
    ),
}


@pytest.mark.parametrize("case", list(EVERY_K), ids=list(EVERY_K))
def test_every_k_updates_matches_torch(case: str) -> None:
    rel, translation = measure_loop(_loop(*EVERY_K[case]), exact=True)
    assert "sched.step()" not in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def test_every_k_in_an_epoch_loop_with_a_global_counter_matches_torch() -> None:
    # the counter runs across epochs: one epoch over all 60 batches here, k does not divide it
    source = (
        HEAD
        + "global_step = 0\nfor epoch in range(1):\n    for batch in batches:\n"
        + "".join("    " + line + "\n" for line in BODY.splitlines())
        + "        global_step += 1\n        if global_step % 7 == 0:\n            sched.step()\n"
    )
    rel, translation = measure_loop(source, exact=True)
    assert "// 7" in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


ENUMERATED = {
    "from zero": "enumerate(batches)",
    "from one": "enumerate(batches, 1)",
    "from a start keyword": "enumerate(batches, start=5)",
}


@pytest.mark.parametrize("iterated", list(ENUMERATED.values()), ids=list(ENUMERATED))
def test_every_k_on_the_index_of_the_one_loop_matches_torch(iterated: str) -> None:
    source = (
        HEAD
        + f"for step, batch in {iterated}:\n"
        + BODY
        + "    if (step + 1) % 4 == 0:\n        sched.step()\n"
    )
    rel, translation = measure_loop(source, exact=True)
    assert "sched.step()" not in translation.code
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"


def _scheduler_escape(source: str) -> str:
    translation = translate(source)
    (record,) = [r for r in translation.escapes if r.api.endswith("StepLR")]
    assert "learning_rate=sched" not in translation.code
    return record.reason


TRAPS = {
    "the epoch counter": (
        HEAD
        + "for epoch in range(3):\n    for batch in batches:\n"
        + "".join("    " + line + "\n" for line in BODY.splitlines())
        + "        if epoch % 2 == 0:\n            sched.step()\n",
        "not provably the update count",
    ),
    "a counter also incremented elsewhere": (
        _loop("step = 0\n", "    step += 1\n    if step % 3 == 0:\n        sched.step()\n")
        + "step += 1\n",
        "assigned 3 times",
    ),
    "the batch index of an inner loop": (
        HEAD
        + "for epoch in range(3):\n    for i, batch in enumerate(batches):\n"
        + "".join("    " + line + "\n" for line in BODY.splitlines())
        + "        if i % 2 == 0:\n            sched.step()\n",
        "not provably the update count",
    ),
    "the index of a loop with a continue": (
        HEAD
        + "for step, batch in enumerate(batches):\n    if skip(batch):\n        continue\n"
        + BODY
        + "    if step % 4 == 0:\n        sched.step()\n",
        "can skip an update",
    ),
    "the index of a loop over a rebound enumerate": (
        HEAD
        + "enumerate = my_enumerate\nfor step, batch in enumerate(batches):\n"
        + BODY
        + "    if step % 4 == 0:\n        sched.step()\n",
        "not as the index of",
    ),
    "a counter reset each epoch": (
        HEAD
        + "for epoch in range(3):\n    step = 0\n    for batch in batches:\n"
        + "".join("    " + line + "\n" for line in BODY.splitlines())
        + "        step += 1\n        if step % 2 == 0:\n            sched.step()\n",
        "not in the optimizer's block",
    ),
    "k not a constant": (
        _loop("step = 0\n", "    step += 1\n    if step % k == 0:\n        sched.step()\n"),
        "not `counter % k == 0` with k an integer literal",
    ),
    "k rebound": (
        _loop(
            "EVERY = 4\nstep = 0\n",
            "    step += 1\n    if step % EVERY == 0:\n        sched.step()\n",
        )
        + "EVERY = 2\n",
        "not `counter % k == 0` with k an integer literal",
    ),
    "a counter incremented by two": (
        _loop("step = 0\n", "    step += 2\n    if step % 4 == 0:\n        sched.step()\n"),
        "not provably the update count",
    ),
    "a counter incremented under a condition": (
        _loop(
            "step = 0\n",
            "    if ok(batch):\n        step += 1\n    if step % 3 == 0:\n        sched.step()\n",
        ),
        "not provably the update count",
    ),
    "a continue between the increment and the check": (
        _loop(
            "step = 0\n",
            "    step += 1\n    if skip(batch):\n        continue\n"
            "    if step % 3 == 0:\n        sched.step()\n",
        ),
        "cannot tell whether step() runs once per optimizer update",
    ),
    "a global counter": (
        HEAD
        + "step = 0\ndef train():\n    global step\n    for batch in batches:\n"
        + "".join("    " + line + "\n" for line in BODY.splitlines())
        + "        step += 1\n        if step % 3 == 0:\n            sched.step()\n",
        "not provably the update count",
    ),
    "a truthy remainder (steps on the other updates)": (
        _loop("step = 0\n", "    step += 1\n    if step % 3:\n        sched.step()\n"),
        "not `counter % k == 0`",
    ),
    "a remainder other than zero": (
        _loop("step = 0\n", "    step += 1\n    if step % 3 == 1:\n        sched.step()\n"),
        "not `counter % k == 0`",
    ),
    "an else branch": (
        _loop(
            "step = 0\n",
            "    step += 1\n    if step % 3 == 0:\n        sched.step()\n    else:\n        log()\n",
        ),
        "cannot tell whether step() runs once per optimizer update",
    ),
}


@pytest.mark.parametrize("case", list(TRAPS), ids=list(TRAPS))
def test_every_k_trap_escapes(case: str) -> None:
    source, why = TRAPS[case]
    assert why in _scheduler_escape(source)
