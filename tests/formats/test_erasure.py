"""Erasure: items (or a whole sheet) leave no trace but the audit row; models that learnt from them are flagged."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import PermissionDenied, ValidationError
from vital_desktop.services import erasure, labels, registry, sheets
from vital_desktop.store.models import (
    AuditEntry,
    FeedbackItem,
    ModelRow,
    ModelTrainingLineage,
    Prediction,
    QAPair,
    TrainingSheet,
)

ERASED = ("INS-0001", "INS-0002")


def _seed(site) -> dict:
    """Labels (two versions each), a training sheet with pairs, predictions, feedback and two models."""
    user = site.user("inspector")
    for i in range(4):
        ref = f"INS-{i:04d}"
        for cls in ("crack", "inclusion"):
            labels.set_label(site.store, actor=user, sheet=site.sheet, item_ref=ref, label_type="classification",
                             label_data={"defect_type": cls, "severity": "minor"})
    current = {r.item_ref: r for r in labels.labels_for_sheet(site.store, sheet=site.sheet)}
    sheet_id = sheets.get_sheet(site.store, site.sheet).id
    with site.store.session() as s:
        s.add(TrainingSheet(id="ts1", name="TS", sheet_id=sheet_id, template_id="t", template_name="t",
                            template_version="1.0.0", label_type="classification", ai_mode="none", status="ready",
                            total_items=4, config={}, created_by="engineer"))
        for i, ref in enumerate(current):
            s.add(QAPair(id=f"p{i}", training_sheet_id="ts1", item_ref=ref, position=i,
                         messages=[{"role": "user", "content": f"secret about {ref}"}], answer={}, status="labeled",
                         source="canonical", allowed_uses=[], prohibited_uses=[], usage_reason="",
                         data_classification=[], review_reason=""))
            s.add(Prediction(id=f"pr{i}", model_id="m1", model_name="clf", model_version=1, kind="onnx",
                             sheet_id=sheet_id, item_ref=ref, output={"class": "crack"}, latency_ms=1.0,
                             created_by="engineer"))
            s.add(FeedbackItem(id=f"f{i}", sheet_id=sheet_id, item_ref=ref, corrected_label={"defect_type": "none"},
                               comment="looks fine", status="open", review_note="", created_by="inspector"))
        for mid, refs in (("m1", list(current)), ("m2", ["INS-0003"])):
            s.add(ModelRow(id=mid, name=f"clf-{mid}", version=1, kind="onnx", path="/x", file_sha256="0" * 64,
                           size_bytes=1, classes=[], card={}, created_by="engineer"))
            s.add(ModelTrainingLineage(
                id=f"l{mid}", model_id=mid, training_sheet_id="ts1", sheet_id=sheet_id, qa_pair_ids=[],
                canonical_labels=[{"id": current[r].id, "version": 2, "item_ref": r} for r in refs],
                training_config={}, trained_by="engineer"))
    return current


def test_erasing_items_removes_every_trace_but_the_audit_row(small_site) -> None:
    _seed(small_site)
    admin = small_site.user("admin")
    report, changes = erasure.erase_items(small_site.store, actor=admin, sheet="Crystals", item_refs=list(ERASED),
                                          reason="privacy request 17")
    assert (report.items, report.labels, report.label_versions, report.qa_pairs, report.predictions,
            report.feedback) == (2, 2, 4, 2, 2, 2)
    assert report.models_flagged == ["clf-m1@1"] and changes.models
    snapshot = snapshot_tables(small_site.store)
    dump = json.dumps(snapshot)
    audit_rows = [r for r in snapshot["audit_log"] if "sheet.erase_items" in "".join(r)]
    assert len(audit_rows) == 1 and "privacy request 17" in "".join(audit_rows[0])
    for ref in ERASED:  # only audit rows written before the erasure (item targets) may still name the ref
        assert all(ref not in "".join(row) for name, rows in snapshot.items() if name != "audit_log" for row in rows)
    assert "secret about INS-0003" in dump and "secret about INS-0001" not in dump
    assert sorted(i for i in sheets.item_refs(small_site.store, "Crystals")) == \
        [f"INS-{i:04d}" for i in range(12) if f"INS-{i:04d}" not in ERASED]
    assert sheets.get_sheet(small_site.store, "Crystals").item_count == 10
    assert (small_site.images / "IMG_0001.png").exists()  # images are the site's: untouched
    models = {m.name: m for m in registry.list_models(small_site.store)}
    assert models["clf-m1"].retrain_reason == erasure.RETRAIN_REASON and models["clf-m2"].retrain_reason == ""
    with small_site.store.read() as s:
        lineage = s.get(ModelTrainingLineage, "lm1")
        assert [e["item_ref"] for e in lineage.canonical_labels] == ["INS-0000", "INS-0003"]
        assert s.scalar(sa.select(sa.func.count()).select_from(QAPair)) == 2
        last = s.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert last.username == "admin" and "INS-0001" not in last.details and "crack" not in last.details


def test_deleting_a_whole_sheet(small_site) -> None:
    _seed(small_site)
    report, _ = erasure.delete_sheet(small_site.store, actor=small_site.user("admin"), sheet="Crystals",
                                     reason="end of retention")
    assert report.sheet_deleted and report.items == 12 and report.labels == 4
    assert sorted(report.models_flagged) == ["clf-m1@1", "clf-m2@1"]
    assert [s.name for s in sheets.list_sheets(small_site.store)] == []
    with small_site.store.read() as s:
        for model in (QAPair, Prediction, FeedbackItem, TrainingSheet):
            assert s.scalar(sa.select(sa.func.count()).select_from(model)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(ModelRow)) == 2


def test_erasure_is_for_admins_needs_a_reason_and_names_unknown_items(small_site) -> None:
    _seed(small_site)
    before = snapshot_tables(small_site.store)
    with pytest.raises(PermissionDenied):
        erasure.erase_items(small_site.store, actor=small_site.user("engineer"), sheet="Crystals",
                            item_refs=["INS-0001"], reason="x")
    with pytest.raises(ValidationError, match="reason"):
        erasure.erase_items(small_site.store, actor=small_site.user("admin"), sheet="Crystals",
                            item_refs=["INS-0001"], reason=" ")
    with pytest.raises(ValidationError, match="INS-9999"):
        erasure.erase_items(small_site.store, actor=small_site.user("admin"), sheet="Crystals",
                            item_refs=["INS-0001", "INS-9999"], reason="request")
    assert snapshot_tables(small_site.store) == before
