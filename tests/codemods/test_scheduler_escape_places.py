"""A scheduler's escape names the places its deciding facts come from (file:line)."""

from __future__ import annotations

from tests.support import SwitcherooTest


class SchedulerEscapePlacesTest(SwitcherooTest):
    def reason(self, code: str, **options: object) -> str:
        (record,) = [r for r in self.records(code, **options) if r.api.endswith("StepLR")]
        self.assertEqual(record.kind, "escaped")
        return record.reason

    def test_an_optimizer_parameter_names_its_function_and_line(self) -> None:
        reason = self.reason(
            "import torch\n\n"
            "def make_scheduler(opt):\n"
            "    return torch.optim.lr_scheduler.StepLR(opt, step_size=2)\n"
        )
        self.assertIn("`opt` is a parameter of make_scheduler() (example.py:3)", reason)

    def test_an_optimizer_from_a_call_names_the_assignment(self) -> None:
        reason = self.reason(
            "import torch\n"
            "opt = build_optimizer(model)\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)\n"
        )
        self.assertIn("`opt` is assigned at example.py:2 from `build_optimizer(model)`", reason)

    def test_scheduler_in_another_method_names_both_places(self) -> None:
        reason = self.reason(
            "import torch\n"
            "class T:\n"
            "    def __init__(self, model):\n"
            "        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "    def setup(self):\n"
            "        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=2)\n"
        )
        self.assertIn(
            "(the optimizer at example.py:4 in __init__(), the scheduler at example.py:6 in "
            "setup())",
            reason,
        )

    def test_stepping_in_other_loops_names_both_steps(self) -> None:
        reason = self.reason(
            "import torch\n"
            "opt = torch.optim.SGD(params, lr=0.1)\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)\n"
            "def train():\n"
            "    for batch in batches:\n"
            "        opt.step()\n"
            "def tune():\n"
            "    sched.step()\n"
        )
        self.assertIn(
            "this one is at example.py:8 in tune(), the optimizer's at example.py:6 in train()",
            reason,
        )

    def test_optimizer_handed_to_a_call_in_the_epoch_loop_names_the_call(self) -> None:
        reason = self.reason(
            "import torch\n"
            "from engine import train_one_epoch\n"
            "opt = torch.optim.SGD(params, lr=0.1)\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)\n"
            "for epoch in range(9):\n"
            "    stats = train_one_epoch(model, opt, loader)\n"
            "    sched.step()\n"
        )
        self.assertIn(
            "the loop hands the optimizer to train_one_epoch() at example.py:6, which may step "
            "it any number of times",
            reason,
        )

    def test_a_returned_scheduler_names_the_return(self) -> None:
        reason = self.reason(
            "import torch\n"
            "def build(model):\n"
            "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)\n"
            "    return opt, sched\n"
        )
        self.assertIn("step() is not called in this file", reason)
        self.assertIn("`sched` is returned at example.py:5", reason)

    def test_a_scheduler_handed_to_a_call_names_the_call(self) -> None:
        reason = self.reason(
            "import torch\n"
            "opt = torch.optim.SGD(params, lr=0.1)\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)\n"
            "trainer = Trainer(model, opt, sched)\n"
        )
        self.assertIn("`sched` is passed to Trainer() at example.py:4", reason)

    def test_a_scheduler_also_stepped_by_a_function_it_is_passed_to_escapes(self) -> None:
        """torch steps it twice per epoch (in train() and in the loop); the fold saw one."""
        reason = self.reason(
            "import torch\n\n"
            "def train(model, optimizer, scheduler, loader):\n"
            "    for x, y in loader:\n"
            "        optimizer.zero_grad()\n"
            "        loss = model(x).sum()\n"
            "        loss.backward()\n"
            "        optimizer.step()\n"
            "    scheduler.step()\n\n"
            "def main(model, loader):\n"
            "    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)\n"
            "    for epoch in range(5):\n"
            "        train(model, optimizer, scheduler, loader)\n"
            "        scheduler.step()\n",
            steps_per_epoch="10",
        )
        self.assertIn("`scheduler` is passed to `train` at example.py:15", reason)
