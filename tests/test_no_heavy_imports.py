"""The codemod never imports jax, optax or torch: only ml_switcheroo.optax_torch (runtime) does."""

from __future__ import annotations

import subprocess
import sys


def test_running_the_codemod_imports_no_ml_framework() -> None:
    script = (
        "import sys, libcst as cst\n"
        "from libcst.codemod import CodemodContext\n"
        "from ml_switcheroo.codemods.optimizer import TorchToOptax\n"
        "src = 'import torch\\nopt = torch.optim.NAdam(m.parameters())\\nopt.step()\\n'\n"
        "out = TorchToOptax(CodemodContext(), exact=True).transform_module(cst.parse_module(src)).code\n"
        "assert 'optax_torch.nadam' in out, out\n"
        "print(sorted(m for m in ('jax', 'optax', 'torch', 'numpy') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
