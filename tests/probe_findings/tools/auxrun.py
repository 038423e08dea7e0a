"""NNX whole-loop comparison on a model with an auxiliary head `aux` that the forward uses only
when called with aux=True (`model(x, aux=...)`), or never. Torch: grads of unused params are None
and torch.optim skips them; the NNX translation runs on a hand-ported copy.
usage: python auxrun.py FILE..."""
import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, ".")
import numpy as np, torch, jax.numpy as jnp
from flax import nnx
from tests.differential.harness import float64
from tests.differential.nnx_loops import translate_nnx, run_script, torch_batches, nnx_batches, EPOCHS

class TorchAux(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(4, 8)
        self.out = torch.nn.Linear(8, 2)
        self.aux = torch.nn.Linear(8, 2)
    def forward(self, x, aux=False):
        h = torch.tanh(self.hidden(x))
        o = self.out(h)
        if aux:
            o = o + self.aux(h)
        return o

class NnxAux(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(4, 8, rngs=rngs, param_dtype=jnp.float64)
        self.out = nnx.Linear(8, 2, rngs=rngs, param_dtype=jnp.float64)
        self.aux = nnx.Linear(8, 2, rngs=rngs, param_dtype=jnp.float64)
    def __call__(self, x, aux=False):
        h = jnp.tanh(self.hidden(x))
        o = self.out(h)
        if aux:
            o = o + self.aux(h)
        return o

L = ("hidden", "out", "aux")
def tw(m): return [a for n in L for a in (getattr(m, n).weight.detach().numpy().T, getattr(m, n).bias.detach().numpy())]
def nw(m): return [np.asarray(a[...]) for n in L for a in (getattr(m, n).kernel, getattr(m, n).bias)]

for f in sys.argv[1:]:
    src = open(f).read()
    out = translate_nnx(src)
    open("/tmp/" + f.replace("/", "_") + ".nnx.out", "w").write(out)
    print("=====", f, "escapes:", [l.strip() for l in out.splitlines() if "ESCAPE-BEGIN" in l])
    for l in out.splitlines():
        if "nnx.Optimizer(" in l: print("   |", l.strip())
    with float64():
        torch.manual_seed(0); tm = TorchAux()
        ts = run_script(src, tm, torch_batches(0), "<t>")
        nm = NnxAux(nnx.Rngs(0))
        for n in L:
            getattr(nm, n).kernel[...] = jnp.asarray(getattr(tm, n).weight.detach().numpy().T) if False else getattr(nm, n).kernel[...]
        torch.manual_seed(0); tm0 = TorchAux()
        for n in L:
            getattr(nm, n).kernel[...] = jnp.asarray(getattr(tm0, n).weight.detach().numpy().T)
            getattr(nm, n).bias[...] = jnp.asarray(getattr(tm0, n).bias.detach().numpy())
        try:
            ns = run_script(out, nm, nnx_batches(0), "<n>")
        except Exception as e:
            print("  nnx run error", type(e).__name__, str(e)[:200]); continue
    tl, nl = np.asarray(ts["losses"], float), np.asarray([float(v) for v in ns["losses"]])
    print(f"  losses rel {np.max(np.abs(tl - nl)) / np.max(np.abs(tl)):.3e} ({len(tl)} vs {len(nl)})")
    for n, a, b in zip([f"{n}.{k}" for n in L for k in ("w", "b")], tw(tm), nw(nm)):
        print(f"   {n}: rel {np.max(np.abs(a - b)) / np.max(np.abs(a)):.3e}")
