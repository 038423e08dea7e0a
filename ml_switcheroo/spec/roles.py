"""What a map entry is to the planner: its ``role:`` (the ``hook:`` only names the renderer).

The planner (``analysis/plan.py``) and the torch-only analysis (``analysis/torch_only.py``) ask
an entry's role, never its hook, so a second target can render the same roles with other
hooks. A method's name is the last component of its entry (``torch.optim.Optimizer.step``).
"""

from __future__ import annotations

CONSTRUCTOR = "constructor"  # builds an optimizer (`torch.optim.AdamW(...)`)
SCHEDULER = "scheduler"  # builds an LR scheduler of an optimizer
SCHEDULER_STEP = "scheduler_step"  # `sched.step()`
CLIP = "clip"  # clips the gradients before an optimizer's step
STEP = "step"  # `opt.step()`: applies the gradients
SCALER_STEP = "scaler_step"  # `scaler.step(opt)`: unscales the gradients, steps `opt`
BACKWARD = "backward"  # `loss.backward()`: computes the gradients a step applies
ZERO_GRAD = "zero_grad"  # `opt.zero_grad()`
MEMBER = "member"  # another member of a translated value (`opt.state_dict()`, `param_groups`)
# A constructor listed only so that its values have a type (GradScaler), or a model wrapper
# (NNX: DistributedDataParallel, torch.compile). Its call changes nothing by itself: its hook keeps
# it as written, or (a wrapper) escapes it only in a file where an optimizer constructor of the
# command translates, a call the pre-filter stages keep on its own. So those stages never keep a
# file for a TYPE call (``prefilter.py``, ``second_stage.py``); its values' members are wired
# through their own entries (``scaler.step``), kept as members.
TYPE = "type"

ROLES = frozenset(
    {
        CONSTRUCTOR,
        SCHEDULER,
        SCHEDULER_STEP,
        CLIP,
        STEP,
        SCALER_STEP,
        BACKWARD,
        ZERO_GRAD,
        MEMBER,
        TYPE,
    }
)
STEPS = frozenset({STEP, SCALER_STEP})  # the calls that update an optimizer's parameters
