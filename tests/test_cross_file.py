"""An optimizer handed to a function of another file of the repository (issue 12, deliverable 1,
first shape): converted in both files when every call site in the repository passes a
translated optimizer and the function only steps and zeroes it; left as it is otherwise, with
the escape naming the place that decided."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo import convert
from ml_switcheroo.analysis.prefilter import prefilter_for
from ml_switcheroo.analysis.repository import MAX_IMPORTING, RepositoryIndex
from ml_switcheroo.app import cache
from ml_switcheroo.rewrite.report import Record
from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.support import convert_in_process, run_libcst_tool, stock_clip, write_package

ENGINE = """\
def train_one_epoch(model, optimizer, loader):
    for batch in loader:
        optimizer.zero_grad()
        loss = model(batch)
        loss.backward()
        optimizer.step()
"""

MAIN = """\
import torch
from pkg.engine import train_one_epoch

def main(model, loader):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(3):
        train_one_epoch(model, opt, loader)
"""

ENGINE_AFTER = """\
def train_one_epoch(model, optimizer, loader):
    for batch in loader:
        loss = model(batch)
        # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
        # ml_switcheroo: reason: torch computes gradients into .grad (`loss.backward()`) and `optimizer.step()` applies them in place; JAX takes gradients of a loss function and optax returns updates to apply
        # ml_switcheroo: suggestion:
        # ml_switcheroo: |   def loss_fn(params):  # the forward pass that computes `loss`, as a function of the parameters
        # ml_switcheroo: |       ...
        # ml_switcheroo: |       return loss
        # ml_switcheroo: |   loss, grads = jax.value_and_grad(loss_fn)(params)
        # ml_switcheroo: |   updates, optimizer_state = optimizer.update(grads, optimizer_state, params)
        # ml_switcheroo: |   params = optax.apply_updates(params, updates)
        # ml_switcheroo: |   # once, after `optimizer` is built: optimizer_state = optimizer.init(params)
        loss.backward()
        optimizer.step()
        # ml_switcheroo: ESCAPE-END
"""

MAIN_AFTER = """\
from pkg.engine import train_one_epoch
import optax

def main(model, loader):
    opt = optax.sgd(learning_rate=0.1, momentum=0.9)
    for epoch in range(3):
        train_one_epoch(model, opt, loader)
"""

LBFGS_CALLER = """\
import torch
from pkg.engine import train_one_epoch

def finetune(model, loader):
    opt = torch.optim.LBFGS(model.parameters())
    train_one_epoch(model, opt, loader)
"""


def escape_reasons(records: list[Record]) -> list[str]:
    return [r.reason for r in records if r.kind == "escaped"]


def handed_over(records: list[Record]) -> list[str]:
    return [reason for reason in escape_reasons(records) if "`train_one_epoch(...)` gets" in reason]


# ---------------------------------------------------------------------- the shape converts


def test_the_callee_steps_escape_and_its_zero_grad_is_removed(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs["engine.py"] == ENGINE_AFTER


def test_the_hand_over_in_the_constructors_file_is_no_escape(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    outputs, records = convert_in_process(tmp_path)
    assert outputs["main.py"] == MAIN_AFTER
    assert handed_over(records) == []


def test_the_callee_file_has_no_bytes_the_prefilter_needs(tmp_path: Path) -> None:
    assert not prefilter_for(load_semantic_map()).matches(ENGINE.encode())


def test_libcst_tool_rewrites_both_files(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    run_libcst_tool(tmp_path, "optimizer.TorchToOptax")
    assert (tmp_path / "pkg" / "engine.py").read_text(encoding="utf-8") == ENGINE_AFTER
    assert (tmp_path / "pkg" / "main.py").read_text(encoding="utf-8") == MAIN_AFTER


def test_convert_in_place_rewrites_both_files_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    monkeypatch.chdir(tmp_path)
    assert convert.main(["-j", "1", "-i", "--no-cache", "."]) == 0
    assert (tmp_path / "pkg" / "engine.py").read_text(encoding="utf-8") == ENGINE_AFTER
    assert (tmp_path / "pkg" / "main.py").read_text(encoding="utf-8") == MAIN_AFTER


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE_AFTER, "main.py": MAIN_AFTER})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs == {"__init__.py": "", "engine.py": ENGINE_AFTER, "main.py": MAIN_AFTER}


def test_callee_converted_after_its_caller_was_written_is_the_same(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN_AFTER})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs["engine.py"] == ENGINE_AFTER


# ---------------------------------------------------------------------- trap twins


def test_a_caller_passing_lbfgs_leaves_the_callee_as_it_is(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN, "other.py": LBFGS_CALLER})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs["engine.py"] == ENGINE


def test_a_caller_passing_lbfgs_keeps_the_hand_over_escape_naming_it(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN, "other.py": LBFGS_CALLER})
    _, records = convert_in_process(tmp_path)
    (reason,) = handed_over(records)
    assert "pkg/other.py:6 passes `torch.optim.LBFGS(...)` (built at pkg/other.py:5)" in reason


def test_a_callee_storing_the_optimizer_keeps_the_hand_over_escape(tmp_path: Path) -> None:
    engine = ENGINE + "    state.optimizer = optimizer\n"
    write_package(tmp_path, {"engine.py": engine, "main.py": MAIN})
    outputs, records = convert_in_process(tmp_path)
    (reason,) = handed_over(records)
    assert "pkg/engine.py:7 uses `optimizer` as a torch object" in reason
    assert outputs["engine.py"] == engine


def test_a_callee_reading_param_groups_keeps_the_hand_over_escape(tmp_path: Path) -> None:
    engine = ENGINE + "    return optimizer.param_groups[0]['lr']\n"
    write_package(tmp_path, {"engine.py": engine, "main.py": MAIN})
    outputs, records = convert_in_process(tmp_path)
    (reason,) = handed_over(records)
    assert "`optimizer.param_groups`" in reason
    assert outputs["engine.py"] == engine


def test_a_star_import_of_the_callee_keeps_the_hand_over_escape(tmp_path: Path) -> None:
    main = MAIN.replace("from pkg.engine import train_one_epoch", "from pkg.engine import *")
    other = MAIN.replace("def main", "def other")
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": main, "other.py": other})
    outputs, records = convert_in_process(tmp_path)
    (reason,) = handed_over([r for r in records if (r.file or "").endswith("other.py")])
    assert "pkg/main.py:2 imports `*` from `pkg.engine`" in reason
    assert outputs["engine.py"] == ENGINE


def test_a_recursive_callee_keeps_the_hand_over_escape(tmp_path: Path) -> None:
    engine = ENGINE + "    if loader:\n        train_one_epoch(model, optimizer, loader[1:])\n"
    write_package(tmp_path, {"engine.py": engine, "main.py": MAIN})
    outputs, records = convert_in_process(tmp_path)
    assert outputs["engine.py"] == engine
    (reason,) = handed_over(records)
    assert "pkg/engine.py:8 recursion" in reason


def test_a_library_consumer_stays_a_hand_over_escape(tmp_path: Path) -> None:
    main = (
        "import torch\nfrom accelerate import Accelerator\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "model, opt = Accelerator().prepare(model, opt)\n"
    )
    write_package(tmp_path, {"main.py": main})
    outputs, records = convert_in_process(tmp_path)
    assert any("`Accelerator().prepare(...)` gets `opt`" in r for r in escape_reasons(records))


# ---------------------------------------------------------------------- the cache


def test_changing_the_callee_changes_the_callers_facts(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    main = str(tmp_path / "pkg" / "main.py")
    before = cache.facts_from_other_files(main)
    (tmp_path / "pkg" / "engine.py").write_text(ENGINE + "# changed\n", encoding="utf-8")
    assert cache.facts_from_other_files(main) not in ("", before)


def test_changing_the_caller_changes_the_callees_facts(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": ENGINE, "main.py": MAIN})
    engine = str(tmp_path / "pkg" / "engine.py")
    before = cache.facts_from_other_files(engine)
    (tmp_path / "pkg" / "main.py").write_text(MAIN + "# changed\n", encoding="utf-8")
    assert cache.facts_from_other_files(engine) not in ("", before)


def test_a_file_linked_to_no_other_has_no_facts(tmp_path: Path) -> None:
    (tmp_path / "alone.py").write_text("import torch\n", encoding="utf-8")
    assert cache.facts_from_other_files(str(tmp_path / "alone.py")) == ""


def test_a_module_of_a_package_depends_on_the_package_init(tmp_path: Path) -> None:
    """Importing ``pkg.alone`` runs ``pkg/__init__.py`` (a freeze there matters)."""
    write_package(tmp_path, {"alone.py": "import torch\n"})
    before = cache.facts_from_other_files(str(tmp_path / "pkg" / "alone.py"))
    (tmp_path / "pkg" / "__init__.py").write_text("X = 1\n", encoding="utf-8")
    assert (
        before != "" and cache.facts_from_other_files(str(tmp_path / "pkg" / "alone.py")) != before
    )


def test_a_trainer_depends_on_the_files_its_callers_import(tmp_path: Path) -> None:
    """``run.py`` imports ``main.py`` (which imports ``training.py``) and ``helpers.py``: a
    freeze added to ``helpers.py`` may run before ``train`` (``CrossFile.caller_freeze``)."""
    files = {
        "training.py": "import torch\n\n\ndef train(m):\n    torch.optim.SGD(m.parameters())\n",
        "main.py": "from pkg.training import train\n",
        "run.py": "from pkg.main import train\nfrom pkg.helpers import f\n",
        "helpers.py": "def f(m):\n    pass\n",
    }
    write_package(tmp_path, files)
    training = str(tmp_path / "pkg" / "training.py")
    before = cache.facts_from_other_files(training)
    (tmp_path / "pkg" / "helpers.py").write_text(
        "def f(m):\n    m.requires_grad_(False)\n", encoding="utf-8"
    )
    assert cache.facts_from_other_files(training) not in ("", before)


# ---------------------------------------------------------------------- builders (shape b)

BUILDERS = """\
import torch

def build_optimizer(model, cfg):
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.05)
"""

BUILDERS_AFTER = """\
import optax

def build_optimizer(model, cfg):
    return optax.adamw(learning_rate=cfg.lr, weight_decay=0.05)
"""

FIT = """\
from pkg.builders import build_optimizer

def fit(model, cfg, loader):
    opt = build_optimizer(model, cfg)
    for batch in loader:
        opt.zero_grad()
        loss = model(batch)
        loss.backward()
        opt.step()
"""


def test_a_builder_in_another_file_converts(tmp_path: Path) -> None:
    write_package(tmp_path, {"builders.py": BUILDERS, "train.py": FIT})
    outputs, _ = convert_in_process(tmp_path)
    assert outputs["builders.py"] == BUILDERS_AFTER


def test_the_builders_caller_loses_zero_grad_and_escapes_step(tmp_path: Path) -> None:
    write_package(tmp_path, {"builders.py": BUILDERS, "train.py": FIT})
    outputs, records = convert_in_process(tmp_path)
    assert "zero_grad" not in outputs["train.py"]
    assert [r.api for r in records if r.kind == "escaped"] == ["torch.optim.Optimizer.step"]


def test_convert_selects_the_builders_caller_without_torch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_package(tmp_path, {"builders.py": BUILDERS, "train.py": FIT})
    monkeypatch.chdir(tmp_path)
    assert convert.main(["-j", "1", "-i", "--no-cache", "."]) == 0
    assert "zero_grad" not in (tmp_path / "pkg" / "train.py").read_text(encoding="utf-8")
    assert (tmp_path / "pkg" / "builders.py").read_text(encoding="utf-8") == BUILDERS_AFTER


def test_a_builder_returning_sgd_or_adam_by_argument_escapes_naming_the_return(
    tmp_path: Path,
) -> None:
    builders = (
        "import torch\n\ndef build_optimizer(model, cfg):\n"
        "    if cfg.name == 'sgd':\n"
        "        return torch.optim.SGD(model.parameters(), lr=cfg.lr)\n"
        "    return torch.optim.Adam(model.parameters(), lr=cfg.lr)\n"
    )
    write_package(tmp_path, {"builders.py": builders, "train.py": FIT})
    outputs, records = convert_in_process(tmp_path)
    reasons = escape_reasons(records)
    assert any("pkg/builders.py:6 returns `torch.optim.Adam(...)`" in r for r in reasons)
    assert outputs["train.py"] == FIT


def test_a_caller_reading_param_groups_of_the_built_value_escapes(tmp_path: Path) -> None:
    fit = FIT + "    print(opt.param_groups[0]['lr'])\n"
    write_package(tmp_path, {"builders.py": BUILDERS, "train.py": fit})
    outputs, records = convert_in_process(tmp_path)
    assert any("pkg/train.py:10 uses `opt`" in r for r in escape_reasons(records))
    assert outputs["train.py"] == fit


BOUND_BUILDERS = """\
import torch

def build_optimizer(model, cfg):
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.05)
    return opt
"""


def test_a_builder_in_another_file_returning_a_bound_name_converts(tmp_path: Path) -> None:
    write_package(tmp_path, {"builders.py": BOUND_BUILDERS, "train.py": FIT})
    outputs, records = convert_in_process(tmp_path)
    assert (
        "    opt = optax.adamw(learning_rate=cfg.lr, weight_decay=0.05)\n    return opt\n"
        in (outputs["builders.py"])
    )
    assert "zero_grad" not in outputs["train.py"]
    assert [r.api for r in records if r.kind == "escaped"] == ["torch.optim.Optimizer.step"]


def test_a_builder_in_another_file_rebinding_its_name_escapes_naming_the_return(
    tmp_path: Path,
) -> None:
    builders = BOUND_BUILDERS.replace(
        "    return opt\n",
        "    if cfg.sgd:\n        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)\n"
        "    return opt\n",
    )
    write_package(tmp_path, {"builders.py": builders, "train.py": FIT})
    outputs, records = convert_in_process(tmp_path)
    assert any("pkg/builders.py:7 returns `opt`" in r for r in escape_reasons(records))
    assert outputs["train.py"] == FIT


SAME_FILE_BUILDER = """\
import torch


def build(model, cfg):
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)
    return opt, sched


def fit(model, loader, cfg):
    opt, sched = build(model, cfg)
    for x in loader:
        opt.zero_grad()
        model(x).sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
"""


def test_a_builder_of_the_file_converts_the_same_under_libcst_tool_and_convert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool, ours = tmp_path / "tool", tmp_path / "convert"
    write_package(tool, {"trainer.py": SAME_FILE_BUILDER})
    write_package(ours, {"trainer.py": SAME_FILE_BUILDER})
    run_libcst_tool(tool, "optimizer.TorchToOptax", jobs=1)
    monkeypatch.chdir(ours)
    assert convert.main(["-j", "1", "-i", "--no-cache", "."]) == 0
    converted = (ours / "pkg" / "trainer.py").read_text(encoding="utf-8")
    assert (tool / "pkg" / "trainer.py").read_text(encoding="utf-8") == converted
    assert f"optax.chain({stock_clip('1.0')}, optax.sgd(learning_rate=sched" in converted


def test_a_builder_of_the_file_called_from_another_file_is_not_followed_here(
    tmp_path: Path,
) -> None:
    other = (
        "from pkg.trainer import build\n\ndef again(model, cfg):\n    return build(model, cfg)\n"
    )
    write_package(tmp_path, {"trainer.py": SAME_FILE_BUILDER, "other.py": other})
    outputs, records = convert_in_process(tmp_path)
    assert "sched.step()" in outputs["trainer.py"]
    assert any("`return opt, sched`" in r for r in escape_reasons(records))


# ---------------------------------------------------------------------- two hops

TWO_HOPS_ENGINE = """\
def train_one_epoch(model, optimizer, loader):
    for batch in loader:
        optimizer.zero_grad()
        loss = model(batch)
        loss.backward()
        optimizer.step()


def fit(model, optimizer, loader, epochs):
    for _ in range(epochs):
        train_one_epoch(model, optimizer, loader)
"""

TWO_HOPS_MAIN = """\
import torch
from pkg.engine import fit


def main(model, loader):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    fit(model, opt, loader, 3)
"""


def handed_to_fit(records: list[Record]) -> list[str]:
    return [reason for reason in escape_reasons(records) if "`fit(...)` gets" in reason]


def test_an_optimizer_passed_on_through_two_functions_converts(tmp_path: Path) -> None:
    write_package(tmp_path, {"engine.py": TWO_HOPS_ENGINE, "main.py": TWO_HOPS_MAIN})
    outputs, records = convert_in_process(tmp_path)
    assert "optimizer.zero_grad()" not in outputs["engine.py"]
    assert "    opt = optax.sgd(learning_rate=0.05, momentum=0.9)\n" in outputs["main.py"]
    assert handed_to_fit(records) == []


def test_a_middle_function_reading_param_groups_keeps_the_hand_over_naming_it(
    tmp_path: Path,
) -> None:
    engine = TWO_HOPS_ENGINE + "    print(optimizer.param_groups)\n"
    write_package(tmp_path, {"engine.py": engine, "main.py": TWO_HOPS_MAIN})
    outputs, records = convert_in_process(tmp_path)
    assert any("pkg/engine.py:12 uses `optimizer`" in r for r in handed_to_fit(records))
    assert "optimizer.zero_grad()" in outputs["engine.py"]


def test_functions_passing_the_optimizer_back_and_forth_keep_the_hand_over(
    tmp_path: Path,
) -> None:
    engine = TWO_HOPS_ENGINE.replace(
        "        optimizer.step()\n",
        "        optimizer.step()\n    fit(model, optimizer, loader, 0)\n",
    )
    write_package(tmp_path, {"engine.py": engine, "main.py": TWO_HOPS_MAIN})
    outputs, records = convert_in_process(tmp_path)
    assert any("recursion" in r for r in handed_to_fit(records))
    assert "optimizer.zero_grad()" in outputs["engine.py"]


def test_another_caller_of_the_middle_function_passing_lbfgs_keeps_the_calls(
    tmp_path: Path,
) -> None:
    other = (
        "import torch\nfrom pkg.engine import fit\n\n\ndef other(model, loader):\n"
        "    opt = torch.optim.LBFGS(model.parameters())\n    fit(model, opt, loader, 1)\n"
    )
    write_package(
        tmp_path, {"engine.py": TWO_HOPS_ENGINE, "main.py": TWO_HOPS_MAIN, "other.py": other}
    )
    outputs, records = convert_in_process(tmp_path)
    assert "optimizer.zero_grad()" in outputs["engine.py"]
    assert any(
        "pkg/other.py:7 passes `torch.optim.LBFGS(...)`" in r for r in handed_to_fit(records)
    )


def test_more_functions_than_followed_keep_the_hand_over(tmp_path: Path) -> None:
    engine = TWO_HOPS_ENGINE
    for name, inner in (("run", "fit"), ("launch", "run"), ("start", "launch")):
        engine += (
            f"\n\ndef {name}(model, optimizer, loader, epochs):\n"
            f"    {inner}(model, optimizer, loader, epochs)\n"
        )
    main = TWO_HOPS_MAIN.replace("import fit", "import start").replace("    fit(", "    start(")
    write_package(tmp_path, {"engine.py": engine, "main.py": main})
    outputs, records = convert_in_process(tmp_path)
    assert "optimizer.zero_grad()" in outputs["engine.py"]
    assert any(
        "`start(...)` gets" in r and "on through more than 3 functions" in r
        for r in escape_reasons(records)
    )


def test_too_many_files_importing_a_trainer_are_not_known(tmp_path: Path) -> None:
    """More than ``MAX_IMPORTING`` files import ``training.py`` (a chain of importers): not
    read (``caller_freeze`` escapes its optimizer saying so)."""
    files = {
        "training.py": "import torch\n\n\ndef train(m):\n    torch.optim.SGD(m.parameters())\n"
    }
    previous = "training"
    for number in range(MAX_IMPORTING + 1):
        files[f"caller{number}.py"] = f"from pkg.{previous} import train\n"
        previous = f"caller{number}"
    write_package(tmp_path, files)
    index = RepositoryIndex(str(tmp_path))
    assert index.importing_closure(str(tmp_path / "pkg" / "training.py")) is None
    assert index.importing_closure(str(tmp_path / "pkg" / "caller3.py")) is not None


def test_one_pattern_finds_the_bytes_holding_one_of_the_words() -> None:
    """``_one_of(words)`` (the scan ``_names_one_of`` makes) finds exactly the bytes that hold
    one of ``words``: words holding others (``Adam`` in ``AdamW``), none, bytes with regex
    syntax."""
    from ml_switcheroo.analysis.cross_file import _one_of

    cases = [
        (b"Adam", b"AdamW", b"NAdam", b"SGD", b"optax"),
        (b"AdamW",),
        (),
        (b"x.y", b"(", b"a|b"),
    ]
    samples = [
        b"",
        b"Adam",
        b"AdamW",
        b"NAda",
        b"dam",
        b"xSGDx",
        b"x.y",
        b"xzy",
        b"(",
        b"a|b",
        b"ab",
    ]
    for words in cases:
        for data in samples:
            assert (_one_of(words).search(data) is not None) == any(w in data for w in words)
