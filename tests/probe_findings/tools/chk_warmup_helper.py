"""Optimizer stepped by a helper before its scheduler is built: torch's schedule starts at the
scheduler's construction, optax's count at the first update (warm-up updates included)."""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lrcmp import *
src = open(sys.argv[1]).read()
params = [torch.zeros(3, requires_grad=True)]
env = {"params": params, "warm_batches": [Batch(params, k) for k in range(4)], "batches": [Batch(params, k) for k in range(20)]}
lrs, _ = torch_lrs(src, env)
out = translated(src)
ns = {"__name__": "case", "params": [jnp.zeros(3)], "batches": [], "warm_batches": []}
exec(out, ns)
ox = [float(ns["sched"](k)) for k in range(len(lrs))]
print("updates", len(lrs), "max rel diff %.3f" % (max(abs(a - b) for a, b in zip(lrs, ox)) / max(lrs)))
print("  torch", [round(x, 4) for x in lrs])
print("  optax", [round(x, 4) for x in ox])
