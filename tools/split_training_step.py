#!/usr/bin/env python3
"""Split ``ml_switcheroo/targets/nnx/training_step.py`` into modules by concern; re-runnable.

    python tools/split_training_step.py REPO_ROOT [--dry-run] [--no-verify]

``training_step.py`` is read with ``ast``. Each top-level statement after the imports becomes
a chunk: its source lines with its decorators and everything between it and the previous
statement (the comments just above it). A chunk goes to a module by these rules, in order:

1. the table (``MODULE_NAMES``), names known when the script was written;
2. the word rules (``WORD_RULES``): the first rule one of whose words starts a word of the
   name (``_criterion_moves`` -> ``criterion``);
3. the call graph: the lowest module of the names that use it (a helper goes with its users),
   else the core when nothing in the file uses it (a hook or a public function).

Every name placed by rule 2 or 3 is printed. Imports must go downward (``LEVELS``: syntax
helpers at the bottom, ``training_step.py`` itself on top): a chunk placed by a rule that uses
a name of a higher module moves up to it, one used by a lower module moves down to it, when
that keeps every import downward; otherwise the script stops and names the chunk (add it to
the table). ``training_step.py`` keeps the hook and the step's assembly, and re-exports every
name any ``*.py`` of the repository imports from it, and its public names.

Imports are computed (each module gets training_step.py's imports and every moved name it
mentions; ``ruff check --fix --select F401,I`` drops the unused ones), then ``ruff format`` and
``ruff check``. Refuses to run when a ``step_*.py`` module of ``LEVELS`` exists. Checks before
writing that no chunk or comment is lost; after writing (``--no-verify`` skips it, it imports
the package) that every function of the old file exists with the same bytecode and resolves
every global name it loads to the same object.
"""

from __future__ import annotations

import argparse
import ast
import copy
import io
import json
import re
import subprocess
import sys
import textwrap
import tokenize
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "ml_switcheroo.targets.nnx"
CORE = "training_step"

# Bottom first; a module imports only modules of a lower level.
LEVELS: dict[str, int] = {
    "step_syntax": 0,
    "step_models": 1,
    "step_loss_fn": 1,
    "step_shared": 2,
    "step_region": 2,
    "step_checks": 3,
    CORE: 4,
}

# Each module's docstring: paragraphs (wrapped to the line length when written).
DOCSTRINGS: dict[str, tuple[str, ...]] = {
    "step_syntax": (
        "The NNX training step's syntax helpers: the names a statement binds or reads, its "
        "lone call, the callees of statements, the one value a name holds "
        "(``_target_names``, ``_variables_of``, ``_lone_call``, ``_one_value``...), answered "
        "from the syntax and the bindings alone.",
    ),
    "step_models": (
        "The NNX training step's model and criterion: which model the forward pass trains "
        "(the one the optimizer was built over, through wrappers, parameters and other files), "
        "the calls a loss function may make, and the criteria a step calls "
        "(``_model_in_step``, ``_trains``, ``_check_known_calls``, ``_is_criterion``...).",
    ),
    "step_loss_fn": (
        "The NNX training step's rendering: the loss function ``loss_fn(model)``, its "
        "``has_aux`` outputs (the values read after the step), snapshots, the gradient and "
        "update lines, and the norms of folded clips (``_render``, ``_aux_names``...).",
    ),
    "step_shared": (
        "The NNX training step's checks on names and memory the step shares with the code "
        "around it: namesakes read after the step, arrays changed in place, aliases of a "
        "stored value (``_check_namesakes_after``, ``_check_no_shared_change``, "
        "``_check_traceable``...).",
    ),
    "step_region": (
        "The NNX training step's region: the forward pass up to the loss, the backward pass, "
        "summed losses and backward passes, snapshots, the micro-step loop, and the forward "
        "pass a generator step reaches (``_forward``, ``_loss_slice``, ``_micro_loop``, "
        "``_pullbacks``...).",
    ),
    "step_checks": (
        "The NNX training step's checks and escapes on the statements around the loss: the "
        "tail after the backward pass, zeroing of the gradients, scalers and clips, one "
        "optimizer and one backward pass, the model's values outside the step "
        "(``_check_tail``, ``_model_zeroed``, ``_check_after_backward``...).",
    ),
}
NOTE = "Split from ``training_step.py`` by ``tools/split_training_step.py``."
CORE_NOTE = (
    "The step is split by concern (``tools/split_training_step.py``): ``step_syntax`` (syntax "
    "helpers), ``step_models`` (the model and criterion), ``step_loss_fn`` (rendering the loss "
    "function and its outputs), ``step_shared`` (names and memory shared with the code "
    "around), ``step_region`` (forward and backward passes), ``step_checks`` (checks and "
    "escapes); this module keeps the hook and the step's assembly and re-exports the names "
    "other modules import from it."
)
LINE = 96

# The table: where each known name goes.
# fmt: off
MODULE_NAMES: dict[str, tuple[str, ...]] = {
    "step_syntax": (
        "_NESTED", "_short", "_shown", "_scope", "_contains", "_assigned_call", "_lone_small",
        "_lone_call", "_is_zero_grad", "_is_assignment", "_targets", "_target_names",
        "_bound_names", "_calls_method_named", "_calls_method", "_callees", "_names_of",
        "_variables_of", "_variable_names", "_one_value", "_distinct", "_tuple",
        "_is_scaler_call", "_stepped_optimizer", "_is_method_call", "_statement_of",
        "_is_constructor", "_is_optimizer",
    ),
    "step_models": (
        "LIBRARIES", "_CRITERION_MOVES", "_model_in_step", "_passed_model", "_another_callee",
        "_read_before", "_computed_before", "_trains", "_unbound_model", "_rebound_models",
        "_model_value", "_model_across_files", "_name_or_self_attribute", "_one_object",
        "_check_known_calls", "_known_call", "_helper_reason", "_check_no_mapped_api",
        "_rebuilt_constructor", "_method_receiver", "_may_be_a_model", "_passed_loss",
        "_one_criterion", "_criteria_reaching", "_is_criterion", "_same_model",
        "_generator_pullback",
    ),
    "step_loss_fn": (
        "GRADIENT", "GRADIENT_AUX", "UPDATE", "SUMMED", "_render", "_lr_written",
        "_added_undetached", "_with_snapshots", "_aux_names", "_check_bound_before_read",
        "_unwrapped_reads", "_with_model", "_norm_lines", "_clip_norms",
    ),
    "step_shared": (
        "_check_traceable", "_exact_texts", "_check_namesakes_after", "_assigned_from",
        "_check_no_shared_change", "_shared_names", "_shared_change_of", "_array_problem",
        "_in_other_steps", "_before_backwards", "_after_update_texts", "_store_targets",
        "_receiver", "_receiver_text", "_bound_in", "_unpacked", "_data_names", "_read_names",
        "_sources", "_stored_value", "_stored_names",
    ),
    "step_region": (
        "_MicroLoop", "_micro_loop", "_accumulator_start", "_adds_to", "_check_micro_loop",
        "_looped", "_split_prefix", "_forward", "_check_for_loss", "_forward_missing",
        "_with_computing", "_run_after_gradient", "_in_place_for_loss", "_snapshot_names",
        "_snapshots", "_summed_backwards", "_summed_losses", "_retains_graph",
        "_before_backward", "_loss_slice", "_changed_in_place", "_pullbacks", "_link_of",
    ),
    "step_checks": (
        "_check_prefix_reads_no_forward_value", "_accumulated_check", "_model_zeroed",
        "_zero_before_region", "_trailing_module_zero", "_logged_before_check", "_logged",
        "_check_prefix_untouched", "_check_no_torch_only_model_use", "_with_dropped_comments",
        "_above", "_comment_lines", "_check_backward", "_check_not_under_with", "_check_tail",
        "_lr_reads_or", "_may_change_other_values", "_check_after_backward",
        "_folded_or_unscale", "_check_one_optimizer", "_check_one_backward",
        "_check_others_plain", "_check_no_model_value_outside",
        "_check_no_model_value_reaching", "_is_folded_clip", "unfolded_clip",
        "_zero_function_problem",
    ),
    CORE: (
        "SUGGESTION", "CLIPPED", "nnx_training_step", "_unfolded_clips", "_rendered_branch",
        "_untranslated_optimizer", "_optimizer_text", "_rendered_step",
        "_request_template_imports", "_method_built",
    ),
}
# fmt: on

# Names not in the table: the first rule one of whose words starts a word of the name places it.
WORD_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("step_shared", ("shared", "namesake", "alias", "stored", "receiver", "traceable")),
    ("step_models", ("model", "criterion", "criteria", "callee", "trains", "helper", "known")),
    ("step_loss_fn", ("render", "aux", "output", "norm", "undetached")),
    ("step_region", ("forward", "backward", "loss", "snapshot", "micro", "summed", "pullback")),
    ("step_checks", ("check", "zero", "logged", "comment", "scaler", "clip", "tail")),
)


@dataclass
class Chunk:
    """One top-level statement: its names, source text and module."""

    names: tuple[str, ...]
    text: str
    node: ast.stmt
    module: str = ""
    by_table: bool = False
    uses: set[str] = field(default_factory=set)


def fail(message: str) -> None:
    sys.exit(f"split_training_step: {message}")


def defined_names(node: ast.stmt) -> tuple[str, ...]:
    """The names a top-level statement binds."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return (node.name,)
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    names = tuple(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    if not names:
        fail(f"line {node.lineno}: a top-level statement that binds no name: {type(node).__name__}")
    return names


def used_names(node: ast.AST) -> set[str]:
    """Every name ``node`` mentions (loads, annotations, decorators, defaults)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def chunks_of(lines: list[str], body: list[ast.stmt], start: int) -> list[Chunk]:
    """``body``'s statements as chunks; a chunk's text starts after the previous statement
    (comments above it go with it) and ends with its last line."""
    chunks = []
    previous_end = start
    for node in body:
        end = node.end_lineno or node.lineno
        text = "".join(lines[previous_end:end]).lstrip("\n")
        chunks.append(Chunk(defined_names(node), text, node))
        previous_end = end
    return chunks


def word_rule(name: str) -> str | None:
    words = [w for w in name.lower().split("_") if w]
    for module, keys in WORD_RULES:
        if any(w.startswith(k) for w in words for k in keys):
            return module
    return None


def comments(source: str) -> Counter[str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return Counter(t.string for t in tokens if t.type == tokenize.COMMENT)


def docstring(paragraphs: Sequence[str]) -> str:
    """A triple-quoted docstring of ``paragraphs``, each wrapped to ``LINE``."""
    text = "\n\n".join(textwrap.fill(p, LINE) for p in paragraphs)
    return f'"""{text}\n"""'


class Split:
    """The split of one training_step.py: chunks by module, and the texts of the new modules."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / "ml_switcheroo" / "targets" / "nnx"
        self.path = self.folder / f"{CORE}.py"
        self.source = self.path.read_text(encoding="utf-8")
        self.tree = ast.parse(self.source)
        self.lines = self.source.splitlines(keepends=True)
        self.exported: set[str] = set()
        self.refuse_if_split()
        self.docstring, self.imports, self.statements = self.top_level()
        self.place()

    def refuse_if_split(self) -> None:
        existing = [m for m in LEVELS if m != CORE and (self.folder / f"{m}.py").exists()]
        if existing:
            fail(f"already split: {', '.join(existing)} exist; run it on an unsplit file")

    def top_level(self) -> tuple[str, list[str], list[Chunk]]:
        body = list(self.tree.body)
        first = body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
            fail(f"{CORE}.py has no module docstring")
        doc = ast.get_source_segment(self.source, first) or ""
        if not doc.startswith('"""') or not doc.endswith('"""'):
            fail(f"{CORE}.py's docstring is not in triple double quotes")
        imports = [  # one line each: ruff wraps what it keeps (no stale magic commas)
            ast.unparse(n)
            for n in body
            if isinstance(n, ast.Import | ast.ImportFrom)
            and not (isinstance(n, ast.ImportFrom) and n.module == "__future__")
        ]
        last_import = max(
            i for i, n in enumerate(body) if isinstance(n, ast.Import | ast.ImportFrom)
        )
        if any(isinstance(n, ast.Import | ast.ImportFrom) for n in body[last_import + 1 :]):
            fail("an import after the first definition")
        rest = body[last_import + 1 :]
        chunks = chunks_of(self.lines, rest, body[last_import].end_lineno or 0)
        chunks[-1].text += "".join(self.lines[rest[-1].end_lineno or 0 :])
        return doc, imports, chunks

    def home(self) -> dict[str, str]:
        return {n: c.module for c in self.statements for n in c.names}

    def users(self) -> dict[str, set[str]]:
        """Each top-level name: the top-level names whose chunks use it."""
        found: dict[str, set[str]] = {n: set() for c in self.statements for n in c.names}
        for chunk in self.statements:
            for name in chunk.uses & found.keys():
                found[name].update(chunk.names)
        return found

    def place(self) -> None:
        """Each chunk's module by the table, the word rules, then the call graph (printed);
        then chunks not in the table move until every import goes downward."""
        table = {n: m for m, names in MODULE_NAMES.items() for n in names}
        defined = set(self.home())
        for chunk in self.statements:
            chunk.uses = (used_names(chunk.node) - set(chunk.names)) & defined
            known = {table[n] for n in chunk.names if n in table}
            if len(known) > 1:
                fail(f"{chunk.names}: in the table for {sorted(known)}")
            if known:
                chunk.module, chunk.by_table = known.pop(), True
        users = self.users()
        for chunk in sorted(self.statements, key=lambda c: -len(c.uses)):
            self.place_by_rule(chunk, users)
        gone = sorted(set(table) - defined)
        if gone:
            print(f"table names not in {CORE}.py (renamed or removed?): {gone}")
        self.settle()

    def place_by_rule(self, chunk: Chunk, users: dict[str, set[str]]) -> None:
        """A chunk not in the table: by its words, else with its lowest user, else the core."""
        if chunk.by_table:
            return
        name = chunk.names[0]
        rule = word_rule(name)
        if rule:
            chunk.module, why = rule, "word rule"
        else:
            placed = self.placed_users(chunk, users)
            if placed:
                chunk.module = min(placed, key=LEVELS.__getitem__)
                why = "its lowest user"
            else:
                chunk.module, why = CORE, "used by nothing in the file"
        print(f"unknown {', '.join(chunk.names)} -> {chunk.module} ({why})")

    def placed_users(self, chunk: Chunk, users: dict[str, set[str]], seen=None) -> set[str]:
        """The modules of the chunks that use ``chunk`` (through unplaced users, theirs)."""
        seen = seen if seen is not None else set()
        by_name = {n: c for c in self.statements for n in c.names}
        modules: set[str] = set()
        for user in sorted(set().union(*(users[n] for n in chunk.names)) - seen):
            seen.add(user)
            other = by_name[user]
            if other.module:
                modules.add(other.module)
            else:
                modules |= self.placed_users(other, users, seen)
        return modules

    def settle(self) -> None:
        """Move chunks placed by a rule until no module imports from a module at or above its
        level; stop naming the chunk when none can move."""
        for _ in range(len(self.statements) + 1):
            wrong = self.wrong_imports()
            if not wrong:
                return
            moved = False
            for chunk, target in wrong:
                if not chunk.by_table and self.can_move(chunk, target):
                    print(f"moved {', '.join(chunk.names)}: {chunk.module} -> {target}")
                    chunk.module = target
                    moved = True
                    break
            if not moved:
                chunk, target = wrong[0]
                fail(
                    f"{', '.join(chunk.names)} ({chunk.module}) would need {target}'s names or "
                    "be needed below it: add the names involved to MODULE_NAMES"
                )
        fail("the placement does not settle")

    def wrong_imports(self) -> list[tuple[Chunk, str]]:
        """(chunk, module it would have to move to) for each import that does not go down:
        a chunk using a name of a module at its level or above, or used from below."""
        home = self.home()
        wrong = []
        for chunk in self.statements:
            for name in sorted(chunk.uses):
                other = home[name]
                if other == chunk.module or LEVELS[other] < LEVELS[chunk.module]:
                    continue
                by_name = next(c for c in self.statements if name in c.names)
                wrong.append((chunk, other))  # the user moves up to the used name ...
                wrong.append((by_name, chunk.module))  # ... or the used name moves down
        return wrong

    def can_move(self, chunk: Chunk, target: str) -> bool:
        """Whether ``chunk`` in ``target`` imports only from below and is imported only from
        above."""
        home = self.home()
        level = LEVELS[target]
        for name in chunk.uses:
            if home[name] != target and LEVELS[home[name]] >= level:
                return False
        for other in self.statements:
            if other is chunk or not (set(chunk.names) & other.uses):
                continue
            if other.module != target and LEVELS[other.module] <= level:
                return False
        return True

    def reexports(self) -> set[str]:
        """Names imported from the core by any module of the repository, and public names."""
        wanted = {n for c in self.statements for n in c.names if not n.startswith("_")}
        skip = {".venv", ".git", "node_modules", "build", "dist"}
        for path in self.root.rglob("*.py"):
            if skip & set(path.relative_to(self.root).parts) or path == self.path:
                continue
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module == f"{PACKAGE}.{CORE}":
                    wanted.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module == PACKAGE:
                    if any(a.name == CORE for a in node.names):
                        print(f"warning: {path} imports the module {CORE}: check it")
                elif isinstance(node, ast.Import) and any(
                    a.name == f"{PACKAGE}.{CORE}" for a in node.names
                ):
                    print(f"warning: {path} imports the module {CORE}: check it")
        return wanted

    def module_text(
        self, module: str, chunks: list[Chunk], imports: list[str], extra: set[str] = frozenset()
    ) -> str:
        """A module's source before ruff: docstring, imports, its chunks in the old order."""
        home = self.home()
        uses = set(extra).union(*(c.uses for c in chunks))
        own = {n for c in chunks for n in c.names}
        imports = list(imports)
        by_module: dict[str, list[str]] = {}
        for name in sorted(uses - own):
            if name in home and home[name] != module:
                by_module.setdefault(home[name], []).append(name)
        for other, names in sorted(by_module.items()):
            if LEVELS[other] >= LEVELS[module]:
                fail(f"{module} would import {names} from {other}")
            shown = [f"{n} as {n}" if n in extra else n for n in names]
            imports.append(f"from {PACKAGE}.{other} import {', '.join(shown)}")
        doc = docstring((*DOCSTRINGS.get(module, ()), NOTE)) if module != CORE else '""""""'
        head = f"{doc}\n\nfrom __future__ import annotations\n\n" + "\n".join(imports)
        return head + "\n\n\n" + "\n\n".join(c.text.rstrip("\n") + "\n" for c in chunks)

    def texts(self) -> dict[str, str]:
        texts: dict[str, str] = {}
        for module in LEVELS:
            chunks = [c for c in self.statements if c.module == module]
            if module != CORE and chunks:
                texts[module] = self.module_text(module, chunks, self.imports)
        texts[CORE] = self.core_text()
        return texts

    def core_text(self) -> str:
        chunks = [c for c in self.statements if c.module == CORE]
        home = self.home()
        wanted = self.reexports()
        exported = {n for n in wanted if home.get(n, CORE) != CORE}
        imported = self.imported_names()
        missing = wanted - set(home) - set(imported)
        if missing:
            print(f"warning: imported from {CORE} but not defined there: {sorted(missing)}")
        self.exported = exported | (wanted & set(imported))
        imports = self.reexporting_imports(wanted - set(home))
        text = self.module_text(CORE, chunks, imports, extra=exported)
        note = textwrap.fill(CORE_NOTE, LINE)
        doc = self.docstring[:-3].rstrip("\n") + "\n\n" + note + "\n"
        return f'{doc}"""' + text[text.index('""""""') + 6 :]

    def reexporting_imports(self, names: set[str]) -> list[str]:
        """The file's imports, those of ``names`` written ``name as name`` (a re-export)."""
        lines = []
        for node in self.tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom) and not (
                isinstance(node, ast.ImportFrom) and node.module == "__future__"
            ):
                node = copy.deepcopy(node)
                for alias in node.names:
                    if (alias.asname or alias.name) in names and "." not in alias.name:
                        alias.asname = alias.asname or alias.name
                lines.append(ast.unparse(node))
        return lines

    def imported_names(self) -> dict[str, tuple[str, str]]:
        """Each name the file imports with ``from``: its module and its name there."""
        found = {}
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.update({a.asname or a.name: (node.module, a.name) for a in node.names})
        return found

    def check_nothing_lost(self, texts: dict[str, str]) -> None:
        before = comments(self.source)
        after = sum((comments(t) for t in texts.values()), Counter())
        lost = before - after
        if lost:
            fail(f"comments lost: {list(lost)[:5]}")
        defined: Counter[str] = Counter()
        for text in texts.values():
            for node in ast.parse(text).body:
                if not isinstance(node, ast.Import | ast.ImportFrom | ast.Expr):
                    defined.update(defined_names(node))
        expected = Counter(n for c in self.statements for n in c.names)
        if defined != expected:
            fail(f"definitions differ: +{defined - expected} -{expected - defined}")


WRAPPED_IMPORT = re.compile(r"^from (\S+) import \(\n((?:    .+,\n)+)\)$", re.MULTILINE)


def unwrap_imports(path: Path) -> None:
    """Joins a parenthesized import to one line when it fits (ruff's fix of unused names
    leaves the magic trailing comma that keeps it wrapped)."""

    def joined(match: re.Match[str]) -> str:
        names = ", ".join(n.strip().rstrip(",") for n in match.group(2).splitlines())
        line = f"from {match.group(1)} import {names}"
        return line if len(line) <= 100 else match.group(0)

    path.write_text(WRAPPED_IMPORT.sub(joined, path.read_text(encoding="utf-8")), "utf-8")


def ruff(root: Path, paths: list[Path]) -> None:
    files = [str(p) for p in paths]
    ruff_bin = Path(sys.executable).with_name("ruff")
    command = [str(ruff_bin)] if ruff_bin.exists() else [sys.executable, "-m", "ruff"]
    run = [
        [*command, "check", "--fix", "--select", "F401,I", "--quiet", *files],
        [*command, "format", "--quiet", *files],
        [*command, "check", "--quiet", *files],
    ]
    for args in run:
        if args[len(command)] == "format":
            for path in paths:
                unwrap_imports(path)
        done = subprocess.run(args, cwd=root, capture_output=True, text=True)
        if done.returncode:
            print(done.stdout + done.stderr)
            fail(f"`{' '.join(args[len(command) : len(command) + 1])}` failed (see above)")


VERIFY = r"""
import dis, importlib, importlib.util, json, sys, types

root, old_path, package, core, homes, exported = sys.argv[1:7]
homes, exported = json.loads(homes), json.loads(exported)
sys.path.insert(0, root)
name = f"{package}._{core}_before_split"
spec = importlib.util.spec_from_file_location(name, old_path)
old = importlib.util.module_from_spec(spec)
sys.modules[name] = old
spec.loader.exec_module(old)
importlib.import_module(f"{package}.{core}")
new = {n: vars(sys.modules[f"{package}.{m}"])[n] for n, m in homes.items()}
problems, checked = [], 0


def codes(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from codes(const)


def loaded(function):
    return {
        i.argval
        for code in codes(function.__code__)
        for i in dis.get_instructions(code)
        if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    }


def shape(code):
    # the code object without its file name and line numbers
    consts = tuple(shape(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return (code.co_code, code.co_names, code.co_varnames, code.co_freevars, consts)


def check(where, before, after):
    global checked
    checked += 1
    if after is None:
        problems.append(f"{where}: missing")
        return
    if shape(before.__code__) != shape(after.__code__):
        problems.append(f"{where}: its code differs")
    for name in loaded(before) - {"__name__"}:
        if name in homes:
            same = after.__globals__.get(name) is new[name]
        else:
            same = before.__globals__.get(name, "?") is after.__globals__.get(name, "?")
        if not same:
            problems.append(f"{where}: the global {name} resolves to another object")


def ours(function):
    return isinstance(function, types.FunctionType) and function.__code__.co_filename == old_path


for key, value in vars(old).items():
    if ours(value):
        check(key, value, new.get(key))
    elif isinstance(value, type) and value.__module__ == old.__name__:
        for attr, member in vars(value).items():
            if ours(member):
                check(f"{key}.{attr}", member, vars(new[key]).get(attr))
    elif key in homes and not key.startswith("__") and not isinstance(value, types.ModuleType):
        checked += 1
        if new[key] != value:
            problems.append(f"{key}: its value differs")
core_module = sys.modules[f"{package}.{core}"]
for key in exported:
    if getattr(core_module, key, None) is not new[key]:
        problems.append(f"{core}.{key} is not the moved object")
print(f"verified {checked} functions, methods and values of the old {core}.py")
if problems:
    print("\n".join(problems))
    sys.exit(1)
"""


def verify(
    root: Path, folder: Path, old_source: str, homes: dict[str, str], exported: set[str]
) -> None:
    """Imports the split package and the old file side by side: every function and method
    has the same code, and every global name it loads resolves to the same object."""
    old = folder / f"_{CORE}_before_split.py"
    old.write_text(old_source, encoding="utf-8")
    moved = sorted(exported & homes.keys())
    args = [str(root), str(old), PACKAGE, CORE, json.dumps(homes), json.dumps(moved)]
    try:
        done = subprocess.run(
            [sys.executable, "-c", VERIFY, *args], cwd=root, capture_output=True, text=True
        )
    finally:
        old.unlink()
    print((done.stdout + done.stderr).strip())
    if done.returncode:
        fail("verification failed (see above)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the repository root (holds ml_switcheroo/)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    parser.add_argument("--no-verify", action="store_true", help="skip the import check")
    args = parser.parse_args()
    root = args.root.resolve()
    split = Split(root)
    texts = split.texts()
    split.check_nothing_lost(texts)
    if args.dry_run:
        for module, text in texts.items():
            print(f"{module}: ~{text.count(chr(10))} lines before ruff")
        return
    paths = []
    for module, text in texts.items():
        path = split.folder / f"{module}.py"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    ruff(root, paths)
    kept = {
        n
        for n in split.exported
        if re.search(rf"\b{re.escape(n)} as {re.escape(n)}\b", split.path.read_text())
    }
    if kept != split.exported:
        fail(f"re-exports lost: {sorted(split.exported - kept)}")
    for path in paths:
        print(f"{path.relative_to(root)}: {len(path.read_text().splitlines())} lines")
    print(f"{CORE}.py re-exports {len(split.exported)} names")
    if not args.no_verify:
        homes = split.home()
        verify(root, split.folder, split.source, homes, split.exported)


if __name__ == "__main__":
    main()
