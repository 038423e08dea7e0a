"""Param groups built as named dicts (`[g_decay, g_plain]`): torch uses each group's options;
the translation is one optax optimizer with the constructor's defaults. Measured with the
differential harness' linear problem (W 5x3, b 3), float64, 60 updates."""
import sys
sys.path.insert(0, ".")
import warnings; warnings.filterwarnings("ignore")
import jax.numpy as jnp
from tests.differential.harness import float64, linear_problem, run_torch, run_optax, rel_error, translate, execute

class Model:
    def __init__(self, ps): self.ps = ps
    def named_parameters(self): return list(zip(["w", "b"], self.ps))

class Arr:  # what the comprehension reads on the JAX side (the kept lines before the optimizer)
    def __init__(self, a): self.a = a
    def dim(self): return self.a.ndim

for path in sys.argv[1:]:
    src = open(path).read()
    t = translate(src)
    print(path, "escapes:", [e.api for e in t.escapes if e.api != "torch.optim.Optimizer.step"])
    print("  ", [l for l in t.code.splitlines() if l.startswith("opt =")])
    with float64():
        prob = linear_problem()
        tt = run_torch(prob, lambda pl: execute(src, {"model": Model(pl), "params": pl, "batches": []})["opt"])
        jp = [Arr(jnp.asarray(v)) for v in prob.init.values()]
        tx = execute(t.code, {"model": Model(jp), "params": jp, "batches": []})["opt"]
        ot, _ = run_optax(prob, tx)
        print(f"   rel = {rel_error(prob, tt, ot):.3e}")
