"""optimizer.TorchToNNX: several ``loss.backward()`` before one step sum their gradients in
torch; the loss function returns the sum of the losses. The shapes where that is not what torch
computes (or not provably) keep the step escaped."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX
from tests.support import (
    SGD_MODEL,
    SwitcherooTest,
    nnx_output,
    renders_a_step,
    run_codemod,
    step_escaped_with,
)

HEADER = SGD_MODEL


def convert(loop: str) -> str:
    return nnx_output(loop, HEADER)


def escaped_with(loop: str, reason: str) -> str:
    return step_escaped_with(loop, reason, HEADER)


class SummedBackwardsTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_two_backwards_become_one_loss_function_returning_the_sum(self) -> None:
        self.assertConverts(
            """
            import torch
            model = make_model()
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for x1, y1, x2, y2 in loader:
                opt.zero_grad()
                l1 = ((model(x1) - y1) ** 2).mean()
                l1.backward()
                l2 = ((model(x2) - y2) ** 2).mean()
                l2.backward()
                opt.step()
                print(l1.item())
            """,
            """
            import optax
            from flax import nnx
            model = make_model()
            opt = nnx.Optimizer(model, optax.sgd(learning_rate=0.1), wrt=nnx.Param)
            for x1, y1, x2, y2 in loader:
                def loss_fn(model):
                    l1 = ((model(x1) - y1) ** 2).mean()
                    l2 = ((model(x2) - y2) ** 2).mean()
                    return l1 + l2, l1
                (loss, l1), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
                opt.update(model, grads)
                print(l1.item())
            """,
        )


def test_retain_graph_on_an_earlier_backward_is_summed() -> None:
    """``retain_graph=True`` keeps torch's graph for the second backward; the gradients are
    the same, so the sum is rendered."""
    output = convert(
        """\
for x, y in loader:
    opt.zero_grad()
    out = model(x)
    l1 = ((out - y) ** 2).mean()
    l1.backward(retain_graph=True)
    l2 = (out ** 2).mean()
    l2.backward()
    opt.step()
"""
    )
    assert renders_a_step(output) and "return l1 + l2\n" in output, output


def test_retain_graph_on_the_last_backward_escapes() -> None:
    escaped_with(
        """\
for x, y in loader:
    opt.zero_grad()
    out = model(x)
    l1 = ((out - y) ** 2).mean()
    l1.backward()
    l2 = (out ** 2).mean()
    l2.backward(retain_graph=True)
    opt.step()
""",
        "retain_graph, inputs= and a gradient for a non-scalar loss",
    )


def test_an_earlier_backward_with_inputs_escapes() -> None:
    escaped_with(
        """\
for x, y in loader:
    opt.zero_grad()
    l1 = ((model(x) - y) ** 2).mean()
    l1.backward(inputs=list(model.parameters()))
    l2 = (model(x) ** 2).mean()
    l2.backward()
    opt.step()
""",
        "only `retain_graph=True` is translated on a backward pass summed into the step",
    )


def test_a_backward_through_another_model_escapes() -> None:
    """GAN: ``fake = netG(noise)`` feeds the discriminator's losses."""
    escaped_with(
        """\
netG = make_model()
for x, noise in loader:
    opt.zero_grad()
    l1 = model(x).mean()
    l1.backward()
    fake = netG(noise)
    l2 = -model(fake).mean()
    l2.backward()
    opt.step()
""",
        "the loss calls `netG` too (several models in one loss",
    )


def test_a_zero_grad_between_the_backwards_escapes() -> None:
    """Only the second backward's gradients reach the step; the first stays torch code, so the
    step is not rendered."""
    output = escaped_with(
        """\
for x, y in loader:
    l1 = ((model(x) - y) ** 2).mean()
    l1.backward()
    opt.zero_grad()
    l2 = ((model(x) - y) ** 2).mean()
    l2.backward()
    opt.step()
""",
        "another backward pass (`l1.backward()`) runs where this step is",
    )
    assert "    l1.backward()\n" in output


def test_a_gradient_read_between_the_backwards_escapes() -> None:
    escaped_with(
        """\
w = model.out.weight
for x, y in loader:
    opt.zero_grad()
    l1 = ((model(x) - y) ** 2).mean()
    l1.backward()
    g = w.grad.norm()
    l2 = (model(x) ** 2).mean() * g
    l2.backward()
    opt.step()
""",
        "`w.grad` is read between backward passes summed into one step",
    )


def test_a_logged_gradient_between_the_backwards_escapes() -> None:
    escaped_with(
        """\
w = model.out.weight
for x, y in loader:
    opt.zero_grad()
    l1 = ((model(x) - y) ** 2).mean()
    l1.backward()
    print(w.grad)
    l2 = (model(x) ** 2).mean()
    l2.backward()
    opt.step()
""",
        "another backward pass (`l1.backward()`) runs where this step is",
    )


def test_the_same_loss_backward_twice_escapes() -> None:
    escaped_with(
        """\
for x, y in loader:
    opt.zero_grad()
    l1 = ((model(x) - y) ** 2).mean()
    l1.backward(retain_graph=True)
    l1.backward()
    opt.step()
""",
        "`l1.backward()` runs twice before the step",
    )


def test_two_backwards_with_a_grad_scaler_escape() -> None:
    escaped_with(
        """\
scaler = torch.cuda.amp.GradScaler()
for x, y in loader:
    opt.zero_grad()
    l1 = ((model(x) - y) ** 2).mean()
    l1.backward()
    l2 = (model(x) ** 2).mean()
    scaler.scale(l2).backward()
    scaler.step(opt)
    scaler.update()
""",
        "several backward passes before one step, with a GradScaler",
    )


def test_a_statement_between_the_backwards_keeps_the_step_escaped() -> None:
    """Only a backward right before the forward pass of the last joins the step (a statement
    between may be another step); here the first stays torch code and the step escapes."""
    output = escaped_with(
        """\
for x, y in loader:
    opt.zero_grad()
    l1 = ((model(x) - y) ** 2).mean()
    l1.backward()
    print(l1.item())
    l2 = (model(x) ** 2).mean()
    l2.backward()
    opt.step()
""",
        "another backward pass (`l1.backward()`) runs where this step is",
    )
    assert "    l1.backward()\n" in output


def test_another_optimizers_step_between_is_not_summed_into_the_second() -> None:
    """``lA.backward(); optA.step()`` then ``lB.backward(); optB.step()``: optB's step does
    not take optA's backward (optA's escapes as one backward feeding several optimizers,
    optB's as another backward pass whose gradients in modelB are not proven zeroed before
    its step: ``analysis/other_models``)."""
    output = run_codemod(
        textwrap.dedent(
            """\
            import torch
            modelA = make_model()
            modelB = make_model()
            optA = torch.optim.SGD(modelA.parameters(), lr=0.1)
            optB = torch.optim.SGD(modelB.parameters(), lr=0.1)
            for x, y in loader:
                optA.zero_grad()
                optB.zero_grad()
                lA = modelA(x).mean()
                lA.backward()
                optA.step()
                lB = modelB(x).mean()
                lB.backward()
                optB.step()
            """
        ),
        TorchToNNX,
    )
    second = output[output.index("optA.step()") :]
    assert "reason: another backward pass (`lA.backward()`) runs where this step is" in second, (
        output
    )
    code = [line for line in second.splitlines() if not line.strip().startswith("#")]
    assert not any("lA.backward()" in line for line in code), output
