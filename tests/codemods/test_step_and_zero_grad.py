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
                return opt
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
