"""The lower layers used without a command: template (spec), resolver and plan (analysis),
the target and the catalogue (targets)."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, ScopeProvider

from ml_switcheroo.analysis.plan import Attachments, Plan
from ml_switcheroo.analysis.resolver import BindingProvider, Resolver
from ml_switcheroo.plugins import optimizer_step as seed_hooks
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
    call = cst.parse_expression("torch.optim.SGD(ps, lr=0.1)")
    plan = Plan(schedules={}, clips={id(call): []})
    assert plan.item_for(call) == Attachments(None, [])  # type: ignore[arg-type]


def test_the_default_target_is_optax_and_renders_the_seed_hooks() -> None:
    assert DEFAULT_TARGET is OPTAX
    assert OPTAX.hook("optimizer_constructor") is seed_hooks.transform_optimizer_init
    assert OPTAX.hook("optimizer_step") is seed_hooks.transform_optimizer_step
    assert OPTAX.hook("optimizer_zero_grad") is seed_hooks.strip_zero_grad


def test_every_hook_the_shipped_map_names_has_a_renderer_in_the_target() -> None:
    named = {entry.hook for entry in load_semantic_map().apis.values()}
    assert named - set(OPTAX.hooks) == set()
