"""Loading and validating semantic maps: every broken map is refused with a one-line message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from ml_switcheroo.spec.errors import SemanticMapError
from ml_switcheroo.spec.semantic_map import BUILTIN_MAP
from ml_switcheroo.targets.catalogue import load_semantic_map


def write_map(tmp_path: Path, text: str, name: str = "extra.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> SemanticMapError:
    path = write_map(tmp_path, text)
    with pytest.raises(SemanticMapError) as caught:
        load_semantic_map([path])
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    return caught.value


def test_shipped_map_loads() -> None:
    semantic_map = load_semantic_map()
    assert semantic_map.apis["torch.optim.Adam"].hook == "optimizer_constructor"
    assert semantic_map.method("torch.optim.Optimizer", "step") is not None


def test_map_is_cached_per_process(tmp_path: Path) -> None:
    assert load_semantic_map() is load_semantic_map()


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, "apis:\n  torch.optim.SGD: [1, 2\n  x: 3\n")
    assert error.line == 3
    assert "YAML error" in str(error)


def test_unknown_hook_names_entry_and_line(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: optimiser_constructor
            signature: "params, lr=0.1"
            chain: [{emit: "optax.sgd({lr})"}]
        """,
    )
    assert error.entry == "torch.optim.SGD"
    assert error.line == 4
    assert "unknown hook 'optimiser_constructor'" in str(error)


def test_missing_required_field(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.Optimizer.step:
            hook: optimizer_step
            signature: "closure=None"
            ignore: [closure]
            reason: "in place"
        """,
    )
    assert "needs the field 'suggest'" in str(error)


def test_wrongly_typed_field(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: [optimizer_constructor]
        """,
    )
    assert "field 'hook' must be a string, not a list" in str(error)


def test_unknown_field(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: optimizer_constructor
            taget: optax.sgd
        """,
    )
    assert "unknown field 'taget'" in str(error)


def test_misspelt_source_api_suggests_the_right_one(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.Adamw:
            hook: optimizer_zero_grad
        """,
    )
    assert "unknown API `torch.optim.Adamw` (did you mean `torch.optim.AdamW`?)" in str(error)


def test_misspelt_target_api_in_a_template(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: optimizer_constructor
            signature: "params, lr=0.1"
            chain: [{emit: "optax.sdg(learning_rate={lr})"}]
        """,
    )
    assert "unknown API `optax.sdg` (did you mean `optax.sgd`?)" in str(error)


def test_api_name_that_is_not_dotted(tmp_path: Path) -> None:
    error = load_error(tmp_path, "apis:\n  'torch optim SGD':\n    hook: optimizer_zero_grad\n")
    assert "is not a dotted Python name" in str(error)


def test_template_that_is_not_one_expression(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: optimizer_constructor
            signature: "params, lr=0.1"
            chain: [{emit: "x = optax.sgd({lr})"}]
        """,
    )
    assert "not a single Python expression" in str(error)


def test_placeholder_that_is_not_an_argument(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: optimizer_constructor
            signature: "params, lr=0.1"
            chain: [{emit: "optax.sgd({learning_rate})"}]
        """,
    )
    assert "'learning_rate' is not an argument of the signature" in str(error)


def test_argument_left_unhandled(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: optimizer_constructor
            signature: "params, lr=0.1, momentum=0"
            chain: [{emit: "optax.sgd({lr})"}]
        """,
    )
    assert "argument(s) momentum of the signature are not handled" in str(error)


def test_undeclared_module_in_a_template(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: optimizer_constructor
            signature: "params, lr=0.1"
            chain: [{emit: "np.sgd({lr})"}]
        """,
    )
    assert "uses the name 'np'" in str(error)


def test_duplicate_key(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: optimizer_zero_grad
          torch.optim.SGD:
            hook: optimizer_zero_grad
        """,
    )
    assert "duplicate key 'torch.optim.SGD' (first on line 3)" in str(error)
    assert error.line == 5


def test_yaml_tag_that_constructs_objects_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, "apis: !!python/object/apply:os.system ['echo hacked']\n")
    assert "could not determine a constructor" in str(error)


def test_bad_default_in_signature(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: optimizer_zero_grad
            signature: "lr=compute()"
        """,
    )
    assert "is not a Python literal" in str(error)


def test_returns_must_name_a_declared_type(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: optimizer_zero_grad
            returns: torch.optim.Optimiser
        """,
    )
    assert "unknown API" in str(error) or "not a declared type" in str(error)


def test_user_map_adds_an_entry(tmp_path: Path) -> None:
    path = write_map(
        tmp_path,
        """
        apis:
          mylib.optim.Lion:
            hook: optimizer_constructor
            returns: torch.optim.Optimizer
            signature: "params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0"
            chain:
              - {unless: {weight_decay: 0}, unknown_ok: [weight_decay], emit: "optax.add_decayed_weights({weight_decay})"}
              - {emit: "optax.lion(learning_rate={lr}, b1={betas[0]}, b2={betas[1]})"}
        """,
    )
    semantic_map = load_semantic_map([path])
    assert "mylib.optim.Lion" in semantic_map.apis
    assert "torch.optim.Adam" in semantic_map.apis


def test_user_map_overrides_an_entry(tmp_path: Path) -> None:
    path = write_map(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            hook: optimizer_constructor
            returns: torch.optim.Optimizer
            status: approximate
            tolerance: 1e-6
            signature: "params, lr=0.001, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False, foreach=None, differentiable=False, fused=None"
            ignore: [foreach, differentiable, fused, dampening, maximize, weight_decay, nesterov]
            chain: [{emit: "optax.sgd(learning_rate={lr}, momentum={momentum})"}]
            lifts:
              - {unless: {dampening: 0, momentum: 0}, mode: stock, reason: "our runs never dampen"}
        """,
    )
    assert load_semantic_map([path]).apis["torch.optim.SGD"].status == "approximate"


_SGD_WITHOUT_ESCAPES = """
apis:
  torch.optim.SGD:
    hook: optimizer_constructor
    returns: torch.optim.Optimizer
    signature: "params, lr=0.001, momentum=0, dampening=0"
    ignore: [dampening]
    chain: [{emit: "optax.sgd(learning_rate={lr}, momentum={momentum})"}]
"""


def test_an_override_that_drops_an_escape_of_the_replaced_entry_is_refused(
    tmp_path: Path,
) -> None:
    error = load_error(tmp_path, _SGD_WITHOUT_ESCAPES)
    assert "drops the escape {unless: {dampening: 0, momentum: 0}}" in str(error)
    assert "semantic_map.yaml:" in str(error) and "'lifts'" in str(error)
    assert error.entry == "torch.optim.SGD"


def test_an_override_keeping_the_escape_loads(tmp_path: Path) -> None:
    kept = "    escapes:\n      - {unless: {dampening: 0, momentum: 0}, mode: stock, reason: r}\n"
    path = write_map(tmp_path, _SGD_WITHOUT_ESCAPES + kept)
    assert load_semantic_map([path]).apis["torch.optim.SGD"].escapes


def test_lifts_must_name_an_escape_of_the_replaced_entry(tmp_path: Path) -> None:
    lifted = "    lifts:\n      - {unless: {dampening: 0}, reason: r}\n"
    error = load_error(tmp_path, _SGD_WITHOUT_ESCAPES + lifted)
    assert "'lifts' names {unless: {dampening: 0}}, which is not an escape" in str(error)


def test_lifts_on_a_new_entry_is_refused(tmp_path: Path) -> None:
    text = _SGD_WITHOUT_ESCAPES.replace("torch.optim.SGD:", "mylib.optim.SGD:")
    error = load_error(tmp_path, text + "    lifts:\n      - {when: {momentum: 1}, reason: r}\n")
    assert "'lifts' is only for an entry that replaces one of the base map" in str(error)


def test_the_nnx_layer_lifts_only_the_plateau_max_mode() -> None:
    """The NNX target's layer keeps every other escape of the shipped entries it replaces."""
    from ml_switcheroo.targets.nnx.target import NNX

    semantic_map = load_semantic_map([], NNX)
    lifted = {
        name: [rule.condition for rule in entry.lifts]
        for name, entry in semantic_map.apis.items()
        if entry.lifts
    }
    assert list(lifted) == ["torch.optim.lr_scheduler.ReduceLROnPlateau"]
    assert [c.unless for c in lifted["torch.optim.lr_scheduler.ReduceLROnPlateau"]] == [
        (("mode", "min"),)
    ]


def test_map_errors_survive_pickling_to_and_from_worker_processes() -> None:
    import pickle

    error = SemanticMapError("m.yaml", "bad", line=3, entry="torch.optim.SGD")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.line == 3 and copy.entry == "torch.optim.SGD"


# ----------------------------------------------------------------- parameters, tensor values


def test_parameters_section_holds_lists_of_names(tmp_path: Path) -> None:
    error = load_error(tmp_path, "parameters:\n  wrappers: list\n")
    assert "'parameters.wrappers' must be a list of names" in str(error)
    assert error.line == 2


def test_complex_names_are_identifiers_matched_by_last_name(tmp_path: Path) -> None:
    """``parameters.complex_names`` (probe s31 G8) holds last names (``cfloat``), not
    ``torch.cfloat``: a method ``w.cfloat()`` and numpy's dtypes match the same name."""
    error = load_error(tmp_path, "parameters:\n  complex_names: [torch.cfloat]\n")
    assert "'parameters.complex_names': 'torch.cfloat' is not an identifier" in str(error)


def test_the_shipped_map_lists_torchs_complex_dtypes_and_constructors() -> None:
    names = load_semantic_map().parameters.complex_names
    dtypes = {"cfloat", "cdouble", "chalf", "complex32", "complex64", "complex128"}
    assert dtypes | {"complex", "polar", "view_as_complex"} <= names


def test_a_replacing_argument_must_be_one_of_its_signature(tmp_path: Path) -> None:
    text = (
        "parameters:\n  replacing_arguments:\n"
        "    load_state_dict: {signature: 'state_dict, strict=True', argument: assign}\n"
    )
    error = load_error(tmp_path, text)
    assert "'parameters.replacing_arguments': 'assign' is not in its signature" in str(error)


def test_the_shipped_map_replaces_parameters_by_load_state_dict_assign() -> None:
    spec = load_semantic_map().parameters
    assert ("load_state_dict", "state_dict, strict=True, assign=False", "assign") in (
        spec.replacing_arguments
    )
    assert {"train", "eval", "to"} <= spec.keeping_methods


def test_unknown_field_in_tensor_values(tmp_path: Path) -> None:
    error = load_error(tmp_path, "tensor_values:\n  literal: {}\n")
    assert "unknown field 'literal' in 'tensor_values'" in str(error)


def test_tensor_dtype_must_name_a_known_format(tmp_path: Path) -> None:
    error = load_error(tmp_path, "tensor_values:\n  dtypes: {torch.float16: half}\n")
    assert "'tensor_values.dtypes' 'torch.float16' must be one of float64, float32" in str(error)
    assert error.line == 2


def test_tensor_literal_signature_starts_with_the_value(tmp_path: Path) -> None:
    error = load_error(
        tmp_path, "tensor_values:\n  literals:\n    torch.full: 'size=(), fill_value=0'\n"
    )
    assert "must start with the required value" in str(error)
    assert error.line == 3


def test_tensor_copies_must_be_literals(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        "tensor_values:\n  literals: {mylib.scalar: 'value'}\n  copies: [mylib.other]\n",
    )
    assert "'tensor_values.copies' 'mylib.other' is not one of its literals" in str(error)
    assert error.line == 3


def test_user_map_without_the_sections_keeps_the_shipped_ones(tmp_path: Path) -> None:
    semantic_map = load_semantic_map([write_map(tmp_path, "version: 1\n")])
    assert "torch.tensor" in semantic_map.tensor_values.literals
    assert "parameters" in semantic_map.parameters.module_methods


def test_user_map_replaces_a_section(tmp_path: Path) -> None:
    path = write_map(
        tmp_path,
        """
        tensor_values:
          literals: {mylib.scalar: "value, dtype=None"}
          dtypes: {mylib.f64: float64}
        """,
    )
    literals = load_semantic_map([path]).tensor_values.literals
    assert list(literals) == ["mylib.scalar"]
    assert literals["mylib.scalar"].names == ("value", "dtype")


def test_unknown_placeholder_in_a_types_translated_text(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        types:
          torch.optim.Optimizer:
            translated: {members: [init], reason: "`{receiver}` is optax", suggest: "port"}
        """,
    )
    assert "unknown placeholder {receiver}" in str(error)


def test_torch_only_call_without_a_suggestion(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'torch_only_calls:\n  pickle.dump: {reason: "no state"}\n')
    assert "missing required field 'suggest'" in str(error)


def test_passthrough_calls_must_be_a_list(tmp_path: Path) -> None:
    error = load_error(tmp_path, "passthrough_calls: builtins.print\n")
    assert "'passthrough_calls' must be a list" in str(error)


def test_user_map_adds_a_torch_only_call_and_a_passthrough(tmp_path: Path) -> None:
    path = write_map(
        tmp_path,
        """
        torch_only_calls:
          mylib.save: {reason: "`{name}` is optax: {use}", suggest: "save `{state}`"}
        passthrough_calls: [mylib.log]
        """,
    )
    semantic_map = load_semantic_map([path])
    assert semantic_map.torch_only_calls["mylib.save"].suggest == "save `{state}`"
    assert "pickle.dump" in semantic_map.torch_only_calls
    assert {"mylib.log", "builtins.print"} <= semantic_map.passthrough_calls


@pytest.mark.parametrize("key", ["per_group", "functions"])
def test_an_argument_list_names_arguments_of_the_signature(tmp_path: Path, key: str) -> None:
    error = load_error(
        tmp_path,
        f"""
        apis:
          torch.optim.SGD:
            hook: optimizer_constructor
            signature: "params, lr=0.1"
            {key}: [lr_lambda]
            chain: [{{emit: "optax.sgd({{lr}})"}}]
        """,
    )
    assert f"'{key}' must be a list of arguments of the signature" in str(error)


REMOVED_ENTRY = """
apis:
  torch.optim.lr_scheduler.StepLR:
    hook: lr_scheduler
    signature: "optimizer, step_size, gamma=0.1, last_epoch=-1"
    removed: {removed}
    escapes:
      - {{unless: {{last_epoch: -1}}, reason: "resumes"}}
    chain:
      - {{slot: schedule, emit: "optax.exponential_decay({{optimizer_lr}}, transition_steps={{step_size}}, decay_rate={{gamma}}, staircase=True)"}}
"""


@pytest.mark.parametrize(
    ("removed", "message"),
    [
        ("[gamma]", "'removed' names 'gamma', which is an argument of the signature"),
        ("verbose", "'removed' must be a list of argument names"),
        ("[verbose, 3]", "'removed' must be a list of argument names"),
        ("['not a name']", "'removed' must be a list of argument names"),
        ("[verbose, verbose]", "'removed' lists 'verbose' twice"),
    ],
)
def test_removed_arguments_are_names_the_signature_does_not_have(
    tmp_path: Path, removed: str, message: str
) -> None:
    error = load_error(tmp_path, REMOVED_ENTRY.format(removed=removed))
    assert message in str(error)
    assert error.entry == "torch.optim.lr_scheduler.StepLR" and error.line is not None


def test_a_removed_argument_is_no_placeholder(tmp_path: Path) -> None:
    text = REMOVED_ENTRY.format(removed="[verbose]").replace("{gamma}", "{verbose}")
    assert "'verbose' is not an argument of the signature" in str(load_error(tmp_path, text))


# torch 2.0's schedulers with `verbose` (all of torch.optim.lr_scheduler but ChainedScheduler;
# SWALR never had it)
VERBOSE_SCHEDULERS = {
    f"torch.optim.lr_scheduler.{name}"
    for name in [
        "StepLR",
        "MultiStepLR",
        "ConstantLR",
        "LinearLR",
        "ExponentialLR",
        "SequentialLR",
        "PolynomialLR",
        "CosineAnnealingLR",
        "ReduceLROnPlateau",
        "CyclicLR",
        "OneCycleLR",
        "CosineAnnealingWarmRestarts",
        "LambdaLR",
        "MultiplicativeLR",
    ]
}


@pytest.mark.parametrize("target", ["optax", "nnx"])
def test_the_shipped_schedulers_that_had_verbose_list_it_as_removed(target: str) -> None:
    from ml_switcheroo.targets.catalogue import DEFAULT_TARGET, NNX

    apis = load_semantic_map(target=NNX if target == "nnx" else DEFAULT_TARGET).apis
    removed = {n for n, e in apis.items() if n == e.name and e.signature.removed}
    assert removed == VERBOSE_SCHEDULERS
    assert all(apis[n].signature.removed == ("verbose",) for n in removed)


def test_the_shipped_schedulers_list_their_function_arguments() -> None:
    apis = load_semantic_map().apis
    assert apis["torch.optim.lr_scheduler.LambdaLR"].functions == {"lr_lambda"}
    assert apis["torch.optim.lr_scheduler.CyclicLR"].functions == {"scale_fn"}


def test_an_api_alias_names_the_same_entry() -> None:
    apis = load_semantic_map().apis
    canonical = apis["transformers.get_linear_schedule_with_warmup"]
    assert apis["transformers.optimization.get_linear_schedule_with_warmup"] is canonical
    assert canonical.name == "transformers.get_linear_schedule_with_warmup"


def test_an_alias_that_is_another_entry_is_refused(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          mylib.A:
            hook: optimizer_constructor
            aliases: [mylib.B]
            signature: "params, lr=0.1"
            chain: [{emit: "optax.sgd({lr})"}]
          mylib.B:
            hook: optimizer_constructor
            signature: "params, lr=0.1"
            chain: [{emit: "optax.sgd({lr})"}]
        """,
    )
    assert "alias 'mylib.B' is already the name or an alias of another entry" in str(error)


def test_aliases_must_be_a_list_of_dotted_names(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          mylib.A:
            hook: optimizer_constructor
            aliases: mylib.B
            signature: "params, lr=0.1"
            chain: [{emit: "optax.sgd({lr})"}]
        """,
    )
    assert "'aliases' must be a list" in str(error)


def test_overriding_an_entry_replaces_its_aliases(tmp_path: Path) -> None:
    path = write_map(
        tmp_path,
        """
        apis:
          transformers.get_constant_schedule:
            hook: lr_scheduler
            returns: torch.optim.lr_scheduler.LRScheduler
            signature: "optimizer, last_epoch=-1"
            reason: "overridden"
            chain: []
        """,
    )
    apis = load_semantic_map([path]).apis
    assert apis["transformers.get_constant_schedule"].reason == "overridden"
    assert "transformers.optimization.get_constant_schedule" not in apis


def test_a_dispatch_case_must_name_an_entry_of_the_same_hook(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          mylib.get_scheduler:
            hook: lr_scheduler
            signature: "name, optimizer"
            dispatch:
              argument: name
              forward: optimizer
              cases:
                linear: {api: mylib.nowhere}
            chain: []
        """,
    )
    assert "dispatch case 'mylib.nowhere' is not an entry of the map" in str(error)


def test_a_dispatch_argument_must_be_in_the_signature(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          mylib.get_scheduler:
            hook: lr_scheduler
            signature: "name, optimizer"
            dispatch:
              argument: kind
              forward: optimizer
              cases: {}
            chain: []
        """,
    )
    assert "'argument' must name an argument of the signature" in str(error)


def test_unknown_role_names_entry_and_line(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.optim.SGD:
            role: optimiser
            hook: optimizer_constructor
            signature: "params, lr=0.1"
            chain: [{emit: "optax.sgd({lr})"}]
        """,
    )
    assert error.entry == "torch.optim.SGD"
    assert error.line == 4
    assert "unknown role 'optimiser'" in str(error)


def test_training_step_entry_without_role_is_refused(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        """
        apis:
          torch.Tensor.backward:
            hook: training_step
            reason: "in place"
            suggest: "jax.grad"
        """,
    )
    assert "hook 'training_step' needs the field 'role'" in str(error)


def test_entry_without_role_takes_its_hooks_default_role(tmp_path: Path) -> None:
    path = write_map(
        tmp_path,
        """
        apis:
          mylib.optim.SGD:
            hook: optimizer_constructor
            signature: "params, lr=0.1"
            chain: [{emit: "optax.sgd({lr})"}]
        """,
    )
    assert load_semantic_map([path]).apis["mylib.optim.SGD"].role == "constructor"


def test_stated_role_overrides_the_hooks_default(tmp_path: Path) -> None:
    path = write_map(
        tmp_path,
        """
        apis:
          torch.optim.Optimizer.step:
            role: scaler_step
            hook: optimizer_step
            signature: "closure=None"
            escapes: [{unless: {closure: null}, reason: "a closure"}]
            reason: "in place"
            suggest: "optax"
        """,
    )
    assert load_semantic_map([path]).apis["torch.optim.Optimizer.step"].role == "scaler_step"


def test_shipped_map_states_every_role() -> None:
    raw = yaml.safe_load(BUILTIN_MAP.read_text(encoding="utf-8"))
    missing = [name for name, body in raw["apis"].items() if "role" not in body]
    assert missing == []


def test_unknown_scaler_method_key_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, "scaler_methods: {unscale: unscale_, rescale: x}\n")
    assert "unknown field 'rescale' in 'scaler_methods'" in str(error)


def test_scaler_methods_come_from_the_map() -> None:
    scaler = load_semantic_map().scaler_methods
    assert (scaler.scale, scaler.unscale, scaler.update) == ("scale", "unscale_", "update")


def test_a_user_map_replaces_only_the_scaler_methods_it_names(tmp_path: Path) -> None:
    path = write_map(tmp_path, "scaler_methods: {unscale: unscale_grads}\n")
    scaler = load_semantic_map([path]).scaler_methods
    assert (scaler.scale, scaler.unscale, scaler.update) == ("scale", "unscale_grads", "update")


CLIP_WITH_VALUE = """
apis:
  mylib.clip_norm:
    role: clip
    hook: clip_gradients
    signature: "parameters, max_norm"
    ignore: [parameters]
    chain:
      - {{slot: core, emit: "optax.clip_by_global_norm({{max_norm}})"}}
    value:
      - {{emit: "{value}"}}
"""


def test_a_value_link_may_use_the_gradients(tmp_path: Path) -> None:
    path = write_map(tmp_path, CLIP_WITH_VALUE.format(value="optax.tree.norm({grads})"))
    entry = load_semantic_map([path]).apis["mylib.clip_norm"]
    assert [link.emit.source for link in entry.value] == ["optax.tree.norm({grads})"]


def test_the_gradients_are_no_placeholder_of_a_chain_link(tmp_path: Path) -> None:
    text = CLIP_WITH_VALUE.format(value="optax.tree.norm({grads})").replace(
        "optax.clip_by_global_norm({max_norm})", "optax.clip_by_global_norm({grads})"
    )
    error = load_error(tmp_path, text)
    assert "grads" in str(error)


def test_a_value_link_with_an_unknown_placeholder_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, CLIP_WITH_VALUE.format(value="optax.tree.norm({gradients})"))
    assert "gradients" in str(error)


def test_recording_methods_map_a_class_to_method_names(tmp_path: Path) -> None:
    error = load_error(tmp_path, "recording_methods:\n  tqdm.tqdm: [set_description, 3]\n")
    assert "'recording_methods' 'tqdm.tqdm'" in str(error)
    assert error.line == 2


def test_the_nnx_layer_lists_tqdm_bar_methods() -> None:
    from ml_switcheroo.targets.nnx.target import NNX

    methods = load_semantic_map([], NNX).recording_methods
    assert "set_description" in methods["tqdm.tqdm"]
    assert "close" not in methods["tqdm.tqdm"]
