"""optimizer.TorchToOptax: functions and methods of the file that build the optimizer (and
its scheduler) and return it, called once (``analysis/builders.py``).

The caller's names hold the built values: the schedule folds where both are built, the
caller's ``zero_grad()`` and ``sched.step()`` go, a clip in the caller folds into the chain,
and the builder's ``return`` is no torch-only use. Each trap twin makes the value uncertain
(two calls, two returns, an override, a dynamic lookup, a decorator) and keeps today's escape.
"""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod, stock_clip

TUPLE_BUILDER = """\
import torch


def build(model, cfg):
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)
    return opt, sched


def fit(model, loader, cfg):
    opt, sched = build(model, cfg)
    for x in loader:
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        sched.step()
"""

NAME_BUILDER = """\
import torch


def build(model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return opt


def fit(model, loader):
    opt = build(model)
    for x in loader:
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
"""

METHOD_BUILDER = """\
import torch


class Trainer:
    def __init__(self, model):
        self.model = model
        self.opt = self.configure_optimizers()

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def train_step(self, x):
        self.opt.zero_grad()
        self.model(x).sum().backward()
        self.opt.step()
"""

RETURN_IS_TORCH_ONLY = "this code uses it as a torch optimizer: `return opt"


class TupleBuilderTest(SwitcherooTest):
    def test_the_schedule_folds_where_both_are_built(self) -> None:
        out = run_codemod(TUPLE_BUILDER)
        self.assertIn(
            "    sched = optax.exponential_decay(cfg.lr, transition_steps=10, decay_rate=0.1, "
            "staircase=True)\n    opt = optax.sgd(learning_rate=sched, momentum=0.9)\n"
            "    return opt, sched\n",
            out,
        )

    def test_the_callers_scheduler_step_and_zero_grad_go(self) -> None:
        out = run_codemod(TUPLE_BUILDER)
        self.assertNotIn("sched.step()", out)
        self.assertNotIn("opt.zero_grad()", out)

    def test_the_return_of_the_tuple_is_no_torch_only_use(self) -> None:
        self.assertNotIn(RETURN_IS_TORCH_ONLY, run_codemod(TUPLE_BUILDER))

    def test_a_tuple_unpacked_into_other_names_than_returned_is_followed(self) -> None:
        code = TUPLE_BUILDER.replace("opt, sched = build", "o, s = build")
        code = code.replace("opt.zero_grad()", "o.zero_grad()").replace("opt.step()", "o.step()")
        out = run_codemod(code.replace("sched.step()", "s.step()"))
        self.assertNotIn("s.step()\n", out)
        self.assertIn("opt = optax.sgd(learning_rate=sched, momentum=0.9)", out)

    def test_a_builder_called_twice_keeps_its_return_escaped(self) -> None:
        code = TUPLE_BUILDER + "\n\ndef again(model, cfg):\n    return build(model, cfg)\n"
        self.assertIn(RETURN_IS_TORCH_ONLY, run_codemod(code))

    def test_a_caller_that_hands_the_optimizer_on_escapes_there(self) -> None:
        code = TUPLE_BUILDER.replace(
            "    for x in loader:", "    opt = accelerator.prepare(opt)\n    for x in loader:"
        )
        out = run_codemod(code)
        self.assertIn("`accelerator.prepare(...)` gets `opt`", out)

    def test_a_tuple_of_other_arity_is_not_followed(self) -> None:
        code = TUPLE_BUILDER.replace(
            "opt, sched = build(model, cfg)", "opt, *rest = build(model, cfg)"
        )
        self.assertIn(RETURN_IS_TORCH_ONLY, run_codemod(code))


class NameBuilderTest(SwitcherooTest):
    def test_the_callers_zero_grad_goes_and_the_return_stays(self) -> None:
        out = run_codemod(NAME_BUILDER)
        self.assertIn(
            "    opt = optax.adamw(learning_rate=1e-3, weight_decay=0.01)\n    return opt\n", out
        )
        self.assertNotIn("opt.zero_grad()", out)
        self.assertNotIn(RETURN_IS_TORCH_ONLY, out)

    def test_two_returns_are_not_followed(self) -> None:
        code = NAME_BUILDER.replace(
            "    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)\n",
            "    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)\n"
            "    if model.sgd:\n        return torch.optim.SGD(model.parameters(), lr=0.1)\n",
        )
        out = run_codemod(code)
        self.assertIn("opt.zero_grad()", out)

    def test_an_optimizer_rebuilt_on_one_branch_is_not_followed(self) -> None:
        code = NAME_BUILDER.replace(
            "    return opt\n",
            "    if model.sgd:\n        opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "    return opt\n",
        )
        out = run_codemod(code)
        self.assertIn("opt.zero_grad()", out)

    def test_a_decorated_builder_is_not_followed(self) -> None:
        code = NAME_BUILDER.replace("def build(model):", "@functools.cache\ndef build(model):")
        self.assertIn(RETURN_IS_TORCH_ONLY, run_codemod("import functools\n" + code))

    def test_a_builder_used_as_a_value_is_not_followed(self) -> None:
        code = NAME_BUILDER + "\nFACTORIES = {'adamw': build}\n"
        self.assertIn(RETURN_IS_TORCH_ONLY, run_codemod(code))

    def test_a_builder_named_in_a_string_is_not_followed(self) -> None:
        code = NAME_BUILDER + "\ndef dynamic(model):\n    return globals()['build'](model)\n"
        self.assertIn(RETURN_IS_TORCH_ONLY, run_codemod(code))

    def test_the_result_passed_straight_on_is_not_followed(self) -> None:
        code = NAME_BUILDER.replace("    opt = build(model)\n", "    opt = wrap(build(model))\n")
        self.assertIn(RETURN_IS_TORCH_ONLY, run_codemod(code))


class MethodBuilderTest(SwitcherooTest):
    def test_a_method_returning_the_optimizer_types_self_opt(self) -> None:
        out = run_codemod(METHOD_BUILDER)
        self.assertIn("        return optax.adam(learning_rate=1e-3)\n", out)
        self.assertNotIn("self.opt.zero_grad()", out)

    def test_a_subclass_in_the_file_overriding_the_method_is_not_followed(self) -> None:
        code = METHOD_BUILDER + (
            "\n\nclass Other(Trainer):\n"
            "    def configure_optimizers(self):\n"
            "        return torch.optim.SGD(self.model.parameters(), lr=0.1)\n"
        )
        out = run_codemod(code)
        self.assertIn("self.opt.zero_grad()", out)

    def test_a_method_reached_through_getattr_is_not_followed(self) -> None:
        code = METHOD_BUILDER + (
            "\n    def again(self):\n        return getattr(self, 'configure_optimizers')()\n"
        )
        out = run_codemod(code)
        self.assertIn("self.opt.zero_grad()", out)

    def test_a_method_returning_a_tuple_is_followed_in_its_class(self) -> None:
        code = (
            "import torch\n"
            "class Trainer:\n"
            "    def configure_optimizers(self):\n"
            "        opt = torch.optim.SGD(self.model.parameters(), lr=0.1)\n"
            "        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)\n"
            "        return opt, sched\n"
            "    def fit(self, loader):\n"
            "        opt, sched = self.configure_optimizers()\n"
            "        for x in loader:\n"
            "            opt.zero_grad()\n"
            "            self.model(x).sum().backward()\n"
            "            opt.step()\n"
            "            sched.step()\n"
        )
        out = run_codemod(code)
        self.assertIn("opt = optax.sgd(learning_rate=sched)", out)
        self.assertNotIn("sched.step()", out)


class ClipInTheCallerTest(SwitcherooTest):
    CODE = """\
import torch


def build(net):
    return torch.optim.SGD(net.parameters(), lr=0.1)


def fit(model, loader):
    opt = build(model)
    for x in loader:
        model(x).sum().backward()
        torch.nn.utils.clip_grad_norm_({clipped}.parameters(), 1.0)
        opt.step()
"""

    def test_a_clip_of_the_model_passed_to_the_builder_folds(self) -> None:
        out = run_codemod(self.CODE.format(clipped="model"))
        self.assertIn(
            f"return optax.chain({stock_clip('1.0')}, optax.sgd(learning_rate=0.1))",
            out,
        )

    def test_a_clip_of_another_model_stays_out_of_the_chain(self) -> None:
        code = self.CODE.format(clipped="net").replace(
            "def fit(model, loader):", "def fit(model, net, loader):"
        )
        out = run_codemod(code)
        self.assertIn("return optax.sgd(learning_rate=0.1)", out)
        self.assertIn("a clip call above clips other parameters than `opt` trains", out)

    def test_a_clip_of_a_same_named_local_that_is_not_passed_stays_out(self) -> None:
        code = self.CODE.format(clipped="net").replace(
            "    opt = build(model)\n", "    opt = build(model)\n    net = model.teacher\n"
        )
        out = run_codemod(code)
        self.assertIn("return optax.sgd(learning_rate=0.1)", out)


class MixedTupleTest(SwitcherooTest):
    CODE = """\
import torch


def initialize(cfg):
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    {second}
    return model, opt, criterion


def fit(cfg, loader):
    model, opt, criterion = initialize(cfg)
    for x in loader:
        opt.zero_grad()
        criterion(model(x)).backward()
        opt.step()
"""

    def test_the_optimizer_among_other_values_is_followed(self) -> None:
        out = run_codemod(self.CODE.format(second="criterion = Loss()"))
        self.assertNotIn("opt.zero_grad()", out)
        self.assertNotIn("this code uses it as a torch optimizer", out)

    def test_an_optimizer_bound_twice_among_them_keeps_its_return_escaped(self) -> None:
        second = "criterion = Loss()\n    if cfg.adam:\n        opt = torch.optim.Adam(model.parameters())"
        out = run_codemod(self.CODE.format(second=second))
        self.assertIn("this code uses it as a torch optimizer: `return model, opt, criterion`", out)
        self.assertIn("opt.zero_grad()", out)


class BuilderUsedOnlyAsAValueTest(SwitcherooTest):
    def test_a_builder_only_passed_as_a_value_is_not_followed(self) -> None:
        code = NAME_BUILDER.replace("    opt = build(model)\n", "    opt = make(build, model)\n")
        self.assertIn(RETURN_IS_TORCH_ONLY, run_codemod(code))
