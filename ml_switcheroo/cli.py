"""The ``ml-switcheroo`` command line (also ``python -m ml_switcheroo``).

``init [DIR]`` writes or updates ``DIR/.libcst.codemod.yaml`` so that
``python -m libcst.tool codemod optimizer.TorchToOptax PATH`` works in the user's own repository.
``convert PATHS...`` runs optimizer.TorchToOptax over a repository (``ml_switcheroo.convert``);
it is imported only when used, so that ``--help`` and ``init`` do not load libcst (nor
``convert`` PyYAML).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

CONFIG_NAME = ".libcst.codemod.yaml"
MODULE = "ml_switcheroo.codemods"
LIBCST_DEFAULT_MODULES = ["libcst.codemod.commands"]

NEW_CONFIG = f"""\
# libcst codemod configuration, written by `ml-switcheroo init`.
generated_code_marker: '@generated'
# The identity (`cat`) instead of an external formatter: ml_switcheroo's output is kept as is.
formatter: [cat]
blacklist_patterns: []
modules:
- libcst.codemod.commands
- {MODULE}
repo_root: .
"""


def init_config(directory: Path) -> str:
    """Create or update ``directory/.libcst.codemod.yaml``; return what was done."""
    import yaml

    path = directory / CONFIG_NAME
    if not path.exists():
        path.write_text(NEW_CONFIG, encoding="utf-8")
        return f"created {path}"
    text = path.read_text(encoding="utf-8")
    config = yaml.safe_load(text) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a YAML mapping; fix or remove it first")
    modules = config.get("modules")
    if modules is not None and not (
        isinstance(modules, list) and all(isinstance(m, str) for m in modules)
    ):
        raise ValueError(f"{path}: 'modules' is not a list of module names; fix it first")
    if modules and MODULE in modules:
        return f"{path} already lists {MODULE}"
    updated = _add_module_text(text, modules)
    check = yaml.safe_load(updated)
    if not isinstance(check, dict) or MODULE not in (check.get("modules") or []):
        raise ValueError(f"{path}: could not add {MODULE} to 'modules' safely; add it by hand")
    kept = [m for m in (modules or LIBCST_DEFAULT_MODULES)]
    if check["modules"][: len(kept)] != kept:
        raise ValueError(f"{path}: could not add {MODULE} to 'modules' safely; add it by hand")
    path.write_text(updated, encoding="utf-8")
    return f"added {MODULE} to 'modules' in {path}"


def _add_module_text(text: str, modules: list[str] | None) -> str:
    """Insert the module into the YAML text, keeping the user's comments and layout."""
    if modules is None:
        entries = "".join(f"- {m}\n" for m in [*LIBCST_DEFAULT_MODULES, MODULE])
        return text + ("" if text.endswith("\n") or not text else "\n") + "modules:\n" + entries
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        flow = re.match(r"^modules:\s*\[(.*)\]\s*(#.*)?$", line.rstrip("\n"))
        if flow:
            inner = flow.group(1).strip()
            items = f"{inner}, {MODULE}" if inner else MODULE
            comment = f"  {flow.group(2)}" if flow.group(2) else ""
            lines[index] = f"modules: [{items}]{comment}\n"
            return "".join(lines)
        if re.match(r"^modules:\s*(#.*)?$", line.rstrip("\n")):
            end = index + 1
            indent = ""
            while end < len(lines):
                item = re.match(r"^(\s*)-\s", lines[end])
                if item:
                    indent = item.group(1)
                    end += 1
                elif not lines[end].strip() or lines[end].lstrip().startswith("#"):
                    end += 1
                else:
                    break
            while end > index + 1 and not re.match(r"^\s*-\s", lines[end - 1]):
                end -= 1
            if end > 0 and not lines[end - 1].endswith("\n"):
                lines[end - 1] += "\n"
            lines.insert(end, f"{indent}- {MODULE}\n")
            return "".join(lines)
    raise ValueError("no top-level 'modules:' line found")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["convert"]:
        try:
            from ml_switcheroo import convert

            return convert.main(argv[1:])
        except KeyboardInterrupt:  # before convert.main installs its handlers, or after
            from ml_switcheroo.app.interrupt import interrupted

            return interrupted(argv)
    parser = argparse.ArgumentParser(
        prog="ml-switcheroo",
        description="Translate PyTorch optimizer code to JAX/Optax (LibCST codemods).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser(
        "init",
        help=f"write or update {CONFIG_NAME} so `python -m libcst.tool codemod "
        f"optimizer.TorchToOptax PATH` works in your repository",
    )
    init.add_argument("directory", nargs="?", default=".", type=Path)
    report = commands.add_parser("report", help="work with migration reports")
    report_commands = report.add_subparsers(dest="report_command", required=True)
    merge = report_commands.add_parser(
        "merge",
        help="combine the JSON reports of `convert --shard K/N` runs into the report of one "
        "run over all the files",
    )
    merge.add_argument(
        "reports", nargs="+", metavar="REPORT.json", help="the --report JSON file of each shard"
    )
    merge.add_argument(
        "--out",
        action="append",
        required=True,
        metavar="FILE",
        help="write the merged report to FILE.json or FILE.md (repeatable)",
    )
    commands.add_parser(
        "convert",
        add_help=False,
        help="convert the Python files under PATHS (diff by default, --in-place, --check, "
        "--report); see `ml-switcheroo convert --help`",
    )
    args = parser.parse_args(argv)
    if args.command == "init":
        import yaml

        try:
            print(init_config(args.directory))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            print(f"ml-switcheroo init: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 2
        return 0
    if args.command == "report":
        return merge_reports(args.reports, args.out)
    return 2  # pragma: no cover - argparse rejects unknown commands


def merge_reports(inputs: Sequence[str], outputs: Sequence[str]) -> int:
    """``ml-switcheroo report merge``: 0 when written, 2 for bad input, 3 when an output cannot
    be written (one line on stderr)."""
    import json

    from ml_switcheroo.app import files, migration_report

    def fail(message: str) -> int:
        print(f"ml-switcheroo report merge: error: {message}", file=sys.stderr)
        return 2

    for target in outputs:
        if Path(target).suffix.lower() not in (".json", ".md"):
            return fail(f"--out {target}: the name must end in .json or .md")
    reports = []
    for name in inputs:
        try:
            reports.append(json.loads(Path(name).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            return fail(f"{name}: {str(exc).splitlines()[0]}")
    try:
        merged = migration_report.merge(reports)
    except (ValueError, TypeError, AttributeError) as exc:
        return fail(f"cannot merge: {exc}")
    except KeyError as exc:
        return fail(f"not a complete migration report: no {exc} in it")
    for target in outputs:
        render = migration_report.to_json
        if Path(target).suffix.lower() == ".md":
            render = migration_report.to_markdown
        try:
            files.atomic_write(target, render(merged).encode("utf-8"))
        except OSError as exc:
            fail(f"cannot write {target}: {exc}")
            return 3
    return 0


def console_main() -> NoReturn:
    """The ``ml-switcheroo`` program: ``main``, then the process ends without freeing its
    objects one by one (``app.exit.end``)."""
    from ml_switcheroo.app.exit import end

    end(main())


if __name__ == "__main__":
    console_main()
