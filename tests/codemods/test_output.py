"""optimizer.TorchToOptax: output layout, comments and stability."""

from __future__ import annotations

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from tests.support import SwitcherooTest, run_codemod


class LayoutTest(SwitcherooTest):
    def test_multi_line_call_stays_multi_line_with_its_comments(self) -> None:
        self.assertConverts(
            """
            import torch
            optimizer = torch.optim.AdamW(
                model.parameters(),
                lr=args.lr,  # peak lr
                betas=(0.9, 0.95),
                weight_decay=0.1,
            )
            """,
            """
            import optax
            optimizer = optax.adamw(
                learning_rate=args.lr,  # peak lr
                b1=0.9,
                b2=0.95,
                weight_decay=0.1,
            )
            """,
        )

    def test_comment_inside_a_dropped_argument_moves_above_the_statement(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(
                model.parameters(),  # every parameter
                lr=0.1,
            )
            """,
            """
            import optax
            # every parameter
            opt = optax.sgd(
                learning_rate=0.1,
            )
            """,
        )

    def test_code_outside_rewritten_nodes_is_byte_identical(self) -> None:
        before = (
            "import torch\n"
            "x  =  [1,2 ,3]   # odd spacing\n"
            "\n\n\n"
            "opt = torch.optim.SGD(p, lr=0.1)\n"
            "def  f( a ):\n"
            "\treturn a\n"
        )
        after = run_codemod(before)
        self.assertEqual(
            after,
            before.replace("import torch\n", "import optax\n").replace(
                "torch.optim.SGD(p, lr=0.1)", "optax.sgd(learning_rate=0.1)"
            ),
        )


class StabilityTest(SwitcherooTest):
    def test_escaped_constructor_is_not_wrapped_twice(self) -> None:
        once = run_codemod(
            "import torch\nopt = torch.optim.Adam(p, **kw)\nopt.step()\nopt.zero_grad()\n"
        )
        self.assertEqual(run_codemod(once), once)
        # the constructor, the step, and the zero_grad of an optimizer that is still torch's
        self.assertEqual(once.count("ESCAPE-BEGIN"), 3)
        self.assertIn("\nopt.zero_grad()\n", once)

    def test_second_run_over_converted_code_changes_nothing(self) -> None:
        source = (
            "import torch\n"
            "class T:\n"
            "    def __init__(self, m):\n"
            "        self.opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.95))\n"
            "    def fit(self, batch):\n"
            "        self.opt.zero_grad()\n"
            "        self.loss(batch).backward()\n"
            "        self.opt.step()\n"
        )
        once = run_codemod(source)
        self.assertNotEqual(once, source)
        self.assertEqual(run_codemod(once), once)

    def test_constructor_escaped_for_a_file_reason_stays_torch_on_a_second_run(self) -> None:
        # The first run escapes the constructor because the file freezes parameters; a second
        # run must not take the constructor in that hatch for a translated one (it did: the
        # torch `state_dict()` got an escape saying `opt` "is now" optax / an nnx.Optimizer).
        source = (
            "import torch\n"
            "def freeze(model):\n"
            "    for p in model.parameters():\n"
            "        p.requires_grad = False\n"
            "model = make_model()\n"
            "freeze(make_model())\n"
            "opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0)\n"
            "for x, y in loader:\n"
            "    opt.zero_grad()\n"
            "    loss = ((model(x) - y) ** 2).mean()\n"
            "    loss.backward()\n"
            "    opt.step()\n"
            "torch.save(opt.state_dict(), 'ckpt.pt')\n"
        )
        for command in (TorchToOptax, TorchToNNX):
            with self.subTest(command=command.__name__):
                once = run_codemod(source, command)
                self.assertIn("this file freezes parameters", once)
                self.assertEqual(run_codemod(once, command), once)

    def test_constructor_escaped_for_a_changed_model_stays_torch_on_a_second_run(self) -> None:
        source = (
            "import torch\n"
            "model = make_model()\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "model.fine_tune(True)\n"
            "for x, y in loader:\n"
            "    opt.zero_grad()\n"
            "    loss = ((model(x) - y) ** 2).mean()\n"
            "    loss.backward()\n"
            "    opt.step()\n"
            "    opt.param_groups[0]['lr'] *= 0.5\n"
            "torch.save(opt.state_dict(), 'ckpt.pt')\n"
        )
        for command in (TorchToOptax, TorchToNNX):
            with self.subTest(command=command.__name__):
                once = run_codemod(source, command)
                self.assertIn("the model changes after the optimizer took its parameters", once)
                self.assertEqual(run_codemod(once, command), once)
