"""optax target: the lr torch's optimizer uses at each of N updates (param_groups[0]['lr'] before
each step) vs the translated `sched(k)` (or --name=). usage: lrseq.py FILE [N] [--name=sched]"""
import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/wt/s33probe")
import numpy as np, torch, jax
jax.config.update("jax_enable_x64", True)
torch.set_default_dtype(torch.float64)
from tests.differential.harness import translate, execute
sys.path.insert(0, "/work/wt/s33probe/tests/probe_findings/s33/tools")
name = "sched"
for a in sys.argv:
    if a.startswith("--name="): name = a[7:]
args = [a for a in sys.argv[1:] if not a.startswith("--")]
f = args[0]; N = int(args[1]) if len(args) > 1 else 60
src = open(f).read()
class Model:
    def __init__(self, t): self.t = t
    def parameters(self): return iter(self.t)
    def named_parameters(self): return iter(zip(["w", "b"], self.t))
p = [torch.zeros(3, requires_grad=True)]
lrs = []
opt_ref = {}
def batch_factory(k):
    def b():
        o = opt_ref.get("opt")
        return ((p[0] - k) ** 2).sum()
    return b
env = {"Model": Model, "params": p, "batches": [batch_factory(k) for k in range(N)]}
orig = torch.optim.Optimizer.step
def rec(self, *a, **k):
    lrs.append(self.param_groups[0]["lr"])
    return orig(self, *a, **k)
torch.optim.Optimizer.step = rec
for cls in torch.optim.Optimizer.__subclasses__():
    if "step" in cls.__dict__:
        o = cls.step
        def mk(o):
            def s(self, *a, **k):
                lrs.append(self.param_groups[0]["lr"]); return o(self, *a, **k)
            return s
        cls.step = mk(o)
exec(compile(src, f, "exec"), env)
t = translate(src)
ns = execute(t.code, {"Model": Model, "params": [np.zeros(3)], "batches": []})
ox = [float(ns[name](k)) for k in range(len(lrs))]
lrs = lrs[: len(ox)]
r = max(abs(a - b) / abs(a) if a else abs(b) for a, b in zip(lrs, ox))
print(f, "updates", len(lrs), "max rel lr diff %.3g" % r)
if r > 1e-6:
    print("  torch", [round(x, 6) for x in lrs[:30]])
    print("  optax", [round(x, 6) for x in ox[:30]])
