"""optimizer.TorchToNNX: the optimizer becomes ``nnx.Optimizer(model, tx)``, the training step
a loss function, ``nnx.value_and_grad`` and ``opt.update``; the shapes that do not fit escape."""

from __future__ import annotations

import textwrap

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import (
    SGD_MODEL,
    SwitcherooTest,
    code_lines,
    nnx_output,
    renders_a_step,
    stock_clip,
)

HEADER = SGD_MODEL


def convert(code: str, **options: object) -> str:
    return nnx_output(code, **options)


def escaped_step(loop: str) -> str:
    """The output for ``HEADER`` and ``loop``, asserting the step is escaped."""
    output = nnx_output(loop, HEADER)
    assert BEGIN in output and not renders_a_step(output), output
    return output


class NnxStepTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_a_plain_loop_becomes_a_loss_function_and_an_update(self) -> None:
        self.assertConverts(
            """
            import torch
            model = make_model()
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for x, y in loader:
                opt.zero_grad()
                # the forward pass
                loss = ((model(x) - y) ** 2).mean()
                loss.backward()
                opt.step()
                print(loss.item())
            """,
            """
            import optax
            from flax import nnx
            model = make_model()
            opt = nnx.Optimizer(model, optax.sgd(learning_rate=0.1), wrt=nnx.Param)
            for x, y in loader:
                # the forward pass
                def loss_fn(model):
                    loss = ((model(x) - y) ** 2).mean()
                    return loss
                loss, grads = nnx.value_and_grad(loss_fn)(model)
                opt.update(model, grads)
                print(loss.item())
            """,
        )

    def test_a_value_read_after_the_step_comes_out_as_aux(self) -> None:
        output = convert(
            HEADER
            + """\
for x, y in loader:
    opt.zero_grad()
    out = model(x)
    loss = ((out - y) ** 2).mean()
    loss.backward()
    opt.step()
    print(out)
"""
        )
        assert "(loss, out), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)" in output
        assert "        return loss, out\n" in output

    def test_a_method_reads_self_model_through_the_parameter(self) -> None:
        output = convert(
            """\
            import torch
            class Trainer:
                def __init__(self, model):
                    self.model = model
                    self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
                def step(self, x, y):
                    self.opt.zero_grad()
                    loss = ((self.model(x) - y) ** 2).mean()
                    loss.backward()
                    self.opt.step()
            """
        )
        assert "self.opt = nnx.Optimizer(self.model, optax.sgd(learning_rate=0.1)" in output
        assert "            loss = ((model(x) - y) ** 2).mean()\n" in output
        assert "        self.opt.update(self.model, grads)\n" in output

    def test_statements_before_the_model_is_used_stay_before_the_loss_function(self) -> None:
        output = convert(
            HEADER
            + """\
for x, y in loader:
    opt.zero_grad()
    x, y = x.to(device), y.to(device)
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
"""
        )
        assert "    x, y = x.to(device), y.to(device)\n    def loss_fn(model):\n" in output

    def test_comments_of_the_dropped_statements_are_kept(self) -> None:
        output = convert(
            HEADER
            + """\
for x, y in loader:
    opt.zero_grad()  # clear
    loss = ((model(x) - y) ** 2).mean()
    # gradients
    loss.backward()
    opt.step()  # update
"""
        )
        assert "    # clear\n    def loss_fn(model):\n" in output
        assert "    # gradients\n    # update\n    loss, grads = nnx.value_and_grad(" in output

    def test_the_grad_scaler_calls_go_away(self) -> None:
        output = convert(
            HEADER
            + """\
scaler = torch.amp.GradScaler()
for x, y in loader:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()
"""
        )
        assert output.endswith(
            "    loss, grads = nnx.value_and_grad(loss_fn)(model)\n    opt.update(model, grads)\n"
        )
        assert "scaler.scale(" not in output and "scaler.update()" not in output

    def test_an_import_only_the_replaced_step_used_goes_away(self) -> None:
        output = convert(
            HEADER
            + """\
for x, y in loader:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    opt.step()
"""
        )
        assert "import torch" not in output and f"{stock_clip('0.5')}" in output

    def test_a_user_name_loss_fn_gets_a_fresh_name(self) -> None:
        output = convert(
            HEADER
            + """\
loss_fn = None
for x, y in loader:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
"""
        )
        assert "    def loss_fn_1(model):\n" in output


class NnxConstructionTrapTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_param_groups_escape(self) -> None:
        output = convert(
            """\
            import torch
            opt = torch.optim.SGD([{"params": model.fc.parameters()}], lr=0.1)
            """
        )
        assert BEGIN in output and "opt = nnx.Optimizer(" not in output

    def test_a_state_dict_escape_speaks_of_the_nnx_optimizer(self) -> None:
        output = convert(HEADER + "sd = opt.state_dict()\n")
        assert "`opt` is now an nnx.Optimizer: it has no state_dict()" in output
        assert "optax GradientTransformation" not in output

    def test_a_list_of_the_models_parameters_converts(self) -> None:
        """``list(model.parameters())`` is every parameter of ``model`` (s40)."""
        output = convert(
            """\
            import torch
            opt = torch.optim.SGD(list(model.parameters()), lr=0.1)
            """
        )
        assert "opt = nnx.Optimizer(model, optax.sgd(learning_rate=0.1)" in output, output

    def test_a_slice_of_the_parameters_escapes(self) -> None:
        output = convert(
            """\
            import torch
            opt = torch.optim.SGD(list(model.parameters())[:-2], lr=0.1)
            """
        )
        assert "nnx.Optimizer trains one model's parameters" in output


class NnxStepTrapTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    """Shapes next to the translated ones that must stay torch code in an escape hatch."""

    def test_step_with_a_closure_escapes(self) -> None:
        output = escaped_step(
            """\
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                loss.backward()
                opt.step(lambda: loss)
            """
        )
        assert "re-evaluates the loss" in output

    def test_retain_graph_escapes(self) -> None:
        output = escaped_step(
            """\
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                loss.backward(retain_graph=True)
                opt.step()
            """
        )
        assert "retain_graph" in output

    def test_backward_with_inputs_escapes(self) -> None:
        output = escaped_step(
            """\
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                loss.backward(inputs=list(model.parameters()))
                opt.step()
            """
        )
        assert "no nnx.value_and_grad equivalent" in output

    def test_backward_of_a_non_scalar_escapes(self) -> None:
        escaped_step(
            """\
            for x, y in loader:
                opt.zero_grad()
                loss = (model(x) - y) ** 2
                loss.backward(torch.ones_like(loss))
                opt.step()
            """
        )

    def test_gradients_edited_between_backward_and_step_escape(self) -> None:
        output = escaped_step(
            """\
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                loss.backward()
                for p in model.parameters():
                    p.grad *= 0.5
                opt.step()
            """
        )
        assert "between backward and step" in output

    def test_one_backward_feeding_two_optimizers_escapes(self) -> None:
        output = convert(
            HEADER
            + """\
other = torch.optim.Adam(model.parameters(), lr=0.1)
for x, y in loader:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
    other.step()
"""
        )
        assert "several optimizers" in output and not renders_a_step(output)

    def test_a_second_model_in_the_loss_escapes(self) -> None:
        output = escaped_step(
            """\
            teacher = make_teacher()
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - teacher(x)) ** 2).mean()
                loss.backward()
                opt.step()
            """
        )
        assert "several models in one loss" in output

    def test_a_model_output_computed_before_the_step_escapes(self) -> None:
        output = escaped_step(
            """\
            for x, y in loader:
                opt.zero_grad()
                h = model(x)
                for _ in range(verbose):  # (not logging the step moves: the step starts below)
                    print("forward done")
                loss = ((model(x) - y) ** 2).mean() + (h ** 2).mean()
                loss.backward()
                opt.step()
            """
        )
        assert "computed from the model outside the step" in output

    def test_a_step_under_a_condition_without_its_zero_grad_escapes(self) -> None:
        output = escaped_step(
            """\
            for i, (x, y) in enumerate(loader):
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                if (i + 1) % 4 == 0:
                    opt.step()
            """
        )
        assert "the zero_grad right after the step" in output

    def test_a_grad_scaler_of_a_loss_expression_escapes(self) -> None:
        output = escaped_step(
            """\
            scaler = torch.amp.GradScaler()
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                scaler.scale(2 * loss).backward()
                scaler.step(opt)
                scaler.update()
            """
        )
        assert "is not a plain name" in output

    def test_a_grad_scaler_unscaling_another_optimizer_escapes(self) -> None:
        output = escaped_step(
            """\
            scaler = torch.amp.GradScaler()
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                scaler.scale(loss).backward()
                scaler.unscale_(other)
                scaler.step(opt)
                scaler.update()
            """
        )
        assert "between backward and step" in output

    def test_a_step_in_another_function_than_its_backward_escapes(self) -> None:
        output = convert(
            HEADER
            + """\
def apply():
    opt.step()
for x, y in loader:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    apply()
"""
        )
        assert BEGIN in output and not renders_a_step(output)

    def test_an_escaped_clipped_step_says_the_clip_is_in_the_tx(self) -> None:
        output = escaped_step(
            """\
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                loss.backward(retain_graph=True)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
            """
        )
        assert "clipping here is now the head of `opt`'s tx: drop the clip call" in output

    def test_a_model_name_rebound_after_the_optimizer_escapes(self) -> None:
        output = escaped_step(
            """\
            model = make_model()
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                loss.backward()
                opt.step()
            """
        )
        assert "does not call the trained model" in output

    def test_a_loss_reading_the_optimizer_escapes(self) -> None:
        output = escaped_step(
            """\
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean() * opt.param_groups[0]["lr"]
                loss.backward()
                opt.step()
            """
        )
        assert "the loss reads the optimizer `opt`" in output

    def test_a_step_of_an_optimizer_with_reduce_on_plateau_stepped_per_batch_escapes(
        self,
    ) -> None:
        # Stepped once per epoch it translates (tests/codemods/test_nnx_plateau.py).
        output = convert(
            HEADER
            + """\
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
for epoch in range(3):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step(val_loss)
"""
        )
        assert "reduce_on_plateau (ReduceLROnPlateau)" in output and not renders_a_step(output)

    def test_a_step_without_zero_grad_escapes(self) -> None:
        output = convert(
            HEADER
            + """\
for x, y in loader:
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
"""
        )
        assert "no `opt.zero_grad()` runs with each step" in output and not renders_a_step(output)

    def test_zero_grad_under_another_condition_escapes(self) -> None:
        output = convert(
            HEADER
            + """\
for i, (x, y) in enumerate(loader):
    if i % 2 == 0:
        opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
"""
        )
        assert BEGIN in output and not renders_a_step(output)

    def test_zero_grad_between_backward_and_step_escapes(self) -> None:
        output = escaped_step(
            """\
            for x, y in loader:
                loss = ((model(x) - y) ** 2).mean()
                loss.backward()
                opt.zero_grad()
                opt.step()
            """
        )
        assert "runs between backward and step" in output

    def test_two_backward_passes_for_one_step_sum_their_losses(self) -> None:
        """Issue 13: torch sums both backward passes' gradients; the loss function returns
        the sum (was an escape before; see tests/codemods/test_nnx_summed_backwards.py)."""
        output = convert(
            HEADER
            + textwrap.dedent(
                """\
                for x, y in loader:
                    opt.zero_grad()
                    first = model(x).sum()
                    first.backward()
                    loss = ((model(x) - y) ** 2).mean()
                    loss.backward()
                    opt.step()
                """
            )
        )
        assert renders_a_step(output) and "return first + loss\n" in output, output

    def test_a_sub_module_optimizer_converts_over_the_sub_module(self) -> None:
        """Issue 13, deliverable 2 (s40): the optimizer's model is the receiver."""
        output = convert(
            """\
            import torch
            class Trainer:
                def __init__(self, net):
                    self.net = net
                    self.opt = torch.optim.SGD(self.net.encoder.parameters(), lr=0.1)
            """
        )
        assert "self.opt = nnx.Optimizer(self.net.encoder, optax.sgd(" in output, output

    def test_an_item_of_a_container_optimizer_escapes(self) -> None:
        output = convert(
            """\
            import torch
            class Trainer:
                def __init__(self, net):
                    self.net = net
                    self.opt = torch.optim.SGD(self.net.layers[0].parameters(), lr=0.1)
            """
        )
        assert BEGIN in output and "self.opt = nnx.Optimizer(" not in output

    def test_a_framework_backward_escapes(self) -> None:
        output = escaped_step(
            """\
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean()
                accelerator.backward(loss)
                opt.step()
            """
        )
        assert "a framework's backward" in output

    def test_an_item_in_the_forward_pass_escapes(self) -> None:
        output = escaped_step(
            """\
            for x, y in loader:
                opt.zero_grad()
                out = model(x)
                scale = out.abs().max().item()
                loss = ((out - y) ** 2).mean() / scale
                loss.backward()
                opt.step()
            """
        )
        assert ".item()" in output

    def test_an_optimizer_of_unknown_origin_escapes(self) -> None:
        output = convert(
            """\
            import torch
            def fit(model, opt, loader):
                for x, y in loader:
                    opt.zero_grad()
                    loss = ((model(x) - y) ** 2).mean()
                    loss.backward()
                    opt.step()
            """
        )
        assert BEGIN in output and not renders_a_step(output)


TRAINER = """\
import torch
class Trainer:
    def __init__(self, model):
        self.model = model
        self.criterion = torch.nn.MSELoss()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
    def step(self, x, y):
        self.opt.zero_grad()
        loss = {loss}
        loss.backward()
        self.opt.step()
"""


class NnxUnknownLossTest(SwitcherooTest):
    """A call in the loss that may reach the model behind the loss function's parameter."""

    TRANSFORM = TorchToNNX

    def test_a_torch_criterion_of_the_class_converts(self) -> None:
        output = convert(TRAINER.format(loss="self.criterion(self.model(x), y)"))
        assert "            loss = self.criterion(model(x), y)\n" in output

    def test_a_function_of_the_user_escapes(self) -> None:
        output = escaped_step(
            """\
            for x, y in loader:
                opt.zero_grad()
                loss = helper(model(x), y)
                loss.backward()
                opt.step()
            """
        )
        assert "the loss calls `helper`, an unknown function" in output

    def test_a_rebound_builtin_escapes(self) -> None:
        output = escaped_step(
            """\
            def len(x):
                return model(x).sum()
            for x, y in loader:
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean() + len(x)
                loss.backward()
                opt.step()
            """
        )
        assert "the loss calls `len`" in output

    def test_a_method_of_the_object_holding_the_model_escapes(self) -> None:
        output = convert(TRAINER.format(loss="self.compute_loss(self.model(x), y)"))
        assert "the loss calls `self.compute_loss`" in output and not renders_a_step(output)

    def test_passing_the_object_holding_the_model_escapes(self) -> None:
        output = convert(TRAINER.format(loss="torch.mean(self.model(x)) + penalty(self)"))
        assert BEGIN in output and not renders_a_step(output)


class ModelParameterTest(SwitcherooTest):
    """A model handed to the training function (called from another file, or not at all)."""

    TRANSFORM = TorchToNNX

    TRAIN = """
        import torch
        def train(model, loader):
            criterion = torch.nn.MSELoss()
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for x, y in loader:
                {rebinding}opt.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                opt.step()
        """

    def test_a_parameter_never_rebound_is_the_trained_model(self) -> None:
        output = convert(self.TRAIN.format(rebinding=""))
        assert renders_a_step(output) and BEGIN not in output, output

    def test_a_parameter_rebound_in_the_function_escapes(self) -> None:
        output = convert(
            self.TRAIN.format(rebinding="model = model.to(x.device)\n                ")
        )
        assert BEGIN in output and not renders_a_step(output), output


def test_a_step_left_to_the_user_is_worded_for_nnx_not_optax() -> None:
    output = convert(
        """
        import torch
        model = make_model()
        opt = torch.optim.SGD(parameter_list, lr=0.1)
        def optimize():
            opt.step()
        """
    )
    assert "torch's `opt.step()` applies the gradients" in output, output
    assert "opt.update(model, grads)" in output and "optax.apply_updates" not in output, output
    assert "an nnx.Optimizer updates the model" in output, output


def test_a_closure_step_is_worded_for_nnx() -> None:
    output = convert(HEADER + "opt.step(closure)\n")
    assert "re-evaluates the loss inside the optimizer; an nnx.Optimizer" in output, output
    assert "optax.apply_updates" not in output, output


NORM_LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    {clip}
    opt.step()
    print(loss.item())
"""


class NnxClipNormTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_a_logged_clip_norm_becomes_the_norm_of_the_gradients(self) -> None:
        self.assertConverts(
            NORM_LOOP.format(clip="norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"),
            """
            import jax.numpy as jnp
            import optax
            from flax import nnx

            model = make_model()
            opt = nnx.Optimizer(model, optax.chain(optax.stateless(lambda updates, params, max_norm=1.0: optax.tree.scale(jnp.minimum(max_norm / (optax.tree.norm(updates) + 1e-6), 1.0), updates)), optax.sgd(learning_rate=0.1)), wrt=nnx.Param)
            for x, y in loader:
                def loss_fn(model):
                    loss = ((model(x) - y) ** 2).mean()
                    return loss
                loss, grads = nnx.value_and_grad(loss_fn)(model)
                norm = optax.tree.norm(grads)
                opt.update(model, grads)
                print(loss.item())
            """,
        )


def test_a_norm_of_another_order_escapes_the_step() -> None:
    clip = "norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, norm_type=3.0)"
    output = convert(NORM_LOOP.format(clip=clip), exact=True)
    assert BEGIN in output and not renders_a_step(output), output
    assert "the map has no value of this call" in output, output


def test_a_norm_assigned_to_two_names_escapes() -> None:
    clip = "a = b = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"
    output = convert(NORM_LOOP.format(clip=clip))
    assert BEGIN in output and not renders_a_step(output), output
    assert clip in output and "optax.clip_by_global_norm" not in "".join(code_lines(output))


def test_a_norm_used_inside_an_expression_escapes() -> None:
    clip = "print(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))"
    output = convert(NORM_LOOP.format(clip=clip))
    assert BEGIN in output and not renders_a_step(output), output
    assert clip in output and "optax.clip_by_global_norm" not in "".join(code_lines(output))


def test_a_norm_where_no_step_is_rendered_escapes_the_clip() -> None:
    output = convert(
        HEADER
        + textwrap.dedent(
            """
            def clip_and_step():
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                return norm
            """
        )
    )
    assert "no translated training step computes the gradients here" in output, output
    assert "norm = optax.tree.norm(grads)" in output, output
    assert "norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)" in output, output


def test_an_escaped_step_suggests_the_norm_of_a_logged_clip() -> None:
    loop = NORM_LOOP.format(clip="norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)")
    output = convert(loop.replace("loss.backward()", "loss.backward(retain_graph=True)"))
    assert BEGIN in output and not renders_a_step(output), output
    assert "|   norm = optax.tree.norm(grads)  # the norm before clipping" in output, output


TAIL_LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    out = model(x)
    loss = ((out - y) ** 2).mean()
    {tail}
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


def test_logging_between_the_loss_and_the_backward_runs_after_the_gradient() -> None:
    output = convert(TAIL_LOOP.format(tail="meter.update(loss.item(), out.shape[0])"))
    assert renders_a_step(output), output
    lines = [line.strip() for line in output.splitlines()]
    gradient = lines.index("(loss, out), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)")
    assert lines[gradient + 1] == "meter.update(loss.item(), out.shape[0])", output
    assert lines[gradient + 2] == "opt.update(model, grads)", output


def test_a_statement_reading_the_model_before_the_backward_escapes() -> None:
    output = convert(TAIL_LOOP.format(tail="n = count_parameters(model)"))
    assert BEGIN in output and not renders_a_step(output), output
    assert "uses the model between the loss and the backward" in output, output


def test_a_statement_the_loss_reads_after_it_escapes() -> None:
    loop = TAIL_LOOP.format(tail="").replace(
        "    out = model(x)\n", "    out = model(x)\n    record(out)\n"
    )
    output = convert(loop)
    assert BEGIN in output and not renders_a_step(output), output
    assert "uses a name the loss reads after it" in output, output


def test_the_optimizer_read_before_the_backward_escapes() -> None:
    output = convert(TAIL_LOOP.format(tail='print(opt.param_groups[0]["lr"])'))
    assert BEGIN in output and not renders_a_step(output), output


def test_another_backward_before_the_backward_escapes() -> None:
    output = convert(TAIL_LOOP.format(tail="aux_loss.backward()"))
    assert BEGIN in output and not renders_a_step(output), output


def test_logging_under_a_condition_before_the_backward_runs_after_the_gradient() -> None:
    output = convert(TAIL_LOOP.format(tail="if step % 10 == 0:\n        print(loss.item())"))
    assert renders_a_step(output), output
    lines = [line.strip() for line in output.splitlines()]
    gradient = lines.index("loss, grads = nnx.value_and_grad(loss_fn)(model)")
    assert lines[gradient + 1 : gradient + 4] == [
        "if step % 10 == 0:",
        "print(loss.item())",
        "opt.update(model, grads)",
    ], output


def test_a_condition_calling_another_object_before_the_backward_escapes() -> None:
    loop = TAIL_LOOP.format(tail="if step % 10 == 0:\n        tracker.log(loss.item())")
    output = convert(loop)
    assert BEGIN in output and not renders_a_step(output), output
    assert "is not only logging" in output, output


def test_a_call_torch_runs_before_the_loss_escapes() -> None:
    loop = TAIL_LOOP.format(tail="").replace(
        "    out = model(x)\n", "    out = model(x)\n    bump_loss_weight()\n"
    )
    output = convert(loop)
    assert BEGIN in output and not renders_a_step(output), output
    assert "may change what the loss reads after it" in output, output


def test_a_store_through_an_attribute_before_the_loss_escapes() -> None:
    loop = TAIL_LOOP.format(tail="").replace(
        "    out = model(x)\n", "    out = model(x)\n    weights.scale = 2.0\n"
    )
    output = convert(loop)
    assert BEGIN in output and not renders_a_step(output), output
    assert "may change what the loss reads after it" in output, output


def test_a_call_after_the_loss_still_runs_after_the_gradient() -> None:
    output = convert(TAIL_LOOP.format(tail="bump_loss_weight()"))
    assert renders_a_step(output), output


def test_a_step_in_a_match_case_escapes_instead_of_crashing() -> None:
    """The step of a ``match`` case is no statement of the region's block: the search for the
    statements between the backward pass and it raised StopIteration (a crash of the file)."""
    output = nnx_output(
        """
        for x, y in loader:
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            match mode:
                case "train":
                    opt.step()
        """,
        SGD_MODEL,
    )
    assert BEGIN in output and not renders_a_step(output), output
