"""The lower layers used without a command: template (spec), resolver and plan (analysis),
the target and the catalogue (targets)."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider, ScopeProvider

from ml_switcheroo.analysis.plan import Attachments, Plan, Planner, SchedulePlan
from ml_switcheroo.analysis.resolver import BindingProvider, Resolver
from ml_switcheroo.analysis.site_key import SiteKey
from ml_switcheroo.plugins import optimizer_step as seed_hooks
from ml_switcheroo.spec.findings import Render, stated
from ml_switcheroo.spec.semantic_map import ApiEntry
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.spec.template import Template
from ml_switcheroo.targets.catalogue import DEFAULT_TARGET, load_semantic_map
from ml_switcheroo.targets.optax.target import OPTAX


def first_call(module: cst.Module) -> cst.Call:
    found: list[cst.Call] = []

    class Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            found.append(node)

    module.visit(Calls())
    return found[0]


def test_a_template_renders_its_placeholders_with_the_given_expressions() -> None:
    template = Template.compile("optax.sgd(learning_rate={lr})")
    rendered = template.render(lambda placeholder: cst.parse_expression("0.5 * base"))
    assert cst.Module([]).code_for_node(rendered) == "optax.sgd(learning_rate=0.5 * base)"


def test_a_template_names_the_imports_it_needs() -> None:
    assert Template.compile("optax.scale(-{lr})").free_names == frozenset({"optax"})


def test_the_resolver_qualifies_a_call_through_an_aliased_import() -> None:
    wrapper = MetadataWrapper(cst.parse_module("import torch.optim as o\nx = o.AdamW(ps)\n"))
    resolver = Resolver(
        load_semantic_map(), wrapper.resolve(ScopeProvider), wrapper.resolve(BindingProvider)
    )
    assert resolver.imported_names(first_call(wrapper.module).func) == ["torch.optim.AdamW"]


def test_the_resolver_does_not_qualify_a_name_a_local_assignment_shadows() -> None:
    source = "import torch.optim as o\no = make()\nx = o.AdamW(ps)\n"
    wrapper = MetadataWrapper(cst.parse_module(source))
    resolver = Resolver(
        load_semantic_map(), wrapper.resolve(ScopeProvider), wrapper.resolve(BindingProvider)
    )
    calls: list[cst.Call] = []

    class Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            calls.append(node)

    wrapper.module.visit(Calls())
    assert resolver.imported_names(calls[-1].func) == []


def test_an_empty_plan_holds_nothing_for_a_call() -> None:
    assert Plan().item_for(cst.parse_expression("f()")) is None  # type: ignore[arg-type]


def test_a_constructor_with_no_schedule_or_clip_gets_empty_attachments() -> None:
    wrapper = MetadataWrapper(cst.parse_module("opt = torch.optim.SGD(ps, lr=0.1)\n"))
    positions = wrapper.resolve(PositionProvider)
    call = first_call(wrapper.module)
    key = SiteKey.of("train.py", call, positions)
    plan = Plan(module="train.py", positions=lambda: positions, clips={key: []})  # type: ignore[dict-item]
    assert plan.item_for(call) == Attachments(None, [])


SCHEDULED = """\
import torch
opt = torch.optim.SGD(ps, lr=0.1)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)
for batch in data:
    opt.step(); sched.step()
"""


def plan_of(
    source: str, filename: str = "train.py", render: Render = stated
) -> tuple[Plan, list[cst.Call]]:
    """The plan of ``source`` built without a command (its escapes worded by ``render``), and
    its calls in source order."""
    semantic_map = load_semantic_map()
    wrapper = MetadataWrapper(cst.parse_module(source))
    resolver = Resolver(
        semantic_map, wrapper.resolve(ScopeProvider), wrapper.resolve(BindingProvider)
    )

    def wire(
        call: cst.Call, enclosing: cst.ClassDef | None
    ) -> tuple[ApiEntry, str | None, bool] | None:
        for name in resolver.imported_names(call.func):
            entry = semantic_map.apis.get(name)
            if entry is not None and entry.receiver_type is None:
                return entry, None, False
        func = call.func
        if isinstance(func, cst.Attribute):
            typed = resolver.receiver_type(func.value, enclosing)
            entry = semantic_map.method(typed.name, func.attr.value) if typed else None
            if entry is not None and not entry.attribute:
                return entry, code_of(func.value).strip(), False
        return None

    planner = Planner(
        wrapper.module,
        wire=wire,
        resolver=resolver,
        backward_methods=semantic_map.backward_methods,
        steps_per_epoch=None,
        active_hooks=None,
        positions=lambda: wrapper.resolve(PositionProvider),
        filename=filename,
        render=render,
    )
    calls: list[cst.Call] = []

    class Calls(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            calls.append(node)

    wrapper.module.visit(Calls())
    return planner.build(), calls


def test_a_site_key_is_equal_across_two_parses_of_the_same_source() -> None:
    (first, first_calls), (second, second_calls) = plan_of(SCHEDULED), plan_of(SCHEDULED)
    assert first_calls[-1] is not second_calls[-1]
    assert first.key(first_calls[-1]) == second.key(second_calls[-1])


def test_a_fact_found_in_one_parse_is_reachable_by_key_in_another() -> None:
    (first, first_calls), (second, _) = plan_of(SCHEDULED), plan_of(SCHEDULED)
    key = first.key(first_calls[-1])  # sched.step()
    assert key is not None
    assert isinstance(second.item_at(key), SchedulePlan)


def test_two_calls_on_one_line_have_different_keys() -> None:
    plan, calls = plan_of(SCHEDULED)
    opt_step, sched_step = calls[-2:]
    assert plan.key(opt_step) != plan.key(sched_step)
    assert plan.key(opt_step).line == plan.key(sched_step).line  # type: ignore[union-attr]


def test_a_call_nested_in_a_call_from_the_same_start_has_another_key() -> None:
    plan, calls = plan_of("import torch\nx = make(opt)(sched)\n")
    outer, inner = calls
    assert plan.key(outer) != plan.key(inner)


def test_the_key_names_the_file_the_position_and_the_node_kind() -> None:
    plan, calls = plan_of(SCHEDULED, filename="pkg/train.py")
    assert plan.key(calls[-1]) == SiteKey("pkg/train.py", 5, 16, 5, 28, "Call")


def test_item_for_a_node_is_item_at_its_key() -> None:
    plan, calls = plan_of(SCHEDULED)
    for call in calls:
        key = plan.key(call)
        assert key is not None
        assert plan.item_for(call) == plan.item_at(key)
    assert isinstance(plan.item_for(calls[-1]), SchedulePlan)


def test_a_key_from_another_file_finds_nothing() -> None:
    first, first_calls = plan_of(SCHEDULED, filename="a.py")
    second, _ = plan_of(SCHEDULED, filename="b.py")
    key = first.key(first_calls[-1])
    assert key is not None
    assert second.item_at(key) is None


def test_the_default_target_is_optax_and_renders_the_seed_hooks() -> None:
    assert DEFAULT_TARGET is OPTAX
    assert OPTAX.hook("optimizer_constructor") is seed_hooks.transform_optimizer_init
    assert OPTAX.hook("optimizer_step") is seed_hooks.transform_optimizer_step
    assert OPTAX.hook("optimizer_zero_grad") is seed_hooks.strip_zero_grad


def test_every_hook_the_shipped_map_names_has_a_renderer_in_the_target() -> None:
    named = {entry.hook for entry in load_semantic_map().apis.values()}
    assert named - set(OPTAX.hooks) == set()
