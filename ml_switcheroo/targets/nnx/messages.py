"""What the NNX target says about each finding: the optax target's table (its tx is optax),
the clip findings in the NNX program's words, and the findings only the NNX hooks report."""

from __future__ import annotations

from ml_switcheroo.spec import findings as f
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding, Message
from ml_switcheroo.targets.optax.messages import _STEPPING as OPTAX_STEPPING
from ml_switcheroo.targets.optax.messages import MESSAGES as OPTAX_MESSAGES

# The NNX remedy of a scheduler whose stepping is not proved: the lr written where torch
# steps it (exact for any stepping), not the optax-only `learning_rate=lambda count: ...`.
_STEPPING = (
    "per update: pass the schedule as {optimizer}'s learning_rate; otherwise build the tx "
    "with optax.inject_hyperparams(...)(learning_rate=float(schedule(0)), ...) and, where "
    "torch steps the scheduler for the k-th time, write "
    "`{state}.hyperparams['learning_rate'][...] = schedule(k)`"
)


# Where the NNX program clips: at the head of the nnx.Optimizer's tx (the constructor's chain).
# {transform}: the map's transform of the clip call, written out (``Planner.transform``)
_CLIP_IN_TX = (
    "`{transform}` at the head of the nnx.Optimizer's tx: "
    "`nnx.Optimizer(model, optax.chain({transform}, <tx>), wrt=nnx.Param)`"
)

# The clip findings in the words of the NNX program (the optax table speaks of optax's own
# chain and update, which an NNX user never writes).
_CLIPPING: dict[str, Message] = {
    f.CLIP_NORM_USED: (
        "its return value (the total gradient norm) is used, and not as `name = "
        "clip_grad_norm_(...)` alone on its line (the one use the translated NNX step "
        "computes, as `name = {norm}`); the nnx.Optimizer clips inside its "
        "tx, at `opt.update(model, grads)`, which returns no norm",
        "assign the norm to a name on a line of its own and use that name; or port it by "
        "hand: `norm = {norm}` after nnx.value_and_grad, and put " + _CLIP_IN_TX,
    ),
    f.CLIP_WITHOUT_OPTIMIZER: (
        "no single optimizer translated to an nnx.Optimizer is stepped after this call in "
        "the same block",
        "put " + _CLIP_IN_TX,
    ),
    f.CLIP_SEVERAL_OPTIMIZERS: (
        "several optimizers are stepped after this call, so the clip belongs in no one "
        "nnx.Optimizer's tx",
        "put " + _CLIP_IN_TX + ", of the optimizer whose gradients it clips",
    ),
    f.CLIP_SCALED_GRADIENTS: (
        "a GradScaler steps the optimizer after it and no `unscale_` comes before it: torch "
        "clips the loss-scaled gradients (the threshold applies to grads times the scale), "
        "which a clip in the nnx.Optimizer's tx does not do",
        "JAX needs no loss scaling in float32/bfloat16: drop the scaler and put " + _CLIP_IN_TX,
    ),
    f.CLIP_BACKWARD_AFTER: (
        "a backward pass runs after it and before the optimizer's step() (`{backward}` at "
        "{place}): torch clips only the gradients computed before this call and adds the "
        "later ones unclipped, the nnx.Optimizer's tx would clip their sum",
        "clip after the last backward pass, right before the step, then put " + _CLIP_IN_TX,
    ),
    f.CLIP_GRADIENTS_MAY_CHANGE_AFTER: (
        "`{code}` ({place}) runs after it and before the optimizer's step(), and {why}: torch "
        "clips only the gradients present at this call, the nnx.Optimizer's tx would clip the "
        "ones the step uses",
        "clip after the last backward pass, right before the step, then put " + _CLIP_IN_TX,
    ),
    f.CLIP_UNDER_OTHER_CONTROL: (
        "the optimizer's step() after it runs under a condition or loop this call is not in: "
        "torch clips the gradients accumulated so far at every call, the nnx.Optimizer's tx "
        "clips once per `opt.update(model, grads)`",
        "clip where the optimizer steps (in the same condition), then put " + _CLIP_IN_TX,
    ),
    f.CLIP_VALUE_VARIES: (
        "`{name}={value}` is evaluated at every step in torch, but in the NNX program the clip "
        "is part of the tx of the nnx.Optimizer `{optimizer}`, built once with it: {problem}",
        "compute `{name}` before `{optimizer}` is built and keep it fixed, then run the codemod "
        "again; or clip the gradients yourself between nnx.value_and_grad and "
        "`{optimizer}.update(model, grads)`",
    ),
    f.CLIP_SUBSET: (
        "it clips the gradients of `{clipped}` but `{optimizer}` trains `{trained}`; in the tx "
        "of the nnx.Optimizer `{optimizer}` a clip would act on every gradient it updates, "
        "not only on those",
        None,
    ),
    f.CLIP_OTHER_MODEL: (
        "it clips the gradients of `{clipped}`, but `{optimizer}`, the optimizer stepped after "
        "it, trains `{trained}`: `{model}` is not provably `{other}`, and in the tx of the "
        "nnx.Optimizer `{optimizer}` the clip would act on the gradients of `{other}`",
        "if `{model}` is another model, clip its gradients at the head of the tx of the "
        "nnx.Optimizer that trains it (or drop the call if nothing trains it); if it is "
        "`{other}`, write `{trained}` here and run the codemod again",
    ),
    f.CLIP_BESIDE_ESCAPED: (
        "`{clip}` also clips the gradients before `{optimizer}`'s step and is not folded "
        "({why}); the clip calls before one step go into the tx of the nnx.Optimizer "
        "`{optimizer}` together or not at all (a tx with only some of them clips other "
        "gradients than torch)",
        "port the clipping by hand with that call: every clip call before the step, in "
        "order, at the head of `{optimizer}`'s tx (this one is `{transform}`)",
    ),
}


def _nnx_stepping(message: Message) -> Message:
    """``message`` with the optax stepping suggestion replaced by the NNX one."""
    reason, suggestion = message
    return (reason, _STEPPING if suggestion == OPTAX_STEPPING else suggestion)


MESSAGES: dict[str, Message] = {
    **{kind: _nnx_stepping(message) for kind, message in OPTAX_MESSAGES.items()},
    **_CLIPPING,
    f.PLATEAU_NOT_PER_UPDATE: (
        "{reason}; in the nnx.Optimizer's tx, optax.contrib.reduce_on_plateau takes a metric "
        "at every update and counts updates as torch counts step(metric) calls, and its "
        "step(metric) is not the one call once per epoch (`for epoch in range(...)`) the NNX "
        "target writes the lr at, so it would reduce the lr at other times than torch",
        "keep the plateau out of the tx: `plateau = optax.contrib.reduce_on_plateau(...)`, "
        "`plateau_state = plateau.init(nnx.state(model, nnx.Param))`; where torch calls "
        "step(metric): `_, plateau_state = plateau.update(updates=nnx.state(model, nnx.Param), "
        "state=plateau_state, value=metric)` and "
        "`{state}.hyperparams['learning_rate'][...] = lr * plateau_state.scale` "
        "(the tx built with optax.inject_hyperparams; optax's patience counts one more than "
        "torch's)",
    ),
    f.SCHEDULER_PER_EPOCH_WITHOUT_LENGTH: (
        "the scheduler steps once per epoch{where}, and its step count there is not provably "
        "`epoch + 1` of a `for epoch in range(...)` loop run once on a scheduler built "
        "before it in the same block, so the lr is not written there; --steps-per-epoch EXPR "
        "(e.g. 'len(train_loader)') folds it into the optimizer's updates instead",
        _STEPPING,
    ),
    f.SCHEDULER_BUILT_IN_OTHER_METHOD: (
        "the scheduler is built at {built} and stepped once per epoch at {stepped}: every "
        "call of that method on the same object goes on counting where the last one stopped, "
        "so its step count there is not provably `epoch + 1`",
        "build {optimizer} and the scheduler in that method, before its epoch loop (then the "
        "lr is written where the scheduler steps), or run with --steps-per-epoch EXPR bound "
        "where the scheduler is built (a number, or 'len(self.train_loader)' when the batch "
        "loop iterates it) to fold it into the optimizer's updates",
    ),
    f.SCHEDULER_NOT_COUNTED: (
        "{reason}; nor can its step() calls be counted where they run (a counter kept next to "
        "it, the lr written at each step()): {problem}",
        "{suggestion}",
    ),
    f.COUNTED_STEP_IN_REGION: (
        "its step() at {step} runs inside the training step ending at the optimizer's step() "
        "at {optimizer_step}, whose statements the step's translation renders itself (or "
        "keeps in its escape hatch): the step() there is not rewritten as the counted write "
        "of the lr, and torch's scheduler sets the lr this update uses",
        "move `step()` after the optimizer's step() (torch recommends that order; it changes "
        "which lr each update uses), or, when porting the training step by hand, keep a "
        "counter next to the schedule and, where step() ran, add one to it and write the "
        "schedule's value at it to the optimizer's injected learning rate",
    ),
    f.SHARED_PARAMETERS: (
        "this optimizer and `{other}` ({place}) may take some of the same parameters, one "
        "of them a whole submodule's: torch steps a shared parameter once per optimizer, each "
        "with its own state, on the gradient .grad holds at that step; not rendered",
        "give each parameter to one optimizer, or translate the pair by hand",
    ),
    f.MODEL_CHANGED: (
        "the model changes after the optimizer took its parameters (`{change}`): torch's "
        "optimizer keeps training the tensors it was given (a parameter added or replaced "
        "later is never updated by it), while `nnx.Optimizer(model, tx, wrt=nnx.Param)` "
        "updates every nnx.Param the model holds when it steps",
        "build the optimizer after the change (then torch trains the new parameters too), or "
        "pass `wrt=` a filter selecting only the parameters torch trains",
    ),
    f.GRADIENT_SKIPPED: (
        "a trained parameter may get no gradient in some steps (`{skip}` at {place} "
        "{why}): torch's "
        "optimizer skips a parameter whose .grad is None (no update, no weight decay, no "
        "change of its moments or step count), while nnx.value_and_grad gives it a zero "
        "gradient and `nnx.Optimizer.update` still decays it and moves it by its moments "
        "(jax.lax.stop_gradient makes the same zero)",
        "if every parameter this optimizer trains gets a gradient in every step, the "
        "optimizer translates as it stands; else pass `wrt=` a filter of the parameters that "
        "do, or keep an optimizer per part and update a part only in the steps that reach it",
    ),
    f.GRADIENT_SKIPPED_ELSEWHERE: (
        "a trained parameter may get no gradient in some steps, through a file of the "
        "repository this file imports or that imports it (`{skip}` at {place} {why}): torch's "
        "optimizer skips a parameter whose .grad is None (no update, no weight decay, no "
        "change of its moments or step count), while nnx.value_and_grad gives it a zero "
        "gradient and `nnx.Optimizer.update` still decays it and moves it by its moments",
        "if every parameter this optimizer trains gets a gradient in every step, the "
        "optimizer translates as it stands; else pass `wrt=` a filter of the parameters that "
        "do, or keep an optimizer per part and update a part only in the steps that reach it",
    ),
    f.COMPLEX_PARAMETERS: (
        "parameters may be complex (`{complex}` at {place}): torch's gradient of a real loss "
        "at a complex parameter x+iy is dL/dx + i dL/dy, the gradient nnx.value_and_grad "
        "returns is its conjugate (an nnx.Optimizer step with it moves the imaginary part the "
        "wrong way, even with SGD), and torch's Adam-family optimizers treat a complex "
        "parameter per real component (view_as_real) where optax uses |g|^2",
        "conjugate the gradients before `opt.update(model, grads)` (`grads = "
        "jax.tree.map(jnp.conj, grads)`), and for Adam, AdamW or RMSprop hold complex "
        "parameters as pairs of real nnx.Params (torch's view_as_real); or keep them real",
    ),
    f.COMPLEX_IN_OTHER_FILE: (
        "parameters may be complex in a file of the repository this file imports or that "
        "imports it (`{complex}` at {place}): torch's gradient of a real loss at a complex "
        "parameter x+iy is dL/dx + i dL/dy, the gradient nnx.value_and_grad returns is its "
        "conjugate (an nnx.Optimizer step with it moves the imaginary part the wrong way, "
        "even with SGD), and torch's Adam-family optimizers treat a complex parameter per "
        "real component (view_as_real) where optax uses |g|^2",
        "if this optimizer trains complex parameters: conjugate the gradients before "
        "`opt.update(model, grads)` (`grads = jax.tree.map(jnp.conj, grads)`), and for Adam, "
        "AdamW or RMSprop hold them as pairs of real nnx.Params (torch's view_as_real)",
    ),
    f.COUNTER_NAME_TAKEN: (
        "the translation counts the scheduler's step() calls in `{name}`, a name this code "
        "already uses",
        "rename that `{name}`",
    ),
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
    f.INJECTED_LR_SCHEDULE: (
        "the code writes or reads this optimizer's learning rate (through `param_groups`, or a "
        "ReduceLROnPlateau stepped per epoch), but its translation computes the rate from the "
        "update count (`{lr}`): optax.inject_hyperparams re-evaluates such a callable at every "
        "update, so a written lr would be lost, and torch's group lr is not that decayed rate",
        "inject the base lr and apply the decay by hand, e.g. "
        "`optax.chain(optax.inject_hyperparams(optax.adagrad)(learning_rate=lr, ...), "
        "optax.scale_by_schedule(lambda count: 1 / (1 + count * lr_decay)))`, writing "
        "`opt.opt_state[0].hyperparams['learning_rate'][...]`; or port it by hand",
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
