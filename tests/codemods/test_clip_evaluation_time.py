"""A clip folded into the optimizer's chain is evaluated once, where the optimizer is built;
torch evaluates it at every step. It folds only when both give the same value."""

from __future__ import annotations

import unittest

from tests.support import SwitcherooTest, run_codemod, stock_clip

# No backward pass in the loop: the statements are not one training-step region, so each
# construct gets its own record.
TRAIN = """
import torch
import math
def train(model, loader, clip, args):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    {before}
    for i, x in enumerate(loader):
        opt.zero_grad()
        model(x).sum().mean()
        torch.nn.utils.clip_grad_norm_(model.parameters(), {max_norm})
        opt.step()
    {after}
"""


def converted(max_norm: str, before: str = "", after: str = "") -> str:
    return run_codemod(TRAIN.format(max_norm=max_norm, before=before, after=after))


def optimizer_line(code: str) -> str:
    return next(line.strip() for line in code.splitlines() if line.strip().startswith("opt ="))


def folded(value: str) -> str:
    """The optimizer line with the clip folded: ``value`` is evaluated once, where the optimizer
    is built (the default of the template's ``max_norm``)."""
    return f"opt = optax.chain({stock_clip(value)}, optax.sgd(learning_rate=0.1))"


class FoldedTest(unittest.TestCase):
    def test_literal_folds(self) -> None:
        self.assertIn(f"{stock_clip('1.0')}", optimizer_line(converted("1.0")))

    def test_parameter_bound_before_the_construction_folds(self) -> None:
        self.assertEqual(folded("clip"), optimizer_line(converted("clip")))

    def test_attribute_of_a_parameter_never_assigned_in_the_file_folds(self) -> None:
        line = optimizer_line(converted("args.clip"))
        self.assertEqual(folded("args.clip"), line)

    def test_imported_constant_folds(self) -> None:
        self.assertEqual(folded("math.inf"), optimizer_line(converted("math.inf")))

    def test_pure_builtin_of_a_fixed_name_folds(self) -> None:
        line = optimizer_line(converted("float(clip)"))
        self.assertEqual(folded("float(clip)"), line)


class NotFoldedTest(SwitcherooTest):
    def assertNotFolded(self, max_norm: str, why: str, before: str = "", after: str = "") -> None:
        source = TRAIN.format(max_norm=max_norm, before=before, after=after)
        self.assertEqual(optimizer_line(run_codemod(source)), "opt = optax.sgd(learning_rate=0.1)")
        (record,) = [r for r in self.records(source) if r.api.endswith("clip_grad_norm_")]
        self.assertEqual(record.kind, "escaped")
        self.assertIn("is evaluated at every step in torch", record.reason)
        self.assertIn(why, record.reason)

    def test_name_assigned_after_the_construction(self) -> None:
        self.assertNotFolded(
            "max_norm", "`max_norm` is assigned after the optimizer", before="max_norm = clip * 2"
        )

    def test_loop_variable(self) -> None:
        self.assertNotFolded("clip / (i + 1)", "`i` is assigned after the optimizer")

    def test_name_rebound_after_the_loop(self) -> None:
        self.assertNotFolded("clip", "`clip` is assigned after", after="clip = 2.0")

    def test_attribute_assigned_in_the_file(self) -> None:
        self.assertNotFolded(
            "args.clip", "`args.clip` is assigned in this file", after="args.clip = 3"
        )

    def test_attribute_below_an_assigned_path(self) -> None:
        self.assertNotFolded("args.opt.clip", "is assigned in this file", after="args.opt = None")

    def test_call(self) -> None:
        self.assertNotFolded("get_clip()", "may give another value at each evaluation")

    def test_attribute_assigned_through_another_name(self) -> None:
        self.assertNotFolded(
            "args.clip",
            "`args.clip` may be assigned through another name (`c.clip`)",
            after="c = args\n    c.clip = 3",
        )

    def test_subscript_changed_by_a_method_call(self) -> None:
        self.assertNotFolded(
            "args.opts['clip']",
            "`args.opts.update(clip=3)` may change `args.opts['clip']`",
            after="args.opts.update(clip=3)",
        )

    def test_item_stored_by_a_computed_key(self) -> None:
        """``cfg[k] = 3`` may be ``cfg["clip"] = 3`` (the parent folded it)."""
        self.assertNotFolded(
            "args['clip']",
            "`args[k] = ...` (example.py:12) may write `args['clip']`",
            after="k = 'clip'\n    args[k] = 3",
        )

    def test_holder_stored_by_a_computed_key(self) -> None:
        """``cfg[k] = {...}`` may replace ``cfg.opt`` of a dict with attribute access."""
        self.assertNotFolded(
            "args.opt.clip",
            "`args[k] = ...` (example.py:12) may write `args.opt.clip`",
            after="k = 'opt'\n    args[k] = None",
        )

    def test_attribute_changed_by_setattr(self) -> None:
        self.assertNotFolded(
            "args.clip",
            "`setattr(args, 'clip', 3)` may change `args.clip`",
            after="setattr(args, 'clip', 3)",
        )

    def test_holder_handed_to_a_function_of_another_file(self) -> None:
        """``adjust`` (imported) may store ``args.clip``: no file of this one shows it."""
        self.assertNotFolded(
            "args.clip",
            "`adjust(args)` may change `args.clip`",
            before="from tools import adjust",
            after="adjust(args)",
        )

    def test_inner_holder_handed_to_a_function_as_a_keyword(self) -> None:
        self.assertNotFolded(
            "args.opts['clip']",
            "`reset(options=args.opts)` may change `args.opts['clip']`",
            after="reset(options=args.opts)",
        )

    def test_holder_bound_to_another_name_then_changed_by_a_method_call(self) -> None:
        self.assertNotFolded(
            "args.opts['clip']",
            "`args.opts['clip']` may change through another name (`o = args.opts`)",
            after="o = args.opts\n    o.update(clip=3)",
        )

    def test_holder_put_in_a_container(self) -> None:
        self.assertNotFolded(
            "args.opts['clip']",
            "`args.opts['clip']` may change through another name (`box = [args.opts]`)",
            after="box = [args.opts]\n    box[0].update(clip=3)",
        )

    def test_holder_as_a_parameters_default(self) -> None:
        self.assertNotFolded(
            "args.opts['clip']",
            "`args.opts['clip']` may change through another name (`c=args.opts`)",
            after="def tweak(c=args.opts):\n        c.update(clip=3)\n    tweak()",
        )


class CallsThatCannotChangeTheClipTest(unittest.TestCase):
    def test_a_call_reading_the_object_folds(self) -> None:
        line = optimizer_line(converted("args.clip", after="print(args)"))
        self.assertEqual(folded("args.clip"), line)

    def test_a_parameter_named_like_the_holder_folds(self) -> None:
        """``def show(args)`` binds a new name; its calls hand nothing to it."""
        line = optimizer_line(converted("args.clip", after="def show(args):\n        pass"))
        self.assertEqual(folded("args.clip"), line)

    def test_a_name_bound_to_a_value_read_through_the_holder_folds(self) -> None:
        """``c = args.clip`` binds the number, not the object holding it."""
        line = optimizer_line(converted("args.clip", after="c = args.clip\n    print(c)"))
        self.assertEqual(folded("args.clip"), line)


if __name__ == "__main__":
    unittest.main()
