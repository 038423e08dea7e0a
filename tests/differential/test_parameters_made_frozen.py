"""Parameters made frozen where they are built (s23c; the map's ``freeze_keywords`` and
``frozen_by_default``): ``nn.Embedding.from_pretrained(w)`` freezes ``w`` unless
``freeze=False``, ``nn.Parameter(w, requires_grad=False)`` is frozen. torch never updates
them; an optax or NNX optimizer over ``model.parameters()`` trains them (converted before,
not measured numerically). Every optimizer of a file that may build one escapes, naming it;
``from_pretrained(w, freeze=False)`` keeps the translation, and so does a tensor that is no
parameter (``Variable(x, requires_grad=False)``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.differential.nnx_loops import converted, translate_nnx
from tests.differential.test_nnx_loops import PLAIN_LOOP
from tests.support import write_package

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
def test_parameters_made_frozen_in_the_model_class_escape(tmp_path: Path, made: str) -> None:
    """``nn.Embedding.from_pretrained(w)`` freezes ``w`` unless ``freeze=False`` (the map's
    ``frozen_by_default``); ``nn.Parameter(w, requires_grad=False)`` is frozen (the map's
    ``freeze_keywords``). Converted before with ``model.parameters()``: the NNX optimizer (and
    an optax one) trains the embedding torch never updates."""
    package = f"made_frozen_{made}"
    main = TAGGING.replace("PACKAGE", package).replace("PARAMETERS", "model.parameters()")
    files = {"main.py": main, "models.py": EMBEDDINGS.replace("EMBEDDING", MADE_FROZEN[made])}
    write_package(tmp_path, files, package)
    translated = converted(tmp_path, package)["main.py"]
    assert "opt = nnx.Optimizer" not in translated, translated
    assert f"in `{package}/models.py:7`)" in translated, translated


def test_an_embedding_from_pretrained_not_frozen_keeps_the_translation(tmp_path: Path) -> None:
    package = "made_trained"
    main = TAGGING.replace("PACKAGE", package).replace("PARAMETERS", "model.parameters()")
    embedding = "torch.nn.Embedding.from_pretrained(vectors, freeze=False)"
    files = {"main.py": main, "models.py": EMBEDDINGS.replace("EMBEDDING", embedding)}
    write_package(tmp_path, files, package)
    translated = converted(tmp_path, package)["main.py"]
    assert "opt = nnx.Optimizer(model, optax.sgd(" in translated, translated


def test_a_tensor_that_is_no_parameter_keeps_the_translation() -> None:
    data = "target = torch.autograd.Variable(torch.zeros(2), requires_grad=False)\n"
    source = PLAIN_LOOP.replace("model = make_model()\n", "model = make_model()\n" + data)
    assert "opt = nnx.Optimizer(model, optax.sgd(" in translate_nnx(source)
