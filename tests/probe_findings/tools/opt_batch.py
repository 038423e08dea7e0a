import sys, traceback
sys.path.insert(0, ".")
from tests.differential.harness import measure, translate
cases = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
for c in cases:
    src = "import torch\n" + c.replace("\\n", "\n") + "\n"
    try:
        t = translate(src)
    except Exception as e:
        print(f"CRASH/UNPARSE {c}: {type(e).__name__} {e}"); continue
    if t.escapes:
        print(f"ESC   {c[:90]} :: {t.escapes[0].reason[:110]}")
        continue
    try:
        rel, t = measure(src)
        flag = "OK  " if rel < 1e-9 else "DIFF"
        line = [l for l in t.code.splitlines() if "opt =" in l or "optax." in l]
        print(f"{flag} rel={rel:.2e} {c[:80]}\n      -> {line[-1][:200] if line else ''}")
    except Exception as e:
        print(f"RUNERR {c[:90]}: {type(e).__name__} {str(e)[:200]}")
