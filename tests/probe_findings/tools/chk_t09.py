import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lrcmp import *
fname = sys.argv[1]
src = open(fname).read()
params = [torch.zeros(3, requires_grad=True)]
n = {"c": 0}
def check(loss):
    n["c"] += 1
    if n["c"] % 4 == 0:
        raise RuntimeError("nan")
env = {"params": params, "batches": [Batch(params, k) for k in range(30)], "check": check, "validate": lambda l: (_ for _ in ()).throw(ValueError()) if (check.__call__ and (n.__setitem__("c", n["c"]+1) or n["c"] % 4 == 0)) else None}
lrs, _ = torch_lrs(src, env)
out = translated(src)
ns = {"__name__": "case", "params": [jnp.zeros(3)], "batches": []}
exec(out, ns)
ox = [float(ns["sched"](k)) for k in range(len(lrs))]
print("n", len(lrs))
print("torch", lrs[:14])
print("optax", ox[:14])
print("max rel diff", max(abs(a-b)/a for a,b in zip(lrs,ox)))
