"""The byte pre-filter: what it derives from the map, and that it never drops a file the codemod
would change (on the project's examples, on every code sample of the test suite, and on
generated modules)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libcst.codemod import CodemodContext
from libcst.codemod import transform_module as libcst_transform_module

from ml_switcheroo.analysis.prefilter import Prefilter, prefilter_for
from ml_switcheroo.codemods.optimizer import (
    OptimizerInit,
    OptimizerStep,
    StripZeroGrad,
    TorchToOptax,
)
from ml_switcheroo.rewrite.engine import SwitcherooCommand
from ml_switcheroo.spec import roles
from ml_switcheroo.targets.catalogue import load_semantic_map

REPO = Path(__file__).resolve().parent.parent
COMMANDS: tuple[type[SwitcherooCommand], ...] = (
    TorchToOptax,
    OptimizerInit,
    OptimizerStep,
    StripZeroGrad,
)
LION_MAP = """\
apis:
  mylib.optim.Lion:
    hook: optimizer_constructor
    returns: torch.optim.Optimizer
    signature: "params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0"
    chain:
      - {unless: {weight_decay: 0}, unknown_ok: [weight_decay], emit: "optax.add_decayed_weights({weight_decay})"}
      - {emit: "optax.lion(learning_rate={lr}, b1={betas[0]}, b2={betas[1]})"}
"""


def shipped() -> Prefilter:
    return prefilter_for(load_semantic_map())


def convert(code: str, command: type[SwitcherooCommand] = TorchToOptax, **options: object) -> str:
    """The command's output with the pre-filter switched off (the full analysis)."""
    context = CodemodContext(filename="example.py")
    tree = cst.parse_module(code)
    return command(context, prefilter=False, **options).transform_module(tree).code  # type: ignore[arg-type]


# --------------------------------------------------------------------------- derivation


def test_sets_are_derived_from_the_shipped_map() -> None:
    semantic_map = load_semantic_map()
    prefilter = shipped()
    assert "torch" in prefilter.roots
    assert {"Adam", "AdamW", "SGD"} <= prefilter.names
    assert {"step", "zero_grad"} <= prefilter.methods
    calls = {name for name, entry in semantic_map.apis.items() if not entry.method}
    types = {name for name in calls if semantic_map.apis[name].role == roles.TYPE}
    assert types, "GradScaler: a type entry, which changes nothing by itself"
    assert prefilter.calls == calls - types
    assert prefilter.methods == {e.method for e in semantic_map.apis.values() if e.method}


def test_a_user_map_extends_roots_and_names(tmp_path: Path) -> None:
    path = tmp_path / "lion.yaml"
    path.write_text(LION_MAP, encoding="utf-8")
    prefilter = prefilter_for(load_semantic_map([path]))
    assert "mylib" in prefilter.roots and "Lion" in prefilter.names
    code = "from mylib.optim import Lion\nopt = Lion(params, lr=3e-4)\n"
    assert not shipped().matches(code.encode())
    assert prefilter.matches(code.encode())
    # ... and the codemod does change that file (so dropping it would have been wrong)
    assert "optax.lion" in convert(code, semantic_map=[str(path)])
    context = CodemodContext(filename="example.py")
    command = TorchToOptax(context, semantic_map=[str(path)])
    assert "optax.lion" in command.transform_module(cst.parse_module(code)).code


def test_single_commands_get_their_own_filter() -> None:
    semantic_map = load_semantic_map()
    only_zero_grad = prefilter_for(semantic_map, StripZeroGrad.HOOKS)
    assert only_zero_grad.methods == {"zero_grad"} and not only_zero_grad.calls
    constructor = b"import torch\nopt = torch.optim.Adam(m.parameters())\n"
    assert prefilter_for(semantic_map, OptimizerInit.HOOKS).matches(constructor)
    assert not only_zero_grad.matches(constructor)


# --------------------------------------------------------------------------- byte rules


@pytest.mark.parametrize(
    "code",
    [
        "import torch\nopt = torch.optim.Adam(p)\n",
        "from torch.optim import SGD as S\nS(p, 0.1)\n",
        "import torch.optim as O\nO.AdamW(p)\n",
        "import torch\ndef f(opt):\n    opt.step()\n",
        "import torch\nopt . zero_grad ()\n",
        "import torch\n(opt.\n   step)()\n",
        "import torch\n(opt.  # the optimizer\n   step)()\n",
        "import torch\nopt.\\\n  step()\n",
        "\ufeffimport torch\r\nopt = torch.optim.SGD(p)\r\n",
    ],
)
def test_kept(code: str) -> None:
    assert shipped().matches(code.encode("utf-8"))


@pytest.mark.parametrize(
    "code",
    [
        "import numpy as np\nx = np.zeros(3)\n",
        "import torch\nx = torch.zeros(3)\n",  # torch, but no wired API
        "import torch\nstep = 1\nfor step in range(3):\n    pass\n",  # `step`, not `.step`
        "import torch\nenv.steps()\nopt.step_size = 1\n",  # other attributes
        "import torchvision\nopt = torchvision.optim.Adam(p)\n",  # not the word `torch`
        "from keras.optimizers import Adam\nopt = Adam()\nopt.step()\n",  # no torch at all
        "import torch\nfrom mylib import Adam\nAdam(p)\n",  # no `optim`: not torch.optim.Adam
    ],
)
def test_dropped(code: str) -> None:
    assert not shipped().matches(code.encode("utf-8"))
    assert convert(code) == code


def test_encodings_that_may_hide_names_are_kept() -> None:
    prefilter = shipped()
    hidden = "import torch\nopt = torch.optim.Adam(p)\n"
    assert prefilter.matches(hidden.encode("utf-16"))  # with its byte-order mark
    assert prefilter.matches(b"# -*- coding: utf-7 -*-\nimport t+AG8-rch\n")
    assert prefilter.matches(b"# coding: no-such-codec\nx = 1\n")  # reported as failing later
    assert not prefilter.matches(b"# -*- coding: latin-1 -*-\nx = 'caf\xe9'\n")
    assert not prefilter.matches(b"# vim: set fileencoding=cp1252 :\nx = 1\n")


# --------------------------------------------------------------------------- in the command


def test_the_command_returns_a_filtered_tree_untouched() -> None:
    tree = cst.parse_module("import os\nprint(os.getcwd())\n")
    context = CodemodContext(filename="example.py")
    assert TorchToOptax(context).transform_module(tree) is tree
    assert context.wrapper is None


def test_libcst_runner_path_matches_the_copying_path() -> None:
    """libcst.codemod.transform_module (a fresh tree: no deep copy) gives the same output."""
    for path in sorted((REPO / "examples").glob("*.py")):
        code = path.read_text(encoding="utf-8")
        fresh = libcst_transform_module(TorchToOptax(CodemodContext(filename=str(path))), code)
        copied = TorchToOptax(CodemodContext(filename=str(path))).transform_module(
            cst.parse_module(code)
        )
        assert getattr(fresh, "code", None) == copied.code, path


# --------------------------------------------------------------------------- soundness


def _project_files() -> list[Path]:
    roots = [REPO / "examples", REPO / "tests" / "fixtures"]
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*.py"))


def _test_samples() -> list[str]:
    """Every string in the codemod and differential tests that parses as a module and
    mentions torch: the inputs and expected outputs of the whole suite."""
    samples = set()
    for folder in ("codemods", "differential"):
        for path in sorted((REPO / "tests" / folder).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = textwrap.dedent(node.value)
                    if "torch" in text and "\n" in text:
                        try:
                            cst.parse_module(text)
                        except Exception:
                            continue
                        samples.add(text)
    return sorted(samples)


def test_examples_and_fixtures_every_changed_file_passes() -> None:
    files = _project_files()
    assert files
    for path in files:
        code = path.read_text(encoding="utf-8")
        for command in COMMANDS:
            if convert(code, command) != code:
                assert prefilter_for(load_semantic_map(), command.HOOKS).matches(
                    path.read_bytes()
                ), (path, command.__name__)


def test_test_suite_samples_every_changed_sample_passes() -> None:
    samples = _test_samples()
    assert len(samples) > 20
    filters = {c: prefilter_for(load_semantic_map(), c.HOOKS) for c in COMMANDS}
    dropped = 0
    for code in samples:
        data = code.encode("utf-8")
        for command in COMMANDS:
            if not filters[command].matches(data):
                assert convert(code, command) == code, (command.__name__, code)
                dropped += 1
        if not filters[TorchToOptax].matches(data):
            assert convert(code, TorchToOptax, exact=True) == code, code
    assert dropped  # the filter did rule samples out


_IMPORTS = [
    "import torch",
    "import torch.optim as optim",
    "from torch import optim",
    "from torch.optim import Adam, SGD",
    "from torch.optim import AdamW as W",
    "import numpy as np",
    "",
]
_LINES = [
    "opt = torch.optim.Adam(model.parameters(), lr=1e-3)",
    "opt = optim.SGD(model.parameters(), 0.1, momentum=0.9)",
    "opt = Adam(params)",
    "opt = W(params, weight_decay=0.1)",
    "opt = SGD(params, lr=0.1, dampening=0.5, momentum=0.9)",
    "opt.zero_grad()",
    "opt.step()",
    "loss.backward()",
    "optimizer.step()",
    "env.step()",
    "step = 3",
    "model.zero_grad()",
    "x = np.zeros(3)",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    imports=st.lists(st.sampled_from(_IMPORTS), max_size=3),
    body=st.lists(st.sampled_from(_LINES), min_size=1, max_size=5),
    in_function=st.booleans(),
)
def test_generated_modules_every_changed_module_passes(
    imports: list[str], body: list[str], in_function: bool
) -> None:
    if in_function:
        lines = ["def train(model, params, optimizer, loss, env):", *("    " + b for b in body)]
    else:
        lines = body
    code = "\n".join([*imports, *lines]) + "\n"
    if convert(code) != code:
        assert shipped().matches(code.encode("utf-8")), code


@pytest.mark.parametrize(
    "code",
    [
        "from transformers import get_linear_schedule_with_warmup\n"
        "sched = get_linear_schedule_with_warmup(opt, 10, 100)\n",
        "from transformers.optimization import get_cosine_schedule_with_warmup as g\n"
        "sched = g(opt, 10, 100)\n",
        "import transformers\nsched = transformers.optimization.get_wsd_schedule(opt, 1, 2, 3)\n",
    ],
)
def test_files_using_only_transformers_schedule_factories_are_kept(code: str) -> None:
    assert shipped().matches(code.encode("utf-8"))
