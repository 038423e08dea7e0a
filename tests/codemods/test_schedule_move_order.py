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


class ScheduleMovePastChangesTest(SwitcherooTest):
    """A statement between the optimizer and its scheduler that may change a value the moved
    arguments read (a store through an attribute or subscript, a call given the value) keeps
    the schedule in place: moved next to the optimizer, it would read the value before the
    change."""

    def assertKeptApart(self, source: str) -> None:
        out = run_codemod(source + LOOP)
        self.assertNotIn("learning_rate=sched", out)
        (record,) = [r for r in self.records(source + LOOP) if r.api.endswith("LR")]
        self.assertEqual(record.kind, "escaped")
        self.assertIn("may change a value", record.reason)

    def test_a_subscript_store_the_schedule_reads(self) -> None:
        self.assertKeptApart(
            "import torch\ncfg = {'lr': 0.1}\nopt = torch.optim.SGD(params, lr=cfg['lr'])\n"
            "cfg['lr'] = 0.5\n"
            "sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg['lr'], total_steps=100)\n"
        )

    def test_an_attribute_store_through_another_name(self) -> None:
        self.assertKeptApart(
            "import torch\nopt = torch.optim.SGD(params, lr=0.1)\nc = args\nc.epochs = 5\n"
            "sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)\n"
        )

    def test_a_call_given_the_milestones(self) -> None:
        self.assertKeptApart(
            "import torch\nmilestones = [10]\nopt = torch.optim.SGD(params, lr=0.1)\n"
            "milestones.append(20)\n"
            "sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones)\n"
        )

    def test_the_optimizer_moved_down_past_a_store_its_lr_reads(self) -> None:
        self.assertKeptApart(
            "import torch\ncfg = {'lr': 0.1}\nopt = torch.optim.SGD(params, lr=cfg['lr'])\n"
            "cfg['lr'] = 0.5\ntotal = 10\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=total)\n"
        )

    def test_a_log_call_between_literal_arguments_folds(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\nlog('built')\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, 10)\n" + LOOP
        )
        self.assertIn("opt = optax.sgd(learning_rate=sched)", out)
