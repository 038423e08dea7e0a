"""What the NNX target says about each finding: the optax target's table (its tx is optax),
and the findings only the NNX hooks report."""

from __future__ import annotations

from ml_switcheroo.spec import findings as f
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding, Message
from ml_switcheroo.targets.optax.messages import MESSAGES as OPTAX_MESSAGES

MESSAGES: dict[str, Message] = {
    **OPTAX_MESSAGES,
    f.PLATEAU_NOT_LITERAL: (
        "ReduceLROnPlateau's {names} not written as a literal in the code: torch skips every "
        "reduction smaller than `eps` (so its lr stops early, at a point computed from lr, "
        "factor, min_lr and eps), and optax.contrib.reduce_on_plateau has no such rule; that "
        "point is only computed from literal values (and `mode` decides the metric's sign)",
        "write lr, factor, min_lr, eps and mode as literals, or port the scheduler by hand: "
        "optax.contrib.reduce_on_plateau(..., patience=<torch patience> + 1, min_scale=<lowest "
        "lr torch reaches> / lr), stepped with `update(None, state, value=metric)` once per "
        "epoch, and write lr * state.scale to opt.opt_state.hyperparams['learning_rate']",
    ),
    f.PLATEAU_NAME_TAKEN: (
        "the translation keeps the scheduler's state in `{name}`, a name this code already uses",
        "rename that `{name}`",
    ),
    f.PLATEAU_MAX_IN_CHAIN: (
        "ReduceLROnPlateau with mode={mode} is translated only when stepped once per epoch with "
        "a metric (then the negated metric is passed); in the optimizer's chain optax would "
        "minimise the metric itself",
        "step it once per epoch, `sched.step(metric)` in `for epoch in range(n):`, or port it "
        "by hand",
    ),
    f.WRITTEN_LR_IN_CHAIN: (
        "the learning rate is written where the scheduler steps, to "
        "`opt.opt_state.hyperparams`, but the optimizer's tx `{tx}` is a chain (clipping at "
        "its head): its state is a tuple, the injected learning rate one element of it; not "
        "translated",
        "write to the injected element of the chain's state by hand "
        "(`opt.opt_state[<index>].hyperparams['learning_rate'][...] = ...`), or port it by hand",
    ),
    f.PLATEAU_LINE_NOT_ALONE: (
        "`{shown}` is not a statement of its own; the translation replaces the whole statement",
        "put it on a line of its own",
    ),
}


def render(finding: Finding) -> Untranslatable:
    """``finding`` in the NNX target's words."""
    return f.render(MESSAGES, finding)
