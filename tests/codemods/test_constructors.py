"""optimizer.TorchToOptax: optimizer constructors, in every call shape."""

from __future__ import annotations

from tests.support import SwitcherooTest


class ImportFormsTest(SwitcherooTest):
    def test_torch_dot_optim_after_import_torch(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), lr=0.01)
            """,
            """
            import optax
            opt = optax.adam(learning_rate=0.01)
            """,
        )

    def test_import_torch_optim_as_alias(self) -> None:
        self.assertConverts(
            """
            import torch.optim as optim
            opt = optim.Adam(model.parameters(), lr=0.01)
            """,
            """
            import optax
            opt = optax.adam(learning_rate=0.01)
            """,
        )

    def test_from_torch_import_optim(self) -> None:
        self.assertConverts(
            """
            from torch import optim
            opt = optim.SGD(model.parameters(), lr=0.1)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_any_other_module_alias(self) -> None:
        self.assertConverts(
            """
            import torch.optim as O
            opt = O.SGD(model.parameters(), lr=0.1)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_from_torch_optim_import_class(self) -> None:
        self.assertConverts(
            """
            from torch.optim import Adam
            opt = Adam(model.parameters(), lr=0.01)
            """,
            """
            import optax
            opt = optax.adam(learning_rate=0.01)
            """,
        )

    def test_from_torch_optim_import_class_as_alias(self) -> None:
        self.assertConverts(
            """
            from torch.optim import AdamW as W
            opt = W(model.parameters(), lr=0.01)
            """,
            """
            import optax
            opt = optax.adamw(learning_rate=0.01, weight_decay=0.01)
            """,
        )

    def test_plain_import_torch_optim(self) -> None:
        self.assertConverts(
            """
            import torch.optim
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )


class ArgumentBindingTest(SwitcherooTest):
    def test_params_keyword_is_dropped(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(params=model.parameters(), lr=0.1)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_positional_lr_is_bound_by_torch_signature(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), 0.1)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_positional_momentum_after_lr(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), args.lr, 0.9, nesterov=True)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=args.lr, momentum=0.9, nesterov=True)
            """,
        )

    def test_omitted_lr_takes_torch_default(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters())
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.001)
            """,
        )

    def test_values_that_are_names_and_attributes_pass_through(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, eps=eps)
            """,
            """
            import optax
            opt = optax.adam(learning_rate=cfg.optim.lr, eps=eps)
            """,
        )

    def test_betas_literal_is_split(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
            """,
            """
            import optax
            opt = optax.adam(learning_rate=2e-4, b1=0.5, b2=0.999)
            """,
        )

    def test_betas_variable_is_indexed(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=args.betas)
            """,
            """
            import optax
            opt = optax.adam(learning_rate=1e-3, b1=args.betas[0], b2=args.betas[1])
            """,
        )

    def test_betas_call_is_evaluated_once_through_a_binding(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), betas=make_betas())
            """,
            """
            import optax
            opt = (lambda betas: optax.adam(learning_rate=0.001, b1=betas[0], b2=betas[1]))(make_betas())
            """,
        )

    def test_adamw_weight_decay_default_is_explicit(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-6)
            """,
            """
            import optax
            opt = optax.adamw(learning_rate=1e-3, b1=0.9, b2=0.95, eps=1e-6, weight_decay=0.01)
            """,
        )

    def test_adam_weight_decay_is_coupled_l2(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
            """,
            """
            import optax
            opt = optax.chain(optax.add_decayed_weights(1e-4), optax.adam(learning_rate=1e-3))
            """,
        )

    def test_adam_decoupled_weight_decay_is_adamw(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), weight_decay=0.1, decoupled_weight_decay=True)
            """,
            """
            import optax
            opt = optax.adamw(learning_rate=0.001, weight_decay=0.1)
            """,
        )

    def test_sgd_weight_decay_variable_is_kept(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=wd)
            """,
            """
            import optax
            opt = optax.chain(optax.add_decayed_weights(wd), optax.sgd(learning_rate=0.1, momentum=0.9))
            """,
        )

    def test_maximize_negates_before_weight_decay(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=0.1, maximize=True)
            """,
            """
            import optax
            opt = optax.chain(optax.scale(-1.0), optax.add_decayed_weights(0.1), optax.sgd(learning_rate=0.01))
            """,
        )

    def test_math_neutral_arguments_are_dropped(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True, foreach=False)
            """,
            """
            import optax
            opt = optax.adamw(learning_rate=1e-3, weight_decay=0.01)
            """,
        )

    def test_expression_values_are_parenthesized_only_where_needed(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=base_lr * world_size)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=base_lr * world_size)
            """,
        )


class EscapedConstructorTest(SwitcherooTest):
    def test_sgd_dampening_escapes_with_exact_suggestion(self) -> None:
        (record,) = self.records(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.5)
            """
        )
        self.assertEqual((record.kind, record.api), ("escaped", "torch.optim.SGD"))
        self.assertIn("dampen", record.reason)
        self.assertIn(
            "optax_torch.sgd(learning_rate=0.1, momentum=0.9, dampening=0.5", record.suggestion
        )

    def test_sgd_dampening_without_momentum_translates(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1, dampening=0.5)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_unknown_keyword_escapes(self) -> None:
        (record,) = self.records(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), lr=0.1, warmup=100)
            """
        )
        self.assertIn("unknown argument `warmup`", record.reason)

    def test_double_star_kwargs_escape(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), **optim_kwargs)
            """,
            """
            import torch
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Adam
            # ml_switcheroo: reason: `**` keyword unpacking cannot be bound statically; its keys and values are only known at run time
            opt = torch.optim.Adam(model.parameters(), **optim_kwargs)
            # ml_switcheroo: ESCAPE-END
            """,
        )

    def test_star_args_escape(self) -> None:
        (record,) = self.records(
            """
            import torch
            opt = torch.optim.SGD(*args)
            """
        )
        self.assertIn("`*` argument unpacking", record.reason)

    def test_non_literal_flag_that_changes_the_math_escapes(self) -> None:
        (record,) = self.records(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), amsgrad=use_amsgrad)
            """
        )
        self.assertEqual(record.kind, "escaped")
        self.assertIn("`amsgrad` is not a literal", record.reason)

    def test_amsgrad_escapes_in_stock_mode(self) -> None:
        (record,) = self.records(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), lr=0.02, amsgrad=True)
            """
        )
        self.assertIn("AMSGrad", record.reason)
        self.assertIn("--exact", record.suggestion)


class ParamGroupsTest(SwitcherooTest):
    def test_groups_with_own_options_escape_with_multi_transform(self) -> None:
        (record,) = self.records(
            """
            import torch
            opt = torch.optim.AdamW(
                [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                lr=3e-4,
            )
            """
        )
        self.assertEqual(record.kind, "escaped")
        self.assertIn("param groups with their own options (weight_decay)", record.reason)
        self.assertIn("optax.multi_transform(", record.suggestion)
        self.assertIn(
            "'group_0': optax.adamw(learning_rate=3e-4, weight_decay=0.1)", record.suggestion
        )
        self.assertIn(
            "'group_1': optax.adamw(learning_rate=3e-4, weight_decay=0.0)", record.suggestion
        )

    def test_groups_held_by_a_variable_are_inspected(self) -> None:
        (record,) = self.records(
            """
            import torch
            def build(model):
                groups = [{"params": model.head.parameters(), "lr": 1e-2}, {"params": model.body.parameters()}]
                return torch.optim.SGD(groups, lr=1e-3, momentum=0.9)
            """
        )
        self.assertEqual(record.kind, "escaped")
        self.assertIn("(lr)", record.reason)
        self.assertIn("'group_0': optax.sgd(learning_rate=1e-2, momentum=0.9)", record.suggestion)

    def test_groups_without_options_translate_like_a_parameter_list(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam([{"params": enc.parameters()}, {"params": dec.parameters()}], lr=1e-3)
            """,
            """
            import optax
            opt = optax.adam(learning_rate=1e-3)
            """,
        )

    def test_requires_grad_filter_escapes_as_part_of_the_model(self) -> None:
        (record,) = self.records(
            """
            import torch
            opt = torch.optim.Adam(filter(lambda p: p.requires_grad, model.parameters()), lr=1e-3)
            """
        )
        self.assertEqual(record.kind, "escaped")
        self.assertIn("JAX has no requires_grad", record.reason)
        self.assertIn("'frozen': optax.set_to_zero()", record.suggestion)

    def test_a_parameter_no_call_shows_escapes(self) -> None:
        (record,) = self.records(
            """
            import torch
            def build(param_groups):
                opt = torch.optim.Adam(param_groups, lr=1e-3)
            """
        )
        self.assertEqual(record.kind, "escaped")
        self.assertIn("no call shows what `param_groups` holds", record.reason)
        self.assertIn("`optax.adam(learning_rate=1e-3)`", record.suggestion)

    def test_a_parameter_every_call_passes_model_parameters_translates(self) -> None:
        records = self.records(
            """
            import torch
            def build(params):
                opt = torch.optim.Adam(params, lr=1e-3)
            build(model.parameters())
            """
        )
        self.assertEqual([r.kind for r in records], ["converted"])
        self.assertFalse(records[0].warnings)

    def test_a_parameter_a_call_passes_groups_escapes(self) -> None:
        (record,) = self.records(
            """
            import torch
            def build(params):
                opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1)
            build(model.parameters())
            build(groups_of(model))
            """
        )
        self.assertEqual(record.kind, "escaped")
        self.assertIn("`groups_of(model)` at example.py:5 reaches it", record.reason)
