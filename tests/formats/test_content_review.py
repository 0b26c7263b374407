"""Labels flagged `content_changed` by a rescan: confirm they still hold, or relabel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import PASSWORDS, snapshot_tables
from tests.formats.test_folder_sheets import _folder, _png
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.services import content_review, labels, sheet_rescan, sheets


@pytest.fixture
def changed(small_site, tmp_path: Path):
    """A folder sheet with class labels whose files crack/a.png and none/c.png changed content."""
    root = _folder(tmp_path / "shots")
    sheets.import_sheet(small_site.store, actor=small_site.user("engineer"), name="Shots", metadata_path=None,
                        image_root=root, class_label_type="classification")
    _png(root / "crack" / "a.png", 200)
    _png(root / "none" / "c.png", 201)
    report, _ = sheet_rescan.rescan_sheet(small_site.store, actor=small_site.user("engineer"), sheet="Shots")
    assert report.flagged_labels == 2
    return small_site


def _label(site, ref: str):
    return labels.get_label(site.store, sheet="Shots", item_ref=ref, label_type="classification")


def test_confirm_unchanged_makes_a_new_version_through_the_write_path(changed) -> None:
    store, inspector = changed.store, changed.user("inspector")
    waiting = content_review.changed_labels(store, sheet="Shots")
    assert [(w.item_ref, w.version, w.item_version) for w in waiting] == [("crack/a.png", 1, 2), ("none/c.png", 1, 2)]
    outcome, changes = content_review.confirm_unchanged(
        store, actor=inspector, sheet="Shots", label_type="classification", item_refs=["crack/a.png"],
        reason="still a crack")
    assert (outcome.confirmed, outcome.conflicts) == (1, 0) and changes.labels
    label = _label(changed, "crack/a.png")
    assert (label.version, label.review_state) == (2, "ok") and label.label_data == _label(changed, "crack/a.png").label_data
    last = labels.history(store, sheet="Shots", item_ref="crack/a.png", label_type="classification")[-1]
    assert last.action == "confirm" and last.version == 2 and last.changed_by == "inspector"
    assert "item version 2" in last.reason and "still a crack" in last.reason
    # relabelling is an ordinary save: it clears the flag as well
    labels.set_label(store, actor=inspector, sheet="Shots", item_ref="none/c.png", label_type="classification",
                     label_data={"defect_type": "crack"}, expected_version=1)
    assert _label(changed, "none/c.png").review_state == "ok"
    assert content_review.changed_labels(store, sheet="Shots") == []


def test_confirm_is_refused_for_labels_that_are_not_flagged_and_unknown_items(changed) -> None:
    store, inspector = changed.store, changed.user("inspector")
    before = snapshot_tables(store)
    with pytest.raises(ValidationError, match=r"crack/deep/b\.png.*not flagged as changed content"):
        content_review.confirm_unchanged(store, actor=inspector, sheet="Shots", label_type="classification",
                                         item_refs=["crack/a.png", "crack/deep/b.png"])
    with pytest.raises(NotFoundError, match="has no classification label"):
        content_review.confirm_unchanged(store, actor=inspector, sheet="Shots", label_type="classification",
                                         item_refs=["nope.png"])
    assert snapshot_tables(store) == before


def test_a_confirmation_based_on_an_old_version_becomes_a_conflict(changed) -> None:
    store = changed.store
    outcome, _ = content_review.confirm_unchanged(
        store, actor=changed.user("inspector2"), sheet="Shots", label_type="classification",
        item_refs=["crack/a.png"], expected_versions={"crack/a.png": 0})
    assert (outcome.confirmed, outcome.conflicts) == (0, 1)
    assert _label(changed, "crack/a.png").version == 1


def test_changed_and_confirm_from_the_command_line(changed, monkeypatch, capsys) -> None:
    from vital_desktop.cli import main

    changed.store.close()
    monkeypatch.setenv("VITAL_USER", "inspector")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["inspector"])
    base = ["--home", str(changed.home), "--json", "label"]
    assert main([*base, "changed", "--sheet", "Shots"]) == 0
    assert len(json.loads(capsys.readouterr().out)["changed"]) == 2
    assert main([*base, "confirm", "--sheet", "Shots", "--type", "classification", "--items",
                 "crack/a.png,none/c.png", "--reason", "same defects"]) == 0
    assert json.loads(capsys.readouterr().out)["confirmed"] == 2
    assert main([*base, "confirm", "--sheet", "Shots", "--type", "classification", "--items", "crack/a.png"]) != 0
    assert "nothing to confirm" in capsys.readouterr().err
