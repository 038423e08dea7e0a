"""One optimizer builder called twice (a GAN trainer: ``opt_g = build(model_g, cfg)``, ``opt_d =
build(model_d, cfg)``), in the callers' file or in another file of the repository (issue 12).

Each call builds its own optimizer; when the builder returns one constructor on every path and
every call's value is bound to a name used only through ``step()``/``zero_grad()``, the one
translation in the builder serves every call (``CrossFile.builder_type``). A use beyond those
at one call (``param_groups``, a scheduler on it, a hand-over) keeps the builder in torch,
escaping with that place named; so does a builder returning ``(opt, sched)``.
"""

from __future__ import annotations

from pathlib import Path

from tests.support import convert_in_process, write_package

BUILD = """\
def build(model, cfg):
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
"""

TRAIN = """\
def train(model_g, model_d, cfg, loader):
    opt_g = build(model_g, cfg)
    opt_d = build(model_d, cfg)
    for x in loader:
        opt_d.zero_grad()
        model_d(x).sum().backward()
        opt_d.step()
        opt_g.zero_grad()
        model_g(x).sum().backward()
        opt_g.step()
"""

SAME_FILE = f"import torch\n\n\n{BUILD}\n\n{TRAIN}"
CALLER = f"import torch\nfrom pkg.optim import build\n\n\n{TRAIN}"
BUILDER_FILE = f"import torch\n\n\n{BUILD}"
BUILT = "return optax.adam(learning_rate=cfg.lr, b1=0.5, b2=0.999)"


def escapes(records: list) -> list[str]:
    return [r.reason for r in records if r.kind == "escaped" and r.api == "torch.optim.Adam"]


def test_a_builder_of_the_file_called_twice_converts(tmp_path: Path) -> None:
    write_package(tmp_path, {"gan.py": SAME_FILE})
    outputs, _ = convert_in_process(tmp_path)
    assert BUILT in outputs["gan.py"]


def test_both_callers_of_the_files_builder_lose_zero_grad(tmp_path: Path) -> None:
    write_package(tmp_path, {"gan.py": SAME_FILE})
    outputs, records = convert_in_process(tmp_path)
    assert "zero_grad" not in outputs["gan.py"]
    assert [r.api for r in records if r.kind == "escaped"] == ["torch.optim.Optimizer.step"] * 2


def test_a_builder_of_another_file_called_twice_converts_in_both_files(tmp_path: Path) -> None:
    write_package(tmp_path, {"optim.py": BUILDER_FILE, "gan.py": CALLER})
    outputs, _ = convert_in_process(tmp_path)
    assert BUILT in outputs["optim.py"]
    assert "zero_grad" not in outputs["gan.py"]


def test_another_file_holding_the_builders_name_changes_nothing(tmp_path: Path) -> None:
    """A word in another file is no call: the builder and its callers agree either way."""
    other = "def build():\n    pass\n"
    write_package(tmp_path, {"gan.py": SAME_FILE, "other.py": other})
    outputs, _ = convert_in_process(tmp_path)
    assert BUILT in outputs["gan.py"] and "zero_grad" not in outputs["gan.py"]


# ---------------------------------------------------------------------- trap twins


def test_one_caller_reading_param_groups_keeps_the_builder_naming_the_line(
    tmp_path: Path,
) -> None:
    code = SAME_FILE.replace(
        "    for x in loader:\n", "    print(opt_d.param_groups[0]['lr'])\n    for x in loader:\n"
    )
    write_package(tmp_path, {"gan.py": code})
    outputs, records = convert_in_process(tmp_path)
    assert "torch.optim.Adam(model.parameters()" in outputs["gan.py"]
    assert "opt_d.zero_grad()" in outputs["gan.py"] and "opt_g.zero_grad()" in outputs["gan.py"]
    assert any("pkg/gan.py:11 uses `opt_d` as a torch object" in r for r in escapes(records))


def test_a_scheduler_on_one_of_them_keeps_the_builder(tmp_path: Path) -> None:
    code = SAME_FILE.replace(
        "    opt_d = build(model_d, cfg)\n",
        "    opt_d = build(model_d, cfg)\n"
        "    sched = torch.optim.lr_scheduler.StepLR(opt_g, step_size=10)\n",
    ).replace("        opt_g.step()\n", "        opt_g.step()\n        sched.step()\n")
    write_package(tmp_path, {"gan.py": code})
    outputs, records = convert_in_process(tmp_path)
    assert "torch.optim.Adam(model.parameters()" in outputs["gan.py"]
    assert "opt_g.zero_grad()" in outputs["gan.py"]
    assert any("pkg/gan.py:11 uses `opt_g` as a torch object" in r for r in escapes(records))


def test_one_caller_handing_its_optimizer_over_keeps_the_builder(tmp_path: Path) -> None:
    code = SAME_FILE.replace(
        "    for x in loader:\n", "    accelerator.prepare(opt_d)\n    for x in loader:\n"
    )
    write_package(tmp_path, {"gan.py": code})
    outputs, _ = convert_in_process(tmp_path)
    assert "torch.optim.Adam(model.parameters()" in outputs["gan.py"]
    assert "opt_d.zero_grad()" in outputs["gan.py"]


def test_a_builder_returning_optimizer_and_scheduler_called_twice_escapes(
    tmp_path: Path,
) -> None:
    code = (
        SAME_FILE.replace(
            "    return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.5, 0.999))\n",
            "    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)\n"
            "    return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=10)\n",
        )
        .replace("opt_g = build(model_g, cfg)", "opt_g, sched_g = build(model_g, cfg)")
        .replace("opt_d = build(model_d, cfg)", "opt_d, sched_d = build(model_d, cfg)")
    )
    write_package(tmp_path, {"gan.py": code})
    outputs, _ = convert_in_process(tmp_path)
    assert "ESCAPE-BEGIN torch.optim.Adam, torch.optim.lr_scheduler.StepLR" in outputs["gan.py"]
    assert "opt_d.zero_grad()" in outputs["gan.py"] and "opt_g.zero_grad()" in outputs["gan.py"]


def test_a_builder_returning_two_optimizers_by_argument_escapes_naming_the_return(
    tmp_path: Path,
) -> None:
    code = SAME_FILE.replace(
        "    return torch.optim.Adam(",
        "    if cfg.sgd:\n        return torch.optim.SGD(model.parameters(), lr=cfg.lr)\n"
        "    return torch.optim.Adam(",
    )
    write_package(tmp_path, {"gan.py": code})
    outputs, records = convert_in_process(tmp_path)
    assert "opt_d.zero_grad()" in outputs["gan.py"]
    assert any("pkg/gan.py:7 returns `torch.optim.Adam(...)`" in r for r in escapes(records))


def test_a_decorated_builder_called_twice_escapes(tmp_path: Path) -> None:
    code = SAME_FILE.replace("def build(", "@functools.cache\ndef build(").replace(
        "import torch\n", "import functools\nimport torch\n"
    )
    write_package(tmp_path, {"gan.py": code})
    outputs, records = convert_in_process(tmp_path)
    assert "opt_d.zero_grad()" in outputs["gan.py"]
    assert any("`build` is decorated or yields" in r for r in escapes(records))
