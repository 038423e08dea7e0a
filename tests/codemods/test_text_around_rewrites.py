"""optimizer.TorchToOptax: the text around a rewrite (``__all__`` re-exports, pragma comments)."""

from __future__ import annotations

from tests.support import SwitcherooTest


class ReExportedImportTest(SwitcherooTest):
    """An import listed in ``__all__`` is re-exported: importers need it, so it stays."""

    def test_name_in_an_all_list_keeps_its_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD, Adam
            __all__ = ["SGD", "Adam"]
            a = SGD(p, lr=0.1)
            b = Adam(q, lr=0.2)
            """,
            """
            from torch.optim import SGD, Adam
            import optax
            __all__ = ["SGD", "Adam"]
            a = optax.sgd(learning_rate=0.1)
            b = optax.adam(learning_rate=0.2)
            """,
        )

    def test_name_missing_from_the_all_list_is_removed(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD, Adam
            __all__ = ["SGD", "build"]
            a = SGD(p, lr=0.1)
            b = Adam(q, lr=0.2)
            """,
            """
            from torch.optim import SGD
            import optax
            __all__ = ["SGD", "build"]
            a = optax.sgd(learning_rate=0.1)
            b = optax.adam(learning_rate=0.2)
            """,
        )

    def test_name_in_an_all_tuple_keeps_its_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            __all__ = ("SGD",)
            a = SGD(p, lr=0.1)
            """,
            """
            from torch.optim import SGD
            import optax
            __all__ = ("SGD",)
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_name_in_an_annotated_all_keeps_its_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            __all__: list[str] = ["SGD"]
            a = SGD(p, lr=0.1)
            """,
            """
            from torch.optim import SGD
            import optax
            __all__: list[str] = ["SGD"]
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_name_added_with_plus_equals_keeps_its_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            __all__ = ["build"]
            __all__ += ["SGD"]
            a = SGD(p, lr=0.1)
            """,
            """
            from torch.optim import SGD
            import optax
            __all__ = ["build"]
            __all__ += ["SGD"]
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_name_added_with_extend_keeps_its_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            __all__ = []
            __all__.extend(["SGD"])
            a = SGD(p, lr=0.1)
            """,
            """
            from torch.optim import SGD
            import optax
            __all__ = []
            __all__.extend(["SGD"])
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_name_added_with_append_keeps_its_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            __all__ = []
            __all__.append("SGD")
            a = SGD(p, lr=0.1)
            """,
            """
            from torch.optim import SGD
            import optax
            __all__ = []
            __all__.append("SGD")
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_readable_all_growing_other_names_still_removes_the_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            __all__ = ["build"]
            __all__ += ["train"]
            __all__.extend(("evaluate",))
            a = SGD(p, lr=0.1)
            """,
            """
            import optax
            __all__ = ["build"]
            __all__ += ["train"]
            __all__.extend(("evaluate",))
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_aliased_import_listed_under_its_alias_is_kept(self) -> None:
        self.assertConverts(
            """
            import torch.optim as optim
            __all__ = ["optim"]
            a = optim.SGD(p, lr=0.1)
            """,
            """
            import torch.optim as optim
            import optax
            __all__ = ["optim"]
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_re_exported_module_name_keeps_import_torch(self) -> None:
        self.assertConverts(
            """
            import torch
            __all__ = ["torch"]
            a = torch.optim.SGD(p, lr=0.1)
            """,
            """
            import torch
            import optax
            __all__ = ["torch"]
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_all_built_from_another_module_keeps_every_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            import torch
            __all__ = base.__all__ + ["build"]
            a = SGD(p, lr=0.1)
            b = torch.optim.Adam(q, lr=0.2)
            """,
            """
            from torch.optim import SGD
            import torch
            import optax
            __all__ = base.__all__ + ["build"]
            a = optax.sgd(learning_rate=0.1)
            b = optax.adam(learning_rate=0.2)
            """,
        )

    def test_all_extended_with_a_name_keeps_every_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            __all__ = ["build"]
            __all__.extend(EXTRA)
            a = SGD(p, lr=0.1)
            """,
            """
            from torch.optim import SGD
            import optax
            __all__ = ["build"]
            __all__.extend(EXTRA)
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_all_read_elsewhere_keeps_every_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            __all__ = ["build"]
            names = sorted(__all__)
            a = SGD(p, lr=0.1)
            """,
            """
            from torch.optim import SGD
            import optax
            __all__ = ["build"]
            names = sorted(__all__)
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_all_listing_a_name_variable_keeps_every_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            __all__ = ["build", NAME]
            a = SGD(p, lr=0.1)
            """,
            """
            from torch.optim import SGD
            import optax
            __all__ = ["build", NAME]
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_all_grown_inside_a_function_keeps_every_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            def register(name):
                __all__.append(name)
            a = SGD(p, lr=0.1)
            """,
            """
            from torch.optim import SGD
            import optax
            def register(name):
                __all__.append(name)
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_another_modules_all_does_not_keep_the_import(self) -> None:
        self.assertConverts(
            """
            from torch.optim import SGD
            names = base.__all__
            a = SGD(p, lr=0.1)
            """,
            """
            import optax
            names = base.__all__
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_function_local_import_is_removed_whatever_all_lists(self) -> None:
        self.assertConverts(
            """
            __all__ = ["SGD"]
            def build(model):
                from torch.optim import SGD
                return SGD(model.parameters(), lr=0.1)
            """,
            """
            import optax
            __all__ = ["SGD"]
            def build(model):
                return optax.sgd(learning_rate=0.1)
            """,
        )


class PragmaCommentTest(SwitcherooTest):
    """A pragma annotates its line: it goes with a removed line, never onto a line of its own."""

    def test_type_ignore_of_a_removed_first_import_is_dropped(self) -> None:
        self.assertConverts(
            """
            from torch.optim import Adam  # type: ignore
            opt = Adam(p, lr=0.1)
            """,
            """
            import optax
            opt = optax.adam(learning_rate=0.1)
            """,
        )

    def test_noqa_of_an_import_replaced_by_optax_is_dropped(self) -> None:
        self.assertConverts(
            """
            import os
            import torch  # noqa: F401
            opt = torch.optim.SGD(p, lr=0.1)
            """,
            """
            import os
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_pylint_pragma_of_a_removed_import_is_dropped(self) -> None:
        self.assertConverts(
            """
            import torch.optim as optim  # pylint: disable=consider-using-from-import
            opt = optim.SGD(p, lr=0.1)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_pragma_after_prose_on_a_removed_import_is_dropped(self) -> None:
        self.assertConverts(
            """
            import torch  # for the optimizer  # isort: skip
            opt = torch.optim.SGD(p, lr=0.1)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_prose_comment_of_a_removed_import_is_still_kept(self) -> None:
        self.assertConverts(
            """
            import torch  # Type: the optimizer's library
            opt = torch.optim.SGD(p, lr=0.1)
            """,
            """
            # Type: the optimizer's library
            import optax
            opt = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_type_ignore_of_a_removed_zero_grad_is_dropped(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            for batch in data:
                opt.zero_grad()  # type: ignore[attr-defined]
                loss = step(batch)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            for batch in data:
                loss = step(batch)
            """,
        )

    def test_pragma_of_a_removed_last_statement_leaves_only_pass(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            def reset():
                opt.zero_grad()  # pragma: no cover
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            def reset():
                pass
            """,
        )

    def test_pragma_line_above_a_removed_statement_stays_a_line(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            for batch in data:
                # fmt: off
                opt.zero_grad()
                loss = step(batch)
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            for batch in data:
                # fmt: off
                loss = step(batch)
            """,
        )

    def test_pragma_of_a_rewritten_statement_stays_on_its_line(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)  # type: ignore[call-arg]
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)  # type: ignore[call-arg]
            """,
        )

    def test_pragma_of_a_kept_import_stays_on_its_line(self) -> None:
        self.assertConverts(
            """
            import torch  # noqa: F401
            opt = torch.optim.SGD(p, lr=0.1)
            x = torch.zeros(3)
            """,
            """
            import torch  # noqa: F401
            import optax
            opt = optax.sgd(learning_rate=0.1)
            x = torch.zeros(3)
            """,
        )

    def test_pragma_of_a_statement_sharing_the_line_with_a_removed_call_stays(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(p, lr=0.1)
            opt.zero_grad(); loss = step(batch)  # noqa: E702
            """,
            """
            import optax
            opt = optax.sgd(learning_rate=0.1)
            loss = step(batch)  # noqa: E702
            """,
        )

    def test_pragma_inside_a_dropped_argument_does_not_move_above_the_statement(self) -> None:
        self.assertConverts(
            """
            import torch
            opt = torch.optim.SGD(
                model.parameters(),  # type: ignore[arg-type]
                lr=0.1,  # peak
            )
            """,
            """
            import optax
            opt = optax.sgd(
                learning_rate=0.1,  # peak
            )
            """,
        )


class CommentsOfRemovedImportNamesTest(SwitcherooTest):
    """Comments inside a multi-line import keep their place when names are removed from it."""

    def test_comment_inside_a_removed_multi_line_import_is_kept(self) -> None:
        self.assertConverts(
            """
            from torch.optim import (
                SGD,  # the optimizer
            )
            a = SGD(p, lr=0.1)
            """,
            """
            # the optimizer
            import optax
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_comment_of_a_name_removed_from_a_kept_import_goes_above_it(self) -> None:
        self.assertConverts(
            """
            from torch.optim import (
                SGD,  # the optimizer
                Adam,
            )
            a = SGD(p, lr=0.1)
            b = Adam
            """,
            """
            # the optimizer
            from torch.optim import (
                Adam,
            )
            import optax
            a = optax.sgd(learning_rate=0.1)
            b = Adam
            """,
        )

    def test_pragma_inside_a_removed_multi_line_import_is_dropped(self) -> None:
        self.assertConverts(
            """
            from torch.optim import (  # type: ignore[attr-defined]
                SGD,  # noqa: F401
            )
            a = SGD(p, lr=0.1)
            """,
            """
            import optax
            a = optax.sgd(learning_rate=0.1)
            """,
        )

    def test_pragma_of_a_name_removed_from_a_kept_import_is_dropped(self) -> None:
        self.assertConverts(
            """
            from torch.optim import (
                SGD,  # noqa: F401
                Adam,
            )
            a = SGD(p, lr=0.1)
            b = Adam
            """,
            """
            from torch.optim import (
                Adam,
            )
            import optax
            a = optax.sgd(learning_rate=0.1)
            b = Adam
            """,
        )
