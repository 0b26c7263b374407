"""Canonical labels: composite key, versions, history, rollback, constraints, conflicts, bulk."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from tests.conftest import snapshot_tables, write_small_dataset
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.governance import passes_gates
from vital_desktop.services import labels, sheets

CRACK = {"defect_type": "crack", "severity": "minor"}


def _set(site, user="inspector", item="INS-0001", label_type="classification", data=CRACK, **kw):
    result, _ = labels.set_label(site.store, actor=site.user(user), sheet=site.sheet, item_ref=item,
                                 label_type=label_type, label_data=data, **kw)
    return result


def test_one_label_per_composite_key_and_several_types_per_item(small_site) -> None:
    _set(small_site)
    _set(small_site, label_type="severity", data={"severity": "major"})
    _set(small_site, label_type="localization",
         data={"boxes": [{"x": 1, "y": 2, "width": 5, "height": 6, "label": "crack"}]})
    types = [label.label_type for label in labels.item_labels(small_site.store, sheet="Crystals", item_ref="INS-0001")]
    assert types == ["classification", "localization", "severity"]
    # The database itself refuses a second row for the same key.
    with small_site.store.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT sheet_id FROM canonical_labels LIMIT 1").scalar()
        with pytest.raises(sa.exc.DBAPIError, match="(?i)constraint|duplicate"):
            conn.exec_driver_sql(
                "INSERT INTO canonical_labels (id, sheet_id, item_ref, label_type, label_data, version, allowed_uses, "
                "prohibited_uses, usage_reason, data_classification, notes, review_state, origin, created_by, "
                "created_at, updated_by, updated_at) VALUES ('x', ?, 'INS-0001', 'classification', '{}', 1, '[]', "
                "'[]', '', '[]', '', 'ok', 'site', 'x', now(), 'x', now())", (row,))


def test_versions_history_and_rollback(small_site) -> None:
    assert _set(small_site).outcome == "created"
    assert _set(small_site).outcome == "unchanged"
    second = _set(small_site, data={"defect_type": "inclusion", "severity": "major"}, reason="looked again")
    assert (second.outcome, second.label.version) == ("updated", 2)
    info, _ = labels.rollback(small_site.store, actor=small_site.user("inspector"), sheet="Crystals",
                              item_ref="INS-0001", label_type="classification", to_version=1, reason="v2 was wrong")
    assert info.version == 3 and info.label_data == CRACK
    hist = labels.history(small_site.store, sheet="Crystals", item_ref="INS-0001", label_type="classification")
    assert [(h.version, h.action) for h in hist] == [(1, "create"), (2, "update"), (3, "rollback")]
    assert hist[1].reason == "looked again" and hist[2].changed_by == "inspector"
    with pytest.raises(NotFoundError):
        labels.rollback(small_site.store, actor=small_site.user("inspector"), sheet="Crystals", item_ref="INS-0001",
                        label_type="classification", to_version=9)


def test_phi_tag_prohibits_training_for_every_label_of_the_sheet(small_site, tmp_path: Path) -> None:
    images, metadata = write_small_dataset(tmp_path / "phi", n=3)
    sheets.import_sheet(small_site.store, actor=small_site.user("engineer"), name="Clinic", metadata_path=metadata,
                        key_column="inspection_id", image_root=images, image_column="image_path", classification="PHI")
    result, _ = labels.set_label(small_site.store, actor=small_site.user("inspector"), sheet="Clinic",
                                 item_ref="INS-0000", label_type="classification", label_data=CRACK,
                                 allowed_uses=["training", "evaluation", "testing"])
    label = result.label
    assert "training" in label.prohibited_uses and "training" not in label.allowed_uses
    assert "PHI" in label.usage_reason and label.data_classification == ["PHI"]
    assert not passes_gates("labeled", label.allowed_uses, label.prohibited_uses, "training")
    assert passes_gates("labeled", label.allowed_uses, label.prohibited_uses, "evaluation")


def test_disagreeing_label_from_another_user_goes_to_review(small_site) -> None:
    _set(small_site, user="inspector")
    other = _set(small_site, user="inspector2", data={"defect_type": "none", "severity": "none"})
    assert other.outcome == "conflict" and other.label.version == 1 and other.label.label_data == CRACK
    assert other.label.review_state == "conflict"
    [conflict] = labels.list_conflicts(small_site.store, sheet="Crystals")
    info, _ = labels.resolve_conflict(small_site.store, actor=small_site.user("engineer"), conflict_id=conflict.id,
                                      accept=True)
    assert info.version == 2 and info.label_data["defect_type"] == "none" and info.review_state == "ok"
    # A user who saw the current version may replace it deliberately.
    deliberate = _set(small_site, user="inspector2", data=CRACK, expected_version=2)
    assert deliberate.outcome == "updated"


def test_invalid_label_data_is_refused_with_the_store_unchanged(small_site) -> None:
    before = snapshot_tables(small_site.store)
    for data, message in [({"defect_type": "wobble"}, "defect_type"), ({}, "defect_type"),
                          ({"defect_type": "crack", "extra": 1}, "extra")]:
        with pytest.raises(ValidationError, match=message):
            _set(small_site, data=data)
    with pytest.raises(ValidationError, match="no item"):
        _set(small_site, item="NOPE")
    with pytest.raises(ValidationError, match="unknown label type"):
        _set(small_site, label_type="vibes")
    with pytest.raises(ValidationError, match="unknown prohibited use"):
        _set(small_site, prohibited_uses=["sharing"])
    assert snapshot_tables(small_site.store) == before


def _write_label_csv(path: Path, rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sheet", "item_ref", "label_type", "label_data", "prohibited_uses", "usage_reason"])
        writer.writerows(rows)
    return path


def test_bulk_import_is_one_transaction_and_names_the_bad_row(small_site, tmp_path: Path) -> None:
    good = [["Crystals", f"INS-{i:04d}", "classification", json.dumps(CRACK), "", ""] for i in range(5)]
    bad = good[:3] + [["Crystals", "INS-0003", "classification", '{"defect_type": "wobble"}', "", ""]] + good[4:]
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match="row 4"):
        labels.import_labels(small_site.store, actor=small_site.user("inspector"),
                             path=_write_label_csv(tmp_path / "bad.csv", bad))
    assert snapshot_tables(small_site.store) == before
    outcome, _ = labels.import_labels(small_site.store, actor=small_site.user("inspector"),
                                      path=_write_label_csv(tmp_path / "good.csv", good))
    assert (outcome.created, outcome.updated) == (5, 0)
    good[0][3] = json.dumps({"defect_type": "inclusion"})
    good[1][4], good[1][5] = "training", "serial number visible"
    outcome, _ = labels.import_labels(small_site.store, actor=small_site.user("inspector"),
                                      path=_write_label_csv(tmp_path / "again.csv", good))
    assert (outcome.created, outcome.updated, outcome.unchanged) == (0, 2, 3)
    label = labels.get_label(small_site.store, sheet="Crystals", item_ref="INS-0001", label_type="classification")
    assert label.prohibited_uses == ["training"] and label.usage_reason == "serial number visible"
    dup = _write_label_csv(tmp_path / "dup.csv", [good[0], good[0]])
    with pytest.raises(ValidationError, match="duplicate label"):
        labels.import_labels(small_site.store, actor=small_site.user("inspector"), path=dup)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "coco"])
def test_export_formats(small_site, tmp_path: Path, fmt: str) -> None:
    _set(small_site, item="INS-0001")
    _set(small_site, item="INS-0002", label_type="localization",
         data={"boxes": [{"x": 3, "y": 4, "width": 10, "height": 8, "label": "inclusion"}]})
    out = tmp_path / f"labels.{fmt}"
    result = labels.export_labels(small_site.store, actor=small_site.user("engineer"), out=out, fmt=fmt,
                                  label_type="localization" if fmt == "coco" else None)
    assert out.exists() and not list(tmp_path.glob("*.tmp"))
    if fmt == "coco":
        coco = json.loads(out.read_text())
        assert result["labels"] == 1
        assert coco["annotations"][0]["bbox"] == [3, 4, 10, 8]
        assert coco["images"][0]["width"] == 32
        assert {c["name"] for c in coco["categories"]} >= {"inclusion", "crack"}
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert {r["label_type"] for r in rows} == {"classification", "localization"}
    elif fmt == "parquet":
        assert duckdb.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0] == 2
    else:
        assert out.read_text().splitlines()[0].startswith("sheet,item_ref,label_type")


def test_every_single_label_write_respects_another_experts_claim(small_site) -> None:
    from vital_desktop.core.errors import ConflictError
    from vital_desktop.services import review

    review.claim_items(small_site.store, actor=small_site.user("inspector2"), sheet="Crystals",
                       label_type="classification", item_refs=["INS-0005"])
    before = snapshot_tables(small_site.store)
    with pytest.raises(ConflictError, match="claimed by inspector2"):
        _set(small_site, user="inspector", item="INS-0005")
    assert snapshot_tables(small_site.store) == before
    # The holder's own save goes through and releases the claim.
    assert _set(small_site, user="inspector2", item="INS-0005").outcome == "created"
    assert _set(small_site, user="inspector", item="INS-0005", data={"defect_type": "none"},
                expected_version=1).outcome == "updated"
