#!/usr/bin/env python3
"""Split ``ml_switcheroo/analysis/plan.py`` into modules by concern; re-run it on a merged plan.py.

    python tools/split_plan.py REPO_ROOT [--dry-run] [--no-verify]

``plan.py`` is read with ``ast``. Each top-level statement and each ``Planner`` method becomes a
chunk: its source lines with its decorators and everything between it and the previous chunk
(comments just above it). A chunk goes to a module by ``MODULE_NAMES`` / ``METHOD_NAMES`` (the
table). A name not in the table is printed with where it went: a dataclass to ``plan_facts``, a
method by ``METHOD_RULES`` (words of its name), else with its neighbour (the module of the
nearest chunk above it that the table places; ``plan_places`` / the core when there is none).
A module-level chunk that uses a name of a higher module moves up to it (printed), so imports
only go upward (``LEVELS``): data types and walks at the bottom, the mixins above them,
``plan.py`` (the core: ``Planner`` built from the mixins) on top; a mixin method that uses a
name left in ``plan.py`` stops the script. ``plan.py`` re-exports every name any ``*.py`` of
the repository imports from ``ml_switcheroo.analysis.plan``, and the public names. Imports are
computed (each module gets plan.py's imports and every moved name it mentions; ``ruff check
--fix --select F401,I`` drops the unused ones), then ``ruff format`` and ``ruff check``.

Refuses to run when plan.py is already split (a ``plan_*.py`` module exists, or ``Planner`` has
bases). Checks before writing that no chunk, comment or ``Planner`` method is lost; checks after
writing (``--no-verify`` skips it, it imports the package) that every function of the old plan.py
exists with the same bytecode and resolves every global name it loads to the same object.
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

PACKAGE = "ml_switcheroo.analysis"
CORE = "plan"

# Bottom first; a module imports only modules of a lower level.
LEVELS: dict[str, int] = {
    "plan_facts": 0,
    "plan_walks": 1,
    "plan_places": 2,
    "plan_collector": 3,
    "plan_schedules": 4,
    "plan_stepping": 4,
    "plan_epochs": 4,
    "plan_notes": 4,
    "plan_clips": 4,
    "plan_models": 4,
    "plan_regions": 4,
    CORE: 5,
}

# The mixin class of each mixin module, in the order of Planner's bases.
MIXINS: dict[str, str] = {
    "plan_schedules": "ScheduleFacts",
    "plan_stepping": "SteppingFacts",
    "plan_epochs": "EpochFacts",
    "plan_notes": "NoteFacts",
    "plan_clips": "ClipFacts",
    "plan_models": "ModelFacts",
    "plan_regions": "RegionFacts",
}

# Each module's docstring: paragraphs (wrapped to the line length when written).
DOCSTRINGS: dict[str, tuple[str, ...]] = {
    "plan_facts": (
        "The planner's facts: what a file's ``Plan`` holds (``Site``, ``SchedulePlan``, "
        "``Warmup``, ``Region``, ``SubsetClip``, ``Attachments``, ``Plan``) and the constants "
        "the planner's modules share.",
        "Split from ``plan.py`` by ``tools/split_plan.py``; imports no other ``plan_*`` module.",
    ),
    "plan_walks": (
        "The planner's syntax walks and queries: calls, names, attributes and methods found in "
        "a node (``_calls_of``, ``_attribute_read``, ``_walk_calls``, ``_mentions``...), "
        "answered from the syntax alone.",
        "Split from ``plan.py`` by ``tools/split_plan.py``.",
    ),
    "plan_places": (
        "Where the planner's calls are and what happens around them: the control a statement "
        "runs under, statement order, stored paths, and what a call's arguments hold "
        "(``_runs_conditionally``, ``_follows``, ``_store_paths``, ``_first_freeze``...).",
        "Split from ``plan.py`` by ``tools/split_plan.py``.",
    ),
    "plan_collector": (
        "The planner's one walk of a module (``_Collector``): every wired call with its "
        "statement, block and enclosing loops.",
        "Split from ``plan.py`` by ``tools/split_plan.py``.",
    ),
    "plan_schedules": (
        "``Planner`` on LR schedulers: attaching each scheduler (and factory-built schedules, "
        "warmup pairs) to its optimizer, and the statements to move so that the schedule "
        "precedes the optimizer.",
    ),
    "plan_stepping": (
        "``Planner`` on how often a scheduler's ``step()`` runs: once per update, once per "
        "epoch (counted epochs, phases, metric epochs), every k updates, or unknown.",
    ),
    "plan_epochs": (
        "``Planner`` on schedulers stepped once per epoch: the batch loop that counts the "
        "updates, steps handed to other functions, and updates the loop does not see.",
    ),
    "plan_notes": (
        "``Planner``'s words for escape reasons: where an object comes from and where it goes "
        "(``_origin``, ``_where_it_goes``, ``_place``...).",
    ),
    "plan_clips": (
        "``Planner`` on gradient clipping: which clip calls become the head of an optimizer's "
        "chain, clips of a subset of the parameters, and clip values that vary.",
    ),
    "plan_models": (
        "``Planner`` on optimizers' models and gradients: ``zero_grad`` calls, frozen "
        "parameters, models changed after the optimizer is built, torch-only uses.",
    ),
    "plan_regions": (
        "``Planner`` on training-step regions: the statements from the forward pass to "
        "``opt.step()`` that share one escape hatch.",
    ),
}
MIXIN_NOTE = (
    "Split from ``plan.py`` by ``tools/split_plan.py``: the methods of ``{mixin}`` run on "
    "``Planner`` (one of its bases) and use the state ``Planner.__init__`` sets."
)
CORE_NOTE = (
    "The planner is split by concern (``tools/split_plan.py``): ``plan_facts`` (data types), "
    "``plan_walks`` and ``plan_places`` (module-level walks and queries), ``plan_collector``, "
    "and the mixins ``Planner`` is built from ({mixins}); this module keeps the core and "
    "re-exports the names other modules import from it."
)
LINE = 96


def docstring(paragraphs: Sequence[str], indent: str = "") -> str:
    """A triple-quoted docstring of ``paragraphs``, each wrapped to ``LINE``."""
    text = "\n\n".join(
        textwrap.fill(p, LINE, initial_indent=indent, subsequent_indent=indent) for p in paragraphs
    )
    return f'"""{text.lstrip()}\n{indent}"""'


# The table: where each known name goes (kept one per line would be 300 lines).
# fmt: off
MODULE_NAMES: dict[str, tuple[str, ...]] = {
    "plan_facts": (
        "_LOOPS", "COUNTED", "_CONTROL", "_is_control", "WireFunction", "Site", "SchedulePlan",
        "Warmup", "Region", "SubsetClip", "Attachments", "PlanItem", "Plan",
    ),
    "plan_collector": ("_Collector", "_assigned_target", "_is_expression_statement"),
    "plan_walks": (
        "_is_attribute", "_impure_calls", "_bound_names", "_names", "_node_ids",
        "_mentions_but_lr_reads", "_one_literal_index", "_mentions", "_is_name_or_attribute",
        "_is_attribute_node", "_written_as", "_calls_self_method", "_calls_of",
        "_attribute_read", "_SCHEDULER_READS", "_methods_called_on", "_only_method_receiver",
        "_handed_as_argument", "_function_arguments", "_walk_calls", "_defs_named",
        "_attr_uses", "_calls_named", "_short", "_parameter_functions", "_declared_global",
        "_owner_of", "_plain", "_direct_call", "_self_name", "_function_name", "_calls_name",
        "_references_of", "_calls_in", "_arguments_mention", "_method_receivers",
        "_method_parameter", "_is_self_call", "_enclosing_def", "_AttributeStores",
        "_attribute_stores", "_name_uses", "_attribute_reads", "_method_calls_other_than",
    ),
    "plan_places": (
        "_optimizer_argument", "_parameters_of", "_elements", "_combined_into", "_first_freeze",
        "_EXPRESSION_CONTROL", "_runs_conditionally", "_same_control", "_follows", "_loss_name",
        "_BUILTIN_NAMES", "_paths", "_schedule_values", "_store_paths", "_store_targets",
        "_path_nodes", "_last_key", "_holders", "_READING_BUILTINS", "_changes_holder",
        "_overlaps", "_calls_a_method", "_holds_call_of", "_lone_backward", "_movable",
        "changed_in_place", "_steps_at", "_stepping", "_zeroes_between_updates",
    ),
    CORE: ("Planner",),
}

METHOD_NAMES: dict[str, tuple[str, ...]] = {
    CORE: (
        "__init__", "bound_value", "referents_after", "rebound_in", "active", "build", "_busy",
        "_constructor_site", "_bound_site", "_refuse", "_step_sites_of", "_optimizer_step_sites",
    ),
    "plan_schedules": (
        "_plan_schedules", "_refused_sequence_parts", "_position_in", "_scheduler_optimizer",
        "_factory_schedule", "_cross_file_factory", "_factory_body_reason", "_factory_members",
        "_factory_component", "_factory_substitutions", "_bound_at", "_factory_call_reason",
        "_attach_factory_schedule", "_attach_schedule", "_function_reads_rebound",
        "_scheduler_handed_to_call", "_followed_argument", "_escape_unattached", "_warmup_pair",
        "_pair_parts", "_bound_argument", "_integer_value", "_if_else_after", "_in_suite",
        "_move", "_changed_between", "_optimizer_values", "_between", "_reordered_calls",
        "_harmless_call", "_used_between",
    ),
    "plan_stepping": (
        "_classify_stepping", "_counted_or_refused", "_attribute_owner",
        "_attribute_store_nodes", "_called_elsewhere", "_named_elsewhere", "_epoch_count",
        "_built_in_other_method", "_self_attributes_stable", "_handed_scheduler",
        "_until_rebound", "_handed_optimizer", "_never_rebound", "_phase_epoch_count",
        "_one_phase_true", "_metric_epoch_count", "_epoch_start", "_attribute_start_stable",
        "_reads_attributes_only", "_range_call", "_counts_from_zero", "_assigned_after",
        "_stepped_every_k", "_check_after", "_update_counter", "_enumerated_counter",
        "_shadowed", "_uneven_stepping",
    ),
    "plan_epochs": (
        "_per_epoch", "_handed_steps", "_batch_loop_problem", "_handed_elsewhere",
        "_measured_length", "_iterated_problem", "_parameter_rebound", "_same_binding",
        "_one_binding", "_handed_per_epoch", "_unseen_updates", "_steps_after",
    ),
    "plan_notes": (
        "_local_definition", "_where_it_goes", "_exit_words", "_origin", "_factory_calls_note",
        "_other_files_note", "_parameter_function", "_place",
    ),
    "plan_clips": (
        "_plan_clips", "_value_from_gradients", "_clip_values_vary", "_varying_part",
        "_changed_otherwise", "_tensor_literal", "_preorder", "_stored_paths", "_subset_clip",
        "_same_model", "_same_names", "_model_origin", "_attribute_writes", "_names",
        "_clips_scaled_gradients", "_stepped_under_other_control", "_placed_clip",
        "_always_true", "_helper_problem", "_global_shared", "_rebinds_globals",
    ),
    "plan_models": (
        "_optimizers_stepped_after", "_plan_zero_grads", "_takes_metric", "_zeroed_with",
        "_counted", "_zero_grad_escape", "_plan_frozen_parameters", "_plan_changed_models",
        "_reads", "_model_changed_after", "_built_by_method", "_method_caller", "_parent_map",
        "_handed_parameter", "_imported_change", "_imported_method_change",
        "_plan_torch_only_uses",
    ),
    "plan_regions": (
        "_plan_regions", "_add_region", "_zero_handed_over", "_region", "_true_guards",
        "_nonempty_loops", "_branch_region", "_grad_context_agrees", "_forward_start",
        "_records_only", "_only_zero_grad", "_module_zero", "_backward_before", "_is_step",
        "_stepped_optimizer", "_scaler_name", "_is_scaler_update",
    ),
}

# fmt: on

# Planner methods not in the table: the first rule one of whose words starts a word of the
# method's name (``_clip_norm_of`` -> ``clip``) places it; else its neighbour's module does.
METHOD_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("plan_clips", ("clip",)),
    ("plan_regions", ("region", "forward", "backward", "scaler", "guard")),
    ("plan_schedules", ("schedul", "warmup", "factory", "milestone", "move")),
    ("plan_epochs", ("epoch", "batch")),
    ("plan_stepping", ("step", "count", "stepping", "every")),
    ("plan_notes", ("note", "origin", "place", "words")),
    ("plan_models", ("model", "frozen", "freeze", "zero", "torch", "chang")),
)
DEFAULT_STATEMENT_MODULE = "plan_places"  # an unknown statement above every known one


@dataclass
class Chunk:
    """One top-level statement or ``Planner`` method: its names, source text and module."""

    names: tuple[str, ...]
    text: str
    node: ast.stmt
    module: str = ""
    uses: set[str] = field(default_factory=set)


def fail(message: str) -> None:
    sys.exit(f"split_plan: {message}")


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


def class_bound(node: ast.AST) -> bool:
    """Whether ``node`` means something else when moved to another class (outside nested
    classes, whose own ``super()`` is theirs)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            continue
        if isinstance(child, ast.Call) and ast.unparse(child.func) == "super" and not child.args:
            return True
        if isinstance(child, ast.Name) and child.id == "__class__":
            return True
        private = isinstance(child, ast.Attribute) and child.attr.startswith("__")
        if private and not child.attr.endswith("__"):
            return True
        if class_bound(child):
            return True
    return False


def word_rule(name: str) -> str | None:
    words = [w for w in name.lower().split("_") if w]
    for module, keys in METHOD_RULES:
        if any(w.startswith(k) for w in words for k in keys):
            return module
    return None


def comments(source: str) -> Counter[str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return Counter(t.string for t in tokens if t.type == tokenize.COMMENT)


class Split:
    """The split of one plan.py: chunks by module, and the texts of the new modules."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.analysis = root / "ml_switcheroo" / "analysis"
        self.path = self.analysis / "plan.py"
        self.source = self.path.read_text(encoding="utf-8")
        self.tree = ast.parse(self.source)
        self.lines = self.source.splitlines(keepends=True)
        self.notes: list[str] = []  # where the names not in the table went, printed at once
        self.core_imports: list[str] = []  # re-exports of names plan.py imports
        self.refuse_if_split()
        self.docstring, self.imports, self.statements = self.top_level()
        self.planner = self.planner_class()
        self.methods = self.method_chunks()
        self.place()

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(text)

    def refuse_if_split(self) -> None:
        existing = [m for m in LEVELS if m != CORE and (self.analysis / f"{m}.py").exists()]
        if existing:
            fail(f"already split: {', '.join(existing)} exist; run it on an unsplit plan.py")
        for node in self.tree.body:
            if isinstance(node, ast.ClassDef) and node.name == "Planner" and node.bases:
                fail("already split: Planner has bases")

    def top_level(self) -> tuple[str, list[str], list[Chunk]]:
        body = list(self.tree.body)
        first = body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
            fail("plan.py has no module docstring")
        docstring = ast.get_source_segment(self.source, first) or ""
        if not docstring.startswith('"""') or not docstring.endswith('"""'):
            fail("plan.py's docstring is not in triple double quotes")
        imports = [
            ast.get_source_segment(self.source, n) or ""
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
        return docstring, imports, chunks

    def planner_class(self) -> ast.ClassDef:
        found = [c for c in self.statements if c.names == ("Planner",)]
        if len(found) != 1 or not isinstance(found[0].node, ast.ClassDef):
            fail("no (or more than one) class Planner")
        return found[0].node  # type: ignore[return-value]

    def method_chunks(self) -> list[Chunk]:
        body = self.planner.body
        doc = body[0]
        if not (isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)):
            fail("Planner has no docstring")
        methods = body[1:]
        chunks = chunks_of(self.lines, methods, doc.end_lineno or 0)
        if chunks:
            tail = self.lines[methods[-1].end_lineno or 0 : self.planner.end_lineno or 0]
            chunks[-1].text += "".join(tail)
        return chunks

    def place(self) -> None:
        """Each chunk's module: the table; else (printed) a dataclass goes to the facts, a method
        by the word rules, else with its neighbour (the nearest chunk above it in the table);
        then module-level chunks move up until none uses a name of a higher module."""
        table = {n: m for m, names in MODULE_NAMES.items() for n in names}
        methods = {n: m for m, names in METHOD_NAMES.items() for n in names}
        neighbour = DEFAULT_STATEMENT_MODULE
        for chunk in self.statements:
            chunk.uses = used_names(chunk.node) - set(chunk.names)
            known = {table[n] for n in chunk.names if n in table}
            if len(known) > 1:
                fail(f"{chunk.names}: in the table for {sorted(known)}")
            if known:
                chunk.module = known.pop()
                neighbour = chunk.module if chunk.module != CORE else neighbour
                continue
            chunk.module, why = neighbour, "its neighbour above"
            if isinstance(chunk.node, ast.ClassDef) and any(
                "dataclass" in ast.unparse(d) for d in chunk.node.decorator_list
            ):
                chunk.module, why = "plan_facts", "a dataclass"
            self.note(f"unknown {', '.join(chunk.names)} -> {chunk.module} ({why})")
        neighbour = CORE
        for chunk in self.methods:
            chunk.uses = used_names(chunk.node)
            name = chunk.names[0]
            if not isinstance(chunk.node, ast.FunctionDef | ast.AsyncFunctionDef):
                chunk.module = CORE
                self.note(f"Planner's class attribute {', '.join(chunk.names)} -> {CORE}")
                continue
            elif name in methods:
                chunk.module = neighbour = methods[name]
                continue
            rule = word_rule(name)
            chunk.module, why = (rule, "word rule") if rule else (neighbour, "its neighbour above")
            self.note(f"unknown Planner.{name} -> {chunk.module} ({why})")
        defined = {n for c in [*self.statements, *self.methods] for n in c.names}
        gone = sorted((set(table) | set(methods)) - defined)
        if gone:
            self.note(f"table names not in plan.py (renamed or removed?): {gone}")
        self.move_up()
        self.check_mixins()

    def home(self) -> dict[str, str]:
        """The module of each top-level name (the mixin classes included)."""
        home = {n: c.module for c in self.statements for n in c.names}
        home.update({MIXINS[c.module]: c.module for c in self.methods if c.module in MIXINS})
        return home

    def move_up(self) -> None:
        changed = True
        while changed:
            changed = False
            home = self.home()
            for chunk in self.statements:
                above = [home[n] for n in chunk.uses if n in home]
                top = max(above, key=LEVELS.__getitem__, default=chunk.module)
                if LEVELS[top] > LEVELS[chunk.module]:
                    if LEVELS[top] == LEVELS["plan_schedules"] and top != CORE:
                        fail(f"{chunk.names} uses a mixin's name")
                    self.note(f"moved {', '.join(chunk.names)}: {chunk.module} -> {top}")
                    chunk.module = top
                    changed = True

    def check_mixins(self) -> None:
        """A mixin method may use no name left in plan.py, nor mean something else in another
        class (zero-argument ``super()``, ``__class__``, a mangled ``self.__name``)."""
        home = self.home()
        for chunk in self.methods:
            if chunk.module == CORE:
                continue
            if class_bound(chunk.node):
                fail(f"Planner.{chunk.names[0]} uses super()/__class__/__private names")
            core = sorted(n for n in chunk.uses if home.get(n) == CORE)
            if core:
                fail(
                    f"Planner.{chunk.names[0]} ({chunk.module}) uses {core} of plan.py: "
                    "add them to MODULE_NAMES or the method to METHOD_NAMES[CORE]"
                )

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
                elif isinstance(node, ast.Import) and any(
                    a.name == f"{PACKAGE}.{CORE}" for a in node.names
                ):
                    self.note(f"warning: {path} imports the module plan: check it")
        return wanted

    def module_text(self, module: str, chunks: list[Chunk], extra: set[str] = frozenset()) -> str:
        """A module's source before ruff: docstring, imports, its chunks in the old order."""
        home = self.home()
        uses = set(extra).union(*(c.uses for c in chunks))
        own = {n for c in chunks for n in c.names}
        imports = self.core_imports if module == CORE else list(self.imports)
        by_module: dict[str, list[str]] = {}
        for name in sorted(uses - own):
            if name in home and home[name] != module:
                by_module.setdefault(home[name], []).append(name)
        for other, names in sorted(by_module.items()):
            if LEVELS[other] >= LEVELS[module]:
                fail(f"{module} would import {names} from {other}")
            shown = [f"{n} as {n}" if n in extra else n for n in names]
            imports.append(f"from {PACKAGE}.{other} import {', '.join(shown)}")
        paragraphs = DOCSTRINGS.get(module, ())
        if module in MIXINS:
            paragraphs = (*paragraphs, MIXIN_NOTE.format(mixin=MIXINS[module]))
        doc = docstring(paragraphs) if paragraphs else '""""""'
        head = f"{doc}\n\nfrom __future__ import annotations\n\n" + "\n".join(imports)
        return head + "\n\n\n" + "\n\n".join(c.text.rstrip("\n") + "\n" for c in chunks)

    def texts(self) -> dict[str, str]:
        texts: dict[str, str] = {}
        for module in LEVELS:
            if module == CORE:
                continue
            chunks = [c for c in self.statements if c.module == module]
            if module in MIXINS:
                methods = [c for c in self.methods if c.module == module]
                if not methods:
                    continue
                texts[module] = self.module_text(module, [self.mixin_chunk(module, methods)])
            elif chunks:
                texts[module] = self.module_text(module, chunks)
        texts[CORE] = self.core_text()
        return texts

    def mixin_chunk(self, module: str, methods: list[Chunk]) -> Chunk:
        doc = f'"""The methods of ``Planner`` on the concern of ``{module}`` (a mixin)."""'
        text = f"class {MIXINS[module]}:\n    {doc}\n\n" + "\n".join(
            c.text.rstrip("\n") + "\n" for c in methods
        )
        uses = set().union(*(c.uses for c in methods))
        return Chunk((MIXINS[module],), text, self.planner, module, uses)

    def core_text(self) -> str:
        used = [m for m in MIXINS if any(c.module == m for c in self.methods)]
        bases = ", ".join(MIXINS[m] for m in used)
        chunks = []
        for chunk in self.statements:
            if chunk.module != CORE:
                continue
            if chunk.node is self.planner:
                chunk = self.core_planner(bases)
            chunks.append(chunk)
        wanted = self.reexports()
        exported = {n for n in wanted if self.home().get(n, CORE) != CORE}
        imported = self.imported_names()
        self.core_imports = self.reexporting_imports(wanted - set(self.home()))
        missing = wanted - set(self.home()) - set(imported)
        if missing:
            self.note(f"warning: imported from plan but not defined there: {missing}")
        self.exported = exported | (wanted & set(imported))
        text = self.module_text(CORE, chunks, extra=exported)
        note = textwrap.fill(CORE_NOTE.format(mixins=", ".join(used)), LINE)
        doc = self.docstring[:-3].rstrip("\n") + "\n\n" + note + "\n"
        return f'{doc}"""' + text[text.index('""""""') + 6 :]

    def reexporting_imports(self, names: set[str]) -> list[str]:
        """plan.py's imports, those of ``names`` written ``name as name`` (a re-export)."""
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
        """Each name plan.py imports with ``from``: its module and its name there."""
        found = {}
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.update({a.asname or a.name: (node.module, a.name) for a in node.names})
        return found

    def core_planner(self, bases: str) -> Chunk:
        planner = next(c for c in self.statements if c.node is self.planner)
        header_end = self.planner.body[0].end_lineno or 0
        head = "".join(self.lines[self.planner.lineno - 1 : header_end])
        prefix = planner.text[: planner.text.index("class Planner")]
        if not head.startswith("class Planner:"):
            fail("Planner's header is not `class Planner:`")
        head = f"class Planner({bases}):" + head[len("class Planner:") :]
        core = [c for c in self.methods if c.module == CORE]
        text = prefix + head + "\n" + "\n".join(c.text.rstrip("\n") + "\n" for c in core)
        uses = used_names(self.planner.body[0]).union(*(c.uses for c in core))
        uses |= {MIXINS[m] for m in MIXINS if MIXINS[m] in bases.split(", ")}
        return Chunk(("Planner",), text, self.planner, CORE, uses)

    def check_nothing_lost(self, texts: dict[str, str]) -> None:
        before = comments(self.source)
        after = sum((comments(t) for t in texts.values()), Counter())
        lost = before - after
        if lost:
            fail(f"comments lost: {list(lost)[:5]}")
        defined: Counter[str] = Counter()
        for text in texts.values():
            for node in ast.parse(text).body:
                if isinstance(node, ast.ClassDef) and (
                    node.name in MIXINS.values() or node.name == "Planner"
                ):
                    members = [m for m in node.body if not isinstance(m, ast.Expr)]
                    defined.update(f"Planner.{n}" for m in members for n in defined_names(m))
                    defined.update(["Planner"] if node.name == "Planner" else [])
                elif not isinstance(node, ast.Import | ast.ImportFrom | ast.Expr):
                    defined.update(defined_names(node))
        expected = Counter(n for c in self.statements for n in c.names)
        expected.update(f"Planner.{n}" for c in self.methods for n in c.names)
        if defined != expected:
            fail(f"definitions differ: +{defined - expected} -{expected - defined}")


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
        done = subprocess.run(args, cwd=root, capture_output=True, text=True)
        if done.returncode:
            print(done.stdout + done.stderr)
            fail(f"`{' '.join(args[len(command) : len(command) + 1])}` failed (see above)")


VERIFY = r"""
import dis, importlib, importlib.util, json, sys, types

root, old_path, homes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, root)
package = "ml_switcheroo.analysis"
name = package + "._plan_before_split"
spec = importlib.util.spec_from_file_location(name, old_path)
old = importlib.util.module_from_spec(spec)
sys.modules[name] = old
spec.loader.exec_module(old)
importlib.import_module(package + ".plan")
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
    # the code object without its names and line numbers; a nested class's __qualname__
    # without its method's class (``Planner._f.<locals>.C`` is ``ClipFacts._f.<locals>.C``)
    consts = tuple(
        shape(c) if isinstance(c, types.CodeType)
        else c.split(".", 1)[1] if isinstance(c, str) and ".<locals>." in c else c
        for c in code.co_consts
    )
    return (code.co_code, code.co_names, code.co_varnames, code.co_freevars, consts)


def check(where, before, after):
    global checked
    checked += 1
    if after is None:
        problems.append(f"{where}: missing")
        return
    if shape(before.__code__) != shape(after.__code__):
        problems.append(f"{where}: its code differs")
    for name in loaded(before) - {"__name__"}:  # a nested class's __module__: the new module
        if name in homes:
            same = after.__globals__.get(name) is new[name]
        else:
            same = before.__globals__.get(name, "?") is after.__globals__.get(name, "?")
        if not same:
            problems.append(f"{where}: the global {name} resolves to another object")


def plain(member):
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    return member.fget if isinstance(member, property) else member


def ours(function):
    return isinstance(function, types.FunctionType) and function.__code__.co_filename == old_path


for name, value in vars(old).items():
    if ours(value):
        check(name, value, new.get(name))
    elif isinstance(value, type) and value.__module__ == old.__name__:
        for attr, member in vars(value).items():
            if not ours(plain(member)):
                continue
            owner = next((k for k in new[name].__mro__ if attr in vars(k)), None)
            after = vars(owner)[attr] if owner else None
            if after is not None and type(after) is not type(member):
                problems.append(f"{name}.{attr}: a {type(after).__name__} now")
            check(f"{name}.{attr}", plain(member), plain(after) if after is not None else None)
print(f"verified {checked} functions and methods of the old plan.py")
if problems:
    print("\n".join(problems))
    sys.exit(1)
"""


def verify(root: Path, old_source: str, homes: dict[str, str]) -> None:
    """Imports the split package and the old plan.py side by side: every function and method
    has the same code, and every global name it loads resolves to the same object."""
    old = root / "ml_switcheroo" / "analysis" / "_plan_before_split.py"
    old.write_text(old_source, encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, "-c", VERIFY, str(root), str(old), json.dumps(homes)],
            cwd=root,
            capture_output=True,
            text=True,
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
        path = split.analysis / f"{module}.py"
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
    print(f"plan.py re-exports {len(split.exported)} names")
    if not args.no_verify:
        verify(root, split.source, split.home())


if __name__ == "__main__":
    main()
