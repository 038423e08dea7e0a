"""optimizer.TorchToOptax: every torch-only use of a translated optimizer or scheduler is marked.

Once ``opt = torch.optim.Adam(...)`` becomes ``opt = optax.adam(...)``, code that still uses
``opt`` as a torch optimizer (checkpointing, type checks, pickling, unknown members, handing it
on) gets an escape hatch with the optax way; the translated consumers and any use of an
optimizer left as torch code stay as they were.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ml_switcheroo.app.migration_report import RunSummary, build, to_markdown
from ml_switcheroo.rewrite.report import Record
from tests.support import SwitcherooTest

HEAD = "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
SCHEDULED = (
    "import torch\n"
    "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)\n"
    "for x in data:\n"
    "    opt.step()\n"
    "    sched.step()\n"
)


class _Base(SwitcherooTest):
    def escapes(self, code: str, **kwargs: object) -> list[Record]:
        return [r for r in self.records(code, **kwargs) if r.kind == "escaped"]

    def only_escape(self, code: str) -> Record:
        """The one escape besides those of ``opt.step()`` (which always has one)."""
        (escape,) = [r for r in self.escapes(code) if r.api != "torch.optim.Optimizer.step"]
        return escape


class OptimizerMembersTest(_Base):
    """Members of a torch optimizer that an optax transformation lacks (map entries)."""

    def test_state_dict_escapes_with_the_opt_state_checkpoint(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            state = opt.state_dict()
            """,
            """
            import optax
            opt = optax.adam(learning_rate=1e-3)
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.state_dict
            # ml_switcheroo: reason: `opt` is now an optax GradientTransformation: it holds no state, so it has no state_dict(); the optimizer state is the pytree `opt_state` that `opt.init(params)` and each update return
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   checkpoint `opt_state` instead: save the pytree with e.g. flax.serialization.to_bytes(opt_state), orbax, or pickle of the state, and rebuild `opt` from code
            state = opt.state_dict()
            # ml_switcheroo: ESCAPE-END
            """,
        )

    def test_load_state_dict_escapes_with_restoring_opt_state(self) -> None:
        escape = self.only_escape(HEAD + 'opt.load_state_dict(ckpt["opt"])\n')
        self.assertEqual(escape.api, "torch.optim.Optimizer.load_state_dict")
        self.assertIn("no load_state_dict()", escape.reason)
        self.assertIn("flax.serialization.from_bytes(opt.init(params), data)", escape.suggestion)

    def test_torch_save_of_the_state_dict_escapes_the_whole_statement(self) -> None:
        escape = self.only_escape(HEAD + 'torch.save({"opt": opt.state_dict()}, path)\n')
        self.assertEqual(escape.api, "torch.optim.Optimizer.state_dict")
        self.assertEqual(escape.snippet, "opt.state_dict()")

    def test_add_param_group_escapes_with_multi_transform(self) -> None:
        escape = self.only_escape(HEAD + 'opt.add_param_group({"params": head.parameters()})\n')
        self.assertEqual(escape.api, "torch.optim.Optimizer.add_param_group")
        self.assertIn("optax.multi_transform", escape.suggestion)

    def test_defaults_read_escapes_with_inject_hyperparams(self) -> None:
        escape = self.only_escape(HEAD + 'lr = opt.defaults["lr"]\n')
        self.assertEqual(escape.api, "torch.optim.Optimizer.defaults")
        self.assertIn("optax.inject_hyperparams", escape.suggestion)

    def test_per_parameter_state_escapes_with_the_state_pytree(self) -> None:
        escape = self.only_escape(HEAD + "moments = opt.state[p]\n")
        self.assertEqual(escape.api, "torch.optim.Optimizer.state")
        self.assertIn("tree_get(opt_state, 'mu')", escape.suggestion)

    def test_member_of_a_self_attribute_escapes_in_another_method(self) -> None:
        escape = self.only_escape(
            """
            import torch
            class Trainer:
                def __init__(self, model):
                    self.opt = torch.optim.SGD(model.parameters(), lr=0.1)
                def checkpoint(self):
                    return {"opt": self.opt.state_dict()}
            """
        )
        self.assertIn("`self.opt` is now an optax GradientTransformation", escape.reason)
        self.assertIn("checkpoint `self.opt_state`", escape.suggestion)

    def test_member_used_in_a_same_file_function_the_optimizer_is_passed_to(self) -> None:
        escape = self.only_escape(
            """
            import torch
            def save(optimizer, path):
                torch.save(optimizer.state_dict(), path)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            save(opt, "ckpt.pt")
            """
        )
        self.assertEqual(escape.api, "torch.optim.Optimizer.state_dict")
        self.assertEqual(escape.snippet, "optimizer.state_dict()")


class OtherUsesTest(_Base):
    """Uses the map has no member entry for: the type's text, or the called function's."""

    def test_bound_method_without_a_call_is_marked(self) -> None:
        escape = self.only_escape(HEAD + "hook = opt.step\n")
        self.assertEqual(escape.api, "torch.optim.Adam")
        self.assertIn("`opt.step` is used without calling it", escape.reason)
        self.assertIn("`opt_state = opt.init(params)`", escape.suggestion)

    def test_isinstance_check_is_marked(self) -> None:
        escape = self.only_escape(
            HEAD + "from torch.optim import Adam\nif isinstance(opt, Adam):\n    pass\n"
        )
        self.assertIn("this type check answers differently", escape.reason)
        self.assertIn("optax.GradientTransformation", escape.suggestion)

    def test_type_call_is_marked(self) -> None:
        escape = self.only_escape(HEAD + "name = type(opt).__name__\n")
        self.assertIn("`type(...)` gets `opt`", escape.reason)

    def test_pickle_dump_is_marked_with_saving_opt_state(self) -> None:
        self.assertConverts(
            """
            import pickle
            import torch
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            pickle.dump(opt, f)
            """,
            """
            import pickle
            import optax
            opt = optax.adam(learning_rate=1e-3)
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.Adam
            # ml_switcheroo: reason: `opt` is now an optax object made of pure functions: it holds none of the optimizer's state, so saving or copying it keeps no state: `pickle.dump(...)` gets `opt`
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   save `opt_state` (a pytree) with e.g. flax.serialization, orbax or pickle of the state, and rebuild the transformation from code
            pickle.dump(opt, f)
            # ml_switcheroo: ESCAPE-END
            """,
        )

    def test_deepcopy_is_marked(self) -> None:
        escape = self.only_escape("import copy\n" + HEAD + "best = copy.deepcopy(opt)\n")
        self.assertIn("`copy.deepcopy(...)` gets `opt`", escape.reason)
        self.assertIn("save `opt_state` (a pytree)", escape.suggestion)

    def test_unknown_member_call_is_marked(self) -> None:
        escape = self.only_escape(HEAD + "opt.register_step_post_hook(log)\n")
        self.assertIn("`opt.register_step_post_hook` is not a member", escape.reason)

    def test_getattr_is_marked(self) -> None:
        escape = self.only_escape(HEAD + 'lr = getattr(opt, "lr", None)\n')
        self.assertIn("`getattr(...)` gets `opt`", escape.reason)

    def test_returning_the_optimizer_is_marked(self) -> None:
        escape = self.only_escape(
            "import torch\ndef build(model):\n"
            "    opt = torch.optim.Adam(model.parameters())\n    return opt\n"
        )
        self.assertIn("as a torch optimizer: `return opt`", escape.reason)

    def test_putting_it_in_a_list_is_marked(self) -> None:
        escape = self.only_escape(HEAD + "optimizers = [opt]\n")
        self.assertIn("`optimizers = [opt]`", escape.reason)

    def test_storing_it_in_a_dict_is_marked(self) -> None:
        escape = self.only_escape(HEAD + 'checkpoint["optimizer"] = opt\n')
        self.assertIn('`checkpoint["optimizer"] = opt`', escape.reason)

    def test_storing_it_in_an_attribute_of_another_object_is_marked(self) -> None:
        escape = self.only_escape(HEAD + "state.optimizer = opt\n")
        self.assertIn("`state.optimizer = opt`", escape.reason)

    def test_a_function_whose_parameter_cannot_be_followed_is_marked_at_the_call(self) -> None:
        escape = self.only_escape(HEAD + "def run(o):\n    o.step()\nrun(opt)\nrun(make_other())\n")
        self.assertIn("`run(...)` gets `opt`", escape.reason)

    def test_a_returned_use_in_a_same_file_function_is_marked_inside_it(self) -> None:
        escape = self.only_escape(HEAD + "def wrap(o):\n    return Wrapper(o)\nwrap(opt)\n")
        self.assertIn("`Wrapper(...)` gets `o`", escape.reason)

    def test_a_statement_with_two_problems_gets_one_hatch_listing_both(self) -> None:
        out = self.escapes(HEAD + "pickle.dump((opt.state_dict(), opt.defaults), f)\n")
        self.assertEqual(
            sorted(r.api for r in out),
            ["torch.optim.Optimizer.defaults", "torch.optim.Optimizer.state_dict"],
        )
        self.assertEqual(len({r.line for r in out}), 1)


class InlineConstructorTest(_Base):
    """A constructor whose value goes straight to other code is left as torch code."""

    def test_passed_to_a_library_constructor(self) -> None:
        escape = self.only_escape(
            "import torch\nfrom trainer import Trainer\n"
            "trainer = Trainer(optimizer=torch.optim.Adam(model.parameters()))\n"
        )
        self.assertEqual(escape.api, "torch.optim.Adam")
        self.assertIn("goes straight to code that takes a torch optimizer", escape.reason)
        self.assertIn("`Trainer(...)` gets `torch.optim.Adam(...)`", escape.reason)
        self.assertIn("build `opt = optax.adam(learning_rate=0.001)`", escape.suggestion)

    def test_passed_to_accelerator_prepare(self) -> None:
        self.assertUnchangedButMarked(
            "import torch\nfrom accelerate import Accelerator\naccelerator = Accelerator()\n"
            "model, opt = accelerator.prepare(model, torch.optim.AdamW(model.parameters()))\n"
        )

    def test_returned_from_a_factory(self) -> None:
        self.assertUnchangedButMarked(
            "import torch\ndef configure_optimizers(model):\n"
            "    return torch.optim.SGD(model.parameters(), lr=0.1)\n"
        )

    def assertUnchangedButMarked(self, code: str) -> None:
        (escape,) = self.escapes(code)
        self.assertIn("the statement is left as torch code", escape.reason)
        out = self.records(code)
        self.assertEqual([r.kind for r in out], ["escaped"])


class SchedulerUsesTest(_Base):
    """A scheduler folded into an optax schedule keeps none of a torch scheduler's members."""

    def test_state_dict_is_marked(self) -> None:
        escape = self.only_escape(SCHEDULED + "sd = sched.state_dict()\n")
        self.assertEqual(escape.api, "torch.optim.lr_scheduler.LRScheduler.state_dict")
        self.assertIn("`sched` is now an optax schedule", escape.reason)

    def test_load_state_dict_is_marked(self) -> None:
        escape = self.only_escape(SCHEDULED + 'sched.load_state_dict(ckpt["sched"])\n')
        self.assertEqual(escape.api, "torch.optim.lr_scheduler.LRScheduler.load_state_dict")

    def test_last_epoch_is_marked_with_the_update_count(self) -> None:
        escape = self.only_escape(SCHEDULED + "epoch = sched.last_epoch\n")
        self.assertIn("tree_get(opt_state, 'count')", escape.suggestion)

    def test_base_lrs_is_marked_with_the_schedule_at_zero(self) -> None:
        escape = self.only_escape(SCHEDULED + "lr0 = sched.base_lrs[0]\n")
        self.assertIn("base_lr = sched(0)", escape.suggestion)

    def test_a_dict_holding_optimizer_and_scheduler_keeps_the_scheduler(self) -> None:
        """The dict may step the optimizer out of the scheduler's sight (``ckpt["opt"]``): the
        scheduler stays torch code naming the dict, which is marked for the optimizer."""
        escapes = self.escapes(SCHEDULED + 'ckpt = {"opt": opt, "sched": sched}\n')
        marked = [r for r in escapes if r.api != "torch.optim.Optimizer.step"]
        self.assertEqual(
            [r.api for r in marked], ["torch.optim.lr_scheduler.StepLR", "torch.optim.SGD"]
        )
        self.assertIn('also read at example.py:7 (`ckpt = {"opt": opt', marked[0].reason)
        self.assertEqual(marked[1].snippet, 'ckpt = {"opt": opt, "sched": sched}')

    def test_handing_the_scheduler_on_is_marked(self) -> None:
        escape = self.only_escape(SCHEDULED + "log_scheduler(sched)\n")
        self.assertIn("as a torch scheduler: `log_scheduler(...)` gets `sched`", escape.reason)

    def test_a_scheduler_left_as_torch_code_is_not_marked(self) -> None:
        escapes = self.escapes(
            "import torch\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)\n"
            "sd = sched.state_dict()\n"
        )
        self.assertEqual([r.api for r in escapes], ["torch.optim.lr_scheduler.StepLR"])


class NotMarkedTest(_Base):
    """Twins: the translated consumers, optimizers left as torch code, other objects."""

    def test_step_zero_grad_and_scheduler_step_are_unchanged(self) -> None:
        apis = [r.api for r in self.escapes(SCHEDULED + "opt.zero_grad()\n")]
        self.assertEqual(apis, ["torch.optim.Optimizer.step"])

    def test_uses_of_an_optimizer_left_as_torch_code_are_not_marked(self) -> None:
        escapes = self.escapes(
            "import torch, pickle\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.5)\n"
            "state = opt.state_dict()\n"
            "pickle.dump(opt, f)\n"
            "hook = opt.step\n"
            "x = opt.foo\n"
            "trainer = Trainer(optimizer=opt)\n"
        )
        self.assertEqual([r.api for r in escapes], ["torch.optim.SGD"])

    def test_param_groups_of_an_optimizer_left_as_torch_code_is_not_marked(self) -> None:
        escapes = self.escapes(
            "import torch\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.5)\n"
            'opt.param_groups[0]["lr"] = 0.01\n'
        )
        self.assertEqual([r.api for r in escapes], ["torch.optim.SGD"])

    def test_get_last_lr_of_a_scheduler_left_as_torch_code_is_not_marked(self) -> None:
        escapes = self.escapes(
            "import torch\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10)\n"
            "lr = sched.get_last_lr()\n"
        )
        self.assertEqual([r.api for r in escapes], ["torch.optim.lr_scheduler.StepLR"])

    def test_a_same_file_function_that_receives_an_escaped_optimizer_is_not_marked(self) -> None:
        escapes = self.escapes(
            "import torch\n"
            "def save(optimizer, path):\n"
            "    torch.save(optimizer.state_dict(), path)\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.5)\n"
            "save(opt, path)\n"
        )
        self.assertEqual([r.api for r in escapes], ["torch.optim.SGD"])

    def test_a_parameter_that_merely_shares_the_name_is_not_marked(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            def save(opt, path):
                torch.save(opt.state_dict(), path)
            save(other, path)
            """,
            """
            import torch
            import optax
            opt = optax.sgd(learning_rate=0.1)
            def save(opt, path):
                torch.save(opt.state_dict(), path)
            save(other, path)
            """,
        )

    def test_a_function_that_only_steps_and_zeroes_it_is_not_marked(self) -> None:
        escapes = self.escapes(
            HEAD + "def train(model, optimizer, data):\n"
            "    for x in data:\n"
            "        optimizer.zero_grad()\n"
            "        model(x).backward()\n"
            "        optimizer.step()\n"
            "train(model, opt, data)\n"
        )
        self.assertEqual([r.api for r in escapes], ["torch.optim.Optimizer.step"])

    def test_optax_members_print_and_identity_checks_are_not_marked(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            opt_state = opt.init(params)
            print(opt)
            if opt is not None:
                del opt
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            opt_state = opt.init(params)
            print(opt)
            if opt is not None:
                del opt
            """,
        )

    def test_an_already_converted_file_is_not_marked(self) -> None:
        self.assertUnchanged(
            """
            import pickle
            import optax
            opt = optax.adam(learning_rate=1e-3)
            opt_state = opt.init(params)
            pickle.dump(opt_state, f)
            hook = opt.update
            """
        )


class MigrationReportTest(_Base):
    def test_the_report_lists_torch_only_uses_with_their_suggestion(self) -> None:
        records = self.records(HEAD + "state = opt.state_dict()\npickle.dump(opt, f)\n")
        report = build(RunSummary(mode="check"), [r.to_json() for r in records], {}, [])
        escaped = {a["api"]: a["escaped"] for a in report["apis"] if a["escaped"]}
        self.assertEqual(escaped, {"torch.optim.Optimizer.state_dict": 1, "torch.optim.Adam": 1})
        self.assertIn("checkpoint `opt_state` instead", to_markdown(report))


class ParameterOriginTest(_Base):
    """A same-file function's parameter is the optimizer its callers pass."""

    def test_zero_grad_stays_when_the_callers_optimizer_is_left_as_torch_code(self) -> None:
        escapes = self.escapes(
            "import torch\n"
            "def train(model, optimizer, data):\n"
            "    optimizer.zero_grad()\n"
            "opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.5)\n"
            "train(model, opt, data)\n"
        )
        self.assertEqual(
            [r.api for r in escapes], ["torch.optim.Optimizer.zero_grad", "torch.optim.SGD"]
        )
        self.assertIn("`optimizer` is still a torch optimizer", escapes[0].reason)


class UserMapTest(_Base):
    def test_a_torch_only_call_of_a_user_map_gets_its_text(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "extra.yaml"
            path.write_text(
                "torch_only_calls:\n"
                '  mylib.save: {reason: "`{name}` is optax now: {use}", suggest: "save `{state}`"}\n',
                encoding="utf-8",
            )
            (escape,) = self.escapes(
                "from mylib import save\n" + HEAD + "save(opt)\n", semantic_map=[str(path)]
            )
        self.assertEqual(escape.reason, "`opt` is optax now: `save(...)` gets `opt`")
        self.assertEqual(escape.suggestion, "save `opt_state`")


class AnnotatedParameterTest(_Base):
    """An annotated optimizer parameter: its callers in the file decide, else it is taken as
    translated (as its step() and zero_grad() are)."""

    def test_marked_when_no_caller_in_the_file_says_otherwise(self) -> None:
        escape = self.only_escape(
            "import torch\n"
            "def save(opt: torch.optim.Optimizer, path):\n"
            "    torch.save(opt.state_dict(), path)\n"
        )
        self.assertEqual(escape.api, "torch.optim.Optimizer.state_dict")

    def test_not_marked_when_its_only_caller_passes_a_torch_optimizer(self) -> None:
        escapes = self.escapes(
            "import torch\n"
            "def save(opt: torch.optim.Optimizer, path):\n"
            "    torch.save(opt.state_dict(), path)\n"
            "o = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, dampening=0.5)\n"
            "save(o, path)\n"
        )
        self.assertEqual([r.api for r in escapes], ["torch.optim.SGD"])


class LightningTest(_Base):
    def test_configure_optimizers_returning_the_optimizer_is_marked(self) -> None:
        escape = self.only_escape(
            "import torch\n"
            "class Model(LightningModule):\n"
            "    def configure_optimizers(self):\n"
            "        opt = torch.optim.Adam(self.parameters(), lr=1e-3)\n"
            '        return {"optimizer": opt}\n'
        )
        self.assertIn('`return {"optimizer": opt}`', escape.reason)


class SourceOrderTest(_Base):
    """Several torch-only uses in one statement are reported in source order (libcst keeps
    references in sets ordered by memory address: the order must not come from there)."""

    def reasons(self, code: str) -> list[str]:
        output = self.transform(HEAD + code)
        return [line for line in output.splitlines() if "# ml_switcheroo: reason:" in line]

    def transform(self, code: str) -> str:
        from tests.support import run_codemod

        return run_codemod(code)

    def test_two_uses_in_one_statement_follow_the_source(self) -> None:
        forward = self.reasons("log(pickle_it(opt), isinstance(opt, Base))\n")
        backward = self.reasons("log(isinstance(opt, Base), pickle_it(opt))\n")
        self.assertEqual(len(forward), 2, forward)
        self.assertIn("pickle_it(...)", forward[0])
        self.assertIn("isinstance", forward[1])
        self.assertIn("isinstance", backward[0])
        self.assertIn("pickle_it(...)", backward[1])
