"""optimizer.TorchToNNX across files (issue 13, items 2 and 3): a training step in another
file (``train_one_epoch(model, criterion, loader, optimizer)``) converts when every call site in
the repository passes a translated optimizer and the very model it was built over; a per-epoch
scheduler whose epoch hands the optimizer to such a function gets its lr written per epoch.
Anything the index cannot follow escapes, naming the ``file:line`` that decided."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo import convert
from ml_switcheroo.app import cache
from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.spec.escape_hatch import BEGIN
from tests import support
from tests.support import renders_a_step, run_libcst_tool, write_package

ENGINE = """\
def train_one_epoch(model, criterion, loader, optimizer):
    for x, y in loader:
        out = model(x)
        loss = criterion(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""

ENGINE_AFTER = """\
from flax import nnx
def train_one_epoch(model, criterion, loader, optimizer):
    for x, y in loader:
        def loss_fn(model):
            out = model(x)
            loss = criterion(out, y)
            return loss
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
"""

MAIN = """\
import torch
from pkg.engine import train_one_epoch


def main(model, loader, epochs):
    criterion = torch.nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    {scheduler}for epoch in range(epochs):
        {call}
        {step}
"""

MAIN_AFTER = """\
import torch
from pkg.engine import train_one_epoch
import optax
from flax import nnx


def main(model, loader, epochs):
    criterion = torch.nn.MSELoss()
    optimizer = nnx.Optimizer(model, optax.sgd(learning_rate=0.1, momentum=0.9), wrt=nnx.Param)
    for epoch in range(epochs):
        train_one_epoch(model, criterion, loader, optimizer)
        pass
"""

SCHEDULER = "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)\n    "
CALL = "train_one_epoch(model, criterion, loader, optimizer)"

MAIN_PER_EPOCH_AFTER = """\
import torch
from pkg.engine import train_one_epoch
import optax
from flax import nnx


def main(model, loader, epochs):
    criterion = torch.nn.MSELoss()
    scheduler = optax.exponential_decay(0.1, transition_steps=2, decay_rate=0.5, staircase=True)
    optimizer = nnx.Optimizer(model, optax.inject_hyperparams(optax.sgd)(learning_rate=float(scheduler(0)), momentum=0.9), wrt=nnx.Param)
    for epoch in range(epochs):
        train_one_epoch(model, criterion, loader, optimizer)
        optimizer.opt_state.hyperparams["learning_rate"][...] = scheduler(epoch + 1)
"""


def main_source(call: str = CALL, scheduler: str = "", step: str = "pass", before: str = "") -> str:
    text = MAIN.format(scheduler=scheduler, call=call, step=step)
    return text.replace("    for epoch", f"    {before}for epoch") if before else text


def per_epoch(call: str = CALL, before: str = "", step: str = "scheduler.step()") -> str:
    return main_source(call, SCHEDULER, step, before)


def convert_in_process(root: Path) -> tuple[dict[str, str], list[Record]]:
    """Every file of ``root/pkg`` through ``TorchToNNX`` as libcst's runner calls it."""
    return support.convert_in_process(root, TorchToNNX)


def step_reasons(records: list[Record]) -> list[str]:
    return [r.reason for r in records if r.kind == "escaped" and r.api.endswith(".step")]


def escaped_engine(tmp_path: Path, files: dict[str, str]) -> str:
    """The reason the step of ``engine.py`` escapes (asserting it does)."""
    write_package(tmp_path, {"engine.py": ENGINE, **files})
    outputs, records = convert_in_process(tmp_path)
    assert BEGIN in outputs["engine.py"] and not renders_a_step(outputs["engine.py"])
    reasons = step_reasons(records)
    assert reasons, records
    return reasons[0]


# ---------------------------------------------------------------------- the step converts


def test_a_step_in_another_file_becomes_a_loss_function_and_an_update(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": main_source()})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs["engine.py"] == ENGINE_AFTER


def test_the_caller_builds_the_nnx_optimizer_over_the_same_model(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": main_source()})
    outputs, records = convert_in_process(tmp_path)
    assert outputs["main.py"] == MAIN_AFTER
    assert [r for r in records if r.kind == "escaped"] == []


def test_libcst_tool_rewrites_both_files_the_same(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": main_source()})
    run_libcst_tool(tmp_path, "optimizer.TorchToNNX")
    assert (tmp_path / "pkg" / "engine.py").read_text(encoding="utf-8") == ENGINE_AFTER
    assert (tmp_path / "pkg" / "main.py").read_text(encoding="utf-8") == MAIN_AFTER


def test_convert_in_place_rewrites_both_files_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": main_source()})
    monkeypatch.chdir(tmp_path)
    assert convert.main(["--target", "nnx", "-j", "1", "-i", "--no-cache", "."]) == 0
    assert (tmp_path / "pkg" / "engine.py").read_text(encoding="utf-8") == ENGINE_AFTER
    assert (tmp_path / "pkg" / "main.py").read_text(encoding="utf-8") == MAIN_AFTER


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE_AFTER, "main.py": MAIN_AFTER})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs == {"__init__.py": "", "engine.py": ENGINE_AFTER, "main.py": MAIN_AFTER}


def test_the_callee_converts_the_same_after_its_caller_was_written(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN_AFTER})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs["engine.py"] == ENGINE_AFTER


def test_the_caller_converts_the_same_after_its_callee_was_written(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE_AFTER, "main.py": main_source()})
    outputs, records = convert_in_process(tmp_path)
    assert outputs["main.py"] == MAIN_AFTER
    assert [r for r in records if r.kind == "escaped"] == []


# ---------------------------------------------------------------------- trap twins: the step


def test_a_call_site_passing_another_model_escapes_naming_it(tmp_path: Path) -> None:
    main = main_source(call="train_one_epoch(other, criterion, loader, optimizer)")
    main = main.replace("def main(model,", "def main(model, other,")
    reason = escaped_engine(tmp_path, {"main.py": main})
    assert "pkg/main.py:9" in reason and "`optimizer` trains `model`" in reason, reason


def test_a_wrapped_model_escapes(tmp_path: Path) -> None:
    main = main_source(call="train_one_epoch(ddp, criterion, loader, optimizer)")
    main = main.replace("    for epoch", "    ddp = torch.nn.DataParallel(model)\n    for epoch")
    reason = escaped_engine(tmp_path, {"main.py": main})
    assert "pkg/main.py:10" in reason, reason


def test_a_model_rebound_in_the_caller_escapes(tmp_path: Path) -> None:
    main = main_source(before="model = torch.compile(model)\n    ")
    reason = escaped_engine(tmp_path, {"main.py": main})
    assert "binds `model` more than once" in reason, reason


def test_a_second_caller_with_another_model_escapes_naming_it(tmp_path: Path) -> None:
    other = (
        main_source()
        .replace("def main(model,", "def other(net, model,")
        .replace("train_one_epoch(model,", "train_one_epoch(net,")
    )
    reason = escaped_engine(tmp_path, {"main.py": main_source(), "other.py": other})
    assert "pkg/other.py:9" in reason, reason


PLAIN_ENGINE = """\
def train_one_epoch(model, loader, optimizer):
    for x, y in loader:
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
"""

FIT = """\
from pkg.engine import train_one_epoch


def fit(model, loader, optimizer):
    {before}train_one_epoch(model, loader, optimizer)
"""

FIT_CALLER = """\
import torch
from pkg.fit import fit


def main(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    fit(model, loader, optimizer)
"""


def passed_on(tmp_path: Path, fit: str) -> tuple[str, list[str]]:
    """``engine.py`` (a step) and its step's escape reasons, with ``fit.py`` between it and
    the optimizer's file."""
    files = {"engine.py": PLAIN_ENGINE, "fit.py": fit, "main.py": FIT_CALLER}
    write_package(tmp_path, files)
    outputs, records = convert_in_process(tmp_path)
    return outputs["engine.py"], step_reasons(records)


def test_a_model_and_optimizer_passed_on_through_a_function_convert(tmp_path: Path) -> None:
    engine, reasons = passed_on(tmp_path, FIT.format(before=""))
    assert renders_a_step(engine) and BEGIN not in engine and reasons == [], engine


def test_a_function_passing_another_model_on_escapes_naming_it(tmp_path: Path) -> None:
    fit = FIT.format(before="net = make_net()\n    ").replace(
        "(model, loader, optimizer)\n", "(net, loader, optimizer)\n"
    )
    engine, reasons = passed_on(tmp_path, fit)
    assert not renders_a_step(engine) and "pkg/fit.py:6" in reasons[0], reasons


def test_a_function_rebinding_the_model_it_passes_on_escapes(tmp_path: Path) -> None:
    engine, reasons = passed_on(tmp_path, FIT.format(before="model = wrap(model)\n    "))
    assert not renders_a_step(engine) and "pkg/fit.py:6" in reasons[0], reasons


def test_a_function_passing_a_criterion_parameter_on_escapes(tmp_path: Path) -> None:
    fit = (
        "from pkg.engine import train_one_epoch\n\n\n"
        "def fit(model, criterion, loader, optimizer):\n"
        "    train_one_epoch(model, criterion, loader, optimizer)\n"
    )
    caller = (
        "import torch\nfrom pkg.fit import fit\n\n\ndef main(model, loader):\n"
        "    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    fit(model, torch.nn.MSELoss(), loader, optimizer)\n"
    )
    reason = escaped_engine(tmp_path, {"fit.py": fit, "main.py": caller})
    assert "unknown function" in reason, reason


def test_the_callee_rebinding_its_model_escapes(tmp_path: Path) -> None:
    engine = ENGINE.replace("    for x, y", "    model = model.double()\n    for x, y")
    write_package(tmp_path, {"engine.py": engine, "main.py": main_source()})
    outputs, _ = convert_in_process(tmp_path)
    assert BEGIN in outputs["engine.py"] and not renders_a_step(outputs["engine.py"])


def test_a_criterion_that_is_not_a_torch_loss_module_escapes(tmp_path: Path) -> None:
    main = main_source().replace("torch.nn.MSELoss()", "make_criterion()")
    reason = escaped_engine(tmp_path, {"main.py": main})
    assert "unknown function" in reason, reason


def test_an_optimizer_over_a_list_of_parameters_escapes(tmp_path: Path) -> None:
    main = main_source().replace("SGD(model.parameters()", "SGD(list(model.parameters())")
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": main})
    outputs, _ = convert_in_process(tmp_path)
    assert not renders_a_step(outputs["engine.py"])


# ---------------------------------------------------------------------- per-epoch scheduler


def test_a_per_epoch_scheduler_after_a_train_call_of_another_file_is_written(
    tmp_path: Path,
) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": per_epoch()})
    outputs, records = convert_in_process(tmp_path)
    assert outputs["main.py"] == MAIN_PER_EPOCH_AFTER
    assert outputs["engine.py"] == ENGINE_AFTER
    assert [r for r in records if r.kind == "escaped"] == []


def test_the_per_epoch_write_is_the_same_under_convert_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": per_epoch()})
    monkeypatch.chdir(tmp_path)
    assert convert.main(["--target", "nnx", "-j", "1", "-i", "--no-cache", "."]) == 0
    assert (tmp_path / "pkg" / "main.py").read_text(encoding="utf-8") == MAIN_PER_EPOCH_AFTER
    assert (tmp_path / "pkg" / "engine.py").read_text(encoding="utf-8") == ENGINE_AFTER


def test_the_per_epoch_write_is_the_same_under_libcst_tool(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": per_epoch()})
    run_libcst_tool(tmp_path, "optimizer.TorchToNNX")
    assert (tmp_path / "pkg" / "main.py").read_text(encoding="utf-8") == MAIN_PER_EPOCH_AFTER
    assert (tmp_path / "pkg" / "engine.py").read_text(encoding="utf-8") == ENGINE_AFTER


def scheduler_escaped(tmp_path: Path, main: str, engine: str = ENGINE) -> bool:
    write_package(tmp_path, {"engine.py": engine, "main.py": main})
    outputs, _ = convert_in_process(tmp_path)
    return BEGIN in outputs["main.py"] and "StepLR" in outputs["main.py"]


def test_a_scheduler_handed_to_the_train_function_too_escapes(tmp_path: Path) -> None:
    engine = ENGINE.replace("optimizer):", "optimizer, scheduler):").replace(
        "optimizer.step()", "optimizer.step()\n        scheduler.step()"
    )
    call = "train_one_epoch(model, criterion, loader, optimizer, scheduler)"
    assert scheduler_escaped(tmp_path, per_epoch(call=call), engine)


def test_a_train_function_reading_param_groups_escapes(tmp_path: Path) -> None:
    engine = ENGINE + "    print(optimizer.param_groups[0]['lr'])\n"
    assert scheduler_escaped(tmp_path, per_epoch(), engine)


def test_a_train_function_storing_the_optimizer_escapes(tmp_path: Path) -> None:
    engine = "SEEN = []\n\n\n" + ENGINE + "    SEEN.append(optimizer)\n"
    assert scheduler_escaped(tmp_path, per_epoch(), engine)


def test_the_epoch_rebound_in_the_loop_escapes(tmp_path: Path) -> None:
    call = CALL + "\n        epoch = epoch * 2"
    assert scheduler_escaped(tmp_path, per_epoch(call=call))


def test_a_break_in_the_epoch_loop_escapes(tmp_path: Path) -> None:
    step = "scheduler.step()\n        if epoch > 5:\n            break"
    assert scheduler_escaped(tmp_path, per_epoch(step=step))


def test_a_train_call_under_a_condition_escapes(tmp_path: Path) -> None:
    call = "if epoch % 2 == 0:\n            " + CALL
    assert scheduler_escaped(tmp_path, per_epoch(call=call))


def test_the_optimizer_handed_after_the_scheduler_step_escapes(tmp_path: Path) -> None:
    step = "scheduler.step()\n        train_one_epoch(model, criterion, loader, optimizer)"
    assert scheduler_escaped(tmp_path, per_epoch(step=step))


def test_changing_the_outermost_caller_changes_the_steps_facts(tmp_path: Path) -> None:
    """A fact followed through ``fit`` comes from ``main.py``, which does not import the
    step's file: the cache's digest of the step's file still covers it."""
    write_package(
        tmp_path,
        {"engine.py": PLAIN_ENGINE, "fit.py": FIT.format(before=""), "main.py": FIT_CALLER},
    )
    engine = str(tmp_path / "pkg" / "engine.py")
    before = cache.facts_from_other_files(engine)
    (tmp_path / "pkg" / "main.py").write_text(FIT_CALLER + "# changed\n", encoding="utf-8")
    assert cache.facts_from_other_files(engine) not in ("", before)
