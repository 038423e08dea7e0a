"""optimizer.TorchToNNX: gradient accumulation (a step every k backward passes) becomes
optax.MultiSteps summing in the parameters' dtype and an update every batch; every shape where
torch would step with other gradients escapes."""

from __future__ import annotations

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import SGD_MODEL, SwitcherooTest, code_lines, nnx_output, renders_a_step

HEADER = SGD_MODEL


def convert(code: str) -> str:
    return nnx_output(code, HEADER)


def escaped_accumulation(loop: str) -> str:
    """The output for ``HEADER`` and ``loop``, asserting the step escapes and the optimizer
    does not accumulate."""
    output = convert(loop)
    assert BEGIN in output, output
    assert not renders_a_step(output), output
    assert not any("MultiSteps(" in line for line in code_lines(output)), output
    return output


class NnxAccumulationTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_a_step_every_k_batches_becomes_multisteps_and_an_update_every_batch(self) -> None:
        self.assertConverts(
            HEADER
            + """\
for i, (x, y) in enumerate(loader):
    loss = ((model(x) - y) ** 2).mean() / 4
    loss.backward()
    if (i + 1) % 4 == 0:
        opt.step()
        opt.zero_grad()
""",
            """\
import optax
from flax import nnx

model = make_model()
opt = nnx.Optimizer(model, optax.MultiSteps(optax.sgd(learning_rate=0.1), every_k_schedule=4, use_grad_mean=False, accumulator_dtype=None), wrt=nnx.Param)
for i, (x, y) in enumerate(loader):
    def loss_fn(model):
        loss = ((model(x) - y) ** 2).mean() / 4
        return loss
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)
""",
        )

    def test_a_not_modulo_check_accumulates_as_the_equality_does(self) -> None:
        loop = """\
for i, (x, y) in enumerate(loader):
    loss = ((model(x) - y) ** 2).mean() / 4
    loss.backward()
    if {check}:
        opt.step()
        opt.zero_grad()
"""
        negated = convert(loop.format(check="not (i + 1) % 4"))
        assert negated == convert(loop.format(check="(i + 1) % 4 == 0"))
        assert "every_k_schedule=4" in negated

    def test_a_truthy_remainder_check_escapes(self) -> None:
        escaped_accumulation(
            """\
for i, (x, y) in enumerate(loader):
    loss = ((model(x) - y) ** 2).mean() / 4
    loss.backward()
    if (i + 1) % 4:
        opt.step()
        opt.zero_grad()
"""
        )

    def test_a_counter_incremented_before_the_check_stays_after_the_update(self) -> None:
        output = convert(
            """\
            step = 0
            for epoch in range(3):
                for x, y in loader:
                    loss = ((model(x) - y) ** 2).mean()
                    loss.backward()
                    step += 1
                    if step % 2 == 0:
                        opt.step()
                        opt.zero_grad()
            """
        )
        assert BEGIN not in output, output
        assert "every_k_schedule=2" in output
        assert "opt.update(model, grads)\n        step += 1\n" in output, output


class NnxAccumulationTrapTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_a_check_true_after_the_first_batch_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            for i, (x, y) in enumerate(loader):
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                if i % 4 == 0:
                    opt.step()
                    opt.zero_grad()
            """
        )
        assert "first true after 1 backward passes, not after 4" in output

    def test_an_index_restarting_with_each_epoch_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            for epoch in range(3):
                for i, (x, y) in enumerate(loader):
                    loss = ((model(x) - y) ** 2).mean() / 4
                    loss.backward()
                    if (i + 1) % 4 == 0:
                        opt.step()
                        opt.zero_grad()
            """
        )
        assert "restarts with each pass of an outer loop" in output

    def test_a_step_flushing_after_the_loop_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            for i, (x, y) in enumerate(loader):
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                if (i + 1) % 4 == 0:
                    opt.step()
                    opt.zero_grad()
            opt.step()
            opt.zero_grad()
            """
        )
        assert "opt.step()\n# ml_switcheroo: ESCAPE-END" in output  # the flush, escaped

    def test_a_zero_grad_every_batch_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            for i, (x, y) in enumerate(loader):
                opt.zero_grad()
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                if (i + 1) % 4 == 0:
                    opt.step()
                    opt.zero_grad()
            """
        )
        assert "runs outside the step's condition" in output

    def test_a_zero_grad_before_the_step_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            for i, (x, y) in enumerate(loader):
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                if (i + 1) % 4 == 0:
                    opt.zero_grad()
                    opt.step()
            """
        )
        assert "the zero_grad right after the step" in output

    def test_a_continue_in_the_loop_body_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            for i, (x, y) in enumerate(loader):
                if x is None:
                    continue
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                if (i + 1) % 4 == 0:
                    opt.step()
                    opt.zero_grad()
            """
        )
        assert "may skip a backward pass" in output

    def test_a_counter_incremented_twice_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            step = 0
            for x, y in loader:
                step += 1
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                step += 1
                if step % 4 == 0:
                    opt.step()
                    opt.zero_grad()
            """
        )
        assert "is not provably the count of backward passes" in output

    def test_a_k_that_is_not_an_integer_literal_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            for i, (x, y) in enumerate(loader):
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                if (i + 1) % len(loader) == 0:
                    opt.step()
                    opt.zero_grad()
            """
        )
        assert "not `counter % k == 0` with k an integer" in output

    def test_a_step_with_an_else_branch_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            for i, (x, y) in enumerate(loader):
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                if (i + 1) % 4 == 0:
                    opt.step()
                    opt.zero_grad()
                else:
                    print(i)
            """
        )
        assert "has an else branch" in output

    def test_a_grad_scaler_with_accumulation_drops_the_scaler_calls(self) -> None:
        output = convert(
            """\
            scaler = torch.amp.GradScaler()
            for i, (x, y) in enumerate(loader):
                loss = ((model(x) - y) ** 2).mean() / 4
                scaler.scale(loss).backward()
                if (i + 1) % 4 == 0:
                    scaler.step(opt)
                    scaler.update()
                    opt.zero_grad()
            """
        )
        assert BEGIN not in output and "every_k_schedule=4" in output, output
        assert "scaler.step(" not in output and "scaler.update()" not in output, output

    def test_a_clip_of_every_batch_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            for i, (x, y) in enumerate(loader):
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                if (i + 1) % 4 == 0:
                    opt.step()
                    opt.zero_grad()
            """
        )
        assert "runs between the backward pass and the step's condition" in output

    def test_a_clip_of_another_model_in_the_condition_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            other = make_model()
            for i, (x, y) in enumerate(loader):
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                if (i + 1) % 4 == 0:
                    torch.nn.utils.clip_grad_norm_(other.parameters(), 1.0)
                    opt.step()
                    opt.zero_grad()
            """
        )
        assert "optax.MultiSteps" in output

    def test_an_lr_write_with_accumulation_escapes(self) -> None:
        output = escaped_accumulation(
            """\
            for i, (x, y) in enumerate(loader):
                for g in opt.param_groups:
                    g["lr"] = 0.1 / (i + 1)
                loss = ((model(x) - y) ** 2).mean() / 4
                loss.backward()
                if (i + 1) % 4 == 0:
                    opt.step()
                    opt.zero_grad()
            """
        )
        assert "`opt` is used otherwise too (`opt.param_groups`)" in output
