"""A schedule is put next to its optimizer (the schedule becomes its learning rate) only when
that does not reorder calls: the optimizer's arguments (its parameters aside), the schedule's
and the statements between them may each hold calls, but not two of them (random draws)."""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod

LOOP = "for batch in batches:\n    opt.step()\n    sched.step()\n"


class ScheduleMoveOrderTest(SwitcherooTest):
    def assertNotFolded(self, source: str) -> None:
        out = run_codemod(source + LOOP)
        self.assertNotIn("learning_rate=sched", out)
        (record,) = [r for r in self.records(source + LOOP) if r.api.endswith("LR")]
        self.assertEqual(record.kind, "escaped")
        self.assertIn("would change the order in which", record.reason)

    def test_random_draws_in_the_optimizer_and_the_schedule(self) -> None:
        self.assertNotFolded(
            "import torch, random\n"
            "opt = torch.optim.Adadelta(params, lr=1.0, weight_decay=random.uniform(0.0, 0.1))\n"
            "sched = torch.optim.lr_scheduler.PolynomialLR(opt, 10, power=random.uniform(0.5, 1.5))\n"
        )

    def test_a_call_in_the_optimizer_and_a_statement_between(self) -> None:
        self.assertNotFolded(
            "import torch\nopt = torch.optim.SGD(params, lr=next_lr())\nlog('built')\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, 10)\n"
        )

    def test_a_call_in_the_schedule_only_folds(self) -> None:
        out = run_codemod(
            "import torch, random\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "sched = torch.optim.lr_scheduler.PolynomialLR(opt, 10, power=random.uniform(0.5, 1.5))\n"
            + LOOP
        )
        self.assertIn("opt = optax.sgd(learning_rate=sched)", out)

    def test_an_optimizer_with_an_unknown_argument_escapes_without_raising(self) -> None:
        source = (
            "import torch\nopt = torch.optim.Adam(model.parameters(), lr=0.01, momentum=0.9)\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)\n" + LOOP
        )
        records = self.records(source)
        (record,) = [r for r in records if r.api == "torch.optim.Adam"]
        self.assertIn("unknown argument `momentum`", record.reason)
