"""A scheduler folds into its optimizer only when its step() runs exactly once per update.

Trap twins of the per-update shape: the schedule would advance at another rate than torch's."""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod

HEAD = (
    "import torch\n"
    "opt = torch.optim.SGD(params, lr=0.1)\n"
    "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)\n"
)


class SteppingCountTest(SwitcherooTest):
    def assertFolds(self, loop: str) -> None:
        out = run_codemod(HEAD + loop)
        self.assertIn("opt = optax.sgd(learning_rate=sched)", out)
        self.assertNotIn("sched.step()", out)

    def assertNotFolded(self, loop: str, why: str) -> None:
        out = run_codemod(HEAD + loop)
        self.assertNotIn("learning_rate=sched", out)
        (record,) = [r for r in self.records(HEAD + loop) if r.api.endswith("StepLR")]
        self.assertEqual(record.kind, "escaped")
        self.assertIn(why, record.reason)

    def test_one_step_after_the_update_folds(self) -> None:
        self.assertFolds("for batch in batches:\n    opt.step()\n    sched.step()\n")

    def test_both_on_one_line_folds(self) -> None:
        # The line keeps its code in the step's escape hatch; the schedule is folded.
        out = run_codemod(HEAD + "for batch in batches:\n    opt.step(); sched.step()\n")
        self.assertIn("opt = optax.sgd(learning_rate=sched)", out)

    def test_a_jump_before_both_folds(self) -> None:
        self.assertFolds(
            "for batch in batches:\n    if skip(batch):\n        continue\n"
            "    opt.step()\n    sched.step()\n"
        )

    def test_scheduler_stepped_twice_per_update(self) -> None:
        self.assertNotFolded(
            "for batch in batches:\n    opt.step()\n    sched.step()\n    sched.step()\n",
            "step() is called 2 times",
        )

    def test_optimizer_stepped_twice_per_scheduler_step(self) -> None:
        self.assertNotFolded(
            "for batch in batches:\n    opt.step()\n    opt.step()\n    sched.step()\n",
            "the optimizer's step() is called in 2 places",
        )

    def test_optimizer_also_stepped_in_another_function(self) -> None:
        self.assertNotFolded(
            "def train():\n    for batch in batches:\n        opt.step()\n        sched.step()\n"
            "def finetune():\n    opt.step()\n",
            "the optimizer's step() is called in 2 places",
        )

    def test_continue_between_the_two_steps(self) -> None:
        self.assertNotFolded(
            "for batch in batches:\n    opt.step()\n    if skip(batch):\n        continue\n"
            "    sched.step()\n",
            "a `continue`, `break`, `return` or `raise` between",
        )

    def test_return_between_the_two_steps(self) -> None:
        self.assertNotFolded(
            "def train():\n    for batch in batches:\n        opt.step()\n"
            "        if done():\n            return\n        sched.step()\n",
            "a `continue`, `break`, `return` or `raise` between",
        )


class PerEpochSteppingCountTest(SwitcherooTest):
    """With --steps-per-epoch, a scheduler folds as `count // steps` only when its step()
    runs exactly once per epoch, after the epoch's updates."""

    def assertFoldsPerEpoch(self, loop: str) -> None:
        out = run_codemod(HEAD + loop, steps_per_epoch="100")
        self.assertIn("(count // (100))", out)
        self.assertNotIn("sched.step()", out)

    def assertNotFoldedPerEpoch(self, loop: str, why: str) -> None:
        out = run_codemod(HEAD + loop, steps_per_epoch="100")
        self.assertNotIn("learning_rate=sched", out)
        records = self.records(HEAD + loop, steps_per_epoch="100")
        (record,) = [r for r in records if r.api.endswith("StepLR")]
        self.assertEqual(record.kind, "escaped")
        self.assertIn(why, record.reason)

    def test_one_step_after_the_epoch_folds(self) -> None:
        self.assertFoldsPerEpoch(
            "for epoch in range(10):\n    for batch in batches:\n        opt.step()\n"
            "    sched.step()\n"
        )

    def test_step_under_a_condition_of_the_epoch_loop(self) -> None:
        self.assertNotFoldedPerEpoch(
            "for epoch in range(10):\n    for batch in batches:\n        opt.step()\n"
            "    if epoch > 3:\n        sched.step()\n",
            "cannot tell whether step() runs once",
        )

    def test_step_twice_per_epoch(self) -> None:
        self.assertNotFoldedPerEpoch(
            "for epoch in range(10):\n    for batch in batches:\n        opt.step()\n"
            "    sched.step()\n    sched.step()\n",
            "step() is called 2 times in the epoch loop",
        )

    def test_step_before_the_epoch_updates(self) -> None:
        self.assertNotFoldedPerEpoch(
            "for epoch in range(10):\n    sched.step()\n    for batch in batches:\n"
            "        opt.step()\n",
            "cannot tell whether step() runs once",
        )

    def test_continue_between_the_epoch_updates_and_the_step(self) -> None:
        self.assertNotFoldedPerEpoch(
            "for epoch in range(10):\n    for batch in batches:\n        opt.step()\n"
            "    if epoch < 3:\n        continue\n    sched.step()\n",
            "cannot tell whether step() runs once",
        )

    def test_step_before_a_training_function_is_called(self) -> None:
        self.assertNotFoldedPerEpoch(
            "def train(optimizer):\n    for batch in batches:\n        optimizer.step()\n"
            "for epoch in range(10):\n    sched.step()\n    train(opt)\n",
            "cannot tell whether step() runs once",
        )


class SteppingInExpressionsTest(SwitcherooTest):
    """A step() inside a conditional expression, `and`/`or` or a comprehension may run any
    number of times per update: the scheduler escapes."""

    def assertNotFolded(self, loop: str) -> None:
        out = run_codemod(HEAD + loop)
        self.assertNotIn("learning_rate=sched", out)
        (record,) = [r for r in self.records(HEAD + loop) if r.api.endswith("StepLR")]
        self.assertIn("in a conditional expression, an `and`/`or`", record.reason)

    def test_scheduler_step_in_a_conditional_expression(self) -> None:
        self.assertNotFolded(
            "for batch in batches:\n    opt.step()\n    sched.step() if warm else None\n"
        )

    def test_scheduler_step_after_and(self) -> None:
        self.assertNotFolded("for batch in batches:\n    opt.step()\n    warm and sched.step()\n")

    def test_scheduler_step_in_a_comprehension(self) -> None:
        self.assertNotFolded(
            "for batch in batches:\n    opt.step()\n    [sched.step() for _ in range(2)]\n"
        )

    def test_optimizer_step_in_a_conditional_expression(self) -> None:
        self.assertNotFolded(
            "for batch in batches:\n    opt.step() if ok else None\n    sched.step()\n"
        )


class StepsPerEpochBindingTest(SwitcherooTest):
    """The --steps-per-epoch expression is evaluated where the schedule is built: a name it
    reads that is assigned only after the scheduler escapes (the output raised NameError)."""

    LOOP = (
        "for epoch in range(3):\n    for batch in loader:\n        opt.step()\n    sched.step()\n"
    )

    def test_loader_assigned_after_the_scheduler(self) -> None:
        source = HEAD + "loader = make_loader()\n" + self.LOOP
        out = run_codemod(source, steps_per_epoch="len(loader)")
        self.assertNotIn("learning_rate=sched", out)
        records = self.records(source, steps_per_epoch="len(loader)")
        (record,) = [r for r in records if r.api.endswith("StepLR")]
        self.assertIn("reads `loader`, which is assigned after this scheduler", record.reason)

    def test_loader_assigned_before_the_scheduler_folds(self) -> None:
        source = "loader = make_loader()\n" + HEAD + self.LOOP
        out = run_codemod(source, steps_per_epoch="len(loader)")
        self.assertIn("opt = optax.sgd(learning_rate=sched)", out)


class PerEpochMomentumCyclingTest(SwitcherooTest):
    """A per-epoch OneCycleLR that cycles beta1 escapes: the beta1 schedule followed the
    update count while the lr followed epochs (rel 0.016 found by the adversarial hunt)."""

    SOURCE = (
        "import torch\nopt = torch.optim.Adam(params, lr=0.01)\n"
        "sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.05, total_steps=40{extra})\n"
        "for epoch in range(3):\n    for batch in loader:\n        opt.step()\n"
        "    sched.step()\n"
    )

    def test_momentum_cycling_per_epoch_escapes(self) -> None:
        records = self.records(self.SOURCE.format(extra=""), steps_per_epoch="7")
        (record,) = [r for r in records if r.api.endswith("OneCycleLR")]
        self.assertEqual(record.kind, "escaped")
        self.assertIn("also cycles the optimizer's momentum", record.reason)

    def test_without_momentum_cycling_folds(self) -> None:
        source = self.SOURCE.format(extra=", cycle_momentum=False")
        out = run_codemod(source, steps_per_epoch="7")
        self.assertIn("opt = optax.adam(learning_rate=sched)", out)
