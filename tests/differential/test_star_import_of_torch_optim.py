"""``from torch.optim import *`` (s26c): a name the file binds nowhere else (``SGD``,
``lr_scheduler``) resolves through the file's one star import of a module of the map's
``star_exports`` (torch's ``__all__``), so the step converts as with ``torch.optim.SGD``. Before
(main 7c53ce7) nothing resolved through a star import and the file was left as written. The
NNX translation run against torch (float64, 36 updates); a second star import, or the name bound
in the file too, leaves it as written (either may bind the name)."""

from __future__ import annotations

from ml_switcheroo.spec.escape_hatch import BEGIN
from tests.differential.harness import EXACT
from tests.differential.nnx_loops import translate_nnx, translated_rel
from tests.differential.test_nnx_loops import PLAIN_LOOP

STAR = PLAIN_LOOP.replace("import torch\n", "import torch\nfrom torch.optim import *\n").replace(
    "torch.optim.SGD(", "SGD("
)


def test_a_name_of_the_star_import_converts_exactly() -> None:
    translated, rel = translated_rel(STAR)
    assert BEGIN not in translated and "opt.update(model, grads)" in translated, translated
    assert "nnx.Optimizer(model, optax.sgd(learning_rate=0.05, momentum=0.9)" in translated
    assert "from torch.optim import *\n" in translated, translated  # (still read by torch code)
    assert rel < EXACT, f"rel {rel:.3e}"
    assert translate_nnx(translated) == translated


def test_a_second_star_import_leaves_the_file_as_written() -> None:
    source = STAR.replace(
        "from torch.optim import *\n", "from torch.optim import *\nfrom mylib import *\n"
    )
    assert translate_nnx(source) == source


def test_a_name_bound_in_the_file_too_is_not_the_star_imports() -> None:
    source = STAR.replace("model = make_model()\n", "model = make_model()\nSGD = make_model\n")
    assert translate_nnx(source) == source
