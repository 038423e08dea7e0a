"""optimizer.TorchToOptax: torch tensors passed as hyper-parameters.

``torch.tensor(<number>)`` (any import spelling, ``torch.as_tensor`` too) becomes the number;
any other argument whose value is a torch tensor escapes, since optax cannot take one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.rewrite.report import Record
from tests.support import SwitcherooTest, run_codemod, stock_clip


def loop(step_lines: str) -> str:
    return "for x in data:\n" + "".join(f"    {line}\n" for line in step_lines.split(";"))


class TensorLiteralTest(SwitcherooTest):
    def test_tensor_lr_becomes_the_number(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=torch.tensor(0.5))
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.5)
            """,
        )

    def test_tensor_betas_become_numbers(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(torch.tensor(0.9), torch.tensor(0.999)))
            """,
            """
            import optax
            opt = optax.adam(learning_rate=1e-3, b1=0.9, b2=0.999)
            """,
        )

    def test_float64_tensor_weight_decay_decides_the_chain_as_a_number(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), weight_decay=torch.tensor(0.01, dtype=torch.float64))
            """,
            """
            import optax
            opt = optax.chain(optax.add_decayed_weights(0.01), optax.adam(learning_rate=0.001))
            """,
        )

    def test_zero_tensor_weight_decay_adds_no_link(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=torch.tensor(0))
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_import_spellings_and_device(self) -> None:
        self.assertConverts(
            """
            import torch as th
            from torch import tensor
            opt = th.optim.SGD(model.parameters(), lr=tensor(0.5), momentum=th.as_tensor(0.75, th.double, device="cuda"))
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.5, momentum=0.75)
            """,
        )

    def test_tensor_scheduler_argument_and_optimizer_lr_become_numbers(self) -> None:
        out = run_codemod(
            "import torch\n"
            "opt = torch.optim.SGD(model.parameters(), lr=torch.tensor(0.5))\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, 30, gamma=torch.tensor(0.25))\n"
            + loop("opt.step();sched.step()")
        )
        self.assertIn(
            "sched = optax.exponential_decay(0.5, transition_steps=30, decay_rate=0.25, "
            "staircase=True)\nopt = optax.sgd(learning_rate=sched)",
            out,
        )

    def test_tensor_clip_norm_becomes_the_number(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(p, lr=0.1)\n"
            + loop("torch.nn.utils.clip_grad_norm_(p, torch.tensor(1.0));opt.step()")
        )
        self.assertIn(f"optax.chain({stock_clip('1.0')}, optax.sgd(", out)


class Float32RoundingTest(SwitcherooTest):
    def only_record(self, call: str) -> Record:
        (record,) = self.records(
            f"import torch\nopt = torch.optim.SGD(model.parameters(), lr={call})\n"
        )
        self.assertEqual(record.kind, "converted")
        return record

    def test_value_rounded_by_float32_is_reported(self) -> None:
        record = self.only_record("torch.tensor(1e-3)")
        self.assertIn("torch uses 0.0010000000474974513, optax gets 0.001", record.warnings[0])

    def test_explicit_float32_value_rounded_is_reported(self) -> None:
        record = self.only_record("torch.tensor(0.1, dtype=torch.float32)")
        self.assertIn("is a float32 tensor: torch uses 0.10000000149011612", record.warnings[0])

    def test_value_exact_in_float32_has_no_warning(self) -> None:
        self.assertEqual(self.only_record("torch.tensor(0.5)").warnings, ())

    def test_float64_value_has_no_warning(self) -> None:
        self.assertEqual(self.only_record("torch.tensor(1e-3, dtype=torch.float64)").warnings, ())


class TensorValuedArgumentTest(SwitcherooTest):
    def escape_reason(self, source: str) -> str:
        records = self.records(source)
        escaped = [r for r in records if r.kind == "escaped"]
        self.assertEqual(len(escaped), 1, records)
        self.assertIn("import torch", run_codemod(source))
        return escaped[0].reason

    def test_name_bound_to_a_tensor_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nlr = torch.tensor(1e-3)\nopt = torch.optim.SGD(p, lr=lr)\n"
        )
        self.assertIn("`lr=lr` is a torch tensor (`lr` is `torch.tensor(1e-3)`)", reason)

    def test_self_attribute_holding_a_tensor_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nclass T:\n    def __init__(self):\n"
            "        self.lr = torch.tensor(1e-3)\n"
            "        self.opt = torch.optim.SGD(p, lr=self.lr)\n"
        )
        self.assertIn("`self.lr` is `torch.tensor(1e-3)`", reason)

    def test_element_of_a_tensor_suggests_float_of_the_element(self) -> None:
        source = "import torch\nbox = torch.tensor([0.1])\nopt = torch.optim.SGD(p, lr=box[0])\n"
        escaped = [r for r in self.records(source) if r.kind == "escaped"]
        self.assertIn("(`box[0]` is read from `torch.tensor([0.1])`)", escaped[0].reason)
        self.assertIn("`float(box[0])` instead of `box[0]`", escaped[0].suggestion)

    def test_tensor_in_a_list_suggests_float_of_the_element(self) -> None:
        source = (
            "import torch\nbox = [torch.tensor(0.1)]\nopt = torch.optim.SGD(p, lr=2 * box[0])\n"
        )
        escaped = [r for r in self.records(source) if r.kind == "escaped"]
        self.assertIn("(`box[0]` is read from `torch.tensor(0.1)`)", escaped[0].reason)
        self.assertIn("`float(box[0])` instead of `box[0]`", escaped[0].suggestion)

    def test_element_of_a_list_of_numbers_converts(self) -> None:
        output = run_codemod("import torch\nbox = [0.1]\nopt = torch.optim.SGD(p, lr=box[0])\n")
        self.assertIn("optax.sgd(learning_rate=box[0])", output)

    def test_other_tensor_function_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=torch.full((), 0.1))\n"
        )
        self.assertIn("`lr=torch.full((), 0.1)` is a torch tensor", reason)

    def test_arithmetic_on_a_tensor_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=2 * torch.tensor(0.1))\n"
        )
        self.assertIn("`torch.tensor(0.1)` is one", reason)

    def test_method_of_a_tensor_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=torch.tensor(0.01).sqrt())\n"
        )
        self.assertIn("`lr=torch.tensor(0.01).sqrt()` is a torch tensor", reason)

    def test_tensor_element_of_betas_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nb1 = torch.tensor(0.9)\nopt = torch.optim.Adam(p, betas=(b1, 0.999))\n"
        )
        self.assertIn("`b1` is `torch.tensor(0.9)`", reason)

    def test_tensor_of_a_list_of_a_name_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=torch.tensor([args.lr]))\n"
        )
        self.assertIn("is a torch tensor of `[args.lr]`, which is not one number", reason)

    def test_tensor_that_requires_grad_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=torch.tensor(0.1, requires_grad=True))\n"
        )
        self.assertIn("with `requires_grad=True`", reason)

    def test_half_precision_tensor_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=torch.tensor(0.1, dtype=torch.float16))\n"
        )
        self.assertIn("of dtype `torch.float16`", reason)

    def test_device_computed_by_a_call_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=torch.tensor(0.1, device=pick_device()))\n"
        )
        self.assertIn("its `device=` argument would be dropped", reason)

    def test_tensor_class_call_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=torch.Tensor([0.1]))\n"
        )
        self.assertIn("`lr=torch.Tensor([0.1])` is a torch tensor", reason)


class TensorOfExpressionTest(SwitcherooTest):
    """``torch.tensor(<expression>)`` (torchrl: ``lr=torch.tensor(cfg.optim.lr, device=device)``)
    is ``float(<expression>)``: torch.tensor copies its data, whatever it is."""

    def escape_reason(self, source: str) -> str:
        escaped = [r for r in self.records(source) if r.kind == "escaped"]
        self.assertEqual(len(escaped), 1, escaped)
        return escaped[0].reason

    def only_record(self, call: str) -> Record:
        (record,) = self.records(
            f"import torch\nopt = torch.optim.Adam(model.parameters(), lr={call})\n"
        )
        self.assertEqual(record.kind, "converted")
        return record

    def test_tensor_of_a_config_value_becomes_its_float(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(actor.parameters(), lr=torch.tensor(cfg.optim.lr, device=device), eps=1e-5)
            """,
            """
            import optax
            opt = optax.adam(learning_rate=float(cfg.optim.lr), eps=1e-5)
            """,
        )

    def test_tensor_of_an_expression_warns_that_torch_may_round_it(self) -> None:
        (warning,) = self.only_record("torch.tensor(cfg.lr)").warnings
        self.assertIn("`torch.tensor(cfg.lr)` becomes `float(cfg.lr)`", warning)
        self.assertIn("a Python float under float32 default dtype", warning)

    def test_float32_tensor_of_an_expression_warns_that_torch_rounds_it(self) -> None:
        (warning,) = self.only_record("torch.tensor(cfg.lr, dtype=torch.float32)").warnings
        self.assertIn("torch rounds it to float32", warning)

    def test_float64_tensor_of_an_expression_has_no_warning(self) -> None:
        self.assertEqual(self.only_record("torch.tensor(cfg.lr, dtype=torch.double)").warnings, ())

    def test_tensor_of_an_expression_in_a_scheduler_becomes_its_float(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(p, lr=0.5)\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, 30, gamma=torch.tensor(cfg.gamma))\n"
            + loop("opt.step();sched.step()")
        )
        self.assertIn(
            "sched = (lambda gamma: lambda count: 0.5 * float(gamma) ** (count // 30))(cfg.gamma)",
            out,
        )

    def test_tensor_of_a_name_bound_to_a_list_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nlrs = [0.1]\nopt = torch.optim.SGD(p, lr=torch.tensor(lrs))\n"
        )
        self.assertIn(
            "`torch.tensor(lrs)` is a torch tensor of `lrs`, which is not one number", reason
        )

    def test_tensor_of_a_string_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=torch.tensor(f'{lr}'))\n"
        )
        self.assertIn("which is not one number", reason)

    def test_tensor_of_an_expression_that_requires_grad_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=torch.tensor(cfg.lr, requires_grad=True))\n"
        )
        self.assertIn("with `requires_grad=True`", reason)

    def test_tensor_of_an_expression_with_an_integer_dtype_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=torch.tensor(cfg.lr, dtype=torch.int64))\n"
        )
        self.assertIn("of dtype `torch.int64`", reason)

    def test_tensor_of_a_torch_tensor_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nbase = torch.ones(3)\nopt = torch.optim.SGD(p, lr=torch.tensor(base))\n"
        )
        self.assertIn("is a torch tensor of the torch tensor `base` (`torch.ones(3)`)", reason)

    def test_as_tensor_of_an_expression_escapes_as_it_may_not_copy(self) -> None:
        reason = self.escape_reason(
            "import torch\nopt = torch.optim.SGD(p, lr=torch.as_tensor(cfg.lr))\n"
        )
        self.assertIn("torch.as_tensor does not copy it", reason)

    def test_as_tensor_of_a_tensor_changed_in_place_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\ndef build(p, lr_t):\n"
            "    opt = torch.optim.SGD(p, lr=torch.as_tensor(lr_t))\n"
            "    lr_t.fill_(0.01)\n    return opt\n"
        )
        self.assertIn("a write to it (`.fill_()`, `.copy_()`) would change torch's lr", reason)

    def test_name_bound_to_a_tensor_of_an_expression_changed_in_place_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nlr_t = torch.tensor(cfg.lr)\n"
            "opt = torch.optim.SGD(p, lr=lr_t)\nlr_t.copy_(lr_t * 0.5)\n"
        )
        self.assertIn("`lr=lr_t` is a torch tensor (`lr_t` is `torch.tensor(cfg.lr)`)", reason)

    def test_tensor_of_an_expression_where_float_is_the_files_name_escapes(self) -> None:
        reason = self.escape_reason(
            "import torch\nfloat = make_float\nopt = torch.optim.SGD(p, lr=torch.tensor(cfg.lr))\n"
        )
        self.assertIn("`float` is a name of this file here", reason)

    def test_nnx_target_makes_the_tensor_of_an_expression_its_float(self) -> None:
        out = run_codemod(
            "import torch\nmodel = make_model()\n"
            "opt = torch.optim.AdamW(model.parameters(), lr=torch.tensor(cfg.lr, device=device))\n",
            TorchToNNX,
        )
        self.assertIn(
            "opt = nnx.Optimizer(model, optax.adamw(learning_rate=float(cfg.lr), weight_decay=0.01), "
            "wrt=nnx.Param)",
            out,
        )


class PythonValuedArgumentTest(SwitcherooTest):
    def test_item_of_a_tensor_is_a_number(self) -> None:
        self.assertConverts(
            """
            import torch
            lr = torch.tensor(1e-3)
            opt = torch.optim.SGD(p, lr=lr.item())
            """,
            """
            import torch
            import optax
            lr = torch.tensor(1e-3)
            opt = optax.sgd(learning_rate=lr.item())
            """,
        )

    def test_torch_functions_that_return_python_values_pass(self) -> None:
        self.assertConverts(
            """
            import torch
            import torch.distributed as dist
            opt = torch.optim.SGD(p, lr=0.1 * dist.get_world_size(), weight_decay=torch.finfo(torch.float32).eps)
            """,
            """
            import torch
            import torch.distributed as dist
            import optax
            opt = (lambda lr, weight_decay: optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(learning_rate=lr)))(0.1 * dist.get_world_size(), torch.finfo(torch.float32).eps)
            """,
        )

    def test_attribute_of_a_config_passes(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=args.lr)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=args.lr)
            """,
        )


class MapDrivenTest(SwitcherooTest):
    def test_a_user_map_declares_another_literal_tensor_call(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "extra.yaml"
            path.write_text(
                "tensor_values:\n"
                '  literals: {mylib.scalar: "value, dtype=None"}\n'
                "  dtypes: {mylib.f64: float64}\n"
                "  packages: [torch, mylib]\n",
                encoding="utf-8",
            )
            out = run_codemod(
                "import torch\nimport mylib\n"
                "opt = torch.optim.SGD(model.parameters(), lr=mylib.scalar(0.5, mylib.f64))\n",
                semantic_map=(str(path),),
            )
        self.assertIn("opt = optax.sgd(learning_rate=0.5)\n", out)
