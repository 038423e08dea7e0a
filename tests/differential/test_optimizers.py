"""Every torch.optim optimizer in the semantic map, translated by the codemod and run against torch.

Each case is the PyTorch constructor a user writes. Exact cases: the translation, executed,
reproduces torch's parameter trajectory (float64, 60 steps, rel < 1e-9, or the tolerance of an
entry the map marks approximate). Escape cases: the codemod refuses, with the reason.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import libcst as cst
import pytest

from ml_switcheroo.spec.semantic_map import ApiEntry
from ml_switcheroo.spec.signature import NotALiteral, literal_value
from ml_switcheroo.targets.catalogue import load_semantic_map
from tests.differential.harness import (
    Problem,
    embedding_problem,
    linear_problem,
    map_tolerance,
    matrix_problem,
    measure,
    translate,
)

SEMANTIC_MAP = load_semantic_map()


@dataclass(frozen=True)
class Case:
    call: str  # the constructor as written, binding `params`
    exact: bool = False  # run the codemod with --exact
    escape: str | None = None  # expected escape: a substring of the reason
    env: dict[str, Any] = field(default_factory=dict)
    problem: Callable[[], Problem] = linear_problem
    prelude: str = ""

    @property
    def source(self) -> str:
        return f"import torch\n{self.prelude}opt = {self.call}\n"

    @property
    def id(self) -> str:
        return ("exact: " if self.exact else "") + self.call


def stock_and_exact(call: str, **kwargs: Any) -> list[Case]:
    return [Case(call, **kwargs), Case(call, exact=True, **kwargs)]


CASES: list[Case] = [
    # SGD ---------------------------------------------------------------------------------
    *stock_and_exact("torch.optim.SGD(params)"),
    *stock_and_exact("torch.optim.SGD(params, lr=0.05)"),
    Case("torch.optim.SGD(params, 0.05, 0.9)"),
    Case("torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True)"),
    Case("torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=0.1, nesterov=True)"),
    Case("torch.optim.SGD(params, lr=0.01, weight_decay=0.1, maximize=True)"),
    Case(
        "torch.optim.SGD(params, lr=0.01, momentum=0.9, maximize=True, foreach=False, differentiable=False, fused=None)"
    ),
    Case(
        "torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd, nesterov=nesterov)",
        env={"lr": 0.05, "momentum": 0.8, "wd": 0.01, "nesterov": True},
    ),
    Case("torch.optim.SGD(params, lr=0.05, dampening=0.5)"),
    Case(
        "torch.optim.SGD(params, lr=0.05, momentum=0.9, dampening=0.5)",
        escape="dampens the momentum buffer",
    ),
    Case(
        "torch.optim.SGD(params, lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.1, maximize=True)",
        exact=True,
    ),
    Case(
        "torch.optim.SGD(params, lr=0.05, momentum=0.9, dampening=damp)",
        escape="`dampening` is not a literal",
        env={"damp": 0.5},
    ),
    # Adam --------------------------------------------------------------------------------
    *stock_and_exact("torch.optim.Adam(params)"),
    Case("torch.optim.Adam(params, lr=0.02, betas=(0.8, 0.99), eps=1e-6)"),
    Case("torch.optim.Adam(params, lr=0.02, betas=betas)", env={"betas": (0.8, 0.99)}),
    Case("torch.optim.Adam(params, lr=0.02, weight_decay=0.1)"),
    Case("torch.optim.Adam(params, lr=0.02, weight_decay=0.1, decoupled_weight_decay=True)"),
    Case("torch.optim.Adam(params, lr=0.02, maximize=True, weight_decay=0.1)"),
    Case(
        "torch.optim.Adam(params, lr=0.02, foreach=False, capturable=False, differentiable=False, fused=None)"
    ),
    Case("torch.optim.Adam(params, lr=0.02, amsgrad=True)", escape="AMSGrad"),
    Case(
        "torch.optim.Adam(params, lr=0.02, betas=(0.8, 0.99), eps=1e-6, amsgrad=True, weight_decay=0.1)",
        exact=True,
    ),
    Case(
        "torch.optim.Adam(params, lr=0.02, amsgrad=True, weight_decay=0.1, decoupled_weight_decay=True)",
        exact=True,
    ),
    Case(
        "torch.optim.Adam(params, lr=0.02, amsgrad=amsgrad)",
        escape="`amsgrad` is not a literal",
        env={"amsgrad": False},
    ),
    Case(
        "torch.optim.Adam(groups, lr=0.02)",
        prelude="groups = [{'params': [params[0]]}, {'params': [params[1]]}]\n",
    ),
    # AdamW -------------------------------------------------------------------------------
    *stock_and_exact("torch.optim.AdamW(params)"),
    Case("torch.optim.AdamW(params, lr=0.02, betas=(0.85, 0.995), eps=1e-7, weight_decay=0.1)"),
    Case(
        "torch.optim.AdamW(params, lr=0.02, weight_decay=0.1, maximize=True, foreach=False, capturable=False, differentiable=False, fused=False)"
    ),
    Case("torch.optim.AdamW(params, lr=0.02, weight_decay=0.1, amsgrad=True)", escape="AMSGrad"),
    Case(
        "torch.optim.AdamW(params, lr=0.02, weight_decay=0.1, amsgrad=True, maximize=True)",
        exact=True,
    ),
    # Adamax ------------------------------------------------------------------------------
    *stock_and_exact("torch.optim.Adamax(params)"),
    Case("torch.optim.Adamax(params, lr=0.02, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.1)"),
    Case(
        "torch.optim.Adamax(params, lr=0.02, maximize=True, foreach=False, capturable=False, differentiable=False)"
    ),
    # NAdam -------------------------------------------------------------------------------
    Case("torch.optim.NAdam(params)", escape="warms its momentum up"),
    Case("torch.optim.NAdam(params)", exact=True),
    Case("torch.optim.NAdam(params, lr=0.02, momentum_decay=float('inf'))"),
    Case("torch.optim.NAdam(params, lr=0.02, weight_decay=0.1, momentum_decay=float('inf'))"),
    Case(
        "torch.optim.NAdam(params, lr=0.02, weight_decay=0.1, decoupled_weight_decay=True, momentum_decay=float('inf'))"
    ),
    Case(
        "torch.optim.NAdam(params, lr=0.02, betas=(0.8, 0.99), eps=1e-6, momentum_decay=1e-2)",
        exact=True,
    ),
    Case("torch.optim.NAdam(params, lr=0.02, momentum_decay=0.0)", exact=True),
    Case("torch.optim.NAdam(params, lr=0.02, weight_decay=0.1, maximize=True)", exact=True),
    Case(
        "torch.optim.NAdam(params, lr=0.02, weight_decay=0.1, decoupled_weight_decay=True, foreach=False, capturable=False, differentiable=False)",
        exact=True,
    ),
    # RAdam -------------------------------------------------------------------------------
    Case("torch.optim.RAdam(params)", escape="eps to sqrt(v) before the bias correction"),
    Case("torch.optim.RAdam(params)", exact=True),
    Case("torch.optim.RAdam(params, lr=0.02, eps=0.0)"),
    Case(
        "torch.optim.RAdam(params, lr=0.02, betas=(0.8, 0.99), eps=0.0, weight_decay=0.1, maximize=True)"
    ),
    Case(
        "torch.optim.RAdam(params, lr=0.02, eps=0.0, weight_decay=0.1, decoupled_weight_decay=True)"
    ),
    Case("torch.optim.RAdam(params, lr=0.02, betas=(0.8, 0.99), eps=1e-3)", exact=True),
    Case(
        "torch.optim.RAdam(params, lr=0.02, weight_decay=0.1, decoupled_weight_decay=True, foreach=False, capturable=False, differentiable=False)",
        exact=True,
    ),
    # Adagrad -----------------------------------------------------------------------------
    Case("torch.optim.Adagrad(params)", escape="eps outside the square root"),
    Case("torch.optim.Adagrad(params)", exact=True),
    Case("torch.optim.Adagrad(params, eps=0.0)"),
    Case("torch.optim.Adagrad(params, lr=0.1, lr_decay=0.05, eps=0.0)"),
    Case(
        "torch.optim.Adagrad(params, lr=0.1, weight_decay=0.1, initial_accumulator_value=0.5, eps=0, maximize=True)"
    ),
    Case("torch.optim.Adagrad(params, lr=0.1, lr_decay=decay, eps=0.0)", env={"decay": 0.05}),
    Case(
        "torch.optim.Adagrad(params, lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-3, foreach=False, differentiable=False, fused=None)",
        exact=True,
    ),
    # Adadelta ----------------------------------------------------------------------------
    *stock_and_exact("torch.optim.Adadelta(params)"),
    Case("torch.optim.Adadelta(params, lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.1)"),
    Case(
        "torch.optim.Adadelta(params, lr=0.5, weight_decay=0.1, maximize=True, foreach=False, capturable=False, differentiable=False)"
    ),
    # RMSprop -----------------------------------------------------------------------------
    *stock_and_exact("torch.optim.RMSprop(params)"),
    Case("torch.optim.RMSprop(params, lr=0.01, alpha=0.9, eps=1e-3, momentum=0.9)"),
    Case("torch.optim.RMSprop(params, lr=0.02, centered=True)"),
    Case(
        "torch.optim.RMSprop(params, lr=0.01, alpha=0.9, eps=1e-3, centered=True, momentum=0.5, weight_decay=0.1)"
    ),
    Case("torch.optim.RMSprop(params, lr=0.01, momentum=mom, maximize=True)", env={"mom": 0.9}),
    Case(
        "torch.optim.RMSprop(params, 0.02, 0.95, 1e-6, 0.1, 0.5, False, False, None, False, False)"
    ),
    # Rprop -------------------------------------------------------------------------------
    Case("torch.optim.Rprop(params)", escape="zeroes the gradient where its sign flips"),
    Case("torch.optim.Rprop(params)", exact=True),
    Case("torch.optim.Rprop(params, lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-4, 0.2))", exact=True),
    Case(
        "torch.optim.Rprop(params, lr=0.05, maximize=True, capturable=False, foreach=False, differentiable=False)",
        exact=True,
    ),
    # ASGD --------------------------------------------------------------------------------
    *stock_and_exact("torch.optim.ASGD(params)"),
    Case("torch.optim.ASGD(params, lr=0.05, lambd=0.05, alpha=0.5, t0=10.0, weight_decay=0.1)"),
    Case(
        "torch.optim.ASGD(params, lr=0.05, lambd=0.0, maximize=True, foreach=False, differentiable=False, capturable=False)"
    ),
    # SparseAdam --------------------------------------------------------------------------
    Case(
        "torch.optim.SparseAdam(params, lr=0.02)",
        escape="only the rows present",
        problem=embedding_problem,
    ),
    Case("torch.optim.SparseAdam(params, lr=0.02)", exact=True, problem=embedding_problem),
    Case(
        "torch.optim.SparseAdam(params, lr=0.02, betas=(0.8, 0.99), eps=1e-6, maximize=True)",
        exact=True,
        problem=embedding_problem,
    ),
    # Muon --------------------------------------------------------------------------------
    Case("torch.optim.Muon(params)", escape="optax.contrib.muon differs", problem=matrix_problem),
    Case(
        "torch.optim.Muon(params, lr=0.02, weight_decay=0.05, momentum=0.9, nesterov=False, eps=1e-6)",
        exact=True,
        problem=matrix_problem,
    ),
    Case(
        "torch.optim.Muon(params, lr=0.02, ns_coefficients=(3.0, -3.2, 1.2), ns_steps=3, adjust_lr_fn='match_rms_adamw')",
        exact=True,
        problem=matrix_problem,
    ),
    # Adafactor ---------------------------------------------------------------------------
    Case("torch.optim.Adafactor(params)", escape="factors the last two dims"),
    Case("torch.optim.Adafactor(params)", exact=True),
    Case(
        "torch.optim.Adafactor(params, lr=0.5, beta2_decay=-0.6, eps=(1e-20, 1e-2), d=2.0, weight_decay=0.1, foreach=False, maximize=True)",
        exact=True,
    ),
    # LBFGS -------------------------------------------------------------------------------
    Case(
        "torch.optim.LBFGS(params, lr=0.5, max_iter=1, history_size=10, line_search_fn='strong_wolfe')",
        escape="torch LBFGS runs up to max_iter",
    ),
    Case(
        "torch.optim.LBFGS(params, lr=0.5, max_eval=3, tolerance_grad=0.0, tolerance_change=0.0)",
        exact=True,
        escape="torch LBFGS runs up to max_iter",
    ),
]


@pytest.mark.parametrize("case", [c for c in CASES if c.escape is None], ids=lambda c: c.id)
def test_translation_reproduces_torch(case: Case) -> None:
    rel, translation = measure(case.source, exact=case.exact, env=case.env, problem=case.problem)
    (record,) = translation.conversions
    assert rel < map_tolerance(record.api, case.exact), f"rel={rel:.3e}\n{translation.code}"


@pytest.mark.parametrize("case", [c for c in CASES if c.escape is not None], ids=lambda c: c.id)
def test_untranslatable_arguments_escape_with_the_reason(case: Case) -> None:
    translation = translate(case.source, exact=case.exact)
    (record,) = translation.escapes
    assert case.escape in record.reason
    assert "ESCAPE-BEGIN" in translation.code
    assert f"opt = {case.call}" in translation.code  # the original statement is kept as is


def _bound_arguments(case: Case) -> tuple[str, set[str]]:
    call = cst.parse_expression(case.call)
    assert isinstance(call, cst.Call)
    api = "torch.optim." + call.func.attr.value  # type: ignore[attr-defined]
    return api, _changed_arguments(SEMANTIC_MAP.apis[api], call)


def _changed_arguments(entry: ApiEntry, call: cst.Call) -> set[str]:
    """The arguments ``call`` sets to another value than the default (or passes, if ignored)."""
    bound = entry.signature.bind(call)
    changed = set()
    for name, arg in bound.items():
        if name in entry.ignore:
            changed.add(name)  # dropped arguments: passing them at all is the test
            continue
        default = entry.signature.parameter(name).default_source
        try:
            same = default is not None and literal_value(arg.value) == literal_value(
                cst.parse_expression(default)
            )
        except NotALiteral:
            same = False
        if not same:
            changed.add(name)
    return changed


# Constructors whose class the test extra cannot import (transformers 5 removed
# `transformers.AdamW`): their translation is checked against the reference algorithm there,
# each argument set to a non-default value by a case of that module's `CASES` (the arguments
# after params of `AdamW(params, ...)`).
TESTED_ELSEWHERE = {
    "transformers.AdamW": "test_transformers_adamw",
    "transformers.optimization.AdamW": "test_transformers_adamw",
}


def test_constructors_tested_elsewhere_exercise_every_argument() -> None:
    for name, module in TESTED_ELSEWHERE.items():
        entry = SEMANTIC_MAP.apis[name]
        cases = importlib.import_module(f"tests.differential.{module}").CASES.values()
        exercised: set[str] = set()
        for arguments in cases:
            call = cst.parse_expression(f"AdamW(params, {arguments})")
            assert isinstance(call, cst.Call)
            exercised |= _changed_arguments(entry, call)
        missing = set(entry.signature.names) - {"params"} - exercised
        assert not missing, f"{name}: no case of {module} sets {sorted(missing)}"


def test_every_optimizer_and_every_argument_is_exercised() -> None:
    """Each constructor entry has cases; each argument it handles is set to a non-default value."""
    exercised: dict[str, set[str]] = {}
    for case in CASES:
        api, changed = _bound_arguments(case)
        exercised.setdefault(api, set()).update(changed)
    constructors = {
        name: entry
        for name, entry in SEMANTIC_MAP.apis.items()
        if entry.hook == "optimizer_constructor" and name not in TESTED_ELSEWHERE
    }
    assert set(exercised) == set(constructors)
    for name, entry in constructors.items():
        handled = set(entry.signature.names) - {"params"}
        if not entry.chain:
            continue  # escape-only entries: one case is enough
        missing = handled - exercised[name]
        assert not missing, f"{name}: no case sets {sorted(missing)}"
