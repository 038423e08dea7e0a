"""The second pre-filter stage (``ast``): what it keeps and drops, its seam for cross-file facts,
and that it never drops a file the codemod would change (the test suite's samples, the project's
examples, generated modules), in ``convert`` and in the libcst command."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libcst.codemod import CodemodContext

from ml_switcheroo.analysis import second_stage
from ml_switcheroo.analysis.prefilter import prefilter_for
from ml_switcheroo.analysis.second_stage import SecondStage, second_stage_for
from ml_switcheroo.codemods.optimizer import StripZeroGrad, TorchToNNX, TorchToOptax
from ml_switcheroo.spec import roles
from ml_switcheroo.spec.errors import SemanticMapError
from ml_switcheroo.targets.catalogue import TARGETS, load_semantic_map
from tests.support import write_package
from tests.test_convert_cli import run, summary_numbers, tree
from tests.test_prefilter import (
    _IMPORTS,
    _LINES,
    COMMANDS,
    LION_MAP,
    _project_files,
    _test_samples,
    convert,
)


def stage(hooks: frozenset[str] | None = None) -> SecondStage:
    return second_stage_for(load_semantic_map(), hooks)


def keeps(code: str, hooks: frozenset[str] | None = None) -> bool:
    data = textwrap.dedent(code).encode("utf-8")
    assert prefilter_for(load_semantic_map(), hooks).matches(data), "the bytes must pass first"
    return stage(hooks).keeps(data)


# --------------------------------------------------------------------------- what it keeps


@pytest.mark.parametrize(
    "code",
    [
        "import torch\nopt = torch.optim.Adam(p)\n",
        "import torch.optim as optim\nopt = optim.Adam(p)\n",
        "from torch import optim\nopt = optim.SGD(p, lr=0.1)\n",
        "from torch.optim import Adam as A\nopt = A(p)\n",
        "def f(p):\n    from torch.optim import Adam\n    return Adam(p)\n",
        "import torch\ntorch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n",
        "import torch\nopt = torch.optim.Adam(p).step()\n",  # the inner call
    ],
    ids=[
        "absolute",
        "module-alias",
        "from-torch-optim",
        "name-alias",
        "function-level",
        "clip",
        "called-then-member",
    ],
)
def test_kept_a_call_resolving_to_a_wired_call(code: str) -> None:
    assert keeps(code)


# A wired call API the file names but never calls: the engine rewrites only calls whose function
# resolves through the imports to the API, and changes no other reference to it (torch's
# ``class GradScaler(torch.amp.GradScaler)``, skorch's ``NeuralNet(optimizer=torch.optim.Adam)``).
TARGET_COMMANDS = {"optax": TorchToOptax, "nnx": TorchToNNX}
UNCALLED_API_DROPPED = {
    "assigned": "import torch.optim\nmake = torch.optim.Adam\n",
    "assigned-then-called": "import torch.optim\nmake = torch.optim.Adam\nopt = make(p)\n",
    "keyword": "import torch\nnet = Net(optimizer=torch.optim.Adam)\n",
    "dict-keys": "from torch import optim\nD = {optim.Adam: 1, optim.SGD: 2}\n",
    "base-class": "import torch\nclass G(torch.amp.GradScaler):\n    pass\n",
    "partial": (
        "import functools, torch\nA = functools.partial(torch.optim.Adam, lr=1)\nopt = A(p)\n"
    ),
    "default": "import torch\ndef f(p, ctor=torch.optim.SGD):\n    return ctor(p, lr=0.1)\n",
}
UNCALLED_API_KEPT = {  # the twins: the same names, called
    "assigned": "import torch.optim\nmake = torch.optim.Adam(p)\n",
    "keyword": "import torch\nnet = Net(optimizer=torch.optim.Adam(p))\n",
    "partial": "import functools, torch\nA = functools.partial(torch.optim.Adam(p).step)\n",
}


@pytest.mark.parametrize(
    "code",
    [
        "import torch\ndef f(opt: torch.optim.Optimizer):\n    opt.step()\n",
        "import torch\ndef f(opt):\n    opt.zero_grad()\n",  # the name guess: probable
        "import torch\ndef f(scheduler_main):\n    scheduler_main.step()\n",
        "import torch\nclass T:\n    def f(self, lr_opt):\n        return lr_opt.state_dict()\n",
        # trap twins of the method's first parameter, which the engine never types:
        "import torch\nclass T:\n    def f(self: torch.optim.Optimizer):\n        self.step()\n",
        "import torch\nclass T:\n    def f(optimizer):\n        optimizer.step()\n",
        "from torch.optim import Optimizer\nclass T(Optimizer):\n"
        "    def f(self):\n        self = build()\n        return self.param_groups\n"
        "def h(o: Optimizer): ...\n",
        "from torch.optim import Optimizer\nclass T(Optimizer):\n"
        "    def f(self):\n        return self.param_groups\ndef g(self):\n    self.step()\n"
        "def h(o: Optimizer): ...\n",
        "from torch.optim import Optimizer\nclass T:\n"
        "    @staticmethod\n    def f(o):\n        o.step()\ndef g(x: Optimizer): ...\n",
    ],
    ids=[
        "annotation",
        "name-guess",
        "scheduler-name-guess",
        "member-name-guess",
        "annotated-method-self",
        "method-self-named-like-an-optimizer",
        "method-self-rebound",
        "self-also-a-function-parameter",
        "first-parameter-of-a-staticmethod",
    ],
)
def test_kept_a_wired_member_with_a_possible_receiver_type(code: str) -> None:
    assert keeps(code)


@pytest.mark.parametrize(
    "code",
    [
        "import torch\ndef f(optimizer, env):\n    env.step()\n    optimizer.zero_grad()\n",
        "import torch\ndef f(optimizer):\n    def g():\n        optimizer.step()\n    g()\n",
    ],
    ids=["guess-and-another-receiver", "guess-read-in-a-closure"],
)
def test_kept_a_guessed_parameter_receiving_a_member(code: str) -> None:
    """The twins of the guessed parameters that receive nothing: the engine converts them."""
    stage_and_engine_agree(code, "optax", kept=True)


@pytest.mark.parametrize(
    "code",
    [
        "import torch\nopt = torch.optim.Adam(p  # unbalanced: ast fails\n",
        "import torch\n# ml_switcheroo: ESCAPE-BEGIN torch.optim.Optimizer.step\nx.step()\n",
    ],
    ids=["syntax-error", "escape-marker"],
)
def test_kept_what_the_pass_cannot_read(code: str) -> None:
    assert keeps(code)


# Star imports: libcst's scopes bind no name through one; the engine resolves a name bound
# nowhere else through the file's one star import of a module of the map's `star_exports`
# (`from torch.optim import *`: torch's `__all__`), and nothing through another (torch's own
# ``from torch._C import *``) or through one of several.
STAR_IMPORT_DROPPED = {
    "module": "from torch import *\nopt = optim.SGD(p, lr=0.1)\n",
    "annotation": "from torch import *\ndef f(x: Tensor):\n    x.backward()\n",
    "two-stars": "import torch\nfrom torch.optim import *\nfrom mylib import *\nopt = Adam(p)\n",
    "bound-too": "import torch\nfrom torch.optim import *\nAdam = make()\nopt = Adam(p)\n",
    "not-exported": "import torch\nfrom torch.optim import *\nopt = adam.Adam(p)\n",
}
STAR_IMPORT_KEPT = {
    "call": "import torch\nfrom torch.optim import *\nopt = torch.optim.Adam(p)\n",
    "exported-name": "import torch\nfrom torch.optim import *\nopt = Adam(p)\nopt.step()\n",
    "exported-module": (
        "import torch\nfrom torch.optim import *\nopt = SGD(p, lr=0.1)\n"
        "sched = lr_scheduler.StepLR(opt, 10)\n"
    ),
    "name-guess": "from torch import *\ndef f(optimizer):\n    optimizer.zero_grad()\n",
}


# Names the engine cannot resolve to a wired call (an API never called, a name only a star
# import could bind): dropped, and unchanged; their twins kept, and changed.
UNRESOLVED_DROPPED = {
    **{f"uncalled-{name}": code for name, code in UNCALLED_API_DROPPED.items()},
    **{f"star-{name}": code for name, code in STAR_IMPORT_DROPPED.items()},
}
RESOLVED_KEPT = {
    **{f"called-{name}": code for name, code in UNCALLED_API_KEPT.items()},
    **{f"star-{name}": code for name, code in STAR_IMPORT_KEPT.items()},
}


def stage_and_engine_agree(code: str, target: str, kept: bool) -> None:
    """The stage keeps ``code`` exactly when the engine of ``target`` changes it."""
    assert replace(stage(), target_root=target).keeps(code.encode("utf-8")) is kept
    assert (convert(code, TARGET_COMMANDS[target]) != code) is kept


@pytest.mark.parametrize("target", ["optax", "nnx"])
@pytest.mark.parametrize("name", sorted(UNRESOLVED_DROPPED))
def test_dropped_a_name_the_engine_cannot_resolve_to_a_wired_call(name: str, target: str) -> None:
    stage_and_engine_agree(UNRESOLVED_DROPPED[name], target, kept=False)


@pytest.mark.parametrize("target", ["optax", "nnx"])
@pytest.mark.parametrize("name", sorted(RESOLVED_KEPT))
def test_kept_the_twin_that_calls_a_wired_api(name: str, target: str) -> None:
    stage_and_engine_agree(RESOLVED_KEPT[name], target, kept=True)


# Code run from strings and modules imported by name: the engine reads neither (it resolves
# names through the file's import statements only), so they neither keep nor drop a file.
DYNAMIC_CODE_DROPPED = {
    "__import__": "import torch\noptim = __import__('torch.optim').optim\nopt = optim.Adam(p)\nopt.step()\n",
    "importlib": (
        "import torch, importlib\noptim = importlib.import_module('torch.optim')\n"
        "opt = optim.Adam(p)\nopt.step()\n"
    ),
    "from-importlib": (
        "import torch\nfrom importlib import import_module\n"
        "opt = import_module('torch.optim').SGD(p, lr=0.1)\nopt.zero_grad()\n"
    ),
    "exec": "import torch\nexec('opt = torch.optim.Adam(p)')\nopt.step()\n",
    "eval": "import torch\nAdam = eval('torch.optim.Adam')\nopt = Adam(p)\nopt.step()\n",
}
DYNAMIC_CODE_KEPT = {
    "exec": "import torch\nexec(source)\nopt = torch.optim.Adam(model.parameters())\n",
    "eval": "import torch\nlr = eval('0.1')\nopt = torch.optim.SGD(model.parameters(), lr=lr)\n",
    "importlib": (
        "import importlib\nimport torch\nmod = importlib.import_module('mylib')\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    ),
    "__import__": (
        "import torch\nnp = __import__('numpy')\ndef f(x: torch.Tensor):\n    x.backward()\n"
    ),
}


@pytest.mark.parametrize("target", ["optax", "nnx"])
@pytest.mark.parametrize("name", sorted(DYNAMIC_CODE_DROPPED))
def test_dropped_names_resolved_only_by_running_code(name: str, target: str) -> None:
    code = DYNAMIC_CODE_DROPPED[name]
    assert not replace(stage(), target_root=target).keeps(code.encode("utf-8"))
    assert convert(code, TARGET_COMMANDS[target]) == code  # the engine does not follow them


@pytest.mark.parametrize("target", ["optax", "nnx"])
@pytest.mark.parametrize("name", sorted(DYNAMIC_CODE_KEPT))
def test_kept_a_wired_api_beside_code_run_from_strings(name: str, target: str) -> None:
    code = DYNAMIC_CODE_KEPT[name]
    assert replace(stage(), target_root=target).keeps(code.encode("utf-8"))
    assert convert(code, TARGET_COMMANDS[target]) != code  # the twin the engine changes


# --------------------------------------------------------------------------- trap twins: dropped

# timm's optimizers: a subclass of torch's Optimizer reads its own state through `self`.
OPTIMIZER_SUBCLASS = """\
import torch
from torch.optim.optimizer import Optimizer


class Lion(Optimizer):
    def __init__(self, params, lr=1e-4):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if len(state) == 0:
                    state["exp_avg"] = torch.zeros_like(p)
                p.add_(state["exp_avg"], alpha=-group["lr"])
        return self.defaults
"""


@pytest.mark.parametrize(
    "code",
    [
        "import torch\nfrom .optim import Adam\nopt = Adam(p)\n",  # relative: not torch's
        "from . import optim\nimport torch\nopt = optim.Adam(p)\n",
        "import torch\nclass Adam:\n    pass\nx = Adam\n",  # no import binds it
        "import torch\nfrom mylib import optim\nopt = optim.Adam(p)\n",
        "import torch\nenv.step()\nx = torch.zeros(3)\n",  # a step with no optimizer type
        "import torch\ndef f(env):\n    env.step()\n",  # a parameter the guess does not name
        "import numpy as np\ndef f(opt):\n    opt.step()\nx = np.optim\n",  # no torch import
        "import torch\nmodel.eval()\nopt.step()\n",  # `.eval()` is a method, not eval()
        "import torch\ndef f(x: torch.Tensor, o):\n    o.step()\n",  # a Tensor has no step()
        "import torch\ndef f(opt_state):\n    opt_state.backward()\n",  # guessed, no backward
        "import torch\ndef f(optimizer, env):\n    env.step()\n",  # the guess reads nothing
        "import torch\ndef f(optimizer):\n    o = optimizer\n    o.step()\n",
        "import torch\nclass T:\n    def __init__(self, optimizer):\n        self.o = optimizer\n"
        "    def f(self):\n        self.o.step()\n",
        OPTIMIZER_SUBCLASS,  # members read on `self` only: the engine never types it
        OPTIMIZER_SUBCLASS.replace("return self.defaults", "return super().step(closure)"),
    ],
    ids=[
        "relative-from",
        "relative-module",
        "local-class",
        "other-package",
        "untyped-receiver",
        "unguessed-parameter",
        "guess-without-torch",
        "eval-method",
        "member-of-another-type",
        "guess-of-another-type",
        "guess-receives-no-member",
        "guess-assigned-to-a-name",
        "guess-stored-in-self",
        "members-of-a-methods-self",
        "members-of-self-and-super",
    ],
)
def test_dropped_nothing_can_resolve(code: str) -> None:
    data = textwrap.dedent(code).encode("utf-8")
    assert not stage().keeps(data)
    assert convert(textwrap.dedent(code)) == textwrap.dedent(code)  # and the codemod agrees


# The engine types a receiver only when it is a name or ``self.x``, by a call of a map API
# (a constructor) or by a parameter's annotation: a type named anywhere else types nothing.
UNTYPED_RECEIVERS_DROPPED = {
    "isinstance-check": (
        "import torch\ndef f(x):\n    assert isinstance(x, torch.Tensor)\n    x.backward()\n"
    ),
    "annotated-assignment": "import torch\nloss: torch.Tensor = compute()\nloss.backward()\n",
    "string-annotation": "import torch\ndef f(x: 'torch.Tensor'):\n    x.backward()\n",
    "base-class": (
        "from torch.optim import Optimizer\nclass Lion(Optimizer):\n    pass\n"
        "def f(o):\n    o.step()\n"
    ),
    "call-receiver": "import torch\ndef f(x: torch.Tensor):\n    x.sum().backward()\n",
    "expression-receivers": (
        "import torch\ndef f(x: torch.Tensor):\n    (x * 2).backward()\n    [x][0].backward()\n"
    ),
    "attribute-of-an-attribute": (
        "import torch\ndef f(x: torch.Tensor, m):\n    m.out.loss.backward()\n"
    ),
    "attribute-of-super": (
        "from torch.optim import Optimizer\nclass T(Optimizer):\n"
        "    def f(self):\n        return super().base.param_groups\n"
    ),
    "super-rebound": (
        "from torch.optim import Optimizer\nsuper = make\nclass T(Optimizer):\n"
        "    def f(self):\n        return super().param_groups\n"
    ),
}
TYPED_RECEIVERS_KEPT = {
    "annotated-parameter": "import torch\ndef f(x: torch.Tensor):\n    x.backward()\n",
    "optional-annotation": (
        "from typing import Optional\nimport torch\n"
        "def f(x: Optional[torch.Tensor]):\n    x.backward()\n"
    ),
    "imported-type": "from torch import Tensor\ndef f(x: Tensor):\n    x.backward()\n",
    "alias-annotation": (
        "from torch.optim.optimizer import Optimizer\ndef f(o: Optimizer):\n    o.zero_grad()\n"
    ),
}


@pytest.mark.parametrize("target", ["optax", "nnx"])
@pytest.mark.parametrize("name", sorted(UNTYPED_RECEIVERS_DROPPED))
def test_dropped_a_member_on_a_receiver_the_engine_cannot_type(name: str, target: str) -> None:
    code = UNTYPED_RECEIVERS_DROPPED[name]
    assert not replace(stage(), target_root=target).keeps(code.encode("utf-8"))
    assert convert(code, TARGET_COMMANDS[target]) == code


@pytest.mark.parametrize("target", ["optax", "nnx"])
@pytest.mark.parametrize("name", sorted(TYPED_RECEIVERS_KEPT))
def test_kept_a_member_on_a_parameter_annotated_with_its_type(name: str, target: str) -> None:
    code = TYPED_RECEIVERS_KEPT[name]
    assert replace(stage(), target_root=target).keeps(code.encode("utf-8"))
    assert convert(code, TARGET_COMMANDS[target]) != code  # the twin the engine changes


# A ``type`` entry's call (``roles.TYPE``: GradScaler; NNX's model wrappers) changes nothing by
# itself: neither stage keeps a file for it alone. Its twins are kept: the type's member read on
# its value, and (a wrapper) the file with an optimizer constructor that translates.
def type_calls(target: str) -> list[str]:
    """Every ``type`` entry of ``target``'s map that is called (not a member)."""
    apis = load_semantic_map((), TARGETS[target]).apis
    return sorted(name for name, e in apis.items() if e.role == roles.TYPE and not e.method)


def both_stages_keep(code: str, target: str) -> bool:
    """The byte filter and the ``ast`` stage of ``target``'s map both keep ``code``."""
    semantic_map = load_semantic_map((), TARGETS[target])
    data = code.encode("utf-8")
    stage_of = replace(second_stage_for(semantic_map), target_root=target)
    return prefilter_for(semantic_map).matches(data) and stage_of.keeps(data)


@pytest.mark.parametrize("target", ["optax", "nnx"])
def test_dropped_a_type_call_alone(target: str) -> None:
    assert type_calls(target), "the map lists type entries"
    for api in type_calls(target):
        code = f"import torch\nimport {api.rpartition('.')[0]}\nm = {api}(model)\n"
        assert not both_stages_keep(code, target), api
        assert convert(code, TARGET_COMMANDS[target]) == code, api


@pytest.mark.parametrize("target", ["optax", "nnx"])
def test_kept_a_type_calls_member(target: str) -> None:
    code = "import torch\nscaler = torch.amp.GradScaler()\nscaler.step(opt)\n"
    assert both_stages_keep(code, target)
    assert convert(code, TARGET_COMMANDS[target]) != code


def test_kept_a_wrapper_beside_a_constructor_and_it_escapes() -> None:
    code = (
        "import torch\nmodel = torch.compile(model)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    )
    assert both_stages_keep(code, "nnx")
    assert "ESCAPE-BEGIN torch.compile" in convert(code, TorchToNNX)


# A member whose entry is ``harmless_untranslated`` (``opt.param_groups``, ``opt.state``): its hook
# keeps it unless the receiver is translated, and a receiver guessed from its name never is. So
# the name guess alone does not keep a file for it; its twins (the same read on an annotated
# parameter, another member on the guessed one) are kept, and changed.
GUESSED_NAMES = {
    "torch.optim.Optimizer": "optimizer",
    "torch.optim.lr_scheduler.LRScheduler": "scheduler",
}


def harmless_reads(target: str) -> list[tuple[str, str]]:
    """``(type, attribute)`` of every ``harmless_untranslated`` entry of ``target``'s map."""
    apis = load_semantic_map((), TARGETS[target]).apis
    found = {(e.receiver_type, e.method) for e in apis.values() if e.harmless_untranslated}
    return sorted(found)  # type: ignore[arg-type]


@pytest.mark.parametrize("target", ["optax", "nnx"])
def test_dropped_a_harmless_read_on_a_guessed_parameter(target: str) -> None:
    reads = harmless_reads(target)
    assert ("torch.optim.Optimizer", "param_groups") in reads
    types = load_semantic_map((), TARGETS[target]).types
    for owner, attribute in reads:
        name = GUESSED_NAMES[owner]
        assert types[owner].parameter_names.fullmatch(name)  # type: ignore[union-attr]
        code = f"import torch\ndef f({name}):\n    return {name}.{attribute}\n"
        assert not both_stages_keep(code, target), attribute
        assert convert(code, TARGET_COMMANDS[target]) == code, attribute


@pytest.mark.parametrize("target", ["optax", "nnx"])
def test_kept_a_harmless_read_on_an_annotated_parameter(target: str) -> None:
    for owner, attribute in harmless_reads(target):
        code = f"import torch\ndef f(o: {owner}):\n    return o.{attribute}\n"
        assert both_stages_keep(code, target), attribute
        assert convert(code, TARGET_COMMANDS[target]) != code, attribute


@pytest.mark.parametrize("target", ["optax", "nnx"])
def test_kept_another_member_on_the_guessed_parameter(target: str) -> None:
    code = "import torch\ndef f(optimizer):\n    g = optimizer.param_groups\n    optimizer.zero_grad()\n"
    assert both_stages_keep(code, target)
    assert convert(code, TARGET_COMMANDS[target]) != code


def test_harmless_untranslated_is_refused_on_a_call_entry(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    text = "apis:\n  torch.optim.Optimizer.zero_grad:\n    role: zero_grad\n"
    text += '    hook: optimizer_zero_grad\n    signature: "set_to_none=True"\n'
    path.write_text(text + "    harmless_untranslated: true\n", encoding="utf-8")
    with pytest.raises(SemanticMapError, match="true only on an attribute entry"):
        load_semantic_map([path])


# A type known only from a parameter's annotation reaches a name whose binding is a parameter
# (that one, or one this file's callers pass it to) and ``self.x`` stored from one: a member read
# on a local name, or on an attribute of one, is never typed by it.
ANNOTATION_UNREACHED_DROPPED = {
    "local-copy": "import torch\ndef f(x: torch.Tensor):\n    y = x\n    y.backward()\n",
    "attribute-of-a-local": (
        "import torch\ndef f(x: torch.Tensor):\n    fake = make()\n    fake.cls.backward(x)\n"
    ),
    "loop-target": (
        "from torch.optim import Optimizer\ndef f(o: Optimizer, opts):\n"
        "    for p in opts:\n        p.zero_grad()\n"
    ),
    # a name spelled as a parameter of another function: its binding is no parameter here
    "parameter-of-another-function": (
        "import torch\ndef f(x: torch.Tensor):\n    pass\ndef g():\n    x.backward()\n"
    ),
    # `self.o` is typed only by what the class's constructions in this file pass to its
    # `__init__`: a parameter stored in another method, or no construction, types nothing
    "stored-on-self-outside-init": (
        "from torch.optim import Optimizer\nclass T:\n"
        "    def f(self, o: Optimizer):\n        self.o = o\n        self.o.step()\n"
    ),
    "stored-on-self-never-constructed": (
        "from torch.optim import Optimizer\nclass T:\n"
        "    def __init__(self, o: Optimizer):\n        self.o = o\n"
        "    def run(self):\n        self.o.zero_grad()\n"
    ),
    "stored-on-self-constructed-through-a-module": (
        "import m\nfrom torch.optim import Optimizer\nclass T:\n"
        "    def __init__(self, o):\n        self.o = o\n"
        "    def run(self):\n        self.o.zero_grad()\n"
        "def f(opt: Optimizer):\n    return m.T(opt)\n"
    ),
}
ANNOTATION_REACHED_KEPT = {
    "the-parameter": "import torch\ndef f(x: torch.Tensor):\n    y = x\n    x.backward()\n",
    "parameter-of-an-enclosing-function": (
        "import torch\ndef f(x: torch.Tensor):\n    def g():\n        x.backward()\n    g()\n"
    ),
    "through-a-caller": (
        "import torch\ndef g(loss):\n    loss.backward()\ndef f(x: torch.Tensor):\n    g(x)\n"
    ),
    "stored-on-self": (
        "from torch.optim import Optimizer\nclass T:\n"
        "    def __init__(self, o):\n        self.o = o\n"
        "    def run(self):\n        self.o.zero_grad()\n"
        "def f(opt: Optimizer):\n    return T(opt)\n"
    ),
}


ANNOTATION_CASES = {
    **{f"dropped-{name}": (code, False) for name, code in ANNOTATION_UNREACHED_DROPPED.items()},
    **{f"kept-{name}": (code, True) for name, code in ANNOTATION_REACHED_KEPT.items()},
}


@pytest.mark.parametrize("target", ["optax", "nnx"])
@pytest.mark.parametrize("name", sorted(ANNOTATION_CASES))
def test_an_annotation_keeps_a_file_only_where_its_type_reaches(name: str, target: str) -> None:
    code, kept = ANNOTATION_CASES[name]
    stage_and_engine_agree(code, target, kept=kept)


def test_a_single_command_keeps_its_own_members_only() -> None:
    code = b"import torch\nopt = torch.optim.Adam(p)\nopt.step()\nenv.zero_grad\n"
    assert stage(StripZeroGrad.HOOKS).keeps(code)  # a zero_grad, a constructor (a type)
    assert not stage(StripZeroGrad.HOOKS).keeps(code.replace(b"zero_grad", b"reset"))


def test_a_user_map_extends_the_stage(tmp_path: Path) -> None:
    path = tmp_path / "lion.yaml"
    path.write_text(LION_MAP, encoding="utf-8")
    code = b"from mylib.optim import Lion\nopt = Lion(params, lr=3e-4)\n"
    assert not stage().keeps(code)
    assert second_stage_for(load_semantic_map([path])).keeps(code)


# --------------------------------------------------------------------------- the cross-file seam


def test_the_cross_file_seam_says_no_for_a_file_no_other_file_calls(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import torch\n")
    path = str(tmp_path / "a.py")
    assert second_stage.cross_file_facts_may_change(path, load_semantic_map()) is False


def test_the_cross_file_seam_says_yes_for_a_callee_of_a_translated_optimizer(
    tmp_path: Path,
) -> None:
    callee = "def train_one_epoch(optimizer):\n    optimizer.zero_grad()\n    optimizer.step()\n"
    main = (
        "import torch\nfrom pkg.engine import train_one_epoch\n"
        "opt = torch.optim.SGD(params, lr=0.1)\ntrain_one_epoch(opt)\n"
    )
    package = write_package(tmp_path, {"engine.py": callee, "main.py": main}) / "pkg"
    engine = str(package / "engine.py")
    assert not stage().keeps_by_itself((package / "engine.py").read_bytes())
    assert second_stage.cross_file_facts_may_change(engine, load_semantic_map()) is True
    assert stage().keeps((package / "engine.py").read_bytes(), engine)


def test_a_file_is_kept_when_the_cross_file_seam_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    code = b"import torch\ndef f(env):\n    env.step()\n"
    assert not stage().keeps(code, "train.py")
    asked: list[str | None] = []

    def index_says_yes(path: str | None, *facts: object) -> bool:
        asked.append(path)
        return True

    monkeypatch.setattr(second_stage, "cross_file_facts_may_change", index_says_yes)
    assert stage().keeps(code, "train.py")
    assert asked == ["train.py"]


# --------------------------------------------------------------------------- runners


def test_the_libcst_command_returns_a_dropped_file_untouched() -> None:
    code = "import torch\nfrom .optim import Adam\nopt = Adam(p)\nopt.step()\n"
    command = TorchToOptax(CodemodContext(filename="x.py"))
    assert command.proved_unchanged(code.encode()) is True
    tree_ = cst.parse_module(code)
    assert command.transform_module(tree_) is tree_


def test_convert_counts_a_dropped_file_as_pre_filtered_and_no_prefilter_parses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dropped = "import torch\nfrom .optim import Adam\nopt = Adam(p)\n"
    tree(tmp_path, {"pkg/a.py": dropped, "pkg/b.py": "import os\n"})
    code, _, err = run(capsys, "--check", "--no-cache", "pkg", cwd=tmp_path)
    assert code == 0
    assert summary_numbers(err)["pre-filtered out"] == 2
    assert summary_numbers(err)["parsed"] == 0
    code, _, err = run(capsys, "--check", "--no-cache", "--no-prefilter", "pkg", cwd=tmp_path)
    assert code == 0
    assert summary_numbers(err)["parsed"] == 2


def test_convert_caches_the_stage_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dropped = "import torch\nfrom .optim import Adam\nopt = Adam(p)\n"
    tree(tmp_path, {"pkg/a.py": dropped})
    for _ in range(2):
        code, _, err = run(capsys, "--check", "--cache", "cache", "pkg", cwd=tmp_path)
        assert code == 0 and summary_numbers(err)["pre-filtered out"] == 1


# --------------------------------------------------------------------------- soundness


def test_test_suite_samples_every_dropped_sample_is_unchanged() -> None:
    samples = _test_samples()
    assert len(samples) > 20
    semantic_map = load_semantic_map()
    stages = {c: second_stage_for(semantic_map, c.HOOKS) for c in COMMANDS}
    dropped = 0
    for code in samples:
        data = code.encode("utf-8")
        for command in COMMANDS:
            if not stages[command].keeps(data):
                assert convert(code, command) == code, (command.__name__, code)
                dropped += 1
        if not stages[TorchToOptax].keeps(data):
            assert convert(code, TorchToOptax, exact=True) == code, code
            assert convert(code, TorchToOptax, steps_per_epoch="100") == code, code
    assert dropped  # the stage did rule samples out


def test_examples_and_fixtures_every_dropped_file_is_unchanged() -> None:
    files = _project_files()
    assert files
    for path in files:
        code = path.read_text(encoding="utf-8")
        for command in COMMANDS:
            if not stage(command.HOOKS).keeps(path.read_bytes()):
                assert convert(code, command) == code, (path, command.__name__)


_STAGE_IMPORTS = [
    *_IMPORTS,
    "from .optim import Adam",
    "from torch.optim import lr_scheduler",
    "import torch.optim.lr_scheduler as ls",
]
_STAGE_LINES = [
    *_LINES,
    "sched = lr_scheduler.StepLR(opt, 10)",
    "sched = ls.ExponentialLR(opt, 0.9)",
    "sched.step()",
    "torch.nn.utils.clip_grad_norm_(params, 1.0)",
    "scheduler.step()",
    "x = opt.param_groups[0]['lr']",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    imports=st.lists(st.sampled_from(_STAGE_IMPORTS), max_size=3),
    body=st.lists(st.sampled_from(_STAGE_LINES), min_size=1, max_size=5),
    in_function=st.booleans(),
)
def test_generated_modules_every_dropped_module_is_unchanged(
    imports: list[str], body: list[str], in_function: bool
) -> None:
    if in_function:
        params = "model, params, optimizer, loss, env, scheduler, opt"
        lines = [f"def train({params}):", *("    " + b for b in body)]
    else:
        lines = body
    code = "\n".join([*imports, *lines]) + "\n"
    if not stage().keeps(code.encode("utf-8")):
        assert convert(code) == code, code


def test_libcsts_cli_runner_gets_a_dropped_file_back_as_its_own_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from libcst.codemod._cli import ExecutionConfig, _execute_transform

    def no_code_generation(self: cst.Module, node: cst.CSTNode) -> str:
        raise AssertionError("the tree was written out")

    monkeypatch.setattr(cst.Module, "code_for_node", no_code_generation)

    data = "# -*- coding: latin-1 -*-\nimport torch\nfrom .optim import Adam\nx = 'caf\xe9'\n"
    path = tmp_path / "dropped.py"
    path.write_bytes(data.encode("latin-1"))
    config = ExecutionConfig(unified_diff=1, format_code=False)
    result = _execute_transform(TorchToOptax, str(path), config, {}, {}, None)
    assert result.changed is False and result.transform_result.code == ""
    assert path.read_bytes() == data.encode("latin-1")


def test_the_verbatim_tree_is_the_tree_with_the_files_bytes() -> None:
    from ml_switcheroo.rewrite.command_support import verbatim

    data = "# -*- coding: latin-1 -*-\nx = 'caf\xe9'\n".encode("latin-1")
    tree_ = cst.parse_module(data)
    copy = verbatim(tree_, data)
    assert copy.bytes == data and copy.encoding == tree_.encoding
    assert copy.code == tree_.code and copy.body == tree_.body


def test_convert_with_two_jobs_drops_the_same_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_convert_cli import TRAIN

    dropped = "import torch\nfrom .optim import Adam\nopt = Adam(p)\n"
    layout = {f"pkg/d{i}.py": dropped for i in range(5)}
    tree(tmp_path, {**layout, "pkg/train.py": TRAIN})
    code, _, err = run(capsys, "--check", "--no-cache", "-j", "2", "pkg", cwd=tmp_path)
    assert code == 1
    numbers = summary_numbers(err)
    assert numbers["pre-filtered out"] == 5 and numbers["parsed"] == 1
    assert numbers["would change"] == 1


# --------------------------------------------------------------------------- soundness across files

_ENGINE = """\
def train_one_epoch(model, optimizer, loader):
    for batch in loader:
        optimizer.zero_grad()
        model(batch).backward()
        optimizer.step()
"""
_SGD_CALLER = """\
import torch
from pkg.engine import train_one_epoch

def main(model, loader):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train_one_epoch(model, opt, loader)
"""
_BUILDER = """\
import torch

def build_optimizer(model, lr):
    return torch.optim.AdamW(model.parameters(), lr=lr)
"""
_FIT = """\
from pkg.builders import build_optimizer

def fit(model, loader):
    opt = build_optimizer(model, 1e-3)
    for batch in loader:
        opt.zero_grad()
        model(batch).backward()
        opt.step()
"""
_TWO_HOPS = (
    _ENGINE
    + "\n\ndef fit(model, optimizer, loader):\n    train_one_epoch(model, optimizer, loader)\n"
)
_FIT_CALLER = _SGD_CALLER.replace("train_one_epoch", "fit")
_UNCALLED_STEP = "def rollout(env, steps):\n    for _ in range(steps):\n        env.step()\n"

CROSS_FILE_REPOSITORIES: dict[str, dict[str, str]] = {
    "parameter-across-files": {"engine.py": _ENGINE, "main.py": _SGD_CALLER},
    "builder-across-files": {"builders.py": _BUILDER, "train.py": _FIT},
    "passed-on-through-two-functions": {"engine.py": _TWO_HOPS, "main.py": _FIT_CALLER},
    "passed-on-through-three-files": {
        "engine.py": _ENGINE,
        "loop.py": "from pkg.engine import train_one_epoch\n\n"
        "def fit(model, optimizer, loader):\n    train_one_epoch(model, optimizer, loader)\n",
        "main.py": _SGD_CALLER.replace(
            "pkg.engine import train_one_epoch", "pkg.loop import fit"
        ).replace("train_one_epoch(", "fit("),
    },
    "caller-converted-by-an-earlier-run": {
        "engine.py": _ENGINE,
        "main.py": "import optax\nfrom pkg.engine import train_one_epoch\n\n"
        "def main(model, loader):\n    opt = optax.sgd(0.1)\n    train_one_epoch(model, opt, loader)\n",
    },
    # trap twins: a step in another file that no translated optimizer reaches
    "caller-passes-lbfgs": {
        "engine.py": _ENGINE,
        "main.py": _SGD_CALLER.replace(
            "SGD(model.parameters(), lr=0.1)", "LBFGS(model.parameters())"
        ),
    },
    "callee-stores-the-optimizer": {
        "engine.py": _ENGINE + "    STATE['opt'] = optimizer\n",
        "main.py": _SGD_CALLER,
    },
    "caller-passes-an-unknown-value": {
        "engine.py": _ENGINE,
        "main.py": "import torch\nfrom pkg.engine import train_one_epoch\n"
        "def main(model, opt, loader):\n    train_one_epoch(model, opt, loader)\n",
    },
    "builder-returns-no-optimizer": {
        "builders.py": _BUILDER.replace(
            "torch.optim.AdamW(model.parameters(), lr=lr)", "torch.zeros(3)"
        ),
        "train.py": _FIT,
    },
    "builder-wrapped-by-a-function-of-the-caller": {
        "builders.py": _BUILDER,
        "train.py": _FIT.replace(
            "\ndef fit", "\ndef make(model):\n    return build_optimizer(model, 1e-3)\n\n\ndef fit"
        ).replace("opt = build_optimizer(model, 1e-3)", "opt = make(model)"),
    },
    "a-step-no-other-file-reaches": {"env.py": _UNCALLED_STEP, "main.py": _SGD_CALLER},
}


def _changed_files(
    root: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[set[str], str]:
    """The files ``convert --check`` over ``root/pkg`` finds would change, and its diff."""
    report = root / "report.json"
    code, out, _ = run(capsys, "--no-cache", "--report", str(report), *extra, "pkg", cwd=root)
    assert code == 0
    changed = {
        Path(f["file"]).name for f in json.loads(report.read_text())["files"] if f["changed"]
    }
    return changed, out


def _kept_across_files(root: Path) -> set[str]:
    """The files the byte filter and the ``ast`` stage drop on their own bytes that the
    cross-file question keeps."""
    semantic_map = load_semantic_map()
    prefilter = prefilter_for(semantic_map, TorchToOptax.HOOKS)
    kept = set()
    for path in sorted((root / "pkg").glob("*.py")):
        data = path.read_bytes()
        if prefilter.matches(data) and stage(TorchToOptax.HOOKS).keeps_by_itself(data):
            continue
        if second_stage.cross_file_facts_may_change(str(path), semantic_map, None, "optax"):
            kept.add(path.name)
    return kept


def _own_bytes_dropped(root: Path) -> set[str]:
    semantic_map = load_semantic_map()
    prefilter = prefilter_for(semantic_map, TorchToOptax.HOOKS)
    return {
        path.name
        for path in (root / "pkg").glob("*.py")
        if not (
            prefilter.matches(data := path.read_bytes())
            and stage(TorchToOptax.HOOKS).keeps_by_itself(data)
        )
    }


@pytest.mark.parametrize("name", sorted(CROSS_FILE_REPOSITORIES))
def test_across_files_the_stages_change_the_same_files_as_no_prefilter(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(
        tmp_path,
        {f"pkg/{n}": t for n, t in {"__init__.py": "", **CROSS_FILE_REPOSITORIES[name]}.items()},
    )
    assert _changed_files(tmp_path, capsys) == _changed_files(tmp_path, capsys, "--no-prefilter")


@pytest.mark.parametrize("name", sorted(CROSS_FILE_REPOSITORIES))
def test_across_files_the_question_keeps_exactly_the_dropped_files_that_change(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(
        tmp_path,
        {f"pkg/{n}": t for n, t in {"__init__.py": "", **CROSS_FILE_REPOSITORIES[name]}.items()},
    )
    changed, _ = _changed_files(tmp_path, capsys, "--no-prefilter")
    assert _kept_across_files(tmp_path) == changed & _own_bytes_dropped(tmp_path)


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("parameter-across-files", {"engine.py"}),
        ("builder-across-files", {"train.py"}),
        ("passed-on-through-two-functions", {"engine.py"}),
        ("passed-on-through-three-files", {"engine.py"}),
        ("caller-converted-by-an-earlier-run", {"engine.py"}),
    ],
)
def test_across_files_the_file_without_torch_is_kept_by_the_question(
    name: str, kept: set[str], tmp_path: Path
) -> None:
    tree(
        tmp_path,
        {f"pkg/{n}": t for n, t in {"__init__.py": "", **CROSS_FILE_REPOSITORIES[name]}.items()},
    )
    assert _kept_across_files(tmp_path) == kept


def test_across_three_files_the_cache_sees_a_change_in_the_first_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = CROSS_FILE_REPOSITORIES["passed-on-through-three-files"]
    tree(tmp_path, {f"pkg/{n}": t for n, t in {"__init__.py": "", **files}.items()})
    code, _, err = run(capsys, "--check", "--cache", "cache", "pkg", cwd=tmp_path)
    assert code == 1 and "would convert pkg/engine.py" in err
    lbfgs = files["main.py"].replace("SGD(model.parameters(), lr=0.1)", "LBFGS(model.parameters())")
    (tmp_path / "pkg" / "main.py").write_text(lbfgs, encoding="utf-8")
    code, _, err = run(capsys, "--check", "--cache", "cache", "pkg", cwd=tmp_path)
    assert "would convert pkg/engine.py" not in err


# A constructor types a value only when called (``resolver._type_of_value``): one only named
# (handed to a wrapper as a class, listed in a tuple, bound to another name and called through
# it) types nothing, so a member read beside it does not keep the file. The twins: the same
# constructor called, and a parameter annotated with it (``_param_type`` reads a constructor
# in an annotation as its type), are kept and changed.
NAMED_CONSTRUCTORS_DROPPED = {
    "passed-as-a-class": (
        "import torch\ndef f(params, loss):\n"
        "    o = make_optimizer(torch.optim.SGD, params, lr=0.05)\n"
        "    loss.backward()\n    o.step()\n"
    ),
    "listed-in-a-tuple": (
        "import torch\nUNSUPPORTED = (torch.optim.SparseAdam, torch.optim.LBFGS)\n"
        "def patch(o):\n    if isinstance(o, UNSUPPORTED):\n        o.step = wrap(o.step)\n"
    ),
    "called-through-another-name": (
        "from torch import optim\ncls = optim.SGD\ndef f(params):\n"
        "    o = cls(params, lr=0.1)\n    o.zero_grad()\n    o.step()\n"
    ),
}
CONSTRUCTORS_KEPT = {
    "called": (
        "import torch\ndef f(params, loss):\n"
        "    o = torch.optim.SGD(params, lr=0.05)\n"
        "    loss.backward()\n    o.step()\n"
    ),
    "annotation": "from torch import optim\ndef clear(o: optim.Adam):\n    o.zero_grad()\n",
}


@pytest.mark.parametrize("target", ["optax", "nnx"])
@pytest.mark.parametrize("name", sorted(NAMED_CONSTRUCTORS_DROPPED))
def test_dropped_a_constructor_named_but_never_called(name: str, target: str) -> None:
    code = NAMED_CONSTRUCTORS_DROPPED[name]
    assert both_stages_keep(code, target) is False
    assert prefilter_for(load_semantic_map((), TARGETS[target])).matches(code.encode("utf-8"))
    assert convert(code, TARGET_COMMANDS[target]) == code


@pytest.mark.parametrize("target", ["optax", "nnx"])
@pytest.mark.parametrize("name", sorted(CONSTRUCTORS_KEPT))
def test_kept_a_constructor_called_or_in_an_annotation(name: str, target: str) -> None:
    code = CONSTRUCTORS_KEPT[name]
    assert both_stages_keep(code, target)
    assert convert(code, TARGET_COMMANDS[target]) != code
