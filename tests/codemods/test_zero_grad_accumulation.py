"""`opt.zero_grad()` is removed only when one of the optimizer's zero_grad() calls runs as often
as its step(): else torch sums gradients over several steps (the removal lost that silently)."""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod

HEAD = "import torch\nopt = torch.optim.SGD(params, lr=0.1)\n"
WHY = "it runs under other loops or conditions than the optimizer's step()"


class ZeroGradAccumulationTest(SwitcherooTest):
    def assertZeroGradEscapes(self, source: str) -> None:
        self.assertIn("opt.zero_grad()", run_codemod(HEAD + source))
        records = [r for r in self.records(HEAD + source) if r.api.endswith("zero_grad")]
        self.assertTrue(records)
        self.assertTrue(all(r.kind == "escaped" and WHY in r.reason for r in records))

    def test_zero_grad_every_four_steps(self) -> None:
        self.assertZeroGradEscapes(
            "for i, batch in enumerate(batches):\n    model(batch).backward()\n    opt.step()\n"
            "    if i % 4 == 0:\n        opt.zero_grad()\n"
        )

    def test_zero_grad_once_per_epoch(self) -> None:
        self.assertZeroGradEscapes(
            "for epoch in range(3):\n    opt.zero_grad()\n    for batch in batches:\n"
            "        model(batch).backward()\n        opt.step()\n"
        )

    def test_zero_grad_every_step_and_after_training_is_removed(self) -> None:
        out = run_codemod(
            HEAD + "for batch in batches:\n    opt.zero_grad()\n    model(batch).backward()\n"
            "    opt.step()\nopt.zero_grad()\n"
        )
        self.assertNotIn("zero_grad", out)

    def test_zero_grad_each_batch_with_a_step_every_k_escapes(self) -> None:
        source = (
            "for i, batch in enumerate(batches):\n    opt.zero_grad()\n"
            "    model(batch).backward()\n    if (i + 1) % 4 == 0:\n        opt.step()\n"
            "        opt.zero_grad()\n"
        )
        records = [r for r in self.records(HEAD + source) if r.api.endswith("zero_grad")]
        dropping = [r for r in records if r.line == 4]
        self.assertEqual(len(dropping), 1)
        self.assertEqual(dropping[0].kind, "escaped")
        self.assertIn("torch drops the gradients summed since the last update", dropping[0].reason)

    def test_zero_grad_before_the_training_loop_is_removed(self) -> None:
        out = run_codemod(
            HEAD + "opt.zero_grad()\nfor i, batch in enumerate(batches):\n"
            "    model(batch).backward()\n    if (i + 1) % 4 == 0:\n        opt.step()\n"
            "        opt.zero_grad()\n"
        )
        self.assertNotIn("zero_grad", out.split("ESCAPE-BEGIN")[0])
