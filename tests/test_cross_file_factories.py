"""A scheduler factory of another file of the repository (issue 12): ``from pkg.sched import
build_scheduler`` with ``def build_scheduler(optimizer, total): return StepLR(optimizer, ...)``.

The caller's ``scheduler = build_scheduler(optimizer, 300)`` stands for the factory's scheduler
call with the caller's arguments in the parameters' places, and folds as a scheduler built in
the caller's block (the schedule's statement moves before the optimizer). The factory's file
is not changed beyond its own escape (its torch scheduler stays for callers that do not fold),
so each file's output depends only on the other's original ``ast`` (the same whichever file
libcst's runner writes first). Trap twins escape naming the place that decided.
"""

from __future__ import annotations

import ast
from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext

from ml_switcheroo import convert
from ml_switcheroo.codemods.optimizer import TorchToOptax
from tests.support import convert_in_process, run_libcst_tool, write_package
from tests.test_convert_cli import tree
from tests.test_second_stage import _changed_files

SCHED = """\
import torch


def build_scheduler(optimizer, total):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=total // 3)
"""

TRAIN = """\
import torch
from pkg.sched import build_scheduler


def fit(model, loader):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = build_scheduler(optimizer, 300)
    for x in loader:
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
        scheduler.step()
"""

TRAIN_AFTER = """\
from pkg.sched import build_scheduler
import optax


def fit(model, loader):
    scheduler = optax.exponential_decay(1e-3, transition_steps=300 // 3, decay_rate=0.1, staircase=True)
    optimizer = optax.adam(learning_rate=scheduler)
    for x in loader:
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
        model(x).sum().backward()
        optimizer.step()
        # ml_switcheroo: ESCAPE-END
"""

SCHEDULER = "torch.optim.lr_scheduler.StepLR"


def converted(tmp_path: Path, **files: str) -> tuple[dict[str, str], list[str]]:
    """Outputs of ``pkg`` (``sched.py`` and ``train.py`` unless replaced) and the escape
    reasons of everything but ``Optimizer.step``."""
    write_package(tmp_path, {"sched.py": SCHED, "train.py": TRAIN, **files})
    outputs, records = convert_in_process(tmp_path)
    reasons = [r.reason for r in records if r.kind == "escaped" and r.api == SCHEDULER]
    return outputs, reasons


def folded(outputs: dict[str, str]) -> bool:
    return "optax.adam(learning_rate=scheduler)" in outputs["train.py"]


# ---------------------------------------------------------------------- the shape converts


def test_the_callers_call_becomes_the_factorys_schedule_with_the_passed_values(
    tmp_path: Path,
) -> None:
    outputs, _ = converted(tmp_path)
    assert outputs["train.py"] == TRAIN_AFTER


def test_the_factorys_file_keeps_its_torch_scheduler(tmp_path: Path) -> None:
    outputs, _ = converted(tmp_path)
    assert ast.dump(ast.parse(outputs["sched.py"])) == ast.dump(ast.parse(SCHED))


def test_the_caller_converted_after_the_factory_was_written_is_the_same(tmp_path: Path) -> None:
    first, _ = converted(tmp_path / "first")
    outputs, _ = converted(tmp_path / "second", **{"sched.py": first["sched.py"]})
    assert outputs["train.py"] == TRAIN_AFTER


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    first, _ = converted(tmp_path / "first")
    again, _ = converted(tmp_path / "second", **first)
    assert again["train.py"] == first["train.py"] and again["sched.py"] == first["sched.py"]


def test_libcst_tool_writes_the_same_as_in_process(tmp_path: Path) -> None:
    expected, _ = converted(tmp_path / "expected")
    write_package(tmp_path / "tool", {"sched.py": SCHED, "train.py": TRAIN})
    run_libcst_tool(tmp_path / "tool", "optimizer.TorchToOptax")
    for name in ("sched.py", "train.py"):
        assert (tmp_path / "tool" / "pkg" / name).read_text(encoding="utf-8") == expected[name]


@pytest.mark.parametrize("cached", [False, True], ids=["no_cache", "cache"])
def test_convert_in_place_writes_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    write_package(tmp_path, {"sched.py": SCHED, "train.py": TRAIN})
    monkeypatch.chdir(tmp_path)
    cache_args = ["--cache", str(tmp_path / "cache")] if cached else ["--no-cache"]
    assert convert.main(["-j", "1", "-i", "-q", *cache_args, "pkg"]) == 0
    assert (tmp_path / "pkg" / "train.py").read_text(encoding="utf-8") == TRAIN_AFTER


def test_the_cache_sees_a_change_of_the_factorys_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train.py`` unchanged, ``sched.py`` changed: the cached output of ``train.py`` is not
    reused (its dependency digest covers the factory's file)."""
    write_package(tmp_path, {"sched.py": SCHED, "train.py": TRAIN})
    monkeypatch.chdir(tmp_path)
    cache_args = ["--cache", str(tmp_path / "cache")]
    assert convert.main(["-j", "1", "-q", *cache_args, "pkg"]) == 0
    changed = SCHED.replace("step_size=total // 3", "step_size=total // 5")
    (tmp_path / "pkg" / "sched.py").write_text(changed, encoding="utf-8")
    assert convert.main(["-j", "1", "-i", "-q", *cache_args, "pkg"]) == 0
    assert "transition_steps=300 // 5" in (tmp_path / "pkg" / "train.py").read_text("utf-8")


# ---------------------------------------------------------------------- trap twins


PER_EPOCH = TRAIN.replace("    for x in loader:\n", "    for epoch in range(3):\n").replace(
    "        optimizer.zero_grad()\n        model(x).sum().backward()\n"
    "        optimizer.step()\n        scheduler.step()\n",
    "        for x in loader:\n            optimizer.zero_grad()\n"
    "            model(x).sum().backward()\n            optimizer.step()\n"
    "        scheduler.step()\n",
)


def test_a_caller_stepping_per_epoch_escapes_naming_its_step(tmp_path: Path) -> None:
    outputs, reasons = converted(tmp_path, **{"train.py": PER_EPOCH})
    assert not folded(outputs)
    assert any("once per epoch (train.py:13" in reason for reason in reasons), reasons


def test_a_factory_touching_param_groups_keeps_the_hand_over_naming_it(tmp_path: Path) -> None:
    sched = SCHED.replace("    return", "    optimizer.param_groups[0]['lr'] = 0.1\n    return")
    outputs, _ = converted(tmp_path, **{"sched.py": sched})
    assert not folded(outputs)
    assert "ESCAPE-BEGIN torch.optim.Adam" in outputs["train.py"]
    assert "pkg/sched.py:6 uses `optimizer` as a torch object" in outputs["train.py"]


def test_a_factory_reading_a_global_of_its_file_keeps_the_hand_over(tmp_path: Path) -> None:
    sched = SCHED.replace("total // 3", "total // DIV").replace("\n\ndef", "\nDIV = 3\n\ndef")
    outputs, _ = converted(tmp_path, **{"sched.py": sched})
    assert not folded(outputs)
    assert "ESCAPE-BEGIN torch.optim.Adam" in outputs["train.py"]
    assert "pkg/sched.py:6 uses `optimizer` as a torch object" in outputs["train.py"]


def test_a_factory_imported_under_two_names_escapes_naming_the_file(tmp_path: Path) -> None:
    train = TRAIN.replace(
        "from pkg.sched import build_scheduler",
        "from pkg.sched import build_scheduler\nfrom pkg.sched import build_scheduler as bs",
    )
    outputs, reasons = converted(tmp_path, **{"train.py": train})
    assert not folded(outputs)
    assert any("pkg/train.py:3 imports `build_scheduler` under two names" in r for r in reasons)


def test_a_star_import_of_the_factory_is_not_followed(tmp_path: Path) -> None:
    train = TRAIN.replace("from pkg.sched import build_scheduler", "from pkg.sched import *")
    outputs, _ = converted(tmp_path, **{"train.py": train})
    assert not folded(outputs)
    assert "ESCAPE-BEGIN torch.optim.Adam" in outputs["train.py"]


def test_a_file_calling_the_factory_that_fails_to_parse_escapes_naming_it(
    tmp_path: Path,
) -> None:
    write_package(tmp_path, {"sched.py": SCHED, "train.py": TRAIN})
    broken = tmp_path / "pkg" / "broken.txt"
    broken.write_text("from pkg.sched import build_scheduler\nbuild_scheduler(\n", "utf-8")
    broken.rename(tmp_path / "pkg" / "zz_broken.py")
    (tmp_path / "pkg" / "zz_broken.py").rename(tmp_path / "zz_broken.py")
    outputs, records = convert_in_process(tmp_path)
    reasons = [r.reason for r in records if r.kind == "escaped" and r.api == SCHEDULER]
    assert not folded(outputs)
    assert any("zz_broken.py:2 fails to parse" in r for r in reasons), reasons


def test_another_file_stepping_conditionally_escapes_there_only(tmp_path: Path) -> None:
    other = TRAIN.replace("def fit", "def fit2").replace(
        "        scheduler.step()\n", "        if x > 3:\n            scheduler.step()\n"
    )
    outputs, reasons = converted(tmp_path, **{"other.py": other})
    assert folded(outputs) and "scheduler = build_scheduler" in outputs["other.py"]
    assert any("this one is at other.py:13 in fit2()" in r for r in reasons), reasons


def test_another_file_passing_lbfgs_keeps_its_torch_call(tmp_path: Path) -> None:
    other = TRAIN.replace(
        "torch.optim.Adam(model.parameters(), lr=1e-3)", "torch.optim.LBFGS(model.parameters())"
    )
    outputs, _ = converted(tmp_path, **{"other.py": other})
    assert folded(outputs)
    assert "scheduler = build_scheduler(optimizer, 300)" in outputs["other.py"]
    assert "torch.optim.LBFGS(model.parameters())" in outputs["other.py"]


def test_a_builtin_the_caller_rebinds_escapes(tmp_path: Path) -> None:
    sched = SCHED.replace("step_size=total // 3", "step_size=max(1, total // 3)")
    train = TRAIN.replace("def fit(model, loader):", "def fit(model, loader, max=None):")
    outputs, reasons = converted(tmp_path, **{"sched.py": sched, "train.py": train})
    assert not folded(outputs)
    assert any("`max` means another value" in r for r in reasons), reasons


def test_an_argument_that_calls_a_function_escapes(tmp_path: Path) -> None:
    train = TRAIN.replace("build_scheduler(optimizer, 300)", "build_scheduler(optimizer, f())")
    outputs, reasons = converted(tmp_path, **{"train.py": train})
    assert not folded(outputs)
    assert any("call functions" in r for r in reasons), reasons


def test_a_same_named_function_of_the_callers_file_is_not_the_factory(tmp_path: Path) -> None:
    train = TRAIN.replace("from pkg.sched import build_scheduler\n", "") + (
        "\n\ndef build_scheduler(optimizer, total):\n    return None\n"
    )
    outputs, _ = converted(tmp_path, **{"train.py": train})
    assert not folded(outputs)


# ---------------------------------------------------------------------- stepping of the caller


def convert_train(tmp_path: Path, train: str, **options: str) -> str:
    """``train.py`` converted with ``options`` (``steps_per_epoch``) next to ``SCHED`` (or
    the package already written there)."""
    if not (tmp_path / "pkg").exists():
        write_package(tmp_path, {"sched.py": SCHED, "train.py": train})
    path = tmp_path / "pkg" / "train.py"
    command = TorchToOptax(CodemodContext(filename=str(path)), **options)
    return command.transform_module(cst.parse_module(train)).code


def test_a_caller_stepping_every_k_updates_gets_the_schedule_of_count_over_k(
    tmp_path: Path,
) -> None:
    train = TRAIN.replace("    for x in loader:\n", "    for i, x in enumerate(loader):\n").replace(
        "        scheduler.step()\n", "        if (i + 1) % 4 == 0:\n            scheduler.step()\n"
    )
    out = convert_train(tmp_path, train)
    assert (
        "    scheduler = lambda count: (optax.exponential_decay(1e-3, transition_steps=300 // 3, "
        "decay_rate=0.1, staircase=True))(count // 4)\n"
        "    optimizer = optax.adam(learning_rate=scheduler)\n"
    ) in out


def test_a_caller_stepping_per_epoch_converts_with_steps_per_epoch(tmp_path: Path) -> None:
    out = convert_train(tmp_path, PER_EPOCH, steps_per_epoch="len(loader)")
    assert "(count // steps_per_epoch))(len(loader))\n" in out
    assert "optimizer = optax.adam(learning_rate=scheduler)" in out


# ---------------------------------------------------------------------- pre-filter soundness

HANDS_A_PARAMETER = """\
from pkg.sched import build_scheduler


def make(opt):
    return build_scheduler(opt, 100)
"""

PREFILTER_REPOSITORIES = {
    "factory-folded": {"sched.py": SCHED, "train.py": TRAIN},
    "factory-given-a-parameter-without-torch": {"sched.py": SCHED, "make.py": HANDS_A_PARAMETER},
    "factory-given-a-parameter-with-torch": {
        "sched.py": SCHED,
        "make.py": "import torch\n" + HANDS_A_PARAMETER,
    },
    "builder-called-twice": {
        "gan.py": "import torch\n\n\ndef build(model):\n"
        "    return torch.optim.SGD(model.parameters(), lr=0.1)\n\n\n"
        "def train(g, d):\n    opt_g = build(g)\n    opt_d = build(d)\n"
        "    opt_g.zero_grad()\n    opt_d.zero_grad()\n"
    },
}


@pytest.mark.parametrize("name", sorted(PREFILTER_REPOSITORIES))
def test_the_pre_filter_stages_change_the_same_files_as_no_prefilter(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"__init__.py": "", **PREFILTER_REPOSITORIES[name]}
    tree(tmp_path, {f"pkg/{n}": t for n, t in files.items()})
    with_stages = _changed_files(tmp_path, capsys)
    assert with_stages == _changed_files(tmp_path, capsys, "--no-prefilter")


def test_a_factory_whose_file_fails_to_parse_keeps_the_hand_over_naming_it(
    tmp_path: Path,
) -> None:
    write_package(tmp_path, {"sched.py": SCHED + "\ndef broken(:\n", "train.py": TRAIN})
    out = convert_train(tmp_path, TRAIN)
    assert "optimizer = optax.adam(learning_rate=scheduler)" not in out
    assert "ESCAPE-BEGIN torch.optim.Adam" in out and "pkg/sched.py:7 fails to parse" in out


def test_a_factory_binding_its_scheduler_to_a_name_before_returning_it_folds(
    tmp_path: Path,
) -> None:
    sched = SCHED.replace(
        "    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=total // 3)\n",
        '    """The run\'s schedule."""\n'
        "    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=total // 3)\n"
        "    return scheduler\n",
    )
    outputs, _ = converted(tmp_path, **{"sched.py": sched})
    assert outputs["train.py"] == TRAIN_AFTER


def test_a_factory_returning_another_name_than_its_scheduler_is_not_followed(
    tmp_path: Path,
) -> None:
    sched = SCHED.replace(
        "    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=total // 3)\n",
        "    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=total // 3)\n"
        "    return optimizer\n",
    )
    outputs, _ = converted(tmp_path, **{"sched.py": sched})
    assert not folded(outputs)
    assert "ESCAPE-BEGIN torch.optim.Adam" in outputs["train.py"]


def test_the_factorys_escape_names_the_calls_of_other_files(tmp_path: Path) -> None:
    outputs, _ = converted(tmp_path)
    assert (
        "a parameter of build_scheduler() (sched.py:4), called from other files "
        "(pkg/train.py:7), where the call is translated in place of this scheduler"
    ) in outputs["sched.py"]


def test_a_factory_no_file_calls_escapes_saying_so(tmp_path: Path) -> None:
    """An exported factory (diffusers' ``get_constant_schedule``): its callers, and the
    optimizer they pass, are outside the repository."""
    write_package(tmp_path, {"sched.py": SCHED})
    _, records = convert_in_process(tmp_path)
    [escape] = [r for r in records if r.api.endswith("StepLR")]
    assert "which no file of this repository calls" in escape.reason, escape.reason


def test_a_factory_another_file_calls_does_not_say_no_file_calls_it(tmp_path: Path) -> None:
    _, reasons = converted(tmp_path)
    assert reasons and not any("no file of this repository" in r for r in reasons), reasons


def test_a_scheduler_built_on_a_lambdas_parameter_names_the_lambda(tmp_path: Path) -> None:
    """torch's ``OptimizerInfo.__init__(scheduler_inputs=([lambda opt: StepLR(opt, ...)],))``:
    ``opt`` is the lambda's parameter, not ``__init__``'s, and no note about who calls
    ``__init__`` (which once read every file naming ``__init__``)."""
    source = (
        "import torch\n\n\nclass Info:\n"
        "    def __init__(self, make=(lambda opt: torch.optim.lr_scheduler.StepLR(opt, 10),)):\n"
        "        self.make = make\n"
    )
    write_package(
        tmp_path, {"info.py": source, "other.py": "class A:\n    def __init__(self): pass\n"}
    )
    _, records = convert_in_process(tmp_path)
    [escape] = [r for r in records if r.api.endswith("StepLR")]
    assert "`opt` is a parameter of a lambda (info.py:5)" in escape.reason, escape.reason
    assert "no file of this repository" not in escape.reason


def test_a_method_building_a_scheduler_gets_no_note_about_module_level_calls(
    tmp_path: Path,
) -> None:
    """Calls of a method are not calls of a module-level function: the note that no file calls
    it (``calls_of`` follows module-level functions only) would be wrong."""
    source = (
        "import torch\n\n\nclass Trainer:\n"
        "    def build(self, optimizer):\n"
        "        return torch.optim.lr_scheduler.StepLR(optimizer, 10)\n"
    )
    write_package(tmp_path, {"trainer.py": source})
    _, records = convert_in_process(tmp_path)
    [escape] = [r for r in records if r.api.endswith("StepLR")]
    assert "a parameter of build() (trainer.py:5)" in escape.reason, escape.reason
    assert "no file of this repository" not in escape.reason


def test_counting_calls_keeps_no_tree_of_the_files_it_reads(tmp_path: Path) -> None:
    """``calls_of`` reads every file holding the function's name; it keeps none of their
    trees (torch's sources: 844 files held at once, 1.8 GB)."""
    from ml_switcheroo.analysis.repository import calls_of, index_for

    write_package(tmp_path, {"sched.py": SCHED, "train.py": TRAIN})
    index = index_for(str(tmp_path))
    assert calls_of(index, "pkg.sched", "build_scheduler") == 1
    assert not index._facts, sorted(index._facts)
