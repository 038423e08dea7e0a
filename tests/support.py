"""Shared test helpers."""

from __future__ import annotations

import textwrap
from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext, CodemodTest

from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from ml_switcheroo.rewrite.engine import records_of
from ml_switcheroo.rewrite.report import Record


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
