"""optimizer.TorchToOptax: Hugging Face transformers schedule factories become optax schedules."""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod

STEP = """
            for x in data:
                # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
                # ml_switcheroo: reason: torch's `opt.step()` updates the parameters in place; optax returns updates that you apply
                # ml_switcheroo: suggestion:
                # ml_switcheroo: |   updates, opt_state = opt.update(grads, opt_state, params)
                # ml_switcheroo: |   params = optax.apply_updates(params, updates)
                # ml_switcheroo: |   # once, after the optimizer is built: opt_state = opt.init(params)
                opt.step()
                # ml_switcheroo: ESCAPE-END
            """


def source(factory: str, call: str) -> str:
    return f"""
            import torch
            from transformers import {factory}
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            sched = {call}
            for x in data:
                opt.step()
                sched.step()
            """


def translated(*lines: str) -> str:
    head = "".join(f"            {line}\n" for line in lines)
    return (
        "\n" + head + "            opt = optax.adamw(learning_rate=sched, weight_decay=0.01)" + STEP
    )


class TransformersFactoryTest(SwitcherooTest):
    def test_constant_schedule(self) -> None:
        self.assertConverts(
            source("get_constant_schedule", "get_constant_schedule(opt)"),
            translated("import optax", "sched = optax.constant_schedule(1e-3)"),
        )

    def test_constant_schedule_with_warmup(self) -> None:
        self.assertConverts(
            source(
                "get_constant_schedule_with_warmup", "get_constant_schedule_with_warmup(opt, 100)"
            ),
            translated(
                "import optax",
                "import jax.numpy as jnp",
                "sched = lambda count: 1e-3 * jnp.where(count < 100, 1.0 * count / max(1.0, 100), 1.0)",
            ),
        )

    def test_linear_schedule_with_warmup(self) -> None:
        self.assertConverts(
            source(
                "get_linear_schedule_with_warmup", "get_linear_schedule_with_warmup(opt, 100, 1000)"
            ),
            translated(
                "import optax",
                "import jax.numpy as jnp",
                "sched = lambda count: 1e-3 * jnp.where(count < 100, 1.0 * count / max(1, 100), jnp.maximum(0.0, (1000 - 1.0 * count) / max(1, 1000 - 100)))",
            ),
        )

    def test_cosine_schedule_with_warmup_and_cycles(self) -> None:
        self.assertConverts(
            source(
                "get_cosine_schedule_with_warmup",
                "get_cosine_schedule_with_warmup(opt, 100, 1000, num_cycles=2)",
            ),
            translated(
                "import optax",
                "import jax.numpy as jnp",
                "sched = lambda count: 1e-3 * jnp.where(count < 100, 1.0 * count / max(1, 100), jnp.maximum(0.0, 0.5 * (1.0 + jnp.cos(jnp.pi * float(2) * 2.0 * ((1.0 * count - 100) / max(1, 1000 - 100))))))",
            ),
        )

    def test_cosine_with_hard_restarts_is_a_table_computed_in_python(self) -> None:
        self.assertConverts(
            source(
                "get_cosine_with_hard_restarts_schedule_with_warmup",
                "get_cosine_with_hard_restarts_schedule_with_warmup(opt, 100, 1000, num_cycles=3)",
            ),
            translated(
                "import optax",
                "import jax.numpy as jnp",
                "import math",
                "sched = (lambda table: lambda count: 1e-3 * table[jnp.minimum(count, len(table) - 1)])(jnp.asarray([float(i) / float(max(1, 100)) if i < 100 else (lambda t: 0.0 if t >= 1.0 else max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(3) * t) % 1.0)))))(float(i - 100) / float(max(1, 1000 - 100))) for i in range(max(1000, 100) + 2)]))",
            ),
        )

    def test_polynomial_decay_reads_the_optimizer_lr(self) -> None:
        self.assertConverts(
            source(
                "get_polynomial_decay_schedule_with_warmup",
                "get_polynomial_decay_schedule_with_warmup(opt, 100, 1000, lr_end=1e-5, power=2.0)",
            ),
            translated(
                "import optax",
                "import jax.numpy as jnp",
                "sched = lambda count: 1e-3 * jnp.where(count < 100, 1.0 * count / max(1, 100), jnp.where(count > 1000, 1e-5 / 1e-3, ((1e-3 - 1e-5) * ((1000 - 1.0 * count) / (1000 - 100)) ** 2.0 + 1e-5) / 1e-3))",
            ),
        )

    def test_inverse_sqrt_schedule_default_timescale(self) -> None:
        self.assertConverts(
            source("get_inverse_sqrt_schedule", "get_inverse_sqrt_schedule(opt, 100)"),
            translated(
                "import optax",
                "import jax.numpy as jnp",
                "sched = lambda count: 1e-3 * jnp.where(count < 100, 1.0 * count / max(1, 100), 1.0 / jnp.sqrt((1.0 * count + ((100 or 10000) - 100)) / (100 or 10000)))",
            ),
        )

    def test_wsd_schedule(self) -> None:
        self.assertConverts(
            source(
                "get_wsd_schedule",
                "get_wsd_schedule(opt, 100, 200, num_training_steps=1000, decay_type='linear')",
            ),
            translated(
                "import optax",
                "import jax.numpy as jnp",
                "sched = lambda count: 1e-3 * jnp.where(count < 100, jnp.maximum(0.0, (lambda t: t)(1.0 * count / max(1, 100)) * (1.0 - 0) + 0), jnp.where(count < 100 + (1000 - 100 - 200), 1.0, jnp.where(count < 100 + (1000 - 100 - 200) + 200, jnp.maximum(0.0, (lambda t: 1.0 - t)((1.0 * count - 100 - (1000 - 100 - 200)) / max(1, 200)) * (1.0 - 0) + 0), 0)))",
            ),
        )

    def test_every_import_form_of_a_factory_is_found(self) -> None:
        for imports, spelling in (
            ("import transformers", "transformers.get_linear_schedule_with_warmup"),
            ("import transformers", "transformers.optimization.get_linear_schedule_with_warmup"),
            (
                "from transformers import optimization",
                "optimization.get_linear_schedule_with_warmup",
            ),
            (
                "from transformers.optimization import get_linear_schedule_with_warmup as f",
                "f",
            ),
        ):
            out = run_codemod(
                f"import torch\n{imports}\nopt = torch.optim.AdamW(p, lr=1e-3)\n"
                f"sched = {spelling}(opt, 10, 100)\n"
                "for x in data:\n    opt.step()\n    sched.step()\n"
            )
            self.assertIn("sched = lambda count: 1e-3 * jnp.where(count < 10,", out)
            self.assertNotIn("sched.step()", out)
            self.assertNotIn("transformers", out)

    def test_get_scheduler_with_a_literal_name_is_the_factory_it_names(self) -> None:
        self.assertConverts(
            source(
                "get_scheduler",
                "get_scheduler('linear', opt, num_warmup_steps=100, num_training_steps=1000)",
            ),
            translated(
                "import optax",
                "import jax.numpy as jnp",
                "sched = lambda count: 1e-3 * jnp.where(count < 100, 1.0 * count / max(1, 100), jnp.maximum(0.0, (1000 - 1.0 * count) / max(1, 1000 - 100)))",
            ),
        )
