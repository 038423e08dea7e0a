"""Freezes of another file of the repository reached without a static import of it (probe
s41; each trained the frozen layer, 1.49 relative off torch over 36 NNX updates, before):

- F17: this file imports a module by a computed name (``importlib.import_module(name)``, a
  plugin from a config) and hands it the model: any file of the repository may run;
- F18: another file imports modules by name (a launcher running ``--task train``) after
  freezing the model it hands to this file's code;
- F6: DiT's freezing helper (also called on an EMA copy in its own file) re-exported by a
  package's ``from .helpers import *`` and called through the package
  (``utils.requires_grad(model.hidden, False)``).

Each escapes the optimizer (optax target; both targets share the planner's check); the twins
(no freeze anywhere, or a by-name import in a repository without freezes) still convert."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.differential.harness import translate_package

TRAIN = """\
import torch


def fit(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
"""
PLUGIN_TRAIN = """\
import importlib

import torch

PLUGINS = ["pkg.plugins.freeze_hidden"]


def fit(model, loader):
    for name in PLUGINS:
        importlib.import_module(name).setup(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    for x, y in loader:
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
"""
PLUGIN = "def setup(model):\n    model.hidden.requires_grad_({flag})\n"
LAUNCHER = """\
import importlib

from pkg.freezer import freeze_head

TASK = "pkg.train"


def main(model, loader):
    freeze_head(model)
    importlib.import_module(TASK).fit(model, loader)
"""
FREEZER = "def freeze_head(model):\n    for p in model.hidden.parameters():\n        p.requires_grad = {flag}\n"
HELPERS = """\
import copy


def requires_grad(model, flag=True):
    for p in model.parameters():
        p.requires_grad = flag


def make_ema(model):
    ema = copy.deepcopy(model)
    requires_grad(ema, False)
    ema.eval()
    return None
"""
REEXPORTED_TRAIN = TRAIN.replace("import torch\n", "import torch\n\nimport utils\n").replace(
    "    optimizer =", "    utils.requires_grad(model.hidden, {flag})\n    optimizer =", 1
)
REPOSITORIES = {
    "plugin_by_name": {
        "pkg/train.py": PLUGIN_TRAIN,
        "pkg/plugins/__init__.py": "",
        "pkg/plugins/freeze_hidden.py": PLUGIN,
    },
    "launcher_by_name": {
        "pkg/train.py": TRAIN,
        "pkg/launch.py": LAUNCHER,
        "pkg/freezer.py": FREEZER,
    },
    "star_reexport": {  # the probe's layout: a script beside a top-level package
        "train.py": REEXPORTED_TRAIN,
        "utils/__init__.py": "from .helpers import *\n",
        "utils/helpers.py": HELPERS,
    },
}


def _sgd_escape(tmp_path: Path, files: dict[str, str]) -> str | None:
    train = next(name for name in files if name.endswith("train.py"))
    translation = translate_package(tmp_path, {"pkg/__init__.py": "", **files})[train]
    reasons = [r.reason for r in translation.escapes if r.api == "torch.optim.SGD"]
    return reasons[0] if reasons else None


@pytest.mark.parametrize("name", sorted(REPOSITORIES))
def test_the_freeze_escapes_the_optimizer(tmp_path: Path, name: str) -> None:
    files = {k: v.replace("{flag}", "False") for k, v in REPOSITORIES[name].items()}
    reason = _sgd_escape(tmp_path, files)
    assert reason is not None and "freez" in reason, reason


@pytest.mark.parametrize("name", ["plugin_by_name", "launcher_by_name"])
def test_a_by_name_import_without_freezes_converts(tmp_path: Path, name: str) -> None:
    files = {k: v for k, v in REPOSITORIES[name].items() if "freez" not in k}
    files = {k: v.replace("{flag}", "False") for k, v in files.items()}
    files = {k: v.replace("from pkg.freezer import freeze_head\n", "") for k, v in files.items()}
    files = {k: v.replace("    freeze_head(model)\n", "") for k, v in files.items()}
    assert _sgd_escape(tmp_path, files) is None
