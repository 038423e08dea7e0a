"""Models with complex parameters (probe s31 G8). torch's ``.grad`` of a real loss at a complex
parameter x+iy is dL/dx + i dL/dy; ``jax.grad`` / ``nnx.value_and_grad`` return its conjugate,
and torch's Adam-family optimizers treat a complex parameter per real component where optax
uses |g|^2. Measured before the fix (the probe's ``cplxrun.py``, 36 updates, NNX whole step):
SGD momentum 1.97 relative off torch (weights), Adam 0.82, AdamW 0.83, RMSprop 1.26, with no
marker. An optimizer of a file where parameters may be complex (the map's
``parameters.complex_names``, an imaginary literal), or of a file importing a file of the
repository that may make them so or imported by one, escapes on both targets, naming the
place; complex only in a string or comment, or complex intermediate values of real parameters
(``torch.fft.rfft`` in a forward: the gradients agree, measured here), keeps the translation."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from ml_switcheroo.app import cache
from ml_switcheroo.codemods.optimizer import TorchToNNX, TorchToOptax
from tests.differential.harness import float64, translate
from tests.differential.nnx_loops import translate_nnx
from tests.support import convert_package, write_package
from tests.test_cache import report_of
from tests.test_convert_cli import tree

SPECTRAL = """\
import torch
import torch.nn as nn


class Spectral(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 2, dtype=DTYPE))

    def forward(self, x):
        return (x.to(DTYPE) @ self.w).real
"""
LOOP = """
model = Spectral()
opt = torch.optim.Adam(model.parameters(), lr=0.01)
for x, y in loader:
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
"""
IN_CLASS = SPECTRAL.replace("DTYPE", "torch.cfloat") + LOOP
SAID = "parameters may be complex (`torch.cfloat` at "
ELSEWHERE = "parameters may be complex in a file of the repository this file imports or that"


def test_a_complex_parameter_in_a_class_of_the_file_escapes_the_optax_optimizer() -> None:
    translation = translate(IN_CLASS)
    assert "optax.adam" not in translation.code, translation.code
    reasons = [e.reason for e in translation.escapes if e.api == "torch.optim.Adam"]
    assert reasons and SAID + "case.py:8)" in reasons[0], reasons


def test_a_complex_parameter_in_a_class_of_the_file_escapes_the_nnx_optimizer_and_step() -> None:
    translated = translate_nnx(IN_CLASS)
    assert "nnx.Optimizer(model" not in translated, translated
    code = [line for line in translated.splitlines() if not line.lstrip().startswith("#")]
    assert not any("nnx.value_and_grad" in line for line in code), translated
    assert SAID + "this file:8)" in translated, translated


SPELLINGS = {
    "complex64 dtype": "torch.randn(4, dtype=torch.complex64)",
    "complex128 dtype": "torch.randn(4, dtype=torch.complex128)",
    "cdouble method": "torch.randn(4).cdouble()",
    "polar": "torch.polar(torch.ones(4), torch.zeros(4))",
    "complex constructor": "torch.complex(torch.ones(4), torch.zeros(4))",
    "view_as_complex": "torch.view_as_complex(torch.randn(4, 2))",
    "imaginary literal": "torch.randn(4) * 1j",
    "python complex dtype": "torch.zeros(4, dtype=complex)",
    "numpy complex": "torch.from_numpy(np.zeros(4, dtype=np.complex64))",
}


@pytest.mark.parametrize("case", sorted(SPELLINGS))
def test_each_spelling_of_a_complex_parameter_escapes_the_optax_optimizer(case: str) -> None:
    source = (
        "import numpy as np\nimport torch\n\n"
        f"w = torch.nn.Parameter({SPELLINGS[case]})\n"
        "opt = torch.optim.SGD([w], lr=0.1)\n"
    )
    translation = translate(source)
    assert not translation.conversions, translation.code
    assert "parameters may be complex" in translation.escapes[0].reason, translation.escapes


def test_complex_named_only_in_a_string_or_comment_keeps_the_translation() -> None:
    source = (
        'import torch\n\nNOTE = "no torch.cfloat or 1j here"  # nor torch.complex64\n'
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    )
    assert "optax.sgd(learning_rate=0.1)" in translate(source).code
    assert "nnx.Optimizer(model, optax.sgd(learning_rate=0.1)" in translate_nnx(source)


FFT_MODEL = """\
import torch
import torch.nn as nn


class Filter(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(5))

    def forward(self, x):
        return torch.fft.rfft(x * self.w).abs()
"""


def test_fft_intermediates_of_real_parameters_keep_the_translation() -> None:
    source = FFT_MODEL + LOOP.replace("Spectral", "Filter")
    assert "optax.adam(learning_rate=0.01)" in translate(source).code
    assert "nnx.Optimizer(model, optax.adam(learning_rate=0.01)" in translate_nnx(source)


def test_the_gradient_of_a_real_parameter_through_complex_intermediates_is_torchs() -> None:
    """Why ``torch.fft`` is not in ``complex_names``: the JAX gradient of a real leaf through
    complex intermediate values (rfft, complex products, abs, real and imaginary parts) equals
    torch's .grad, float64."""
    rng = np.random.default_rng(0)
    w0, x0 = rng.standard_normal(8), rng.standard_normal((3, 8))
    phase = np.exp(1j * rng.standard_normal(5))

    def loss_torch(w: torch.Tensor) -> torch.Tensor:
        z = torch.fft.rfft(torch.tensor(x0) * w) * torch.tensor(phase)
        return (z.abs() ** 1.5).sum() + (z.real * z.imag).sum() + torch.fft.irfft(z).sum()

    def loss_jax(w: jax.Array) -> jax.Array:
        z = jnp.fft.rfft(jnp.asarray(x0) * w) * jnp.asarray(phase)
        return (jnp.abs(z) ** 1.5).sum() + (z.real * z.imag).sum() + jnp.fft.irfft(z).sum()

    with float64():
        w = torch.tensor(w0, requires_grad=True)
        loss_torch(w).backward()
        expected = w.grad.numpy()  # type: ignore[union-attr]
        got = np.asarray(jax.grad(loss_jax)(jnp.asarray(w0)))
    assert np.max(np.abs(expected - got)) / np.max(np.abs(expected)) < 1e-12


MAIN = """\
import torch

from PACKAGE.models import Spectral


def main(loader):
    model = Spectral()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""
FIT = """\
import torch


def fit(model, loader):
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""


def converted(root: Path, package: str, command: type) -> dict[str, str]:
    """Every file of the package through ``command`` as libcst's runner calls it."""
    return convert_package(root, package, command)


def complex_package(root: Path, package: str, dtype: str = "torch.complex64") -> None:
    models = SPECTRAL.replace("DTYPE", dtype)
    write_package(root, {"models.py": models, "main.py": MAIN.replace("PACKAGE", package)}, package)


@pytest.mark.parametrize("command", [TorchToOptax, TorchToNNX])
def test_a_model_class_with_a_complex_parameter_in_an_imported_file_escapes(
    tmp_path: Path, command: type
) -> None:
    complex_package(tmp_path, "spectral")
    main = converted(tmp_path, "spectral", command)["main.py"]
    assert "optax.sgd" not in main, main
    assert ELSEWHERE in main and "(`torch.complex64` at spectral/models.py:8)" in main, main


def test_a_real_model_class_in_an_imported_file_keeps_the_translation(tmp_path: Path) -> None:
    complex_package(tmp_path, "real_model", "torch.float64")
    main = converted(tmp_path, "real_model", TorchToNNX)["main.py"]
    assert "nnx.Optimizer(model, optax.sgd(" in main, main


def test_a_file_handed_a_model_by_a_file_importing_complex_parameters_escapes(
    tmp_path: Path,
) -> None:
    """``fit(model, loader)`` is called by ``main.py``, which imports the complex model class
    from ``models.py``: ``fit``'s optimizer may train it (the caller reach of the freeze
    check)."""
    main = (
        "from handed.models import Spectral\nfrom handed.train import fit\n\nfit(Spectral(), [])\n"
    )
    models = SPECTRAL.replace("DTYPE", "torch.cdouble")
    write_package(tmp_path, {"models.py": models, "train.py": FIT, "main.py": main}, "handed")
    train = converted(tmp_path, "handed", TorchToNNX)["train.py"]
    assert "opt = nnx.Optimizer" not in train, train
    assert "(`torch.cdouble` at handed/models.py:8)" in train, train


def test_a_complex_file_of_the_repository_not_linked_to_the_optimizer_keeps_it(
    tmp_path: Path,
) -> None:
    """A file neither importing nor imported by the optimizer's file (nor by a file importing
    it) cannot hand it a model."""
    models = SPECTRAL.replace("DTYPE", "torch.cdouble")
    write_package(tmp_path, {"other.py": models, "train.py": FIT}, "apart")
    train = converted(tmp_path, "apart", TorchToOptax)["train.py"]
    assert "optax.sgd(" in train, train


def test_an_imported_file_made_complex_between_cached_runs_escapes_the_optimizer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache's record of ``main.py`` depends on ``models.py`` (``dependencies``)."""
    monkeypatch.setattr(cache, "RACY_NS", -(10**18))
    main = MAIN.replace("PACKAGE", "pkg")
    real = SPECTRAL.replace("DTYPE", "torch.float64")
    tree(tmp_path / "src", {"pkg/__init__.py": "", "pkg/models.py": real, "pkg/main.py": main})

    def reasons() -> list[str]:
        report = json.loads(report_of(capsys, tmp_path, "--cache", ".c")[1])
        records = [r for r in report["records"] if r["file"] == "src/pkg/main.py"]
        return [r.get("reason") or "" for r in records]

    assert not any("may be complex" in r for r in reasons())
    models = tmp_path / "src" / "pkg" / "models.py"
    models.write_text(SPECTRAL.replace("DTYPE", "torch.cfloat"), encoding="utf-8")
    assert any("may be complex" in r for r in reasons())


ENGINE = """\
def train(model, opt, loader):
    for x, y in loader:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""
HANDING = """\
import torch

from handing.engine import train
from handing.models import Spectral

model = Spectral()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
train(model, opt, [])
"""


def test_an_optimizer_escaped_for_an_imported_complex_model_is_handed_over_untranslated(
    tmp_path: Path,
) -> None:
    """The dry run of ``main.py`` that ``engine.py`` asks reads no other file: without the
    cross-file check there, ``engine.py``'s step became ``opt.update(model, grads)`` on the
    torch optimizer ``main.py`` keeps."""
    models = SPECTRAL.replace("DTYPE", "torch.cfloat")
    write_package(
        tmp_path, {"models.py": models, "engine.py": ENGINE, "main.py": HANDING}, "handing"
    )
    outputs = converted(tmp_path, "handing", TorchToNNX)
    assert outputs["engine.py"] == ENGINE, outputs["engine.py"]
    assert "(`torch.cfloat` at handing/models.py:8)" in outputs["main.py"], outputs["main.py"]
