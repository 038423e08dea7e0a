"""Scheduler arguments torch also takes as a list, one value per param group (`per_group` in
the map): written as a list, tuple or comprehension they escape, since the translation takes a
single value (the output called a list or subtracted lists: a TypeError at the first update)."""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod

HEAD = "import torch\nopt = torch.optim.SGD(params, lr=0.1, momentum=0.9)\n"
LOOP = "for batch in batches:\n    opt.step()\n    sched.step()\n"


class PerGroupArgumentsTest(SwitcherooTest):
    def assertEscapesFor(self, scheduler: str, argument: str) -> None:
        source = HEAD + f"sched = {scheduler}\n" + LOOP
        out = run_codemod(source)
        self.assertIn(f"sched = {scheduler}\n# ml_switcheroo: ESCAPE-END", out)
        (record,) = [r for r in self.records(source) if r.api == scheduler.partition("(")[0]]
        self.assertEqual(record.kind, "escaped")
        self.assertIn(f"`{argument}` is a sequence", record.reason)

    def assertConvertsScheduler(self, scheduler: str) -> None:
        source = HEAD + f"sched = {scheduler}\n" + LOOP
        out = run_codemod(source)
        self.assertNotIn("ESCAPE-BEGIN torch.optim.lr_scheduler", out)
        self.assertIn("learning_rate=sched", out)

    def test_lambda_lr_with_a_list_of_functions(self) -> None:
        self.assertEscapesFor(
            "torch.optim.lr_scheduler.LambdaLR(opt, [lambda e: 0.9 ** e])", "lr_lambda"
        )

    def test_lambda_lr_with_one_function_converts(self) -> None:
        self.assertConvertsScheduler("torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.9 ** e)")

    def test_multiplicative_lr_with_a_tuple_of_functions(self) -> None:
        self.assertEscapesFor(
            "torch.optim.lr_scheduler.MultiplicativeLR(opt, (lambda e: 0.95,))", "lr_lambda"
        )

    def test_cyclic_lr_with_lists_of_bounds(self) -> None:
        self.assertEscapesFor(
            "torch.optim.lr_scheduler.CyclicLR(opt, base_lr=[0.01], max_lr=[0.1])", "base_lr"
        )

    def test_cyclic_lr_with_a_list_of_momenta(self) -> None:
        self.assertEscapesFor(
            "torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, base_momentum=[0.8])",
            "base_momentum",
        )

    def test_cyclic_lr_with_single_bounds_converts(self) -> None:
        self.assertConvertsScheduler("torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1)")

    def test_one_cycle_lr_with_a_comprehension_of_peaks(self) -> None:
        self.assertEscapesFor(
            "torch.optim.lr_scheduler.OneCycleLR(opt, [m for m in (1.0,)], total_steps=50)",
            "max_lr",
        )

    def test_one_cycle_lr_with_one_peak_converts(self) -> None:
        self.assertConvertsScheduler(
            "torch.optim.lr_scheduler.OneCycleLR(opt, 1.0, total_steps=50)"
        )

    def test_reduce_on_plateau_with_a_list_of_floors(self) -> None:
        source = (
            HEAD + "sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.01])\n"
            "for batch in batches:\n    opt.step()\n    sched.step(loss)\n"
        )
        self.assertNotIn("optax.contrib.reduce_on_plateau", run_codemod(source))
        records = [r for r in self.records(source) if r.api.endswith("ReduceLROnPlateau")]
        self.assertIn("`min_lr` is a sequence", records[0].reason)
