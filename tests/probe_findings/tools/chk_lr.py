import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lrcmp import *
for fname in sys.argv[1:]:
    src = open(fname).read()
    params = [torch.zeros(3, requires_grad=True)]
    env = {"params": params, "batches": [Batch(params, k) for k in range(int(os.environ.get("N", 40)))]}
    lrs, _ = torch_lrs(src, env)
    out = translated(src)
    ns = {"__name__": "case", "params": [jnp.zeros(3)], "batches": []}
    exec(out, ns)
    name = "main" if "main" in ns and callable(ns.get("main")) else "sched"
    ox = [float(ns[name](k)) for k in range(len(lrs))]
    r = max(abs(a-b) for a,b in zip(lrs,ox)) / max(lrs)
    print(fname.split("/")[-1], "updates", len(lrs), "max rel diff %.3g" % r)
    if r > 1e-6:
        print("  torch", [round(x, 5) for x in lrs[:20]])
        print("  optax", [round(x, 5) for x in ox[:20]])
