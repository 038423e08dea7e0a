"""Planned escapes of a scheduler, stated again where its constructor is rewritten: the
suggestion writes the learning rate to the optimizer's stored one, ``opt.opt_state`` for a
tx that is the injected optimizer itself, but ``opt.opt_state[i]`` for a chain (weight decay
or a clip at its head: its state is a tuple, and ``opt.opt_state.hyperparams`` raises
AttributeError). Only the rewrite knows the optimizer's translation."""

from __future__ import annotations

from typing import Any

import libcst as cst

from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding
from ml_switcheroo.targets.hooks import HookContext
from ml_switcheroo.targets.nnx.learning_rate import lr_state
from ml_switcheroo.targets.nnx.messages import render


def nnx_restate(finding: Finding, node: Any, ctx: HookContext) -> Untranslatable | None:
    """``finding`` (it names the ``optimizer`` a scheduler ``node`` wraps) with the state
    of that optimizer's learning rate as its translation holds it; None: as planned."""
    if "optimizer" not in finding.values or ctx.entry.role != roles.SCHEDULER:
        return None
    if not isinstance(node, cst.Call) or not node.args:
        return None
    state = lr_state(node.args[0].value, ctx)
    if state is None:
        return None
    return render(Finding(finding.kind, {**finding.values, "state": state}))
