import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, ".")
from tests.differential.harness import training_module, translate, torch_lrs, optax_lrs, relative, optax_hyperparams
PRELUDE = "import transformers" if "tf" in sys.argv[1] else ""
OPT = sys.argv[2] if len(sys.argv) > 2 else "torch.optim.SGD(params, lr=0.1, momentum=0.9)"
for line in open(sys.argv[1]):
    line = line.strip()
    if not line or line.startswith("#"): continue
    opt = OPT
    if " ;; " in line:
        opt, line = line.split(" ;; ")
    src = training_module(opt, line, prelude=PRELUDE)
    try:
        t = translate(src)
    except Exception as e:
        print(f"CRASH {line}: {type(e).__name__}: {str(e)[:200]}"); continue
    escs = [e for e in t.escapes if e.api != "torch.optim.Optimizer.step"]
    if escs:
        print(f"ESC  {line[:100]} :: {escs[0].reason[:120]}"); continue
    try:
        tl = torch_lrs(src, {}, 200)
        ol = optax_lrs(t.code, {}, 200)
        r = relative(tl["lr"], ol)
        extra = ""
        if tl["momentum"] and "inject_hyperparams" in t.code:
            name = "b1" if "b1=" in t.code else "momentum"
            om = optax_hyperparams(t.code, {}, name, 200)
            # optax_hyperparams records after each update: value used at update k is om[k]? compare both alignments
            extra = f" mom rel={relative(tl['momentum'], om):.2e}"
        print(f"{'OK  ' if r < 1e-9 else 'DIFF'} rel={r:.2e}{extra} {line[:110]}")
        if r >= 1e-9:
            k = next(i for i,(a,b) in enumerate(zip(tl['lr'], ol)) if abs(a-b) > 1e-9*max(abs(a),1e-12))
            print("     first diff at", k, tl['lr'][max(0,k-2):k+3], ol[max(0,k-2):k+3])
            print("     ", [l for l in t.code.splitlines() if l.startswith("sched =")][:1])
    except Exception as e:
        print(f"RUNERR {line[:100]}: {type(e).__name__}: {str(e)[:200]}")
