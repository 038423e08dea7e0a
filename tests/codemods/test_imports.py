"""optimizer.TorchToOptax: imports are added once and removed only when unused."""

from __future__ import annotations

from ml_switcheroo.codemods.optimizer import TorchToNNX
from tests.support import SwitcherooTest


class AddImportTest(SwitcherooTest):
    def test_optax_goes_after_docstring_future_and_leading_imports(self) -> None:
        self.assertConverts(
            '''
            """Training script."""
            from __future__ import annotations
            import os
            import torch

            def build(model):
                opt = torch.optim.SGD(model.parameters(), lr=0.1)
            ''',
            '''
            """Training script."""
            from __future__ import annotations
            import os
            import optax

            def build(model):
                opt = optax.sgd(learning_rate=0.1)
            ''',
        )

    def test_optax_is_added_once_for_many_conversions(self) -> None:
        self.assertConverts(
            """
            import torch
            a = torch.optim.SGD(p, lr=0.1)
            b = torch.optim.Adam(q, lr=0.2)
            """,
            """
            import optax
            a = optax.sgd(learning_rate=0.1)
            b = optax.adam(learning_rate=0.2)
            """,
        )

    def test_existing_optax_import_is_reused(self) -> None:
        self.assertConverts(
            """
            import optax
            import torch
            a = torch.optim.SGD(p, lr=0.1)
            """,
            """
            import optax
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_name_optax_bound_to_something_else_escapes(self) -> None:
        (record,) = self.records(
            """
            import torch
            optax = load_config()
            a = torch.optim.SGD(p, lr=0.1)
            """
        )
        self.assertEqual(record.kind, "escaped")
        self.assertIn("`optax` is already bound", record.reason)

    def test_nothing_is_added_when_nothing_converts(self) -> None:
        self.assertUnchanged(
            """
            import torch
            x = torch.zeros(3)
            """
        )


class RemoveImportTest(SwitcherooTest):
    def test_import_torch_is_kept_while_used(self) -> None:
        self.assertConverts(
            """
            import torch
            x = torch.zeros(3)
            opt = torch.optim.SGD([x], lr=0.1)
            """,
            """
            import torch
            import optax
            x = torch.zeros(3)
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_only_the_unused_name_of_a_from_import_is_removed(self) -> None:
        self.assertConverts(
            """
            from torch.optim import Adam, lr_scheduler
            opt = Adam(p, lr=0.1)
            class Warmup(lr_scheduler.LRScheduler):
                pass
            """,
            """
            from torch.optim import lr_scheduler
            import optax
            opt = optax.adam(learning_rate=0.1)
            class Warmup(lr_scheduler.LRScheduler):
                pass
            """,
        )

    def test_alias_still_used_by_an_escaped_statement_is_kept(self) -> None:
        self.assertConverts(
            """
            import torch.optim as optim
            a = optim.SGD(p, lr=0.1)
            b = optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1)
            """,
            """
            import torch.optim as optim
            import optax
            a = optax.sgd(learning_rate=0.1)
            # ml_switcheroo: ESCAPE-BEGIN torch.optim.SGD
            # ml_switcheroo: reason: torch SGD dampens the momentum buffer (except on the first step); optax.sgd has no dampening
            # ml_switcheroo: suggestion:
            # ml_switcheroo: |   run with --exact for optax_torch.sgd(learning_rate=0.1, momentum=0.9, dampening=0.1, nesterov=False)
            b = optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1)
            # ml_switcheroo: ESCAPE-END
            """,
        )

    def test_comment_on_a_removed_import_is_kept(self) -> None:
        self.assertConverts(
            """
            import os  # paths
            import torch.optim as optim  # optimizers
            opt = optim.SGD(p, lr=0.1)
            """,
            """
            import os  # paths
            # optimizers
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_import_optax_takes_the_place_and_blank_lines_of_the_removed_import(self) -> None:
        self.assertConverts(
            '''
            """Train."""

            import torch


            opt = torch.optim.SGD(p, lr=0.1)
            ''',
            '''
            """Train."""

            import optax


            opt = optax.sgd(learning_rate=0.1)
            ''',
        )

    def test_import_used_only_in_a_string_annotation_is_kept(self) -> None:
        self.assertConverts(
            """
            from torch import optim
            def f(o: "optim.Optimizer"):
                opt = optim.SGD(p, lr=0.1)
            """,
            """
            from torch import optim
            import optax
            def f(o: "optim.Optimizer"):
                opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_function_local_import_is_removed_when_unused(self) -> None:
        self.assertConverts(
            """
            import optax
            def build(model):
                import torch.optim as optim
                return optim.SGD(model.parameters(), lr=0.1)
            """,
            """
            import optax
            def build(model):
                return optax.sgd(learning_rate=0.1)
            """,
        )

    def test_unrelated_unused_imports_are_left_alone(self) -> None:
        self.assertConverts(
            """
            import json
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            """,
            """
            import json
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )


class DynamicCodeImportTest(SwitcherooTest):
    """A file that runs code from a string (`exec`, `eval`: `dynamic_code_calls` in the map)
    keeps its imports: the string may use them (`torch` was removed, so `eval` raised)."""

    def test_imports_stay_in_a_file_that_calls_eval(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(params, lr=0.1)
            x = eval("torch.zeros(3)")
            """,
            """
            import torch
            import optax
            opt = optax.sgd(learning_rate=0.1)
            x = eval("torch.zeros(3)")
            """,
        )

    def test_imports_stay_in_a_file_that_calls_exec(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            opt = SGD(model.parameters(), lr=0.1)
            exec(source)
            """,
            """
            from torch.optim import SGD
            import optax
            opt = optax.sgd(learning_rate=0.1)
            exec(source)
            """,
        )

    def test_a_method_named_eval_removes_them(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(params, lr=0.1)
            model.eval()
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            model.eval()
            """,
        )


class SubmoduleImportTest(SwitcherooTest):
    """`import torch.nn.parallel` binds `torch` and loads the submodule: it goes only when the
    rewrite discarded a use of `torch.nn.parallel` itself (clovaai/CutMix-PyTorch train.py)."""

    def test_submodule_imports_the_rewrite_did_not_use_are_kept(self) -> None:
        self.assertConverts(
            """
            import torch
            import torch.nn.parallel
            import torch.optim
            import torch.utils.data.distributed
            model = torch.nn.Linear(2, 2)
            opt = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9)
            """,
            """
            import torch
            import torch.nn.parallel
            import torch.utils.data.distributed
            import optax
            model = torch.nn.Linear(2, 2)
            opt = optax.sgd(learning_rate=0.1, momentum=0.9)
            """,
        )

    def test_submodule_import_is_kept_when_every_use_of_torch_goes(self) -> None:
        self.assertConverts(
            """
            import torch.optim
            import torch.utils.data
            opt = torch.optim.SGD(params, lr=0.1)
            """,
            """
            import torch.utils.data
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )


class NNXSubmoduleImportTest(SwitcherooTest):
    TRANSFORM = TorchToNNX

    def test_submodule_imports_the_rewrite_did_not_use_are_kept(self) -> None:
        self.assertConverts(
            """
            import torch
            import torch.nn.parallel
            import torch.optim
            import torch.utils.data.distributed
            model = torch.nn.Linear(2, 2)
            opt = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9)
            """,
            """
            import torch
            import torch.nn.parallel
            import torch.utils.data.distributed
            import optax
            from flax import nnx
            model = torch.nn.Linear(2, 2)
            opt = nnx.Optimizer(model, optax.sgd(learning_rate=0.1, momentum=0.9), wrt=nnx.Param)
            """,
        )
