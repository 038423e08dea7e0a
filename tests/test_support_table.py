"""The README's support tables are generated from the semantic map and kept in sync."""

from __future__ import annotations

from ml_switcheroo.app.support_table import README, TABLES, api_tables, render_readme
from ml_switcheroo.targets.catalogue import load_semantic_map


def test_readme_tables_match_the_map() -> None:
    text = README.read_text(encoding="utf-8")
    assert render_readme(text, load_semantic_map()) == text, (
        "README is out of date: run `python -m ml_switcheroo.app.support_table`"
    )


def test_every_api_and_argument_has_a_row() -> None:
    semantic_map = load_semantic_map()
    for table_name, (hooks, _, _) in TABLES.items():
        table = api_tables(semantic_map, table_name)
        for entry in semantic_map.apis.values():
            if entry.hook not in hooks:
                continue
            short = entry.name.rpartition(".")[2]
            for name in entry.signature.names:
                if name not in ("params", "optimizer", "parameters"):
                    assert f"| `{short}` | `{name}` |" in table
