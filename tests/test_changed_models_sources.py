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


CLASS = """
class Net:
    def __init__(self):
        self.fc = 1
        x.y = 2
    def reset(me):
        me.head: int = 3
"""


def test_a_classs_self_attributes_are_found_once(monkeypatch) -> None:
    walked: list[cst.CSTNode] = []
    walk = changed_models.cst_walk.walk

    def counting(node: cst.CSTNode):
        walked.append(node)
        return walk(node)

    monkeypatch.setattr(changed_models.cst_walk, "walk", counting)
    monkeypatch.setattr(changed_models, "_SELF_ATTRIBUTES", {})
    owner = cst.parse_module(CLASS).body[0]
    assert changed_models._self_attributes(owner) == {"fc", "head"}
    assert changed_models._self_attributes(owner) == {"fc", "head"}
    assert len(walked) == 2  # its two methods, walked for the first question only


def test_the_kept_classes_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(changed_models, "_SELF_ATTRIBUTES", {})
    monkeypatch.setattr(changed_models, "_CLASSES_KEPT", 2)
    owners = [cst.parse_module(CLASS.replace("fc", f"fc{i}")).body[0] for i in range(5)]
    found = [changed_models._self_attributes(owner) for owner in owners]
    assert found == [{f"fc{i}", "head"} for i in range(5)]
    assert len(changed_models._SELF_ATTRIBUTES) <= 2
