"""Param-group variants (blocks separated by '----' in a file) measured like
tests/differential/test_param_group_masks.py: torch on linear_problem (w 5x3, b 3) vs the
codemod's optax output, float64, 60 updates."""
import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/wt/s33probe")
from tests.differential.test_param_group_masks import Model, PRELUDE
from tests.differential.harness import translate, execute, float64, linear_problem, run_torch, run_optax, rel_error
import torch, os
if os.environ.get("GEN"):
    class Model(Model):
        """parameters() an iterator, as torch's."""
        def parameters(self):
            return iter(list(self.tensors))
        def named_parameters(self):
            return iter(super().named_parameters())
for block in open(sys.argv[1]).read().split("----\n"):
    if not block.strip(): continue
    src = PRELUDE + block
    title = block.strip().splitlines()[0][:110]
    try:
        t = translate(src)
    except Exception as e:
        print("CRASH", title, e); continue
    escs = [e for e in t.escapes if e.api != "torch.optim.Optimizer.step"]
    if escs:
        print("ESC ", title, "::", escs[0].reason[:150]); continue
    try:
        with float64():
            problem = linear_problem()
            tt = run_torch(problem, lambda pl: execute(src, {"Model": Model, "params": pl})["opt"])
            left = [torch.tensor(v) for v in problem.init.values()]
            tx = execute(t.code, {"Model": Model, "params": left})["opt"]
            ot, _ = run_optax(problem, tx)
            r = rel_error(problem, tt, ot)
        print("OK  " if r < 1e-9 else "DIFF", f"rel={r:.3e}", title)
        if r >= 1e-9 or "-v" in sys.argv:
            print("\n".join("      " + l for l in t.code.splitlines() if "opt =" in l or "mask" in l or "optax." in l))
    except Exception as e:
        print("RUNERR", title, type(e).__name__, str(e)[:200])
