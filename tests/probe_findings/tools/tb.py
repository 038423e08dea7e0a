"""Batch: for each file, show the translated (optax) code's non-comment lines that changed + markers, then trajcmp."""
import sys, os, io, contextlib
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trajcmp
N = int(os.environ.get("N", 40))
trajcmp.N = N
trajcmp.TARGETS[:] = [trajcmp.np.sin(trajcmp.np.arange(3) + k) for k in range(max(N, 200))]
for f in sys.argv[1:]:
    src = open(f).read()
    out = trajcmp.TorchToOptax(trajcmp.CodemodContext(filename="case.py")).transform_module(trajcmp.cst.parse_module(src)).code
    print("=====", f)
    if os.environ.get("SHOW"):
        print("\n".join("  | " + l for l in out.splitlines() if not l.strip().startswith("# ml_switcheroo: |")))
    else:
        for l in out.splitlines():
            if "reason" in l or "optax." in l: print("  |", l.strip()[:220])
    try:
        trajcmp.run(f)
    except Exception as e:
        print("  ERROR", type(e).__name__, str(e)[:300])
