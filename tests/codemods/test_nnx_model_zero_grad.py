"""optimizer.TorchToNNX: ``model.zero_grad()`` of the model the optimizer trains is the step's
zero (the NNX map's ``module_zero_grad_methods``) and goes away; a zero of anything else, or
one that does not run with each step, keeps the step escaped."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.targets.catalogue import load_semantic_map
from ml_switcheroo.targets.nnx.target import NNX
from ml_switcheroo.targets.optax.target import OPTAX
from tests.codemods.test_nnx_gpt_groups import script as gpt_groups_script
from tests.support import SwitcherooTest, nnx_output, renders_a_step, run_codemod, step_escaped_with


def convert(code: str) -> str:
    return nnx_output(code)


def escaped_with(code: str, reason: str) -> str:
    return step_escaped_with(code, reason)


class ModelZeroGradTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_the_trained_models_zero_grad_goes_away(self) -> None:
        self.assertConverts(
            """
            import torch
            def train(netD, loader):
                optD = torch.optim.Adam(netD.parameters(), lr=1e-3)
                for x in loader:
                    netD.zero_grad()  # fresh gradients
                    out = netD(x).mean()
                    out.backward()
                    optD.step()
            """,
            """
            import optax
            from flax import nnx
            def train(netD, loader):
                optD = nnx.Optimizer(netD, optax.adam(learning_rate=1e-3), wrt=nnx.Param)
                for x in loader:
                    # fresh gradients
                    def loss_fn(netD):
                        out = netD(x).mean()
                        return out
                    out, grads = nnx.value_and_grad(loss_fn)(netD)
                    optD.update(netD, grads)
            """,
        )

    def test_self_model_zero_grad_of_the_stored_model_goes_away(self) -> None:
        output = convert(
            """
            import torch
            class Trainer:
                def __init__(self, model):
                    self.model = model
                    self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
                def step(self, x, y):
                    self.model.zero_grad(set_to_none=True)
                    loss = ((self.model(x) - y) ** 2).mean()
                    loss.backward()
                    self.opt.step()
            Trainer(make_model())
            """
        )
        assert renders_a_step(output) and "zero_grad" not in output, output

    def test_the_zero_grad_map_fact_is_the_nnx_targets_only(self) -> None:
        assert load_semantic_map((), NNX).module_zero_grad_methods == {"zero_grad"}
        assert load_semantic_map((), OPTAX).module_zero_grad_methods == frozenset()


def test_another_models_zero_grad_keeps_the_step_escaped() -> None:
    output = escaped_with(
        """
        import torch
        def train(netD, netG, loader):
            optD = torch.optim.Adam(netD.parameters(), lr=1e-3)
            for x in loader:
                netG.zero_grad()
                out = netD(x).mean()
                out.backward()
                optD.step()
        """,
        "`netG.zero_grad()` zeroes the gradients of `netG`, not exactly those of `optD`",
    )
    assert "        netG.zero_grad()\n" in output


def test_another_models_zero_grad_beside_the_optimizers_escapes() -> None:
    escaped_with(
        """
        import torch
        def train(netD, netG, loader):
            optD = torch.optim.Adam(netD.parameters(), lr=1e-3)
            for x in loader:
                optD.zero_grad()
                netG.zero_grad()
                out = netD(x).mean()
                out.backward()
                optD.step()
        """,
        "`netG.zero_grad()` zeroes the gradients of `netG`",
    )


def test_another_optimizers_zero_grad_in_the_step_escapes() -> None:
    escaped_with(
        """
        import torch
        def train(netD, netG, loader):
            optD = torch.optim.Adam(netD.parameters(), lr=1e-3)
            optG = torch.optim.Adam(netG.parameters(), lr=1e-3)
            for x in loader:
                optD.zero_grad()
                optG.zero_grad()
                out = netD(x).mean()
                out.backward()
                optD.step()
        """,
        "`optG.zero_grad()` zeroes the gradients of `optG`",
    )


def test_the_whole_models_zero_grad_for_an_optimizer_of_its_head_escapes() -> None:
    """``model.zero_grad()`` zeroes more than an optimizer of ``model.head`` owns: another
    optimizer may use those gradients, so it is not taken for the step's zero."""
    output = convert(
        """
        import torch
        def train(model, loader):
            opt = torch.optim.SGD(model.head.parameters(), lr=0.1)
            for x in loader:
                model.zero_grad()
                out = model.head(x).mean()
                out.backward()
                opt.step()
        """
    )
    assert not renders_a_step(output) and "model.zero_grad()" in output, output


def test_a_zero_grad_under_another_condition_than_the_step_escapes() -> None:
    escaped_with(
        """
        import torch
        def train(model, loader):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for i, x in enumerate(loader):
                if i % 2 == 0:
                    model.zero_grad()
                out = model(x).mean()
                out.backward()
                opt.step()
        """,
        "no `opt.zero_grad()` runs with each step",
    )


def test_a_zero_grad_of_a_model_rebound_in_the_loop_escapes() -> None:
    output = convert(
        """
        import torch
        def train(model, loader):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for x in loader:
                model.zero_grad()
                out = model(x).mean()
                out.backward()
                opt.step()
                model = make_model()
        """
    )
    assert not renders_a_step(output) and "model.zero_grad()" in output, output


def test_a_model_zero_grad_every_batch_with_a_gated_step_escapes() -> None:
    """Zeroed at every backward pass, torch steps with the last batch's gradients only: not
    the accumulation optax.MultiSteps computes."""
    output = convert(
        """
        import torch
        def train(model, loader):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for i, x in enumerate(loader):
                model.zero_grad()
                out = model(x).mean() / 4
                out.backward()
                if (i + 1) % 4 == 0:
                    opt.step()
                    opt.zero_grad()
        """
    )
    assert not renders_a_step(output) and "model.zero_grad()" in output, output


def test_the_optax_target_keeps_a_model_zero_grad() -> None:
    code = textwrap.dedent(
        """
        import torch
        def train(model, loader):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for x in loader:
                model.zero_grad()
                out = model(x).mean()
                out.backward()
                opt.step()
        """
    )
    assert "        model.zero_grad()\n" in run_codemod(code)


def test_the_trained_models_zero_grad_after_the_step_goes_away() -> None:
    output = convert(
        """
        import torch
        def train(netD, loader):
            optD = torch.optim.Adam(netD.parameters(), lr=1e-3)
            for x in loader:
                out = netD(x).mean()
                out.backward()
                optD.step()
                netD.zero_grad()
        """
    )
    assert renders_a_step(output) and "zero_grad" not in output, output


def test_another_models_zero_grad_after_the_step_is_kept_after_the_update() -> None:
    output = convert(
        """
        import torch
        def train(netD, netG, loader):
            optD = torch.optim.Adam(netD.parameters(), lr=1e-3)
            for x in loader:
                optD.zero_grad()
                out = netD(x).mean()
                out.backward()
                optD.step()
                netG.zero_grad()
        """
    )
    assert renders_a_step(output), output
    assert "        optD.update(netD, grads)\n        netG.zero_grad()\n" in output, output


def test_a_model_zero_grad_after_a_gated_step_escapes() -> None:
    output = convert(
        """
        import torch
        def train(model, loader):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for i, x in enumerate(loader):
                out = model(x).mean() / 4
                out.backward()
                if (i + 1) % 4 == 0:
                    opt.step()
                model.zero_grad()
        """
    )
    assert not renders_a_step(output) and "model.zero_grad()" in output, output


def test_another_parameters_zero_grad_with_an_optimizer_parameter_escapes() -> None:
    output = convert(
        """
        import torch
        def train(model, other, optimizer, loader):
            for x, y in loader:
                other.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                loss.backward()
                optimizer.step()
        net = make_model()
        train(net, make_model(), torch.optim.SGD(net.parameters(), lr=0.1), loader)
        """
    )
    assert not renders_a_step(output) and "        other.zero_grad()\n" in output, output
    assert "`other.zero_grad()` zeroes the gradients of `other`" in output, output


def _rank_split(zero: str) -> str:
    """The GPT rank split over ``model`` (it converts), zeroed by ``zero`` instead of
    ``opt.zero_grad()``."""
    return (
        gpt_groups_script()
        .replace("    opt.zero_grad()\n", f"    {zero}\n")
        .replace("model = make_model()\n", "model = make_model()\nother = make_model()\n")
    )


def test_the_models_zero_grad_for_its_rank_split_groups_goes_away() -> None:
    """Param groups split by rank hold every parameter of ``model``: ``model.zero_grad()``
    is the step's zero, the output the same as with ``opt.zero_grad()``."""
    assert convert(_rank_split("model.zero_grad()")) == convert(_rank_split("opt.zero_grad()"))


def test_a_submodules_zero_grad_for_rank_split_groups_of_the_model_escapes() -> None:
    escaped_with(
        _rank_split("model.head.zero_grad()"),
        "`model.head.zero_grad()` zeroes the gradients of `model.head`, not exactly those of `opt`",
    )


def test_another_models_zero_grad_for_rank_split_groups_escapes() -> None:
    escaped_with(
        _rank_split("other.zero_grad()"),
        "`other.zero_grad()` zeroes the gradients of `other`, not exactly those of `opt`",
    )


def test_a_models_zero_grad_for_groups_of_its_parts_keeps_it() -> None:
    """Groups over two submodules with their own lr: the constructor escapes, and with it the
    step; ``model.zero_grad()`` stays as written."""
    output = convert(
        """
        import torch
        model = make_model()
        opt = torch.optim.SGD(
            [{"params": model.head.parameters()}, {"params": model.body.parameters(), "lr": 1e-3}],
            lr=0.1,
        )
        for x, y in loader:
            model.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
        """
    )
    assert not renders_a_step(output) and "    model.zero_grad()\n" in output, output
