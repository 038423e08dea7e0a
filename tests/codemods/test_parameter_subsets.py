"""optimizer.TorchToOptax: optimizers over part of a model, and clip calls over other parameters.

An optax transformation applies to the whole params tree it is given: an optimizer that trains
part of a model escapes, and a clip call folds into an optimizer's chain only when it clips the
parameters that optimizer trains. Each escape has twins of the nearby shapes that still convert.
An optimizer over every parameter of a whole submodule (``model.fc.parameters()``) is the same
transformation of that subtree (s40): it converts, with a warning naming the submodule. A
``requires_grad`` filter still escapes (the code's sign that something may freeze a parameter).
"""

from __future__ import annotations

from ml_switcheroo.rewrite.report import Record
from tests.support import SwitcherooTest, run_codemod, stock_clip


def loop(step_lines: str) -> str:
    return "for x in data:\n" + "".join(f"    {line}\n" for line in step_lines.split(";"))


class OptimizerOverPartOfAModelTest(SwitcherooTest):
    def only_record(self, code: str) -> Record:
        (record,) = self.records(code)
        return record

    def assertEscapes(self, params: str, selected: str) -> Record:
        record = self.only_record(f"import torch\nopt = torch.optim.SGD({params}, lr=0.1)\n")
        self.assertEqual(record.kind, "escaped")
        self.assertIn(f"{selected} are trained here", record.reason)
        self.assertIn("applies to the whole params tree it is given", record.reason)
        return record

    def assertTranslates(self, params: str, prelude: str = "") -> None:
        self.assertConverts(
            f"import torch\n{prelude}opt = torch.optim.SGD({params}, lr=0.1)\n",
            f"import optax\n{prelude}opt = optax.sgd(learning_rate=0.1)\n",
        )

    def assertSubmodule(self, code: str, module: str) -> None:
        record = self.only_record(code)
        self.assertEqual(record.kind, "converted")
        self.assertIn(f"trains every parameter of `{module}` and no other", record.warnings[0])

    def test_submodule_parameters_translate_naming_the_submodule(self) -> None:
        self.assertTranslates("model.fc.parameters()")
        code = "import torch\nopt = torch.optim.SGD(model.fc.parameters(), lr=0.1)\n"
        self.assertSubmodule(code, "model.fc")

    def test_subset_suggestion_freezes_the_rest_with_multi_transform(self) -> None:
        params = "[p for n, p in model.named_parameters() if 'head' in n]"
        record = self.assertEscapes(params, f"only the parameters `{params}` selects")
        self.assertIn(
            "optax.multi_transform({'trained': optax.sgd(learning_rate=0.1), "
            "'frozen': optax.set_to_zero()}, param_labels)",
            record.suggestion,
        )
        self.assertIn(f"'trained' on the leaves of `{params}`", record.suggestion)

    def test_whole_model_parameters_translate(self) -> None:
        self.assertTranslates("model.parameters()")

    def test_named_parameters_of_the_whole_model_translate(self) -> None:
        self.assertTranslates("model.named_parameters()")

    def test_self_model_parameters_translate(self) -> None:
        self.assertConverts(
            """
            import torch
            class Trainer:
                def __init__(self):
                    self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
            """,
            """
            import optax
            class Trainer:
                def __init__(self):
                    self.opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_submodule_of_self_model_translates(self) -> None:
        code = "import torch\nopt = torch.optim.SGD(self.model.fc.parameters(), lr=0.1)\n"
        self.assertSubmodule(code, "self.model.fc")

    def test_submodule_of_self_in_a_module_class_translates(self) -> None:
        self.assertSubmodule(
            "import torch\nfrom torch import nn\nclass Net(nn.Module):\n"
            "    def optimizer(self):\n"
            "        self.opt = torch.optim.SGD(self.fc.parameters(), lr=0.1)\n",
            "self.fc",
        )

    def test_submodule_of_self_in_a_lightning_module_translates(self) -> None:
        self.assertSubmodule(
            "import torch\nimport lightning as L\nclass GAN(L.LightningModule):\n"
            "    def configure_optimizers(self):\n"
            "        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=2e-4)\n",
            "self.generator",
        )

    def test_self_parameters_in_a_module_class_translate(self) -> None:
        self.assertConverts(
            """
            import torch
            class Net(torch.nn.Module):
                def optimizer(self):
                    self.opt = torch.optim.SGD(self.parameters(), lr=0.1)
            """,
            """
            import torch
            import optax
            class Net(torch.nn.Module):
                def optimizer(self):
                    self.opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_data_parallel_module_is_the_whole_model(self) -> None:
        self.assertTranslates("model.module.parameters()")

    def test_submodule_of_a_data_parallel_module_escapes(self) -> None:
        """``model.module`` is DDP's: the port has no wrapper, so the path names nothing."""
        self.assertEscapes("model.module.fc.parameters()", "only `model.module.fc`'s parameters")

    def test_submodule_by_index_escapes(self) -> None:
        self.assertEscapes("model.layers[0].parameters()", "only `model.layers[0]`'s parameters")

    def test_parameters_without_recursion_escape(self) -> None:
        self.assertEscapes(
            "model.parameters(recurse=False)",
            "only the parameters `model.parameters(recurse=False)` selects",
        )

    def test_comprehension_with_a_condition_escapes(self) -> None:
        self.assertEscapes(
            "[p for n, p in model.named_parameters() if 'bias' not in n]",
            "only the parameters `[p for n, p in model.named_parameters() if 'bias' not in n]` "
            "selects",
        )

    def test_requires_grad_comprehension_escapes(self) -> None:
        """The filter is the code's sign that something may freeze a parameter (s40 probe p40a:
        a library's builder or hook, ``torch.load``, a class overriding ``train()``)."""
        record = self.assertEscapes(
            "[p for p in model.parameters() if p.requires_grad]",
            "only the parameters `[p for p in model.parameters() if p.requires_grad]` selects",
        )
        self.assertIn("JAX has no requires_grad", record.reason)

    def test_requires_grad_filter_escapes(self) -> None:
        params = "filter(lambda p: p.requires_grad, model.parameters())"
        self.assertEscapes(params, f"only the parameters `{params}` selects")

    def test_requires_grad_and_another_condition_escapes(self) -> None:
        params = "[p for p in model.parameters() if p.requires_grad if p.dim() > 1]"
        self.assertEscapes(params, f"only the parameters `{params}` selects")

    def test_filter_on_another_predicate_escapes(self) -> None:
        params = "filter(lambda p: p.dim() > 1, model.parameters())"
        self.assertEscapes(params, f"only the parameters `{params}` selects")

    def test_filter_on_requires_grad_of_another_name_escapes(self) -> None:
        params = "filter(lambda p: q.requires_grad, model.parameters())"
        self.assertEscapes(params, f"only the parameters `{params}` selects")

    def test_requires_grad_filter_in_a_file_that_freezes_escapes(self) -> None:
        record = self.only_record(
            "import torch\nmodel.fc.weight.requires_grad = False\n"
            "opt = torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1)\n"
        )
        self.assertEqual(record.kind, "escaped")
        self.assertIn("this file freezes parameters", record.reason)

    def test_comprehension_without_a_condition_translates(self) -> None:
        self.assertTranslates("[p for n, p in model.named_parameters()]")

    def test_list_of_the_whole_model_translates(self) -> None:
        self.assertTranslates("list(model.parameters())")

    def test_chain_of_submodules_escapes(self) -> None:
        record = self.only_record(
            "import torch\nimport itertools\n"
            "opt = torch.optim.SGD(itertools.chain(model.enc.parameters(), model.dec.parameters()), lr=0.1)\n"
        )
        self.assertEqual(record.kind, "escaped")
        self.assertIn("only `model.enc`'s parameters are trained here", record.reason)

    def test_chain_of_whole_models_translates(self) -> None:
        self.assertConverts(
            """
            import torch
            from itertools import chain
            opt = torch.optim.SGD(chain(encoder.parameters(), decoder.parameters()), lr=0.1)
            """,
            """
            from itertools import chain
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_sum_of_submodule_lists_escapes(self) -> None:
        self.assertEscapes(
            "list(model.a.parameters()) + list(model.b.parameters())",
            "only `model.a`'s parameters",
        )

    def test_name_bound_to_submodule_parameters_translates(self) -> None:
        self.assertSubmodule(
            "import torch\nparams = model.fc.parameters()\nopt = torch.optim.SGD(params, lr=0.1)\n",
            "model.fc",
        )

    def test_module_name_bound_to_a_submodule_escapes(self) -> None:
        record = self.only_record(
            "import torch\nbackbone = model.backbone\n"
            "opt = torch.optim.SGD(backbone.parameters(), lr=0.1)\n"
        )
        self.assertEqual(record.kind, "escaped")
        self.assertIn("only `backbone`'s (`model.backbone`) parameters", record.reason)

    def test_module_name_bound_to_a_constructed_model_translates(self) -> None:
        self.assertTranslates("net.parameters()", prelude="net = Net()\n")

    def test_name_bound_to_the_whole_model_translates(self) -> None:
        self.assertTranslates("params", prelude="params = list(model.parameters())\n")

    def test_param_group_over_a_submodule_escapes(self) -> None:
        self.assertEscapes('[{"params": model.fc.parameters()}]', "only `model.fc`'s parameters")

    def test_tensors_of_a_submodule_escape(self) -> None:
        self.assertEscapes(
            "[model.fc.weight, model.fc.bias]",
            "only the tensors `[model.fc.weight, model.fc.bias]`",
        )

    def test_explicit_tensors_translate(self) -> None:
        self.assertTranslates("[w, b]")

    def test_parameters_of_an_unknown_call_escape(self) -> None:
        record = self.only_record(
            "import torch\nopt = torch.optim.SGD(get_params(model), lr=0.1)\n"
        )
        self.assertEqual(record.kind, "escaped")
        self.assertIn("holds every parameter of one model and no param group", record.reason)

    def test_a_free_name_translates_with_a_warning(self) -> None:
        record = self.only_record("import torch\nopt = torch.optim.SGD(params, lr=0.1)\n")
        self.assertEqual(record.kind, "converted")
        self.assertIn("or only part of a model's parameters", record.warnings[0])

    def test_a_name_a_star_import_may_bind_escapes(self) -> None:
        record = self.only_record(
            "import torch\nfrom config import *\nopt = torch.optim.SGD(params, lr=0.1)\n"
        )
        self.assertEqual(record.kind, "escaped")

    def test_methods_of_an_escaped_subset_optimizer_are_kept(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(model.fc.parameters(recurse=False), lr=0.1)\n"
            + loop("opt.zero_grad();opt.step()")
        )
        self.assertIn("    opt.zero_grad()\n", out)
        self.assertNotIn("import optax", out)


class ClipOverOtherParametersTest(SwitcherooTest):
    def test_two_clips_over_different_submodules_stay_out_of_the_chain(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            + loop(
                "torch.nn.utils.clip_grad_norm_(model.backbone.parameters(), 1.0);"
                "torch.nn.utils.clip_grad_norm_(model.head.parameters(), 5.0);"
                "opt.step()"
            )
        )
        self.assertIn("opt = optax.sgd(learning_rate=0.1)\n", out)
        self.assertEqual(out.count("it clips the gradients of `model."), 2)
        self.assertIn("    torch.nn.utils.clip_grad_norm_(model.head.parameters(), 5.0)\n", out)

    def test_clip_escape_names_both_parameter_sets(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.Adam(model.parameters())\n"
            + loop("torch.nn.utils.clip_grad_norm_(model.encoder.parameters(), 1.0);opt.step()")
        )
        self.assertIn(
            "reason: it clips the gradients of `model.encoder.parameters()` but `opt` trains "
            "`model.parameters()`",
            out,
        )

    def test_clip_suggestion_masks_the_clip(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.Adam(model.parameters())\n"
            + loop("torch.nn.utils.clip_grad_value_(model.encoder.parameters(), 0.5);opt.step()")
        )
        self.assertIn("optax.masked(optax.clip(0.5), mask)", out)
        self.assertIn("True on the leaves of `model.encoder.parameters()`", out)

    def test_clip_over_the_same_expression_folds(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.Adam(model.parameters())\n"
            + loop("torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0);opt.step()")
        )
        self.assertIn(
            f"opt = optax.chain({stock_clip('1.0')}, optax.adam(learning_rate=0.001))",
            out,
        )
        self.assertNotIn("clip_grad_norm_", out)

    def test_clip_over_the_model_a_parameter_list_was_built_from_folds(self) -> None:
        out = run_codemod(
            "import torch\nparams = list(model.parameters())\nopt = torch.optim.Adam(params)\n"
            + loop("torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0);opt.step()")
        )
        # the file's `params` renames the template's lambda parameter
        self.assertIn(f"opt = optax.chain({stock_clip('1.0', 'params_1')}, optax.adam(", out)

    def test_clip_over_self_parameters_in_a_module_class_folds(self) -> None:
        out = run_codemod(
            "import torch\nclass Net(torch.nn.Module):\n"
            "    def __init__(self):\n"
            "        self.opt = torch.optim.SGD(self.parameters(), lr=0.1)\n"
            "    def train_step(self):\n"
            "        torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)\n"
            "        self.opt.step()\n"
        )
        self.assertIn(
            f"self.opt = optax.chain({stock_clip('1.0')}, optax.sgd(learning_rate=0.1))",
            out,
        )

    def test_clip_over_a_different_name_escapes(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.Adam(p)\n"
            + loop("torch.nn.utils.clip_grad_norm_(q, 1.0);opt.step()")
        )
        self.assertIn("it clips the gradients of `q` but `opt` trains `p`", out)
        self.assertIn("opt = optax.adam(learning_rate=0.001)\n", out)

    def test_subset_clip_in_a_training_step_is_noted_in_its_escape_hatch(self) -> None:
        out = run_codemod(
            "import torch\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            + loop(
                "loss.backward();"
                "torch.nn.utils.clip_grad_norm_(model.backbone.parameters(), 1.0);"
                "opt.step()"
            )
        )
        self.assertIn("a clip call above clips other parameters than `opt` trains", out)
        self.assertNotIn("is now the head of `opt`'s optax chain", out)
        self.assertIn("opt = optax.sgd(learning_rate=0.1)\n", out)
