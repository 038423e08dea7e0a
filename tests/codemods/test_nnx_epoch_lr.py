"""optimizer.TorchToNNX, schedulers stepped once per epoch: the schedule is not folded into
the tx; the lr starts at its first value (``inject_hyperparams``) and is written where torch
steps the scheduler (``sched(epoch + 1)``). Where ``epoch + 1`` is not provably the
scheduler's step count, its steps are counted where they run (``sched(sched_count)``; run in
``tests/differential/test_nnx_counted_lr.py``), or it escapes; the optax target's output does
not change."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import SwitcherooTest, run_codemod, stock_clip
from tests.test_properties import check_invariants

HEADER = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
"""

BATCHES = """\
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""

PER_EPOCH = HEADER + "for epoch in range(10):\n" + BATCHES + "    sched.step()\n"

WRITE = 'opt.opt_state.hyperparams["learning_rate"][...] = sched(epoch + 1)'
FIRST_LR = "learning_rate=float(sched(0))"


def convert(code: str, command: type = TorchToNNX) -> str:
    return run_codemod(textwrap.dedent(code), command)


def escaped(code: str) -> str:
    """The NNX output of ``code``: the scheduler escaped, no lr written."""
    output = convert(code)
    assert BEGIN in output and WRITE not in output and FIRST_LR not in output, output
    return output


COUNTED_WRITE = 'opt.opt_state.hyperparams["learning_rate"][...] = sched(sched_count)'


def counted(code: str) -> str:
    """The NNX output of ``code`` where ``epoch + 1`` is not the proved step count: the
    scheduler's steps counted where they run (``analysis/counted.py``), the lr written."""
    output = convert(code)
    assert BEGIN not in output and COUNTED_WRITE in output, output
    assert "sched_count = 0\n" in output and "sched_count += 1\n" in output, output
    return output


class NnxEpochLrTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_a_per_epoch_step_lr_becomes_a_write_of_the_schedule_at_the_epoch(self) -> None:
        self.assertConverts(
            PER_EPOCH.replace("    sched.step()", "    sched.step()  # decay"),
            """\
import optax
from flax import nnx

model = make_model()
sched = optax.exponential_decay(0.1, transition_steps=2, decay_rate=0.5, staircase=True)
opt = nnx.Optimizer(model, optax.inject_hyperparams(optax.sgd)(learning_rate=float(sched(0)), momentum=0.9), wrt=nnx.Param)
for epoch in range(10):
    for x, y in loader:
        def loss_fn(model):
            loss = ((model(x) - y) ** 2).mean()
            return loss
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
    opt.opt_state.hyperparams["learning_rate"][...] = sched(epoch + 1)  # decay
""",
        )

    def test_the_written_schedule_is_not_also_folded_as_the_learning_rate(self) -> None:
        # Danger: folded as well (learning_rate=sched), it would advance every update.
        output = convert(PER_EPOCH)
        assert "learning_rate=sched," not in output and "learning_rate=sched)" not in output
        assert FIRST_LR in output and WRITE in output, output

    def test_the_optax_target_still_escapes_a_per_epoch_scheduler(self) -> None:
        output = convert(PER_EPOCH, TorchToOptax)
        assert BEGIN in output and "--steps-per-epoch" in output, output
        assert "hyperparams" not in output and "sched(0)" not in output, output

    def test_steps_per_epoch_still_folds_the_schedule(self) -> None:
        output = run_codemod(PER_EPOCH, TorchToNNX, steps_per_epoch="len(loader)")
        assert "(count // steps_per_epoch)" in output and WRITE not in output, output

    def test_a_second_run_leaves_the_write_as_it_is(self) -> None:
        output = check_invariants(PER_EPOCH, TorchToNNX)
        assert WRITE in output, output

    def test_a_step_under_a_condition_on_the_epoch_counts_the_steps(self) -> None:
        counted(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    if epoch % 2 == 0:\n        sched.step()\n"
        )

    def test_a_break_in_the_epoch_loop_before_the_step_counts_the_steps(self) -> None:
        counted(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    if done():\n        break\n    sched.step()\n"
        )

    def test_a_scheduler_stepped_per_batch_and_per_epoch_counts_the_steps(self) -> None:
        counted(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "        sched.step()\n    sched.step()\n"
        )

    def test_a_rebound_epoch_counts_the_steps(self) -> None:
        counted(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    epoch = epoch * 2\n    sched.step()\n"
        )

    def test_an_epoch_loop_from_one_writes_the_schedule_at_the_epoch(self) -> None:
        # A fresh scheduler's k-th step() sets sched(k): from 1, the k-th epoch is `epoch`.
        output = convert(HEADER + "for epoch in range(1, 10):\n" + BATCHES + "    sched.step()\n")
        assert 'hyperparams["learning_rate"][...] = sched(epoch)\n' in output, output

    def test_an_epoch_loop_from_a_name_writes_the_schedule_counted_from_it(self) -> None:
        code = HEADER + "for epoch in range(start, n):\n" + BATCHES + "    sched.step()\n"
        output = convert(code)
        assert 'hyperparams["learning_rate"][...] = sched(epoch - start + 1)\n' in output, output

    def test_an_epoch_loop_from_a_start_rebound_in_it_counts_the_steps(self) -> None:
        counted(
            HEADER
            + "for epoch in range(start, n):\n"
            + BATCHES
            + "    start = resume_point()\n    sched.step()\n"
        )

    def test_an_epoch_loop_from_a_global_start_counts_the_steps(self) -> None:
        counted(
            HEADER
            + "def resume():\n    global start\n    start = 3\n\n"
            + "for epoch in range(start, n):\n"
            + BATCHES
            + "    sched.step()\n"
        )

    def test_an_epoch_loop_from_an_attribute_counts_from_it(self) -> None:
        """s14: ``range(args.start_epoch, n)`` with nothing storing ``.start_epoch`` in the file."""
        code = (
            HEADER + "for epoch in range(args.start_epoch, n):\n" + BATCHES + "    sched.step()\n"
        )
        output = convert(code)
        self.assertNotIn(BEGIN, output)
        self.assertIn("= sched(epoch - args.start_epoch + 1)", output)

    def test_an_epoch_loop_from_an_attribute_stored_in_the_loop_counts_the_steps(self) -> None:
        counted(
            HEADER
            + "for epoch in range(args.start_epoch, n):\n"
            + BATCHES
            + "    args.start_epoch = 0\n    sched.step()\n"
        )

    def test_an_epoch_loop_with_a_range_step_counts_the_steps(self) -> None:
        counted(HEADER + "for epoch in range(0, 10, 2):\n" + BATCHES + "    sched.step()\n")

    def test_a_step_in_another_function_escapes(self) -> None:
        escaped(
            HEADER
            + "def advance(sched):\n    sched.step()\n\n"
            + "for epoch in range(10):\n"
            + BATCHES
            + "    advance(sched)\n"
        )

    def test_an_epoch_loop_run_again_on_the_same_scheduler_counts_the_steps(self) -> None:
        counted(
            HEADER
            + "for run in range(2):\n"
            + "  for epoch in range(10):\n"
            + textwrap.indent(BATCHES, "  ")
            + "      sched.step()\n"
        )

    def test_a_manual_lr_write_next_to_the_scheduler_escapes(self) -> None:
        escaped(
            HEADER
            + "for epoch in range(10):\n"
            + "    opt.param_groups[0]['lr'] = 0.1\n"
            + BATCHES
            + "    sched.step()\n"
        )

    def test_a_user_float_escapes(self) -> None:
        output = convert("float = None\n" + PER_EPOCH)
        assert BEGIN in output and FIRST_LR not in output, output

    def test_a_scheduler_rebound_in_the_epoch_loop_escapes(self) -> None:
        escaped(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    sched.step()\n"
            + "    sched = restored_scheduler()\n"
        )

    def test_a_scheduler_rebound_before_the_epoch_loop_escapes(self) -> None:
        escaped(
            HEADER
            + "sched = restored_scheduler()\n"
            + "for epoch in range(10):\n"
            + BATCHES
            + "    sched.step()\n"
        )

    def test_an_attribute_scheduler_built_in_the_epoch_loops_method_writes_the_lr(self) -> None:
        # s14e: `self.sched` built in the method of its epoch loop, stored nowhere else (was:
        # every attribute scheduler escaped); the traps: tests/codemods/test_nnx_trainer_epoch_lr

        code = PER_EPOCH.replace("sched = ", "self.sched = ").replace(
            "sched.step", "self.sched.step"
        )
        code = code.replace("opt = ", "self.opt = ").replace("(opt", "(self.opt")
        code = code.replace("opt.", "self.opt.").replace("model = make", "model = make")
        body = textwrap.indent(code.split("\n", 2)[2], "        ")
        output = convert("import torch\n\nclass T:\n    def fit(self):\n" + body)
        assert 'hyperparams["learning_rate"][...] = self.sched(epoch + 1)' in output, output

    def test_an_accumulating_step_of_a_written_schedule_escapes(self) -> None:
        # Not done: optax.MultiSteps around an injected tx; the step stays torch code, flagged.
        output = convert(
            HEADER
            + "for epoch in range(10):\n"
            + "    for i, (x, y) in enumerate(loader):\n"
            + "        loss = ((model(x) - y) ** 2).mean() / 2\n"
            + "        loss.backward()\n"
            + "        if (i + 1) % 2 == 0:\n"
            + "            opt.step()\n"
            + "            opt.zero_grad()\n"
            + "    sched.step()\n"
        )
        assert BEGIN in output and "MultiSteps" not in output, output
        assert "        loss.backward()\n" in output, output


INNER_BREAK = """\
    for i, (x, y) in enumerate(loader):
        if i >= max_batches:
            {jump}
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""


class NnxEpochLoopJumpsTest(SwitcherooTest):
    """A jump that leaves only the batch loop cannot skip ``sched.step()``: the lr is written
    at ``epoch + 1``; one that leaves the epoch loop or skips the rest of its body makes that
    count unprovable: the steps are counted where they run."""

    TRANSFORM = TorchToNNX

    def test_a_break_of_the_batch_loop_writes_the_lr(self) -> None:
        code = HEADER + "for epoch in range(10):\n" + INNER_BREAK.format(jump="break")
        output = convert(code + "    sched.step()\n")
        assert BEGIN not in output and WRITE in output, output

    def test_a_continue_of_the_batch_loop_writes_the_lr(self) -> None:
        code = HEADER + "for epoch in range(10):\n" + INNER_BREAK.format(jump="continue")
        output = convert(code + "    sched.step()\n")
        assert BEGIN not in output and WRITE in output, output

    def test_a_continue_of_the_epoch_loop_before_the_step_counts_the_steps(self) -> None:
        counted(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    if skip(epoch):\n        continue\n    sched.step()\n"
        )

    def test_a_break_of_the_epoch_loop_after_the_step_counts_the_steps(self) -> None:
        counted(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    sched.step()\n    if done():\n        break\n"
        )

    def test_a_break_in_the_else_of_the_batch_loop_counts_the_steps(self) -> None:
        # The `else:` of the batch loop belongs to the epoch loop: its break leaves that one.
        counted(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    else:\n        break\n"
            + "    sched.step()\n"
        )

    def test_a_return_in_the_batch_loop_escapes(self) -> None:
        body = textwrap.indent(
            "for epoch in range(10):\n" + INNER_BREAK.format(jump="return") + "    sched.step()\n",
            "    ",
        )
        output = convert(HEADER + "def fit(max_batches):\n" + body)
        assert WRITE not in output, output

    def test_a_clipped_optimizer_with_a_written_schedule_writes_the_chain_element(self) -> None:
        # The tx is a chain (clip, injected optimizer): opt.opt_state is a tuple, the lr is
        # written to its injected element (s14; was an escape).
        clipped = BATCHES.replace(
            "        opt.step()\n",
            "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n        opt.step()\n",
        )
        output = convert(HEADER + "for epoch in range(10):\n" + clipped + "    sched.step()\n")
        written = WRITE.replace("opt.opt_state.", "opt.opt_state[1].")
        assert f"optax.chain({stock_clip('1.0')}, optax.inject_hyperparams(" in output
        assert written in output and BEGIN not in output, output
