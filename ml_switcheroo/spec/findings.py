"""Findings: the facts analysis and model state when a construct cannot be translated as is.

A ``Finding`` says what is wrong (``kind``, one of the names below) and the values involved
(source snippets, names, numbers as text); it holds no words for the reader. A target renders
it (``Target.messages``: one reason and suggestion template per kind, ``{value}`` placeholders)
into the ``Untranslatable`` the engine turns into an escape hatch, or into a warning. Analysis
and model get the target's renderer (``Render``) from the layer above, so they never name a
target themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ml_switcheroo.spec.errors import Untranslatable

# Schedulers (analysis/plan.py)
# ``where``: where the deciding fact sits (`` (trainer.py:57 ...)``), or empty
SCHEDULE_WITHOUT_TRANSLATED_OPTIMIZER = "schedule_without_translated_optimizer"  # values: where
SEVERAL_SCHEDULERS = "several_schedulers"  # values: where
# Appended to the suggestion of an escaped scheduler: the schedule its call means, written out
# by the target with the optimizer's lr as ``{lr}`` (``Planner.schedule_text``)
SCHEDULE_WRITTEN_OUT = "schedule_written_out"  # values: schedule, lr
SCHEDULER_STEP_NOT_CALLED = "scheduler_step_not_called"  # values: where, optimizer
SCHEDULER_STEPPING_NOT_PROVED = "scheduler_stepping_not_proved"  # values: reason, optimizer
SCHEDULER_STEP_WITH_EPOCH = "scheduler_step_with_epoch"  # values: optimizer
SCHEDULER_STEP_CONDITIONAL = "scheduler_step_conditional"  # values: optimizer
SCHEDULER_STEP_UNEVEN = "scheduler_step_uneven"  # values: reason, optimizer
SCHEDULER_STEPS_PER_EPOCH = "scheduler_steps_per_epoch"  # values: count, optimizer
SCHEDULER_PER_EPOCH_WITHOUT_LENGTH = "scheduler_per_epoch_without_length"  # where, optimizer
SCHEDULER_STEP_UNKNOWN = "scheduler_step_unknown"  # values: where, optimizer
# the optimizer's param_groups used otherwise than to read the lr: a write there changes the lr
# torch's scheduler works on, which a schedule folded into the optimizer would not see
SCHEDULER_LR_WRITTEN = "scheduler_lr_written"  # values: groups (`opt.param_groups` at place)
PART_OF_UNTRANSLATED_SCHEDULER = "part_of_untranslated_scheduler"  # name, reason, suggestion
SCHEDULER_APART_FROM_OPTIMIZER = "scheduler_apart_from_optimizer"  # values: optimizer_place,
# optimizer_function, scheduler_place, scheduler_function
SCHEDULER_HANDED_TO_CALL = "scheduler_handed_to_call"  # values: name, call, place
OPTIMIZER_NOT_A_PLAIN_ASSIGNMENT = "optimizer_not_a_plain_assignment"
SCHEDULE_MOVE_REORDERS_CALLS = "schedule_move_reorders_calls"  # values: calls
SCHEDULE_CANNOT_MOVE = "schedule_cannot_move"
SCHEDULE_MOVE_PAST_CHANGE = "schedule_move_past_change"  # values: statement
SCHEDULE_MOVE_PAST_HIDDEN_CODE = "schedule_move_past_hidden_code"  # statement, method
SCHEDULE_FUNCTION_READS_REBOUND = "schedule_function_reads_rebound"  # name, function, place
SCHEDULE_FUNCTION_READS_OBJECT = "schedule_function_reads_object"  # read, function
SCHEDULE_FUNCTION_READS_SHARED = "schedule_function_reads_shared"  # name, function
SCHEDULE_FUNCTION_NOT_READ = "schedule_function_not_read"  # callable, function
# a function the translation calls with a traced value (the map's `traced`) branches in Python
# (`if epoch < 3:`, `x if c else y`, `and`/`or`, `min`/`max`, `math.*`); values: branch, function
SCHEDULE_FUNCTION_BRANCHES = "schedule_function_branches"
SCHEDULE_FUNCTION_READS_MODULE = "schedule_function_reads_module"  # read, module, function
COMPONENT_STEPPED_ALONE = "component_stepped_alone"
SEQUENCE_PART_REFUSED = "sequence_part_refused"  # values: part, outer, reason, suggestion
WARMUP_OF_UNTRANSLATED = "warmup_of_untranslated"  # values: main, reason
STEPS_PER_EPOCH_ASSIGNED_LATE = "steps_per_epoch_assigned_late"  # values: steps_per_epoch, late
FACTORY_NOT_FOLDED = "factory_not_folded"  # values: reason
FACTORY_METRIC_SCHEDULER = "factory_metric_scheduler"  # values: where
FACTORY_PER_EPOCH = "factory_per_epoch"  # values: steps_per_epoch, where
# ReduceLROnPlateau written where it steps (targets/nnx/plateau.py)
PLATEAU_NOT_LITERAL = "plateau_not_literal"  # values: names
PLATEAU_EPS_FLOOR_UNKNOWN = "plateau_eps_floor_unknown"  # values: names
PLATEAU_NAME_TAKEN = "plateau_name_taken"  # values: name
PLATEAU_LINE_NOT_ALONE = "plateau_line_not_alone"  # values: shown
PLATEAU_MAX_IN_CHAIN = "plateau_max_in_chain"  # values: mode
# ReduceLROnPlateau in the optimizer's chain whose step(metric) is not proved to run once per
# update, right after it (per epoch, under a condition, not in this file)
PLATEAU_NOT_PER_UPDATE = "plateau_not_per_update"  # values: reason, optimizer
WRITTEN_LR_IN_CHAIN = "written_lr_in_chain"  # values: tx (NNX: a per-epoch lr write)
# the optimizer's learning rate is a schedule of the update count in its translation (Adagrad's
# lr_decay: `lambda count: lr / (1 + count * lr_decay)`), so an injected lr written or read
# would not be torch's group lr; values: lr (the emitted schedule)
INJECTED_LR_SCHEDULE = "injected_lr_schedule"
# the optimizer's lr also scales a decay of the updated parameters (the map's `lr_in_decay`),
# and the scheduler would scale the whole update or write one injected lr; values: optimizer
LR_IN_DECAY = "lr_in_decay"
# NNX: a per-epoch scheduler built in another method than its epoch loop (`__init__`)
SCHEDULER_BUILT_IN_OTHER_METHOD = "scheduler_built_in_other_method"  # built, stepped, optimizer
# NNX: a scheduler whose stepping no other rule proves and whose step() calls cannot be counted
# where they run (analysis/counted.py); values: reason, suggestion (the other rule's), problem
SCHEDULER_NOT_COUNTED = "scheduler_not_counted"
# NNX: the name of the counter kept next to a counted scheduler is taken; values: name
COUNTER_NAME_TAKEN = "counter_name_taken"
# NNX: a counted scheduler stepped inside a training-step region; values: step, optimizer_step
COUNTED_STEP_IN_REGION = "counted_step_in_region"
# Gradient clipping (analysis/plan.py)
CLIP_NORM_USED = "clip_norm_used"
# values: name, optimizer (a norm used where no translated training step computes gradients)
CLIP_NORM_OUTSIDE_STEP = "clip_norm_outside_step"
CLIP_WITHOUT_OPTIMIZER = "clip_without_optimizer"
CLIP_SEVERAL_OPTIMIZERS = "clip_several_optimizers"
CLIP_SCALED_GRADIENTS = "clip_scaled_gradients"
CLIP_UNDER_OTHER_CONTROL = "clip_under_other_control"
CLIP_BACKWARD_AFTER = "clip_backward_after"  # values: backward, place
# a call the codemod cannot see into (a function that may run a backward pass) or a write of a
# gradient runs after the clip, before the step; values: code, place, why
CLIP_GRADIENTS_MAY_CHANGE_AFTER = "clip_gradients_may_change_after"
CLIP_VALUE_VARIES = "clip_value_varies"  # values: name, value, optimizer, problem
CLIP_SUBSET = "clip_subset"  # values: clipped, optimizer, trained
# the clip's parameters are a name holding an iterator (`ps = model.parameters()`); values:
# clipped, value
CLIP_CONSUMED_ITERATOR = "clip_consumed_iterator"
# every parameter of a model not provably the one the optimizer stepped after it trains;
# values: clipped, optimizer, trained, model (the clip's), other (the optimizer's)
CLIP_OTHER_MODEL = "clip_other_model"
# another clip call feeding the same optimizer's steps escapes (all fold or none); values:
# clip (that call), optimizer, why (its reason)
CLIP_BESIDE_ESCAPED = "clip_beside_escaped"
# Optimizers (analysis/plan.py, analysis/param_groups.py, model/)
ZERO_GRAD_UNDER_OTHER_CONTROL = "zero_grad_under_other_control"
ZERO_GRAD_BETWEEN_UPDATES = "zero_grad_between_updates"
FROZEN_PARAMETERS = "frozen_parameters"  # values: freezing
# a file of the repository this file imports may freeze parameters it runs; values: freezing
FROZEN_IN_IMPORTED_FILE = "frozen_in_imported_file"
# a file of the repository importing this file may freeze parameters before it runs this file's
# code (``model.fc.requires_grad_(False)`` then ``train(model)``); values: freezing
FROZEN_BY_IMPORTING_FILE = "frozen_by_importing_file"
# `from models import Net` naming only a file beside this one (a script's own folder is first
# on sys.path), which the repository index, rooted above the package, does not resolve: what
# that file runs on the model (a freeze) is unread; values: module, place
UNREAD_SCRIPT_IMPORT = "unread_script_import"
# the file registers a hook on a tensor or module (``hook_methods``); values: hook
HOOKS_REGISTERED = "hooks_registered"
# the same in a file of the repository this file imports or that imports it; values: hook, place
HOOKS_REGISTERED_ELSEWHERE = "hooks_registered_elsewhere"
# a class of the file or the repository binds `parameters`/`named_parameters`; values: where
PARAMETERS_OVERRIDDEN = "parameters_overridden"
# the optimizer's model is bound to a call of the map's `parameters.loaded_models`
# (`model = torch.load(path)`): its frozen parameters were saved with it; values: load, place
MODEL_LOADED = "model_loaded"
# a module class of a file of the repository linked to this one stores a loaded model on
# `self` (`self.backbone = torch.load(p)`); values: load, place
MODEL_LOADED_IN_CLASS = "model_loaded_in_class"
# parameters may be complex (the map's ``parameters.complex_names``, an imaginary literal) in
# this file; values: complex (the code), place (``file.py:line``)
COMPLEX_PARAMETERS = "complex_parameters"
# the same in a file of the repository this file imports or that imports it; values: complex,
# place
COMPLEX_IN_OTHER_FILE = "complex_in_other_file"
# a trained parameter may get no gradient in a step (`analysis/gradient_skips.py`:
# `self.heads[task](h)`, a submodule used only under `.detach()` / `torch.no_grad()`, a
# LayerDrop `continue`, `p.grad = None`); values: skip (the code), why (`gradient_skips.CUT`...),
# place (``file.py:line``)
GRADIENT_SKIPPED = "gradient_skipped"
# the same in a file of the repository this file imports or that imports it; values: skip,
# why, place
GRADIENT_SKIPPED_ELSEWHERE = "gradient_skipped_elsewhere"
# the file assigns an API of the map or its module (``torch.optim.SGD = MySGD``,
# ``SGD.step = ...``, ``setattr(torch.optim, "SGD", ...)``); values: name, change
TORCH_REPLACED = "torch_replaced"
# the same in a file of the repository this file imports or that imports it
# (``CrossFile.replaced_elsewhere``); values: name, change, place
TORCH_REPLACED_ELSEWHERE = "torch_replaced_elsewhere"
MODEL_CHANGED = "model_changed"  # values: change (analysis/changed_models.py)
# an optimizer over a whole submodule and another whose parameters may overlap its; values:
# other (the other's constructor), place
SHARED_PARAMETERS = "shared_parameters"
PARAM_GROUPS_OVERLAP = "param_groups_overlap"
PER_GROUP_SEQUENCE = "per_group_sequence"  # values: name, first
STEP_COUNT_NOT_INTEGER = "step_count_not_integer"  # values: name, value
CONDITION_NOT_LITERAL = "condition_not_literal"  # values: names
# an argument the optimizer keeps and reads at every step, given as no literal (`betas=bt`)
ARGUMENT_KEPT = "argument_kept"  # values: name, shown
# a flag the map tests for True or False given as a literal of another type (`amsgrad=1`)
FLAG_NOT_BOOL = "flag_not_bool"  # values: flags
# Param groups split by a predicate (analysis/param_groups.py)
PARAM_GROUP_LIST_REBOUND = "param_group_list_rebound"  # values: name
PARAM_GROUPS_SEVERAL_MODELS = "param_groups_several_models"  # values: models
PARAM_GROUP_PART_OF_MODEL = "param_group_part_of_model"  # values: shown
PARAM_GROUP_CONDITION_UNKNOWN = "param_group_condition_unknown"  # values: shown
PARAM_GROUPS_RANK_SPLIT_UNSAID = "param_groups_rank_split_unsaid"
PARAM_GROUP_VARIABLE_USED = "param_group_variable_used"  # values: name, use
# Torch tensors as hyper-parameters (model/tensor_values.py)
TENSOR_NOT_A_NUMBER = "tensor_not_a_number"  # values: shown, data
TENSOR_ARGUMENT_CHANGES_NUMBER = "tensor_argument_changes_number"  # values: shown, name, value
TENSOR_ROUNDED = "tensor_rounded"  # a warning; values: shown, where, rounded, number, relative
TENSOR_HYPERPARAMETER = "tensor_hyperparameter"  # values: name, value, detail, shown
TENSOR_OF_EXPRESSION = "tensor_of_expression"  # a warning; values: shown, data, rounding
TENSOR_OF_TENSOR = "tensor_of_tensor"  # values: shown, data, origin
TENSOR_MAY_ALIAS = "tensor_may_alias"  # values: shown, data, api
TENSOR_FLOAT_SHADOWED = "tensor_float_shadowed"  # values: shown, data
ARRAY_WRITTEN = "array_written"  # values: name, shown, read
# an argument the translation does not emit (ignored, or replaced by a folded schedule) whose
# expression may do something when torch evaluates it (`foreach=flag()`, `lr=pick()`)
ARGUMENT_DROPPED = "argument_dropped"  # values: name, shown

KINDS = frozenset(
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
)
# Kinds only the NNX target's hooks report (the optax target never meets them)
NNX_KINDS = frozenset(
    {
        PLATEAU_NOT_LITERAL,
        PLATEAU_NAME_TAKEN,
        PLATEAU_LINE_NOT_ALONE,
        PLATEAU_MAX_IN_CHAIN,
        WRITTEN_LR_IN_CHAIN,
        SCHEDULER_BUILT_IN_OTHER_METHOD,
        SCHEDULER_NOT_COUNTED,
        COUNTER_NAME_TAKEN,
        COUNTED_STEP_IN_REGION,
    }
)

# (reason, suggestion) templates of one kind: ``{name}`` is the finding's value ``name``.
Message = tuple[str, str | None]
Messages = Mapping[str, Message]
Render = Callable[["Finding"], Untranslatable]


@dataclass(frozen=True)
class Finding:
    """What keeps a construct from translating (``kind``), with the values involved."""

    kind: str
    values: Mapping[str, str] = field(default_factory=dict)


def render(messages: Messages, finding: Finding) -> Untranslatable:
    """``finding`` in the words of ``messages``; a kind they lack is stated as it is."""
    message = messages.get(finding.kind)
    if message is None:
        shown = ", ".join(f"{name}={value}" for name, value in finding.values.items())
        return Untranslatable(f"{finding.kind.replace('_', ' ')}" + (f": {shown}" if shown else ""))
    reason, suggestion = message
    said = suggestion.format(**finding.values) if suggestion is not None else None
    return Untranslatable(reason.format(**finding.values), said or None)


def stated(finding: Finding) -> Untranslatable:
    """``finding`` stated without a target's words (``render`` with no messages)."""
    return render({}, finding)
