"""A flag the map chooses a translation by (``amsgrad``, ``maximize``, ``centered``) given as a
literal that is no bool: torch takes it by its truth (``if maximize:``), the map's conditions
compare with True or False, so ``maximize=1`` was translated as ``maximize=False`` (the update's
sign flipped) and ``amsgrad=1`` as plain Adam. Such a call escapes; ``True``/``False`` translate."""

from __future__ import annotations

import pytest

from tests.differential.harness import translate

SHAPES = {
    "Adam(params, lr=0.1, amsgrad=1)": "amsgrad=1",
    "SGD(params, lr=0.1, maximize=1)": "maximize=1",
    "RMSprop(params, lr=0.1, centered=1)": "centered=1",
    "AdamW(params, lr=0.1, amsgrad=0)": "amsgrad=0",
    "Adam(params, lr=0.1, maximize=None)": "maximize=None",
}


@pytest.mark.parametrize("call", sorted(SHAPES))
def test_a_flag_given_as_no_bool_escapes(call: str) -> None:
    translation = translate(f"import torch\nopt = torch.optim.{call}\n")
    (record,) = translation.escapes
    assert f"`{SHAPES[call]}` is no bool" in record.reason


@pytest.mark.parametrize(
    "call", ["Adam(params, lr=0.1, amsgrad=False)", "SGD(params, lr=0.1, maximize=True)"]
)
def test_the_twin_with_a_bool_translates(call: str) -> None:
    translation = translate(f"import torch\nopt = torch.optim.{call}\n")
    assert not translation.escapes, translation.code
