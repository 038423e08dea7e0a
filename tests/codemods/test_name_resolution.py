"""optimizer.TorchToOptax: what counts as an optimizer, and what is never touched."""

from __future__ import annotations

from tests.support import SwitcherooTest

STEP_ESCAPE = "# ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step"


class ReceiverTest(SwitcherooTest):
    def test_receiver_bound_in_the_same_scope(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            opt.zero_grad()
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_receiver_bound_in_an_enclosing_scope(self) -> None:
        self.assertConverts(
            """
            import torch
            def fit(model):
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
                def closure():
                    opt.zero_grad()
                    return 0.0
                return closure
            """,
            """
            import optax
            def fit(model):
                opt = optax.sgd(learning_rate=0.1)
                def closure():
                    return 0.0
                return closure
            """,
        )

    def test_self_attribute_set_in_another_method(self) -> None:
        self.assertConverts(
            """
            import torch
            class Trainer:
                def step_once(self):
                    self.opt.zero_grad()
                def __init__(self, model):
                    self.opt = torch.optim.Adam(model.parameters())
            """,
            """
            import optax
            class Trainer:
                def step_once(self):
                    pass
                def __init__(self, model):
                    self.opt = optax.adam(learning_rate=0.001)
            """,
        )

    def test_self_attribute_initialised_to_none_first(self) -> None:
        self.assertConverts(
            """
            import torch
            class Trainer:
                def __init__(self):
                    self.opt = None
                def setup(self, model):
                    self.opt = torch.optim.Adam(model.parameters())
                def clear(self):
                    self.opt.zero_grad()
            """,
            """
            import optax
            class Trainer:
                def __init__(self):
                    self.opt = None
                def setup(self, model):
                    self.opt = optax.adam(learning_rate=0.001)
                def clear(self):
                    pass
            """,
        )

    def test_parameter_annotated_as_optimizer(self) -> None:
        self.assertConverts(
            """
            import torch
            def clear(opt: torch.optim.Optimizer):
                opt.zero_grad()
            """,
            """
            import torch
            def clear(opt: torch.optim.Optimizer):
                pass
            """,
        )

    def test_parameter_annotated_with_an_alias(self) -> None:
        self.assertConverts(
            """
            from torch.optim import Optimizer as Opt
            from typing import Optional
            def clear(o: Optional[Opt]):
                o.zero_grad()
            """,
            """
            from torch.optim import Optimizer as Opt
            from typing import Optional
            def clear(o: Optional[Opt]):
                pass
            """,
        )

    def test_parameter_annotated_with_a_concrete_optimizer_class(self) -> None:
        self.assertConverts(
            """
            from torch import optim
            def clear(o: optim.Adam):
                o.zero_grad()
            """,
            """
            from torch import optim
            def clear(o: optim.Adam):
                pass
            """,
        )

    def test_unannotated_parameter_passed_an_optimizer_by_every_caller(self) -> None:
        self.assertConverts(
            """
            import torch
            def train(model, optimizer):
                optimizer.zero_grad()
            def main(model):
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
                train(model, opt)
                train(model, optimizer=opt)
            """,
            """
            import optax
            def train(model, optimizer):
                pass
            def main(model):
                opt = optax.sgd(learning_rate=0.1)
                train(model, opt)
                train(model, optimizer=opt)
            """,
        )

    def test_unannotated_parameter_named_like_an_optimizer_gets_comments_only(self) -> None:
        self.assertConverts(
            """
            import torch
            def train(model, optimizer):
                optimizer.zero_grad()
            """,
            """
            import torch
            def train(model, optimizer):
                # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.zero_grad
                # ml_switcheroo: reason: `optimizer` is an unannotated parameter, taken for a torch.optim.Optimizer only because of its name
                # ml_switcheroo: suggestion:
                # ml_switcheroo: |   delete this statement if the receiver is a torch optimizer
                optimizer.zero_grad()
                # ml_switcheroo: ESCAPE-END
            """,
        )

    def test_name_alone_is_no_evidence_in_a_file_without_torch(self) -> None:
        self.assertUnchanged(
            """
            def train(model, optimizer):
                optimizer.zero_grad()
                optimizer.step()
            """
        )

    def test_unannotated_parameter_with_another_name_is_untouched(self) -> None:
        self.assertUnchanged(
            """
            def train(model, thing):
                thing.zero_grad()
                thing.step()
            """
        )

    def test_caller_passing_something_else_falls_back_to_the_name(self) -> None:
        code = """
            import torch
            def train(opt):
                opt.zero_grad()
            train(make_optimizer())
            """
        (record,) = self.records(code)
        self.assertEqual(record.kind, "escaped")
        self.assertIn("unannotated parameter", record.reason)


class NeverTouchedTest(SwitcherooTest):
    def test_user_class_named_adam(self) -> None:
        self.assertUnchanged(
            """
            import torch
            class Adam:
                def step(self):
                    pass
            opt = Adam(model.parameters(), lr=0.1)
            opt.step()
            opt.zero_grad()
            """
        )

    def test_user_function_named_sgd(self) -> None:
        self.assertUnchanged(
            """
            from torch.optim import Adam
            def SGD(params, lr):
                return None
            opt = SGD(model.parameters(), lr=0.1)
            """
        )

    def test_self_step_env_step_and_ema_step(self) -> None:
        self.assertUnchanged(
            """
            import torch
            class Agent:
                def act(self, env, ema):
                    self.step()
                    env.step(0)
                    ema.step()
            """
        )

    def test_model_zero_grad(self) -> None:
        self.assertUnchanged(
            """
            import torch
            def train(model, netD):
                model.zero_grad()
                netD.zero_grad()
            """
        )

    def test_import_shadowed_by_a_parameter(self) -> None:
        self.assertUnchanged(
            """
            import torch
            from torch import optim
            def build(optim, torch):
                return optim.Adam([]), torch.optim.SGD([])
            """
        )

    def test_import_shadowed_by_a_local_assignment(self) -> None:
        self.assertUnchanged(
            """
            from torch.optim import Adam
            def build():
                Adam = make_my_adam()
                return Adam([], lr=0.1)
            """
        )

    def test_optimizer_name_rebound_to_something_else(self) -> None:
        self.assertUnchanged(
            """
            def run(model):
                opt = Stepper()
                opt.step()
                opt.zero_grad()
            """
        )

    def test_torch_not_imported_at_all(self) -> None:
        self.assertUnchanged(
            """
            opt = torch.optim.Adam(model.parameters())
            opt.step()
            """
        )


class HandOverTest(SwitcherooTest):
    """A translated optimizer passed to another library is marked where it is passed."""

    def test_external_function_and_method_of_an_external_object_are_marked(self) -> None:
        records = self.records(
            """
            import torch
            from timm.scheduler import create_scheduler
            from accelerate import Accelerator
            accelerator = Accelerator()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            scheduler = create_scheduler(args, optimizer)
            model, optimizer = accelerator.prepare(model, optimizer)
            """
        )
        reasons = [r.reason for r in records if r.kind == "escaped"]
        self.assertEqual(len(reasons), 2)
        self.assertIn("`create_scheduler(...)` gets `optimizer`", reasons[0])
        self.assertIn("`accelerator.prepare(...)` gets `optimizer`", reasons[1])

    def test_local_functions_and_builtins_are_not_marked(self) -> None:
        self.assertConverts(
            """
            import torch
            def train(opt):
                return opt
            opt = torch.optim.SGD(p, lr=0.1)
            train(opt)
            print(opt)
            """,
            """
            import optax
            def train(opt):
                # ml_switcheroo: ESCAPE-BEGIN torch.optim.SGD
                # ml_switcheroo: reason: `opt` is now an optax GradientTransformation, not a torch optimizer, and this code uses it as a torch optimizer: `return opt`
                # ml_switcheroo: suggestion:
                # ml_switcheroo: |   port it by hand: an optax transformation has only init and update; pass `opt` with its state `opt_state` (`opt_state = opt.init(params)`) to code written for optax, and checkpoint `opt_state` (a pytree: flax.serialization, orbax or pickle of the state), rebuilding `opt` from code
                return opt
                # ml_switcheroo: ESCAPE-END
            opt = optax.sgd(learning_rate=0.1)
            train(opt)
            print(opt)
            """,
        )

    def test_an_optimizer_left_as_torch_code_is_not_marked(self) -> None:
        self.assertUnchanged(
            """
            import torch
            from accelerate import Accelerator
            accelerator = Accelerator()
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.SGD
            # ml_switcheroo: reason: kept
            opt = torch.optim.SGD(p, **kw)
            # ml_switcheroo: ESCAPE-END
            opt = accelerator.prepare(opt)
            """
        )
