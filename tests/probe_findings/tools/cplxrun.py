"""NNX whole-loop on a model with one complex parameter (a spectral weight, as in FNO-style
layers): torch original vs the codemod's NNX output on a hand port, float64/complex128.
usage: python cplxrun.py FILE"""
import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, ".")
import numpy as np, torch, jax, jax.numpy as jnp
from flax import nnx
from tests.differential.harness import float64
from tests.differential.nnx_loops import translate_nnx, run_script, torch_batches, nnx_batches
W0 = (np.arange(8).reshape(4, 2) * 0.1 - 0.3) + 1j * (np.arange(8).reshape(4, 2) * -0.05 + 0.2)

class TorchSpec(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(W0, dtype=torch.complex128))
    def forward(self, x):
        return (x.to(torch.complex128) @ self.w).real + 0.5 * (x.to(torch.complex128) @ self.w).imag

class NnxSpec(nnx.Module):
    def __init__(self):
        self.w = nnx.Param(jnp.asarray(W0, dtype=jnp.complex128))
    def __call__(self, x):
        z = x.astype(jnp.complex128) @ self.w[...]
        return z.real + 0.5 * z.imag

for f in sys.argv[1:]:
    src = open(f).read()
    out = translate_nnx(src)
    print("=====", f, "escapes:", [l.strip() for l in out.splitlines() if "ESCAPE-BEGIN" in l])
    print("\n".join("   | " + l for l in out.splitlines() if "nnx.Optimizer(" in l))
    with float64():
        tm = TorchSpec(); ts = run_script(src, tm, torch_batches(0), "<t>")
        nm = NnxSpec()
        # JAX's grad of a real loss w.r.t. a complex leaf is the conjugate of torch's .grad
        ns = run_script(out, nm, nnx_batches(0), "<n>")
    a, b = tm.w.detach().numpy(), np.asarray(nm.w[...])
    tl, nl = np.asarray(ts["losses"]), np.asarray([float(v) for v in ns["losses"]])
    print(f"  losses rel {np.max(np.abs(tl - nl)) / np.max(np.abs(tl)):.3e}   w rel {np.max(np.abs(a - b)) / np.max(np.abs(a)):.3e}")
