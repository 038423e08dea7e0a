"""``changed_models._source``: a node's source as ``code_of`` writes it, written out once per
node while it is kept (a name or attribute chain is read off its fields, never kept)."""

from __future__ import annotations

import libcst as cst

from ml_switcheroo.analysis import changed_models


def test_a_nodes_source_is_written_once_and_is_code_ofs(monkeypatch) -> None:
    written: list[cst.CSTNode] = []
    code_of = changed_models.code_of

    def counting(node: cst.CSTNode) -> str:
        written.append(node)
        return code_of(node)

    monkeypatch.setattr(changed_models, "code_of", counting)
    monkeypatch.setattr(changed_models, "_SOURCES", {})
    call = cst.parse_expression("model.layers[0]( x ,y)")
    name = cst.parse_expression("model")
    assert changed_models._source(call) == code_of(call).strip()
    assert changed_models._source(call) == "model.layers[0]( x ,y)"
    assert changed_models._source(name) == changed_models._source(name) == "model"
    assert written == [call, name, name]
    assert list(changed_models._SOURCES) == [id(call)]


def test_the_kept_sources_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(changed_models, "_SOURCES", {})
    monkeypatch.setattr(changed_models, "_SOURCES_KEPT", 2)
    calls = [cst.parse_expression(f"f({i})") for i in range(5)]
    assert [changed_models._source(c) for c in calls] == [f"f({i})" for i in range(5)]
    assert len(changed_models._SOURCES) <= 2
    assert all(
        changed_models._SOURCES[id(n)][0] is n for n in calls if id(n) in changed_models._SOURCES
    )
