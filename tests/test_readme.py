"""The README's headline example is real output of the codemod."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import run_codemod

README = Path(__file__).resolve().parents[1] / "README.md"


def test_headline_before_and_after_are_real() -> None:
    text = README.read_text(encoding="utf-8")
    before = re.search(r"```python\n# before\n(.*?)```", text, re.DOTALL)
    after = re.search(r"```python\n# after: [^\n]*\n(.*?)```", text, re.DOTALL)
    assert before and after
    assert run_codemod(before.group(1)) == after.group(1)
