"""optimizer.TorchToOptax: opt.step() escape hatches and opt.zero_grad() removal."""

from __future__ import annotations

from tests.support import SwitcherooTest


class StepTest(SwitcherooTest):
    def test_step_is_wrapped_with_the_real_variable_name(self) -> None:
        self.assertConverts(
            """
            import torch
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            optimizer.step()
            print(loss)
            """,
            """
            import optax
            optimizer = optax.adam(learning_rate=1e-3)
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
            # ml_switcheroo: reason: torch's `optimizer.step()` updates the parameters in place; optax returns updates that you apply
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   updates, optimizer_state = optimizer.update(grads, optimizer_state, params)
            # ml_switcheroo: |   params = optax.apply_updates(params, updates)
            # ml_switcheroo: |   # once, after the optimizer is built: optimizer_state = optimizer.init(params)
            optimizer.step()
            # ml_switcheroo: ESCAPE-END
            print(loss)
            """,
        )

    def test_step_as_the_last_statement_of_a_block(self) -> None:
        self.assertConverts(
            """
            import torch
            def fit(model, data):
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
                for batch in data:
                    opt.step()
                return opt
            """,
            """
            import optax
            def fit(model, data):
                opt = optax.sgd(learning_rate=0.1)
                for batch in data:
                    # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
                    # ml_switcheroo: reason: torch's `opt.step()` updates the parameters in place; optax returns updates that you apply
                    # ml_switcheroo: suggestion:
                    # ml_switcheroo: |   updates, opt_state = opt.update(grads, opt_state, params)
                    # ml_switcheroo: |   params = optax.apply_updates(params, updates)
                    # ml_switcheroo: |   # once, after the optimizer is built: opt_state = opt.init(params)
                    opt.step()
                    # ml_switcheroo: ESCAPE-END
                # ml_switcheroo: ESCAPE-BEGIN torch.optim.SGD
                # ml_switcheroo: reason: `opt` is now an optax GradientTransformation, not a torch optimizer, and this code uses it as a torch optimizer: `return opt`
                # ml_switcheroo: suggestion:
                # ml_switcheroo: |   port it by hand: an optax transformation has only init and update; pass `opt` with its state `opt_state` (`opt_state = opt.init(params)`) to code written for optax, and checkpoint `opt_state` (a pytree: flax.serialization, orbax or pickle of the state), rebuilding `opt` from code
                return opt
                # ml_switcheroo: ESCAPE-END
            """,
        )

    def test_step_on_a_self_attribute(self) -> None:
        (record,) = [
            r
            for r in self.records(
                """
                import torch
                class T:
                    def __init__(self, m):
                        self.optim = torch.optim.SGD(m.parameters(), lr=0.1)
                    def fit(self):
                        self.optim.step()
                """
            )
            if r.kind == "escaped"
        ]
        self.assertIn(
            "updates, self.optim_state = self.optim.update(grads, self.optim_state, params)",
            record.suggestion,
        )

    def test_step_with_closure_suggests_value_and_grad(self) -> None:
        records = self.records(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            opt.step(closure)
            """
        )
        escaped = [r for r in records if r.kind == "escaped"]
        self.assertEqual(len(escaped), 1)
        self.assertIn("re-evaluates the loss", escaped[0].reason)
        self.assertIn("jax.value_and_grad(loss_fn)(params)", escaped[0].suggestion)

    def test_step_in_a_one_line_suite_wraps_the_compound_statement(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            if (i + 1) % accum == 0: opt.step()
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
            # ml_switcheroo: reason: torch's `opt.step()` updates the parameters in place; optax returns updates that you apply
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   updates, opt_state = opt.update(grads, opt_state, params)
            # ml_switcheroo: |   params = optax.apply_updates(params, updates)
            # ml_switcheroo: |   # once, after the optimizer is built: opt_state = opt.init(params)
            if (i + 1) % accum == 0: opt.step()
            # ml_switcheroo: ESCAPE-END
            """,
        )

    def test_escaped_statement_keeps_its_own_comments(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            # apply the update
            opt.step()  # in place
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            # apply the update
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
            # ml_switcheroo: reason: torch's `opt.step()` updates the parameters in place; optax returns updates that you apply
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   updates, opt_state = opt.update(grads, opt_state, params)
            # ml_switcheroo: |   params = optax.apply_updates(params, updates)
            # ml_switcheroo: |   # once, after the optimizer is built: opt_state = opt.init(params)
            opt.step()  # in place
            # ml_switcheroo: ESCAPE-END
            """,
        )


class ZeroGradTest(SwitcherooTest):
    def test_statement_is_removed(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            opt.zero_grad()
            loss = f()
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            loss = f()
            """,
        )

    def test_set_to_none_keyword_and_positional(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            opt.zero_grad(set_to_none=True)
            opt.zero_grad(False)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_block_that_would_become_empty_gets_pass(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            def reset():
                opt.zero_grad()
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            def reset():
                pass
            """,
        )

    def test_one_line_suite_gets_pass(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            if step % accum == 0: opt.zero_grad()
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            if step % accum == 0: pass
            """,
        )

    def test_one_of_several_statements_on_a_line(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            opt.zero_grad(); loss.backward()
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            loss.backward()
            """,
        )

    def test_expression_position_becomes_none(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            result = opt.zero_grad()
            callback = lambda: opt.zero_grad()
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            result = None
            callback = lambda: None
            """,
        )

    def test_comments_of_the_removed_statement_are_kept(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            for batch in data:
                # start fresh
                opt.zero_grad()  # clear old grads
                loss = step(batch)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            for batch in data:
                # start fresh
                # clear old grads
                loss = step(batch)
            """,
        )

    def test_comment_of_a_removed_last_statement_stays_in_the_block(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            def reset():
                opt.zero_grad()  # clear
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            def reset():
                # clear
                pass
            """,
        )

    def test_kept_while_the_optimizer_construction_is_escaped(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Rprop(p)
            opt.zero_grad()
            """,
            """
            import torch
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Rprop
            # ml_switcheroo: reason: torch Rprop zeroes the gradient where its sign flips and starts from step size lr; optax.rprop differs (measured 34% relative)
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   run with --exact for optax_torch.rprop(learning_rate=0.01, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-06, max_step_size=50)
            opt = torch.optim.Rprop(p)
            # ml_switcheroo: ESCAPE-END
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.zero_grad
            # ml_switcheroo: reason: `opt` is still a torch optimizer: its construction is left in an escape hatch, and this call must stay while it is
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   # drop this call once `opt` is an optax GradientTransformation
            opt.zero_grad()
            # ml_switcheroo: ESCAPE-END
            """,
        )

    def test_removed_when_the_same_construction_translates_with_exact(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Rprop(p)
            opt.zero_grad()
            """,
            """
            from ml_switcheroo import optax_torch
            opt = optax_torch.rprop(learning_rate=0.01)
            """,
            exact=True,
        )

    def test_kept_for_an_escaped_optimizer_held_on_self(self) -> None:
        self.assertConverts(
            """
            import torch
            class Trainer:
                def fit(self):
                    self.opt.zero_grad()
                def __init__(self, model):
                    self.opt = torch.optim.Adam(model.parameters(), amsgrad=True)
            """,
            """
            import torch
            class Trainer:
                def fit(self):
                    # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.zero_grad
                    # ml_switcheroo: reason: `self.opt` is still a torch optimizer: its construction is left in an escape hatch, and this call must stay while it is
                    # ml_switcheroo: suggestion:
                    # ml_switcheroo: |   # drop this call once `self.opt` is an optax GradientTransformation
                    self.opt.zero_grad()
                    # ml_switcheroo: ESCAPE-END
                def __init__(self, model):
                    # ml_switcheroo: ESCAPE-BEGIN torch.optim.Adam
                    # ml_switcheroo: reason: torch AMSGrad keeps the running max of the raw second moment and bias-corrects it afterwards; optax.amsgrad differs (measured 15% relative)
                    # ml_switcheroo: suggestion:
                    # ml_switcheroo: |   run with --exact for optax_torch.amsgrad(learning_rate=0.001, b1=0.9, b2=0.999, eps=1e-08)
                    self.opt = torch.optim.Adam(model.parameters(), amsgrad=True)
                    # ml_switcheroo: ESCAPE-END
            """,
        )
