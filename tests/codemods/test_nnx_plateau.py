"""optimizer.TorchToNNX, ReduceLROnPlateau stepped once per epoch with a metric: the plateau
transformation keeps its own state, updated where torch steps it, and the lr it gives is
written to the optimizer's injected learning rate. Every other shape escapes (and leaves the
optimizer consistent with it); the optax target escapes a plateau stepped per epoch (its
chain counts updates)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.support import (
    SwitcherooTest,
    convert_in_process,
    run_codemod,
    stock_clip,
    write_package,
)
from tests.test_properties import check_invariants

HEADER = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
"""

BATCHES = """\
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""

PER_EPOCH = HEADER + "for epoch in range(10):\n" + BATCHES + "    sched.step(val_loss)\n"

UPDATE = "sched_state = sched.update(None, sched_state, value=val_loss)[1]"
WRITE = 'opt.opt_state.hyperparams["learning_rate"][...] = 0.1 * sched_state.scale'


def convert(code: str, command: type = TorchToNNX) -> str:
    return run_codemod(textwrap.dedent(code), command)


def escaped(code: str) -> str:
    """The NNX output of ``code``: escaped, no plateau state driven, no lr written."""
    output = convert(code)
    assert BEGIN in output and "sched.update(" not in output, output
    assert '.hyperparams["learning_rate"][...] =' not in output, output
    return output


class NnxPlateauTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_a_per_epoch_plateau_becomes_its_state_updated_and_the_lr_written(self) -> None:
        self.assertConverts(
            PER_EPOCH.replace("    sched.step(val_loss)", "    sched.step(val_loss)  # plateau"),
            """\
import optax
from flax import nnx

model = make_model()
opt = nnx.Optimizer(model, optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9), wrt=nnx.Param)
sched = optax.contrib.reduce_on_plateau(factor=0.5, patience=1 + 1, rtol=0.0001, atol=0.0, cooldown=0, min_scale=1.1920928955078126e-08 / 0.1)
sched_state = sched.init(nnx.state(model, nnx.Param))
for epoch in range(10):
    for x, y in loader:
        def loss_fn(model):
            loss = ((model(x) - y) ** 2).mean()
            return loss
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
    sched_state = sched.update(None, sched_state, value=val_loss)[1]
    opt.opt_state.hyperparams["learning_rate"][...] = 0.1 * sched_state.scale  # plateau
""",
        )

    def test_a_min_lr_above_the_eps_floor_is_kept_as_written(self) -> None:
        output = convert(PER_EPOCH.replace("patience=1", "patience=1, min_lr=1e-3"))
        assert "min_scale=1e-3 / 0.1" in output and WRITE in output, output

    def test_a_large_eps_stops_the_reductions_early(self) -> None:
        # 0.1 -> 0.05 -> 0.025 -> 0.0125; the next decrement, 0.00625, is <= eps.
        output = convert(PER_EPOCH.replace("patience=1", "patience=1, eps=0.01"))
        assert "min_scale=0.0125 / 0.1" in output, output

    def test_the_optax_target_escapes_a_plateau_stepped_per_epoch(self) -> None:
        # optax's chain would count every update as a step(metric): not what torch does
        output = convert(PER_EPOCH, TorchToOptax)
        assert "reduce_on_plateau(" not in output.split("suggestion")[0], output
        assert "does not run once per update (per epoch, say)" in output, output
        assert "optax.chain(" not in output and "sched_state" not in output, output

    def test_a_second_run_leaves_the_plateau_as_it_is(self) -> None:
        output = check_invariants(PER_EPOCH, TorchToNNX)
        assert UPDATE in output and WRITE in output, output

    def test_a_plateau_stepped_per_batch_escapes(self) -> None:
        escaped(HEADER + "for epoch in range(10):\n" + BATCHES + "        sched.step(val_loss)\n")

    def test_a_plateau_stepped_twice_per_epoch_escapes(self) -> None:
        escaped(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    sched.step(val_loss)\n    sched.step(val_loss)\n"
        )

    def test_a_step_without_a_metric_escapes(self) -> None:
        escaped(HEADER + "for epoch in range(10):\n" + BATCHES + "    sched.step()\n")

    def test_a_step_with_an_epoch_escapes(self) -> None:
        escaped(
            HEADER + "for epoch in range(10):\n" + BATCHES + "    sched.step(val_loss, epoch)\n"
        )

    def test_a_step_under_a_condition_escapes(self) -> None:
        escaped(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    if epoch > 2:\n        sched.step(val_loss)\n"
        )

    def test_a_second_scheduler_on_the_optimizer_escapes(self) -> None:
        escaped(
            HEADER
            + "sched2 = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)\n"
            + "for epoch in range(10):\n"
            + BATCHES
            + "    sched.step(val_loss)\n    sched2.step(val_loss)\n"
        )

    def test_a_read_of_the_learning_rate_through_param_groups_reads_the_written_lr(
        self,
    ) -> None:
        output = convert(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    sched.step(val_loss)\n    print(opt.param_groups[0]['lr'])\n"
        )
        assert BEGIN not in output and WRITE in output, output
        assert "print(float(opt.opt_state.hyperparams['learning_rate'][...]))" in output

    def test_a_write_of_the_learning_rate_through_param_groups_escapes(self) -> None:
        output = convert(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    sched.step(val_loss)\n    opt.param_groups[0]['lr'] = 0.1\n"
        )
        assert BEGIN in output and "sched_state" not in output, output

    def test_a_scaled_write_of_the_learning_rate_through_param_groups_escapes(self) -> None:
        output = convert(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    sched.step(val_loss)\n    opt.param_groups[0]['lr'] *= 0.5\n"
        )
        assert BEGIN in output and "sched_state" not in output, output

    def test_a_loop_over_the_param_groups_reading_the_lr_escapes(self) -> None:
        output = convert(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    sched.step(val_loss)\n    for g in opt.param_groups:\n        print(g['lr'])\n"
        )
        assert BEGIN in output and "sched_state" not in output, output

    def test_a_read_of_a_clipped_optimizers_lr_reads_its_chains_injected_element(self) -> None:
        clipped = BATCHES.replace(
            "        opt.step()\n",
            "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n        opt.step()\n",
        )
        output = convert(
            HEADER
            + "for epoch in range(10):\n"
            + clipped
            + "    sched.step(val_loss)\n    print(opt.param_groups[0]['lr'])\n"
        )
        assert BEGIN not in output, output
        assert "print(float(opt.opt_state[1].hyperparams['learning_rate'][...]))" in output

    def test_a_read_of_another_param_group_escapes(self) -> None:
        output = convert(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    sched.step(val_loss)\n    print(opt.param_groups[0]['momentum'])\n"
        )
        assert BEGIN in output and "sched_state" not in output, output

    def test_a_read_of_num_bad_epochs_escapes_that_read(self) -> None:
        output = convert(PER_EPOCH + "    print(sched.num_bad_epochs)\n")
        assert BEGIN in output and "`sched.num_bad_epochs` is not a member" in output, output
        assert "    print(sched.num_bad_epochs)\n" in output, output

    def test_get_last_lr_as_a_list_escapes_that_read(self) -> None:
        output = convert(PER_EPOCH + "    print(sched.get_last_lr())\n")
        assert BEGIN in output and "only `sched.get_last_lr()[0]` is translated" in output, output
        assert WRITE in output and "    print(sched.get_last_lr())\n" in output, output

    def test_a_non_literal_factor_escapes_the_optimizer_too(self) -> None:
        # The eps floor needs the numbers; the optimizer is not built for a torch scheduler.
        output = escaped(PER_EPOCH.replace("factor=0.5", "factor=f"))
        assert "`factor` is not written as a literal in the code" in output, output
        assert "opt = torch.optim.SGD(" in output, output

    def test_a_non_literal_learning_rate_escapes(self) -> None:
        output = escaped(PER_EPOCH.replace("lr=0.1", "lr=base_lr"))
        assert "`lr` is not written as a literal in the code" in output, output

    def test_mode_max_with_an_abs_threshold_passes_the_negated_metric(self) -> None:
        output = convert(
            PER_EPOCH.replace("factor=0.5", "mode='max', threshold_mode='abs', factor=0.5")
        )
        assert "value=-(val_loss))[1]" in output and WRITE in output, output
        assert "rtol=0.0, atol=0.0001" in output and BEGIN not in output, output

    def test_mode_max_with_a_rel_threshold_escapes(self) -> None:
        output = escaped(PER_EPOCH.replace("factor=0.5", "mode='max', factor=0.5"))
        assert "in mode='max' torch's relative threshold" in output, output

    def test_a_mode_that_is_not_a_literal_escapes(self) -> None:
        # Danger: taken for "min", a "max" metric would be minimised.
        code = PER_EPOCH.replace("factor=0.5", "mode=mode, threshold_mode='abs', factor=0.5")
        output = escaped(code)
        assert "`mode` is not written as a literal" in output, output

    def test_mode_max_stepped_per_batch_escapes_the_optimizer_too(self) -> None:
        code = HEADER.replace("factor=0.5", "mode='max', threshold_mode='abs', factor=0.5")
        output = escaped(code + "for epoch in range(10):\n" + BATCHES + "        sched.step(acc)\n")
        assert "opt = torch.optim.SGD(" in output and "reduce_on_plateau(" not in output, output

    def test_a_taken_state_name_escapes(self) -> None:
        output = convert(HEADER + "sched_state = None\n" + PER_EPOCH.split("\n", 5)[5])
        assert "`sched_state`, a name this code already uses" in output, output
        assert "sched.update(" not in output, output

    def test_a_break_of_the_epoch_loop_escapes(self) -> None:
        escaped(
            HEADER
            + "for epoch in range(10):\n"
            + BATCHES
            + "    sched.step(val_loss)\n    if done():\n        break\n"
        )

    def test_the_comment_above_the_scheduler_is_kept_once(self) -> None:
        code = PER_EPOCH.replace("sched = ", "# on the validation loss\nsched = ")
        output = convert(code)
        assert output.count("# on the validation loss\n") == 1, output
        assert "# on the validation loss\nsched = optax.contrib.reduce_on_plateau(" in output

    def test_a_clipped_optimizer_writes_the_lr_of_its_chains_injected_element(self) -> None:
        clipped = BATCHES.replace(
            "        opt.step()\n",
            "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n        opt.step()\n",
        )
        output = convert(
            HEADER + "for epoch in range(10):\n" + clipped + "    sched.step(val_loss)\n"
        )
        assert BEGIN not in output, output
        assert f"optax.chain({stock_clip('1.0')}, optax.inject_hyperparams(" in output
        assert WRITE.replace("opt.opt_state.", "opt.opt_state[1].") in output, output


def test_a_plateau_stepped_per_update_suggests_the_nnx_update_with_the_metric() -> None:
    output = convert(
        HEADER
        + "for x, y in loader:\n"
        + "    opt.zero_grad()\n    loss = ((model(x) - y) ** 2).mean()\n"
        + "    loss.backward()\n    opt.step()\n    sched.step(loss)\n"
    )
    assert "opt.update(model, grads, value=loss)" in output, output
    assert "opt.opt_state, params" not in output, output


@pytest.mark.parametrize("threshold", ["0", "0.0"])
@pytest.mark.parametrize("per_update", [False, True])
def test_threshold_zero_keeps_the_plateau_torch_code(threshold: str, per_update: bool) -> None:
    """optax's plateau needs rtol or atol above 0 (it raises ValueError at its first update):
    per epoch (written) and per update (chained) alike."""
    header = HEADER.replace("patience=1", f"patience=1, threshold={threshold}")
    if per_update:
        code = header + textwrap.dedent(BATCHES) + "    sched.step(loss)\n"
    else:
        code = header + "for epoch in range(10):\n" + BATCHES + "    sched.step(val_loss)\n"
    output = escaped(code)
    assert "sched = optax.contrib.reduce_on_plateau(" not in output, output
    assert "threshold=0 makes torch reduce on any value not strictly better" in output, output


def test_an_lr_bound_once_to_a_number_gives_the_eps_floor() -> None:
    code = "learning_rate = 0.1\n" + PER_EPOCH.replace("lr=0.1", "lr=learning_rate")
    output = convert(code)
    assert BEGIN not in output, output
    assert "min_scale=" in output and "/ learning_rate" in output, output
    assert "learning_rate * sched_state.scale" in output, output


def test_an_lr_bound_twice_or_a_parameter_escapes() -> None:
    rebound = "learning_rate = 0.1\n" + PER_EPOCH.replace("lr=0.1", "lr=learning_rate")
    escaped(rebound + "learning_rate = 0.05\n")
    parameter = "def train(model, loader, val_loss, learning_rate):\n" + textwrap.indent(
        PER_EPOCH.replace("import torch\n", "").replace("lr=0.1", "lr=learning_rate"), "    "
    )
    escaped("import torch\n" + parameter)


OTHER_FILES = {
    "mentions": "learning_rate = 0.5\nprint(learning_rate)\n",
    "imports_it": "from pkg import train\n\ntrain.learning_rate = 0.5\n",
    "imports_the_name": "from pkg.train import learning_rate\n\nprint(learning_rate)\n",
    "importlib": "import importlib\n\nimportlib.import_module('pkg.train').learning_rate = 0.5\n",
    "sys_modules": "import sys\n\nsys.modules['pkg.train'].learning_rate = 0.5\n",
    "exec": "exec('import pkg.train as t; t.learning_rate = 0.5')\n",
}


@pytest.mark.parametrize("other", sorted(OTHER_FILES))
def test_an_lr_another_file_may_rebind_escapes_one_it_only_names_does_not(
    tmp_path: Path, other: str
) -> None:
    """The eps floor reads a module-level lr another file can rebind only through this module:
    a file that imports it (or may import it by name) and names the lr keeps it torch code;
    a file that only names a variable of its own (another script) does not."""
    train = "learning_rate = 0.1\n" + PER_EPOCH.replace("lr=0.1", "lr=learning_rate")
    files = {"train.py": train, "other.py": OTHER_FILES[other]}
    outputs, _ = convert_in_process(write_package(tmp_path, files), TorchToNNX)
    if other == "mentions":
        assert BEGIN not in outputs["train.py"], outputs["train.py"]
        assert "/ learning_rate" in outputs["train.py"], outputs["train.py"]
    else:
        assert "sched.update(" not in outputs["train.py"], outputs["train.py"]
