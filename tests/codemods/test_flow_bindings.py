"""optimizer.TorchToOptax: calls on a name are rewritten only where every binding of it is the
translated optimizer (issue 10, deliverable 3), and a name imported from torch and from
somewhere else is never converted (deliverable 6)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import SwitcherooTest, run_codemod

ZERO_GRAD = "torch.optim.Optimizer.zero_grad"
STEP = "torch.optim.Optimizer.step"


class FlowTest(SwitcherooTest):
    def escape_reasons(self, code: str, api: str) -> list[str]:
        """Reasons of the escape hatches the codemod reports for ``api`` in ``code``."""
        return [r.reason for r in self.records(code) if r.kind == "escaped" and r.api == api]

    def assertKept(self, code: str, call: str) -> None:
        """``call`` is still in the output (inside its escape hatch)."""
        output = run_codemod(self.make_fixture_data(code))
        self.assertIn(call, output)
        self.assertEqual(run_codemod(output), output)  # a second run changes nothing


class RebindingTest(FlowTest):
    REBOUND_TO_LBFGS = """
        import torch
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        opt.zero_grad()
        opt = torch.optim.LBFGS(model.parameters())
        opt.zero_grad()
        """

    def test_rebinding_to_lbfgs_keeps_every_zero_grad_on_the_name(self) -> None:
        output = run_codemod(self.make_fixture_data(self.REBOUND_TO_LBFGS))
        self.assertEqual(output.count("\nopt.zero_grad()\n"), 2)
        self.assertIn("opt = optax.sgd(learning_rate=0.1)", output)

    def test_rebinding_to_lbfgs_reason_names_the_lbfgs_line(self) -> None:
        reasons = self.escape_reasons(self.REBOUND_TO_LBFGS, ZERO_GRAD)
        self.assertEqual(len(reasons), 2)
        for reason in reasons:
            self.assertIn(
                "`opt` is also bound at line 4 to `torch.optim.LBFGS(...)`, which stays a torch "
                "optimizer",
                reason,
            )
            self.assertIn("the optimizer bound at line 2 is translated to optax", reason)

    def test_rebinding_later_in_a_loop_escapes_the_earlier_call(self) -> None:
        code = """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            for epoch in range(3):
                opt.zero_grad()
                if epoch == 1:
                    opt = torch.optim.LBFGS(model.parameters())
            """
        (reason,) = self.escape_reasons(code, ZERO_GRAD)
        self.assertIn("at line 6 to `torch.optim.LBFGS(...)`", reason)

    def test_rebinding_after_del_to_a_user_object_escapes(self) -> None:
        code = """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            opt.zero_grad()
            del opt
            opt = make_optimizer()
            opt.zero_grad()
            """
        reasons = self.escape_reasons(code, ZERO_GRAD)
        self.assertEqual(len(reasons), 2)
        self.assertIn(
            "at line 5 to `make_optimizer(...)`, which is not a translated optimizer", reasons[0]
        )

    def test_rebinding_to_another_translated_sgd_converts(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            opt.zero_grad()
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
            opt.zero_grad()
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            opt = optax.sgd(learning_rate=0.01)
            """,
        )

    def test_none_first_then_sgd_converts(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = None
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            opt.zero_grad()
            """,
            """
            import optax
            opt = None
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_del_without_rebinding_converts(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            opt.zero_grad()
            del opt
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            del opt
            """,
        )

    def test_same_name_in_two_functions_is_two_variables(self) -> None:
        code = """
            import torch
            def a(model):
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
                opt.zero_grad()
            def b(model):
                opt = torch.optim.LBFGS(model.parameters())
                opt.zero_grad()
            """
        (reason,) = self.escape_reasons(code, ZERO_GRAD)
        self.assertIn("`opt` is still a torch optimizer", reason)  # b's; a's is removed
        self.assertNotIn("    opt.zero_grad()\ndef b", run_codemod(self.make_fixture_data(code)))

    def test_rebinding_through_global_in_another_function_escapes(self) -> None:
        code = """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            def reset():
                global opt
                opt = make_optimizer()
            def step():
                opt.zero_grad()
            """
        (reason,) = self.escape_reasons(code, ZERO_GRAD)
        self.assertIn("`opt` is also bound at line 5 to `make_optimizer(...)`", reason)

    def test_rebinding_by_tuple_unpacking_escapes(self) -> None:
        code = """
            import torch
            def fit(model, accelerator):
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
                model, opt = accelerator.prepare(model, opt)
                opt.zero_grad()
            """
        (reason,) = self.escape_reasons(code, ZERO_GRAD)
        self.assertIn("`opt` is also bound at line 4 by a statement that is not", reason)


class BranchTest(FlowTest):
    def test_branches_sgd_and_lbfgs_escape_the_call_after_the_merge(self) -> None:
        code = """
            import torch
            if cfg.x:
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
            else:
                opt = torch.optim.LBFGS(model.parameters())
            opt.zero_grad()
            """
        (reason,) = self.escape_reasons(code, ZERO_GRAD)
        self.assertIn("`opt` is also bound at line 5 to `torch.optim.LBFGS(...)`", reason)
        self.assertKept(code, "\nopt.zero_grad()\n")

    def test_branch_bound_to_a_user_object_escapes_the_call(self) -> None:
        self.assertConverts(
            """
            import torch
            if fast:
                opt = torch.optim.SGD(p, lr=0.1)
            else:
                opt = Custom()
            opt.zero_grad()
            """,
            """
            import optax
            if fast:
                opt = optax.sgd(learning_rate=0.1)
            else:
                opt = Custom()
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.zero_grad
            # ml_switcheroo: reason: `opt` is also bound at line 5 to `Custom(...)`, which is not a translated optimizer; the optimizer bound at line 3 is translated to optax, so this call must stay until every binding of `opt` is translated
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   give the optimizers different names, or port `opt` by hand
            opt.zero_grad()
            # ml_switcheroo: ESCAPE-END
            """,
        )

    def test_branches_both_translated_sgd_convert(self) -> None:
        self.assertConverts(
            """
            import torch
            if cfg.x:
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
            else:
                opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            opt.zero_grad()
            """,
            """
            import optax
            if cfg.x:
                opt = optax.sgd(learning_rate=0.1)
            else:
                opt = optax.sgd(learning_rate=0.01, momentum=0.9)
            """,
        )

    def test_branch_with_an_untranslated_adam_escapes_the_call(self) -> None:
        code = """
            import torch
            if cfg.x:
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
            else:
                opt = torch.optim.Adam(model.parameters(), amsgrad=True)
            opt.zero_grad()
            """
        (reason,) = self.escape_reasons(code, ZERO_GRAD)
        self.assertIn("at line 5 to `torch.optim.Adam(...)`, which stays a torch optimizer", reason)

    def test_branch_with_adam_amsgrad_converts_under_exact(self) -> None:
        code = """
            import torch
            if cfg.x:
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
            else:
                opt = torch.optim.Adam(model.parameters(), amsgrad=True)
            opt.zero_grad()
            """
        output = run_codemod(self.make_fixture_data(code), exact=True)
        self.assertNotIn("zero_grad", output)
        self.assertNotIn("ESCAPE", output)

    def test_training_step_reason_names_the_other_binding(self) -> None:
        code = """
            import torch
            if cfg.x:
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
            else:
                opt = torch.optim.LBFGS(model.parameters())
            for x in data:
                loss = model(x)
                loss.backward()
                opt.step()
            """
        (reason,) = self.escape_reasons(code, STEP)
        self.assertTrue(reason.startswith("`opt` is also bound at line 5"), reason)


class SelfAttributeTest(FlowTest):
    def test_attribute_rebound_to_lbfgs_in_another_method_escapes(self) -> None:
        code = """
            import torch
            class Trainer:
                def __init__(self, model):
                    self.opt = torch.optim.SGD(model.parameters(), lr=0.1)
                def reset(self, model):
                    self.opt = torch.optim.LBFGS(model.parameters())
                def step(self):
                    self.opt.zero_grad()
            """
        (reason,) = self.escape_reasons(code, ZERO_GRAD)
        self.assertIn("`self.opt` is also bound at line 6 to `torch.optim.LBFGS(...)`", reason)
        self.assertKept(code, "        self.opt.zero_grad()\n")

    def test_attribute_rebound_to_a_factory_in_another_method_escapes(self) -> None:
        code = """
            import torch
            class Trainer:
                def __init__(self, model):
                    self.opt = torch.optim.SGD(model.parameters(), lr=0.1)
                def reset(self):
                    self.opt = build()
                def step(self):
                    self.opt.zero_grad()
            """
        (reason,) = self.escape_reasons(code, ZERO_GRAD)
        self.assertIn("at line 6 to `build(...)`, which is not a translated optimizer", reason)

    def test_attribute_set_to_none_first_then_constructor_converts(self) -> None:
        self.assertConverts(
            """
            import torch
            class Trainer:
                def __init__(self):
                    self.opt = None
                def build(self, model):
                    self.opt = torch.optim.SGD(model.parameters(), lr=0.1)
                def step(self):
                    self.opt.zero_grad()
            """,
            """
            import optax
            class Trainer:
                def __init__(self):
                    self.opt = None
                def build(self, model):
                    self.opt = optax.sgd(learning_rate=0.1)
                def step(self):
                    pass
            """,
        )


class ParameterTest(FlowTest):
    CALLERS = """
        import torch
        def train(model, optimizer):
            optimizer.zero_grad()
        def main(model):
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            train(model, opt)
            {second}
        """

    def test_parameter_passed_sgd_and_lbfgs_by_callers_escapes(self) -> None:
        code = self.CALLERS.format(
            second="other = torch.optim.LBFGS(model.parameters()); train(model, other)"
        )
        (reason,) = self.escape_reasons(code, ZERO_GRAD)
        self.assertIn(
            "`optimizer` is a parameter, and a call passes it a value bound at line 7 to "
            "`torch.optim.LBFGS(...)`",
            reason,
        )

    def test_parameter_defaulting_to_a_new_sgd_escapes_naming_the_parameter(self) -> None:
        code = """
            import torch
            def fit(model, optimizer=None):
                if optimizer is None:
                    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
                optimizer.zero_grad()
            """
        (reason,) = self.escape_reasons(code, ZERO_GRAD)
        self.assertIn("`optimizer` is also bound at line 2 as a parameter", reason)

    def test_parameter_passed_only_lbfgs_keeps_zero_grad(self) -> None:
        code = """
            import torch
            def train(model, optimizer):
                optimizer.zero_grad()
            def main(model):
                opt = torch.optim.LBFGS(model.parameters())
                train(model, opt)
            """
        (reason,) = self.escape_reasons(code, ZERO_GRAD)
        self.assertIn("`optimizer` is still a torch optimizer", reason)

    def test_parameter_passed_only_translated_optimizers_converts(self) -> None:
        output = run_codemod(self.make_fixture_data(self.CALLERS.format(second="")))
        self.assertNotIn("zero_grad", output)
        self.assertNotIn("ESCAPE", output)


class AmbiguousImportTest(FlowTest):
    def test_apex_fallback_import_escapes_the_constructor(self) -> None:
        self.assertConverts(
            """
            try:
                from apex.optimizers import FusedAdam as Adam
            except ImportError:
                from torch.optim import Adam
            opt = Adam(model.parameters(), lr=1e-3)
            opt.zero_grad()
            """,
            """
            try:
                from apex.optimizers import FusedAdam as Adam
            except ImportError:
                from torch.optim import Adam
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Adam
            # ml_switcheroo: reason: `Adam` is also imported from apex.optimizers at line 2, so this may not be `torch.optim.Adam`; only torch's would be translated
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   import `Adam` from one place only (or rename the other import), then run the codemod again
            opt = Adam(model.parameters(), lr=1e-3)
            # ml_switcheroo: ESCAPE-END
            opt.zero_grad()
            """,
        )

    def test_if_import_escapes_the_constructor(self) -> None:
        code = """
            if USE_APEX:
                from apex.optimizers import FusedAdam as Adam
            else:
                from torch.optim import Adam
            opt = Adam(model.parameters(), lr=1e-3)
            """
        (reason,) = self.escape_reasons(code, "torch.optim.Adam")
        self.assertIn("`Adam` is also imported from apex.optimizers at line 2", reason)

    def test_transformers_fallback_escapes_the_constructor(self) -> None:
        code = """
            try:
                from transformers import AdamW
            except ImportError:
                from torch.optim import AdamW
            opt = AdamW(model.parameters(), lr=1e-3)
            """
        (reason,) = self.escape_reasons(code, "torch.optim.AdamW")
        self.assertIn("`AdamW` is also imported from transformers at line 2", reason)

    def test_module_alias_bound_by_a_second_import_escapes(self) -> None:
        code = """
            import torch.optim as optim
            if USE_MINE:
                import my_lib.optim as optim
            opt = optim.SGD(model.parameters(), lr=0.1)
            """
        (reason,) = self.escape_reasons(code, "torch.optim.SGD")
        self.assertIn("`optim` is also imported from my_lib.optim at line 3", reason)
        self.assertIn("import torch.optim as optim", run_codemod(self.make_fixture_data(code)))

    def test_scheduler_imported_from_two_places_escapes(self) -> None:
        code = """
            import torch
            try:
                from my_lib.sched import StepLR
            except ImportError:
                from torch.optim.lr_scheduler import StepLR
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            sched = StepLR(opt, step_size=10)
            """
        reasons = self.escape_reasons(code, "torch.optim.lr_scheduler.StepLR")
        self.assertTrue(reasons)
        self.assertIn("`StepLR` is also imported from my_lib.sched at line 3", reasons[0])

    def test_calls_on_an_optimizer_of_an_ambiguous_import_are_left_alone(self) -> None:
        code = """
            try:
                from apex.optimizers import FusedAdam as Adam
            except ImportError:
                from torch.optim import Adam
            opt = Adam(model.parameters(), lr=1e-3)
            opt.zero_grad()
            """
        self.assertEqual(self.escape_reasons(code, ZERO_GRAD), [])
        self.assertKept(code, "\nopt.zero_grad()\n")

    def test_torch_import_with_a_reraising_fallback_converts(self) -> None:
        self.assertConverts(
            """
            try:
                from torch.optim import Adam
            except ImportError:
                raise
            opt = Adam(model.parameters(), lr=1e-3)
            """,
            """
            import optax
            try:
                from torch.optim import Adam
            except ImportError:
                raise
            opt = optax.adam(learning_rate=1e-3)
            """,
        )

    def test_two_imports_of_the_same_torch_module_convert(self) -> None:
        self.assertConverts(
            """
            import torch
            import torch.optim
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_fallback_assignment_of_none_is_not_an_import_and_is_left_alone(self) -> None:
        self.assertUnchanged(
            """
            try:
                from torch.optim import Adam
            except ImportError:
                Adam = None
            opt = Adam(model.parameters(), lr=1e-3)
            """
        )


BINDINGS = {
    "sgd": "opt = torch.optim.SGD(model.parameters(), lr=0.1)",
    "sgd_momentum": "opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)",
    "lbfgs": "opt = torch.optim.LBFGS(model.parameters())",
    "amsgrad": "opt = torch.optim.Adam(model.parameters(), amsgrad=True)",
    "none": "opt = None",
    "user": "opt = make_optimizer()",
}
TRANSLATED_KINDS = {"sgd", "sgd_momentum"}
PLACES = ("top", "if", "else", "loop")
EXAMPLES = int(os.environ.get("ML_SWITCHEROO_PROPERTY_EXAMPLES", "0")) or 40


def _placed(statement: str, place: str) -> list[str]:
    if place == "if":
        return ["if cfg.flag:", f"    {statement}"]
    if place == "else":
        return ["if cfg.flag:", "    pass", "else:", f"    {statement}"]
    if place == "loop":
        return ["for _ in range(2):", f"    {statement}"]
    return [statement]


@st.composite
def rebound_modules(draw: st.DrawFn) -> tuple[str, list[str]]:
    """``import torch``, a first binding of ``opt``, then bindings and zero_grad calls."""
    kinds = draw(st.lists(st.sampled_from(sorted(BINDINGS)), min_size=1, max_size=4))
    lines = ["import torch", *_placed(BINDINGS[kinds[0]], "top")]
    for kind in kinds[1:]:
        if draw(st.booleans()):
            lines += _placed("opt.zero_grad()", draw(st.sampled_from(PLACES)))
        lines += _placed(BINDINGS[kind], draw(st.sampled_from(PLACES)))
    lines += _placed("opt.zero_grad()", draw(st.sampled_from(PLACES)))
    return "\n".join(lines) + "\n", kinds


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rebound_modules())
def test_zero_grad_goes_only_when_every_binding_is_translated(case: tuple[str, list[str]]) -> None:
    code, kinds = case
    output = run_codemod(code)
    assert run_codemod(output) == output
    calls = code.count("opt.zero_grad()")
    real = {kind for kind in kinds if kind != "none"}
    if real and real <= TRANSLATED_KINDS:
        assert "opt.zero_grad()" not in output, output
    else:
        assert output.count("opt.zero_grad()") == calls, output
