"""NNX: a module's ``train``/``eval`` reached without calling it by name (probe s40 p40b:
``getattr(model, "train")(mode=False)`` passed the train/eval check, and the NNX model stayed in
training mode where torch's was in evaluation mode). The step escapes; the twin calling
``model.eval()`` by name still converts."""

from __future__ import annotations

import pytest

from tests.differential.nnx_loops import translate_nnx

LOOP = """\
import torch

model = make_model()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(EPOCHS):
    {mode}
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
"""
UNNAMED = {
    "getattr_with_mode": 'getattr(model, "train")(mode=False)',
    "bound_method": "switch = model.train\n    switch(False)",
}


@pytest.mark.parametrize("name", sorted(UNNAMED))
def test_a_mode_method_reached_unnamed_escapes_the_step(name: str) -> None:
    translated = translate_nnx(LOOP.format(mode=UNNAMED[name]))
    assert "without calling it by name" in translated, translated


def test_the_twin_calling_eval_by_name_converts() -> None:
    translated = translate_nnx(LOOP.format(mode="model.eval()"))
    assert "ESCAPE" not in translated, translated


def test_a_flag_of_another_object_named_train_is_no_mode_call() -> None:
    """`args.train` (a command-line flag) is not the model's method."""
    source = LOOP.format(mode="if args.train:\n        model.train()")
    assert "ESCAPE" not in translate_nnx(source)
