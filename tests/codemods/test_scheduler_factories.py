"""optimizer.TorchToOptax: a scheduler built by a factory that receives the optimizer as a
parameter (``analysis/factories.py``).

``sched = get_lr_scheduler(opt, 300)`` next to ``opt = Adam(...)``, stepped once per update:
the schedule folds into the constructor, the factory's parameters replaced by what the call
passes, and the factory returns the same schedule in its own terms. Each trap twin makes the
fold uncertain (two calls, two branches, another optimizer, per-epoch stepping, a factory that
also changes the optimizer, a name rebound after the optimizer, a learning rate the factory
cannot see, a builtin shadowed at the call, a call in another block) and escapes, naming the
place.
"""

from __future__ import annotations

from tests.support import SwitcherooTest, run_codemod

STEP_ESCAPE = """\
        # ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step
        # ml_switcheroo: reason: torch computes gradients into .grad (`loss.backward()`) and `optimizer.step()` applies them in place; JAX takes gradients of a loss function and optax returns updates to apply
        # ml_switcheroo: suggestion:
        # ml_switcheroo: |   def loss_fn(params):  # the forward pass that computes `loss`, as a function of the parameters
        # ml_switcheroo: |       ...
        # ml_switcheroo: |       return loss
        # ml_switcheroo: |   loss, grads = jax.value_and_grad(loss_fn)(params)
        # ml_switcheroo: |   updates, optimizer_state = optimizer.update(grads, optimizer_state, params)
        # ml_switcheroo: |   params = optax.apply_updates(params, updates)
        # ml_switcheroo: |   # once, after `optimizer` is built: optimizer_state = optimizer.init(params)
        model(x).sum().backward()
        optimizer.step()
        # ml_switcheroo: ESCAPE-END
"""

FACTORY = """\
import torch


def get_lr_scheduler(optimizer, max_steps):
    # the schedule of the run
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max_steps // 3)


def fit(model, loader):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = get_lr_scheduler(optimizer, 300)
    for x in loader:
        optimizer.zero_grad()
        model(x).sum().backward()
        optimizer.step()
        scheduler.step()
"""

FOLDED = (
    """\
import optax


def get_lr_scheduler(optimizer, max_steps):
    # the schedule of the run
    return optax.exponential_decay(1e-3, transition_steps=max_steps // 3, decay_rate=0.1, staircase=True)


def fit(model, loader):
    optimizer = optax.adam(learning_rate=optax.exponential_decay(1e-3, transition_steps=300 // 3, decay_rate=0.1, staircase=True))
    scheduler = get_lr_scheduler(optimizer, 300)
    for x in loader:
"""
    + STEP_ESCAPE
)

UNFOLDED = "optimizer = optax.adam(learning_rate=1e-3)"


class FactoryFoldsTest(SwitcherooTest):
    def test_the_schedule_folds_into_the_caller_optimizer_with_the_passed_values(self) -> None:
        self.assertConverts(FACTORY, FOLDED)

    def test_a_method_factory_called_on_self_folds(self) -> None:
        code = (
            "import torch\n\n\n"
            "class Trainer:\n"
            "    def __init__(self, model):\n"
            "        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
            "        self.scheduler = self.build_scheduler(self.optimizer, 30)\n\n"
            "    def build_scheduler(self, optimizer, size):\n"
            "        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=size)\n\n"
            "    def step(self, loss):\n"
            "        loss.backward()\n"
            "        self.optimizer.step()\n"
            "        self.scheduler.step()\n"
        )
        out = run_codemod(code)
        self.assertIn(
            "self.optimizer = optax.adam(learning_rate=optax.exponential_decay(1e-3, "
            "transition_steps=30, decay_rate=0.1, staircase=True))\n"
            "        self.scheduler = self.build_scheduler(self.optimizer, 30)\n",
            out,
        )
        self.assertNotIn("self.scheduler.step()", out)

    def test_a_transformers_factory_inside_a_helper_folds(self) -> None:
        code = FACTORY.replace("import torch\n", "import torch\nimport transformers\n").replace(
            "torch.optim.lr_scheduler.StepLR(optimizer, step_size=max_steps // 3)",
            "transformers.get_linear_schedule_with_warmup(optimizer, 10, max_steps)",
        )
        escaped = [r.api for r in self.records(code) if r.kind == "escaped"]
        self.assertEqual(escaped, ["torch.optim.Optimizer.step"])

    def test_a_name_bound_before_the_optimizer_is_bound_once_where_it_is_built(self) -> None:
        code = (
            FACTORY.replace(
                "StepLR(optimizer, step_size=max_steps // 3)",
                "CosineAnnealingLR(optimizer, T_max=max_steps)",
            )
            .replace("    optimizer = torch", "    total = len(loader)\n    optimizer = torch")
            .replace("get_lr_scheduler(optimizer, 300)", "get_lr_scheduler(optimizer, total)")
        )
        out = run_codemod(code)
        self.assertIn("optimizer = optax.adam(learning_rate=(lambda max_steps: lambda count:", out)
        self.assertIn(")(total))\n    scheduler = get_lr_scheduler(optimizer, total)\n", out)

    def test_a_builtin_the_caller_does_not_shadow_folds(self) -> None:
        code = FACTORY.replace("step_size=max_steps // 3", "step_size=max(1, max_steps // 3)")
        self.assertIn("transition_steps=max(1, 300 // 3)", run_codemod(code))

    def test_an_attribute_of_a_parameter_folds(self) -> None:
        code = FACTORY.replace("def fit(model, loader):", "def fit(model, loader, cfg):").replace(
            "get_lr_scheduler(optimizer, 300)", "get_lr_scheduler(optimizer, cfg.max_steps)"
        )
        self.assertIn("transition_steps=cfg.max_steps // 3", run_codemod(code))


class FactoryTrapsTest(SwitcherooTest):
    def scheduler_reason(self, code: str) -> str:
        (record,) = [
            r for r in self.records(code) if r.api.endswith(("StepLR", "CosineAnnealingLR"))
        ]
        self.assertEqual(record.kind, "escaped")
        return record.reason

    def assertNotFolded(self, code: str) -> None:
        self.assertIn(UNFOLDED, run_codemod(code))

    def test_a_factory_called_twice_names_both_calls(self) -> None:
        code = FACTORY + (
            "\n\ndef fit_again(model, loader):\n"
            "    other = torch.optim.SGD(model.parameters(), lr=0.1)\n"
            "    sched = get_lr_scheduler(other, 30)\n"
        )
        self.assertIn("called 2 times (example.py:11, example.py:21)", self.scheduler_reason(code))
        self.assertNotFolded(code)

    def test_a_factory_returning_other_schedulers_on_two_branches_escapes(self) -> None:
        code = FACTORY.replace(
            "def get_lr_scheduler(optimizer, max_steps):\n",
            "def get_lr_scheduler(optimizer, max_steps):\n"
            "    if max_steps > 100:\n"
            "        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)\n",
        )
        records = [r for r in self.records(code) if r.api.endswith("StepLR")]
        self.assertEqual([r.kind for r in records], ["escaped", "escaped"])
        self.assertIn(
            "called at example.py:13, returns on 2 paths (example.py:6, example.py:8)",
            records[0].reason,
        )
        self.assertNotFolded(code)

    def test_an_argument_that_is_not_provably_one_optimizer_escapes(self) -> None:
        code = FACTORY.replace(
            "    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)\n",
            "    if model.big:\n"
            "        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
            "    else:\n"
            "        optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)\n",
        )
        self.assertIn(
            "its one call (example.py:14) passes `optimizer`, which is not an optimizer built "
            "by a translated constructor",
            self.scheduler_reason(code),
        )

    def test_a_scheduler_stepped_per_epoch_in_the_caller_escapes(self) -> None:
        code = FACTORY.replace(
            "    for x in loader:\n",
            "    for epoch in range(3):\n      for x in loader:\n",
        ).replace("        scheduler.step()\n", "      scheduler.step()\n")
        self.assertIn("steps once per epoch", self.scheduler_reason(code))
        self.assertNotFolded(code)

    def test_a_factory_that_also_sets_the_optimizer_lr_escapes(self) -> None:
        code = FACTORY.replace(
            "    # the schedule of the run\n",
            '    optimizer.param_groups[0]["lr"] = 0.01\n',
        )
        self.assertIn(
            "also uses its optimizer parameter `optimizer` outside the scheduler (example.py:5",
            self.scheduler_reason(code),
        )
        self.assertNotFolded(code)

    def test_a_name_rebound_after_the_optimizer_escapes(self) -> None:
        code = FACTORY.replace(
            "    scheduler = get_lr_scheduler(optimizer, 300)\n",
            "    total = 300\n    scheduler = get_lr_scheduler(optimizer, total)\n",
        )
        self.assertIn(
            "a name the factory's arguments read is assigned after the optimizer is built "
            "(get_lr_scheduler() is called at example.py:12)",
            self.scheduler_reason(code),
        )
        self.assertNotFolded(code)

    def test_a_learning_rate_the_factory_cannot_see_escapes(self) -> None:
        code = FACTORY.replace("def fit(model, loader):", "def fit(model, loader, lr):").replace(
            "lr=1e-3", "lr=lr"
        )
        self.assertIn(
            "starts from the optimizer's learning rate `lr`, which is not visible in the factory",
            self.scheduler_reason(code),
        )
        self.assertIn("optimizer = optax.adam(learning_rate=lr)", run_codemod(code))

    def test_a_builtin_shadowed_where_the_factory_is_called_escapes(self) -> None:
        code = FACTORY.replace(
            "step_size=max_steps // 3", "step_size=max(1, max_steps // 3)"
        ).replace("def fit(model, loader):", "def fit(model, loader, max):")
        self.assertIn(
            "`max` means another value where get_lr_scheduler() is called",
            self.scheduler_reason(code),
        )
        self.assertNotFolded(code)

    def test_a_factory_called_in_another_block_escapes(self) -> None:
        code = FACTORY.replace(
            "    scheduler = get_lr_scheduler(optimizer, 300)\n",
            "    if loader:\n        scheduler = get_lr_scheduler(optimizer, 300)\n",
        )
        self.assertIn("the factory is not called after the optimizer", self.scheduler_reason(code))
        self.assertNotFolded(code)

    def test_an_attribute_argument_after_a_call_that_may_change_it_escapes(self) -> None:
        code = FACTORY.replace("def fit(model, loader):", "def fit(model, loader, cfg):").replace(
            "    scheduler = get_lr_scheduler(optimizer, 300)\n",
            "    cfg.finalize()\n    scheduler = get_lr_scheduler(optimizer, cfg.max_steps)\n",
        )
        self.assertIn(
            "`cfg.finalize()` runs between the optimizer and the factory's call",
            self.scheduler_reason(code),
        )
        self.assertNotFolded(code)

    def test_an_attribute_argument_assigned_in_the_file_escapes(self) -> None:
        code = (
            FACTORY.replace("def fit(model, loader):", "def fit(model, loader, cfg):")
            .replace(
                "    optimizer = torch",
                "    cfg.max_steps = 30\n    optimizer = torch",
            )
            .replace(
                "get_lr_scheduler(optimizer, 300)", "get_lr_scheduler(optimizer, cfg.max_steps)"
            )
        )
        self.assertIn("is assigned in this file", self.scheduler_reason(code))
        self.assertNotFolded(code)
