"""NNX step: a statement between the backward pass and the step runs after the gradient only
when it provably records values (``logged.py``); anything that may read or edit a gradient,
or read what a statement left in place computes there, escapes. The runs against torch:
``tests/differential/test_nnx_logged_after_backward.py``."""

from __future__ import annotations

import pytest

from tests.support import nnx_output, renders_a_step, step_escaped_with

LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
history = []
{setup}
for x, y in loader:
    opt.zero_grad()
    out = model(x)
    loss = ((out - y) ** 2).mean()
    loss.backward()
    {between}
    opt.step()
"""


def loop(between: str, setup: str = "") -> str:
    return LOOP.format(between=between.replace("\n", "\n    "), setup=setup)


def test_a_recorded_loss_runs_after_the_gradient_before_the_update() -> None:
    output = nnx_output(loop("history.append(loss.item())"))
    assert renders_a_step(output), output
    gradient = output.index("nnx.value_and_grad(")
    assert gradient < output.index("history.append(loss.item())") < output.index("opt.update(")


BETWEEN = "runs between backward and step"

TWINS = {  # the statements between backward and step, the setup before the loop, the reason
    # (a function of the file proven to change nothing may run there: logged.py)
    "a_function_of_the_file": (
        "scale_grads()",
        "def scale_grads():\n    for p in model.parameters():\n        p.grad *= 0.5",
        BETWEEN,
    ),
    "a_method_of_another_object": ("tracker.update(loss.item())", "tracker = Tracker()", BETWEEN),
    "a_gradient_read": ("g = out.grad", "", BETWEEN),
    "a_rebound_builtin": ("print(loss.item())", "def print(*a):\n    pass", BETWEEN),
    "a_clip_norm_read_before_it_is_computed": (
        "norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\nhistory.append(norm)",
        "",
        BETWEEN,
    ),
    "a_store_into_an_attribute": ("stats.loss = loss.item()", "stats = Stats()", BETWEEN),
    "the_model_called": ("history.append(model(x))", "", BETWEEN),
    # a helper of the user's package may edit the gradients through a global of its module
    "a_function_of_the_users_package": ("helpers.halve_grads()", "from . import helpers", BETWEEN),
    "a_value_from_the_users_package": ("n = mypkg.utils.f()", "import mypkg.utils", BETWEEN),
    "an_in_place_torch_function": ("torch._foreach_mul_(grads, 0.5)", "grads = []", BETWEEN),
    "numpy_writing_through_out": ("np.multiply(a, 2, out=a)", "import numpy as np", BETWEEN),
    # an `if` of records is one only when its test and every branch are
    "an_if_reading_a_gradient": ("if ema is None:\n    ema = out.grad", "ema = None", BETWEEN),
    "an_if_whose_test_calls_the_users_code": (
        "if check(loss):\n    history.append(loss.item())",
        "from mypkg import check",
        BETWEEN,
    ),
    "an_else_storing_into_an_object": (
        "if ema is None:\n    ema = loss.item()\nelse:\n    stats.ema = loss.item()",
        "ema = None\nstats = Stats()",
        BETWEEN,
    ),
    "an_elif_calling_another_object": (
        "if ema is None:\n    ema = 0.0\nelif ema > 1:\n    tracker.update(ema)",
        "ema = None\ntracker = Tracker()",
        BETWEEN,
    ),
    # a progress bar's method the map does not list, or a name that may be another object
    "a_progress_bar_method_not_listed": (
        "pbar.close()",
        "from tqdm import tqdm\npbar = tqdm(loader)",
        BETWEEN,
    ),
    "a_name_bound_to_a_progress_bar_or_another_object": (
        "pbar.set_description('x')",
        "from tqdm import tqdm\npbar = tqdm(loader)\nif flag:\n    pbar = Bar()",
        BETWEEN,
    ),
    "a_users_class_named_tqdm": (
        "pbar.set_description('x')",
        "from mypkg import tqdm\npbar = tqdm(loader)",
        BETWEEN,
    ),
}


RECORDING = {  # functions of the map's recording_modules: the step still converts
    "logging": ("logging.info('loss %f', loss.item())", "import logging"),
    "math": ("history.append(math.floor(loss.item()))", "import math"),
    "time": ("t = time.perf_counter()", "import time"),
}

EMA = "if ema is None:\n    ema = loss.item()\nelse:\n    ema = 0.9 * ema + 0.1 * loss.item()"
RECORDS = {  # statements that record values, run after the gradient: the step still converts
    "an_if_else_of_records": (EMA, "ema = None"),
    "an_elif_chain_of_records": (
        "if ema is None:\n    ema = loss.item()\nelif ema > 1:\n    print(ema)\nelse:\n    ema = 0.5",
        "ema = None",
    ),
    "a_tqdm_progress_bar": (
        "pbar.set_description(f'loss {loss.item():.4f}')",
        "from tqdm import tqdm\npbar = tqdm(loader)",
    ),
    "a_tqdm_auto_progress_bar_imported_as_a_module": (
        "pbar.set_postfix(loss=loss.item())",
        "import tqdm.auto\npbar = tqdm.auto.tqdm(loader)",
    ),
}


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_records_run_after_the_gradient_before_the_update(name: str) -> None:
    between, setup = RECORDS[name]
    output = nnx_output(loop(between, setup))
    assert renders_a_step(output), output
    first = between.splitlines()[0].strip()
    assert output.index("nnx.value_and_grad(") < output.index(first) < output.index("update(")


@pytest.mark.parametrize("name", sorted(RECORDING))
def test_a_function_of_a_recording_module_runs_after_the_gradient(name: str) -> None:
    between, setup = RECORDING[name]
    output = nnx_output(loop(between, setup))
    assert renders_a_step(output), output
    assert output.index("nnx.value_and_grad(") < output.index(between) < output.index("update(")


@pytest.mark.parametrize("name", sorted(TWINS))
def test_a_statement_that_may_touch_a_gradient_escapes(name: str) -> None:
    between, setup, reason = TWINS[name]
    step_escaped_with(loop(between, setup), reason)
