"""What the optax target says about each finding (``spec/findings.py``): a flat table of
(reason, suggestion) templates, ``{value}`` being the finding's values. ``render`` is this
table's renderer, for the optax hooks that call the model."""

from __future__ import annotations

from ml_switcheroo.spec import findings as f
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.findings import Finding, Message

_STEPPING = (
    "per update: pass the schedule as {optimizer}'s learning_rate; per epoch: "
    "`learning_rate=lambda count: schedule(count // steps_per_epoch)`"
)
# {transform}: the map's transform of the clip call, written out (``Planner.transform``)
_CLIP_IN_CHAIN = "`{transform}` at the head of the optimizer's chain"

# A plateau that cannot join the chain: kept apart, its scale applied to the learning rate.
_PLATEAU_APART = (
    "keep the plateau out of the optimizer's chain: `plateau = optax.contrib."
    "reduce_on_plateau(...)`, `plateau_state = plateau.init(params)`; where torch calls "
    "step(metric): `_, plateau_state = plateau.update(updates=params, state=plateau_state, "
    "value=metric)`; build {optimizer} with optax.inject_hyperparams and set its "
    "learning_rate to the torch lr times `plateau_state.scale` (optax's patience counts one "
    "more than torch's)"
)

MESSAGES: dict[str, Message] = {
    # schedulers
    f.SCHEDULER_LR_WRITTEN: (
        "this code also uses {groups} otherwise than to read the lr (a write there changes "
        "the lr torch's scheduler works from); a schedule folded into the optimizer would "
        "not see such writes, so the scheduler stays torch code with its optimizer's lr "
        "writes",
        "port the scheduler and the param_groups writes together: build {optimizer} with "
        "optax.inject_hyperparams(...)(learning_rate=<a number>) and set "
        "`opt_state.hyperparams['learning_rate']` where torch's scheduler steps and where the "
        "code writes the lr (a schedule callable there would overwrite the writes)",
    ),
    f.PLATEAU_NOT_PER_UPDATE: (
        "{reason}; in the optimizer's chain, optax.contrib.reduce_on_plateau takes a metric at "
        "every update and counts updates as torch counts step(metric) calls, so it would "
        "reduce the lr at other times than torch",
        _PLATEAU_APART,
    ),
    f.SCHEDULE_WITHOUT_TRANSLATED_OPTIMIZER: (
        "its optimizer is not built by a translated constructor in the same block of this "
        "file, so the schedule cannot become the optimizer's learning rate{where}",
        "build the schedule and pass it as the optimizer's learning_rate: "
        "`opt = optax.<optimizer>(learning_rate=schedule, ...)`",
    ),
    f.SCHEDULE_WRITTEN_OUT: (
        "",
        "this scheduler as an optax schedule: `{schedule}` (`{lr}`: the optimizer's lr)",
    ),
    f.SEVERAL_SCHEDULERS: (
        "several schedulers step the same optimizer; optax takes one schedule per learning "
        "rate{where}",
        "combine them, e.g. with optax.join_schedules, and pass that as learning_rate",
    ),
    f.SCHEDULER_STEP_NOT_CALLED: (
        "this scheduler's step() is not called in this file, so how often it runs (per update "
        "or per epoch) is unknown{where}",
        _STEPPING,
    ),
    f.SCHEDULER_STEPPING_NOT_PROVED: ("{reason}", _STEPPING),
    f.SCHEDULER_STEP_WITH_EPOCH: (
        "step() is called with an epoch argument (deprecated in torch); the schedule must be "
        "indexed by optax's update count instead",
        _STEPPING,
    ),
    f.SCHEDULER_STEP_CONDITIONAL: (
        "its step() or the optimizer's is called in a conditional expression, an `and`/`or`, "
        "a comprehension or a lambda, so it may not run once per update",
        _STEPPING,
    ),
    f.SCHEDULER_STEP_UNEVEN: ("{reason}", _STEPPING),
    f.SCHEDULER_STEPS_PER_EPOCH: (
        "step() is called {count} times in the epoch loop, so the schedule may advance more "
        "than once per epoch",
        _STEPPING,
    ),
    f.SCHEDULER_PER_EPOCH_WITHOUT_LENGTH: (
        "the scheduler steps once per epoch{where} while optax counts updates; run with "
        "--steps-per-epoch EXPR (e.g. 'len(train_loader)') to translate it",
        _STEPPING,
    ),
    f.SCHEDULER_STEP_UNKNOWN: (
        "cannot tell whether step() runs once per optimizer update (it is not in the same loop "
        "and condition as the optimizer's step(), after it or before it in its block{where})",
        _STEPPING,
    ),
    f.PART_OF_UNTRANSLATED_SCHEDULER: (
        "it is part of `{name}`, which is not translated: {reason}",
        "{suggestion}",
    ),
    f.SCHEDULER_APART_FROM_OPTIMIZER: (
        "the scheduler and its optimizer are not both assigned in the same block (the "
        "optimizer at {optimizer_place} in {optimizer_function}, the scheduler at "
        "{scheduler_place} in {scheduler_function})",
        "pass the schedule as the optimizer's learning_rate",
    ),
    f.PLATEAU_EPS_FLOOR_UNKNOWN: (
        "ReduceLROnPlateau's {names} not a number literal here: torch skips every reduction "
        "smaller than `eps`, so its lr stops for good at a point computed from lr, factor, "
        "min_lr and eps; optax.contrib.reduce_on_plateau has no such rule and needs that point "
        "as its min_scale, which is computed only from literal values",
        "write lr, factor, min_lr and eps as literals, or pass min_scale=<the lowest lr torch "
        "reaches> / lr by hand",
    ),
    f.SCHEDULER_HANDED_TO_CALL: (
        "`{name}` is passed to `{call}` at {place}, which may step or read it there; folded "
        "into its optimizer, the schedule would not follow those steps",
        "step the scheduler only where it is built and stepped here, or port `{call}` first",
    ),
    f.OPTIMIZER_NOT_A_PLAIN_ASSIGNMENT: (
        "the optimizer is not assigned by a plain `name = ...` statement",
        None,
    ),
    f.SCHEDULE_MOVE_REORDERS_CALLS: (
        "putting the schedule next to the optimizer would change the order in which {calls} "
        "are evaluated (calls may depend on each other: random draws, counters)",
        "bind the values of those calls to names first, in source order, then pass the names",
    ),
    f.SCHEDULE_CANNOT_MOVE: (
        "the schedule's arguments are computed after the optimizer, and the optimizer is used "
        "(or a name in its arguments is rebound) in between, so neither can move next to the "
        "other",
        "define the schedule before the optimizer and pass it as learning_rate",
    ),
    f.SCHEDULE_FUNCTION_READS_REBOUND: (
        "`{function}` reads `{name}`, which is assigned after the scheduler is built "
        "({place}): torch calls it at each `sched.step()`, the optax schedule at each update "
        "(once, when traced under jit), so the two may read different values",
        "compute the factor from the update count alone (bind `{name}` once, before the "
        "scheduler), or write the learning rate into the optimizer's injected hyperparameters "
        "where torch steps the scheduler",
    ),
    f.SCHEDULE_FUNCTION_READS_OBJECT: (
        "`{function}` reads `{read}`, an attribute or item of an object that may change in "
        "place after the scheduler is built: torch calls the function at each `sched.step()`, "
        "the optax schedule at each update (once, when traced under jit), so the two may read "
        "different values",
        "bind the value to a new name once, before the scheduler (`value = {read}`), and read "
        "that name in the function",
    ),
    f.SCHEDULE_FUNCTION_READS_SHARED: (
        "`{function}` reads the module global `{name}`, which another file or the file's "
        "`globals()`/`exec` may rebind after the scheduler is built: torch calls the function "
        "at each `sched.step()`, the optax schedule at each update (once, when traced under "
        "jit)",
        "bind the value to a local name before the scheduler and read that name in the function",
    ),
    f.SCHEDULE_FUNCTION_READS_MODULE: (
        "`{function}` reads `{read}` of the module `{module}`, whose globals its own code or "
        "another file may change after the scheduler is built (`{module}.NAME = ...`): torch "
        "calls the function at each `sched.step()` and once when the scheduler is built, the "
        "optax schedule at each update (once, when traced under jit), so the two may read "
        "different values",
        "bind what it reads to a local name before the scheduler and read that name in a "
        "lambda or a `def` of this file",
    ),
    f.SCHEDULE_FUNCTION_BRANCHES: (
        "`{function}` computes with Python control flow or a Python function (`{branch}`), "
        "and the translation calls it with a traced value: MultiplicativeLR's lr at update k "
        "is lr * f(1) * ... * f(k), computed in jax.lax.fori_loop, where a Python branch on "
        "the counter raises TracerBoolConversionError and math.* / min / max / int raise "
        "ConcretizationTypeError",
        "write the function with jnp (`jnp.where(epoch < 3, 0.5, 0.9)`, `jnp.minimum`, "
        "`jnp.cos`) and run the codemod again, or write the product as one schedule: lambda "
        "count: lr * prod(f(i) for i in range(1, count + 1)) with a Python f, outside jit",
    ),
    f.SCHEDULE_FUNCTION_NOT_READ: (
        "`{function}` calls or is `{callable}`, which is not a lambda, a `def` of this file "
        "or an import, so what it reads cannot be checked: torch calls the function at each "
        "`sched.step()`, the optax schedule at each update (once, when traced under jit), and "
        "a value it reads that changes after the scheduler is built would differ",
        "pass a lambda or a `def` of this file that computes the factor from its argument and "
        "names bound once before the scheduler",
    ),
    f.SCHEDULE_MOVE_PAST_CHANGE: (
        "`{statement}` runs between the optimizer and the schedule and may change a value "
        "the arguments read; put next to each other, one would read it on the other side "
        "of the change",
        "compute the values first, then build the schedule before the optimizer and pass it "
        "as learning_rate",
    ),
    f.SCHEDULE_MOVE_PAST_HIDDEN_CODE: (
        "`{statement}` runs between the optimizer and the schedule and may run {method} of "
        "another file without a call written (a property, an item access or an operator), "
        "whose body may change a value the arguments read; put next to each other, one "
        "would read it on the other side of the change",
        "compute the values first, then build the schedule before the optimizer and pass it "
        "as learning_rate",
    ),
    f.COMPONENT_STEPPED_ALONE: ("a component scheduler is stepped on its own", None),
    f.SEQUENCE_PART_REFUSED: ("`{part}` is a part of `{outer}`: {reason}", "{suggestion}"),
    f.WARMUP_OF_UNTRANSLATED: ("it is the warm-up before `{main}`: {reason}", None),
    f.FACTORY_NOT_FOLDED: ("{reason}", "pass the schedule as the optimizer's learning_rate"),
    f.FACTORY_METRIC_SCHEDULER: (
        "a scheduler that reads the training metric is not folded from the factory that "
        "builds it (called at {where})",
        "build the scheduler next to the optimizer",
    ),
    f.FACTORY_PER_EPOCH: (
        "the scheduler steps once per epoch, and --steps-per-epoch {steps_per_epoch} names "
        "values of the caller (at {where}) that the factory building it cannot see",
        "build the scheduler next to the optimizer",
    ),
    f.STEPS_PER_EPOCH_ASSIGNED_LATE: (
        "--steps-per-epoch {steps_per_epoch} reads `{late}`, which is assigned after this "
        "scheduler; the translation evaluates it where the schedule is built",
        "build the scheduler after `{late}` is assigned, or pass an expression whose names are "
        "bound there",
    ),
    # gradient clipping
    f.CLIP_NORM_USED: (
        "its return value (the total gradient norm) is used; in optax the clipping happens "
        "inside the optimizer's chain and returns no norm",
        "norm = {norm}  # the same norm, before the update; and put " + _CLIP_IN_CHAIN,
    ),
    f.CLIP_NORM_OUTSIDE_STEP: (
        "its return value (the total gradient norm) is used, and no translated training step "
        "computes the gradients here; the clipping is already the head of `{optimizer}`'s tx",
        "{name} = {norm}  # after the gradients are computed; then drop this call",
    ),
    f.CLIP_WITHOUT_OPTIMIZER: (
        "no single translated optimizer is stepped after this call in the same block",
        "add the clipping to the optimizer's chain: `optax.chain({transform}, <optimizer>)`",
    ),
    f.CLIP_SEVERAL_OPTIMIZERS: (
        "several optimizers are stepped after this call",
        "add the clipping to the optimizer's chain: `optax.chain({transform}, <optimizer>)`",
    ),
    f.CLIP_SCALED_GRADIENTS: (
        "a GradScaler steps the optimizer after it and no `unscale_` comes before it: torch "
        "clips the loss-scaled gradients (the threshold applies to grads times the scale), "
        "which `{transform}` in the optimizer's chain does not do",
        "JAX needs no loss scaling in float32/bfloat16: drop the scaler and put " + _CLIP_IN_CHAIN,
    ),
    f.CLIP_BACKWARD_AFTER: (
        "a backward pass runs after it and before the optimizer's step() (`{backward}` at "
        "{place}): torch clips only the gradients computed before this call and adds the "
        "later ones unclipped, optax would clip their sum",
        "clip after the last backward pass, right before the step, then put " + _CLIP_IN_CHAIN,
    ),
    f.CLIP_GRADIENTS_MAY_CHANGE_AFTER: (
        "`{code}` ({place}) runs after it and before the optimizer's step(), and {why}: torch "
        "clips only the gradients present at this call, optax would clip the ones the step uses",
        "clip after the last backward pass, right before the step, then put " + _CLIP_IN_CHAIN,
    ),
    f.CLIP_UNDER_OTHER_CONTROL: (
        "the optimizer's step() after it runs under a condition or loop this call is not in: "
        "torch clips the gradients accumulated so far at every call, optax clips once per "
        "update",
        "clip where the optimizer steps (in the same condition), then put " + _CLIP_IN_CHAIN,
    ),
    f.CLIP_VALUE_VARIES: (
        "`{name}={value}` is evaluated at every step in torch, but in optax the clip is part "
        "of `{optimizer}`'s chain, built once with it: {problem}",
        "compute `{name}` before `{optimizer}` is built and keep it fixed, then run the codemod "
        "again; or clip each step's gradients yourself, before the update",
    ),
    f.CLIP_SUBSET: (
        "it clips the gradients of `{clipped}` but `{optimizer}` trains `{trained}`; in "
        "`{optimizer}`'s optax chain a clip would act on every gradient `{optimizer}` updates, "
        "not only on those",
        None,
    ),
    f.LR_IN_DECAY: (
        "{optimizer}'s update is not proportional to its learning rate (it decays the updated "
        "parameters by lr * weight_decay: an lr * lr term), so this scheduler, which scales the "
        "whole update or writes the lr while training, cannot be folded into its translation",
        "pass the lr of each update as the learning rate the translation injects (its "
        "`optax.inject_hyperparams(lambda rate, decay: ...)(lr, weight_decay)` element takes a "
        "schedule of the update count), or port it by hand",
    ),
    f.INJECTED_LR_SCHEDULE: (
        "the code writes or reads this optimizer's learning rate, but its translation computes "
        "the rate from the update count (`{lr}`): optax.inject_hyperparams re-evaluates such a "
        "callable at every update, so a written lr would be lost, and torch's group lr is not "
        "that decayed rate",
        "inject the base lr and apply the decay by hand, e.g. "
        "`optax.chain(optax.inject_hyperparams(optax.adagrad)(learning_rate=lr, ...), "
        "optax.scale_by_schedule(lambda count: 1 / (1 + count * lr_decay)))`; or port it by hand",
    ),
    f.CLIP_CONSUMED_ITERATOR: (
        "it clips the gradients of `{clipped}`, a name holding an iterator (`{value}`): its "
        "first pass (the optimizer's constructor, or this call's first run) consumes it, and "
        "torch then clips nothing; a clip in the optimizer's chain would clip every gradient",
        "to clip at every step, bind a list (`{clipped} = list({value})`); the torch program "
        "as written clips the gradients at most once",
    ),
    f.CLIP_OTHER_MODEL: (
        "it clips the gradients of `{clipped}`, but `{optimizer}`, the optimizer stepped after "
        "it, trains `{trained}`: `{model}` is not provably `{other}`, and in `{optimizer}`'s "
        "chain the clip would act on the gradients of `{other}`",
        "if `{model}` is another model, clip its gradients at the head of the chain of the "
        "optimizer that trains it (or drop the call if nothing trains it); if it is `{other}`, "
        "write `{trained}` here and run the codemod again",
    ),
    f.CLIP_BESIDE_ESCAPED: (
        "`{clip}` also clips the gradients before `{optimizer}`'s step and is not folded "
        "({why}); the clip calls before one step go into `{optimizer}`'s chain together or "
        "not at all (a chain with only some of them clips other gradients than torch)",
        "port the clipping by hand with that call: every clip call before the step, in "
        "order, at the head of `{optimizer}`'s chain (this one is `{transform}`)",
    ),
    # optimizers
    f.ZERO_GRAD_UNDER_OTHER_CONTROL: (
        "it runs under other loops or conditions than the optimizer's step(), so torch sums "
        "gradients in .grad over several backward passes between the calls; JAX computes "
        "fresh gradients at each step",
        "if this is gradient accumulation: opt = optax.MultiSteps(opt, every_k_schedule=<steps "
        "per update>) (it averages the gradients: scale the loss as torch sums them)",
    ),
    f.ZERO_GRAD_BETWEEN_UPDATES: (
        "it runs in a loop with the optimizer's step() but more often than it (outside the "
        "step's condition): torch drops the gradients summed since the last update, so each "
        "update applies only the gradients of the backward passes after this call",
        "port it with the step: the update takes the gradients computed after this "
        "zero_grad(), not the sum since the last update (this is no gradient accumulation)",
    ),
    f.FROZEN_PARAMETERS: (
        "this file freezes parameters (`{freezing}`): torch skips a parameter without a "
        "gradient (no update, no weight decay), while an optax transformation updates every "
        "leaf of the params it is given (JAX has no requires_grad)",
        "optax.multi_transform({{'trained': <the optax optimizer>, 'frozen': "
        "optax.set_to_zero()}}, param_labels)  # param_labels: 'frozen' on the frozen leaves; "
        "or give the optimizer only the trained subtree of params",
    ),
    f.FROZEN_IN_IMPORTED_FILE: (
        "a file of the repository this file imports freezes parameters where this file may "
        "run it (`{freezing}`): torch skips a parameter without a gradient (no update, no "
        "weight decay), while an optax transformation updates every leaf of the params it is "
        "given (JAX has no requires_grad)",
        "optax.multi_transform({{'trained': <the optax optimizer>, 'frozen': "
        "optax.set_to_zero()}}, param_labels)  # param_labels: 'frozen' on the leaves the "
        "imported code freezes; or give the optimizer only the trained subtree of params",
    ),
    f.UNREAD_SCRIPT_IMPORT: (
        "this file imports `{module}` ({place}) as a script does, from the file beside it, "
        "which the repository index does not resolve (it resolves imports from the folder "
        "above the outermost package): what that code runs on the model is not read, and it "
        "may freeze parameters, which torch then skips while an optax transformation updates "
        "every leaf of the params it is given",
        "import it by its package path (`from <package>.{module} import ...`) so the "
        "conversion reads it, then run the codemod again",
    ),
    f.FROZEN_BY_IMPORTING_FILE: (
        "a file of the repository importing this file may freeze parameters before it "
        "may run this file's code (`{freezing}`): the model handed to "
        "this optimizer may hold frozen parameters; torch skips a parameter without a "
        "gradient (no update, no weight decay, no momentum), while an optax transformation "
        "updates every leaf of the params it is given (JAX has no requires_grad)",
        "optax.multi_transform({{'trained': <the optax optimizer>, 'frozen': "
        "optax.set_to_zero()}}, param_labels)  # param_labels: 'frozen' on the leaves the "
        "importing code freezes; or give the optimizer only the trained subtree of params",
    ),
    f.COMPLEX_PARAMETERS: (
        "parameters may be complex (`{complex}` at {place}): torch's gradient of a real loss "
        "at a complex parameter x+iy is dL/dx + i dL/dy, JAX's is its conjugate (a step "
        "with it moves the imaginary part the wrong way, even with SGD), and torch's "
        "Adam-family optimizers treat a complex parameter per real component (view_as_real) "
        "where optax uses |g|^2",
        "conjugate the gradients before the optimizer (`grads = jax.tree.map(jnp.conj, "
        "grads)`), and for Adam, AdamW or RMSprop keep complex parameters as pairs of real "
        "arrays (torch's view_as_real) in params; or keep the parameters real",
    ),
    f.COMPLEX_IN_OTHER_FILE: (
        "parameters may be complex in a file of the repository this file imports or that "
        "imports it (`{complex}` at {place}): torch's gradient of a real loss at a complex "
        "parameter x+iy is dL/dx + i dL/dy, JAX's is its conjugate (a step with it moves the "
        "imaginary part the wrong way, even with SGD), and torch's Adam-family optimizers "
        "treat a complex parameter per real component (view_as_real) where optax uses |g|^2",
        "if this optimizer trains complex parameters: conjugate the gradients before the "
        "optimizer (`grads = jax.tree.map(jnp.conj, grads)`), and for Adam, AdamW or RMSprop "
        "keep them as pairs of real arrays (torch's view_as_real) in params",
    ),
    f.GRADIENT_SKIPPED: (
        "a trained parameter may get no gradient in some steps (`{skip}` at {place} "
        "{why}): torch's "
        "optimizer skips a parameter whose .grad is None (no update, no weight decay, no "
        "change of its moments or step count), while an optax transformation is given a zero "
        "gradient there and still decays it and moves it by its moments",
        "if every parameter this optimizer trains gets a gradient in every step, the "
        "optimizer translates as it stands; else give the optimizer only the parameters that "
        "do, or mask the others' updates in the steps that skip them (optax.masked with the "
        "step's labels)",
    ),
    f.GRADIENT_SKIPPED_ELSEWHERE: (
        "a trained parameter may get no gradient in some steps, through a file of the "
        "repository this file imports or that imports it (`{skip}` at {place} {why}): torch's "
        "optimizer skips a parameter whose .grad is None (no update, no weight decay, no "
        "change of its moments or step count), while an optax transformation is given a zero "
        "gradient there and still decays it and moves it by its moments",
        "if every parameter this optimizer trains gets a gradient in every step, the "
        "optimizer translates as it stands; else give the optimizer only the parameters that "
        "do, or mask the others' updates in the steps that skip them",
    ),
    f.HOOKS_REGISTERED: (
        "this file registers a hook (`{hook}`): torch computes the loss through forward hooks "
        "and steps with the gradients backward hooks return, while the gradient of a JAX loss "
        "function runs no hook, so the optax transformation would be given other gradients",
        "port the hook into the loss function (a forward hook) or into the optax chain before "
        "the optimizer (a gradient hook: optax.chain(<the hook as a GradientTransformation>, "
        "<the optax optimizer>))",
    ),
    f.HOOKS_REGISTERED_ELSEWHERE: (
        "a file of the repository this file imports or that imports it registers a hook "
        "(`{hook}` at {place}): torch computes the loss through forward hooks and steps with "
        "the gradients backward hooks return, while the gradient of a JAX loss function runs "
        "no hook, so the optax transformation would be given other gradients",
        "port the hook into the loss function (a forward hook) or into the optax chain before "
        "the optimizer (a gradient hook: optax.chain(<the hook as a GradientTransformation>, "
        "<the optax optimizer>))",
    ),
    f.PARAMETERS_OVERRIDDEN: (
        "{where} defines `parameters`, `named_parameters` or a method they go through "
        "(`named_modules`, `_named_members`) for its objects: what "
        "`m.parameters()` gives the optimizer is that code's choice (a part of the model, "
        "say), while the translation trains every parameter of the model",
        "give the optimizer the parameters torch's gets (a mask or `wrt=` filter over the "
        "model's parameters), or rename the override and run the codemod again",
    ),
    f.MODEL_LOADED_IN_CLASS: (
        "a module class of a file of the repository linked to this one stores a model loaded "
        "whole on itself (`{load}` at {place}): a model built from it holds that model, whose "
        "frozen parameters (requires_grad=False) were saved with it, not written in the code; "
        "torch skips a frozen parameter (no update, no weight decay), while an optax "
        "transformation (or nnx.Optimizer) updates every leaf of the params it is given",
        "check which parameters the saved model trains; if all, build it from its class and "
        "load a state_dict, and run the codemod again; else keep the frozen ones out of the "
        "optimizer (optax.multi_transform with optax.set_to_zero() for them)",
    ),
    f.MODEL_LOADED: (
        "the model is loaded whole (`{load}` at {place}): which of its parameters are frozen "
        "(requires_grad=False) was saved with it, not written in the code; torch skips a "
        "frozen parameter (no update, no weight decay), while an optax transformation "
        "updates every leaf of the params it is given",
        "check which parameters the saved model trains; if all, the optimizer translates as "
        "it stands (build the model from its class and load a state_dict, and run the "
        "codemod again); else optax.multi_transform({{'trained': <the optax optimizer>, "
        "'frozen': optax.set_to_zero()}}, param_labels)",
    ),
    f.TORCH_REPLACED: (
        "this file replaces torch's `{name}` (`{change}`): what runs there is not torch's, so "
        "the translation of torch's would mean something else",
        "translate the replacement by hand, or drop the patch and run the codemod again",
    ),
    f.TORCH_REPLACED_ELSEWHERE: (
        "a file of the repository this file imports or that imports it replaces torch's "
        "`{name}` (`{change}` at {place}): what runs here may be the replacement, so the "
        "translation of torch's would mean something else",
        "translate the replacement by hand, or drop the patch and run the codemod again",
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
        "later is never updated by it), while an optax transformation updates every leaf of "
        "the params it is given",
        "build the optimizer after the change (then torch trains the new parameters too), or "
        "give the optimizer only the leaves torch trains: optax.multi_transform({{'trained': "
        "<the optax optimizer>, 'new': optax.set_to_zero()}}, param_labels)",
    ),
    f.PARAM_GROUPS_OVERLAP: (
        "the param groups' predicates overlap or leave parameters out (a parameter in two "
        "groups, or in none, is not one masked optax transformation)",
        "make the predicates complementary (`p.dim() >= 2` and `p.dim() < 2`)",
    ),
    f.STEP_COUNT_NOT_INTEGER: (
        "`{name}={value}` may not be an integer >= 0: torch compares its integer step count "
        "with it (a float or a negative value makes it decay at other steps, or never), while "
        "the optax schedule divides the update count by it",
        "write `{name}` as an integer >= 0 (e.g. `int(...)` or `//`) if that is what torch "
        "did here, or port the schedule by hand",
    ),
    f.PER_GROUP_SEQUENCE: (
        "`{name}` is a sequence: torch applies one value per param group, and the optax "
        "translation takes a single value",
        "pass one value (`{name}={first}` when there is one param group)",
    ),
    f.ARGUMENT_KEPT: (
        "`{name}={shown}` is no literal, and the optimizer keeps that object and reads it at "
        "every step: code changing it after the construction (`{shown}[1] = ...`) changes "
        "torch's updates, while the translation reads it once",
        "pass a literal (`{name}=(0.9, 0.999)`), or bind the values once as a tuple",
    ),
    f.FLAG_NOT_BOOL: (
        "{flags} is no bool: torch takes the flag by its truth (`1` as True, `0`, `None` or "
        '`""` as False), and the translation is chosen for `True` or `False` only',
        "pass `True` or `False`",
    ),
    f.CONDITION_NOT_LITERAL: (
        "{names} is not a literal, and the translation depends on its value",
        "pass a literal value, or write the optax expression for each case",
    ),
    # param groups split by a predicate
    f.PARAM_GROUP_LIST_REBOUND: (
        "the param group list `{name}` is assigned more than once, so which groups reach the "
        "optimizer is not certain",
        None,
    ),
    f.PARAM_GROUPS_SEVERAL_MODELS: (
        "the param groups filter the parameters of different models ({models}), so a mask "
        "cannot say which group a leaf is in",
        None,
    ),
    f.PARAM_GROUP_PART_OF_MODEL: (
        "a param group filters `{shown}`, which is not every parameter of one model",
        None,
    ),
    f.PARAM_GROUP_CONDITION_UNKNOWN: (
        "the param group condition `{shown}` is not one the map knows to mean the same on JAX "
        "arrays (a comparison of the parameter's number of dimensions with an integer)",
        None,
    ),
    f.PARAM_GROUPS_RANK_SPLIT_UNSAID: (
        "the param groups split the parameters by rank in a way one comparison does not say",
        None,
    ),
    f.PARAM_GROUP_VARIABLE_USED: (
        "`{name}` is used elsewhere (`{use}`), which may change the param groups after they "
        "are built",
        None,
    ),
    # torch tensors as hyper-parameters
    f.TENSOR_NOT_A_NUMBER: (
        "`{shown}` is a torch tensor of `{data}`, which is not one number",
        "pass a Python number (optax cannot take a torch tensor), e.g. float({shown})",
    ),
    f.TENSOR_ARGUMENT_CHANGES_NUMBER: (
        "`{shown}` is a torch tensor with `{name}={value}`; optax takes numbers",
        "pass the Python number, if `{name}` does not matter here",
    ),
    f.TENSOR_ROUNDED: (
        "`{shown}` is {where}: torch uses {rounded}, optax gets {number} (the same in float32 "
        "math and under float64 default dtype; float64 parameters under float32 default dtype "
        "differ by about {relative} relative)",
        None,
    ),
    f.TENSOR_HYPERPARAMETER: (
        "`{name}={value}` is a torch tensor ({detail}); optax hyper-parameters must be Python "
        "numbers (or JAX arrays)",
        "pass a Python number: `float({shown})` instead of `{shown}`",
    ),
    f.TENSOR_OF_EXPRESSION: (
        "`{shown}` becomes `float({data})`: {rounding} (measured on float64 parameters, 60 "
        "updates: SGD and Adam about 1e-8, AdamW about 1e-6 relative)",
        None,
    ),
    f.TENSOR_OF_TENSOR: (
        "`{shown}` is a torch tensor of the torch tensor `{data}` (`{origin}`), whose shape "
        "and later writes are not followed",
        "pass the Python number the optimizer should use, e.g. `float({data})`",
    ),
    f.ARRAY_WRITTEN: (
        "`{name}={shown}` names a NumPy array the code also reads at {read}, where it may be "
        "written in place: torch reads its value at every step, the translation once (under "
        "jax.jit, when it is traced)",
        "pass a Python number (`float({shown})`) and change it by rebuilding the optimizer",
    ),
    f.TENSOR_MAY_ALIAS: (
        "`{shown}` is `{data}` itself when `{data}` is a torch tensor of that dtype and device "
        "({api} does not copy it): the optimizer would then hold that tensor, and a write to it "
        "(`.fill_()`, `.copy_()`) would change torch's lr, which a translated number does not",
        "if `{data}` is a Python number, write `float({data})`",
    ),
    f.TENSOR_FLOAT_SHADOWED: (
        "`{shown}` would become `float({data})`, but `float` is a name of this file here",
        "pass the Python number the optimizer should use",
    ),
    f.ARGUMENT_DROPPED: (
        "`{name}={shown}` is not part of the translation (optax has no such option, or a "
        "folded schedule sets it), so its expression would no longer run; torch evaluates "
        "it, and a call there may change what the program computes later",
        "evaluate it in a statement of its own before the optimizer and pass the variable",
    ),
}


def render(finding: Finding) -> Untranslatable:
    """``finding`` in the optax target's words."""
    return f.render(MESSAGES, finding)
