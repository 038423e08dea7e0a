"""Probe s37, H2: a clip's ``max_norm`` read as an attribute (``config.CLIP``, ``cfg.clip``)
that code of ANOTHER file of the repository writes while the loop runs: a function of the
imported module rebinding its global (``def decay(): global CLIP; CLIP *= 0.9``, called as
``decay()`` after ``from pkg.config import decay``), or a third file storing the attribute
(``hooks.on_step()`` doing ``config.CLIP *= 0.9``). torch reads the value at every clip; the
fold into the optimizer's chain read it once: 0.82 relative off torch (optax, float64, 60
updates). ``ClipFacts._changed_otherwise`` looked at this file's stores, aliases and calls on
the path's holders only (``config.decay()`` escaped, ``decay()`` did not).
Fixed: ``ClipFacts._written_elsewhere`` asks ``CrossFile.attribute_written_elsewhere`` for each
attribute along the path: a store of an attribute of that name on any object in another file
(but ``self.<name>`` in an ``__init__``), a ``setattr`` or string-keyed item store naming it, or
a ``global`` declaring it, escapes the fold naming ``file:line``. The twins (another attribute
written, another global rebound, an initializer's ``self.CLIP``, a file only reading it) fold
and match torch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.differential.harness import EXACT
from tests.differential.test_hidden_code_of_another_file import _rel, _translated

TRAIN = """\
import torch
from pkg import config
{imports}
opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
for batch in batches:
    opt.zero_grad()
    loss = batch()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, config.CLIP)
    opt.step()
    {post}
"""
DECAY = "CLIP = 0.5\ndef decay():\n    global CLIP\n    CLIP *= 0.9\n"
CASES = {
    "the_modules_function_rebinds_its_global": (
        {"pkg/config.py": DECAY},
        TRAIN.format(imports="from pkg.config import decay", post="decay()"),
    ),
    "a_third_file_stores_the_attribute": (
        {
            "pkg/config.py": "CLIP = 0.5\n",
            "pkg/hooks.py": "from pkg import config\ndef on_step():\n    config.CLIP *= 0.9\n",
        },
        TRAIN.format(imports="from pkg import hooks", post="hooks.on_step()"),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_clip_value_another_file_writes_escapes(tmp_path: Path, name: str) -> None:
    others, train = CASES[name]
    translation = _translated(tmp_path, {**others, "pkg/train.py": train})
    reasons = [r.reason for r in translation.escapes if "clip_grad" in r.api]
    assert any("evaluated at every step" in r for r in reasons), translation.code


# ------------------------------------------------------------------------- trap twins

TWINS = {
    # the third file writes another attribute of the module
    "another_attribute_written": (
        {
            "pkg/config.py": "CLIP = 0.5\nOTHER = 1\n",
            "pkg/hooks.py": "from pkg import config\ndef on_step():\n    config.OTHER *= 2\n",
        },
        TRAIN.format(imports="from pkg import hooks", post="hooks.on_step()"),
    ),
    # the module's function rebinds another global
    "another_global_rebound": (
        {
            "pkg/config.py": "CLIP = 0.5\nOTHER = 1.0\n"
            + DECAY.split("\n", 1)[1].replace("CLIP", "OTHER")
        },
        TRAIN.format(imports="from pkg.config import decay", post="decay()"),
    ),
    # a class's __init__ elsewhere sets up `self.CLIP` of the object it builds; a file reads it
    "an_initializer_and_a_reader": (
        {
            "pkg/config.py": "CLIP = 0.5\n",
            "pkg/model.py": (
                "class Model:\n    def __init__(self, clip):\n        self.CLIP = clip\n"
                "def show():\n    from pkg import config\n    print(config.CLIP)\n"
            ),
        },
        TRAIN.format(imports="from pkg import model", post="pass"),
    ),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_the_twins_fold_and_match_torch(tmp_path: Path, name: str) -> None:
    others, train = TWINS[name]
    files = {**others, "pkg/train.py": train}
    translation = _translated(tmp_path, files)
    assert not [r for r in translation.escapes if "clip_grad" in r.api], translation.code
    assert "clip_by_global_norm(config.CLIP)" in translation.code, translation.code
    rel = _rel(tmp_path, files, translation)
    assert rel < EXACT, f"rel={rel:.3e}\n{translation.code}"
