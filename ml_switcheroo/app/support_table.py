"""The support tables of ``docs/support.md``, generated from the semantic map.

``python -m ml_switcheroo.app.support_table`` rewrites the tables between their markers; a test
fails when the page and the map disagree.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from ml_switcheroo.model.translate import mode_active
from ml_switcheroo.spec.semantic_map import ApiEntry, Condition, SemanticMap
from ml_switcheroo.targets.catalogue import DEFAULT_TARGET, load_semantic_map
from ml_switcheroo.targets.target import Target

SUPPORT_PAGE = Path(__file__).resolve().parents[2] / "docs" / "support.md"
HOOK_TABLES = {"optimizer_constructor": "optimizers"}


def _status(entry: ApiEntry, exact: bool) -> str:
    status = entry.status_for(exact)
    if status == "approximate" and entry.tolerance is not None:
        return f"approximate (rel < {entry.tolerance:g})"
    return status


def _describe(condition: Condition) -> str:
    parts = [f"`{name}={_literal(value)}`" for name, value in condition.when]
    parts += [f"`{name}≠{_literal(value)}`" for name, value in condition.unless]
    return " and ".join(parts)


def _literal(value: object) -> str:
    if value == float("inf"):
        return "inf"
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    return repr(value)


def _argument_cell(entry: ApiEntry, argument: str, exact: bool) -> str:
    if argument in entry.ignore:
        return "dropped (no effect on the math)"
    rules = [r for r in entry.escapes if mode_active(r.mode, exact)]
    if any(not r.condition.names for r in rules) or not any(
        mode_active(link.mode, exact) for link in entry.chain
    ):
        return "escape"
    cells = []
    used = any(
        argument in link.emit.parameter_names or argument in link.condition.names
        for link in entry.chain
        if mode_active(link.mode, exact)
    )
    values = _only_values(entry, argument, exact)
    if values is not None and not any(argument in r.condition.names for r in rules):
        cells.append(f"{_status(entry, exact)} when `{argument}` is {' or '.join(values)}")
        cells.append("escape otherwise")
    elif used:
        cells.append(_status(entry, exact))
    for rule in rules:
        if argument in rule.condition.names:
            cells.append(f"escape when {_describe(rule.condition)}")
    return "; ".join(cells) or "n/a"


def _only_values(entry: ApiEntry, argument: str, exact: bool) -> list[str] | None:
    """The values of ``argument`` the chain translates, when every active link of the core
    slot (the one every translation has) takes only one value of it (``when``); None when it
    takes any value."""
    values: list[object] = []
    for link in entry.chain:
        if mode_active(link.mode, exact) and link.slot == _CORE:
            values.append(dict(link.condition.when).get(argument, _ANY))
    if not values or _ANY in values:
        return None
    return list(dict.fromkeys(f"`{_literal(v)}`" for v in values))


_ANY = object()
_CORE = "core"
_IN_SEQUENCE = {"later": "after the first part of", "any": "as a part of"}


def _note(entry: ApiEntry) -> str:
    """The entry's note, and where it escapes as a part of a sequence (``in_sequence``)."""
    parts = [entry.note] if entry.note else []
    if entry.in_sequence is not None:
        parts.append(f"escapes {_IN_SEQUENCE[entry.in_sequence.refused]} SequentialLR")
    return "; ".join(parts)


def _short(name: str, title: str) -> str:
    """``SGD`` for ``torch.optim.SGD``; ``clip_grad.clip_grad_norm_`` under ``torch.nn.utils``;
    the whole name outside torch (``transformers.AdamW`` is not ``torch.optim.AdamW``)."""
    if name.startswith(title + "."):
        return name[len(title) + 1 :]
    if not name.startswith("torch."):
        return name
    return name.rpartition(".")[2]


# table name -> (hooks, column title, what the argument table is of)
TABLES = {
    "optimizers": (("optimizer_constructor",), "torch.optim", "optimizer"),
    "schedulers": (("lr_scheduler",), "scheduler", "scheduler"),
    "clipping": (("clip_gradients",), "torch.nn.utils", "clipping call"),
}
_OWN_ARGUMENTS = frozenset({"params", "optimizer", "parameters"})
# an argument older torch took (the entry's ``removed``: spec/signature.py)
_REMOVED_CELL = "dropped if passed by keyword as a literal or a name; escape otherwise"


def api_tables(semantic_map: SemanticMap, table: str, target: Target = DEFAULT_TARGET) -> str:
    """Markdown: one summary row per API of the table's hooks, then one row per argument
    (the default output is ``target``'s)."""
    hooks, title, kind = TABLES[table]
    entries = sorted(
        (e for n, e in semantic_map.apis.items() if e.hook in hooks and n == e.name),
        key=lambda e: e.name,
    )
    lines = [
        f"| {title} | default output (stock {target.label}) | `--exact` | notes |",
        "|---|---|---|---|",
    ]
    for entry in entries:
        note = _note(entry).replace("|", "\\|")
        stock, exact = _status(entry, False), _status(entry, True)
        lines.append(f"| `{_short(entry.name, title)}` | {stock} | {exact} | {note} |")
    lines += [
        "",
        f"<details><summary>Every argument of every {kind}</summary>",
        "",
        f"| {title} | argument | torch default | default output | `--exact` |",
        "|---|---|---|---|---|",
    ]
    for entry in entries:
        for parameter in entry.signature.parameters:
            if parameter.name in _OWN_ARGUMENTS:
                continue
            default = parameter.default_source if parameter.default_source is not None else "—"
            lines.append(
                f"| `{_short(entry.name, title)}` | `{parameter.name}` | `{default}` | "
                f"{_argument_cell(entry, parameter.name, False)} | "
                f"{_argument_cell(entry, parameter.name, True)} |"
            )
        for argument in entry.signature.removed:
            lines.append(
                f"| `{_short(entry.name, title)}` | `{argument}` | — (removed in torch 2.13) | "
                f"{_REMOVED_CELL} | {_REMOVED_CELL} |"
            )
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def optimizer_tables(semantic_map: SemanticMap) -> str:
    return api_tables(semantic_map, "optimizers")


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- BEGIN generated:{name} -->\n", f"<!-- END generated:{name} -->"


def render_page(text: str, semantic_map: SemanticMap) -> str:
    """``text`` with every generated table replaced by its current version."""
    for name in TABLES:
        table = api_tables(semantic_map, name)
        begin, end = _markers(name)
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"{SUPPORT_PAGE.name} has no {begin.strip()} ... {end} markers")
        replacement = begin + table + end
        text = pattern.sub(lambda _, new=replacement: new, text)
    return text


def main() -> int:
    text = SUPPORT_PAGE.read_text(encoding="utf-8")
    updated = render_page(text, load_semantic_map())
    if updated != text:
        SUPPORT_PAGE.write_text(updated, encoding="utf-8")
        print(f"updated {SUPPORT_PAGE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
