"""``filter(lambda p: p.requires_grad, model.parameters())`` and ``[p for p in
model.parameters() if p.requires_grad]`` (s23c). Where nothing this file may run freezes a
parameter (a freeze escapes every optimizer of the file: ``_plan_frozen_parameters``), every
parameter passes: the filter is ``model.parameters()``, in both targets (NNX:
``nnx.Optimizer(model, tx, wrt=nnx.Param)``), exact against torch (float64, 60 updates for
optax, 36 for NNX). Escaped before (a part of the model). Where a freeze may run (this file,
a method of the model class of an imported file called after construction: sgrvinod's
``encoder.fine_tune(...)``), or where the predicate is anything else, it still escapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT, measure
from tests.differential.nnx_loops import converted, translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP
from tests.support import write_package

FILTERED = [
    "filter(lambda p: p.requires_grad, model.parameters())",
    "[p for p in model.parameters() if p.requires_grad]",
    "(p for p in model.parameters() if p.requires_grad)",
]


@pytest.mark.parametrize("filtered", FILTERED)
def test_a_trained_flag_filter_is_the_whole_model_in_nnx(filtered: str) -> None:
    source = PLAIN_LOOP.replace("SGD(model.parameters()", f"SGD({filtered}")
    translated, rel = translated_rel(source)
    assert "opt = nnx.Optimizer(model, optax.sgd(" in translated, translated
    assert BEGIN not in translated, translated
    assert rel < EXACT, f"rel {rel:.3e}"


class Holder(torch.nn.Module):
    """A torch model whose parameters are the tensors it is given (the harness's)."""

    def __init__(self, params: list[Any]) -> None:
        super().__init__()
        self.held = list(params)

    def parameters(self, recurse: bool = True) -> Any:
        return iter(self.held)


@pytest.mark.parametrize("filtered", FILTERED[:2])
def test_a_trained_flag_filter_is_the_whole_model_in_optax(filtered: str) -> None:
    source = (
        "import torch\nmodel = Holder(params)\n"
        f"opt = torch.optim.AdamW({filtered}, lr=0.01, weight_decay=0.1)\n"
    )
    rel, translation = measure(source, env={"Holder": Holder})
    assert "opt = optax.adamw(" in translation.code, translation.code
    assert "optax.adamw(" in translation.code, translation.code
    assert rel < EXACT, f"rel {rel:.3e}"


@pytest.mark.parametrize(
    "model",
    [
        "def main(model, loader):\n",
        "def main(path, loader):\n    model = torch.load(path)\n",
        "def main(checkpoint, loader):\n    model = checkpoint['model']\n",
    ],
)
def test_a_trained_flag_filter_of_a_model_built_elsewhere_escapes(model: str) -> None:
    """A parameter of the function (its caller may have frozen it), a model loaded with the
    flags it was saved with, one read from a checkpoint."""
    source = PLAIN_LOOP.replace("model = make_model()\n", model)
    source = source.replace("SGD(model.parameters()", f"SGD({FILTERED[0]}")
    body = source.split(model, 1)[1]
    source = (
        source.split(model, 1)[0]
        + model
        + "".join("    " + line + "\n" for line in body.splitlines())
    )
    assert "opt = nnx.Optimizer" not in translate_nnx(source)


TRAPS = {
    "other_predicate": "filter(lambda p: p.requires_grad and p.dim() > 1, model.parameters())",
    "negated": "filter(lambda p: not p.requires_grad, model.parameters())",
    "other_name": "filter(lambda q: p.requires_grad, model.parameters())",
    "two_clauses": "[p for p in model.parameters() if p.requires_grad if p.dim() > 1]",
}


@pytest.mark.parametrize("trap", sorted(TRAPS))
def test_another_predicate_still_escapes(trap: str) -> None:
    source = PLAIN_LOOP.replace("SGD(model.parameters()", f"SGD({TRAPS[trap]}")
    assert "opt = nnx.Optimizer" not in translate_nnx(source)


def test_a_filter_the_file_defines_still_escapes() -> None:
    mine = "def filter(keep, items):\n    return [i for i in items if not keep(i)]\n\n\n"
    source = PLAIN_LOOP.replace("model = make_model()", mine + "model = make_model()")
    source = source.replace("SGD(model.parameters()", f"SGD({FILTERED[0]}")
    assert "opt = nnx.Optimizer" not in translate_nnx(source)


@pytest.mark.parametrize("filtered", FILTERED[:2])
def test_a_trained_flag_filter_of_a_file_that_freezes_escapes(filtered: str) -> None:
    freeze = "model.hidden.requires_grad_(False)\nopt = "
    source = PLAIN_LOOP.replace("SGD(model.parameters()", f"SGD({filtered}")
    source = source.replace("opt = ", freeze)
    translated = translate_nnx(source)
    assert "opt = nnx.Optimizer" not in translated, translated
    assert "this file freezes parameters (`model.hidden.requires_grad_(False)`)" in translated


ENCODER = """\
import torch


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(3, 4)
        self.out = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))

    def fine_tune(self, fine_tune=True):
        for p in self.hidden.parameters():
            p.requires_grad = fine_tune
"""

CAPTIONING = """\
import torch

from PACKAGE.models import Encoder


def main(loader, fine_tune_encoder):
    encoder = Encoder()
    encoder.fine_tune(fine_tune_encoder)
    encoder_optimizer = torch.optim.Adam(
        params=filter(lambda p: p.requires_grad, encoder.parameters()), lr=1e-4
    )
    for x, y in loader:
        encoder_optimizer.zero_grad()
        loss = ((encoder(x) - y) ** 2).mean()
        loss.backward()
        encoder_optimizer.step()
"""


def test_a_trained_flag_filter_of_a_model_whose_method_freezes_escapes(tmp_path: Path) -> None:
    """sgrvinod's image captioning: ``encoder.fine_tune(...)`` of ``models.py``."""
    package = "filter_fine_tune"
    files = {"main.py": CAPTIONING.replace("PACKAGE", package), "models.py": ENCODER}
    write_package(tmp_path, files, package)
    translated = converted(tmp_path, package)["main.py"]
    assert "encoder_optimizer = nnx.Optimizer" not in translated, translated
    assert f"(`p.requires_grad = fine_tune` in `{package}/models.py:15`)" in translated


EMBEDDINGS = """\
import torch


class Tagger(torch.nn.Module):
    def __init__(self, vectors):
        super().__init__()
        self.embed = EMBEDDING
        self.out = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.embed(x).mean(1))
"""

TAGGING = """\
import torch

from PACKAGE.models import Tagger


def main(loader, vectors):
    model = Tagger(vectors)
    opt = torch.optim.SGD(PARAMETERS, lr=0.05)
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""

MADE_FROZEN = {
    "from_pretrained": "torch.nn.Embedding.from_pretrained(vectors)",
    "from_pretrained_freeze": "torch.nn.Embedding.from_pretrained(vectors, freeze=flag)",
    "parameter": "torch.nn.Parameter(vectors, requires_grad=False)",
}


@pytest.mark.parametrize("made", sorted(MADE_FROZEN))
@pytest.mark.parametrize("parameters", ["model.parameters()", FILTERED[0]])
def test_parameters_made_frozen_in_the_model_class_escape(
    tmp_path: Path, made: str, parameters: str
) -> None:
    """``nn.Embedding.from_pretrained(w)`` freezes ``w`` unless ``freeze=False`` (the map's
    ``frozen_by_default``); ``nn.Parameter(w, requires_grad=False)`` is frozen (the map's
    ``freeze_keywords``). Converted before with ``model.parameters()``: the NNX optimizer (and
    an optax one) trains the embedding torch never updates."""
    package = f"made_frozen_{made}_{len(parameters)}"
    main = TAGGING.replace("PACKAGE", package).replace("PARAMETERS", parameters)
    files = {"main.py": main, "models.py": EMBEDDINGS.replace("EMBEDDING", MADE_FROZEN[made])}
    write_package(tmp_path, files, package)
    translated = converted(tmp_path, package)["main.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    assert f"in `{package}/models.py:7`)" in translated, translated


def test_an_embedding_from_pretrained_not_frozen_keeps_the_translation(tmp_path: Path) -> None:
    package = "made_trained"
    main = TAGGING.replace("PACKAGE", package).replace("PARAMETERS", FILTERED[0])
    embedding = "torch.nn.Embedding.from_pretrained(vectors, freeze=False)"
    files = {"main.py": main, "models.py": EMBEDDINGS.replace("EMBEDDING", embedding)}
    write_package(tmp_path, files, package)
    translated = converted(tmp_path, package)["main.py"]
    assert "opt = nnx.Optimizer(model, optax.sgd(" in translated, translated
