import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lrcmp import *
src = open(sys.argv[1] if len(sys.argv) > 1 else "tests/probe_findings/sched_yield_between_steps.py").read().replace("print(loss)", "pass")
params = [torch.zeros(3, requires_grad=True)]
env = {"params": params, "batches": [Batch(params, k) for k in range(8)]}
lrs, _ = torch_lrs(src, env)
out = translated(src)
ns = {"__name__": "case", "params": [jnp.zeros(3)], "batches": []}
exec(out, ns)
ox = [float(ns["sched"](k)) for k in range(len(lrs))]
print("n", len(lrs))
print("torch", lrs[:20])
print("optax", ox[:20])
print("max rel diff", max(abs(a-b)/a for a,b in zip(lrs,ox)))
