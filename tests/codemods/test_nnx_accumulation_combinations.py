"""optimizer.TorchToNNX: gradient accumulation with a per-update scheduler stepped in the same
``(i + 1) % k == 0`` condition after the step: the schedule is folded into the tx inside
optax.MultiSteps (its count is the applied updates'); a scheduler stepped every micro-batch
or before the step escapes."""

from __future__ import annotations

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import SGD_MODEL, SwitcherooTest, nnx_output, renders_a_step, stock_clip

HEADER = SGD_MODEL + "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)\n"


def convert(code: str) -> str:
    return nnx_output(code, HEADER)


class NnxAccumulationWithSchedulerTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_a_scheduler_stepped_with_the_accumulated_step_is_folded_inside_multisteps(
        self,
    ) -> None:
        self.assertConverts(
            HEADER
            + """\
for i, (x, y) in enumerate(loader):
    loss = ((model(x) - y) ** 2).mean() / 4
    loss.backward()
    if (i + 1) % 4 == 0:
        opt.step()
        sched.step()
        opt.zero_grad()
""",
            """\
import optax
from flax import nnx

model = make_model()
sched = optax.exponential_decay(0.1, transition_steps=3, decay_rate=0.5, staircase=True)
opt = nnx.Optimizer(model, optax.MultiSteps(optax.sgd(learning_rate=sched), every_k_schedule=4, use_grad_mean=False, accumulator_dtype=None), wrt=nnx.Param)
for i, (x, y) in enumerate(loader):
    def loss_fn(model):
        loss = ((model(x) - y) ** 2).mean() / 4
        return loss
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)
""",
        )


def test_a_scheduler_stepped_after_the_zero_grad_in_the_condition_converts() -> None:
    output = convert(
        """\
        for i, (x, y) in enumerate(loader):
            loss = ((model(x) - y) ** 2).mean() / 4
            loss.backward()
            if (i + 1) % 4 == 0:
                opt.step()
                opt.zero_grad()
                sched.step()
        """
    )
    assert BEGIN not in output and "MultiSteps(optax.sgd(learning_rate=sched)" in output, output


def test_a_scheduler_stepped_every_micro_batch_escapes() -> None:
    output = convert(
        """\
        for i, (x, y) in enumerate(loader):
            loss = ((model(x) - y) ** 2).mean() / 4
            loss.backward()
            if (i + 1) % 4 == 0:
                opt.step()
                opt.zero_grad()
            sched.step()
        """
    )
    assert not renders_a_step(output), output
    assert "`sched`, a scheduler of `opt`, does not step in the step's condition" in output


def test_a_scheduler_stepped_before_the_step_escapes() -> None:
    output = convert(
        """\
        for i, (x, y) in enumerate(loader):
            loss = ((model(x) - y) ** 2).mean() / 4
            loss.backward()
            if (i + 1) % 4 == 0:
                sched.step()
                opt.step()
                opt.zero_grad()
        """
    )
    assert not renders_a_step(output), output
    assert "a scheduler steps before `opt.step()`" in output, output


SCALED = """\
scaler = torch.amp.GradScaler()
for i, (x, y) in enumerate(loader):
    loss = ((model(x) - y) ** 2).mean() / 4
    scaler.scale(loss).backward()
    if (i + 1) % 4 == 0:
{condition}
        opt.zero_grad()
{after}"""

STEP_AND_UPDATE = "        scaler.step(opt)\n        scaler.update()"
UNSCALE_AND_CLIP = (
    "        scaler.unscale_(opt)\n"
    "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
)


def convert_scaled(condition: str = STEP_AND_UPDATE, after: str = "") -> str:
    return nnx_output(SCALED.format(condition=condition, after=after), SGD_MODEL)


def test_a_grad_scaler_with_accumulation_becomes_multisteps() -> None:
    output = convert_scaled()
    tx = "optax.MultiSteps(optax.sgd(learning_rate=0.1), every_k_schedule=4"
    assert BEGIN not in output and tx in output, output
    assert "scaler.step(" not in output and "scaler.update()" not in output, output


def test_a_clip_after_unscale_in_the_condition_heads_the_chain_in_multisteps() -> None:
    output = convert_scaled(UNSCALE_AND_CLIP + STEP_AND_UPDATE)
    chain = f"optax.MultiSteps(optax.chain({stock_clip('1.0')}, optax.sgd("
    assert BEGIN not in output and chain in output, output
    assert "unscale_" not in output and "clip_grad_norm_" not in output, output


def test_a_scaler_update_outside_the_condition_escapes() -> None:
    output = convert_scaled("        scaler.step(opt)", "    scaler.update()\n")
    assert not renders_a_step(output), output
    assert "`scaler.update()` uses the loss scaler outside the accumulation's condition" in output


def test_a_scale_read_outside_the_condition_escapes() -> None:
    output = convert_scaled(after="    scales.append(scaler.get_scale())\n")
    assert not renders_a_step(output), output
    assert "uses the loss scaler outside the accumulation's condition" in output, output


def test_a_clip_before_unscale_escapes() -> None:
    clip_first = (
        "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
        "        scaler.unscale_(opt)\n"
    )
    output = convert_scaled(clip_first + STEP_AND_UPDATE)
    assert not renders_a_step(output), output


LOGGED = """\
losses = []
for i, (x, y) in enumerate(loader):
    out = model(x)
    loss = ((out - y) ** 2).mean() / 4
    loss.backward()
{between}    if (i + 1) % 4 == 0:
        opt.step()
        opt.zero_grad()
"""


def convert_logged(between: str) -> str:
    return nnx_output(LOGGED.format(between=between), SGD_MODEL)


def test_logging_between_the_backward_and_the_condition_runs_before_the_update() -> None:
    output = convert_logged("    losses.append(loss.item())\n")
    logged = "    losses.append(loss.item())\n    opt.update(model, grads)\n"
    assert BEGIN not in output and "MultiSteps(" in output and logged in output, output


def test_a_function_of_the_file_called_between_the_backward_and_the_condition_escapes() -> None:
    """``scale_grads()`` may edit the gradients through a global model: moved after the
    gradient, its effect would be lost."""
    output = nnx_output(
        "def scale_grads():\n    for p in model.parameters():\n        p.grad *= 0.5\n\n\n"
        + LOGGED.format(between="    scale_grads()\n"),
        SGD_MODEL,
    )
    assert not renders_a_step(output), output
    assert "runs between the backward pass and the step's condition" in output, output


def test_a_method_of_another_object_between_the_backward_and_the_condition_escapes() -> None:
    output = convert_logged("    tracker.update(loss.item())\n")
    assert not renders_a_step(output), output


def test_a_gradient_read_between_the_backward_and_the_condition_escapes() -> None:
    output = convert_logged("    norms.append(model.out.weight.grad.norm())\n")
    assert not renders_a_step(output), output
    assert "runs between the backward pass and the step's condition" in output, output


def test_a_read_of_the_counter_between_the_backward_and_the_condition_escapes() -> None:
    output = convert_logged("    print(i, loss.item())\n")
    assert not renders_a_step(output), output
