"""--steps-per-epoch 'len(loader)': torch's per-update lr vs the translated sched(count), each run
with its own fresh loader of 8 batches (the source may mutate it)."""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lrcmp import *
for fname in sys.argv[1:]:
    src = open(fname).read()
    params = [torch.zeros(3, requires_grad=True)]
    lrs, _ = torch_lrs(src, {"params": params, "loader": [Batch(params, k) for k in range(8)]})
    out = translated(src, steps_per_epoch="len(loader)")
    ns = {"__name__": "case", "params": [jnp.zeros(3)], "loader": [Batch(params, k) for k in range(8)]}
    exec(out.split("for epoch")[0], ns)
    ox = [float(ns["sched"](k)) for k in range(len(lrs))]
    print(fname.split("/")[-1], "updates", len(lrs), "max rel diff %.3f" % max(abs(a - b) / a for a, b in zip(lrs, ox)))
    print("  torch", [round(x, 4) for x in lrs])
    print("  optax", [round(x, 4) for x in ox])
