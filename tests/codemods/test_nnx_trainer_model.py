"""optimizer.TorchToNNX, a trainer class (issue 13, item 1): the optimizer built on the
constructor's ``model`` and the step calling ``self.model`` convert when the class stores
``self.model = model`` once (the one store of ``.model`` in the file) and ``model`` is never
rebound; a rebinding anywhere, a second store, a wrapper or another value escape."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import SwitcherooTest, run_codemod

TRAINER = """\
import torch


class Trainer:
    def __init__(self, model, lr):
        {store}
        self.opt = torch.optim.AdamW(model.parameters(), lr=lr)

    def train_step(self, x):
        loss = self.model(x).sum()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item()
{extra}"""


def trainer(store: str = "self.model = model", extra: str = "") -> str:
    return TRAINER.format(store=store, extra=extra)


def convert(code: str) -> str:
    return run_codemod(textwrap.dedent(code), TorchToNNX)


def steps_escaped(output: str) -> bool:
    """Whether the step keeps its escape hatch and no code calls ``nnx.value_and_grad``."""
    code = [line for line in output.splitlines() if not line.strip().startswith("#")]
    return BEGIN in output and not any("nnx.value_and_grad(" in line for line in code)


class TrainerModelTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_a_step_calling_self_model_of_the_constructors_model_converts(self) -> None:
        self.assertConverts(
            trainer(),
            """\
            import optax
            from flax import nnx


            class Trainer:
                def __init__(self, model, lr):
                    self.model = model
                    self.opt = nnx.Optimizer(model, optax.adamw(learning_rate=lr, weight_decay=0.01), wrt=nnx.Param)

                def train_step(self, x):
                    def loss_fn(model):
                        loss = model(x).sum()
                        return loss
                    loss, grads = nnx.value_and_grad(loss_fn)(self.model)
                    self.opt.update(self.model, grads)
                    return loss.item()
            """,
        )

    def test_a_wrapped_model_converts_and_the_store_escapes(self) -> None:
        store = "self.model = torch.nn.parallel.DistributedDataParallel(model)"
        output = convert(trainer(store=store))
        assert "self.opt.update(self.model, grads)" in output, output
        assert "ESCAPE-BEGIN torch.nn.parallel.DistributedDataParallel" in output, output

    def test_a_trainer_built_in_the_file_converts_too(self) -> None:
        output = convert(trainer(extra="\n\ntrainer = Trainer(make_model(), 0.1)\n"))
        assert "self.opt.update(self.model, grads)" in output and BEGIN not in output, output

    def test_the_reverse_store_then_self_model_parameters_converts(self) -> None:
        source = trainer().replace("AdamW(model.parameters()", "AdamW(self.model.parameters()")
        output = convert(source)
        assert "self.opt.update(self.model, grads)" in output and BEGIN not in output, output

    def test_a_second_run_changes_nothing(self) -> None:
        once = convert(trainer())
        assert convert(once) == once


class TrainerModelTrapTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_self_model_rebound_by_another_method_escapes(self) -> None:
        extra = "\n    def swap(self, other):\n        self.model = other\n"
        assert steps_escaped(convert(trainer(extra=extra)))

    def test_self_model_stored_twice_escapes(self) -> None:
        store = "self.model = model\n        self.model = model"
        assert steps_escaped(convert(trainer(store=store)))

    def test_a_model_wrapped_by_a_function_of_the_user_escapes(self) -> None:
        assert steps_escaped(convert(trainer(store="self.model = wrap(model)")))

    def test_a_map_wrapper_of_another_model_escapes(self) -> None:
        store = "self.model = torch.nn.parallel.DistributedDataParallel(other)"
        assert steps_escaped(convert(trainer(store=store)))

    def test_self_model_from_another_value_escapes(self) -> None:
        assert steps_escaped(convert(trainer(store="self.model = lr")))

    def test_self_model_rebound_in_a_subclass_of_the_file_escapes(self) -> None:
        extra = (
            "\n\nclass Sub(Trainer):\n    def __init__(self, model, lr, other):\n"
            "        super().__init__(model, lr)\n        self.model = other\n"
        )
        assert steps_escaped(convert(trainer(extra=extra)))

    def test_the_constructors_model_rebound_after_the_store_escapes(self) -> None:
        store = "self.model = model\n        model = model.half()"
        assert steps_escaped(convert(trainer(store=store)))

    def test_self_model_set_from_outside_the_class_escapes(self) -> None:
        extra = "\n\ndef main(net, other):\n    t = Trainer(net, 0.1)\n    t.model = other\n"
        assert steps_escaped(convert(trainer(extra=extra)))

    def test_self_model_stored_in_another_method_than_the_optimizer_escapes(self) -> None:
        source = trainer(store="pass").replace(
            "    def train_step",
            "    def attach(self, model):\n        self.model = model\n\n    def train_step",
        )
        assert steps_escaped(convert(source))
