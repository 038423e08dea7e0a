"""Shared test helpers."""

from __future__ import annotations

from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext, CodemodTest

from ml_switcheroo.codemods.optimizer import TorchToOptax
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
