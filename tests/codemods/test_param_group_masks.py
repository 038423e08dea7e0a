"""Param groups split by rank become one optimizer with a weight-decay mask; near misses escape.

The numbers are checked in ``tests/differential/test_param_group_masks.py``; these tests pin
the output text and the shapes that must not convert.
"""

from __future__ import annotations

from ml_switcheroo.rewrite.report import Record
from tests.support import SwitcherooTest, gpt_groups

GROUPS = """
import torch
decay = [p for n, p in model.named_parameters() if {decay}]
no_decay = [p for n, p in model.named_parameters() if {no_decay}]
groups = [{{"params": decay, "weight_decay": 0.1{extra}}}, {{"params": no_decay, "weight_decay": 0.0}}]
opt = torch.optim.AdamW(groups, lr=3e-4)
"""


def groups(decay: str = "p.dim() >= 2", no_decay: str = "p.dim() < 2", extra: str = "") -> str:
    """The decay / no-decay module with the given predicates (and options of the first group)."""
    return GROUPS.format(decay=decay, no_decay=no_decay, extra=extra)


class MaskedGroupsConvertTest(SwitcherooTest):
    def test_adamw_rank_split_gets_a_mask_on_the_decay(self) -> None:
        self.assertConverts(
            groups(),
            """
            import optax
            import jax
            decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
            no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
            groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
            opt = optax.adamw(learning_rate=3e-4, weight_decay=0.1, mask=lambda params: jax.tree_util.tree_map(lambda p: p.ndim >= 2, params))
            """,
        )

    def test_a_rank_mask_warns_that_the_port_must_keep_ranks(self) -> None:
        (record,) = self.records(groups())
        self.assertEqual(record.kind, "converted")
        self.assertIn("assumes each parameter keeps its rank", " ".join(record.warnings))

    def test_coupled_decay_split_masks_add_decayed_weights(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(
                [
                    {"params": [p for p in net.parameters() if p.ndim < 2], "weight_decay": 0},
                    {"params": [p for p in net.parameters() if p.ndim >= 2], "weight_decay": 5e-4},
                ],
                lr=0.1,
                momentum=0.9,
            )
            """,
            """
            import optax
            import jax
            opt = optax.chain(optax.add_decayed_weights(5e-4, mask=lambda params: jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)), optax.sgd(learning_rate=0.1, momentum=0.9))
            """,
        )

    def test_no_decay_predicate_on_one_dimension_gives_a_mask_on_two_or_more(self) -> None:
        self.assertConverts(
            groups("len(p.shape) != 1 and p.requires_grad", "1 == len(p.shape)"),
            """
            import optax
            import jax
            decay = [p for n, p in model.named_parameters() if len(p.shape) != 1 and p.requires_grad]
            no_decay = [p for n, p in model.named_parameters() if 1 == len(p.shape)]
            groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
            opt = optax.adamw(learning_rate=3e-4, weight_decay=0.1, mask=lambda params: jax.tree_util.tree_map(lambda p: p.ndim != 1, params))
            """,
        )

    def test_mask_names_are_fresh_where_params_is_taken(self) -> None:
        self.assertConverts(
            groups().replace("import torch\n", "import torch\nparams = 1\n"),
            """
            import optax
            import jax
            params = 1
            decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
            no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
            groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
            opt = optax.adamw(learning_rate=3e-4, weight_decay=0.1, mask=lambda params_1: jax.tree_util.tree_map(lambda p: p.ndim >= 2, params_1))
            """,
        )

    def test_group_without_weight_decay_takes_torch_s_default_and_p_is_renamed(self) -> None:
        self.assertConverts(
            """
            import torch
            for p in model.parameters():
                p.data.zero_()
            decay = [p for p in model.parameters() if p.dim() >= 2]
            rest = [p for p in model.parameters() if p.dim() <= 1]
            opt = torch.optim.AdamW([{"params": decay}, {"params": rest, "weight_decay": 0}], lr=1e-3)
            """,
            """
            import optax
            import jax
            for p in model.parameters():
                p.data.zero_()
            decay = [p for p in model.parameters() if p.dim() >= 2]
            rest = [p for p in model.parameters() if p.dim() <= 1]
            opt = optax.adamw(learning_rate=1e-3, weight_decay=0.01, mask=lambda params: jax.tree_util.tree_map(lambda p_1: p_1.ndim >= 2, params))
            """,
        )

    def test_equal_other_options_of_both_groups_become_the_optimizer_s(self) -> None:
        source = groups(extra=', "eps": 1e-6').replace(
            '"weight_decay": 0.0}', '"weight_decay": 0.0, "eps": 1e-6}'
        )
        (record,) = self.records(source)
        self.assertEqual(record.kind, "converted")

    def test_gpt_method_with_fused_extra_args_converts(self) -> None:
        (record, _) = self.records(
            "import torch\nclass GPT(torch.nn.Module):\n"
            "    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):\n"
            + gpt_groups("self", "weight_decay", " " * 8)
            + "        print(len(decay_params), sum(p.numel() for p in nodecay_params))\n"
            '        use_fused = device_type == "cuda"\n'
            "        extra_args = dict(fused=True) if use_fused else dict()\n"
            "        optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas, "
            "**extra_args)\n"
            "        return optimizer\n"
        )
        self.assertEqual(record.kind, "converted")


class StaticKeywordArgumentsTest(SwitcherooTest):
    def test_inline_dict_of_neutral_options_is_dropped(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, **{"foreach": False, "capturable": False})
            """,
            """
            import optax
            opt = optax.adam(learning_rate=1e-3)
            """,
        )

    def test_conditional_between_dict_literals_is_dropped_and_its_statement_kept(self) -> None:
        self.assertConverts(
            """
            import torch
            extra_args = dict(fused=True) if use_fused else dict()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **extra_args)
            """,
            """
            import optax
            extra_args = dict(fused=True) if use_fused else dict()
            opt = optax.adamw(learning_rate=1e-3, weight_decay=0.01)
            """,
        )


class MaskedGroupsEscapeTest(SwitcherooTest):
    def escaped(self, code: str) -> Record:
        records = [r for r in self.records(code) if r.api.startswith("torch.optim.")]
        self.assertEqual([r.kind for r in records], ["escaped"], records)
        return records[0]

    def test_predicates_leaving_parameters_out_escape(self) -> None:
        record = self.escaped(groups("p.dim() > 2", "p.dim() < 2"))
        self.assertIn("overlap or leave parameters out", record.reason)

    def test_overlapping_predicates_escape(self) -> None:
        record = self.escaped(groups("p.dim() >= 1", "p.dim() < 2"))
        self.assertIn("overlap or leave parameters out", record.reason)

    def test_groups_differing_in_lr_as_well_escape_with_multi_transform(self) -> None:
        record = self.escaped(groups(extra=', "lr": 1e-3'))
        self.assertIn("param groups with their own options (lr, weight_decay)", record.reason)
        self.assertIn("optax.multi_transform(", record.suggestion)

    def test_equal_lr_in_both_groups_escapes(self) -> None:
        source = groups(extra=', "lr": 1e-3').replace(
            '"weight_decay": 0.0}', '"weight_decay": 0.0, "lr": 1e-3}'
        )
        record = self.escaped(source)
        self.assertIn("param groups with their own options", record.reason)

    def test_both_groups_decaying_escape(self) -> None:
        record = self.escaped(groups().replace('"weight_decay": 0.0', '"weight_decay": 0.01'))
        self.assertIn("param groups with their own options (weight_decay)", record.reason)

    def test_name_based_predicates_escape_with_a_path_mask(self) -> None:
        record = self.escaped(groups('"bias" not in n', '"bias" in n'))
        self.assertIn("split by parameter names", record.reason)
        self.assertIn("jax.tree_util.tree_map_with_path(lambda path, p:", record.suggestion)
        self.assertIn('(lambda n: "bias" not in n)', record.suggestion)

    def test_hugging_face_no_decay_list_escapes_with_a_path_mask(self) -> None:
        record = self.escaped(
            """
            import torch
            no_decay = ["bias", "LayerNorm.weight"]
            grouped = [
                {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)], "weight_decay": 0.01},
                {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
            ]
            opt = torch.optim.AdamW(grouped, lr=5e-5)
            """
        )
        self.assertIn("split by parameter names", record.reason)
        self.assertIn("(lambda n: not any(nd in n for nd in no_decay))", record.suggestion)

    def test_group_list_appended_to_after_it_is_built_escapes(self) -> None:
        record = self.escaped(groups().replace("opt =", 'groups.append({"params": extra})\nopt ='))
        self.assertIn("given by name, `groups`, is read again at", record.reason)

    def test_group_parameters_appended_to_escape(self) -> None:
        record = self.escaped(groups().replace("groups =", "decay.append(extra)\ngroups ="))
        self.assertIn("`decay` is used elsewhere", record.reason)

    def test_group_list_assigned_twice_escapes(self) -> None:
        record = self.escaped(groups().replace("decay = [", "groups = None\ndecay = [", 1))
        self.assertIn("`groups` is assigned more than once", record.reason)

    def test_groups_held_by_an_attribute_escape_with_multi_transform(self) -> None:
        record = self.escaped(
            """
            import torch
            class Trainer:
                def build(self, model):
                    decay = [p for p in model.parameters() if p.dim() >= 2]
                    no_decay = [p for p in model.parameters() if p.dim() < 2]
                    self.groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
                    self.opt = torch.optim.AdamW(self.groups, lr=3e-4)
            """
        )
        self.assertIn("another method may change what the attribute holds", record.reason)
        self.assertIn("optax.multi_transform", record.suggestion)

    def test_groups_over_different_models_escape(self) -> None:
        no_decay = "p for n, p in model.named_parameters() if p.dim() < 2"
        record = self.escaped(groups().replace(no_decay, no_decay.replace("model", "head")))
        self.assertIn("different models", record.reason)

    def test_groups_over_part_of_a_model_escape(self) -> None:
        record = self.escaped(groups().replace("model.named", "model.fc.named"))
        self.assertIn("not every parameter of one model", record.reason)

    def test_unknown_predicate_escapes(self) -> None:
        record = self.escaped(groups("p.numel() > 1", "p.numel() <= 1"))
        self.assertIn("is not one the map knows", record.reason)

    def test_rank_compared_with_a_variable_escapes(self) -> None:
        record = self.escaped(groups("p.dim() >= k", "p.dim() < k"))
        self.assertIn("is not one the map knows", record.reason)

    def test_decay_value_read_where_groups_are_built_escapes_when_it_may_change(self) -> None:
        record = self.escaped(groups().replace('"weight_decay": 0.1', '"weight_decay": cfg.wd'))
        self.assertIn("evaluated where the param groups are built", record.reason)

    def test_file_freezing_parameters_escapes(self) -> None:
        record = self.escaped(
            groups().replace("opt =", "model.fc.weight.requires_grad = False\nopt =")
        )
        self.assertIn("freezes parameters", record.reason)

    def test_optimizer_whose_decay_takes_no_mask_escapes(self) -> None:
        record = self.escaped(groups().replace("AdamW(groups, lr=3e-4)", "Adadelta(groups)"))
        self.assertIn("outside a transformation that takes a mask", record.reason)


class StaticKeywordArgumentsEscapeTest(SwitcherooTest):
    def escaped(self, code: str) -> Record:
        records = [r for r in self.records(code) if r.api.startswith("torch.optim.")]
        self.assertEqual([r.kind for r in records], ["escaped"], records)
        return records[0]

    def test_extra_args_with_a_math_option_escape(self) -> None:
        record = self.escaped(
            """
            import torch
            extra_args = dict(fused=True) if use_fused else dict(eps=1e-6)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **extra_args)
            """
        )
        self.assertIn("`**` keyword unpacking cannot be bound statically", record.reason)

    def test_extra_args_not_a_dict_literal_escape(self) -> None:
        record = self.escaped(
            """
            import torch
            extra_args = make_args()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **extra_args)
            """
        )
        self.assertIn("`**` keyword unpacking cannot be bound statically", record.reason)

    def test_extra_args_changed_after_it_is_built_escape(self) -> None:
        record = self.escaped(
            """
            import torch
            extra_args = dict(fused=True)
            extra_args["lr"] = 0.1
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **extra_args)
            """
        )
        self.assertIn("`**` keyword unpacking cannot be bound statically", record.reason)

    def test_extra_args_repeating_a_keyword_escape(self) -> None:
        record = self.escaped(
            """
            import torch
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True, **{"foreach": False})
            """
        )
        self.assertIn("`**` keyword unpacking cannot be bound statically", record.reason)

    def test_extra_args_built_by_a_shadowed_dict_escape(self) -> None:
        record = self.escaped(
            """
            import torch
            from mylib import dict
            extra_args = dict(fused=True)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **extra_args)
            """
        )
        self.assertIn("`**` keyword unpacking cannot be bound statically", record.reason)

    def test_inline_conditional_with_a_call_test_escapes(self) -> None:
        record = self.escaped(
            """
            import torch
            opt = torch.optim.AdamW(model.parameters(), **(dict(fused=True) if check() else {}))
            """
        )
        self.assertIn("`**` keyword unpacking cannot be bound statically", record.reason)
