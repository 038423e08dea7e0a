import sys, warnings
warnings.filterwarnings("ignore")
sys.path.insert(0, ".")
from tests.differential.nnx_loops import translate_nnx, run_torch_loop, run_nnx_loop, worst_rel
for f in sys.argv[1:]:
    src = open(f).read()
    out = translate_nnx(src)
    esc = [l.strip() for l in out.splitlines() if "ESCAPE-BEGIN" in l]
    reasons = [l.strip()[:160] for l in out.splitlines() if "ml_switcheroo: reason" in l]
    print("=====", f, "escapes:", esc)
    for r in reasons: print("   ", r)
    if "--show" in sys.argv[0:1] or True:
        body = [l for l in out.splitlines() if not l.strip().startswith("# ml_switcheroo")]
        open("/tmp/" + f.replace("/", "_") + ".nnx.out", "w").write(out)
    try:
        t = run_torch_loop(src)
    except Exception as e:
        print("  torch run error", type(e).__name__, str(e)[:200]); continue
    try:
        n = run_nnx_loop(src, out)
        print(f"  worst rel = {worst_rel(t, n):.3e}  (losses {len(t.losses)} vs {len(n.losses)})")
    except Exception as e:
        print("  nnx run error", type(e).__name__, str(e)[:300])
