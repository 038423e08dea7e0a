"""A clip call folds into the optimizer's chain only when the optimizer's step() after it runs
under the same loops and conditions: torch clips whatever has accumulated in .grad at every
call, optax clips once per update."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.support import SwitcherooTest, run_codemod, stock_clip

HEAD = "import torch\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
CLIP = "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"
CHAINED = f"opt = optax.chain({stock_clip('1.0')}, optax.sgd(learning_rate=0.1))"


class ClipControlTest(SwitcherooTest):
    def assertNotChained(self, source: str) -> None:
        out = run_codemod(HEAD + source)
        self.assertIn("opt = optax.sgd(learning_rate=0.1)\n", out)
        self.assertIn(CLIP, out)

    def test_clip_every_micro_batch_and_step_every_k(self) -> None:
        self.assertNotChained(
            "for i, batch in enumerate(batches):\n    model(batch).backward()\n"
            f"    {CLIP}\n    if i % 4 == 3:\n        opt.step()\n        opt.zero_grad()\n"
        )

    def test_clip_once_before_the_training_loop(self) -> None:
        source = f"{CLIP}\nfor batch in batches:\n    model(batch).backward()\n    opt.step()\n"
        self.assertNotChained(source)
        (record,) = [r for r in self.records(HEAD + source) if r.api.endswith("clip_grad_norm_")]
        self.assertEqual(record.kind, "escaped")
        self.assertIn("runs under a condition or loop this call is not in", record.reason)

    def test_clip_and_step_in_the_same_condition_fold(self) -> None:
        out = run_codemod(
            HEAD + "for i, batch in enumerate(batches):\n    model(batch).backward()\n"
            f"    if i % 4 == 3:\n        {CLIP}\n        opt.step()\n        opt.zero_grad()\n"
        )
        self.assertIn(CHAINED, out)


SCALER = "scaler = torch.amp.GradScaler()\n"
AMP_LOOP = (
    "for batch in batches:\n    opt.zero_grad()\n    scaler.scale(model(batch)).backward()\n"
    "{unscale}    " + CLIP + "\n    scaler.step(opt)\n    scaler.update()\n"
)


class ClipUnderLossScalingTest(SwitcherooTest):
    """With a GradScaler, a clip without `scaler.unscale_(opt)` before it clips the scaled
    gradients in torch: it does not fold (folding clipped the true gradients)."""

    def test_clip_of_scaled_gradients_is_not_chained(self) -> None:
        out = run_codemod(HEAD + SCALER + AMP_LOOP.format(unscale=""))
        self.assertIn("opt = optax.sgd(learning_rate=0.1)\n", out)

    def test_clip_after_unscale_is_chained(self) -> None:
        out = run_codemod(HEAD + SCALER + AMP_LOOP.format(unscale="    scaler.unscale_(opt)\n"))
        self.assertIn(CHAINED, out)


class ScalerMethodsFromTheMapTest(SwitcherooTest):
    """The unscaling method a clip must follow is the map's `scaler_methods.unscale`."""

    def run_with_unscale_named(self, method: str, source: str) -> str:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "scaler.yaml"
            path.write_text(f"scaler_methods: {{unscale: {method}}}\n", encoding="utf-8")
            return run_codemod(source, semantic_map=[str(path)])

    def test_clip_after_the_maps_unscale_method_is_chained(self) -> None:
        unscale = "    scaler.unscale_grads(opt)\n"
        out = self.run_with_unscale_named(
            "unscale_grads", HEAD + SCALER + AMP_LOOP.format(unscale=unscale)
        )
        self.assertIn(CHAINED, out)

    def test_clip_after_a_method_the_map_no_longer_names_is_not_chained(self) -> None:
        unscale = "    scaler.unscale_(opt)\n"
        out = self.run_with_unscale_named(
            "unscale_grads", HEAD + SCALER + AMP_LOOP.format(unscale=unscale)
        )
        self.assertIn("opt = optax.sgd(learning_rate=0.1)\n", out)
