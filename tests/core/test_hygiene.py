"""model/hygiene.py without a command: a rendered template, the user's nodes, the taken names."""

from __future__ import annotations

import libcst as cst
import pytest

from ml_switcheroo.model.hygiene import UserExpression, hygienic, is_time_invariant
from ml_switcheroo.spec.errors import Untranslatable
from ml_switcheroo.spec.signature import code_of
from ml_switcheroo.spec.template import Template


def run(
    template: str,
    taken: tuple[str, ...] = (),
    shared: tuple[str, ...] = (),
    **arguments: str,
) -> str:
    """Render ``template`` with user nodes parsed from ``arguments`` (in that source order),
    then make it hygienic; the result as code."""
    users = {
        name: UserExpression(cst.parse_expression(source), name, order, name in shared)
        for order, (name, source) in enumerate(arguments.items())
    }
    rendered = Template.compile(template).render(lambda p: users[p.name].node)
    return code_of(hygienic(rendered, list(users.values()), frozenset(taken)))


def test_literal_inside_a_lambda_stays_in_place() -> None:
    assert run("lambda count: {lr} * count", lr="0.1") == "lambda count: 0.1 * count"


def test_name_inside_a_lambda_is_bound_outside_it() -> None:
    assert (
        run("lambda count: {lr} * count", lr="base_lr")
        == "(lambda lr: lambda count: lr * count)(base_lr)"
    )


def test_call_argument_outside_any_lambda_is_not_bound() -> None:
    assert (
        run("optax.sgd(learning_rate={lr})", lr="make_lr()") == "optax.sgd(learning_rate=make_lr())"
    )


def test_template_name_colliding_with_a_visible_name_is_renamed() -> None:
    assert (
        run("lambda count: {lr} * count", taken=("count",), lr="0.1")
        == "lambda count_1: 0.1 * count_1"
    )


def test_renamed_name_skips_names_already_taken() -> None:
    assert (
        run("lambda count: {lr} * count", taken=("count", "count_1"), lr="0.1")
        == "lambda count_2: 0.1 * count_2"
    )


def test_template_name_read_by_a_user_lambda_is_renamed() -> None:
    assert (
        run("lambda count: ({f})(count)", f="lambda e: e * count")
        == "lambda count_1: (lambda e: e * count)(count_1)"
    )


def test_binding_parameter_avoids_taken_names() -> None:
    assert (
        run("lambda count: {lr} * count", taken=("lr",), lr="base_lr")
        == "(lambda lr_1: lambda count: lr_1 * count)(base_lr)"
    )


def test_binding_parameter_avoids_template_names() -> None:
    assert (
        run("lambda count: {count} * count", count="steps")
        == "(lambda count_1: lambda count: count_1 * count)(steps)"
    )


def test_first_iterable_of_a_comprehension_is_not_deferred() -> None:
    assert (
        run("[{g} ** i for i in range({n})]", g="0.5", n="steps")
        == "[0.5 ** i for i in range(steps)]"
    )


def test_comprehension_element_is_deferred() -> None:
    assert (
        run("[{g} ** i for i in range({n})]", g="gamma", n="steps")
        == "(lambda g: [g ** i for i in range(steps)])(gamma)"
    )


def test_impure_expression_used_twice_is_bound() -> None:
    assert run("optax.f({lr} + {lr})", lr="draw()") == "(lambda lr: optax.f(lr + lr))(draw())"


def test_pure_expression_used_twice_is_not_bound() -> None:
    assert run("optax.f({lr} + {lr})", lr="args.lr") == "optax.f(args.lr + args.lr)"


def test_once_anything_is_bound_every_impure_expression_is_bound_in_source_order() -> None:
    assert (
        run("optax.chain(optax.f({wd}), optax.g(lambda count: {lr} * count))", wd="g()", lr="h")
        == "(lambda wd, lr: optax.chain(optax.f(wd), optax.g(lambda count: lr * count)))(g(), h)"
    )


def test_parenthesized_copy_of_a_user_expression_is_recognized() -> None:
    assert (
        run("lambda count: count / {T}", T="a + b") == "(lambda T: lambda count: count / T)(a + b)"
    )


def test_lambda_with_a_default_is_bound() -> None:
    assert (
        run("lambda count: ({f})(count)", f="lambda e, k=scale: e * k")
        == "(lambda f: lambda count: f(count))(lambda e, k=scale: e * k)"
    )


def test_attribute_and_keyword_named_like_a_renamed_name_are_kept() -> None:
    assert (
        run("lambda count: optax.f(count=count).count + {lr}", taken=("count",), lr="0.1")
        == "lambda count_1: optax.f(count=count_1).count + 0.1"
    )


def test_shared_impure_expression_cannot_be_evaluated_once() -> None:
    with pytest.raises(Untranslatable, match="evaluated by two statements"):
        run("optax.f({lr})", shared=("lr",), lr="draw()")


def test_shared_pure_expression_is_bound_where_deferred() -> None:
    assert (
        run("lambda count: {lr} * count", shared=("lr",), lr="args.lr")
        == "(lambda lr: lambda count: lr * count)(args.lr)"
    )


@pytest.mark.parametrize("source", ["0.1", "-1", "(0.9, 0.999)", "'cos'", "lambda e: e * k"])
def test_time_invariant(source: str) -> None:
    assert is_time_invariant(cst.parse_expression(source))


@pytest.mark.parametrize("source", ["lr", "args.lr", "random.random()", "lambda e=k: e", "[lr]"])
def test_not_time_invariant(source: str) -> None:
    assert not is_time_invariant(cst.parse_expression(source))


def test_shared_lambda_is_left_in_place() -> None:
    assert (
        run("optax.f({fn}, {fn})", shared=("fn",), fn="lambda x: 0.5 ** x")
        == "optax.f(lambda x: 0.5 ** x, lambda x: 0.5 ** x)"
    )
