"""Hub label-type versions held for review: `vital label types pending|accept|reject` (audited)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PASSWORDS, snapshot_tables
from vital_desktop.core.errors import NotFoundError, PermissionDenied
from vital_desktop.services import label_type_edits, label_types, labels, taxonomy
from vital_desktop.store.models import AuditEntry


def _doc(version: str, classes: list[str]) -> dict:
    return {"name": "welds", "version": version, "title": "Welds", "kind": "classification", "class_field": "class",
            "classes": [{"name": c} for c in classes]}


def _hub(store, actor, version: str, classes: list[str]) -> str:
    with store.session() as s:
        return label_type_edits.apply_hub_version(s, actor, _doc(version, classes))


@pytest.fixture
def held(small_site):
    """welds@1.0.0 from the hub, a local rename (2.0.0), then hub 3.0.0 and 1.5.0 held for review."""
    store, engineer = small_site.store, small_site.user("engineer")
    assert _hub(store, engineer, "1.0.0", ["pore", "crack"]) == "added"
    for ref, cls in (("INS-0001", "pore"), ("INS-0002", "crack")):
        labels.set_label(store, actor=small_site.user("inspector"), sheet="Crystals", item_ref=ref, label_type="welds",
                         label_data={"class": cls})
    taxonomy.apply(store, engineer, "welds", "rename_class", old="pore", new="void")  # local 2.0.0
    assert _hub(store, engineer, "3.0.0", ["pore", "crack", "undercut"]) == "review"
    assert _hub(store, engineer, "1.5.0", ["pore", "crack", "spatter"]) == "review"
    return small_site


def test_pending_lists_held_versions_and_reject_keeps_the_local_one(held) -> None:
    store, engineer = held.store, held.user("engineer")
    assert [v.ref for v in label_type_edits.pending_hub_versions(store)] == ["welds@1.5.0", "welds@3.0.0"]
    result, _ = taxonomy.decide_hub_version(store, engineer, "welds", "3.0.0", accept=False, note="we renamed pore")
    assert (result.decision, result.in_force) == ("rejected", "2.0.0")
    assert label_types.get_label_type(store, "welds").version == "2.0.0"
    assert [v.ref for v in label_type_edits.pending_hub_versions(store)] == ["welds@1.5.0"]
    assert _hub(store, engineer, "3.0.0", ["pore", "crack", "undercut"]) == "unchanged"  # sent again: not re-held
    assert label_type_edits.history(store, "welds")[-1]["action"] == "hub_reject"
    with store.read() as s:
        row = s.query(AuditEntry).order_by(AuditEntry.seq.desc()).first()
    assert (row.username, row.action, row.target) == ("engineer", "label_type.hub_reject", "welds@3.0.0")
    assert json.loads(row.details)["note"] == "we renamed pore"


def test_accept_puts_the_hub_version_in_force_and_flags_labels_of_dropped_classes(held) -> None:
    store, engineer = held.store, held.user("engineer")
    result, changes = taxonomy.decide_hub_version(store, engineer, "welds", "3.0.0", accept=True)
    assert (result.decision, result.in_force, result.labels_flagged) == ("accepted", "3.0.0", 1)
    current = label_types.get_label_type(store, "welds")
    assert (current.version, current.origin, current.classes()) == ("3.0.0", "hub", ["pore", "crack", "undercut"])
    assert changes.label_types and changes.labels
    flagged = labels.get_label(store, sheet="Crystals", item_ref="INS-0001", label_type="welds")
    kept = labels.get_label(store, sheet="Crystals", item_ref="INS-0002", label_type="welds")
    assert (flagged.label_data, flagged.review_state) == ({"class": "void"}, "review")  # never relabelled by guess
    assert kept.review_state == "ok"

    # an older held version cannot become the newest: its content is published as the next major
    result, _ = taxonomy.decide_hub_version(store, engineer, "welds", "1.5.0", accept=True, note="spatter wanted")
    assert result.in_force == "4.0.0"
    current = label_types.get_label_type(store, "welds")
    assert (current.version, current.classes()) == ("4.0.0", ["pore", "crack", "spatter"])
    assert not label_type_edits.pending_hub_versions(store)
    assert [h["action"] for h in label_type_edits.history(store, "welds")][-2:] == ["hub_accept", "hub_accept"]


def test_deciding_needs_taxonomy_rights_and_a_held_version(held) -> None:
    store = held.store
    before = snapshot_tables(store)
    with pytest.raises(PermissionDenied):
        taxonomy.decide_hub_version(store, held.user("inspector"), "welds", "3.0.0", accept=True)
    with pytest.raises(NotFoundError, match=r"no hub version welds@2\.0\.0 .*welds@1\.5\.0, welds@3\.0\.0"):
        taxonomy.decide_hub_version(store, held.user("engineer"), "welds", "2.0.0", accept=True)
    assert snapshot_tables(store) == before


def test_pending_accept_reject_from_the_command_line(held, monkeypatch, capsys) -> None:
    from vital_desktop.cli import main

    held.store.close()
    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["engineer"])
    base = ["--home", str(held.home), "--json", "label", "types"]
    assert main([*base, "pending"]) == 0
    assert [t["version"] for t in json.loads(capsys.readouterr().out)["pending"]] == ["1.5.0", "3.0.0"]
    assert main([*base, "reject", "welds@1.5.0", "--note", "old"]) == 0
    assert json.loads(capsys.readouterr().out)["result"]["decision"] == "rejected"
    assert main([*base, "accept", "welds"]) != 0
    assert "welds@VERSION" in capsys.readouterr().err
    assert main([*base, "accept", "welds@3.0.0"]) == 0
    assert json.loads(capsys.readouterr().out)["result"]["in_force"] == "3.0.0"
    assert main([*base, "pending"]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == []
