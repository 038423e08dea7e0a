"""``analysis/constant_guard``: an ``if`` test read in a function is always true only for
literals and module-level number constants bound once, in a module that rebinds no global by
name, mentioned by no other file; a ``range`` count is positive for such constants and integer
arithmetic of them."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, ScopeProvider

from ml_switcheroo.analysis.constant_guard import always_true, positive_count, rebinds_globals

TRUE_CLIP = "grad_clip = 1.0\n\n\ndef f():\n    if grad_clip != 0.0:\n        pass\n"


def _found(source: str, kind: type[cst.CSTNode]) -> tuple[MetadataWrapper, dict, list]:
    """The parsed ``source``, its scopes and its nodes of ``kind`` in order."""
    wrapper = MetadataWrapper(cst.parse_module(source))
    scopes = dict(wrapper.resolve(ScopeProvider))
    found: list[cst.CSTNode] = []

    class Finder(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, kind):
                found.append(node)
            return True

    wrapper.module.visit(Finder())
    return wrapper, scopes, found


def _first_if(source: str, elsewhere: set[str] | None = None) -> bool:
    wrapper, scopes, found = _found(source, cst.If)
    mentioned = None if elsewhere is None else elsewhere.__contains__
    rebound = rebinds_globals(wrapper.module)
    return always_true(found[0].test, scopes, wrapper.module, mentioned, rebound)


def test_a_module_constant_compared_to_a_literal_is_always_true() -> None:
    assert _first_if(TRUE_CLIP)


NOT_TRUE = {
    "a_false_comparison": TRUE_CLIP.replace("grad_clip = 1.0", "grad_clip = 0.0"),
    "a_second_module_binding": TRUE_CLIP + "\ngrad_clip = 0.0\n",
    "a_global_statement_rebinding_it": TRUE_CLIP
    + "\n\ndef g():\n    global grad_clip\n    grad_clip = 0.0\n",
    "an_exec_in_the_module": TRUE_CLIP + "\nexec('grad_clip = 0.0')\n",
    "a_local_of_the_same_name": TRUE_CLIP.replace("def f():\n", "def f():\n    grad_clip = x\n"),
    "a_value_that_is_not_a_literal": TRUE_CLIP.replace("= 1.0", "= float(x)"),
    "two_comparisons": TRUE_CLIP.replace("grad_clip != 0.0", "0.0 < grad_clip < 2.0"),
}


@pytest.mark.parametrize("name", sorted(NOT_TRUE))
def test_a_test_that_may_be_false_is_not_always_true(name: str) -> None:
    assert not _first_if(NOT_TRUE[name])


def test_a_constant_another_file_mentions_is_not_always_true() -> None:
    assert not _first_if(TRUE_CLIP, elsewhere={"grad_clip"})


def test_a_positive_module_count_runs_a_range_loop() -> None:
    source = "k = 4\n\n\ndef f():\n    for i in range(k):\n        pass\n"
    wrapper = MetadataWrapper(cst.parse_module(source))
    scopes = dict(wrapper.resolve(ScopeProvider))
    loop = wrapper.module.body[1].body.body[0]  # type: ignore[attr-defined]
    argument = loop.iter.args[0].value
    assert positive_count(argument, scopes, wrapper.module, None, False)
    zero = cst.Integer("0")
    assert not positive_count(zero, scopes, wrapper.module, None, False)


def _count_of_last_loop(source: str) -> bool:
    wrapper, scopes, loops = _found(source, cst.For)
    argument = loops[-1].iter.args[0].value
    return positive_count(argument, scopes, wrapper.module, None, False)


COMPUTED = "total = 12\nB = 2\nT = 3\nk = total // (B * T)\n"
LOOP = "for i in range(k):\n    pass\n"


def test_integer_arithmetic_of_module_constants_is_a_count_in_the_module() -> None:
    assert _count_of_last_loop(COMPUTED + LOOP)


def test_integer_arithmetic_of_module_constants_is_a_count_in_a_function() -> None:
    assert _count_of_last_loop(COMPUTED + "def f():\n    " + LOOP.replace("\n    ", "\n        "))


NOT_COUNTS = {
    "floored_to_zero": COMPUTED.replace("12", "5") + LOOP,
    "a_float_operand": COMPUTED.replace("12", "12.0") + LOOP,
    "a_zero_divisor": COMPUTED.replace("T = 3", "T = 0") + LOOP,
    "a_factor_bound_again": COMPUTED + "B = 1\n" + LOOP,
    "rebound_later_in_an_enclosing_loop": COMPUTED
    + "for s in range(3):\n    for i in range(k):\n        pass\n    k = 0\n",
    "bound_after_the_loop": LOOP + COMPUTED,
    "an_operator_not_evaluated": COMPUTED.replace("//", "**") + LOOP,
    "rebound_by_a_walrus_in_a_comprehension": COMPUTED + "[k := 0 for _ in range(1)]\n" + LOOP,
    "a_local_bound_by_a_walrus_in_a_comprehension": COMPUTED
    + "def f():\n    [k := 0 for _ in range(1)]\n    for i in range(k):\n        pass\n",
}


@pytest.mark.parametrize("name", sorted(NOT_COUNTS))
def test_arithmetic_that_may_not_be_a_positive_count_is_none(name: str) -> None:
    assert not _count_of_last_loop(NOT_COUNTS[name])


def test_a_module_rebinding_globals_is_found_once_for_the_file() -> None:
    """``rebinds_globals`` reads the whole module (an ``exec`` anywhere, even in a class);
    a constant is then not known, whatever its binding."""
    module = cst.parse_module(TRUE_CLIP + "\n\nclass C:\n    def m(self):\n        exec(s)\n")
    assert rebinds_globals(module)
    assert not rebinds_globals(cst.parse_module(TRUE_CLIP))


@pytest.mark.parametrize(
    "reach",
    ["sys.modules[__name__].SCALE", "importlib.import_module(__name__).SCALE", "reload(m)"],
)
def test_a_module_reaching_a_module_object_by_name_may_rebind_its_globals(reach: str) -> None:
    module = cst.parse_module(f"SCALE = 1.0\n\n\ndef scale():\n    return {reach}\n")
    assert rebinds_globals(module)


def test_a_logger_named_after_the_module_rebinds_nothing() -> None:
    module = cst.parse_module("import logging\n\nlog = logging.getLogger(__name__)\n")
    assert not rebinds_globals(module)
