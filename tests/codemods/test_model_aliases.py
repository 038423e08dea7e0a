"""optimizer.TorchToOptax: a clip of ``self.model.parameters()`` and an optimizer over
``model.parameters()`` are one model object when the program proves it.

``self.model = model`` is the one store of ``.model`` in the file, and ``model`` is bound once
where both read it: the clip folds into the optimizer's chain. Each trap twin makes the two
possibly different objects, and the clip stays out of the chain ("clips other parameters").
"""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod, stock_clip

FOLDED = f"self.opt = optax.chain({stock_clip('1.0')}, optax.sgd(learning_rate=0.1))"
NOT_FOLDED = "a clip call above clips other parameters than `self.opt` trains"


def trainer(init: str = "", extra: str = "", optimizer_over: str = "model") -> str:
    """A trainer that keeps ``self.model = model`` and clips ``self.model`` before stepping."""
    return (
        "import torch\n"
        "class Trainer:\n"
        "    def __init__(self, model):\n"
        "        self.model = model\n"
        f"{init}"
        f"        self.opt = torch.optim.SGD({optimizer_over}.parameters(), lr=0.1)\n"
        "    def train_step(self, x):\n"
        "        self.model(x).sum().backward()\n"
        "        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)\n"
        "        self.opt.step()\n"
        f"{extra}"
    )


class ModelAliasTest(SwitcherooTest):
    def test_clip_of_self_model_folds_into_the_optimizer_over_model(self) -> None:
        out = run_codemod(trainer())
        self.assertIn(FOLDED, out)
        self.assertNotIn("clip_grad_norm_(self.model", out.split("ESCAPE-END")[-1])

    def test_clip_of_a_method_parameter_named_model_is_not_self_model(self) -> None:
        code = trainer(optimizer_over="self.model").replace(
            "clip_grad_norm_(self.model.parameters()", "clip_grad_norm_(model.parameters()"
        )
        code = code.replace("def train_step(self, x):", "def train_step(self, x, model=None):")
        out = run_codemod(code)
        self.assertIn(NOT_FOLDED, out)  # that `model` is train_step's own parameter

    def test_model_rebound_after_the_store_is_another_object(self) -> None:
        out = run_codemod(trainer(init="        model = torch.nn.DataParallel(model)\n"))
        self.assertIn(NOT_FOLDED, out)
        self.assertNotIn(FOLDED, out)

    def test_self_model_stored_again_in_another_method_is_not_proved(self) -> None:
        out = run_codemod(trainer(extra="    def swap(self, other):\n        self.model = other\n"))
        self.assertIn(NOT_FOLDED, out)

    def test_self_model_stored_by_a_subclass_in_the_file_is_not_proved(self) -> None:
        out = run_codemod(
            trainer(
                extra="class Tuned(Trainer):\n"
                "    def __init__(self, model, other):\n"
                "        super().__init__(model)\n"
                "        self.model = other\n"
            )
        )
        self.assertIn(NOT_FOLDED, out)

    def test_self_model_stored_in_a_tuple_is_not_proved(self) -> None:
        out = run_codemod(
            trainer(extra="    def swap(self, a, b):\n        self.model, self.x = a, b\n")
        )
        self.assertIn(NOT_FOLDED, out)

    def test_setattr_in_the_file_makes_the_alias_unknown(self) -> None:
        out = run_codemod(
            trainer(extra="    def set(self, name, value):\n        setattr(self, name, value)\n")
        )
        self.assertIn(NOT_FOLDED, out)

    def test_a_model_property_in_the_file_makes_the_alias_unknown(self) -> None:
        out = run_codemod(
            trainer(
                extra="class Other(Trainer):\n"
                "    @property\n"
                "    def model(self):\n"
                "        return self.teacher\n"
            )
        )
        self.assertIn(NOT_FOLDED, out)

    def test_self_model_of_a_wrapped_model_is_not_the_same_object(self) -> None:
        code = trainer().replace("self.model = model", "self.model = torch.compile(model)")
        out = run_codemod(code)
        self.assertIn(NOT_FOLDED, out)

    def test_optimizer_over_a_model_of_another_method_is_not_the_same_object(self) -> None:
        code = (
            "import torch\n"
            "class Trainer:\n"
            "    def __init__(self, model):\n"
            "        self.model = model\n"
            "    def setup(self, model):\n"
            "        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "    def train_step(self, x):\n"
            "        self.model(x).sum().backward()\n"
            "        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)\n"
            "        self.opt.step()\n"
        )
        out = run_codemod(code)
        self.assertIn(NOT_FOLDED, out)

    def test_named_parameters_against_parameters_are_not_matched(self) -> None:
        code = trainer().replace(
            "clip_grad_norm_(self.model.parameters()",
            "clip_grad_norm_(self.model.named_parameters()",
        )
        out = run_codemod(code)
        self.assertNotIn(FOLDED, out)


class SubmoduleClipTest(SwitcherooTest):
    def test_clips_of_two_submodules_stay_out_of_the_chain(self) -> None:
        source = (
            "import torch\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "for b in batches:\n"
            "    opt.zero_grad()\n"
            "    b.sum().backward()\n"
            "    torch.nn.utils.clip_grad_norm_(model.backbone.parameters(), 1.0)\n"
            "    torch.nn.utils.clip_grad_norm_(model.head.parameters(), 0.5)\n"
            "    opt.step()\n"
        )
        out = run_codemod(source)
        self.assertNotIn("clip_by_global_norm", out.split("ESCAPE-BEGIN")[0])
        self.assertIn("clip_grad_norm_(model.backbone.parameters(), 1.0)", out)
