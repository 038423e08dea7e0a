"""Findings: analysis and model state facts, a target words them (``spec/findings.py``,
``targets/optax/messages.py``), tested without a command."""

from __future__ import annotations

import argparse

import libcst as cst
import pytest

from ml_switcheroo.analysis.torch_only import TorchOnlyUse
from ml_switcheroo.app.support_table import api_tables
from ml_switcheroo.model.translate import BoundCall, check_per_group
from ml_switcheroo.rewrite.options import add_arguments
from ml_switcheroo.spec import findings
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding, stated
from ml_switcheroo.spec.semantic_map import TorchOnlyText
from ml_switcheroo.targets.catalogue import load_semantic_map
from ml_switcheroo.targets.nnx.messages import MESSAGES as NNX_MESSAGES
from ml_switcheroo.targets.optax.messages import MESSAGES
from ml_switcheroo.targets.optax.target import OPTAX
from ml_switcheroo.targets.target import Target
from tests.layers.test_layers_directly import plan_of

SEVERAL_SCHEDULERS = """\
import torch
opt = torch.optim.SGD(ps, lr=0.1)
a = torch.optim.lr_scheduler.StepLR(opt, step_size=10)
b = torch.optim.lr_scheduler.StepLR(opt, step_size=20)
for batch in data:
    opt.step(); a.step(); b.step()
"""


def kind_only(finding: Finding) -> Untranslatable:
    """A test target's words: the finding's kind and values, nothing else."""
    return Untranslatable(f"{finding.kind} {dict(finding.values)}")


def test_the_optax_target_words_every_finding_kind_but_the_nnx_ones() -> None:
    assert set(MESSAGES) == findings.KINDS - findings.NNX_KINDS


def test_the_nnx_target_words_every_finding_kind() -> None:
    assert set(NNX_MESSAGES) == findings.KINDS


def test_a_finding_is_rendered_in_the_optax_words_with_its_values() -> None:
    rendered = OPTAX.untranslatable(Finding(findings.FROZEN_PARAMETERS, {"freezing": "p.x = 1"}))
    assert rendered.reason.startswith("this file freezes parameters (`p.x = 1`): torch skips")
    assert rendered.suggestion is not None
    assert rendered.suggestion.startswith("optax.multi_transform({'trained': <the optax")


def test_a_freeze_in_an_imported_file_is_worded_as_the_other_files() -> None:
    freezing = "m.requires_grad_(False)` in `pkg/helpers.py:2"
    finding = Finding(findings.FROZEN_IN_IMPORTED_FILE, {"freezing": freezing})
    rendered = OPTAX.untranslatable(finding)
    assert rendered.reason.startswith(
        "a file of the repository this file imports freezes parameters where this file may run"
        f" it (`{freezing}`): torch skips"
    )


def test_a_freeze_by_an_importing_file_is_worded_as_the_callers() -> None:
    freezing = "model.fc.requires_grad_(False)` in `pkg/main.py:5"
    finding = Finding(findings.FROZEN_BY_IMPORTING_FILE, {"freezing": freezing})
    rendered = OPTAX.untranslatable(finding)
    assert rendered.reason.startswith(
        "a file of the repository importing this file may freeze parameters before it may"
        f" run this file's code (`{freezing}`): the model handed"
    )


def test_a_finding_kind_a_target_does_not_word_is_stated_as_it_is() -> None:
    rendered = stated(Finding(findings.SEVERAL_SCHEDULERS, {"optimizer": "opt"}))
    assert (rendered.reason, rendered.suggestion) == ("several schedulers: optimizer=opt", None)


def test_the_plan_escapes_in_the_words_of_the_render_it_is_given() -> None:
    plan, calls = plan_of(SEVERAL_SCHEDULERS, render=kind_only)
    escape = plan.escape_for(calls[1])  # the first StepLR
    assert escape is not None
    assert escape.reason == "several_schedulers {'where': ''}"


def test_the_plan_names_no_target_without_a_render() -> None:
    plan, calls = plan_of(SEVERAL_SCHEDULERS)
    escape = plan.escape_for(calls[1])
    assert escape is not None
    assert "optax" not in escape.reason and escape.suggestion is None


def test_the_model_refuses_a_per_group_list_in_the_words_it_is_given() -> None:
    entry = load_semantic_map().apis["torch.optim.lr_scheduler.LambdaLR"]
    call = cst.parse_expression("LambdaLR(opt, lr_lambda=[f, g])")
    assert isinstance(call, cst.Call)
    with pytest.raises(Untranslatable) as refused:
        check_per_group(BoundCall.bind(entry, call), kind_only)
    assert refused.value.reason == "per_group_sequence {'name': 'lr_lambda', 'first': 'f'}"


def test_a_torch_only_use_names_the_state_as_the_target_does() -> None:
    text = TorchOnlyText(reason="`{name}` is used", suggest="keep {state}")
    use = TorchOnlyUse(None, cst.Name("opt"), text, {"name": "self.opt", "use": "x"}, "self.opt")
    assert use.render(text.suggest, "", "{x}_opt_state") == "keep self.opt_opt_state"


def test_the_support_table_header_takes_the_target_label() -> None:
    other = Target("other", {}, {}, state_name="{x}", label="nnx", optimizer_value="a value")
    table = api_tables(load_semantic_map(), "optimizers", target=other)
    assert "| default output (stock nnx) |" in table.splitlines()[0]


def test_the_exact_help_takes_the_target_label() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, "nnx", (OPTAX,))
    assert "where stock nnx has no exact equivalent" in parser.format_help().replace("\n", " ")
