"""A function of the file given a value of the NNX loss function after the step (probe s34:
``log_stats(output)`` whose body calls ``out.std()``): on a JAX array the map's
``array_namesakes`` compute other numbers, silently, so the step escapes naming the call."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml_switcheroo.codemods.optimizer import TorchToNNX
from tests.support import convert_package, run_codemod, write_package

SOURCE = """\
import torch
import torch.nn as nn

model = nn.Linear(3, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    output = model(x)
    loss = nn.functional.cross_entropy(output, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    {after}


def log_stats(out):
    {body}


def spread(t):
    return t.std()
"""


def convert(after: str, body: str) -> str:
    return run_codemod(SOURCE.format(after=after, body=body), TorchToNNX)


def converted(output: str) -> bool:
    code = [line for line in output.splitlines() if not line.lstrip().startswith("#")]
    return any("nnx.value_and_grad" in line for line in code)


@pytest.mark.parametrize(
    ("after", "body", "shown"),
    [
        ("log_stats(output)", "print(out.std())", "`out.std()`"),
        ("log_stats(output)", "print(out.var(0))", "`out.var(0)`"),
        ("log_stats(output)", "return spread(out)", "`t.std()`"),  # through another function
        ("log_stats(output.sum(1))", "print(out.std())", "`out.std()`"),
        ("log_stats(x)", "print(out.std())", "`out.std()`"),  # the batch is a JAX array too
    ],
)
def test_a_file_function_computing_other_numbers_on_an_array_escapes(
    after: str, body: str, shown: str
) -> None:
    output = convert(after, body)
    assert not converted(output), output
    assert "gives it to `log_stats` of this file" in output and shown in output, output


@pytest.mark.parametrize(
    ("after", "body"),
    [
        ("log_stats(output)", "print(out.sum(), out.mean())"),  # the same numbers in JAX
        ("log_stats(3)", "print(out.std())"),  # not given an array
        ("print(spread)", "print(out.std())"),  # the function not called with one
        # a method that raises on a JAX array (`raises`, `array_lacks`): loud, the user ports it
        ("log_stats(output)", "print(out.size(0), out.clamp(0, 1))"),
    ],
)
def test_a_file_function_computing_the_same_numbers_converts(after: str, body: str) -> None:
    output = convert(after, body)
    assert converted(output), output


STATS = """\
def spread(o):
    return o.std()


def total(o):
    return o.sum()
"""

MAIN = """\
import torch
import torch.nn as nn

from pkg.stats import spread, total

model = nn.Linear(3, 2)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    output = model(x)
    loss = nn.functional.cross_entropy(output, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    print({after})
"""


@pytest.mark.parametrize(
    ("after", "escapes"),
    [("spread(output)", True), ("total(output)", False), ("spread(3)", False)],
)
def test_a_function_of_another_file_given_an_array(
    tmp_path: Path, after: str, escapes: bool
) -> None:
    write_package(tmp_path, {"stats.py": STATS, "main.py": MAIN.format(after=after)})
    output = convert_package(tmp_path, "pkg", TorchToNNX)["main.py"]
    assert converted(output) != escapes, output
    if escapes:
        assert "gives it to a function of another file" in output, output
        assert "stats.py:2" in output, output


TRAINER = """\
import torch
import torch.nn as nn


class Trainer:
    def __init__(self, model):
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def fit(self, loader):
        for x, y in loader:
            output = self.model(x)
            loss = nn.functional.cross_entropy(output, y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.log_stats(output)

    def log_stats(self, out):
        print({body})

    def spread(self, t):
        return t.std()
"""


@pytest.mark.parametrize(
    ("body", "escapes"),
    [
        ("out.std()", True),
        ("self.spread(out)", True),  # through another method on self
        ("out.sum()", False),
    ],
)
def test_a_method_on_self_given_an_array(body: str, escapes: bool) -> None:
    output = run_codemod(TRAINER.format(body=body), TorchToNNX)
    if escapes:
        assert not converted(output) and "gives it to `log_stats` of this file" in output, output
    else:
        assert converted(output), output
