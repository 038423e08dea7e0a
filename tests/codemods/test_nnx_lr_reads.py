"""optimizer.TorchToNNX: reads of the lr of an optimizer whose schedule is folded into its tx
(``sched.get_last_lr()[0]``, ``opt.param_groups[0]["lr"]``) become the schedule at the
nnx.Optimizer's update count; reads where torch's lr is not that escape."""

from __future__ import annotations

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import SGD_MODEL, SwitcherooTest, code_lines, nnx_output

HEADER = SGD_MODEL + "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)\n"

READ = "float(sched(int(opt.step[...])))"


def convert(code: str) -> str:
    return nnx_output(code, HEADER)


class NnxLrReadTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_reads_after_the_scheduler_step_become_the_schedule_at_the_count(self) -> None:
        self.assertConverts(
            HEADER
            + """\
for x, y in loader:
    loss = ((model(x) - y) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    print(sched.get_last_lr()[0], opt.param_groups[0]["lr"])
""",
            """\
import optax
from flax import nnx

model = make_model()
sched = optax.exponential_decay(0.1, transition_steps=5, decay_rate=0.5, staircase=True)
opt = nnx.Optimizer(model, optax.sgd(learning_rate=sched), wrt=nnx.Param)
for x, y in loader:
    def loss_fn(model):
        loss = ((model(x) - y) ** 2).mean()
        return loss
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)
    print(float(sched(int(opt.step[...]))), float(sched(int(opt.step[...]))))
""",
        )


class NnxLrReadTrapTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_a_read_between_the_optimizer_and_the_scheduler_step_escapes(self) -> None:
        output = convert(
            """\
            for x, y in loader:
                loss = ((model(x) - y) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                print(sched.get_last_lr()[0])
                sched.step()
            """
        )
        assert BEGIN in output and READ not in output, output
        assert "print(sched.get_last_lr()[0])" in output

    def test_a_read_where_float_is_a_user_name_escapes(self) -> None:
        output = convert(
            """\
            float = make_float()
            for x, y in loader:
                loss = ((model(x) - y) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                print(sched.get_last_lr()[0])
            """
        )
        assert BEGIN in output and READ not in output, output

    def test_a_read_where_int_is_a_user_name_escapes(self) -> None:
        output = convert(
            """\
            int = make_int()
            for x, y in loader:
                loss = ((model(x) - y) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                print(sched.get_last_lr()[0])
            """
        )
        assert BEGIN in output and READ not in output, output

    def test_the_whole_list_of_last_lrs_escapes(self) -> None:
        output = convert(
            """\
            for x, y in loader:
                loss = ((model(x) - y) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                print(sched.get_last_lr())
            """
        )
        assert BEGIN in output and READ not in output, output

    def test_a_read_in_another_function_escapes(self) -> None:
        output = convert(
            """\
            def log():
                print(sched.get_last_lr()[0])


            for x, y in loader:
                loss = ((model(x) - y) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                log()
            """
        )
        assert BEGIN in output and READ not in output, output

    def test_a_read_of_a_scheduler_stepped_per_epoch_reads_the_stored_lr(self) -> None:
        output = convert(
            """\
            for epoch in range(3):
                for x, y in loader:
                    loss = ((model(x) - y) ** 2).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    print(sched.get_last_lr()[0])
                sched.step()
            """
        )
        stored = 'print(float(opt.opt_state.hyperparams["learning_rate"][...]))'
        assert BEGIN not in output and READ not in output and stored in output, output

    def test_an_lr_read_the_loss_uses_makes_the_step_escape(self) -> None:
        output = convert(
            """\
            for x, y in loader:
                scale = sched.get_last_lr()[0]
                loss = ((model(x) - y) ** 2).mean() * scale
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
            """
        )
        code = code_lines(output)
        assert BEGIN in output and not any("nnx.value_and_grad(" in line for line in code)
        assert "is used by a statement of the step before the loss" in output, output
