"""optax target, own loop: like s31's loopcmp.py but `Model.parameters()` returns a GENERATOR,
as torch's does (w 5x3, b 3 of tests/differential/harness.linear_problem, 60 updates).
Script globals: params (list of the two tensors), batches (closures: loss = batch()),
Model. The translated `opt` (or the name given by --name=) is run by run_optax.
usage: python tests/probe_findings/s33/tools/optloop.py FILE... [--show] [--name=opt]"""
import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/wt/s33probe")
import jax.numpy as jnp
from tests.differential.harness import translate, execute, float64, linear_problem, run_torch_loop, run_optax, rel_error

class Model:
    def __init__(self, tensors):
        self.tensors = tensors
    def named_parameters(self):
        return iter(list(zip(["w", "b"], self.tensors)))
    def parameters(self):
        return iter(list(self.tensors))

name = "opt"
for a in sys.argv:
    if a.startswith("--name="): name = a[7:]
for f in [a for a in sys.argv[1:] if not a.startswith("--")]:
    src = open(f).read()
    t = translate(src)
    escs = [e for e in t.escapes if e.api != "torch.optim.Optimizer.step"]
    print("=====", f, "escapes:", [(e.api, e.reason[:160]) for e in escs])
    if "--show" in sys.argv:
        print("\n".join("   | " + l for l in t.code.splitlines() if not l.strip().startswith("# ml_switcheroo: |")))
    else:
        print("\n".join("   | " + l.strip() for l in t.code.splitlines() if (" = optax" in l or "clip" in l or "sched" in l) and not l.strip().startswith("#")))
    with float64():
        prob = linear_problem()
        try:
            tt = run_torch_loop(prob, src, {"Model": Model})
        except Exception as e:
            print("   torch error", type(e).__name__, e); continue
        try:
            ns = execute(t.code, {"Model": Model, "params": [jnp.asarray(v) for v in prob.init.values()], "batches": []})
            ot, _ = run_optax(prob, ns[name])
        except Exception as e:
            print("   optax error", type(e).__name__, str(e)[:300]); continue
        print(f"   rel = {rel_error(prob, tt, ot):.3e}")
