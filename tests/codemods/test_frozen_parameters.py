"""A file that freezes parameters (`freeze_attributes` / `freeze_methods` in the map) escapes
its optimizers: torch skips a parameter without a gradient (no update, no weight decay); an
optax transformation updates every leaf it is given (AdamW's decay moved the frozen ones)."""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod

OPT = "opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)\n"


class FrozenParametersTest(SwitcherooTest):
    def assertEscapesFor(self, freezing: str) -> None:
        source = "import torch\n" + freezing + OPT
        self.assertIn(f"{OPT}# ml_switcheroo: ESCAPE-END", run_codemod(source))
        (record,) = self.records(source)
        self.assertEqual(record.kind, "escaped")
        self.assertIn("this file freezes parameters", record.reason)

    def assertConvertsWith(self, unfreezing: str) -> None:
        out = run_codemod("import torch\n" + unfreezing + OPT)
        self.assertIn("opt = optax.adamw(learning_rate=1e-3, weight_decay=0.01)", out)

    def test_requires_grad_set_to_false_in_a_loop(self) -> None:
        self.assertEscapesFor(
            "for p in model.backbone.parameters():\n    p.requires_grad = False\n"
        )

    def test_requires_grad_set_from_a_flag(self) -> None:
        self.assertEscapesFor(
            "for p in model.head.parameters():\n    p.requires_grad = train_head\n"
        )

    def test_requires_grad_method_with_false(self) -> None:
        self.assertEscapesFor("model.backbone.requires_grad_(False)\n")

    def test_freezing_after_the_optimizer_is_built(self) -> None:
        source = "import torch\n" + OPT + "model.embed.requires_grad_(False)\n"
        self.assertIn("ESCAPE-BEGIN torch.optim.AdamW", run_codemod(source))

    def test_a_peft_model_freezes_the_base_model(self) -> None:
        """peft trains only its adapters (map: ``freezing_calls``); before, AdamW over the
        peft model's parameters converted and decayed every leaf."""
        self.assertEscapesFor("from peft import get_peft_model\nmodel = get_peft_model(model, c)\n")

    def test_a_peft_call_imported_under_another_name_freezes(self) -> None:
        self.assertEscapesFor("from peft import get_peft_model as wrap\nmodel = wrap(model, c)\n")

    def test_peft_spelled_through_its_module_freezes(self) -> None:
        for freezing in (
            "import peft\nmodel = peft.get_peft_model(model, c)\n",
            "from peft import PeftModel\nmodel = PeftModel.from_pretrained(model, path)\n",
            "from peft import prepare_model_for_kbit_training as prep\nmodel = prep(model)\n",
        ):
            with self.subTest(freezing=freezing):
                self.assertEscapesFor(freezing)

    def test_an_adapter_added_to_the_model_freezes_it(self) -> None:
        self.assertEscapesFor("model.add_adapter(lora_config)\n")

    def test_timm_and_lightning_freezes(self) -> None:
        for freezing in (
            "from timm.utils import freeze\nfreeze(model, ['patch_embed'])\n",
            "from lightning.pytorch.callbacks import BaseFinetuning\n"
            "BaseFinetuning.freeze(model.backbone)\n",
        ):
            with self.subTest(freezing=freezing):
                self.assertEscapesFor(freezing)

    def test_a_peft_call_that_freezes_nothing_converts(self) -> None:
        self.assertConvertsWith(
            "from peft import get_peft_model_state_dict\nsd = get_peft_model_state_dict(model)\n"
        )

    def test_requires_grad_set_to_true_converts(self) -> None:
        self.assertConvertsWith("for p in model.parameters():\n    p.requires_grad = True\n")

    def test_requires_grad_method_without_argument_converts(self) -> None:
        self.assertConvertsWith("model.requires_grad_()\n")

    def test_requires_grad_changed_by_augmented_assignment(self) -> None:
        self.assertEscapesFor("for p in model.parameters():\n    p.requires_grad &= train\n")

    def test_requires_grad_set_in_one_target_of_a_chained_assignment(self) -> None:
        self.assertEscapesFor("x = p.requires_grad = False\n")

    def test_a_file_naming_requires_grad_only_as_a_read_converts(self) -> None:
        self.assertConvertsWith("print(p.requires_grad)\n")

    def test_requires_grad_set_by_setattr_in_a_method(self) -> None:
        """s21g: missed before (NNX 0.85 relative off torch over 36 updates)."""
        self.assertEscapesFor(
            "class T:\n    def freeze(self):\n        for p in self.m.parameters():\n"
            "            setattr(p, 'requires_grad', False)\n"
        )

    def test_setattr_of_requires_grad_to_true_converts(self) -> None:
        self.assertConvertsWith(
            "for p in model.parameters():\n    setattr(p, 'requires_grad', True)\n"
        )

    def test_setattr_of_another_attribute_converts(self) -> None:
        self.assertConvertsWith("setattr(cfg, 'requires_grad_note', False)\n")

    def test_a_method_named_setattr_converts(self) -> None:
        self.assertConvertsWith("store.setattr(p, 'requires_grad', False)\n")
