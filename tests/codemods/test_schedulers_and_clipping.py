"""optimizer.TorchToOptax: schedulers and clipping fold into the optimizer; the training step."""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod, stock_clip


def loop(step_lines: str) -> str:
    return "for x in data:\n" + "".join(f"    {line}\n" for line in step_lines.split(";"))


class SchedulerFoldingTest(SwitcherooTest):
    def test_scheduler_becomes_the_learning_rate_and_moves_before_the_optimizer(self) -> None:
        self.assertConverts(
            """
            import torch
            from torch.optim.lr_scheduler import StepLR
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            sched = StepLR(opt, step_size=30, gamma=0.1)
            for x in data:
                opt.step()
                sched.step()
            """,
            """
            import optax
            sched = optax.exponential_decay(0.1, transition_steps=30, decay_rate=0.1, staircase=True)
            opt = optax.sgd(learning_rate=sched, momentum=0.9)
            for x in data:
                # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
                # ml_switcheroo: reason: torch's `opt.step()` updates the parameters in place; optax returns updates that you apply
                # ml_switcheroo: suggestion:
                # ml_switcheroo: |   updates, opt_state = opt.update(grads, opt_state, params)
                # ml_switcheroo: |   params = optax.apply_updates(params, updates)
                # ml_switcheroo: |   # once, after the optimizer is built: opt_state = opt.init(params)
                opt.step()
                # ml_switcheroo: ESCAPE-END
            """,
        )

    def test_import_forms_of_schedulers(self) -> None:
        for imports, spelling in (
            ("import torch", "torch.optim.lr_scheduler.ExponentialLR"),
            ("from torch.optim import lr_scheduler", "lr_scheduler.ExponentialLR"),
            ("import torch.optim.lr_scheduler as lrs", "lrs.ExponentialLR"),
            ("from torch.optim.lr_scheduler import ExponentialLR as E", "E"),
        ):
            source = (
                f"import torch\n{imports}\nopt = torch.optim.Adam(p, lr=1e-3)\n"
                f"sched = {spelling}(opt, gamma=0.9)\n" + loop("opt.step();sched.step()")
            )
            out = run_codemod(source)
            self.assertIn(
                "sched = optax.exponential_decay(1e-3, transition_steps=1, decay_rate=0.9)", out
            )
            self.assertIn("opt = optax.adam(learning_rate=sched)", out)
            self.assertNotIn("sched.step()", out)

    def test_optimizer_moves_down_when_the_schedule_needs_later_names(self) -> None:
        out = run_codemod(
            "import torch\n"
            "opt = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
            "total = len(loader) * epochs\n"
            "sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)\n"
            + loop("opt.step();sched.step()")
        )
        lines = out.splitlines()
        self.assertLess(
            lines.index("total = len(loader) * epochs"),
            next(i for i, line in enumerate(lines) if line.startswith("sched = ")),
        )
        self.assertLess(
            next(i for i, line in enumerate(lines) if line.startswith("sched = ")),
            lines.index("opt = optax.adam(learning_rate=sched)"),
        )

    def test_optimizer_used_in_between_blocks_the_move(self) -> None:
        out = run_codemod(
            "import torch\n"
            "opt = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
            "register(opt)\n"
            "total = len(loader)\n"
            "sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)\n"
            + loop("opt.step();sched.step()")
        )
        self.assertIn("opt = optax.adam(learning_rate=1e-3)", out)
        self.assertIn("neither can move", out)

    def test_self_attributes_in_one_method(self) -> None:
        out = run_codemod(
            "import torch\n"
            "class T:\n"
            "    def __init__(self, m):\n"
            "        self.opt = torch.optim.AdamW(m.parameters(), lr=1e-3)\n"
            "        self.sched = torch.optim.lr_scheduler.LinearLR(self.opt, start_factor=0.1, total_iters=100)\n"
            "    def fit(self, batch):\n"
            "        self.opt.step()\n"
            "        self.sched.step()\n"
        )
        self.assertIn(
            "self.sched = optax.linear_schedule(1e-3 * 0.1, 1e-3 * 1.0, transition_steps=100)\n        self.opt = optax.adamw(learning_rate=self.sched, weight_decay=0.01)",
            out,
        )
        self.assertNotIn("self.sched.step()", out)

    def test_sequential_of_named_parts(self) -> None:
        out = run_codemod(
            "import torch\n"
            "from torch.optim.lr_scheduler import LinearLR, CosineAnnealingLR, SequentialLR\n"
            "opt = torch.optim.AdamW(model.parameters(), lr=0.02, weight_decay=0.1)\n"
            "warmup = LinearLR(opt, start_factor=0.1, total_iters=10)\n"
            "cosine = CosineAnnealingLR(opt, T_max=50)\n"
            "sched = SequentialLR(opt, [warmup, cosine], milestones=[10])\n"
            + loop("opt.step();sched.step()")
        )
        self.assertIn(
            "sched = optax.join_schedules([warmup, cosine], [10])\nopt = optax.adamw(learning_rate=sched, weight_decay=0.1)",
            out,
        )
        self.assertIn("warmup = optax.linear_schedule(", out)

    def test_momentum_cycling_uses_inject_hyperparams(self) -> None:
        out = run_codemod(
            "import torch\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)\n"
            "sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=1000)\n"
            + loop("opt.step();sched.step()")
        )
        self.assertIn(
            "opt = optax.inject_hyperparams(optax.sgd)(learning_rate=sched, momentum=", out
        )

    def test_reduce_on_plateau_joins_the_chain(self) -> None:
        out = run_codemod(
            "import torch\n"
            "opt = torch.optim.Adam(model.parameters(), lr=0.05)\n"
            "sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)\n"
            "for epoch in range(10):\n"
            "    opt.step()\n"
            "    sched.step(val_loss)\n"
        )
        self.assertIn(
            "sched = optax.contrib.reduce_on_plateau(factor=0.5, patience=2 + 1, rtol=0.0001, atol=0.0, cooldown=0, min_scale=1.1920928955078126e-08 / 0.05)",
            out,
        )
        self.assertIn("opt = optax.chain(optax.adam(learning_rate=0.05), sched)", out)
        self.assertIn("value=val_loss", out)

    def test_get_last_lr_and_param_groups_escape(self) -> None:
        out = run_codemod(
            "import torch\n"
            "opt = torch.optim.Adam(model.parameters(), lr=0.05)\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, 10)\n"
            "for x in data:\n"
            "    opt.step()\n"
            "    sched.step()\n"
            "    log(sched.get_last_lr()[0])\n"
            "for group in opt.param_groups:\n"
            "    group['lr'] = 0.01\n"
        )
        # the lr written through param_groups: the scheduler stays torch code (a folded
        # schedule would not see the write), its get_last_lr() with it
        self.assertIn("this code also uses `opt.param_groups` at example.py:8", out)
        self.assertNotIn("ESCAPE-BEGIN torch.optim.lr_scheduler.LRScheduler.get_last_lr", out)
        self.assertIn("ESCAPE-BEGIN torch.optim.Optimizer.param_groups", out)
        self.assertIn("opt_state.hyperparams['learning_rate']", out)


class StepFrequencyTest(SwitcherooTest):
    SOURCE = (
        "import torch\n"
        "def train(model, loader, optimizer):\n"
        "    for x in loader:\n"
        "        optimizer.step()\n"
        "def main(model, loader):\n"
        "    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)\n"
        "    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)\n"
        "    for epoch in range(10):\n"
        "        train(model, loader, optimizer)\n"
        "        scheduler.step()\n"
    )

    def test_per_epoch_stepping_through_a_function_escapes(self) -> None:
        (record,) = [r for r in self.records(self.SOURCE) if r.api.endswith("StepLR")]
        self.assertEqual(record.kind, "escaped")
        self.assertIn("once per epoch", record.reason)

    def test_per_epoch_stepping_translates_with_steps_per_epoch(self) -> None:
        out = run_codemod(self.SOURCE, steps_per_epoch="len(loader)")
        self.assertIn(
            "scheduler = (lambda steps_per_epoch: lambda count: (optax.exponential_decay(1.0, transition_steps=1, decay_rate=0.7, staircase=True))(count // steps_per_epoch))(len(loader))",
            out,
        )
        self.assertNotIn("scheduler.step()", out)

    def test_step_in_a_different_condition_escapes(self) -> None:
        out = run_codemod(
            "import torch\n"
            "opt = torch.optim.SGD(p, lr=0.1)\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, 10)\n"
            "for i, x in enumerate(data):\n"
            "    if i % 4 == 0:\n"
            "        opt.step()\n"
            "    sched.step()\n"
        )
        self.assertIn("cannot tell whether step() runs once per optimizer update", out)

    def test_scheduler_never_stepped_escapes(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(p, lr=0.1)\nsched = torch.optim.lr_scheduler.StepLR(opt, 10)\n"
        )
        self.assertIn("step() is not called in this file", out)

    def test_two_schedulers_on_one_optimizer_escape(self) -> None:
        out = run_codemod(
            "import torch\n"
            "opt = torch.optim.SGD(p, lr=0.1)\n"
            "a = torch.optim.lr_scheduler.StepLR(opt, 10)\n"
            "b = torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)\n"
            + loop("opt.step();a.step();b.step()")
        )
        self.assertEqual(out.count("several schedulers step the same optimizer"), 2)
        self.assertIn("opt = optax.sgd(learning_rate=0.1)", out)


class ClippingTest(SwitcherooTest):
    def test_clip_heads_the_chain_and_the_call_goes(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1, weight_decay=1e-4)
            def step():
                torch.nn.utils.clip_grad_norm_(p, max_norm=1.0)
                opt.step()
            """,
            """
            import jax.numpy as jnp
            import optax
            opt = optax.chain(optax.stateless(lambda updates, params, max_norm=1.0: optax.tree.scale(jnp.minimum(max_norm / (optax.tree.norm(updates) + 1e-6), 1.0), updates)), optax.add_decayed_weights(1e-4), optax.sgd(learning_rate=0.1))
            def step():
                # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
                # ml_switcheroo: reason: torch's `opt.step()` updates the parameters in place; optax returns updates that you apply
                # ml_switcheroo: suggestion:
                # ml_switcheroo: |   updates, opt_state = opt.update(grads, opt_state, params)
                # ml_switcheroo: |   params = optax.apply_updates(params, updates)
                # ml_switcheroo: |   # once, after the optimizer is built: opt_state = opt.init(params)
                opt.step()
                # ml_switcheroo: ESCAPE-END
            """,
        )

    def test_clip_spellings(self) -> None:
        for imports, call in (
            ("from torch import nn", "nn.utils.clip_grad_norm_(p, 0.5)"),
            ("from torch.nn.utils import clip_grad_norm_", "clip_grad_norm_(p, 0.5)"),
            (
                "from torch.nn.utils import clip_grad_norm_ as clip",
                "clip(parameters=p, max_norm=0.5)",
            ),
            ("import torch.nn.utils.clip_grad as cg", "cg.clip_grad_norm_(p, 0.5, 2)"),
        ):
            out = run_codemod(
                f"import torch\n{imports}\nopt = torch.optim.Adam(p)\n" + loop(f"{call};opt.step()")
            )
            self.assertIn(
                f"opt = optax.chain({stock_clip('0.5')}, optax.adam(learning_rate=0.001))",
                out,
                imports,
            )

    def test_clip_value(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(p, lr=0.1)\n"
            + loop("torch.nn.utils.clip_grad_value_(p, clip_value=0.5);opt.step()")
        )
        self.assertIn("opt = optax.chain(optax.clip(0.5), optax.sgd(learning_rate=0.1))", out)

    def test_norm_type_other_than_one_two_inf_escapes_in_stock_mode_and_translates_in_exact_mode(
        self,
    ) -> None:
        source = "import torch\nopt = torch.optim.SGD(p, lr=0.1)\n" + loop(
            "torch.nn.utils.clip_grad_norm_(p, 1.0, norm_type=3.0);opt.step()"
        )
        self.assertIn("optax.tree.norm computes the 1-, 2- and inf-norms", run_codemod(source))
        exact = run_codemod(source, exact=True)
        self.assertIn(
            "opt = optax.chain(optax_torch.clip_by_global_norm(1.0, norm_type=3.0), optax.sgd(learning_rate=0.1))",
            exact,
        )
        self.assertIn("from ml_switcheroo import optax_torch", exact)

    def test_error_if_nonfinite_escapes_the_clip(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(p, lr=0.1)\n"
            + loop("torch.nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True);opt.step()")
        )
        self.assertIn("torch raises when the gradients' total norm is NaN or inf", out)
        self.assertIn("opt = optax.sgd(learning_rate=0.1)", out)

    def test_error_if_nonfinite_not_a_literal_escapes_the_clip(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(p, lr=0.1)\n"
            + loop("torch.nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=f);opt.step()")
        )
        self.assertIn("with error_if_nonfinite=f torch raises", out)

    def test_error_if_nonfinite_false_folds_the_clip(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(p, lr=0.1)\n"
            + loop("torch.nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=False);opt.step()")
        )
        self.assertIn(f"opt = optax.chain({stock_clip('1.0')}, optax.sgd(learning_rate=0.1))", out)

    def test_used_norm_escapes(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(p, lr=0.1)\n"
            + loop("norm = torch.nn.utils.clip_grad_norm_(p, 1.0);opt.step();log(norm)")
        )
        self.assertIn("its return value (the total gradient norm) is used", out)
        self.assertIn("opt = optax.sgd(learning_rate=0.1)", out)

    def test_clip_without_a_known_optimizer_step_escapes(self) -> None:
        out = run_codemod(
            "import torch\ndef f(model):\n    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
        )
        self.assertIn("no single translated optimizer is stepped after this call", out)


class TrainingStepTest(SwitcherooTest):
    def test_backward_to_step_is_one_escape_hatch(self) -> None:
        out = run_codemod(
            "import torch\n"
            "opt = torch.optim.SGD(p, lr=0.1)\n"
            + loop(
                "opt.zero_grad();loss = model(x);loss.backward();torch.nn.utils.clip_grad_norm_(p, 1.0);opt.step()"
            )
        )
        self.assertEqual(out.count("ESCAPE-BEGIN"), 1)
        begin = out.index("ESCAPE-BEGIN")
        self.assertLess(out.index("loss = model(x)"), begin)
        self.assertIn("loss, grads = jax.value_and_grad(loss_fn)(params)", out)
        self.assertIn("gradient clipping above is now the head of `opt`'s optax chain", out)
        self.assertNotIn("zero_grad", out)

    def test_grad_scaler_step(self) -> None:
        out = run_codemod(
            "import torch\n"
            "opt = torch.optim.AdamW(p, lr=1e-3)\n"
            "scaler = torch.amp.GradScaler('cuda')\n"
            + loop(
                "scaler.scale(loss).backward();scaler.unscale_(opt);scaler.step(opt);scaler.update()"
            )
        )
        self.assertIn("JAX needs no loss scaling", out)
        self.assertIn("updates, opt_state = opt.update(grads, opt_state, params)", out)
        self.assertTrue(out.rstrip().endswith("# ml_switcheroo: ESCAPE-END"))

    def test_region_is_stable_on_a_second_run(self) -> None:
        once = run_codemod(
            "import torch\nopt = torch.optim.SGD(p, lr=0.1)\n"
            + loop("loss.backward();opt.step();opt.zero_grad()")
        )
        self.assertEqual(run_codemod(once), once)

    def test_suggestion_names_the_loss_only_when_it_is_a_name(self) -> None:
        """Found in torch's sources: ``x[0].sum().backward(retain_graph=True)`` was suggested as
        ``True, grads = ...`` (a keyword argument taken for the loss)."""
        cases = {
            "pred[0].sum().backward(retain_graph=True)": "loss",
            "loss.backward(retain_graph=True)": "loss",
            "accelerator.backward(total)": "total",
            "scaler.scale(total).backward()": "total",
            "self.manual_backward(self.loss)": "self.loss",
        }
        for backward, name in cases.items():
            out = run_codemod(
                f"import torch\nopt = torch.optim.SGD(p, lr=0.1)\n{backward}\nopt.step()\n"
            )
            self.assertIn(f"|   {name}, grads = jax.value_and_grad(loss_fn)(params)", out, backward)


class TrainingStepShapesTest(SwitcherooTest):
    """The ten most common training-step shapes of shared/reference/real_world_patterns.md."""

    PRELUDE = (
        "import torch\n"
        "class M(torch.nn.Module):\n"
        "    def fit(self, data, fabric, accelerator):\n"
        "        opt = torch.optim.AdamW(self.parameters(), lr=1e-3)\n"
        "        {scheduler}\n"
        "        for i, x in enumerate(data):\n"
        "            loss = self(x)\n"
    )
    SCHEDULER = "lr_scheduler = torch.optim.lr_scheduler.LinearLR(opt)"
    SHAPES = {
        "zero_grad, backward, step": "opt.zero_grad();loss.backward();opt.step()",
        "backward, step": "loss.backward();opt.step()",
        "fabric": "fabric.backward(loss);opt.step();opt.zero_grad()",
        "accelerator": "accelerator.backward(loss);opt.step();lr_scheduler.step();opt.zero_grad()",
        "manual_backward, zero_grad after": "self.manual_backward(loss);opt.step();opt.zero_grad()",
        "zero_grad, manual_backward": "opt.zero_grad();self.manual_backward(loss);opt.step()",
        "manual_backward": "self.manual_backward(loss);opt.step()",
        "clip": "opt.zero_grad();loss.backward();torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0);opt.step()",
        "zero_grad, fabric": "opt.zero_grad();fabric.backward(loss);opt.step()",
        "backward, clip, step": "loss.backward();torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0);opt.step()",
    }

    def test_every_shape_gets_one_escape_hatch_with_the_real_names(self) -> None:
        for name, steps in self.SHAPES.items():
            scheduler = self.SCHEDULER if "lr_scheduler" in steps else "pass"
            prelude = self.PRELUDE.format(scheduler=scheduler)
            source = prelude + "".join(f"            {s}\n" for s in steps.split(";"))
            out = run_codemod(source)
            with self.subTest(shape=name):
                self.assertEqual(out.count("ESCAPE-BEGIN"), 1, out)
                self.assertIn("loss, grads = jax.value_and_grad(loss_fn)(params)", out)
                self.assertIn("updates, opt_state = opt.update(grads, opt_state, params)", out)
                self.assertIn("# once, after `opt` is built: opt_state = opt.init(params)", out)
                self.assertNotIn("zero_grad", out)
                if "lr_scheduler.step()" in steps:
                    self.assertNotIn("lr_scheduler.step()", out)
                    self.assertIn("opt = optax.adamw(learning_rate=lr_scheduler", out)
                self.assertEqual(run_codemod(out), out)

    def test_accumulation_gate_suggests_multisteps(self) -> None:
        out = run_codemod(
            self.PRELUDE.format(scheduler=self.SCHEDULER)
            + "            loss.backward()\n"
            + "            if (i + 1) % 4 == 0:\n"
            + "                opt.step()\n"
            + "                lr_scheduler.step()\n"
            + "                opt.zero_grad()\n"
        )
        self.assertIn("optax.MultiSteps(opt, every_k_schedule=<steps per update>)", out)


def test_a_returned_combined_scheduler_is_named_in_its_components_escape() -> None:
    """Components of a ``return SequentialLR(...)`` (no target name) name that call."""
    code = (
        "import torch\nfrom torch.optim.lr_scheduler import LambdaLR, StepLR, SequentialLR\n\n\n"
        "def get_lr_scheduler(optimizer, warmup_steps):\n"
        "    warm = LambdaLR(optimizer, lambda step: step / warmup_steps)\n"
        "    main = StepLR(optimizer, step_size=10)\n"
        "    return SequentialLR(optimizer, [warm, main], milestones=[warmup_steps])\n"
    )
    output = run_codemod(code)
    assert "it is part of `SequentialLR(...)`, which is not translated" in output, output
