"""A scheduler call that does not bind to torch's signature (``StepLR(opt, 10,
verbos=True)``: torch 2.13 has no ``verbos`` and raises TypeError) escapes with that reason,
not as a scheduler whose optimizer is not translated (aladdinpersson's
``pytorch_lr_ratescheduler.py:49``). The same call without the argument still folds."""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod

SOURCE = (
    "import torch\n"
    "opt = torch.optim.SGD(params, lr=0.1)\n"
    "sched = torch.optim.lr_scheduler.StepLR(opt, 10, gamma=0.5{extra})\n"
    "for batch in batches:\n    opt.step()\n    sched.step()\n"
)


class SchedulerCallNotBoundTest(SwitcherooTest):
    def test_an_unknown_keyword_escapes_with_the_binding_error(self) -> None:
        source = SOURCE.format(extra=", verbos=True")
        self.assertNotIn("learning_rate=sched", run_codemod(source))
        (record,) = [r for r in self.records(source) if r.api.endswith("StepLR")]
        self.assertEqual(record.kind, "escaped")
        self.assertIn("unknown argument `verbos`", record.reason)
        self.assertNotIn("not built by a translated constructor", record.reason)

    def test_keyword_unpacking_escapes_with_the_binding_error(self) -> None:
        source = SOURCE.format(extra=", **options")
        (record,) = [r for r in self.records(source) if r.api.endswith("StepLR")]
        self.assertEqual(record.kind, "escaped")
        self.assertIn("`**` keyword unpacking", record.reason)

    def test_the_call_that_binds_still_folds(self) -> None:
        self.assertIn("learning_rate=sched", run_codemod(SOURCE.format(extra="")))
