"""A scheduler stepped once per update in a function of another file (issue 12,
``analysis/stepped_together.py``): ``main.py`` builds ``opt`` and ``sched`` and calls
``train_one_epoch(model, opt, sched, loader)`` of ``engine.py``, which runs ``opt.step();
sched.step()``. The schedule folds into the optimizer in ``main.py`` and ``sched.step()`` goes
in ``engine.py``; every other shape keeps both, the caller's escape naming ``file:line``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo import convert
from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.rewrite.report import Record
from tests.support import convert_in_process, run_libcst_tool, write_package

ENGINE = """\
def train_one_epoch(model, opt, sched, loader):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
"""

MAIN = """\
import torch

from pkg.engine import train_one_epoch


def main(model, loader):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    for epoch in range(3):
        train_one_epoch(model, opt, sched, loader)
"""

MAIN_AFTER = """\

from pkg.engine import train_one_epoch
import optax


def main(model, loader):
    sched = optax.exponential_decay(0.1, transition_steps=10, decay_rate=0.5, staircase=True)
    opt = optax.sgd(learning_rate=sched, momentum=0.9)
    for epoch in range(3):
        train_one_epoch(model, opt, sched, loader)
"""

OTHER_CALLER = """\
import torch

from pkg.engine import train_one_epoch


def finetune(model, loader, opt):
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5)
    train_one_epoch(model, opt, sched, loader)
"""


def escape_reasons(records: list[Record], file: str = "main.py") -> list[str]:
    return [r.reason for r in records if r.kind == "escaped" and (r.file or "").endswith(file)]


def scheduler_escapes(records: list[Record]) -> list[str]:
    return [
        r.reason
        for r in records
        if r.kind == "escaped" and r.api == "torch.optim.lr_scheduler.StepLR"
    ]


# ---------------------------------------------------------------------- the shape folds


def test_the_callees_scheduler_step_goes(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    outputs, _ = convert_in_process(tmp_path)
    assert "        sched.step()\n" not in outputs["engine.py"]
    assert "opt.step()" in outputs["engine.py"]  # in the training step's escape hatch


def test_the_callers_schedule_folds_into_the_optimizer(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    outputs, records = convert_in_process(tmp_path)
    assert outputs["main.py"] == MAIN_AFTER
    assert escape_reasons(records) == []


def test_libcst_tool_writes_what_convert_writes(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    expected, _ = convert_in_process(tmp_path)
    run_libcst_tool(tmp_path, "optimizer.TorchToOptax")
    for name in ("engine.py", "main.py"):
        assert (tmp_path / "pkg" / name).read_text(encoding="utf-8") == expected[name]


def test_libcst_tool_writing_the_caller_first_writes_the_same(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    expected, _ = convert_in_process(tmp_path)
    run_libcst_tool(tmp_path / "pkg" / "main.py", "optimizer.TorchToOptax")
    run_libcst_tool(tmp_path / "pkg" / "engine.py", "optimizer.TorchToOptax")
    for name in ("engine.py", "main.py"):
        assert (tmp_path / "pkg" / name).read_text(encoding="utf-8") == expected[name]


def test_convert_in_place_writes_what_the_diff_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    expected, _ = convert_in_process(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert convert.main(["-j", "1", "-i", "--no-cache", "."]) == 0
    for name in ("engine.py", "main.py"):
        assert (tmp_path / "pkg" / name).read_text(encoding="utf-8") == expected[name]


def test_the_callee_leaves_a_note_where_the_step_was(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    outputs, _ = convert_in_process(tmp_path)
    assert "# ml_switcheroo: FOLDED `sched.step()` after `opt.step()`" in outputs["engine.py"]


def test_the_callee_converted_after_its_caller_was_written_is_the_same(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    expected, _ = convert_in_process(tmp_path)
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN_AFTER})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs["engine.py"] == expected["engine.py"]


def test_the_caller_after_its_callee_was_written_folds_the_same(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    expected, _ = convert_in_process(tmp_path)
    write_package(tmp_path, {"engine.py": expected["engine.py"], "main.py": MAIN})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs["main.py"] == expected["main.py"]


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    first, _ = convert_in_process(tmp_path)
    write_package(tmp_path, first)
    second, _ = convert_in_process(tmp_path)
    assert second == first


def test_nnx_removes_the_callees_scheduler_step_and_folds_the_schedule(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    outputs, records = convert_in_process(tmp_path, TorchToNNX)
    assert "        sched.step()\n" not in outputs["engine.py"]
    assert "optax.sgd(learning_rate=sched, momentum=0.9)" in outputs["main.py"]
    assert [r for r in records if r.kind == "escaped"] == []


# ---------------------------------------------------------------------- trap twins


def assert_both_kept(tmp_path: Path, engine: str, reason_part: str, **more: str) -> None:
    """Neither file folds: the callee keeps ``sched.step()``, the caller's StepLR escapes with
    a reason holding ``reason_part``."""
    write_package(tmp_path, {"engine.py": engine, "main.py": MAIN, **more})
    outputs, records = convert_in_process(tmp_path)
    assert "sched.step()\n" in outputs["engine.py"] and "FOLDED" not in outputs["engine.py"]
    reasons = scheduler_escapes(records)
    assert reasons and reason_part in reasons[0], reasons


def test_a_callee_stepping_per_epoch_keeps_both(tmp_path: Path) -> None:
    engine = ENGINE.replace("        sched.step()\n", "    sched.step()\n")
    assert_both_kept(tmp_path, engine, "pkg/engine.py:7 `train_one_epoch` steps `sched`")


def test_a_callee_stepping_every_k_updates_keeps_both(tmp_path: Path) -> None:
    engine = ENGINE.replace("for x, y in loader:", "for i, (x, y) in enumerate(loader):")
    engine = engine.replace(
        "        sched.step()\n", "        if i % 4 == 0:\n            sched.step()\n"
    )
    assert_both_kept(tmp_path, engine, "elsewhere than after its optimizer's `.step()`")


def test_a_callee_stepping_on_a_condition_of_the_loss_keeps_both(tmp_path: Path) -> None:
    engine = ENGINE.replace(
        "        sched.step()\n", "        if loss.item() < 1.0:\n            sched.step()\n"
    )
    assert_both_kept(tmp_path, engine, "elsewhere than after its optimizer's `.step()`")


def test_a_callee_jumping_between_the_steps_keeps_both(tmp_path: Path) -> None:
    engine = ENGINE.replace(
        "        sched.step()\n",
        "        if x is None:\n            continue\n        sched.step()\n",
    )
    assert_both_kept(tmp_path, engine, "pkg/engine.py:8 may jump or raise past `sched.step()`")


def test_a_callee_also_called_with_an_unknown_optimizer_keeps_both(tmp_path: Path) -> None:
    assert_both_kept(
        tmp_path,
        ENGINE,
        "pkg/other.py:8 passes its own parameter `opt` on",
        **{"other.py": OTHER_CALLER},
    )


def test_a_callee_reading_the_scheduler_otherwise_keeps_both(tmp_path: Path) -> None:
    engine = ENGINE + "    return sched.get_last_lr()\n"
    assert_both_kept(tmp_path, engine, "uses `sched` otherwise than by one `.step()`")


def test_a_scheduler_over_another_optimizer_keeps_both(tmp_path: Path) -> None:
    main = MAIN.replace(
        "    sched = torch.optim.lr_scheduler.StepLR(opt,",
        "    other = torch.optim.SGD(model.parameters(), lr=0.2)\n"
        "    other.step()\n"
        "    sched = torch.optim.lr_scheduler.StepLR(other,",
    )
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": main})
    outputs, _ = convert_in_process(tmp_path)
    assert "sched.step()\n" in outputs["engine.py"] and "FOLDED" not in outputs["engine.py"]


def test_a_caller_also_stepping_the_optimizer_keeps_both(tmp_path: Path) -> None:
    main = MAIN + "    opt.step()\n"
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": main})
    outputs, records = convert_in_process(tmp_path)
    assert "sched.step()\n" in outputs["engine.py"] and "FOLDED" not in outputs["engine.py"]
    (reason,) = scheduler_escapes(records)
    assert "pkg/main.py:11 reads `opt` otherwise than as the receiver of a method" in reason


def test_a_callee_never_stepping_the_scheduler_keeps_it_torch(tmp_path: Path) -> None:
    engine = ENGINE.replace("        sched.step()\n", "")
    write_package(tmp_path, {"engine.py": engine, "main.py": MAIN})
    _, records = convert_in_process(tmp_path)
    (reason,) = scheduler_escapes(records)
    assert "pkg/engine.py:1 `train_one_epoch` never reads `sched`" in reason


def test_a_note_of_another_scheduler_does_not_count(tmp_path: Path) -> None:
    note = "        # ml_switcheroo: FOLDED `other.step()` after `opt.step()`: x\n"
    engine = ENGINE.replace("        sched.step()\n", note)
    write_package(tmp_path, {"engine.py": engine, "main.py": MAIN})
    _, records = convert_in_process(tmp_path)
    assert len(scheduler_escapes(records)) == 1


def test_a_caller_refusing_for_its_own_reason_says_the_callee_drops_the_step(
    tmp_path: Path,
) -> None:
    main = MAIN.replace("    sched = torch", "    if True:\n        sched = torch")
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": main})
    _, records = convert_in_process(tmp_path)
    (reason,) = scheduler_escapes(records)
    assert "not both assigned in the same block" in reason
    assert "(pkg/engine.py:7: `sched.step()` goes there all the same" in reason


def test_a_call_between_the_steps_keeps_both(tmp_path: Path) -> None:
    engine = ENGINE.replace("        sched.step()\n", "        print(loss)\n        sched.step()\n")
    assert_both_kept(tmp_path, engine, "pkg/engine.py:7 may jump or raise past `sched.step()`")


def test_a_callee_handing_the_optimizer_on_keeps_both(tmp_path: Path) -> None:
    engine = ENGINE + "    extra(opt)\n\n\ndef extra(opt):\n    opt.step()\n"
    assert_both_kept(tmp_path, engine, "uses `opt` otherwise than as a method's receiver")


def test_zero_grad_between_the_steps_folds(tmp_path: Path) -> None:
    engine = ENGINE.replace("        opt.zero_grad()\n", "").replace(
        "        sched.step()\n", "        opt.zero_grad()\n        sched.step()\n"
    )
    write_package(tmp_path, {"engine.py": engine, "main.py": MAIN})
    outputs, records = convert_in_process(tmp_path)
    assert "        sched.step()\n" not in outputs["engine.py"]
    assert outputs["main.py"] == MAIN_AFTER


def test_a_scheduler_argument_the_map_refuses_says_the_callee_drops_the_step(
    tmp_path: Path,
) -> None:
    main = MAIN.replace("gamma=0.5)", "gamma=0.5, verbos=True)")
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": main})
    _, records = convert_in_process(tmp_path)
    (reason,) = scheduler_escapes(records)
    assert "unknown argument `verbos`" in reason
    assert "(pkg/engine.py:7: `sched.step()` goes there all the same" in reason
