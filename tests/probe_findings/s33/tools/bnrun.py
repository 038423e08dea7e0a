"""NNX target on a model WITH BatchNorm (no affine): Linear(4,8), tanh, BatchNorm1d(8), Linear(8,2).
Runs the torch script as written and the NNX codemod's own output on an NNX copy (float64),
compares every recorded loss, final weights and the BatchNorm running mean.
Script globals: make_model(), loader (12 batches of 6), X, Y (the same 72 rows), losses, EPOCHS (3), mse(a, b).
usage: python tests/probe_findings/s33/tools/bnrun.py FILE... [--show]"""
import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/wt/s33probe")
import jax, jax.numpy as jnp, numpy as np, torch
from flax import nnx
from tests.differential.harness import float64
from tests.differential.nnx_loops import translate_nnx, batches, worst_rel, LoopRun

MOM = 0.1
class TNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(4, 8)
        self.norm = torch.nn.BatchNorm1d(8, momentum=MOM, affine=False)
        self.out = torch.nn.Linear(8, 2)
    def forward(self, x):
        return self.out(self.norm(torch.tanh(self.hidden(x))))

class TorchBN(nnx.Module):
    """torch's BatchNorm1d(affine=False) exactly: running var unbiased (flax's is biased)."""
    def __init__(self, n):
        self.use_running_average = False
        self.mean = nnx.BatchStat(jnp.zeros(n, jnp.float64))
        self.var = nnx.BatchStat(jnp.ones(n, jnp.float64))
    def __call__(self, x):
        if self.use_running_average:
            return (x - self.mean[...]) / jnp.sqrt(self.var[...] + 1e-5)
        m = x.mean(0); v = x.var(0); k = x.shape[0]
        self.mean[...] = (1 - MOM) * self.mean[...] + MOM * jax.lax.stop_gradient(m)
        self.var[...] = (1 - MOM) * self.var[...] + MOM * jax.lax.stop_gradient(v) * k / (k - 1)
        return (x - m) / jnp.sqrt(v + 1e-5)

class NNet(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(4, 8, rngs=rngs, param_dtype=jnp.float64)
        self.norm = TorchBN(8)
        self.out = nnx.Linear(8, 2, rngs=rngs, param_dtype=jnp.float64)
    def __call__(self, x):
        return self.out(self.norm(jnp.tanh(self.hidden(x))))

def tnet():
    torch.manual_seed(0)
    return TNet()

def copy(m):
    n = NNet(nnx.Rngs(0))
    for name in ("hidden", "out"):
        l = getattr(m, name)
        getattr(n, name).kernel[...] = jnp.asarray(l.weight.detach().numpy().T)
        getattr(n, name).bias[...] = jnp.asarray(l.bias.detach().numpy())
    n.norm.mean.value = jnp.zeros(8, jnp.float64)
    n.norm.var.value = jnp.ones(8, jnp.float64)
    return n

def tw(m):
    return [m.hidden.weight.detach().numpy().T, m.hidden.bias.detach().numpy(),
            m.out.weight.detach().numpy().T, m.out.bias.detach().numpy(), m.norm.running_mean.numpy().copy(), m.norm.running_var.numpy().copy()]
def nw(n):
    return [np.asarray(n.hidden.kernel[...]), np.asarray(n.hidden.bias[...]),
            np.asarray(n.out.kernel[...]), np.asarray(n.out.bias[...]), np.asarray(n.norm.mean[...]), np.asarray(n.norm.var[...])]

class Fresh:
    """--fresh: a loader that hands out copies of its batches on each pass (as a DataLoader
    collates new tensors), so in-place changes of a batch do not carry to the next epoch."""
    def __init__(self, data, copy):
        self.data, self.copy = data, copy
    def __iter__(self):
        return iter([tuple(self.copy(a) for a in b) for b in self.data])
    def __getitem__(self, i):
        return self.data[i]
    def __len__(self):
        return len(self.data)

FRESH = "--fresh" in sys.argv

class Splittable(np.ndarray):
    """The NNX run's X / Y: torch's `X.split(n)` ported as jnp.split (JAX arrays, no views)."""
    def chunk(self, k):
        return self.split(len(self) // k)

    def split(self, n):
        return [jnp.asarray(np.asarray(self[i:i + n])) for i in range(0, len(self), n)]

def run(src, model, data, mse, extra):
    if FRESH:
        data = Fresh(data, (lambda a: a.clone()) if isinstance(data[0][0], torch.Tensor) else (lambda a: a))
    scope = {"make_model": lambda: model, "loader": data, "losses": [], "EPOCHS": 3, "mse": mse}
    # X, Y: the whole data set as one tensor / array each (72 rows)
    if isinstance(data[0][0], torch.Tensor):
        scope["X"] = torch.cat([b[0] for b in data]); scope["Y"] = torch.cat([b[1] for b in data])
    else:
        scope["X"] = np.concatenate([np.asarray(b[0]) for b in data]).view(Splittable)
        scope["Y"] = np.concatenate([np.asarray(b[1]) for b in data]).view(Splittable)
    scope.update(extra)
    exec(compile(src, "<s>", "exec"), scope)
    return scope

def main():
    show = "--show" in sys.argv
    for f in [a for a in sys.argv[1:] if not a.startswith("--")]:
        src = open(f).read()
        out = translate_nnx(src)
        esc = [l.strip() for l in out.splitlines() if "ESCAPE-BEGIN" in l]
        print("=====", f, "escapes:", esc)
        for l in out.splitlines():
            if "ml_switcheroo: reason" in l: print("   ", l.strip()[:220])
        open("/tmp/" + f.replace("/", "_") + ".nnx.out", "w").write(out)
        if show: print(out)
        with float64():
            m = tnet()
            try:
                sc = run(src, m, [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches(0)],
                         lambda a, b: ((a - b) ** 2).mean(), {})
            except Exception as e:
                print("  torch error", type(e).__name__, e); continue
            t = LoopRun([float(v) for v in sc["losses"]], tw(m))
            n = copy(tnet())
            try:
                sc = run(out, n, [(jnp.asarray(x), jnp.asarray(y)) for x, y in batches(0)],
                         lambda a, b: ((a - b) ** 2).mean(), {})
            except Exception as e:
                print("  nnx error", type(e).__name__, str(e)[:300]); continue
            r = LoopRun([float(v) for v in sc["losses"]], nw(n))
        if len(t.losses) != len(r.losses):
            print("  loss count differs", len(t.losses), len(r.losses)); continue
        names = ["losses", "hidden.w", "hidden.b", "out.w", "out.b", "bn.mean", "bn.var"]
        pairs = [(np.asarray(t.losses), np.asarray(r.losses))] + list(zip(t.weights, r.weights))
        rels = [float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-300)) for a, b in pairs]
        print("  worst rel = %.3e   " % max(rels) + " ".join(f"{k}={v:.2e}" for k, v in zip(names, rels)))

main()
