"""The support tables of docs/support.md are generated from the semantic map and kept in sync."""

from __future__ import annotations

from ml_switcheroo.app.support_table import (
    SUPPORT_PAGE,
    TABLES,
    _short,
    api_tables,
    render_page,
)
from ml_switcheroo.targets.catalogue import load_semantic_map


def test_support_tables_match_the_map() -> None:
    text = SUPPORT_PAGE.read_text(encoding="utf-8")
    assert render_page(text, load_semantic_map()) == text, (
        "docs/support.md is out of date: run `python -m ml_switcheroo.app.support_table`"
    )


def test_every_api_and_argument_has_a_row() -> None:
    semantic_map = load_semantic_map()
    for table_name, (hooks, _, _) in TABLES.items():
        table = api_tables(semantic_map, table_name)
        for entry in semantic_map.apis.values():
            if entry.hook not in hooks:
                continue
            short = _short(entry.name, TABLES[table_name][1])
            for name in (*entry.signature.names, *entry.signature.removed):
                if name not in ("params", "optimizer", "parameters"):
                    assert f"| `{short}` | `{name}` |" in table


def test_a_removed_argument_has_its_row() -> None:
    table = api_tables(load_semantic_map(), "schedulers")
    assert (
        "| `StepLR` | `verbose` | — (removed in torch 2.13) | dropped if passed by keyword as a "
        "literal or a name; escape otherwise |"
    ) in table
    assert "| `SWALR` | `verbose` |" not in table
