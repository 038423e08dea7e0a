"""optimizer.TorchToOptax: generated code captures no user name and evaluates each argument once,
where torch evaluated it (model/hygiene.py).

Each capture or evaluation case has a literal twin whose output is byte-identical to the output
before hygiene existed. Only the translated statements are compared (import order is not
the point here).
"""

from __future__ import annotations

import textwrap

from tests.support import SwitcherooTest, run_codemod

STEPPED = "for batch in data:\n    opt.step()\n    sched.step()\n"


def statements(source: str, **options: object) -> str:
    """The output of ``source`` (imports added), without import lines and the training loop."""
    out = run_codemod("import torch\nimport random\n" + textwrap.dedent(source), **options)
    body = out.split("for batch in data:")[0]
    return "".join(
        line + "\n"
        for line in body.splitlines()
        if line and not line.startswith(("import ", "from "))
    )


def scheduled(lines: str, **options: object) -> str:
    """``statements`` of ``lines`` followed by a loop that steps ``opt`` and ``sched``."""
    return statements(textwrap.dedent(lines) + STEPPED, **options)


class TemplateNamesCaptureNothingTest(SwitcherooTest):
    def test_user_count_in_lr_is_bound_and_template_count_renamed(self) -> None:
        self.assertEqual(
            scheduled(
                """
                count = torch.cuda.device_count() or 1
                opt = torch.optim.SGD(p, lr=0.1 * count)
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
                """
            ),
            "count = torch.cuda.device_count() or 1\n"
            "sched = (lambda lr: lambda count_1: 0.0 + (lr - 0.0) * (1 + jnp.cos(jnp.pi * count_1 / 10)) / 2)(0.1 * count)\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_literal_twin_of_count_is_unchanged(self) -> None:
        self.assertEqual(
            scheduled(
                """
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
                """
            ),
            "sched = lambda count: 0.0 + (0.1 - 0.0) * (1 + jnp.cos(jnp.pi * count / 10)) / 2\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_user_alpha_is_not_the_swalr_templates_alpha(self) -> None:
        self.assertEqual(
            scheduled(
                """
                alpha = 0.5
                opt = torch.optim.SGD(p, lr=alpha)
                sched = torch.optim.swa_utils.SWALR(opt, swa_lr=0.05)
                """
            ),
            "alpha = 0.5\n"
            "sched = (lambda lr: (lambda anneal: lambda count: (lambda alpha_1: 0.05 * alpha_1 + lr * (1 - alpha_1))(anneal(jnp.minimum(1.0, jnp.maximum(count, 10 == 0) / float(max(1, 10))))))(lambda t: (1 - jnp.cos(jnp.pi * t)) / 2))(alpha)\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_literal_twin_of_alpha_is_unchanged(self) -> None:
        self.assertEqual(
            scheduled(
                """
                opt = torch.optim.SGD(p, lr=0.5)
                sched = torch.optim.swa_utils.SWALR(opt, swa_lr=0.05)
                """
            ),
            "sched = (lambda anneal: lambda count: (lambda alpha: 0.05 * alpha + 0.5 * (1 - alpha))(anneal(jnp.minimum(1.0, jnp.maximum(count, 10 == 0) / float(max(1, 10))))))(lambda t: (1 - jnp.cos(jnp.pi * t)) / 2)\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_user_n_is_not_the_multisteplr_comprehension_variable(self) -> None:
        self.assertEqual(
            scheduled(
                """
                n = 2
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.MultiStepLR(opt, [10, 20], gamma=0.5 ** n)
                """
            ),
            "n = 2\n"
            "sched = (lambda gamma: optax.piecewise_constant_schedule(0.1, {m: gamma ** n_1 for m, n_1 in collections.Counter([10, 20]).items()}))(0.5 ** n)\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_literal_twin_of_n_is_unchanged(self) -> None:
        self.assertEqual(
            scheduled(
                """
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.MultiStepLR(opt, [10, 20], gamma=0.25)
                """
            ),
            "sched = optax.piecewise_constant_schedule(0.1, {m: 0.25 ** n for m, n in collections.Counter([10, 20]).items()})\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_user_scale_in_a_scale_fn_is_not_the_cycliclr_templates_scale(self) -> None:
        self.assertEqual(
            scheduled(
                """
                scale = 2.0
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=5, scale_fn=lambda c: 1.0 / (scale * c), cycle_momentum=False)
                """
            ),
            "scale = 2.0\n"
            "sched = (lambda total, ratio, scale_1: lambda count: (lambda cycle: (lambda x: 0.01 + (0.1 - 0.01) * jnp.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1)) * scale_1(cycle, count))(1.0 + count / total - cycle))(jnp.floor(1 + count / total)))(float(5) + float(5), float(5) / (float(5) + float(5)), lambda cycle, count: (lambda c: 1.0 / (scale * c))(cycle))\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_user_scale_in_base_lr_is_bound_before_the_templates_scale(self) -> None:
        self.assertEqual(
            scheduled(
                """
                scale = 2.0
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.CyclicLR(opt, 0.01 * scale, 0.1 * scale, step_size_up=5, cycle_momentum=False)
                """
            ),
            "scale = 2.0\n"
            "sched = (lambda base_lr, max_lr: (lambda total, ratio, scale_1: lambda count: (lambda cycle: (lambda x: base_lr + (max_lr - base_lr) * jnp.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1)) * scale_1(cycle, count))(1.0 + count / total - cycle))(jnp.floor(1 + count / total)))(float(5) + float(5), float(5) / (float(5) + float(5)), lambda cycle, count: 1.0))(0.01 * scale, 0.1 * scale)\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_literal_twin_of_scale_is_unchanged(self) -> None:
        self.assertEqual(
            scheduled(
                """
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=5, scale_fn=lambda c: 1.0 / (2.0 * c), cycle_momentum=False)
                """
            ),
            "sched = (lambda total, ratio, scale: lambda count: (lambda cycle: (lambda x: 0.01 + (0.1 - 0.01) * jnp.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1)) * scale(cycle, count))(1.0 + count / total - cycle))(jnp.floor(1 + count / total)))(float(5) + float(5), float(5) / (float(5) + float(5)), lambda cycle, count: (lambda c: 1.0 / (2.0 * c))(cycle))\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_user_i_is_not_the_warm_restarts_comprehension_variable(self) -> None:
        self.assertEqual(
            scheduled(
                """
                i = 3
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=5 * i, T_mult=2)
                """
            ),
            "i = 3\n"
            "sched = (lambda T_0: optax.join_schedules([optax.cosine_decay_schedule(0.1, T_0 * 2 ** i_1, alpha=0.0 / 0.1) for i_1 in range(next(i_1 for i_1 in range(1, 64) if T_0 * (2 ** i_1 - 1) // (2 - 1) >= 2 ** 31))], [T_0 * (2 ** i_1 - 1) // (2 - 1) for i_1 in range(1, next(i_1 for i_1 in range(1, 64) if T_0 * (2 ** i_1 - 1) // (2 - 1) >= 2 ** 31))]))(5 * i)\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_literal_twin_of_i_is_unchanged(self) -> None:
        self.assertEqual(
            scheduled(
                """
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=15, T_mult=2)
                """
            ),
            "sched = optax.join_schedules([optax.cosine_decay_schedule(0.1, 15 * 2 ** i, alpha=0.0 / 0.1) for i in range(next(i for i in range(1, 64) if 15 * (2 ** i - 1) // (2 - 1) >= 2 ** 31))], [15 * (2 ** i - 1) // (2 - 1) for i in range(1, next(i for i in range(1, 64) if 15 * (2 ** i - 1) // (2 - 1) >= 2 ** 31))])\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_user_lambda_reading_product_keeps_its_product(self) -> None:
        self.assertEqual(
            scheduled(
                """
                product = 0.9
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.MultiplicativeLR(opt, lambda e: product)
                """
            ),
            "product = 0.9\n"
            "sched = lambda count: 0.1 * jax.lax.fori_loop(1, count + 1, lambda i, product_1: product_1 * (lambda e: product)(1.0 * i), jnp.ones((), jnp.result_type(float)))\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_literal_twin_of_product_is_unchanged(self) -> None:
        self.assertEqual(
            scheduled(
                """
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.MultiplicativeLR(opt, lambda e: 0.9)
                """
            ),
            "sched = lambda count: 0.1 * jax.lax.fori_loop(1, count + 1, lambda i, product: product * (lambda e: 0.9)(1.0 * i), jnp.ones((), jnp.result_type(float)))\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_a_visible_name_renames_a_template_name_even_with_literal_arguments(self) -> None:
        self.assertEqual(
            scheduled(
                """
                count = 3
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
                """
            ),
            "count = 3\n"
            "sched = lambda count_1: 0.0 + (0.1 - 0.0) * (1 + jnp.cos(jnp.pi * count_1 / 10)) / 2\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )


class EvaluatedOnceAtConstructionTest(SwitcherooTest):
    def test_loop_variable_lr_is_bound_per_optimizer(self) -> None:
        self.assertEqual(
            statements(
                """
                for lr in [0.1, 0.2, 0.3]:
                    opt = torch.optim.Adagrad(p, lr=lr, lr_decay=0.01, eps=0.0)
                """
            ),
            "for lr in [0.1, 0.2, 0.3]:\n"
            "    opt = (lambda lr_1: optax.adagrad(learning_rate=lambda count: lr_1 / (1 + count * 0.01), initial_accumulator_value=0, eps=0.0))(lr)\n",
        )

    def test_optimizers_built_in_a_comprehension_stay_torch_code(self) -> None:
        # Their uses (a list of optimizers) cannot be followed: see test_torch_only_uses.py.
        source = (
            "opts = [torch.optim.Adagrad(p, lr=lr, lr_decay=0.01, eps=0.0) for lr in (0.1, 0.2)]\n"
        )
        self.assertIn("ESCAPE-BEGIN", statements(source))
        self.assertIn(source, statements(source))

    def test_literal_twin_of_adagrad_lr_decay_is_unchanged(self) -> None:
        self.assertEqual(
            statements("opt = torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01, eps=0.0)\n"),
            "opt = optax.adagrad(learning_rate=lambda count: 0.1 / (1 + count * 0.01), initial_accumulator_value=0, eps=0.0)\n",
        )

    def test_impure_arguments_the_chain_reorders_are_drawn_in_source_order(self) -> None:
        self.assertEqual(
            statements(
                "opt = torch.optim.Adam(p, eps=random.uniform(0, 1e-8), weight_decay=random.uniform(0, 0.1))\n"
            ),
            "opt = (lambda eps, weight_decay: optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(learning_rate=0.001, eps=eps)))(random.uniform(0, 1e-8), random.uniform(0, 0.1))\n",
        )

    def test_impure_arguments_in_source_order_stay_inline(self) -> None:
        self.assertEqual(
            statements("opt = torch.optim.SGD(p, lr=random.random(), momentum=random.random())\n"),
            "opt = optax.sgd(learning_rate=random.random(), momentum=random.random())\n",
        )

    def test_random_lr_is_drawn_once(self) -> None:
        self.assertEqual(
            statements("opt = torch.optim.ASGD(p, lr=random.random())\n"),
            "opt = (lambda lr: optax.chain(optax.add_decayed_weights(0.0001), optax.scale_by_learning_rate(lambda count: lr / (1 + 0.0001 * lr * count) ** 0.75)))(random.random())\n",
        )

    def test_literal_twin_of_asgd_is_unchanged(self) -> None:
        self.assertEqual(
            statements("opt = torch.optim.ASGD(p, lr=0.01)\n"),
            "opt = optax.chain(optax.add_decayed_weights(0.0001), optax.scale_by_learning_rate(lambda count: 0.01 / (1 + 0.0001 * 0.01 * count) ** 0.75))\n",
        )

    def test_class_attribute_lr_is_read_in_the_class_body(self) -> None:
        self.assertEqual(
            statements(
                """
                class Trainer:
                    lr = 0.1
                    opt = torch.optim.ASGD(p, lr=lr)
                """
            ),
            "class Trainer:\n"
            "    lr = 0.1\n"
            "    opt = (lambda lr_1: optax.chain(optax.add_decayed_weights(0.0001), optax.scale_by_learning_rate(lambda count: lr_1 / (1 + 0.0001 * lr_1 * count) ** 0.75)))(lr)\n",
        )

    def test_attribute_reads_are_bound_at_construction(self) -> None:
        self.assertEqual(
            scheduled(
                """
                opt = torch.optim.SGD(p, lr=args.lr)
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
                """
            ),
            "sched = (lambda lr, T_max: lambda count: 0.0 + (lr - 0.0) * (1 + jnp.cos(jnp.pi * count / T_max)) / 2)(args.lr, args.epochs)\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_lr_lambda_function_is_bound_at_construction(self) -> None:
        self.assertEqual(
            scheduled(
                """
                warmup = lambda e: 0.9 ** e
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup)
                """
            ),
            "warmup = lambda e: 0.9 ** e\n"
            "sched = (lambda lr_lambda: lambda count: 0.1 * lr_lambda(1.0 * count))(warmup)\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_literal_twin_of_lr_lambda_is_unchanged(self) -> None:
        self.assertEqual(
            scheduled(
                """
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.9 ** e)
                """
            ),
            "sched = lambda count: 0.1 * (lambda e: 0.9 ** e)(1.0 * count)\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_impure_lr_used_twice_by_a_schedule_is_drawn_once(self) -> None:
        self.assertEqual(
            scheduled(
                """
                opt = torch.optim.SGD(p, lr=random.random())
                sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.5)
                """
            ),
            "sched = (lambda lr: optax.linear_schedule(lr * 0.5, lr * 1.0, transition_steps=5))(random.random())\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_impure_lr_shared_with_a_plateau_scheduler_escapes(self) -> None:
        (record,) = [
            r
            for r in self.records(
                "import torch\nimport random\n"
                "opt = torch.optim.SGD(p, lr=random.random())\n"
                "sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)\n"
                + STEPPED.replace("sched.step()", "sched.step(batch)")
            )
            if r.api.endswith("ReduceLROnPlateau")
        ]
        self.assertEqual(record.kind, "escaped")
        # escaped before the hygiene check: torch's eps floor needs a literal lr
        self.assertIn("`lr` not a number literal", record.reason)

    def test_impure_total_steps_of_a_momentum_cycle_escapes(self) -> None:
        (record,) = [
            r
            for r in self.records(
                "import torch\n"
                "opt = torch.optim.SGD(p, lr=0.1, momentum=0.9)\n"
                "sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=compute())\n"
                + STEPPED
            )
            if r.api == "torch.optim.SGD"
        ]
        self.assertEqual(record.kind, "escaped")
        self.assertIn("`compute()` would be evaluated by two statements", record.reason)

    def test_per_epoch_steps_expression_is_evaluated_once(self) -> None:
        self.assertEqual(
            statements(
                """
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)
                for epoch in range(3):
                    for batch in loader:
                        opt.step()
                    sched.step()
                """,
                steps_per_epoch="len(loader)",
            ).split("for epoch")[0],
            "sched = (lambda steps_per_epoch: lambda count: (optax.exponential_decay(0.1, transition_steps=2, decay_rate=0.1, staircase=True))(count // steps_per_epoch))(len(loader))\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_literal_twin_of_per_epoch_steps_is_unchanged(self) -> None:
        self.assertEqual(
            statements(
                """
                opt = torch.optim.SGD(p, lr=0.1)
                sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2)
                for epoch in range(3):
                    for batch in data:
                        opt.step()
                    sched.step()
                """,
                steps_per_epoch="7",
            ).split("for epoch")[0],
            "sched = lambda count: (optax.exponential_decay(0.1, transition_steps=2, decay_rate=0.1, staircase=True))(count // (7))\n"
            "opt = optax.sgd(learning_rate=sched)\n",
        )

    def test_bound_output_is_stable(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.ASGD(p, lr=args.lr)
            """,
            """
            import optax
            opt = (lambda lr: optax.chain(optax.add_decayed_weights(0.0001), optax.scale_by_learning_rate(lambda count: lr / (1 + 0.0001 * lr * count) ** 0.75)))(args.lr)
            """,
        )


class HygienicSuggestionsTest(SwitcherooTest):
    def test_param_group_suggestion_binds_a_loop_variable_lr(self) -> None:
        out = run_codemod(
            "import torch\n"
            "for lr in [0.1, 0.2]:\n"
            "    opt = torch.optim.Adagrad([{'params': a, 'lr': lr}, {'params': b, 'lr': 0.5}], lr=0.1, lr_decay=0.01, eps=0.0)\n"
        )
        self.assertIn(
            "'group_0': (lambda lr_1: optax.adagrad(learning_rate=lambda count: lr_1 / (1 + count * 0.01), initial_accumulator_value=0, eps=0.0))(lr),",
            out,
        )
        self.assertIn(
            "'group_1': optax.adagrad(learning_rate=lambda count: 0.5 / (1 + count * 0.01), initial_accumulator_value=0, eps=0.0),",
            out,
        )


class VisibleNamesTest(SwitcherooTest):
    SOURCE = """
        def other():
            count = 1
        def build(model, i):
            opt = torch.optim.SGD(p, lr=0.1)
            sched = torch.optim.lr_scheduler.{scheduler}
            for batch in data:
                opt.step()
                sched.step()
        """

    def translated(self, scheduler: str) -> str:
        out = statements(self.SOURCE.replace("{scheduler}", scheduler))
        return out.split("    for batch")[0].split("def build(model, i):\n")[1]

    def test_a_parameter_of_the_enclosing_function_renames_the_template_name(self) -> None:
        self.assertEqual(
            self.translated("CosineAnnealingWarmRestarts(opt, T_0=15, T_mult=2)"),
            "    sched = optax.join_schedules([optax.cosine_decay_schedule(0.1, 15 * 2 ** i_1, alpha=0.0 / 0.1) for i_1 in range(next(i_1 for i_1 in range(1, 64) if 15 * (2 ** i_1 - 1) // (2 - 1) >= 2 ** 31))], [15 * (2 ** i_1 - 1) // (2 - 1) for i_1 in range(1, next(i_1 for i_1 in range(1, 64) if 15 * (2 ** i_1 - 1) // (2 - 1) >= 2 ** 31))])\n"
            "    opt = optax.sgd(learning_rate=sched)\n    \n",
        )

    def test_a_local_of_another_function_is_not_visible(self) -> None:
        self.assertEqual(
            self.translated("CosineAnnealingLR(opt, T_max=10)"),
            "    sched = lambda count: 0.0 + (0.1 - 0.0) * (1 + jnp.cos(jnp.pi * count / 10)) / 2\n"
            "    opt = optax.sgd(learning_rate=sched)\n    \n",
        )
