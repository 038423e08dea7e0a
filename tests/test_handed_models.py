"""``analysis/handed_models.py``: a trained model's name followed across calls (s43)."""

from __future__ import annotations

import ast

from ml_switcheroo.analysis.handed_models import Handed, received_names, spread


def _spread(source: str, trained: set[str]) -> tuple[frozenset[str], frozenset[Handed]]:
    return spread(ast.parse(source), trained)


def test_a_function_of_the_file_called_with_the_model_trains_its_parameter() -> None:
    names, _ = _spread("def step(net, opt):\n    pass\n\nstep(model, o)\n", {"model"})
    assert names == {"model", "net"}


def test_a_method_call_does_not_count_self() -> None:
    source = "class T:\n    def step(self, net):\n        pass\n\nT().step(model)\n"
    assert "net" in _spread(source, {"model"})[0]


def test_a_keyword_argument_binds_its_parameter() -> None:
    source = "def fit(cfg, *, model):\n    pass\n\nfit(c, model=m)\n"
    assert _spread(source, {"m"})[0] == {"m", "model"}


def test_an_argument_after_a_starred_one_binds_nothing() -> None:
    source = "def step(a, net):\n    pass\n\nstep(*xs, model)\n"
    assert _spread(source, {"model"})[0] == {"model"}


def test_the_callers_of_an_optimizer_builder_pass_the_model() -> None:
    tree = ast.parse("def build(model):\n    pass\n\nopt = build(net)\n")
    names, handed = spread(tree, {"model"}, (), {"build"})
    assert names == {"model", "net"}
    assert Handed("build", 0, "model", False) in handed


def test_the_callers_of_another_function_with_a_parameter_of_that_name_pass_something_else() -> (
    None
):
    source = "def evaluate(model):\n    pass\n\nevaluate(model_ema)\n"
    assert _spread(source, {"model"})[0] == {"model"}


def test_a_function_of_another_file_is_handed_the_model() -> None:
    _, handed = _spread("train_one_epoch(loader, model)\n", {"model"})
    assert handed == {Handed("train_one_epoch", 1, None, True)}


def test_a_linked_file_receives_the_names() -> None:
    tree = ast.parse("def train_one_epoch(loader, net):\n    pass\n\nopt = build(m)\n")
    into = Handed("train_one_epoch", 1, None, True)
    out = Handed("build", 0, "model", False)
    assert received_names(tree, {into}) == {"net"}
    assert received_names(tree, {out}) == {"m"}
    assert received_names(tree, ()) == set()


def test_a_class_called_with_the_model_stores_it_on_self() -> None:
    source = (
        "class Trainer:\n    def __init__(self, net, opt):\n        self.model = net\n\n"
        "    def step(self, x):\n        return self.model(x)\n\nTrainer(model, o)\n"
    )
    assert _spread(source, {"model"})[0] == {"model", "net", "self.model"}


def test_a_linked_trainer_class_receives_the_model() -> None:
    tree = ast.parse("class Trainer:\n    def __init__(self, net):\n        self.model = net\n")
    names, _ = spread(tree, (), {Handed("Trainer", 0, None, True)})
    assert names == {"net", "self.model"}
