"""A real-code proxy corpus and what `convert` makes of it.

``build DIR`` installs pinned public packages that ship training loops and trainer classes
(``pip install --no-deps`` into ``DIR/venv``) and copies their sources to ``DIR/src``; nothing is
imported and nothing is committed. ``summary R.json ...`` prints, per `convert --report` JSON,
the constructs converted, the LR-scheduler constructions converted, the training steps
(`optimizer.step()`) converted and the most frequent escape reasons. ``verify-scripts DIR`` checks a
fetched real-scripts tree (``DIR/<owner>__<repo>/<path>``) against ``scripts_corpus.tsv``: files
missing, changed (sha256) or not listed.

    python benchmarks/realcode.py build /tmp/realcode
    ml-switcheroo convert --check --report /tmp/r-optax.json /tmp/realcode/src
    ml-switcheroo convert --check --target nnx --report /tmp/r-nnx.json /tmp/realcode/src
    python benchmarks/realcode.py summary /tmp/r-optax.json /tmp/r-nnx.json
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import json
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: (distribution pin, top-level package folders copied to ``src/``)
PACKAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ultralytics==8.4.190", ("ultralytics",)),
    ("litgpt==0.5.13", ("litgpt",)),
    ("torchtune==0.6.1", ("torchtune",)),
    ("speechbrain==1.1.2", ("speechbrain",)),
    ("mmengine==0.10.7", ("mmengine",)),
    ("mosaicml==0.32.1", ("composer",)),
    ("pytorch-ignite==0.5.5", ("ignite",)),
    ("skorch==1.4.0", ("skorch",)),
    ("allennlp==2.10.1", ("allennlp",)),
    ("torchrl==0.14.1", ("torchrl",)),
    ("diffusers==0.42.1", ("diffusers",)),
)

STEP_API = "torch.optim.Optimizer.step"

#: The real-scripts corpus: one row per file (repo, path, commit, sha256 of its bytes).
SCRIPTS_MANIFEST = Path(__file__).resolve().parent / "scripts_corpus.tsv"


def build(root: Path) -> Path:
    """Install the pinned packages without dependencies and copy their sources to ``root/src``."""
    environment = root / "venv"
    if not environment.exists():
        venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    pins = [pin for pin, _ in PACKAGES]
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", *pins], check=True)
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    source = root / "src"
    for _, folders in PACKAGES:
        for folder in folders:
            shutil.rmtree(source / folder, ignore_errors=True)
            shutil.copytree(
                site / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
            )
    return source


def manifest_files(manifest: Path) -> dict[str, str]:
    """The manifest's files, as tree path (``<owner>__<repo>/<path>``) -> sha256."""
    with manifest.open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {f"{row['repo'].replace('/', '__')}/{row['path']}": row["sha256"] for row in rows}


def verify_scripts(root: Path, manifest: Path = SCRIPTS_MANIFEST) -> dict[str, list[str]]:
    """Files of ``root`` missing, changed (another sha256) or not listed, against ``manifest``."""
    expected = manifest_files(manifest)
    present = {
        path.relative_to(root).as_posix(): path
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    return {
        "missing": sorted(set(expected) - set(present)),
        "changed": sorted(
            name
            for name, path in present.items()
            if name in expected and hashlib.sha256(path.read_bytes()).hexdigest() != expected[name]
        ),
        "unlisted": sorted(set(present) - set(expected)),
    }


def is_scheduler_construction(api: str) -> bool:
    """A torch LR scheduler class or a library schedule factory, not a method of one."""
    module, _, name = api.rpartition(".")
    if module == "torch.optim.lr_scheduler" or module == "torch.optim.swa_utils":
        return name[:1].isupper() and name not in {"LRScheduler"}
    return module == "transformers" and name.startswith("get_") and "schedule" in name


def counts(records: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """(converted, total) for all constructs, scheduler constructions and training steps."""
    tally: dict[str, list[int]] = {"constructs": [0, 0], "schedulers": [0, 0], "steps": [0, 0]}
    for record in records:
        groups = ["constructs"]
        if is_scheduler_construction(record["api"]):
            groups.append("schedulers")
        if record["api"] == STEP_API:
            groups.append("steps")
        for group in groups:
            tally[group][1] += 1
            tally[group][0] += record["kind"] == "converted"
    return {group: (done, total) for group, (done, total) in tally.items()}


def summary(report: Mapping[str, Any], reasons: int = 15) -> str:
    """The counts and the most frequent escape reasons of one report, as text."""
    records = report["records"]
    lines = [f"{report.get('options', {}).get('target', 'optax')}: {report['summary']}"]
    for group, (done, total) in counts(records).items():
        share = f"{100 * done / total:.1f}%" if total else "-"
        lines.append(f"  {group}: {done}/{total} ({share})")
    tally = collections.Counter(
        record.get("reason", "")[:140] for record in records if record["kind"] != "converted"
    )
    lines += [f"  {count:4d}  {reason}" for reason, count in tally.most_common(reasons)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build").add_argument("root", type=Path)
    summarise = commands.add_parser("summary")
    summarise.add_argument("reports", type=Path, nargs="+")
    verify = commands.add_parser("verify-scripts")
    verify.add_argument("root", type=Path)
    verify.add_argument("--manifest", type=Path, default=SCRIPTS_MANIFEST)
    args = parser.parse_args(argv)
    if args.command == "build":
        print(build(args.root))
        return 0
    if args.command == "verify-scripts":
        return _report_verification(verify_scripts(args.root, args.manifest))
    for path in args.reports:
        print(f"{path}:\n{summary(json.loads(path.read_text()))}")
    return 0


def _report_verification(problems: Mapping[str, list[str]]) -> int:
    """Print each problem file; 0 when the tree is exactly the manifest's, else 1."""
    for kind, names in problems.items():
        for name in names:
            print(f"{kind}: {name}")
    if any(problems.values()):
        return 1
    print("ok: every file of the manifest, unchanged, and no other")
    return 0


if __name__ == "__main__":
    sys.exit(main())
