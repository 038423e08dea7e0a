"""``analysis/handed_models.py``: a trained model's name followed across calls (s43)."""

from __future__ import annotations

import ast
from collections.abc import Collection

from ml_switcheroo.analysis.handed_models import Handed, hand_facts, spread
from ml_switcheroo.targets.catalogue import load_semantic_map

FACTS = hand_facts(load_semantic_map())


def _spread(
    source: str,
    trained: Collection[str] = (),
    handed: Collection[Handed] = (),
    builders: Collection[str] = (),
) -> tuple[set[str], frozenset[Handed]]:
    names, out = spread(ast.parse(source), trained, handed, builders, FACTS)
    return set(names), out


def test_a_function_of_the_file_called_with_the_model_trains_its_parameter() -> None:
    assert _spread("def step(net, opt):\n    pass\n\nstep(model, o)\n", {"model"})[0] == {
        "model",
        "net",
    }


def test_a_method_call_does_not_count_self() -> None:
    source = "class T:\n    def step(self, net):\n        pass\n\nT().step(model)\n"
    assert "net" in _spread(source, {"model"})[0]


def test_a_keyword_argument_binds_its_parameter() -> None:
    source = "def fit(cfg, *, model):\n    pass\n\nfit(c, model=m)\n"
    assert _spread(source, {"m"})[0] == {"m", "model"}


def test_a_model_packed_in_star_args_may_be_any_parameter() -> None:
    source = "def step(a, net, *rest):\n    pass\n\nstep(*(model, x))\n"
    assert _spread(source, {"model"})[0] == {"model", "a", "net", "rest"}


def test_the_callers_of_an_optimizer_builder_pass_the_model() -> None:
    names, handed = _spread(
        "def build(model):\n    pass\n\nopt = build(net)\n", {"model"}, (), {"build"}
    )
    assert names == {"model", "net"}
    assert Handed("build", 0, "model", False) in handed


def test_a_builder_given_the_parameters_is_passed_the_model_of_them() -> None:
    source = "def build(params):\n    pass\n\nopt = build(net.parameters())\n"
    assert _spread(source, {"params"}, (), {"build"})[0] == {"params", "net"}


def test_the_callers_of_a_class_building_the_optimizer_pass_the_model() -> None:
    source = (
        "class Trainer:\n    def __init__(self, model):\n        self.model = model\n\n"
        "t = Trainer(net)\n"
    )
    names, handed = spread(ast.parse(source), {"self.model"}, (), {"__init__"}, FACTS, {"Trainer"})
    assert set(names) == {"self.model", "model", "net"}
    assert Handed("Trainer", 0, "model", False) in handed


def test_the_callers_of_another_function_with_a_parameter_of_that_name_pass_something_else() -> (
    None
):
    source = "def evaluate(model):\n    pass\n\nevaluate(model_ema)\n"
    assert _spread(source, {"model"})[0] == {"model"}


def test_a_function_of_another_file_is_handed_the_model() -> None:
    assert _spread("train_one_epoch(loader, model)\n", {"model"})[1] == {
        Handed("train_one_epoch", 1, None, True)
    }


def test_a_callee_is_read_through_its_import_alias_and_copies() -> None:
    source = (
        "from engine import train_one_epoch as fit\nimport functools\nimport torch\n"
        "step = torch.compile(fit)\nstep(model)\nfunctools.partial(evaluate, model)\n"
    )
    assert _spread(source, {"model"})[1] == {
        Handed("train_one_epoch", 0, None, True),
        Handed("evaluate", 0, None, True),
    }


def test_copies_name_the_same_model_both_ways() -> None:
    source = (
        "import torch\nfrom torch.nn.parallel import DistributedDataParallel as DDP\n"
        "model_without_ddp = model\nmodel = DDP(model_without_ddp)\n"
        "net, crit = model.to(device), loss\nself.model: nn.Module = net\ninner = ddp.module\n"
    )
    assert _spread(source, {"self.model"})[0] == {"self.model", "net", "model", "model_without_ddp"}
    assert _spread(source, {"inner"})[0] == {"inner", "ddp"}


def test_a_linked_file_receives_the_names() -> None:
    source = "def train_one_epoch(loader, net):\n    pass\n\nopt = build(m)\n"
    into = Handed("train_one_epoch", 1, None, True)
    out = Handed("build", 0, "model", False)
    assert _spread(source, (), {into})[0] == {"net"}
    assert _spread(source, (), {out})[0] == {"m"}
    assert _spread(source)[0] == set()


def test_a_class_called_with_the_model_stores_it_on_self() -> None:
    source = (
        "class Trainer:\n    def __init__(self, net, opt):\n        self.model = net\n\n"
        "    def step(self, x):\n        return self.model(x)\n\nTrainer(model, o)\n"
    )
    assert _spread(source, {"model"})[0] == {"model", "net", "self.model"}


def test_the_names_keep_the_model_they_come_from() -> None:
    source = "def step(net):\n    pass\n\nstep(g)\nstep2(d)\n"
    names, _ = spread(ast.parse(source), {"g", "d"}, (), (), FACTS)
    assert names == {"g": "g", "d": "d", "net": "g"}


def test_a_holder_of_the_model_hands_its_attribute() -> None:
    source = "args.model = model\ntrain(args, loader)\nstate = TrainState(model=model)\n"
    names, out = _spread(source, {"model"})
    assert {"args.model", "state.model"} <= names
    assert Handed("train", 0, None, True, "model") in out


def test_a_linked_file_receives_the_attribute_of_a_holder() -> None:
    source = "def train(args, loader):\n    pass\n"
    assert _spread(source, (), {Handed("train", 0, None, True, "model")})[0] == {"args.model"}


def test_a_trained_attribute_of_self_is_handed_to_subclasses() -> None:
    source = (
        "class Base:\n    def __init__(self, m):\n        self.model = m\n\n"
        "class Evaluator:\n    def __init__(self, m):\n        self.model = m\n"
    )
    out = spread(ast.parse(source), {"self.model"}, (), {"__init__"}, FACTS, {"Base"})[1]
    assert Handed("Base", None, None, True, "self.model", subclass=True) in out
    assert not any(h.function == "Evaluator" for h in out)
    out = _spread(source, (), {Handed("Base", 0, None, True)})[1]
    assert Handed("Base", None, None, True, "self.model", subclass=True) in out
    assert not any(h.function == "Evaluator" for h in out)  # (it holds another model)
    sub = "class Mine(base.Base):\n    def loss(self, x):\n        return self.model(x)\n"
    assert _spread(sub, (), out)[0] == {"self.model"}
    assert _spread("class Other(Thing):\n    pass\n", (), out)[0] == set()


def test_super_init_calls_the_bases_init_only() -> None:
    source = (
        "class Base:\n    def __init__(self, net):\n        self.model = net\n\n"
        "class Other:\n    def __init__(self, *args, teacher=None):\n        self.t = teacher\n\n"
        "class Mine(Base):\n    def __init__(self, *args, teacher=None):\n"
        "        super().__init__(*args)\n        self.teacher = teacher\n\nMine(model)\n"
    )
    names = _spread(source, {"model"})[0]
    assert {"args", "net", "self.model"} <= names
    assert not names & {"teacher", "self.teacher", "self.t"}
