"""An optimizer returned by a method of the model's own class, defined in the same file, and
stepped by the caller (build-nanogpt: ``model = GPT(...)``, ``optimizer =
model.configure_optimizers(...)``, ``optimizer.step()`` in the script's loop; issue 12).

The method's constructor becomes ``nnx.Optimizer(self, tx, wrt=...)`` (``self`` the instance
the method runs on), so the caller's step trains the call's receiver. Which method builds the
optimizer, and that it only reads ``self``'s parameters, is the planner's fact
(``ctx.built_by_method``, ``analysis/built_by_method.py``); here: its constructor translated
over ``self``, and the receiver changed nowhere after the call in its scope. The repository
facts that the method is defined once and every caller only steps and zeroes the value are
``CrossFile.method_call_type``'s (the receiver's type).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.targets.hooks import HookContext, Untranslatable
from ml_switcheroo.targets.nnx.model import trained_model


@dataclass(frozen=True)
class MethodBuilt:
    """The map constructor the method returns and the call's receiver (the trained model)."""

    constructor: cst.Call
    model: cst.Name


def method_built(call: cst.Call, ctx: HookContext) -> MethodBuilt:
    """``call`` (``model.configure_optimizers(...)``) as the constructor its method returns
    and the model it trains, or Untranslatable naming why not."""
    fact = ctx.built_by_method(call)
    if isinstance(fact, str):
        raise Untranslatable(fact)
    shown = fact.method.name.value
    constructor = fact.constructor
    if not ctx.translates(constructor):
        raise Untranslatable(f"`{shown}` does not return one translated optimizer")
    model = trained_model(constructor, ctx)
    if not (isinstance(model, cst.Name) and model.value == fact.self_name):
        raise Untranslatable(
            f"`{shown}`'s optimizer trains `{code_of(model).strip()}`, not `{fact.self_name}`"
        )
    if fact.change:
        raise Untranslatable(
            f"the model changes after the optimizer took its parameters (`{fact.change}`): "
            "torch's optimizer keeps training the tensors it was given, nnx.Optimizer every "
            "nnx.Param the model holds"
        )
    return MethodBuilt(constructor, fact.receiver)
