"""The semantic map: which source APIs are wired to which hook, and how their arguments translate.

The shipped map is ``ml_switcheroo/semantic_map.yaml``; users add or override entries with
extra files (``--semantic-map FILE``). Files are read with a safe YAML loader, validated
completely, and compiled once per process (``targets.catalogue.load_semantic_map`` is
cached). Any problem raises ``SemanticMapError`` whose message names the file, the line and
the entry.

Schema (see the shipped file for the full, commented example)::

    version: 1
    imports:   {optax: "import optax"}                  # names templates may use
    types:     {torch.optim.Optimizer: {aliases: [...], parameter_names: "regex"}}
    scaler_methods: {scale: scale, unscale: unscale_, update: update}    # GradScaler's
    modules: {losses: [torch.nn.MSELoss], self_methods: [to], wrappers: [...], grad_contexts: [...]}
    parameters: {arguments: [params], module_methods: [parameters], ...}   # ParameterSpec
    tensor_values: {literals: {torch.tensor: "data, *, dtype=None"}, ...}  # TensorValueSpec
    types:     {torch.optim.Optimizer: {aliases: [...], parameter_names: "regex",
                translated: {members: [init, update], reason: "...", suggest: "..."}}}
    torch_only_calls: {pickle.dump: {reason: "...", suggest: "..."}}  # functions that take
                                                    # a translated value as the torch object
    passthrough_calls: [builtins.print]             # functions that take any object
    dynamic_code_calls: [builtins.exec]             # run code from strings: imports stay
    binding_calls: [functools.partial]              # bind arguments of a function
    pure_calls: [math.ceil]                         # read numbers, change nothing
    recording_modules: [math, logging]              # functions that only read their arguments
    apis:
      torch.optim.SGD:                                  # a call, or Type.method for methods
        role: constructor                               # what it is to the planner (spec/roles.py)
        hook: optimizer_constructor                     # a registered hook: its renderer
        aliases: [torch.optim.sgd.SGD]                  # other names of the same call
        returns: torch.optim.Optimizer                  # what the call produces (receivers)
        status: exact | approximate | escape
        tolerance: 1e-7                                 # approximate only
        signature: "params, lr=1e-3, *, maximize=False" # torch's, defaults included
        ignore: [foreach]                               # arguments that do not change the math
        chain:                                          # optax.chain links, in order
          - {when: {maximize: true}, emit: "optax.scale(-1.0)"}
          - {emit: "optax.sgd(learning_rate={lr})"}
        escapes:                                        # when stock optax has no exact form
          - {unless: {dampening: 0}, reason: "...", suggest: "..."}
        lifts:                                          # an override only: escapes of the entry
          - {unless: {dampening: 0}, reason: "..."}     # it replaces that it translates (why)
        reason: "..."                                   # method hooks: the escape text
        suggest: "..."
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import libcst as cst
import yaml

from ml_switcheroo.spec import known_apis, roles
from ml_switcheroo.spec.errors import SemanticMapError
from ml_switcheroo.spec.signature import Signature, dotted_name
from ml_switcheroo.spec.template import _PLACEHOLDER, Template

BUILTIN_MAP = Path(__file__).resolve().parent.parent / "semantic_map.yaml"
OPTAX_TORCH_MODULE = Path(__file__).resolve().parent.parent / "optax_torch.py"

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_SIGNATURE_LENGTH = 2000  # characters; the shipped map's longest has about 250
STATUSES = ("exact", "approximate", "escape")
MODES = ("any", "stock", "exact")
CHAIN_TAIL = "chain_tail"  # the slot of a scheduler that joins the optimizer's chain

_TOP_KEYS = {
    "version",
    "chain",
    "inject_hyperparams",
    "count_wrapper",
    "join_schedules",
    "accumulate",
    "backward_methods",
    "module_zero_grad_methods",
    "inject_static_args",
    "gradient_attributes",
    "reading_methods",
    "writing_suffix",
    "writing_keywords",
    "writing_functions",
    "gradient_free_methods",
    "torch_only_module_names",
    "argument_free_module_methods",
    "module_moves",
    "concrete_builtins",
    "concrete_methods",
    "dim_reductions",
    "tracer_rejecting_packages",
    "graph_free_reads",
    "graph_free_modules",
    "graph_free_containers",
    "module_mode_attributes",
    "in_place_suffix",
    "in_place_keywords",
    "scaler_methods",
    "modules",
    "parameters",
    "tensor_values",
    "template_names",
    "imports",
    "types",
    "apis",
    "torch_only_calls",
    "passthrough_calls",
    "dynamic_code_calls",
    "binding_calls",
    "pure_calls",
    "recording_modules",
    "fixed_modules",
    "data_modules",
    "fresh_loaders",
    "measured_loaders",
    "measured_loader_positional",
    "measured_loader_keywords",
    "map_style_datasets",
    "sized_by_arguments",
    "batch_wrappers",
    "option_parsers",
    "option_types",
    "option_actions",
    "option_keywords",
    "array_namesakes",
    "array_lacks",
    "array_attributes",
    "array_views",
    "array_moves",
    "array_functions",
    "parameter_chains",
    "device_calls",
    "star_exports",
    "recording_methods",
}
_API_KEYS = {
    "role",
    "hook",
    "returns",
    "status",
    "exact_status",
    "tolerance",
    "note",
    "signature",
    "removed",
    "ignore",
    "chain",
    "escapes",
    "lifts",
    "reason",
    "suggest",
    "learning_rate",
    "momentum_argument",
    "lr_in_decay",
    "attribute",
    "harmless_untranslated",
    "per_group",
    "kept",
    "counts",
    "functions",
    "traced",
    "aliases",
    "dispatch",
    "manual_pair",
    "sequence",
    "in_sequence",
    "value",
}
GRADIENTS = "grads"  # the placeholder of an entry's ``value`` links: the update's gradients
_MANUAL_PAIR_KEYS = {"part", "length", "when", "unless"}
MANUAL_PAIR_PARTS = ("warmup", "main")
_IN_SEQUENCE_KEYS = {"refused", "reason", "suggest"}
IN_SEQUENCE_REFUSED = ("later", "any")  # refused after the first part / in any position
_DISPATCH_KEYS = {"argument", "forward", "keywords", "cases"}
_CASE_KEYS = {"api", "pass", "keywords"}
_LINK_KEYS = {"emit", "when", "unless", "unknown_ok", "slot", "mode"}
_RULE_KEYS = {"when", "unless", "reason", "suggest", "mode"}
_PARAMETER_KEYS = {
    "arguments",
    "module_methods",
    "module_classes",
    "wrapped_module",
    "wrappers",
    "unions",
    "filters",
    "iterators",
    "freeze_attributes",
    "freeze_methods",
    "freeze_calls",
    "freezing_calls",
    "loaded_models",
    "value_free_calls",
    "freezing_classes",
    "hook_methods",
    "complex_names",
    "gradient_cutting_methods",
    "gradient_cutting_attributes",
    "gradient_free_contexts",
    "gradient_clearing_methods",
    "parameter_free_modules",
    "freeze_setters",
    "freeze_keywords",
    "frozen_by_default",
    "freeze_flags",
    "freeze_flag_positions",
    "attribute_callers",
    "freeze_references",
    "new_models",
    "new_tensor_methods",
    "new_tensor_functions",
    "kept_tensor_methods",
    "transparent_decorators",
    "dict_builders",
    "group_methods",
    "tensor_classes",
    "structure_methods",
    "structure_functions",
    "container_methods",
    "keeping_methods",
    "tensor_attributes",
    "replacing_arguments",
    "getter_functions",
    "namespace_functions",
    "setter_methods",
    "part_methods",
    "passing_functions",
    "passing_methods",
    "detached_methods",
    "module_packages",
    "model_libraries",
    "dict_methods",
    "rank",
    "masked_option",
    "masked_calls",
    "mask",
    "path_mask",
}
_TENSOR_KEYS = {
    "literals",
    "copies",
    "ignore",
    "dtypes",
    "packages",
    "python_values",
    "python_methods",
    "other_methods",
    "arrays",
}
DTYPE_FORMATS = ("float64", "float32")
_TYPE_KEYS = {"aliases", "parameter_names", "translated"}
_TRANSLATED_KEYS = {"members", "reason", "suggest", "inline"}
_TORCH_ONLY_KEYS = {"reason", "suggest"}
# Placeholders of the texts about a translated value used as the torch object.
TORCH_ONLY_PLACEHOLDERS = frozenset({"name", "state", "use", "translation"})


# --------------------------------------------------------------------------- compiled map


@dataclass(frozen=True)
class Condition:
    """Holds when every ``when`` argument equals its value and every ``unless`` argument differs.

    Arguments listed in ``unknown_ok`` may be non-literal: the condition is then taken to hold
    (the map author asserts the emitted template is exact for any value of them).
    """

    when: tuple[tuple[str, Any], ...] = ()
    unless: tuple[tuple[str, Any], ...] = ()
    unknown_ok: frozenset[str] = frozenset()

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in (*self.when, *self.unless))


@dataclass(frozen=True)
class Link:
    """One link of the emitted ``optax.chain`` (the whole expression when it is alone).

    Links sharing a ``slot`` are alternatives: the first whose condition holds is used.
    """

    emit: Template
    condition: Condition
    slot: str
    mode: str  # "any", "stock" (default output only) or "exact" (--exact only)


@dataclass(frozen=True)
class EscapeRule:
    """When ``condition`` holds, the construct is escaped with ``reason`` and ``suggest``."""

    condition: Condition
    reason: str
    suggest: str | None
    mode: str


@dataclass(frozen=True)
class ManualPair:
    """The part a scheduler can play in a warm-up-then-main pair stepped by hand on one
    optimizer (``if step < W: warm.step() else: main.step()``).

    ``warmup``: stepped ``length`` times (an argument) while ``condition`` holds, it has brought
    the lr back to the optimizer's own lr. ``main``: its first (construction) step keeps the lr
    it finds, and its steps from the optimizer's own lr follow its closed form."""

    part: str  # one of MANUAL_PAIR_PARTS
    length: str | None  # warmup: the argument holding its number of steps
    condition: Condition


@dataclass(frozen=True)
class SequencePart:
    """Why a scheduler cannot be a part of one that runs its parts one after another
    (``SequentialLR``): ``refused`` is ``later`` (only as the first part is it what its own
    schedule says) or ``any`` (in no position)."""

    refused: str  # one of IN_SEQUENCE_REFUSED
    reason: str
    suggest: str | None


@dataclass(frozen=True)
class DispatchCase:
    """One value of a dispatching argument: the entry it selects and what is passed on."""

    api: str  # the entry that translates the call (same hook)
    passes: tuple[str, ...]  # arguments passed on by keyword (when the call gives them)
    keywords: bool  # whether the `keywords` dict is passed on too


@dataclass(frozen=True)
class Dispatch:
    """A call that forwards to another API chosen by a literal argument
    (``get_scheduler("linear", opt, ...)`` is ``get_linear_schedule_with_warmup(opt, ...)``)."""

    argument: str  # the literal that selects the case (``name``)
    forward: str  # the argument passed on first, positionally (``optimizer``)
    keywords: str | None  # a dict argument whose items are passed on as keywords
    cases: Mapping[str, DispatchCase]


@dataclass(frozen=True)
class ApiEntry:
    """A compiled map entry for one source API."""

    name: str
    hook: str
    signature: Signature
    source: str  # file the entry came from
    line: int
    role: str = roles.MEMBER  # what the entry is to the planner (spec/roles.py)
    returns: str | None = None
    status: str = "exact"  # of what the default (stock optax) output emits
    exact_status: str = "exact"  # of what --exact output emits
    tolerance: float | None = None
    note: str | None = None
    ignore: frozenset[str] = frozenset()
    chain: tuple[Link, ...] = ()
    escapes: tuple[EscapeRule, ...] = ()
    # An override's escapes of the entry it replaces that it translates (each with why):
    # every other escape of that entry must be among its own (`_check_overrides_keep_escapes`).
    lifts: tuple[EscapeRule, ...] = ()
    reason: str | None = None
    suggest: str | None = None
    receiver_type: str | None = None  # set for methods: "torch.optim.Optimizer"
    learning_rate: str | None = None  # the argument an LR schedule replaces ("lr")
    momentum_argument: str | None = None  # what a momentum-cycling schedule sets ("betas[0]")
    # The update is not proportional to the lr (the lr also scales a decay of the updated
    # parameters): only a schedule replacing the lr argument is that lr.
    lr_in_decay: bool = False
    attribute: bool = False  # a wired attribute read (`opt.param_groups`), not a call
    # Its hook keeps a read as written unless the receiver is a translated value (one only
    # guessed from its name never is): reading it alone changes nothing on such a receiver.
    harmless_untranslated: bool = False
    per_group: frozenset[str] = frozenset()  # arguments torch also takes as one per group
    # Arguments the optimizer keeps as given and reads at every step (transformers' AdamW keeps
    # the `betas` object): the translation reads them once, so only a literal is fixed.
    kept: frozenset[str] = frozenset()
    counts: frozenset[str] = frozenset()  # arguments torch compares with its step count
    # Function arguments torch calls at each step (``lr_lambda``): the optax schedule calls
    # them at the update, so what they read must be fixed once the scheduler is built.
    functions: frozenset[str] = frozenset()
    # Of those, the ones the translation calls with a traced value (MultiplicativeLR's product
    # runs in `jax.lax.fori_loop`): a Python branch on what they compute raises there.
    traced: frozenset[str] = frozenset()
    aliases: tuple[str, ...] = ()  # other qualified names of the same API (re-exports)
    dispatch: Dispatch | None = None  # translated as the API a literal argument selects
    manual_pair: ManualPair | None = None  # its part in a hand-stepped warm-up/main pair
    # the argument listing schedulers run one after another (SequentialLR's ``schedulers``)
    sequence: str | None = None
    in_sequence: SequencePart | None = None  # why it cannot be such a part (or where)
    # What the call returns, as an expression of the update's gradients (``{grads}``): for a
    # target that computes them (NNX). The first link whose condition holds; none: unknown.
    value: tuple[Link, ...] = ()

    @property
    def method(self) -> str | None:
        return self.name.rpartition(".")[2] if self.receiver_type else None

    @property
    def attaches_to_chain(self) -> bool:
        """A scheduler that joins its optimizer's chain (ReduceLROnPlateau) instead of
        becoming its learning rate."""
        return any(link.slot == CHAIN_TAIL for link in self.chain)

    def status_for(self, exact: bool) -> str:
        return self.exact_status if exact else self.status


@dataclass(frozen=True)
class TorchOnlyText:
    """Why a use of a translated value is torch-only, and the optax way."""

    reason: str
    suggest: str


@dataclass(frozen=True)
class ArrayNamesake:
    """A torch.Tensor method a JAX array has under the same name with other numbers: what
    differs and what to write (``reason``); ``bare``: a call without arguments is the same;
    ``exact``: what a call on an array becomes when every argument is a literal of ``params``
    (a template: ``{x}`` the receiver, ``{<param>}`` each argument), ``params`` the method's
    torch parameters in order with their defaults (None: required, an ``int``), ``imports``
    the keys of the map's ``imports`` the template uses; ``after``: the template in the step's
    scope after the update, where nothing is differentiated (None: ``exact``'s). A last
    parameter ``*name`` takes every further positional argument, each an expression (written
    as is, after its own rewrites, joined by commas: ``x.view(n, -1)`` -> ``x.reshape(n,
    -1)``); ``detaches``: torch's result carries no gradient (``Variable(x)``), so inside the
    loss function the template is written only on a name the loss function does not compute."""

    reason: str
    bare: bool = False
    exact: str | None = None
    params: tuple[tuple[str, Any], ...] = ()
    imports: tuple[str, ...] = ()
    after: str | None = None
    # parameters of ``params`` that take a name or a number (``x.eq(y)``), not only a literal
    operands: tuple[str, ...] = ()
    # the template computes torch's value on a torch tensor and a NumPy array too
    # (``x.size(0)`` -> ``x.shape[0]``): written on any name the step's check covers (the
    # batch's too), not only on the loss function's values
    any_array: bool = False
    detaches: bool = False
    # parameters of ``params`` that must be a device the step proves (``x.to(device)``: a
    # string such as "cuda", ``torch.device(...)``, or a name every binding of which is one)
    devices: tuple[str, ...] = ()
    # a call the template does not write is left as written (torch code, ported by hand), not
    # escaped (``x.to(device)`` of a parameter: the caller's device, maybe a dtype)
    left: bool = False
    # the template of a call without arguments (``x.size()`` -> ``x.shape``), where ``params``
    # has a required one (None: such a call keeps the escape)
    bare_exact: str | None = None
    # calling it on a JAX array raises (an ``array_lacks`` entry, or ``raises: true``: ``x.size(0)``
    # calls an int): loud, never other numbers (a function of the file given an array, s34)
    raises: bool = False
    # a call with at most this many positional arguments and no keyword computes the same on a
    # JAX array (``x.sum(1)``: torch's ``dim`` is JAX's ``axis``), left as written where no
    # template writes it (None: only ``bare``'s call without arguments)
    same_positional: int | None = None
    # (s37) parameters of ``params`` that take any expression, written as is after its own
    # rewrites (the template reads each once: ``(lambda x, t: ...)({x}, {target})``)
    expressions: tuple[str, ...] = ()
    # (s37) parameters the template gives no gradient where torch gives one: inside the loss
    # function such an argument reads no value the loss function computes, and calls only
    # array methods of the map (``x.view(-1, 784)``), or the call keeps its escape
    undifferentiated: tuple[str, ...] = ()
    # (s37) parameters taking one of a few string literals, written as the bare word
    # (``reduction: {mean, sum}`` -> ``jnp.{reduction}(...)``), the default first
    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def template(self, after_update: bool, bare: bool = False) -> str | None:
        """The template a call is written with inside the step (``after_update`` False) or
        after the update (None: it keeps the escape there); ``bare``: a call without
        arguments, written with ``bare_exact`` where the map gives one."""
        if bare and self.bare_exact is not None:
            return self.bare_exact
        return (self.after or self.exact) if after_update else self.exact


@dataclass(frozen=True)
class Translated:
    """What a value of a type is once its constructor is translated: the members it still
    has (``init``, ``update``) and the text for every other use."""

    members: frozenset[str]
    text: TorchOnlyText
    inline: TorchOnlyText | None = None  # for a constructor call whose value is not named


@dataclass(frozen=True)
class TypeEntry:
    """A receiver type: values of this type have wired methods."""

    name: str
    aliases: tuple[str, ...] = ()
    parameter_names: re.Pattern[str] | None = None
    translated: Translated | None = None


@dataclass(frozen=True)
class ImportSpec:
    """A name templates may use, and the statement that binds it."""

    key: str
    statement: str
    module: str
    obj: str | None
    asname: str | None

    def node(self) -> cst.SimpleStatementLine:
        statement = cst.parse_statement(self.statement + "\n")
        assert isinstance(statement, cst.SimpleStatementLine)
        return statement


@dataclass(frozen=True)
class ParameterSpec:
    """How the parameters an optimizer trains (or a clip call clips) are written."""

    arguments: tuple[str, ...] = ()  # the argument holding them (`params`, `parameters`)
    module_methods: frozenset[str] = frozenset()  # `m.parameters()`: every parameter of `m`
    module_classes: frozenset[str] = frozenset()  # in their subclasses `self.fc` is a part
    wrapped_module: frozenset[str] = frozenset()  # `ddp.module`: the whole wrapped model
    wrappers: frozenset[str] = frozenset()  # calls that pass a set through (`list(...)`)
    unions: frozenset[str] = frozenset()  # calls that join sets (`itertools.chain`)
    filters: frozenset[str] = frozenset()  # calls that select from a set (`filter`)
    # calls returning an iterator one pass consumes (`iter(...)`, `filter(...)`); the
    # `module_methods` are generators too
    iterators: frozenset[str] = frozenset()
    freeze_attributes: frozenset[str] = frozenset()  # `p.requires_grad = False` freezes `p`
    freeze_methods: frozenset[str] = frozenset()  # `m.requires_grad_(False)` freezes `m`
    freeze_calls: frozenset[str] = frozenset()  # `p.detach_()` freezes `p`, whatever its arguments
    # library calls freezing parameters of the model they are given (`get_peft_model(m, c)`):
    # callee suffixes, of the name written or the qualified name it is imported as
    freezing_calls: frozenset[str] = frozenset()
    # calls returning a model whose requires_grad flags come with it (`torch.load(path)`):
    # callee suffixes, as for `freezing_calls`
    loaded_models: frozenset[str] = frozenset()
    # calls whose result holds nothing of their arguments (`len(x)`): a load is not carried on
    value_free_calls: frozenset[str] = frozenset()
    # library classes freezing some of their own parameters when built (any call of the class
    # or of one of its class methods counts as one of `freezing_calls`)
    freezing_classes: frozenset[str] = frozenset()
    hook_methods: frozenset[str] = frozenset()  # `p.register_hook(h)`: torch steps on h's gradient
    # `torch.cfloat`, `w.cdouble()`, `torch.polar(...)`: parameters may be complex (by last name)
    complex_names: frozenset[str] = frozenset()
    # what may leave a parameter without a gradient in a step (`analysis/gradient_skips.py`):
    # `x.detach()`, `x.data`, `with torch.no_grad():` (by last name), `m.part.zero_grad()`
    gradient_cutting_methods: frozenset[str] = frozenset()
    gradient_cutting_attributes: frozenset[str] = frozenset()
    gradient_free_contexts: frozenset[str] = frozenset()
    gradient_clearing_methods: frozenset[str] = frozenset()  # `model.part.zero_grad()`
    parameter_free_modules: frozenset[str] = frozenset()  # `nn.ReLU()`: holds no parameter
    freeze_setters: frozenset[str] = frozenset()  # `setattr(p, 'requires_grad', False)` too
    # `nn.Parameter(w, requires_grad=False)`: callee suffix -> its argument that freezes
    freeze_keywords: frozenset[tuple[str, str]] = frozenset()
    # `nn.Embedding.from_pretrained(w)`: callee suffix -> its argument that unfreezes (False)
    frozen_by_default: frozenset[tuple[str, str]] = frozenset()
    # `nn.Embedding(n, d, _freeze=True)`: callee suffix -> its keyword that freezes (not False)
    freeze_flags: frozenset[tuple[str, str]] = frozenset()
    # `nn.Embedding(n, d, None, None, 2.0, False, False, None, True)`: callee suffix -> the
    # position (from 0) its `freeze_flags` keyword has when given positionally
    freeze_flag_positions: frozenset[tuple[str, int]] = frozenset()
    # `operator.methodcaller("requires_grad_", False)`: functions making a callable that reads
    # or calls the attribute their string argument names
    attribute_callers: frozenset[str] = frozenset()
    # `f = p.requires_grad_`, `methodcaller("detach_")`: freezing methods read other than as a
    # callee, or named by a string given to a call
    freeze_references: frozenset[str] = frozenset()
    tensor_classes: frozenset[str] = frozenset()  # a class based on none: `self` is no tensor
    # what a freeze may reach (`analysis/freeze_reach.py`): calls making a new model with new
    # parameters (`copy.deepcopy(model)`), a new tensor that is no Parameter (`x.clone()`,
    # `torch.zeros_like(x)`), tensor methods changing a tensor in place and returning it
    # (`p.mul_(d)`), decorators calling the function with the arguments given
    # (`@torch.no_grad()`), and calls building a dict or list of what they are given
    new_models: frozenset[str] = frozenset()
    new_tensor_methods: frozenset[str] = frozenset()
    new_tensor_functions: frozenset[str] = frozenset()
    kept_tensor_methods: frozenset[str] = frozenset()
    transparent_decorators: frozenset[str] = frozenset()
    dict_builders: frozenset[str] = frozenset()
    group_methods: frozenset[str] = frozenset()  # `opt.add_param_group(g)`: more tensors
    structure_methods: frozenset[str] = frozenset()  # `m.add_module(...)` changes `m`'s set
    structure_functions: frozenset[str] = frozenset()  # `setattr(m, ...)` changes `m`'s set
    container_methods: frozenset[str] = frozenset()  # `m.layers.append(nn.Linear(...))` too
    # methods keeping a module's parameters, on a model whose class the repository does not
    # define (`model = make_model(); model.eval()`) or a part of one: any other may change them
    keeping_methods: frozenset[str] = frozenset()
    # attributes holding a tensor, no module (`m.fc.weight.norm()` changes no module)
    tensor_attributes: frozenset[str] = frozenset()
    # (method, its torch signature, the argument that makes it replace the parameters when
    # given other than a literal False): `m.load_state_dict(sd, assign=True)`
    replacing_arguments: tuple[tuple[str, str, str], ...] = ()
    getter_functions: frozenset[str] = frozenset()  # `getattr(m, "fc")`: the attribute of `m`
    namespace_functions: frozenset[str] = frozenset()  # `vars(m)`: `m`'s attributes, writable
    setter_methods: frozenset[str] = frozenset()  # `p.__setattr__("requires_grad", False)`
    part_methods: frozenset[str] = frozenset()  # `m.get_submodule("fc")`, `m.modules()`: parts
    # calls whose result holds what their arguments hold: `zip([m.a, m.b], names)`
    passing_functions: frozenset[str] = frozenset()
    passing_methods: frozenset[str] = frozenset()  # `d.values()` holds what `d` holds
    # `m.state_dict()`: a module's methods whose result holds none of its parameters
    detached_methods: frozenset[str] = frozenset()
    module_packages: tuple[str, ...] = ()  # dotted prefixes of module constructors: `torch.nn.`
    # dotted prefixes of library functions building a new model: `torchvision.models.`
    model_libraries: tuple[str, ...] = ()
    # Param groups split by a predicate on each parameter (`analysis/param_groups.py`):
    dict_methods: frozenset[str] = frozenset()  # `d.items()` of a dict of named parameters
    rank: tuple[str, ...] = ()  # torch spellings of a parameter `p`'s number of dimensions
    masked_option: str | None = None  # the one group option a mask expresses (weight_decay)
    masked_calls: frozenset[str] = frozenset()  # optax calls taking that option and `mask=`
    mask: str | None = None  # the mask as a function of params; `{predicate}` on a leaf `p`
    path_mask: str | None = None  # the same on a leaf's path (`n`), for name-based groups

    def freezing_call(self, written: str, qualified: str | None) -> bool:
        """Whether a call of ``written`` (its callee as written), imported as ``qualified``,
        is one of ``freezing_calls`` (by the end of either dotted name), or a call of one of
        ``freezing_classes`` or of a method of one (``C.from_pretrained(...)``)."""
        if _ends_with_one(written, qualified, self.freezing_calls):
            return True
        receivers = [name.rpartition(".")[0] for name in (written, qualified) if name]
        return any(
            _ends_with_one(name, None, self.freezing_classes)
            for name in (written, qualified or "", *receivers)
            if name
        )

    def loading_call(self, written: str, qualified: str | None) -> bool:
        """The same for ``loaded_models`` (`torch.load(path)`)."""
        return _ends_with_one(written, qualified, self.loaded_models)


def _ends_with_one(written: str, qualified: str | None, callees: frozenset[str]) -> bool:
    """Whether ``written`` or ``qualified`` is one of ``callees`` or ends with ``.callee``:
    one of the name's ``_dot_suffixes`` is a callee (set lookups, not a test per callee)."""
    names = [written] + ([qualified] if qualified else [])
    return any(not _dot_suffixes(name).isdisjoint(callees) for name in names)


@lru_cache(maxsize=1 << 16)
def _dot_suffixes(name: str) -> frozenset[str]:
    """``name`` and every part of it after one of its dots (``a.b.c``: ``a.b.c``, ``b.c``,
    ``c``): ``name`` ends with ``.callee`` exactly when ``callee`` is one after a dot."""
    return frozenset([name, *(name[i + 1 :] for i, char in enumerate(name) if char == ".")])


@dataclass(frozen=True)
class ScalerMethods:
    """The methods of a loss scaler (GradScaler) the planner reads in a training step."""

    scale: str | None = None  # `scaler.scale(loss).backward()`
    unscale: str | None = None  # `scaler.unscale_(opt)`: the gradients are the true ones again
    update: str | None = None  # `scaler.update()` after `scaler.step(opt)`


@dataclass(frozen=True)
class ModuleSpec:
    """Torch modules a training step meets besides the model (``modules:`` of the map)."""

    losses: frozenset[str] = frozenset()  # loss classes without parameters: a criterion
    self_methods: frozenset[str] = frozenset()  # `m.to(device)`: returns `m` itself
    wrappers: frozenset[str] = frozenset()  # `DataParallel(model)`: another object
    grad_contexts: frozenset[str] = frozenset()  # `with torch.set_grad_enabled(x):`
    # The attribute of a wrapper that is the very module it wraps (`DDP(m).module is m`).
    unwrapped_by: Mapping[str, str] = field(default_factory=dict)
    # `torch.compile(model)`: attribute lookup reaches the model, except the names listed
    forwarding: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorValueSpec:
    """Which torch values may stand for a Python number in a hyper-parameter."""

    literals: Mapping[str, Signature] = field(default_factory=dict)  # `torch.tensor(0.1)`
    # Those of ``literals`` that always copy their data: a tensor of an expression
    # (`torch.tensor(cfg.lr)`) stands for `float(cfg.lr)` only through these.
    copies: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()  # arguments of those calls that keep the value
    dtypes: Mapping[str, str] = field(default_factory=dict)  # `torch.float64` -> "float64"
    packages: frozenset[str] = frozenset()  # calls into these return tensors...
    python_values: frozenset[str] = frozenset()  # ...except these (`torch.finfo`)
    python_methods: frozenset[str] = frozenset()  # `t.item()`: a Python number
    # Methods of a tensor whose result is neither a tensor nor a number (`t.numpy()`, `t.size()`):
    # what they return is not a torch tensor (analysis/torch_tensors.py).
    other_methods: frozenset[str] = frozenset()
    # Calls making mutable NumPy arrays (`numpy.array`): a hyper-parameter naming one that the
    # code reads elsewhere may be written in place (model/tensor_values.py).
    arrays: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SemanticMap:
    """All entries, merged from the shipped map and the user's files, validated."""

    apis: Mapping[str, ApiEntry]
    types: Mapping[str, TypeEntry]
    imports: Mapping[str, ImportSpec]
    sources: tuple[str, ...]
    # The target's combinators, named by the map's top level (`chain:`, `inject_hyperparams:`,
    # `count_wrapper:`, `join_schedules:`); the shipped map names optax's.
    chain_function: str
    inject_function: str
    count_wrapper: str
    # Switches schedules at update counts (a hand-stepped warm-up/main pair of schedulers).
    join_function: str
    # Sums the gradients of k calls and applies the optimizer once (gradient accumulation).
    accumulate_function: str
    # Method names that compute gradients (`loss.backward()`, `accelerator.backward(loss)`):
    # they open a training-step region before an optimizer's step().
    backward_methods: frozenset[str] = frozenset({"backward"})
    # Methods of a torch module that zero the gradients of all its parameters
    # (`model.zero_grad()`): a step's zero when the optimizer trains exactly that module.
    module_zero_grad_methods: frozenset[str] = frozenset()
    # Arguments of a factory that ``inject_function`` must take as ``static_args`` (a callable
    # there is read as a schedule: ``mask=lambda params: ...``).
    inject_static_args: tuple[str, ...] = ()
    # Attributes of a tensor that hold its gradient (`p.grad`): read between two backward
    # passes, they see the partial sum.
    gradient_attributes: frozenset[str] = frozenset()
    # Methods that only read their receiver (`loss.item()`, `"{}".format(x)`): a call of one
    # between a clip and the step computes no gradient (analysis/plan_clips.py).
    reading_methods: frozenset[str] = frozenset()
    # Library functions that write their tensor arguments: a name ending with
    # ``writing_suffix`` (torch's `_`: `torch._foreach_mul_`), a keyword of
    # ``writing_keywords`` (`out=`), or one of ``writing_functions`` (`dist.all_reduce`):
    # between a clip and the step such a call may change the gradients the clip saw.
    writing_suffix: str | None = None
    writing_keywords: frozenset[str] = frozenset()
    writing_functions: frozenset[str] = frozenset()
    # Methods of a torch module that, called with no argument, read no gradient and hand out
    # none (`model.state_dict()`: detached tensors): a use of the model that leaves its
    # gradients unread.
    gradient_free_methods: frozenset[str] = frozenset()
    # Attributes and methods of a torch module its NNX port does not have (`parameters`,
    # `weight`): read on the model in the scope of a step the NNX target converts, they raise
    # when the translation runs, so the step escapes naming the use.
    torch_only_module_names: frozenset[str] = frozenset()
    # Methods a torch module and an NNX module both have that agree only when called with no
    # argument (`model.train(False)`: torch's evaluation mode; nnx's `train(**attributes)`
    # always sets training mode): called with one on the step's model, the step escapes.
    argument_free_module_methods: frozenset[str] = frozenset()
    # Methods of a torch module that move or cast its parameters and return it (`model.to(dev)`,
    # `model.cuda()`): an NNX module has none; called on the step's model in a loop holding the
    # step (`model = model.to(dev)` in the epoch loop), the translation would raise there.
    module_moves: frozenset[str] = frozenset()
    # Builtins that need a concrete number (`float(x)`): on a value the loss function computes
    # they raise on a traced JAX array (ConcretizationTypeError), so the step escapes.
    concrete_builtins: frozenset[str] = frozenset()
    # Array methods that need a concrete value (`x.item()`, `x.tolist()`): called on a value the
    # loss function computes, they raise on a traced JAX array, so the step escapes.
    concrete_methods: frozenset[str] = frozenset()
    # Tensor methods reducing over the dimensions given, over all of them without one
    # (`x.sum(0)`, `x.mean()`): a loss `x.sum(0)` may be a tensor of one element and some
    # dimensions, which torch's backward() takes and nnx.value_and_grad refuses.
    dim_reductions: frozenset[str] = frozenset()
    # Packages whose functions take only their own tensors (`torch`: `torch.cat([out, y])`,
    # `F.nll_loss(out, y)` raise TypeError on a traced JAX array): such a function the map's
    # `array_functions` does not write, called on a value the loss function computes (or in a
    # function of the file the loss calls), escapes the step naming the call.
    tracer_rejecting_packages: frozenset[str] = frozenset()
    # `loss.backward(retain_graph=True)` as a step's last backward (analysis/retained_graph.py):
    # reads of a value that carry no graph (`x.data`, `x.item()`), the packages whose classes
    # keep no tensor between calls (`torch.nn`), and the containers of such (`nn.Sequential`).
    graph_free_reads: frozenset[str] = frozenset()
    graph_free_modules: frozenset[str] = frozenset()
    graph_free_containers: frozenset[str] = frozenset()
    # A torch module's mode flag (`training`) an NNX module does not have (its mode is
    # `use_running_average`/`deterministic`, set by `train()`/`eval()`): written in the scope
    # of a step the NNX target converts, on any object or by `setattr`, the step escapes
    # (probe s36 G3: an nnx module took the store and kept training mode).
    module_mode_attributes: frozenset[str] = frozenset()
    # Torch's in-place conventions (`x.add_(1)`, `F.relu(x, inplace=True)`, `out=`): a function
    # of the file called in a loss may change its arguments through these.
    in_place_suffix: str | None = None
    in_place_keywords: frozenset[str] = frozenset()
    scaler_methods: ScalerMethods = ScalerMethods()
    modules: ModuleSpec = ModuleSpec()
    parameters: ParameterSpec = ParameterSpec()
    tensor_values: TensorValueSpec = TensorValueSpec()
    # Names templates may introduce (lambda parameters, comprehension variables): the engine
    # renames them where they would capture a user's name (model/hygiene.py).
    template_names: frozenset[str] = frozenset()
    # Functions that use a translated optimizer/scheduler as the torch object (pickle.dump).
    torch_only_calls: Mapping[str, TorchOnlyText] = field(default_factory=dict)
    # Functions that take any object (builtins.print): passing a translated value is fine.
    passthrough_calls: frozenset[str] = frozenset()
    # Functions that run code from strings (builtins.exec): no import is removed from a file
    # that calls one, since the code it runs may use any of them.
    dynamic_code_calls: frozenset[str] = frozenset()
    # Functions binding arguments to a function for later calls (functools.partial): a model
    # bound so is handed to that function (analysis/handed_models.py).
    binding_calls: frozenset[str] = frozenset()
    # Functions of numbers that change nothing (math.ceil): where one is called between the
    # optimizer and its schedule does not matter (analysis/plan_schedules.py).
    pure_calls: frozenset[str] = frozenset()
    # Modules whose functions only read their arguments and hold no state a training step
    # reads (math, logging): a call of one records values (targets/nnx/logged.py).
    recording_modules: frozenset[str] = frozenset()
    # Library modules whose globals no training script changes (math, numpy): what a
    # scheduler's function reads of them is fixed (analysis/schedule_functions.py); any other
    # module's (the repository's own `config.DECAY`, `from sched import factor`) is not.
    fixed_modules: frozenset[str] = frozenset()
    # Modules that hold no model of the program (tiktoken, numpy, torch): a class of the file
    # whose methods read only these produces data (analysis/data_objects.py).
    data_modules: frozenset[str] = frozenset()
    # Loaders whose every pass yields new tensors (DataLoader's collate), and calls whose
    # items are those of their arguments (`enumerate`, `tqdm`): a batch of theirs changed in
    # place changes nothing torch reads again (targets/nnx/step_shared.py).
    fresh_loaders: frozenset[str] = frozenset()
    # Loaders whose len() is the number of batches one pass over them yields when their
    # dataset is map-style and they are given only these arguments (the first positional ones
    # by name, in order; the keywords): a per-epoch scheduler's steps per epoch
    # (analysis/loader_length.py). `sampler=`/`batch_sampler=` are not listed: their len()
    # is whatever the object says.
    measured_loaders: frozenset[str] = frozenset()
    measured_loader_positional: tuple[str, ...] = ()
    measured_loader_keywords: frozenset[str] = frozenset()
    # Dataset classes that are map-style (not IterableDataset) with a fixed len().
    map_style_datasets: frozenset[str] = frozenset()
    # Of those, the datasets whose len() reads an argument each time it is asked
    # (TensorDataset: its first tensor's size(0)): the arguments must keep their size.
    sized_by_arguments: frozenset[str] = frozenset()
    batch_wrappers: frozenset[str] = frozenset()
    # Command-line options holding plain values (analysis/plain_values.py): the parsers'
    # constructors, and what their `add_argument` may pass (`type=`, `action=`, keywords).
    option_parsers: frozenset[str] = frozenset()
    option_types: frozenset[str] = frozenset()
    option_actions: frozenset[str] = frozenset()
    option_keywords: frozenset[str] = frozenset()
    # torch.Tensor methods a JAX array has under the same name with other numbers (`x.std()`):
    # read in an NNX loss function, which runs on JAX arrays, they escape the step. The map's
    # `array_lacks` (methods a JAX array does not have: `x.pow(2)` raises) are read into it too.
    array_namesakes: Mapping[str, ArrayNamesake] = field(default_factory=dict)
    # torch.Tensor attributes a JAX array lacks (`x.data`): the same entries (``after``: what
    # ``x.<attribute>`` becomes in the statements after the update; no ``params``).
    array_attributes: Mapping[str, ArrayNamesake] = field(default_factory=dict)
    # torch.Tensor methods and attributes whose result may share the receiver's memory
    # (`x.detach()`, `x.view(...)`, `x.data`, `x[0]`): an in-place change of one (`keep +=
    # 1`) changes the other in torch, never with JAX arrays, so the NNX step escapes it.
    array_views: frozenset[str] = frozenset()
    # the views whose value is the receiver's very values, in its shape (`x.cuda()`,
    # `x.detach()`): `a[0] = a[0].cuda()` writes an item's own values back, changing nothing.
    array_moves: frozenset[str] = frozenset()
    # torch functions on arrays (`torch.max(x, 1)`, `Variable(x)`), by qualified name: the same
    # entries, the array the function's first argument (``{x}`` in the templates).
    array_functions: Mapping[str, ArrayNamesake] = field(default_factory=dict)
    # Functions joining iterables of parameters into one (`itertools.chain`): an optimizer
    # built over the joined parameters of several models (CycleGAN's generators).
    parameter_chains: frozenset[str] = frozenset()
    # Calls returning a torch device (`torch.device("cuda")`): `x.to(device)` of one moves x,
    # the same numbers (the NNX step writes `x`; targets/nnx/step_shared.py `_is_device`).
    device_calls: frozenset[str] = frozenset()
    # The names a star import of a module binds (its `__all__`): `from torch.optim import *`
    # then `Adam(...)` is torch.optim.Adam when the file has that one star import and binds
    # `Adam` nowhere (analysis/resolver.py `_star_module`, analysis/second_stage.py).
    star_exports: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Methods that only display or record values, by the class (or factory) that makes the
    # object: `pbar.set_description(...)` of `pbar = tqdm(loader)` between the backward pass
    # and the step records values (targets/nnx/logged.py).
    recording_methods: Mapping[str, frozenset[str]] = field(default_factory=dict)
    _type_by_alias: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for entry in self.types.values():
            self._type_by_alias[entry.name] = entry.name
            for alias in entry.aliases:
                self._type_by_alias[alias] = entry.name

    def canonical_type(self, qualified_name: str) -> str | None:
        """The declared type a qualified name denotes (a type, an alias or a constructor)."""
        if qualified_name in self._type_by_alias:
            return self._type_by_alias[qualified_name]
        entry = self.apis.get(qualified_name)
        return entry.returns if entry is not None else None

    @property
    def source_roots(self) -> frozenset[str]:
        """Top-level packages of the source APIs (``torch``): imports the engine may prune."""
        return frozenset(name.partition(".")[0] for name in self.apis)

    def method(self, type_name: str, method: str) -> ApiEntry | None:
        return self.apis.get(f"{type_name}.{method}")

    def roles_of(self, hooks: frozenset[str] | None) -> frozenset[str] | None:
        """The roles of the entries wired to ``hooks`` (None: every role)."""
        if hooks is None:
            return None
        return frozenset(e.role for e in self.apis.values() if e.hook in hooks)

    def methods_with_role(self, *wanted: str) -> frozenset[str]:
        """The method names of the entries with one of the ``wanted`` roles (``step``)."""
        return frozenset(
            e.method for e in self.apis.values() if e.role in wanted and e.method is not None
        )

    def entry_with_role(self, role: str) -> ApiEntry | None:
        """The first entry with ``role`` (``backward``: the training step's text)."""
        return next((e for e in self.apis.values() if e.role == role), None)

    def for_hooks(self, hooks: frozenset[str] | None) -> dict[str, ApiEntry]:
        """Entries wired to ``hooks`` (all entries when ``hooks`` is None)."""
        return {
            name: entry for name, entry in self.apis.items() if hooks is None or entry.hook in hooks
        }


# --------------------------------------------------------------------------- YAML loading


class _LineDict(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    lines: dict[Any, int]


class _MapLoader(yaml.SafeLoader):
    """Safe loader: no object construction, duplicate keys rejected, key lines recorded."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _LineDict:  # type: ignore[override]
        self.flatten_mapping(node)
        result = _LineDict()
        result.line = node.start_mark.line + 1
        result.lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "unhashable mapping key", key_node.start_mark
                ) from None
            if key in result:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {result.lines[key]})",
                    key_node.start_mark,
                )
            result[key] = self.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
            result.lines[key] = key_node.start_mark.line + 1
        return result

    def compose_node(self, parent: Any, index: Any) -> Any:
        # No aliases (`*name`, also `<<: *name`): a map is small enough to write out, and an
        # alias graph can expand exponentially ("billion laughs") when the values are walked.
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are not allowed in a semantic map: write the "
                "value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


# YAML 1.2 floats: PyYAML (YAML 1.1) reads `1e-6` as a string; the map means a number.
_YAML12_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)


def _configure(loader: Any) -> None:
    """The map's mappings (``_MapLoader.construct_mapping``) and floats on ``loader``."""
    loader.add_constructor("tag:yaml.org,2002:map", _MapLoader.construct_mapping)
    loader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789."))


_configure(_MapLoader)
_CSafeLoader: Any = getattr(yaml, "CSafeLoader", None)  # PyYAML built with libyaml
_FAST_MAX_DEPTH = 50  # deeper documents go to the pure-Python loader (libyaml's composer recurses)


if _CSafeLoader is not None:

    class _FastMapLoader(_CSafeLoader):  # type: ignore[misc, valid-type]
        """libyaml's parser with ``_MapLoader``'s mappings and floats (the same result, about
        five times faster); only for text ``_fast_loader_reads`` accepts."""

    _configure(_FastMapLoader)


def _fast_loader_reads(text: str) -> bool:
    """Whether ``_FastMapLoader`` may read ``text``: libyaml parses it, it holds no alias
    (refused by ``_MapLoader.compose_node``, which libyaml's composer never calls) and it
    nests no deeper than ``_FAST_MAX_DEPTH``."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_CSafeLoader):
            if isinstance(event, yaml.AliasEvent):
                return False
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > _FAST_MAX_DEPTH:
                    return False
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return False
    return True


def _load_yaml(text: str) -> Any:
    """The map's YAML: read by libyaml when it can, else (and on any error, so that the
    error reported is always ``_MapLoader``'s) by the pure-Python ``_MapLoader``."""
    if _CSafeLoader is not None and _fast_loader_reads(text):
        with suppress(yaml.YAMLError):
            return yaml.load(text, Loader=_FastMapLoader)  # noqa: S506 - a CSafeLoader subclass
    return yaml.load(text, Loader=_MapLoader)  # noqa: S506 - a SafeLoader subclass


MAX_MAP_BYTES = 1_000_000  # the shipped map has about 50 kB


def _read_yaml(path: Path) -> Any:
    try:
        size = path.stat().st_size
        if size > MAX_MAP_BYTES:
            raise SemanticMapError(
                str(path), f"file too large ({size} bytes; a map may have {MAX_MAP_BYTES})"
            )
        with path.open("rb") as handle:  # a file that grew since: read no more than the cap
            data = handle.read(MAX_MAP_BYTES + 1)
        if len(data) > MAX_MAP_BYTES:
            raise SemanticMapError(str(path), f"file too large (a map may have {MAX_MAP_BYTES})")
        text = data.decode("utf-8")
    except OSError as exc:
        raise SemanticMapError(str(path), f"cannot read file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SemanticMapError(str(path), "file is not valid UTF-8", line=line) from None
    try:
        return _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        detail = f"YAML error: {problem}" + (f" ({context})" if context else "")
        raise SemanticMapError(str(path), detail, line=line) from None
    except RecursionError:
        raise SemanticMapError(str(path), "YAML error: nesting too deep") from None


# --------------------------------------------------------------------------- validation


class _Checker:
    """Validates one raw map file, turning problems into ``SemanticMapError``."""

    def __init__(self, path: str, hooks: Mapping[str, Any]) -> None:
        self.path = path
        self.hooks = hooks
        self.template_names: frozenset[str] = frozenset()

    def declared_template_names(
        self, raw: Any, line: int | None, base: frozenset[str], imports: Mapping[str, ImportSpec]
    ) -> frozenset[str]:
        """``base`` plus the ``template_names`` list: identifiers, none an import's name."""
        raw = [] if raw is None else raw
        if not isinstance(raw, list) or not all(
            isinstance(name, str) and name.isidentifier() for name in raw
        ):
            self.fail("'template_names' must be a list of identifiers", line=line)
        declared = base | frozenset(raw)
        for name in sorted(declared & set(imports)):
            self.fail(
                f"'template_names' declares {name!r}, which is also a name under 'imports'",
                line=line,
            )
        return declared

    def fail(self, message: str, *, line: int | None = None, entry: str | None = None) -> None:
        raise SemanticMapError(self.path, message, line=line, entry=entry)

    def mapping(
        self, value: Any, what: str, line: int | None, entry: str | None = None
    ) -> _LineDict:
        if value is None:
            value = _LineDict()
            value.lines = {}
            value.line = line or 0
        if not isinstance(value, dict):
            self.fail(f"{what} must be a mapping, not {_type_name(value)}", line=line, entry=entry)
        return value  # type: ignore[return-value]

    def check_keys(self, raw: _LineDict, allowed: set[str], what: str, entry: str | None) -> None:
        for key in raw:
            if key not in allowed:
                hint = ""
                if what == "the top level" and "." in str(key):  # an API entry out of place
                    hint = f"; an API entry goes under 'apis:' (version: 1, then apis: {key}: ...)"
                self.fail(
                    f"unknown field {key!r} in {what} (allowed: {', '.join(sorted(allowed))})"
                    + hint,
                    line=raw.lines.get(key, raw.line),
                    entry=entry,
                )

    def role(self, raw: _LineDict, hook: str, entry: str) -> str:
        """The entry's ``role:``, else its hook's default role (``register_hook(role=...)``)."""
        role = self.string(raw, "role", entry) or getattr(self.hooks[hook], "role", None)
        if role is None:
            self.fail(f"hook {hook!r} needs the field 'role'", line=raw.line, entry=entry)
        if role not in roles.ROLES:
            self.fail(
                f"unknown role {role!r} (known: {', '.join(sorted(roles.ROLES))})",
                line=raw.lines.get("role", raw.line),
                entry=entry,
            )
        return role  # type: ignore[return-value]

    def string(self, raw: _LineDict, key: str, entry: str, *, required: bool = False) -> str | None:
        value = raw.get(key)
        if value is None:
            if required:
                self.fail(f"missing required field {key!r}", line=raw.line, entry=entry)
            return None
        if not isinstance(value, str):
            self.fail(
                f"field {key!r} must be a string, not {_type_name(value)}",
                line=raw.lines.get(key, raw.line),
                entry=entry,
            )
        self.plain_text(value, key, raw.lines.get(key, raw.line), entry)
        return value

    def plain_text(self, value: str, key: str, line: int | None, entry: str | None) -> None:
        """Refuse control characters (other than newline and tab) in text the codemod writes
        into files (reasons, suggestions): a NUL makes the file unloadable, a CR ends the
        comment line it was meant to stay in."""
        control = _CONTROL.search(value)
        if control:
            self.fail(
                f"field {key!r} holds the control character {control.group()!r}",
                line=line,
                entry=entry,
            )

    def dotted(self, name: Any, what: str, line: int | None, entry: str | None) -> str:
        if not isinstance(name, str) or not _DOTTED.match(name):
            self.fail(f"{what} {name!r} is not a dotted Python name", line=line, entry=entry)
        return name

    def known(self, name: str, line: int | None, entry: str | None) -> None:
        problem = known_apis.check_name(name)
        if problem:
            self.fail(problem, line=line, entry=entry)

    # -- sections ----------------------------------------------------------------------------

    def imports(self, raw: Any, line: int | None) -> dict[str, ImportSpec]:
        section = self.mapping(raw, "'imports'", line)
        result: dict[str, ImportSpec] = {}
        for key, statement in section.items():
            key_line = section.lines.get(key)
            if not isinstance(key, str) or not key.isidentifier():
                self.fail(f"import name {key!r} is not an identifier", line=key_line)
            if not isinstance(statement, str):
                self.fail(f"import {key!r} must be a string statement", line=key_line)
            result[key] = self._import_spec(key, statement, key_line)
        return result

    def _import_spec(self, key: str, statement: str, line: int | None) -> ImportSpec:
        try:
            tree = ast.parse(statement)
        except SyntaxError:
            tree = None
        node = tree.body[0] if tree is not None and len(tree.body) == 1 else None
        if isinstance(node, ast.Import) and len(node.names) == 1:
            alias = node.names[0]
            bound = alias.asname or alias.name.partition(".")[0]
            if bound == key:
                return ImportSpec(key, statement, alias.name, None, alias.asname)
        elif isinstance(node, ast.ImportFrom) and len(node.names) == 1 and node.level == 0:
            alias = node.names[0]
            if (alias.asname or alias.name) == key and node.module:
                return ImportSpec(key, statement, node.module, alias.name, alias.asname)
        self.fail(
            f"import {key!r} must be one import statement binding {key!r}, got {statement!r}",
            line=line,
        )
        raise AssertionError  # unreachable

    def types(self, raw: Any, line: int | None) -> dict[str, TypeEntry]:
        section = self.mapping(raw, "'types'", line)
        result: dict[str, TypeEntry] = {}
        for name, body in section.items():
            key_line = section.lines.get(name)
            self.dotted(name, "type", key_line, name)
            self.known(name, key_line, name)
            body = self.mapping(body, "a type", key_line, name)
            self.check_keys(body, _TYPE_KEYS, "a type", name)
            aliases = body.get("aliases") or []
            if not isinstance(aliases, list):
                self.fail("'aliases' must be a list", line=body.lines.get("aliases"), entry=name)
            for alias in aliases:
                self.dotted(alias, "alias", body.lines.get("aliases"), name)
                self.known(alias, body.lines.get("aliases"), name)
            pattern = self.string(body, "parameter_names", name)
            compiled = None
            if pattern is not None:
                try:
                    compiled = re.compile(pattern)
                except re.error as exc:
                    self.fail(
                        f"'parameter_names' is not a valid regex ({exc})",
                        line=body.lines.get("parameter_names"),
                        entry=name,
                    )
            translated = self.translated(body.get("translated"), body.lines.get("translated"), name)
            result[name] = TypeEntry(name, tuple(aliases), compiled, translated)
        return result

    def names(self, section: _LineDict, key: str, what: str, *, dotted: bool = False) -> list[str]:
        """A list of identifiers (or dotted names) under ``key`` of ``section``."""
        value = section.get(key) or []
        line = section.lines.get(key, section.line)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"{what} must be a list of names", line=line)
        for name in value:
            if dotted:
                self.dotted(name, what, line, None)
            elif not name.isidentifier():
                self.fail(f"{what}: {name!r} is not an identifier", line=line)
        return value

    def parameters(self, raw: Any, line: int | None) -> ParameterSpec:
        section = self.mapping(raw, "'parameters'", line)
        self.check_keys(section, _PARAMETER_KEYS, "'parameters'", None)

        def names(key: str, dotted: bool = False) -> frozenset[str]:
            return frozenset(self.names(section, key, f"'parameters.{key}'", dotted=dotted))

        return ParameterSpec(
            arguments=tuple(self.names(section, "arguments", "'parameters.arguments'")),
            module_methods=names("module_methods"),
            module_classes=names("module_classes", dotted=True),
            wrapped_module=names("wrapped_module"),
            wrappers=names("wrappers", dotted=True),
            unions=names("unions", dotted=True),
            filters=names("filters", dotted=True),
            iterators=names("iterators", dotted=True),
            freeze_attributes=names("freeze_attributes"),
            freeze_methods=names("freeze_methods"),
            freeze_calls=names("freeze_calls"),
            freezing_calls=names("freezing_calls", dotted=True),
            loaded_models=names("loaded_models", dotted=True),
            value_free_calls=names("value_free_calls", dotted=True),
            freezing_classes=names("freezing_classes", dotted=True),
            hook_methods=names("hook_methods"),
            complex_names=names("complex_names"),
            gradient_cutting_methods=names("gradient_cutting_methods"),
            gradient_cutting_attributes=names("gradient_cutting_attributes"),
            gradient_free_contexts=names("gradient_free_contexts", dotted=True),
            gradient_clearing_methods=names("gradient_clearing_methods"),
            parameter_free_modules=names("parameter_free_modules", dotted=True),
            freeze_setters=names("freeze_setters", dotted=True),
            freeze_keywords=self.callee_keywords(section, "freeze_keywords"),
            frozen_by_default=self.callee_keywords(section, "frozen_by_default"),
            freeze_flags=self.callee_keywords(section, "freeze_flags"),
            freeze_flag_positions=self.callee_positions(section, "freeze_flag_positions"),
            attribute_callers=names("attribute_callers", dotted=True),
            freeze_references=names("freeze_references"),
            tensor_classes=names("tensor_classes"),
            new_models=names("new_models", dotted=True),
            new_tensor_methods=names("new_tensor_methods"),
            new_tensor_functions=names("new_tensor_functions", dotted=True),
            kept_tensor_methods=names("kept_tensor_methods"),
            transparent_decorators=names("transparent_decorators", dotted=True),
            dict_builders=names("dict_builders", dotted=True),
            group_methods=names("group_methods"),
            structure_methods=names("structure_methods"),
            structure_functions=names("structure_functions", dotted=True),
            container_methods=names("container_methods"),
            keeping_methods=names("keeping_methods"),
            tensor_attributes=names("tensor_attributes"),
            replacing_arguments=self.replacing_arguments(section),
            getter_functions=names("getter_functions", dotted=True),
            namespace_functions=names("namespace_functions", dotted=True),
            setter_methods=names("setter_methods"),
            part_methods=names("part_methods"),
            passing_functions=names("passing_functions", dotted=True),
            passing_methods=names("passing_methods"),
            detached_methods=names("detached_methods"),
            module_packages=tuple(f"{n}." for n in sorted(names("module_packages", dotted=True))),
            model_libraries=tuple(f"{n}." for n in sorted(names("model_libraries", dotted=True))),
            dict_methods=names("dict_methods"),
            rank=tuple(self.texts(section, "rank", "'parameters.rank'")),
            masked_option=self.string(section, "masked_option", "parameters"),
            masked_calls=names("masked_calls", dotted=True),
            mask=self.string(section, "mask", "parameters"),
            path_mask=self.string(section, "path_mask", "parameters"),
        )

    def replacing_arguments(self, section: _LineDict) -> tuple[tuple[str, str, str], ...]:
        """``parameters.replacing_arguments``: method -> ``{signature: ..., argument: ...}``,
        the argument one of the signature's."""
        what = "'parameters.replacing_arguments'"
        line = section.lines.get("replacing_arguments", section.line)
        raw = self.mapping(section.get("replacing_arguments"), what, line)
        found: list[tuple[str, str, str]] = []
        for method, body in raw.items():
            if not isinstance(method, str) or not method.isidentifier():
                self.fail(f"{what}: {method!r} is not an identifier", line=line)
            entry = self.mapping(body, what, line, method)
            self.check_keys(entry, {"signature", "argument"}, what, method)
            source = self.string(entry, "signature", method, required=True)
            argument = self.string(entry, "argument", method, required=True)
            try:
                names = Signature.parse(source).names  # type: ignore[arg-type]
            except ValueError as exc:
                self.fail(f"{what}: {exc}", line=line, entry=method)
            if argument not in names:
                self.fail(f"{what}: {argument!r} is not in its signature", line=line, entry=method)
            found.append((method, source, argument))  # type: ignore[arg-type]
        return tuple(sorted(found))

    def callee_keywords(self, section: _LineDict, key: str) -> frozenset[tuple[str, str]]:
        """``parameters.<key>``: dotted callee -> one of its keywords."""
        what = f"'parameters.{key}'"
        line = section.lines.get(key, section.line)
        raw = self.mapping(section.get(key), what, line)
        for callee, keyword in raw.items():
            self.dotted(callee, what, line, None)
            if not isinstance(keyword, str) or not keyword.isidentifier():
                self.fail(f"{what}: {keyword!r} is not an identifier", line=line)
        return frozenset(raw.items())

    def callee_positions(self, section: _LineDict, key: str) -> frozenset[tuple[str, int]]:
        """``parameters.<key>``: dotted callee -> the position (from 0) of an argument."""
        what = f"'parameters.{key}'"
        line = section.lines.get(key, section.line)
        raw = self.mapping(section.get(key), what, line)
        for callee, position in raw.items():
            self.dotted(callee, what, line, None)
            if not isinstance(position, int) or isinstance(position, bool) or position < 0:
                self.fail(f"{what}: {position!r} is not a position", line=line)
        return frozenset(raw.items())

    def texts(self, section: _LineDict, key: str, what: str) -> list[str]:
        """A list of Python expressions under ``key`` of ``section``."""
        value = section.get(key) or []
        line = section.lines.get(key, section.line)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"{what} must be a list of expressions", line=line)
        for text in value:
            try:
                cst.parse_expression(text)
            except cst.ParserSyntaxError:
                self.fail(f"{what}: {text!r} is not a Python expression", line=line)
        return value

    def tensor_values(self, raw: Any, line: int | None) -> TensorValueSpec:
        section = self.mapping(raw, "'tensor_values'", line)
        self.check_keys(section, _TENSOR_KEYS, "'tensor_values'", None)
        literals = self.mapping(section.get("literals"), "'tensor_values.literals'", line)
        signatures: dict[str, Signature] = {}
        for name, source in literals.items():
            key_line = literals.lines.get(name)
            self.dotted(name, "'tensor_values.literals'", key_line, None)
            if not isinstance(source, str):
                self.fail(
                    f"'tensor_values.literals' {name!r} must be a signature string", line=key_line
                )
            if len(source) > MAX_SIGNATURE_LENGTH:
                self.fail(f"the signature of {name!r} is too long", line=key_line)
            try:
                signature = Signature.parse(source)
            except ValueError as exc:
                self.fail(f"bad signature of {name!r}: {exc}", line=key_line)
            if not signature.parameters or signature.parameters[0].default_source is not None:
                self.fail(
                    f"the signature of {name!r} must start with the required value", line=key_line
                )
            signatures[name] = signature
        dtypes = self.mapping(section.get("dtypes"), "'tensor_values.dtypes'", line)
        for name, fmt in dtypes.items():
            self.dotted(name, "'tensor_values.dtypes'", dtypes.lines.get(name), None)
            if fmt not in DTYPE_FORMATS:
                self.fail(
                    f"'tensor_values.dtypes' {name!r} must be one of {', '.join(DTYPE_FORMATS)}",
                    line=dtypes.lines.get(name),
                )

        def names(key: str, dotted: bool = True) -> frozenset[str]:
            return frozenset(self.names(section, key, f"'tensor_values.{key}'", dotted=dotted))

        copies = names("copies")
        for name in sorted(copies - set(signatures)):
            self.fail(
                f"'tensor_values.copies' {name!r} is not one of its literals",
                line=section.lines.get("copies", line),
            )
        return TensorValueSpec(
            literals=signatures,
            copies=copies,
            ignore=names("ignore", dotted=False),
            dtypes=dict(dtypes),
            packages=names("packages"),
            python_values=names("python_values"),
            python_methods=names("python_methods", dotted=False),
            other_methods=names("other_methods", dotted=False),
            arrays=names("arrays"),
        )

    def translated(self, raw: Any, line: int | None, name: str) -> Translated | None:
        """A type's ``translated`` block: the members kept and the text for other uses."""
        if raw is None:
            return None
        body = self.mapping(raw, "'translated'", line, name)
        self.check_keys(body, _TRANSLATED_KEYS, "'translated'", name)
        members = body.get("members") or []
        if not isinstance(members, list) or not all(
            isinstance(m, str) and m.isidentifier() for m in members
        ):
            self.fail(
                "'members' must be a list of names", line=body.lines.get("members"), entry=name
            )
        inline = None
        if body.get("inline") is not None:
            raw_inline = self.mapping(body["inline"], "'inline'", body.lines.get("inline"), name)
            self.check_keys(raw_inline, _TORCH_ONLY_KEYS, "'inline'", name)
            inline = self.torch_only_text(raw_inline, name)
        return Translated(frozenset(members), self.torch_only_text(body, name), inline)

    def torch_only_text(self, body: _LineDict, name: str) -> TorchOnlyText:
        """The required ``reason``/``suggest`` pair, with only the torch-only placeholders."""
        texts = []
        for key in ("reason", "suggest"):
            text = self.string(body, key, name, required=True)
            assert text is not None
            for match in _PLACEHOLDER.finditer(text):
                if match.group(1) not in TORCH_ONLY_PLACEHOLDERS:
                    self.fail(
                        f"unknown placeholder {{{match.group(1)}}} in {key!r} (allowed: "
                        f"{', '.join(sorted(TORCH_ONLY_PLACEHOLDERS))})",
                        line=body.lines.get(key),
                        entry=name,
                    )
            texts.append(text)
        return TorchOnlyText(*texts)

    def torch_only_calls(self, raw: Any, line: int | None) -> dict[str, TorchOnlyText]:
        section = self.mapping(raw, "'torch_only_calls'", line)
        result = {}
        for name, body in section.items():
            key_line = section.lines.get(name)
            self.dotted(name, "function", key_line, name)
            body = self.mapping(body, "a torch-only call", key_line, name)
            self.check_keys(body, _TORCH_ONLY_KEYS, "a torch-only call", name)
            result[name] = self.torch_only_text(body, name)
        return result

    def array_namesakes(
        self, raw: Any, line: int | None, section_name: str = "array_namesakes"
    ) -> dict[str, ArrayNamesake]:
        """``array_namesakes: {std: {reason: ..., bare: false}}``: method names to entries;
        ``array_lacks: {pow: {reason: ...}}`` (``bare`` not allowed there) and
        ``array_attributes: {data: {reason: ..., after: "{x}"}}`` (attribute names, neither
        ``params`` nor ``exact``) the same way."""
        if raw is None:
            return {}
        section = self.mapping(raw, f"'{section_name}'", line)
        keys = {"reason", "exact", "params", "imports", "after", "operands", "any_array"}
        keys |= {"detaches", "devices", "left"}
        if section_name == "array_functions":
            keys |= {"expressions", "undifferentiated", "choices"}
        if section_name == "array_namesakes":
            keys |= {"bare", "bare_exact", "raises", "same_positional"}
        if section_name == "array_attributes":  # read, not called: no arguments
            keys = {"reason", "after", "imports"}
        result = {}
        for name, body in section.items():
            key_line = section.lines.get(name)
            functions = section_name == "array_functions"
            if not (_DOTTED.fullmatch(name) if functions else name.isidentifier()):
                what = "function's qualified" if functions else "method"
                self.fail(f"'{section_name}': {name!r} is not a {what} name", line=key_line)
            body = self.mapping(body, "an array namesake", key_line, name)
            self.check_keys(body, keys, "an array namesake", name)
            bare, any_array = body.get("bare", False), body.get("any_array", False)
            detaches, left = body.get("detaches", False), body.get("left", False)
            raises = body.get("raises", section_name == "array_lacks")
            flags = (bare, any_array, detaches, left, raises)
            if not all(isinstance(flag, bool) for flag in flags):
                self.fail(
                    "fields 'bare', 'any_array', 'detaches', 'left' and 'raises' must be true "
                    "or false",
                    line=key_line,
                    entry=name,
                )
            same_positional = body.get("same_positional")
            if same_positional is not None and (
                type(same_positional) is not int or same_positional < 1
            ):
                self.fail(
                    "field 'same_positional' must be an integer >= 1", line=key_line, entry=name
                )
            reason = self.string(body, "reason", name, required=True)
            exact = self.string(body, "exact", name, required=False)
            after = self.string(body, "after", name, required=False)
            bare_exact = self.string(body, "bare_exact", name, required=False)
            if bare_exact is not None and (bare or exact is None):
                self.fail(
                    "'bare_exact' needs 'exact' and not 'bare' (a call without arguments "
                    "computing the same needs no template)",
                    line=key_line,
                    entry=name,
                )
            if bare_exact is not None and set(re.findall(r"\{(\w*)\}", bare_exact)) != {"x"}:
                self.fail("'bare_exact' reads the receiver `{x}` alone", line=key_line, entry=name)
            params = dict(self.mapping(body.get("params", {}), "'params'", key_line, name))
            called = section_name != "array_attributes"
            if called and (exact is None and after is None) != ("params" not in body):
                self.fail("'exact' and 'params' go together", line=key_line, entry=name)
            imports = body.get("imports", [])
            if not isinstance(imports, list) or not all(isinstance(i, str) for i in imports):
                self.fail("field 'imports' must be a list of names", line=key_line, entry=name)
            operands = body.get("operands", [])
            if not isinstance(operands, list) or not set(operands) <= set(params):
                self.fail("field 'operands' must list names of 'params'", line=key_line, entry=name)
            devices = body.get("devices", [])
            if not isinstance(devices, list) or not set(devices) <= set(params):
                self.fail("field 'devices' must list names of 'params'", line=key_line, entry=name)
            lists = {}
            for field_name in ("expressions", "undifferentiated"):
                listed = body.get(field_name, [])
                if not isinstance(listed, list) or not set(listed) <= set(params):
                    self.fail(
                        f"field {field_name!r} must list names of 'params'",
                        line=key_line,
                        entry=name,
                    )
                lists[field_name] = tuple(listed)
            raw_choices = body.get("choices", {})
            if not isinstance(raw_choices, dict) or not all(
                key in params
                and isinstance(words, list)
                and words
                and all(isinstance(w, str) and w.isidentifier() for w in words)
                and params[key] == words[0]
                for key, words in raw_choices.items()
            ):
                self.fail(
                    "field 'choices' maps names of 'params' to lists of words, the default first",
                    line=key_line,
                    entry=name,
                )
            starred = [p for p in params if p.startswith("*")]
            if starred and (list(params)[-1] != starred[-1] or len(starred) > 1):
                self.fail(
                    "a '*name' parameter (every further positional argument) must be the last",
                    line=key_line,
                    entry=name,
                )
            result[name] = ArrayNamesake(
                reason or "",
                bare,
                exact,
                tuple(params.items()),
                tuple(imports),
                after,
                tuple(operands),
                any_array,
                detaches,
                tuple(devices),
                left,
                bare_exact,
                raises,
                same_positional,
                lists["expressions"],
                lists["undifferentiated"],
                tuple((key, tuple(words)) for key, words in raw_choices.items()),
            )
        return result

    def star_exports(self, raw: Any, line: int | None) -> dict[str, frozenset[str]]:
        """``star_exports: {torch.optim: [Adam, SGD, lr_scheduler]}``: a module's dotted name
        to the names its star import binds."""
        return self.names_by_dotted(raw, line, "star_exports", "module")

    def names_by_dotted(
        self, raw: Any, line: int | None, key: str, what: str
    ) -> dict[str, frozenset[str]]:
        """``KEY: {dotted.name: [identifier, ...]}`` (``star_exports``, ``recording_methods``)."""
        if raw is None:
            return {}
        section = self.mapping(raw, f"'{key}'", line)
        result = {}
        for dotted, names in section.items():
            key_line = section.lines.get(dotted)
            self.dotted(dotted, what, key_line, dotted)
            result[dotted] = frozenset(self.identifiers(names, key_line, f"'{key}' {dotted!r}"))
        return result

    def scaler_methods(self, raw: Any, line: int | None, base: ScalerMethods) -> ScalerMethods:
        """``scaler_methods: {scale: scale, unscale: unscale_, update: update}`` (the names
        given replace those of ``base``)."""
        section = self.mapping(raw, "'scaler_methods'", line)
        self.check_keys(section, {"scale", "unscale", "update"}, "'scaler_methods'", None)
        for key, value in section.items():
            if not isinstance(value, str) or not value.isidentifier():
                self.fail(f"'scaler_methods' {key!r} must be a method name", line=line)
        return replace(base, **section)

    def modules(self, raw: Any, line: int | None, base: ModuleSpec) -> ModuleSpec:
        """``modules: {losses: [...], self_methods: [...], wrappers: [...],
        grad_contexts: [...], unwrapped_by: {wrapper: attribute}, forwarding: {call:
        [names]}}`` (the keys given replace those of ``base``)."""
        section = self.mapping(raw, "'modules'", line)
        keys = {"losses", "self_methods", "wrappers", "grad_contexts", "unwrapped_by", "forwarding"}
        self.check_keys(section, keys, "'modules'", None)
        given: dict[str, Any] = {}
        if "self_methods" in section:
            given["self_methods"] = frozenset(
                self.identifiers(section["self_methods"], line, "'modules' 'self_methods'")
            )
        for key in ("losses", "wrappers", "grad_contexts"):
            if key in section:
                given[key] = self.passthrough_calls(section[key], line, f"modules: {key}")
        if "forwarding" in section:
            given["forwarding"] = self.forwarding(section["forwarding"], line)
        if "unwrapped_by" in section:
            wrappers = given.get("wrappers", base.wrappers)
            given["unwrapped_by"] = self.unwrapped_by(section["unwrapped_by"], wrappers, line)
        return replace(base, **given)

    def identifiers(self, raw: Any, line: int | None, what: str) -> list[str]:
        """A list of Python names (``what`` words the error)."""
        if not isinstance(raw, list) or not all(
            isinstance(m, str) and m.isidentifier() for m in raw
        ):
            self.fail(f"{what} must be a list of method names", line=line)
        return list(raw)

    def forwarding(self, raw: Any, line: int | None) -> dict[str, frozenset[str]]:
        """``forwarding: {torch.compile: [names the wrapper answers itself]}``."""
        section = self.mapping(raw, "'modules' 'forwarding'", line)
        return {
            self.dotted(call, "function", line, None): frozenset(
                self.identifiers(names, line, f"'modules' 'forwarding' {call!r}")
            )
            for call, names in section.items()
        }

    def unwrapped_by(self, raw: Any, wrappers: frozenset[str], line: int | None) -> dict[str, str]:
        """``unwrapped_by: {torch.nn.DataParallel: module}``: each key one of ``wrappers``,
        each value an attribute name."""
        section = self.mapping(raw, "'modules' 'unwrapped_by'", line)
        for wrapper, attribute in section.items():
            if wrapper not in wrappers:
                self.fail(f"'unwrapped_by' {wrapper!r} is not one of 'wrappers'", line=line)
            if not isinstance(attribute, str) or not attribute.isidentifier():
                self.fail(f"'unwrapped_by' {wrapper!r} must name an attribute", line=line)
        return dict(section)

    def passthrough_calls(
        self, raw: Any, line: int | None, key: str = "passthrough_calls", kind: str = "function"
    ) -> frozenset[str]:
        """A list of dotted names (functions, or modules for ``recording_modules``)."""
        if raw is None:
            return frozenset()
        if not isinstance(raw, list):
            self.fail(f"'{key}' must be a list of {kind} names", line=line)
        return frozenset(self.dotted(name, kind, line, None) for name in raw)

    def apis(
        self,
        raw: Any,
        line: int | None,
        types: Mapping[str, TypeEntry],
        imports: Mapping[str, ImportSpec],
    ) -> dict[str, ApiEntry]:
        section = self.mapping(raw, "'apis'", line)
        result: dict[str, ApiEntry] = {}
        for name, body in section.items():
            result[name] = self.api(name, body, section.lines.get(name), types, imports)
        for entry in list(result.values()):
            for alias in entry.aliases:
                if alias in result:
                    self.fail(
                        f"alias {alias!r} is already the name or an alias of another entry",
                        line=entry.line,
                        entry=entry.name,
                    )
                result[alias] = entry
        return result

    def signature_arguments(
        self, raw: _LineDict, key: str, signature: Signature, name: str
    ) -> list[str]:
        """The list ``key`` of an entry (``per_group``, ``functions``): arguments of its
        signature."""
        arguments = raw.get(key) or []
        if not isinstance(arguments, list) or not all(
            isinstance(a, str) and a in signature.names for a in arguments
        ):
            self.fail(
                f"'{key}' must be a list of arguments of the signature",
                line=raw.lines.get(key),
                entry=name,
            )
        return arguments

    def removed_arguments(self, raw: _LineDict, signature: Signature, name: str) -> Signature:
        """The entry's ``removed``: arguments older torch took that torch 2.13 removed (none
        of the signature's), which binding drops when given by keyword with a literal or a
        plain name (spec/signature.py)."""
        removed = raw.get("removed") or []
        line = raw.lines.get("removed")
        if not isinstance(removed, list) or not all(
            isinstance(r, str) and r.isidentifier() for r in removed
        ):
            self.fail("'removed' must be a list of argument names", line=line, entry=name)
        for argument in removed:
            if argument in signature.names:
                self.fail(
                    f"'removed' names {argument!r}, which is an argument of the signature "
                    f"(a removed argument is one torch 2.13 no longer takes)",
                    line=line,
                    entry=name,
                )
            if removed.count(argument) > 1:
                self.fail(f"'removed' lists {argument!r} twice", line=line, entry=name)
        return Signature.parse(signature.source, tuple(removed))

    def api_aliases(self, raw: _LineDict, name: str, receiver_type: str | None) -> list[str]:
        """The entry's ``aliases``: other dotted names the same call is imported through."""
        aliases = raw.get("aliases") or []
        line = raw.lines.get("aliases")
        if not isinstance(aliases, list):
            self.fail("'aliases' must be a list", line=line, entry=name)
        if aliases and receiver_type is not None:
            self.fail("a method entry takes no 'aliases'", line=line, entry=name)
        for alias in aliases:
            self.dotted(alias, "alias", line, name)
            self.known(alias, line, name)
            if alias == name or aliases.count(alias) > 1:
                self.fail(f"alias {alias!r} is listed twice", line=line, entry=name)
        return aliases

    def api(
        self,
        name: Any,
        raw: Any,
        line: int | None,
        types: Mapping[str, TypeEntry],
        imports: Mapping[str, ImportSpec],
    ) -> ApiEntry:
        name = self.dotted(name, "API", line, None)
        self.known(name, line, name)
        raw = self.mapping(raw, "an API entry", line, name)
        self.check_keys(raw, _API_KEYS, "an API entry", name)
        hook = self.string(raw, "hook", name, required=True)
        assert hook is not None
        if hook not in self.hooks:
            self.fail(
                f"unknown hook {hook!r} (registered: {', '.join(sorted(self.hooks))})",
                line=raw.lines.get("hook"),
                entry=name,
            )
        for required in self.hooks[hook].requires:
            if not raw.get(required):
                self.fail(f"hook {hook!r} needs the field {required!r}", line=raw.line, entry=name)
        role = self.role(raw, hook, name)
        signature_text = self.string(raw, "signature", name) or ""
        if len(signature_text) > MAX_SIGNATURE_LENGTH:
            self.fail(
                f"'signature' is longer than {MAX_SIGNATURE_LENGTH} characters",
                line=raw.lines.get("signature"),
                entry=name,
            )
        try:
            signature = Signature.parse(signature_text)
        except ValueError as exc:
            self.fail(f"bad 'signature': {exc}", line=raw.lines.get("signature"), entry=name)
        signature = self.removed_arguments(raw, signature, name)
        owner = name.rpartition(".")[0]
        receiver_type = owner if owner in types else None
        returns = self.string(raw, "returns", name)
        if returns is not None and returns not in types:
            self.fail(
                f"'returns' names {returns!r}, which is not a declared type",
                line=raw.lines.get("returns"),
                entry=name,
            )
        status = self.string(raw, "status", name) or "exact"
        exact_status = self.string(raw, "exact_status", name) or status
        for key, value in (("status", status), ("exact_status", exact_status)):
            if value not in STATUSES:
                self.fail(
                    f"'{key}' must be one of {', '.join(STATUSES)}, not {value!r}",
                    line=raw.lines.get(key),
                    entry=name,
                )
        tolerance = raw.get("tolerance")
        if "approximate" in (status, exact_status):
            if (
                not isinstance(tolerance, (int, float))
                or isinstance(tolerance, bool)
                or not 0 < tolerance < 1
            ):
                self.fail(
                    "an approximate entry needs a numeric 'tolerance' between 0 and 1",
                    line=raw.lines.get("tolerance", raw.line),
                    entry=name,
                )
        elif tolerance is not None:
            self.fail(
                "'tolerance' is only allowed with status: approximate",
                line=raw.lines.get("tolerance"),
                entry=name,
            )
        ignore = raw.get("ignore") or []
        if not isinstance(ignore, list) or not all(isinstance(i, str) for i in ignore):
            self.fail(
                "'ignore' must be a list of argument names",
                line=raw.lines.get("ignore"),
                entry=name,
            )
        definitions = tuple(
            str(item.get("slot"))[1:]
            for item in (raw.get("chain") or [])
            if isinstance(item, dict) and str(item.get("slot", "")).startswith("=")
        )
        ctx = _EntryContext(
            self, name, signature, imports, self.hooks[hook].placeholders + definitions
        )
        for arg in ignore:
            ctx.argument(arg, raw.lines.get("ignore"))
        chain = tuple(ctx.link(item, raw.lines.get("chain")) for item in ctx.items(raw, "chain"))
        value_ctx = _EntryContext(
            self, name, signature, imports, (*ctx.context_placeholders, GRADIENTS)
        )
        returned = tuple(
            value_ctx.link(item, raw.lines.get("value")) for item in value_ctx.items(raw, "value")
        )
        escapes = tuple(
            ctx.rule(item, raw.lines.get("escapes")) for item in ctx.items(raw, "escapes")
        )
        lifts = tuple(ctx.rule(item, raw.lines.get("lifts")) for item in ctx.items(raw, "lifts"))
        reason = self.string(raw, "reason", name)
        suggest = self.string(raw, "suggest", name)
        for text, key in ((reason, "reason"), (suggest, "suggest")):
            if text is not None:
                ctx.text(text, raw.lines.get(key), key)
        unhandled = [
            p
            for p in signature.names
            if p not in ctx.used and p not in ignore and p not in ("params", "optimizer")
        ]
        if unhandled and chain:  # an entry that only escapes drops nothing
            self.fail(
                f"argument(s) {', '.join(unhandled)} of the signature are not handled: use them "
                f"in 'chain', 'escapes' or list them in 'ignore'",
                line=raw.lines.get("signature", raw.line),
                entry=name,
            )
        note = self.string(raw, "note", name)
        learning_rate = self.string(raw, "learning_rate", name)
        momentum_argument = self.string(raw, "momentum_argument", name)
        lr_in_decay = raw.get("lr_in_decay", False)
        if not isinstance(lr_in_decay, bool) or (lr_in_decay and learning_rate is None):
            self.fail(
                "'lr_in_decay' must be true or false, and true only with 'learning_rate'",
                line=raw.lines.get("lr_in_decay"),
                entry=name,
            )
        for key, value in (
            ("learning_rate", learning_rate),
            ("momentum_argument", momentum_argument),
        ):
            if value is not None and value.partition("[")[0] not in signature.names:
                self.fail(
                    f"{key!r} names {value!r}, which is not an argument of the signature",
                    line=raw.lines.get(key),
                    entry=name,
                )
        per_group = self.signature_arguments(raw, "per_group", signature, name)
        kept = self.signature_arguments(raw, "kept", signature, name)
        counts = self.signature_arguments(raw, "counts", signature, name)
        functions = self.signature_arguments(raw, "functions", signature, name)
        traced = self.signature_arguments(raw, "traced", signature, name)
        if not set(traced) <= set(functions):
            self.fail(
                "'traced' must list some of 'functions'", line=raw.lines.get("traced"), entry=name
            )
        attribute = raw.get("attribute", False)
        if not isinstance(attribute, bool):
            self.fail(
                "'attribute' must be true or false", line=raw.lines.get("attribute"), entry=name
            )
        if attribute and receiver_type is None:
            self.fail("an attribute entry must be named Type.attribute", line=line, entry=name)
        harmless = raw.get("harmless_untranslated", False)
        if not isinstance(harmless, bool) or (harmless and not attribute):
            self.fail(
                "'harmless_untranslated' must be true or false, and true only on an attribute "
                "entry (a call may be escaped by the planner whatever its receiver)",
                line=raw.lines.get("harmless_untranslated"),
                entry=name,
            )
        return ApiEntry(
            name=name,
            hook=hook,
            role=role,
            signature=signature,
            source=self.path,
            line=line or raw.line,
            returns=returns,
            status=status,
            exact_status=exact_status,
            tolerance=float(tolerance) if tolerance is not None else None,
            note=note,
            ignore=frozenset(ignore),
            chain=chain,
            escapes=escapes,
            lifts=lifts,
            reason=reason,
            suggest=suggest,
            receiver_type=receiver_type,
            learning_rate=learning_rate,
            momentum_argument=momentum_argument,
            lr_in_decay=lr_in_decay,
            attribute=attribute,
            harmless_untranslated=harmless,
            per_group=frozenset(per_group),
            kept=frozenset(kept),
            counts=frozenset(counts),
            functions=frozenset(functions),
            traced=frozenset(traced),
            aliases=tuple(self.api_aliases(raw, name, receiver_type)),
            dispatch=self.dispatch(raw, name, signature) if "dispatch" in raw else None,
            value=returned,
            manual_pair=ctx.manual_pair(raw) if "manual_pair" in raw else None,
            sequence=self.sequence_argument(raw, signature, name),
            in_sequence=ctx.in_sequence(raw) if "in_sequence" in raw else None,
        )

    def sequence_argument(self, raw: _LineDict, signature: Signature, name: str) -> str | None:
        """The entry's ``sequence``: an argument of its signature, or None."""
        value = self.string(raw, "sequence", name)
        if value is not None and value not in signature.names:
            self.fail(
                f"'sequence' names {value!r}, which is not an argument of the signature",
                line=raw.lines.get("sequence"),
                entry=name,
            )
        return value

    def dispatch(self, raw: _LineDict, name: str, signature: Signature) -> Dispatch:
        """The entry's ``dispatch``: arguments of the signature, cases naming entries."""
        body = self.mapping(raw["dispatch"], "'dispatch'", raw.lines.get("dispatch"), name)
        self.check_keys(body, _DISPATCH_KEYS, "'dispatch'", name)

        def argument(key: str, value: Any, line: int | None) -> str:
            if not isinstance(value, str) or value not in signature.names:
                self.fail(f"{key!r} must name an argument of the signature", line=line, entry=name)
            return str(value)

        selector = argument("argument", body.get("argument"), body.lines.get("argument"))
        forward = argument("forward", body.get("forward"), body.lines.get("forward"))
        keywords = body.get("keywords")
        if keywords is not None:
            keywords = argument("keywords", keywords, body.lines.get("keywords"))
        cases_raw = self.mapping(body.get("cases"), "'cases'", body.lines.get("cases"), name)
        cases: dict[str, DispatchCase] = {}
        for value, case_raw in cases_raw.items():
            line = cases_raw.lines.get(value)
            case = self.mapping(case_raw, "a dispatch case", line, name)
            self.check_keys(case, _CASE_KEYS, "a dispatch case", name)
            api = self.dotted(case.get("api"), "dispatch api", line, name)
            passes = case.get("pass") or []
            if not isinstance(passes, list):
                self.fail("'pass' must be a list of arguments", line=line, entry=name)
            for passed in passes:
                argument("pass", passed, line)
            forwards_keywords = case.get("keywords", False)
            if not isinstance(forwards_keywords, bool) or (forwards_keywords and not keywords):
                self.fail("a case's 'keywords' must be true or false", line=line, entry=name)
            cases[str(value)] = DispatchCase(api, tuple(passes), forwards_keywords)
        return Dispatch(selector, forward, keywords, cases)


class _EntryContext:
    """Validation state for one API entry: which arguments its rules use."""

    def __init__(
        self,
        checker: _Checker,
        name: str,
        signature: Signature,
        imports: Mapping[str, ImportSpec],
        context_placeholders: tuple[str, ...] = (),
    ) -> None:
        self.checker = checker
        self.context_placeholders = context_placeholders
        self.name = name
        self.signature = signature
        self.imports = imports
        self.used: set[str] = set()
        self.links = 0

    def fail(self, message: str, line: int | None) -> None:
        self.checker.fail(message, line=line, entry=self.name)

    def argument(self, arg: str, line: int | None) -> None:
        if arg not in self.signature.names and arg not in self.context_placeholders:
            self.fail(
                f"{arg!r} is not an argument of the signature ({self.signature.source})", line
            )
        self.used.add(arg)

    def manual_pair(self, raw: _LineDict) -> ManualPair:
        """The entry's ``manual_pair``: its part, the warm-up's length argument, a condition."""
        line = raw.lines.get("manual_pair", raw.line)
        body = raw["manual_pair"]
        if not isinstance(body, dict):
            self.fail("'manual_pair' must be a mapping", line)
        self.checker.check_keys(body, _MANUAL_PAIR_KEYS, "'manual_pair'", self.name)
        part = body.get("part")
        if part not in MANUAL_PAIR_PARTS:
            self.fail(f"'manual_pair' part must be one of {', '.join(MANUAL_PAIR_PARTS)}", line)
        length = body.get("length")
        if (part == "warmup") != isinstance(length, str):
            self.fail("'manual_pair' needs 'length' (an argument) exactly for part: warmup", line)
        if length is not None:
            self.argument(length, line)
        return ManualPair(part, length, self.condition(body))

    def in_sequence(self, raw: _LineDict) -> SequencePart:
        """The entry's ``in_sequence``: where it is refused as a part, the reason, a suggestion."""
        line = raw.lines.get("in_sequence", raw.line)
        body = raw["in_sequence"]
        if not isinstance(body, dict):
            self.fail("'in_sequence' must be a mapping", line)
        self.checker.check_keys(body, _IN_SEQUENCE_KEYS, "'in_sequence'", self.name)
        refused, reason, suggest = body.get("refused"), body.get("reason"), body.get("suggest")
        if refused not in IN_SEQUENCE_REFUSED:
            allowed = ", ".join(IN_SEQUENCE_REFUSED)
            self.fail(f"'in_sequence' refused must be one of {allowed}", line)
        if not isinstance(reason, str) or not (suggest is None or isinstance(suggest, str)):
            self.fail("'in_sequence' needs a 'reason' (and may have a 'suggest') string", line)
        return SequencePart(refused, reason, suggest)

    def items(self, raw: _LineDict, key: str) -> list[Any]:
        value = raw.get(key) or []
        if not isinstance(value, list):
            self.fail(f"{key!r} must be a list", raw.lines.get(key, raw.line))
        return value

    def condition(self, raw: _LineDict) -> Condition:
        parts: dict[str, Any] = {}
        for key in ("when", "unless"):
            value = raw.get(key) or {}
            line = raw.lines.get(key, raw.line)
            if not isinstance(value, dict):
                self.fail(f"{key!r} must be a mapping of argument: value", line)
            for arg, expected in value.items():
                self.argument(arg, line)
                if not _is_plain_data(expected):
                    self.fail(f"{key!r} value for {arg!r} must be plain data", line)
            parts[key] = tuple((arg, _freeze(v)) for arg, v in value.items())
        unknown_ok = raw.get("unknown_ok") or []
        line = raw.lines.get("unknown_ok", raw.line)
        if not isinstance(unknown_ok, list) or not all(isinstance(a, str) for a in unknown_ok):
            self.fail("'unknown_ok' must be a list of argument names", line)
        for arg in unknown_ok:
            if arg not in {name for name, _ in (*parts["when"], *parts["unless"])}:
                self.fail(f"'unknown_ok' names {arg!r}, which the condition does not test", line)
        return Condition(parts["when"], parts["unless"], frozenset(unknown_ok))

    def mode(self, raw: _LineDict) -> str:
        mode = raw.get("mode", "any")
        if mode not in MODES:
            self.fail(f"'mode' must be one of {', '.join(MODES)}", raw.lines.get("mode", raw.line))
        return mode

    def template(self, source: Any, line: int | None) -> Template:
        if not isinstance(source, str):
            self.fail("'emit' must be a string holding one Python expression", line)
        try:
            template = Template.compile(source)
        except ValueError as exc:
            self.fail(f"bad template {_shortened(source)!r}: {exc}", line)
        for param in template.parameter_names:
            self.argument(param, line)
        for introduced in sorted(template.introduced_names - self.checker.template_names):
            self.fail(
                f"template introduces the name {introduced!r} (a lambda parameter or "
                f"comprehension variable), which is not declared under 'template_names'",
                line,
            )
        for free in sorted(template.free_names):
            if free not in self.imports:
                self.fail(
                    f"template uses the name {free!r}, which is neither an argument placeholder "
                    f"nor declared under 'imports'",
                    line,
                )
        for dotted in _dotted_names(template.expression):
            root, _, rest = dotted.partition(".")
            spec = self.imports.get(root)
            if spec is None or not rest:
                continue
            qualified = ".".join(filter(None, (spec.module, spec.obj, rest)))
            if qualified.startswith("ml_switcheroo.optax_torch."):
                _check_optax_torch_name(self, qualified, line)
            else:
                problem = known_apis.check_name(qualified)
                if problem:
                    self.fail(problem, line)
        return template

    def text(self, text: str, line: int | None, key: str = "reason") -> None:
        self.checker.plain_text(text, key, line, self.name)
        for match in _PLACEHOLDER.finditer(text):
            if (
                match.group(1) in ("receiver", "state")
                or match.group(1) in self.context_placeholders
            ):
                continue
            self.argument(match.group(1), line)

    def link(self, raw: Any, line: int | None) -> Link:
        raw = self.checker.mapping(raw, "a chain link", line, self.name)
        line = raw.line or line
        self.checker.check_keys(raw, _LINK_KEYS, "a chain link", self.name)
        if "emit" not in raw:
            self.fail("a chain link needs 'emit'", line)
        slot = raw.get("slot", f"#{self.links}")
        if not isinstance(slot, str):
            self.fail("'slot' must be a string", line)
        self.links += 1
        return Link(
            emit=self.template(raw["emit"], raw.lines.get("emit", line)),
            condition=self.condition(raw),
            slot=slot,
            mode=self.mode(raw),
        )

    def rule(self, raw: Any, line: int | None) -> EscapeRule:
        raw = self.checker.mapping(raw, "an escape rule", line, self.name)
        line = raw.line or line
        self.checker.check_keys(raw, _RULE_KEYS, "an escape rule", self.name)
        reason = raw.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            self.fail("an escape rule needs a 'reason' string", line)
        suggest = raw.get("suggest")
        if suggest is not None and not isinstance(suggest, str):
            self.fail("'suggest' must be a string", line)
        self.text(reason, line)
        if suggest:
            self.text(suggest, line, "suggest")
        return EscapeRule(self.condition(raw), reason.strip(), suggest, self.mode(raw))


def _check_optax_torch_name(ctx: _EntryContext, qualified: str, line: int | None) -> None:
    name = qualified.split(".")[2]
    if name not in _optax_torch_names():
        ctx.fail(f"unknown API `{qualified}` (not defined in ml_switcheroo/optax_torch.py)", line)


@cache
def _optax_torch_names() -> frozenset[str]:
    """Top-level names of the runtime module, read without importing it (no jax needed)."""
    try:
        tree = ast.parse(OPTAX_TORCH_MODULE.read_text(encoding="utf-8"))
    except OSError:
        return frozenset()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(names)


def _dotted_names(expression: cst.BaseExpression) -> list[str]:
    names: list[str] = []

    class _Collect(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            dotted = dotted_name(node)
            if dotted is not None:
                names.append(dotted)
                return False
            return True

    expression.visit(_Collect())
    return names


def _is_plain_data(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_is_plain_data(v) for v in value)
    return False


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


def _shortened(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[: limit - 20]}...{text[-17:]}"


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string"}.get(
        type(value), type(value).__name__
    )


# --------------------------------------------------------------------------- merge and cache


def _compile_file(path: Path, base: SemanticMap | None, hooks: Mapping[str, Any]) -> SemanticMap:
    try:
        return _compile_raw(path, _read_yaml(path), base, hooks)
    except (RecursionError, MemoryError):
        raise SemanticMapError(str(path), "nested too deeply") from None


def _same_rule(a: EscapeRule, b: EscapeRule) -> bool:
    return a.condition == b.condition and a.mode == b.mode


def _describe(rule: EscapeRule) -> str:
    parts = [
        f"{k}: {{{', '.join(f'{n}: {v!r}' for n, v in pairs)}}}"
        for k, pairs in (("when", rule.condition.when), ("unless", rule.condition.unless))
        if pairs
    ]
    return "{" + ", ".join(parts) + "}"


def _check_overrides_keep_escapes(
    checker: _Checker, added: Mapping[str, ApiEntry], base: Mapping[str, ApiEntry]
) -> None:
    """An entry replacing one of the base map keeps each of its escapes, or names it under
    ``lifts`` (with the reason it translates): a dropped escape would convert silently what
    the base map knows to differ. ``lifts`` only names escapes the replaced entry has. An
    override with no chain over one with a chain only escapes and drops nothing; an escape on
    an argument the override's signature lacks is kept (such a call does not bind)."""
    for name, entry in added.items():
        replaced = base.get(name)
        if replaced is None:
            if entry.lifts:
                checker.fail(
                    "'lifts' is only for an entry that replaces one of the base map",
                    line=entry.line,
                    entry=name,
                )
            continue
        if replaced.chain and not entry.chain:  # it only escapes now: nothing converts
            continue
        for lifted in entry.lifts:
            if not any(_same_rule(lifted, rule) for rule in replaced.escapes):
                checker.fail(
                    f"'lifts' names {_describe(lifted)}, which is not an escape of the entry it "
                    f"replaces ({replaced.source}:{replaced.line})",
                    line=entry.line,
                    entry=name,
                )
        for rule in replaced.escapes:
            if not rule.condition.names <= set(entry.signature.names):
                continue  # a call passing that argument does not bind to the override
            kept = any(_same_rule(rule, own) for own in (*entry.escapes, *entry.lifts))
            if not kept:
                checker.fail(
                    f"drops the escape {_describe(rule)} of the entry it replaces "
                    f"({replaced.source}:{replaced.line}): keep it under 'escapes', or name it "
                    f"under 'lifts' with the reason this entry translates it",
                    line=entry.line,
                    entry=name,
                )


def _compile_raw(
    path: Path, raw: Any, base: SemanticMap | None, hooks: Mapping[str, Any]
) -> SemanticMap:
    checker = _Checker(str(path), hooks)
    top = checker.mapping(raw, "the file", 1)
    checker.check_keys(top, _TOP_KEYS, "the top level", None)
    version = top.get("version", 1)
    if version != 1:
        checker.fail(
            f"unsupported 'version' {version!r} (expected 1)", line=top.lines.get("version")
        )
    imports = dict(base.imports) if base else {}
    imports.update(checker.imports(top.get("imports"), top.lines.get("imports")))
    types = dict(base.types) if base else {}
    types.update(checker.types(top.get("types"), top.lines.get("types")))
    checker.template_names = checker.declared_template_names(
        top.get("template_names"),
        top.lines.get("template_names"),
        base.template_names if base else frozenset(),
        imports,
    )
    apis = dict(base.apis) if base else {}
    added = checker.apis(top.get("apis"), top.lines.get("apis"), types, imports)
    _check_overrides_keep_escapes(checker, added, apis)
    for replaced in [apis[name] for name in added if name in apis]:
        for name in (replaced.name, *replaced.aliases):  # an override replaces every name
            if apis.get(name) is replaced:
                del apis[name]
    apis.update(added)
    for entry in added.values():
        for case in entry.dispatch.cases.values() if entry.dispatch else ():
            target = apis.get(case.api)
            if target is None or target.hook != entry.hook or target.dispatch is not None:
                checker.fail(
                    f"dispatch case {case.api!r} is not an entry of the map with hook "
                    f"{entry.hook!r} (and no dispatch of its own)",
                    line=entry.line,
                    entry=entry.name,
                )
    sources = (base.sources if base else ()) + (str(path),)
    functions = {}
    for key, field_name in _FUNCTION_FIELDS.items():
        line = top.lines.get(key)
        if key not in top and base is None:
            checker.fail(f"the base map must name {key!r} (the target's function for it)")
        value = top.get(key, getattr(base, field_name) if base else None)
        checker.dotted(value, f"'{key}'", line, None)
        if value.partition(".")[0] not in imports:
            checker.fail(
                f"{key!r} {value!r} must start with a name declared under 'imports'", line=line
            )
        functions[field_name] = value
    backward = top.get("backward_methods", sorted(base.backward_methods) if base else ["backward"])
    if not isinstance(backward, list) or not all(
        isinstance(m, str) and m.isidentifier() for m in backward
    ):
        checker.fail(
            "'backward_methods' must be a list of method names",
            line=top.lines.get("backward_methods"),
        )
    module_zeros = _names_list(top, base, "module_zero_grad_methods", "method", checker)
    inject_static = _names_list(top, base, "inject_static_args", "keyword", checker)
    gradient_attributes = _names_list(top, base, "gradient_attributes", "attribute", checker)
    reading_methods = _names_list(top, base, "reading_methods", "method", checker)
    writing_keywords = _names_list(top, base, "writing_keywords", "keyword", checker)
    writing_suffix = top.get("writing_suffix", base.writing_suffix if base else None)
    if writing_suffix is not None and not isinstance(writing_suffix, str):
        checker.fail("'writing_suffix' must be a string", line=top.lines.get("writing_suffix"))
    writing_functions = checker.passthrough_calls(
        top.get("writing_functions"), top.lines.get("writing_functions"), "writing_functions"
    )
    gradient_free = _names_list(top, base, "gradient_free_methods", "method", checker)
    torch_only_names = _names_list(top, base, "torch_only_module_names", "attribute", checker)
    argument_free = _names_list(top, base, "argument_free_module_methods", "method", checker)
    module_moves = _names_list(top, base, "module_moves", "method", checker)
    concrete_builtins = _names_list(top, base, "concrete_builtins", "builtin", checker)
    concrete_methods = _names_list(top, base, "concrete_methods", "method", checker)
    dim_reductions = _names_list(top, base, "dim_reductions", "method", checker)
    rejecting = _dotted_list(top, base, "tracer_rejecting_packages", checker)
    graph_free_reads = _names_list(top, base, "graph_free_reads", "attribute", checker)
    graph_free_modules = _dotted_list(top, base, "graph_free_modules", checker)
    graph_free_containers = _dotted_list(top, base, "graph_free_containers", checker)
    mode_attributes = _names_list(top, base, "module_mode_attributes", "attribute", checker)
    array_views = _names_list(top, base, "array_views", "method or attribute", checker)
    array_moves = _names_list(top, base, "array_moves", "method or attribute", checker)
    if not set(array_moves) <= set(array_views):
        checker.fail(
            "'array_moves' must be names of 'array_views'", line=top.lines.get("array_moves")
        )
    in_place_keywords = _names_list(top, base, "in_place_keywords", "keyword", checker)
    in_place_suffix = top.get("in_place_suffix", base.in_place_suffix if base else None)
    if in_place_suffix is not None and not isinstance(in_place_suffix, str):
        checker.fail("'in_place_suffix' must be a string", line=top.lines.get("in_place_suffix"))
    scaler = base.scaler_methods if base else ScalerMethods()
    if "scaler_methods" in top:
        raw_scaler, scaler_line = top["scaler_methods"], top.lines.get("scaler_methods")
        scaler = checker.scaler_methods(raw_scaler, scaler_line, scaler)
    modules = base.modules if base else ModuleSpec()
    if "modules" in top:
        modules = checker.modules(top["modules"], top.lines.get("modules"), modules)
    parameters = base.parameters if base else ParameterSpec()
    if "parameters" in top:
        parameters = checker.parameters(top["parameters"], top.lines.get("parameters"))
    tensor_values = base.tensor_values if base else TensorValueSpec()
    if "tensor_values" in top:
        tensor_values = checker.tensor_values(top["tensor_values"], top.lines.get("tensor_values"))
    torch_only_calls = dict(base.torch_only_calls) if base else {}
    torch_only_calls.update(
        checker.torch_only_calls(top.get("torch_only_calls"), top.lines.get("torch_only_calls"))
    )
    passthrough = checker.passthrough_calls(
        top.get("passthrough_calls"), top.lines.get("passthrough_calls")
    )
    dynamic = checker.passthrough_calls(
        top.get("dynamic_code_calls"), top.lines.get("dynamic_code_calls"), "dynamic_code_calls"
    )
    binding = checker.passthrough_calls(
        top.get("binding_calls"), top.lines.get("binding_calls"), "binding_calls"
    )
    pure = checker.passthrough_calls(
        top.get("pure_calls"), top.lines.get("pure_calls"), "pure_calls"
    )
    recording = checker.passthrough_calls(
        top.get("recording_modules"),
        top.lines.get("recording_modules"),
        "recording_modules",
        "module",
    )
    fixed = checker.passthrough_calls(
        top.get("fixed_modules"), top.lines.get("fixed_modules"), "fixed_modules", "module"
    )
    fresh_loaders = checker.passthrough_calls(
        top.get("fresh_loaders"), top.lines.get("fresh_loaders"), "fresh_loaders", "name"
    )
    batch_wrappers = checker.passthrough_calls(
        top.get("batch_wrappers"), top.lines.get("batch_wrappers"), "batch_wrappers", "name"
    )
    data_modules = checker.passthrough_calls(
        top.get("data_modules"), top.lines.get("data_modules"), "data_modules", "module"
    )
    measured = {
        key: checker.passthrough_calls(top.get(key), top.lines.get(key), key, "name")
        | (getattr(base, key) if base else frozenset())
        for key in (
            "measured_loaders",
            "measured_loader_keywords",
            "map_style_datasets",
            "sized_by_arguments",
        )
    }
    positional = top.get("measured_loader_positional")
    if positional is None:
        measured_positional = base.measured_loader_positional if base else ()
    else:
        measured_positional = tuple(
            checker.identifiers(
                positional,
                top.lines.get("measured_loader_positional"),
                "'measured_loader_positional'",
            )
        )
    options = {
        key: checker.passthrough_calls(top.get(key), top.lines.get(key), key, "name")
        | (getattr(base, key) if base else frozenset())
        for key in ("option_parsers", "option_types", "option_actions", "option_keywords")
    }
    chains = checker.passthrough_calls(
        top.get("parameter_chains"), top.lines.get("parameter_chains"), "parameter_chains"
    )
    device_calls = checker.passthrough_calls(
        top.get("device_calls"), top.lines.get("device_calls"), "device_calls"
    )
    star_exports = dict(base.star_exports) if base else {}
    star_exports.update(
        checker.star_exports(top.get("star_exports"), top.lines.get("star_exports"))
    )
    recording_methods = dict(base.recording_methods) if base else {}
    recording_methods.update(
        checker.names_by_dotted(
            top.get("recording_methods"),
            top.lines.get("recording_methods"),
            "recording_methods",
            "class",
        )
    )
    namesakes = dict(base.array_namesakes) if base else {}
    namesakes.update(
        checker.array_namesakes(top.get("array_namesakes"), top.lines.get("array_namesakes"))
    )
    namesakes.update(
        checker.array_namesakes(top.get("array_lacks"), top.lines.get("array_lacks"), "array_lacks")
    )
    array_functions = dict(base.array_functions) if base else {}
    array_functions.update(
        checker.array_namesakes(
            top.get("array_functions"), top.lines.get("array_functions"), "array_functions"
        )
    )
    attributes = dict(base.array_attributes) if base else {}
    attributes.update(
        checker.array_namesakes(
            top.get("array_attributes"), top.lines.get("array_attributes"), "array_attributes"
        )
    )
    return SemanticMap(
        apis=apis,
        types=types,
        imports=imports,
        sources=sources,
        backward_methods=frozenset(backward),
        module_zero_grad_methods=frozenset(module_zeros),
        inject_static_args=tuple(inject_static),
        gradient_attributes=frozenset(gradient_attributes),
        reading_methods=frozenset(reading_methods),
        writing_suffix=writing_suffix,
        writing_keywords=frozenset(writing_keywords),
        writing_functions=writing_functions | (base.writing_functions if base else frozenset()),
        gradient_free_methods=frozenset(gradient_free),
        torch_only_module_names=frozenset(torch_only_names),
        argument_free_module_methods=frozenset(argument_free),
        module_moves=frozenset(module_moves),
        concrete_builtins=frozenset(concrete_builtins),
        concrete_methods=frozenset(concrete_methods),
        dim_reductions=frozenset(dim_reductions),
        tracer_rejecting_packages=frozenset(rejecting),
        graph_free_reads=frozenset(graph_free_reads),
        graph_free_modules=frozenset(graph_free_modules),
        graph_free_containers=frozenset(graph_free_containers),
        module_mode_attributes=frozenset(mode_attributes),
        in_place_suffix=in_place_suffix,
        in_place_keywords=frozenset(in_place_keywords),
        scaler_methods=scaler,
        modules=modules,
        parameters=parameters,
        tensor_values=tensor_values,
        template_names=checker.template_names,
        torch_only_calls=torch_only_calls,
        passthrough_calls=passthrough | (base.passthrough_calls if base else frozenset()),
        dynamic_code_calls=dynamic | (base.dynamic_code_calls if base else frozenset()),
        binding_calls=binding | (base.binding_calls if base else frozenset()),
        pure_calls=pure | (base.pure_calls if base else frozenset()),
        recording_modules=recording | (base.recording_modules if base else frozenset()),
        fixed_modules=fixed | (base.fixed_modules if base else frozenset()),
        data_modules=data_modules | (base.data_modules if base else frozenset()),
        fresh_loaders=fresh_loaders | (base.fresh_loaders if base else frozenset()),
        **measured,
        measured_loader_positional=measured_positional,
        batch_wrappers=batch_wrappers | (base.batch_wrappers if base else frozenset()),
        **options,
        array_namesakes=namesakes,
        array_attributes=attributes,
        array_views=frozenset(array_views),
        array_moves=frozenset(array_moves),
        array_functions=array_functions,
        parameter_chains=chains | (base.parameter_chains if base else frozenset()),
        device_calls=device_calls | (base.device_calls if base else frozenset()),
        star_exports=star_exports,
        recording_methods=recording_methods,
        **functions,
    )


def _names_list(
    top: Any, base: SemanticMap | None, key: str, kind: str, checker: _Checker
) -> list[str]:
    """A top-level list of identifiers (``module_zero_grad_methods: [zero_grad]``), else the
    base map's (none for the shipped map)."""
    names = top.get(key, sorted(getattr(base, key)) if base else [])
    if not isinstance(names, list) or not all(
        isinstance(n, str) and n.isidentifier() for n in names
    ):
        checker.fail(f"{key!r} must be a list of {kind} names", line=top.lines.get(key))
    return names


def _dotted_list(top: Any, base: SemanticMap | None, key: str, checker: _Checker) -> list[str]:
    """A top-level list of dotted names (``graph_free_modules: [torch.nn]``), else the base
    map's."""
    names = top.get(key, sorted(getattr(base, key)) if base else [])
    if not isinstance(names, list) or not all(
        isinstance(n, str) and _DOTTED.fullmatch(n) for n in names
    ):
        checker.fail(f"{key!r} must be a list of dotted names", line=top.lines.get(key))
    return names


_FUNCTION_FIELDS = {
    "chain": "chain_function",
    "inject_hyperparams": "inject_function",
    "count_wrapper": "count_wrapper",
    "join_schedules": "join_function",
    "accumulate": "accumulate_function",
}


def compile_semantic_map(paths: Iterable[Path], hooks: Mapping[str, Any]) -> SemanticMap:
    """The shipped map plus ``paths`` (later ones override), validated against ``hooks`` (hook
    name -> what it requires). Not cached: ``targets.catalogue.load_semantic_map`` is."""
    semantic_map = _compile_file(BUILTIN_MAP, None, hooks)
    for path in paths:
        semantic_map = _compile_file(path, semantic_map, hooks)
    return semantic_map
