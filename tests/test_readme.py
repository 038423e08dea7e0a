"""The README's examples are real: the headline is the codemod's output, the user map loads."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX
from ml_switcheroo.spec.errors import SemanticMapError
from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.support import run_codemod

README = Path(__file__).resolve().parents[1] / "README.md"


def test_headline_before_and_after_are_real() -> None:
    text = README.read_text(encoding="utf-8")
    before = re.search(r"```python\n# before\n(.*?)```", text, re.DOTALL)
    after = re.search(r"```python\n# after: [^\n]*\n(.*?)```", text, re.DOTALL)
    assert before and after
    assert run_codemod(before.group(1)) == after.group(1)


def _readme_user_map() -> str:
    found = re.search(r"```yaml\n(# my_map\.yaml\n.*?)```", README.read_text("utf-8"), re.DOTALL)
    assert found, "the README shows a complete user map"
    return found.group(1)


def test_the_readme_user_map_is_a_complete_file_that_converts(tmp_path: Path) -> None:
    path = tmp_path / "my_map.yaml"
    path.write_text(_readme_user_map(), encoding="utf-8")
    source = (
        "from mylib.optim import Lion\n\n"
        "opt = Lion(model.parameters(), lr=3e-4, betas=(0.95, 0.98), weight_decay=0.1)\n"
    )
    out = run_codemod(source, semantic_map=[str(path)])
    assert "opt = optax.lion(learning_rate=3e-4, b1=0.95, b2=0.98, weight_decay=0.1)" in out


def test_the_readme_user_map_entry_alone_is_refused_with_where_it_goes(tmp_path: Path) -> None:
    entry = _readme_user_map().split("apis:\n", 1)[1]
    path = tmp_path / "entry_only.yaml"
    path.write_text(textwrap.dedent(entry), encoding="utf-8")
    with pytest.raises(SemanticMapError) as error:
        load_semantic_map([str(path)])
    assert "an API entry goes under 'apis:'" in str(error.value)


def test_the_nnx_before_and_after_are_real() -> None:
    text = README.read_text(encoding="utf-8")
    before = re.search(r"```python\n# before \(NNX\)\n(.*?)```", text, re.DOTALL)
    after = re.search(
        r"```python\n# after: ml-switcheroo convert --target nnx\n(.*?)```", text, re.DOTALL
    )
    assert before and after
    assert run_codemod(before.group(1), TorchToNNX) == after.group(1)


def test_the_readme_user_map_optimizer_takes_a_schedule(tmp_path: Path) -> None:
    path = tmp_path / "my_map.yaml"
    path.write_text(_readme_user_map(), encoding="utf-8")
    source = (
        "import torch\nfrom mylib.optim import Lion\n\n"
        "opt = Lion(model.parameters(), lr=3e-4)\n"
        "sched = torch.optim.lr_scheduler.StepLR(opt, 10)\n"
        "for b in loader:\n    opt.zero_grad()\n    model(b).backward()\n    opt.step()\n"
        "    sched.step()\n"
    )
    out = run_codemod(source, semantic_map=[str(path)])
    assert "optax.lion(learning_rate=sched, weight_decay=0.0)" in out
    assert "StepLR" not in out


def test_a_user_optimizer_without_learning_rate_names_the_missing_key(tmp_path: Path) -> None:
    path = tmp_path / "my_map.yaml"
    path.write_text(_readme_user_map().replace("    learning_rate: lr", "    # no lr"), "utf-8")
    source = (
        "import torch\nfrom mylib.optim import Lion\n\n"
        "opt = Lion(model.parameters(), lr=3e-4)\n"
        "sched = torch.optim.lr_scheduler.StepLR(opt, 10)\n"
        "for b in loader:\n    model(b).backward()\n    opt.step()\n    sched.step()\n"
    )
    out = run_codemod(source, semantic_map=[str(path)])
    assert "its entry names no `learning_rate:` argument" in out
