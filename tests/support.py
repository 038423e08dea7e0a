"""Shared test helpers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext, CodemodTest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.rewrite.engine import records_of
from ml_switcheroo.rewrite.report import Record

REPO = Path(__file__).resolve().parents[1]


class SwitcherooTest(CodemodTest):
    """CodemodTest that also checks the output is a fixed point (a second run changes nothing)."""

    TRANSFORM = TorchToOptax

    def assertConverts(self, before: str, after: str, **kwargs: Any) -> None:
        self.assertCodemod(before, after, **kwargs)
        self.assertCodemod(after, after, **kwargs)

    def assertUnchanged(self, code: str, **kwargs: Any) -> None:
        self.assertCodemod(code, code, **kwargs)

    def records(self, code: str, **kwargs: Any) -> list[Record]:
        context = CodemodContext(filename="example.py")
        command = self.TRANSFORM(context, **kwargs)
        command.transform_module(cst.parse_module(self.make_fixture_data(code)))
        return records_of(context)


def run_codemod(code: str, command: type = TorchToOptax, **kwargs: Any) -> str:
    """Transform ``code`` with ``command`` and return the new source."""
    context = CodemodContext(filename="example.py")
    return command(context, **kwargs).transform_module(cst.parse_module(code)).code


# a script with a model and an SGD optimizer over its parameters (the NNX step tests' header)
SGD_MODEL = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""


def nnx_output(code: str, header: str = "", **kwargs: Any) -> str:
    """``header`` followed by the dedented ``code``, transformed with ``TorchToNNX``."""
    return run_codemod(header + textwrap.dedent(code), TorchToNNX, **kwargs)


def stock_clip(max_norm: str, params: str = "params", name: str = "max_norm") -> str:
    """The stock translation of ``clip_grad_norm_(..., max_norm)``: torch's formula (the map's
    emit; ``params`` and ``name`` are its lambda's parameters, renamed where the file has
    them; ``max_norm`` is evaluated once, as the default of ``name``)."""
    return (
        f"optax.stateless(lambda updates, {params}, {name}={max_norm}: optax.tree.scale("
        f"jnp.minimum({name} / (optax.tree.norm(updates) + 1e-6), 1.0), updates))"
    )


def code_lines(output: str) -> list[str]:
    """The lines of ``output`` that are code, not comments (an escape hatch's are comments)."""
    return [line for line in output.splitlines() if not line.strip().startswith("#")]


def renders_a_step(output: str) -> bool:
    """Whether ``output`` has code (not a comment) calling ``nnx.value_and_grad``."""
    return any("nnx.value_and_grad(" in line for line in code_lines(output))


def step_escaped_with(code: str, reason: str, header: str = "") -> str:
    """``nnx_output(code, header)``, asserting its step escapes with ``reason`` in the hatch."""
    output = nnx_output(code, header)
    assert not renders_a_step(output) and reason in output, output
    return output


def _records_of_both(source: str, api: str) -> Iterator[tuple[str, list[Record], str]]:
    """``(command name, records of api, output)`` under each command; each output parses and
    a second run leaves it as it is."""
    for command in (TorchToOptax, TorchToNNX):
        context = CodemodContext(filename="case.py")
        output = command(context).transform_module(cst.parse_module(source)).code
        compile(output, "case.py", "exec")
        again = command(CodemodContext(filename="case.py")).transform_module(
            cst.parse_module(output)
        )
        assert again.code == output, f"{command.__name__}: a second run changed the output"
        yield command.__name__, [r for r in records_of(context) if r.api == api], output


def escapes_in_both_targets(source: str, api: str, said: str) -> None:
    """Every construction of ``api`` in ``source`` escapes under both commands, each reason
    saying ``said`` (the shape the freeze, load and gradient-skip tests share)."""
    for name, records, output in _records_of_both(source, api):
        reasons = [r.reason for r in records if r.kind == "escaped"]
        assert reasons and len(reasons) == len(records), (name, output)
        assert all(said in r for r in reasons), (name, reasons, output)


def converts_in_both_targets(source: str, api: str) -> None:
    """Every construction of ``api`` in ``source`` converts under both commands (a trap's
    twin)."""
    for name, records, output in _records_of_both(source, api):
        assert records and {r.kind for r in records} == {"converted"}, (name, output)


def convert_package(root: Path, package: str, command: type) -> dict[str, str]:
    """Every file of ``root/package`` through ``command`` as libcst's runner calls it, by
    file name."""
    outputs = {}
    for path in sorted((root / package).glob("*.py")):
        tree = cst.parse_module(path.read_text(encoding="utf-8"))
        outputs[path.name] = command(CodemodContext(filename=str(path))).transform_module(tree).code
    return outputs


def write_package(root: Path, files: Mapping[str, str], package: str = "pkg") -> Path:
    """``files`` (names relative to the package, folders made) under ``root/package``, a
    package (an empty ``__init__.py`` unless ``files`` gives one); ``root``."""
    for name, text in {"__init__.py": "", **files}.items():
        path = root / package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@contextmanager
def importable(root: Path, *packages: str) -> Iterator[None]:
    """``root`` on ``sys.path`` while the block runs; the modules of ``packages`` (by their
    top name) forgotten afterwards."""
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.split(".")[0] in packages]:
            del sys.modules[name]


def convert_in_process(
    root: Path, command: type = TorchToOptax, order: int = 1
) -> tuple[dict[str, str], list[Record]]:
    """Every file of ``root/pkg`` through ``command`` as libcst's runner calls it (one file per
    call, its real path as the context's filename), in name order (``order=-1``: reversed);
    outputs by name, and the records."""
    outputs: dict[str, str] = {}
    records: list[Record] = []
    for path in sorted((root / "pkg").glob("*.py"))[::order]:
        context = CodemodContext(filename=str(path))
        tree = cst.parse_module(path.read_text(encoding="utf-8"))
        outputs[path.name] = command(context).transform_module(tree).code
        records.extend(records_of(context))
    return outputs, records


def run_libcst_tool(folder: Path, command: str, *arguments: str, jobs: int = 2) -> None:
    """``python -m libcst.tool codemod <command> <arguments> --no-format --hide-progress -j
    <jobs> <folder>`` run from the repository (its ``.libcst.codemod.yaml``), as a user runs
    it; asserts it succeeds."""
    result = subprocess.run(
        [sys.executable, "-m", "libcst.tool", "codemod", command, *arguments]
        + ["--no-format", "--hide-progress", "-j", str(jobs), str(folder)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


GPT_GROUPS = """\
param_dict = {pn: p for pn, p in MODEL.named_parameters()}
param_dict = {pn: p for pn, p in param_dict.items() if p.requires_grad}
decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
optim_groups = [
    {"params": decay_params, "weight_decay": DECAY},
    {"params": nodecay_params, "weight_decay": 0.0},
]
"""


def gpt_groups(model: str, decay: str, indent: str = "") -> str:
    """nanoGPT's decay / no-decay param groups ``optim_groups`` over ``model``'s named
    parameters (split by ``p.dim() >= 2``), the decay group's ``weight_decay`` ``decay``."""
    text = GPT_GROUPS.replace("MODEL", model).replace("DECAY", decay)
    return textwrap.indent(text, indent)
