"""Split a spec file into a case directory: lines '### relpath' start a file.
usage: python mk.py SPEC OUTDIR"""
import sys, os, shutil
spec, outdir = sys.argv[1], sys.argv[2]
if os.path.exists(outdir): shutil.rmtree(outdir)
cur = None; files = {}
for line in open(spec).read().splitlines(keepends=True):
    if line.startswith("### "):
        cur = line[4:].strip(); files[cur] = ""
    elif cur is not None:
        files[cur] += line
for p, t in files.items():
    fp = os.path.join(outdir, p); os.makedirs(os.path.dirname(fp), exist_ok=True)
    open(fp, "w").write(t)
