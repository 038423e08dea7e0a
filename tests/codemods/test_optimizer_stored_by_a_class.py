"""An optimizer handed to a class of the file that stores it (issue 12, deliverable 1;
``analysis/stored.py``): ``Trainer(model, loader, optimizer)`` whose ``__init__`` stores the
parameter once in ``self.optimizer`` is no hand-over when every construction of the class in the
file passes a translated optimizer and the class only steps and zeroes it. The construction stays
converted; in the class ``self.optimizer.zero_grad()`` goes and ``self.optimizer.step()`` is that
optimizer's step (optax: the step escape; NNX: the step converts when ``self.model`` is the model
it was built over). Anything else escapes, naming the ``file:line`` that decided."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import SwitcherooTest, renders_a_step, run_codemod

TRAINER = """\
import torch
import torch.nn.functional as F


class Trainer:
    def __init__(self, model, train_data, optimizer, save_every):
        self.model = {model}
        self.train_data = train_data
        self.optimizer = optimizer
        self.save_every = save_every{init_extra}

    def _run_batch(self, source, targets):
        self.optimizer.zero_grad()
        output = self.model(source)
        loss = F.mse_loss(output, targets)
        loss.backward()
        {step}

    def train(self, max_epochs):
        for epoch in range(max_epochs):
            for source, targets in self.train_data:
                self._run_batch(source, targets)


def main(train_data, total_epochs):
    model = torch.nn.Linear(20, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    trainer = Trainer(model, train_data, optimizer, 10)
    trainer.train(total_epochs)
{extra}"""


def trainer(
    *,
    model: str = "model",
    init_extra: str = "",
    step: str = "self.optimizer.step()",
    extra: str = "",
) -> str:
    return TRAINER.format(model=model, init_extra=init_extra, step=step, extra=extra)


def optax_output(source: str) -> str:
    return run_codemod(textwrap.dedent(source), TorchToOptax)


def nnx_output(source: str) -> str:
    return run_codemod(textwrap.dedent(source), TorchToNNX)


def construction_escaped(output: str) -> bool:
    """Whether ``Trainer(...)`` in ``main`` sits in an escape hatch (a hand-over)."""
    lines = output.splitlines()
    at = next(i for i, line in enumerate(lines) if "trainer = Trainer(" in line)
    return any("ESCAPE-BEGIN torch.optim.SGD" in line for line in lines[at - 5 : at])


def zero_grad_kept(output: str) -> bool:
    return "self.optimizer.zero_grad()" in output


class StoredOptimizerOptaxTest(SwitcherooTest):
    TRANSFORM = TorchToOptax

    def test_the_construction_converts_and_the_class_steps_it(self) -> None:
        self.assertConverts(
            trainer(),
            """\
            import torch
            import torch.nn.functional as F
            import optax


            class Trainer:
                def __init__(self, model, train_data, optimizer, save_every):
                    self.model = model
                    self.train_data = train_data
                    self.optimizer = optimizer
                    self.save_every = save_every

                def _run_batch(self, source, targets):
                    output = self.model(source)
                    loss = F.mse_loss(output, targets)
                    # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
                    # ml_switcheroo: reason: torch computes gradients into .grad (`loss.backward()`) and `self.optimizer.step()` applies them in place; JAX takes gradients of a loss function and optax returns updates to apply
                    # ml_switcheroo: suggestion:
                    # ml_switcheroo: |   def loss_fn(params):  # the forward pass that computes `loss`, as a function of the parameters
                    # ml_switcheroo: |       ...
                    # ml_switcheroo: |       return loss
                    # ml_switcheroo: |   loss, grads = jax.value_and_grad(loss_fn)(params)
                    # ml_switcheroo: |   updates, self.optimizer_state = self.optimizer.update(grads, self.optimizer_state, params)
                    # ml_switcheroo: |   params = optax.apply_updates(params, updates)
                    # ml_switcheroo: |   # once, after `self.optimizer` is built: self.optimizer_state = self.optimizer.init(params)
                    loss.backward()
                    self.optimizer.step()
                    # ml_switcheroo: ESCAPE-END

                def train(self, max_epochs):
                    for epoch in range(max_epochs):
                        for source, targets in self.train_data:
                            self._run_batch(source, targets)


            def main(train_data, total_epochs):
                model = torch.nn.Linear(20, 1)
                optimizer = optax.sgd(learning_rate=1e-3)
                trainer = Trainer(model, train_data, optimizer, 10)
                trainer.train(total_epochs)
            """,
        )

    def test_two_constructions_of_translated_optimizers_both_convert(self) -> None:
        extra = (
            "\n\ndef other(data):\n    net = torch.nn.Linear(2, 1)\n"
            "    Trainer(net, data, torch.optim.Adam(net.parameters()), 1)\n"
        )
        output = optax_output(trainer(extra=extra))
        assert "optax.adam(" in output and not construction_escaped(output), output
        assert not zero_grad_kept(output), output

    def test_a_state_dict_of_the_stored_optimizer_is_marked_in_place(self) -> None:
        extra_method = "\n\n    def save(self):\n        return self.optimizer.state_dict()"
        output = optax_output(trainer(init_extra=extra_method))
        lines = output.splitlines()
        at = lines.index("        return self.optimizer.state_dict()")
        assert "ESCAPE-BEGIN torch.optim.Optimizer.state_dict" in lines[at - 4], output
        assert not construction_escaped(output) and not zero_grad_kept(output), output

    def test_an_lr_read_of_the_stored_optimizer_is_marked_in_place(self) -> None:
        extra_method = '\n\n    def lr(self):\n        return self.optimizer.param_groups[0]["lr"]'
        output = optax_output(trainer(init_extra=extra_method))
        lines = output.splitlines()
        at = lines.index('        return self.optimizer.param_groups[0]["lr"]')
        assert "ESCAPE-BEGIN torch.optim.Optimizer.param_groups" in lines[at - 4], output
        assert not construction_escaped(output) and not zero_grad_kept(output), output


class StoredOptimizerTrapTest(SwitcherooTest):
    """Each shape keeps the hand-over escape at ``Trainer(...)``, with the place that decided."""

    TRANSFORM = TorchToOptax

    def assertHandOver(self, source: str, place: str) -> None:
        output = optax_output(source)
        assert construction_escaped(output), output
        assert f"example.py:{place}" in output, output
        assert zero_grad_kept(output), output

    def test_another_construction_passing_none_escapes(self) -> None:
        extra = "\n\ndef other(data):\n    Trainer(torch.nn.Linear(2, 1), data, None, 1)\n"
        self.assertHandOver(trainer(extra=extra), "33 passes `None`")

    def test_another_construction_passing_an_unknown_value_escapes(self) -> None:
        extra = "\n\ndef other(data, opt):\n    Trainer(torch.nn.Linear(2, 1), data, opt, 1)\n"
        self.assertHandOver(trainer(extra=extra), "33 passes `opt`")

    def test_a_scheduler_built_in_the_class_over_the_stored_optimizer_escapes(self) -> None:
        init = "\n        self.sched = torch.optim.lr_scheduler.StepLR(self.optimizer, 10)"
        self.assertHandOver(trainer(init_extra=init), "11 hands `self.optimizer` on")

    def test_getattr_on_the_instance_in_the_class_escapes(self) -> None:
        step = "getattr(self, 'optimizer').step()"
        self.assertHandOver(trainer(step=step), "17 `getattr(...)` reaches an attribute")

    def test_setattr_on_the_instance_outside_the_class_escapes(self) -> None:
        extra = "    setattr(trainer, 'optimizer', None)\n"
        self.assertHandOver(trainer(extra=extra), "30 `setattr(...)` reaches an attribute")

    def test_a_subclass_that_rebinds_the_optimizer_escapes(self) -> None:
        extra = (
            "\n\nclass Sub(Trainer):\n    def __init__(self, model, data, optimizer, other):\n"
            "        super().__init__(model, data, optimizer, 1)\n        self.optimizer = other\n"
        )
        self.assertHandOver(trainer(extra=extra), "32 `Trainer` is used without calling it")

    def test_the_attribute_read_outside_the_class_escapes(self) -> None:
        extra = "    print(trainer.optimizer)\n"
        self.assertHandOver(trainer(extra=extra), "30 reads `.optimizer` outside the class")

    def test_the_attribute_stored_again_in_another_method_escapes(self) -> None:
        extra_method = "\n\n    def swap(self, other):\n        self.optimizer = other"
        self.assertHandOver(trainer(init_extra=extra_method), "13 stores `.optimizer` again")

    def test_a_classmethod_that_may_build_the_class_escapes(self) -> None:
        extra_method = (
            "\n\n    @classmethod\n    def make(cls, model, data):\n"
            "        return cls(model, data, None, 1)"
        )
        self.assertHandOver(trainer(init_extra=extra_method), "12 `Trainer` may build")

    def test_a_parameter_rebound_in_init_escapes(self) -> None:
        source = trainer().replace(
            "        self.optimizer = optimizer\n",
            "        optimizer = optimizer\n        self.optimizer = optimizer\n",
        )
        output = optax_output(source)
        assert construction_escaped(output) and zero_grad_kept(output), output


class StoredOptimizerNotTranslatedTest(SwitcherooTest):
    TRANSFORM = TorchToOptax

    def test_a_construction_passing_an_escaped_torch_optimizer_keeps_the_class_torch(self) -> None:
        extra = (
            "\n\ndef other(data):\n    net = torch.nn.Linear(2, 1)\n"
            "    Trainer(net, data, torch.optim.LBFGS(net.parameters()), 1)\n"
        )
        output = optax_output(trainer(extra=extra))
        assert zero_grad_kept(output), output
        assert "a value bound at line 34 to `torch.optim.LBFGS(...)`" in output, output

    def test_an_escaped_constructor_leaves_the_class_alone(self) -> None:
        source = trainer().replace(
            "torch.optim.SGD(model.parameters(), lr=1e-3)", "torch.optim.LBFGS(model.parameters())"
        )
        output = optax_output(source)
        assert zero_grad_kept(output) and "still a torch optimizer" in output, output


NNX_AFTER = """\
import torch
import jax.numpy as jnp
from flax import nnx
import optax


class Trainer:
    def __init__(self, model, train_data, optimizer, save_every):
        self.model = model
        self.train_data = train_data
        self.optimizer = optimizer
        self.save_every = save_every

    def _run_batch(self, source, targets):
        def loss_fn(model):
            output = model(source)
            loss = (lambda x, t: jnp.mean((x - t) ** 2))(output, targets)
            return loss
        loss, grads = nnx.value_and_grad(loss_fn)(self.model)
        self.optimizer.update(self.model, grads)

    def train(self, max_epochs):
        for epoch in range(max_epochs):
            for source, targets in self.train_data:
                self._run_batch(source, targets)


def main(train_data, total_epochs):
    model = torch.nn.Linear(20, 1)
    optimizer = nnx.Optimizer(model, optax.sgd(learning_rate=1e-3), wrt=nnx.Param)
    trainer = Trainer(model, train_data, optimizer, 10)
    trainer.train(total_epochs)
"""


class StoredOptimizerNNXTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_the_step_of_the_stored_optimizer_converts(self) -> None:
        self.assertConverts(trainer(), NNX_AFTER)

    def test_a_model_wrapped_after_the_store_converts_and_the_wrapper_escapes(self) -> None:
        init = "\n        self.model = torch.nn.parallel.DistributedDataParallel(self.model)"
        output = nnx_output(trainer(init_extra=init))
        assert not zero_grad_kept(output) and renders_a_step(output), output
        wrapper = "# ml_switcheroo: ESCAPE-BEGIN torch.nn.parallel.DistributedDataParallel"
        assert wrapper in output, output

    def test_a_model_moved_with_to_converts(self) -> None:
        output = nnx_output(trainer(model="model.to(0)"))
        assert not zero_grad_kept(output) and renders_a_step(output), output

    def test_a_model_wrapped_and_stored_again_elsewhere_escapes(self) -> None:
        init = "\n        self.model = torch.nn.parallel.DistributedDataParallel(self.model)"
        extra = "\n\ndef swap(trainer, other):\n    trainer.model = other\n"
        output = nnx_output(trainer(init_extra=init, extra=extra))
        assert zero_grad_kept(output) and not renders_a_step(output), output

    def test_two_constructions_escape_the_step(self) -> None:
        extra = (
            "\n\ndef other(data):\n    net = torch.nn.Linear(2, 1)\n"
            "    Trainer(net, data, torch.optim.SGD(net.parameters(), lr=0.1), 1)\n"
        )
        output = nnx_output(trainer(extra=extra))
        assert not renders_a_step(output) and BEGIN in output, output

    def test_a_construction_passing_another_model_escapes_the_step(self) -> None:
        source = trainer().replace(
            "Trainer(model, train_data, optimizer, 10)",
            "Trainer(torch.nn.Linear(20, 1), train_data, optimizer, 10)",
        )
        output = nnx_output(source)
        assert not renders_a_step(output) and BEGIN in output, output
