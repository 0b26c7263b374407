"""IMPROVE: the feedback queue, expert review into canonical labels (conflict rules), gap analysis."""

from __future__ import annotations

import pyarrow as pa
import pytest

from vital_desktop.core.errors import ConflictError, PermissionDenied, ValidationError
from vital_desktop.core.ids import new_id, utcnow
from vital_desktop.services import feedback, labels
from vital_desktop.store.bulk import insert_arrow
from vital_desktop.store.models import ModelRow, Sheet

CLASSES = ["crack", "inclusion", "none"]


@pytest.fixture
def logged(small_site):
    """A classifier trained on few inclusions, and 12 logged predictions of it on the sheet's items."""
    store = small_site.store
    model_id = new_id()
    with store.session() as s:
        sheet_id = s.query(Sheet).one().id
        s.add(ModelRow(id=model_id, name="clf", version=1, kind="onnx_classifier", path="/x.onnx", file_sha256="0" * 64,
                       size_bytes=1, classes=CLASSES, created_by="engineer",
                       card={"training": {"class_counts": {"crack": 40, "inclusion": 6, "none": 44}}}))
        rows = [{"id": new_id(), "model_id": model_id, "model_name": "clf", "model_version": 1, "kind": "onnx_classifier",
                 "sheet_id": sheet_id, "item_ref": f"INS-{i:04d}", "output": "{}", "predicted_class": CLASSES[i % 3],
                 "confidence": 0.45 if i < 6 else 0.95, "latency_ms": 5.0, "image_width": 32, "image_height": 32,
                 "created_by": "inspector", "created_at": utcnow()} for i in range(12)]
        insert_arrow(s, "predictions", pa.Table.from_pylist(rows), casts={"output": "JSON"})
    return small_site, model_id, [r["id"] for r in rows]


def test_queue_review_and_label_versions(logged) -> None:
    site, model_id, predictions = logged
    store, inspector, engineer = site.store, site.user("inspector"), site.user("engineer")
    item, _ = feedback.add_feedback(store, actor=inspector, prediction_id=predictions[0], corrected_class="inclusion",
                                    comment="dark spot, not a crack")
    assert (item.status, item.predicted_class, item.item_ref, item.model) == ("new", "crack", "INS-0000", "clf@1")
    with pytest.raises(ConflictError, match="already flagged"):
        feedback.add_feedback(store, actor=inspector, prediction_id=predictions[0], corrected_class="none")
    with pytest.raises(ValidationError, match="already says"):
        feedback.add_feedback(store, actor=inspector, prediction_id=predictions[1], corrected_class="inclusion")
    with pytest.raises(ValidationError, match="corrected class is required"):
        feedback.add_feedback(store, actor=inspector, prediction_id=predictions[1], corrected_class=" ")

    # Inspectors may not review; an engineer's acceptance creates the label (version 1).
    with pytest.raises(PermissionDenied):
        feedback.accept_feedback(store, actor=inspector, feedback_id=item.id)
    result, changes = feedback.accept_feedback(store, actor=engineer, feedback_id=item.id)
    assert changes.labels and result.label_outcome == "created" and result.label_version == 1
    label = labels.get_label(store, sheet="Crystals", item_ref="INS-0000", label_type="classification")
    assert label.label_data == {"defect_type": "inclusion"}
    assert labels.history(store, sheet="Crystals", item_ref="INS-0000", label_type="classification")[0].action == "create"
    with pytest.raises(ConflictError, match="already reviewed"):
        feedback.accept_feedback(store, actor=engineer, feedback_id=item.id)
    assert [f.status for f in feedback.list_feedback(store, status="accepted")] == ["accepted"]


def test_accepting_over_someone_elses_label_follows_conflict_rules(logged) -> None:
    site, _, predictions = logged
    store = site.store
    labels.set_label(store, actor=site.user("inspector2"), sheet="Crystals", item_ref="INS-0003",
                     label_type="classification", label_data={"defect_type": "crack", "severity": "minor"},
                     prohibited_uses=["few_shot"], usage_reason="serial number visible")
    first, _ = feedback.add_feedback(store, actor=site.user("inspector"), prediction_id=predictions[3],
                                     corrected_class="none")
    # Without saying which version the reviewer saw, another user's label is not overwritten.
    result, _ = feedback.accept_feedback(store, actor=site.user("engineer"), feedback_id=first.id)
    assert result.label_outcome == "conflict" and result.conflict_id
    assert labels.get_label(store, sheet="Crystals", item_ref="INS-0003", label_type="classification").version == 1
    assert "label conflict" in feedback.list_feedback(store)[0].review_note

    # With the version the reviewer saw, the correction becomes version 2 and keeps the constraints.
    second, _ = feedback.add_feedback(store, actor=site.user("inspector"), sheet="Crystals", item_ref="INS-0003",
                                      corrected_class="inclusion", attributes={"severity": "major"})
    result, _ = feedback.accept_feedback(store, actor=site.user("engineer"), feedback_id=second.id, expected_version=1)
    assert result.label_outcome == "updated" and result.label_version == 2
    label = labels.get_label(store, sheet="Crystals", item_ref="INS-0003", label_type="classification")
    assert label.label_data == {"defect_type": "inclusion", "severity": "major"}
    assert label.prohibited_uses == ["few_shot"] and label.usage_reason == "serial number visible"


def test_reject_and_new_defect_type_in_gap_analysis(logged) -> None:
    site, model_id, predictions = logged
    store, inspector, engineer = site.store, site.user("inspector"), site.user("engineer")
    novel = [feedback.add_feedback(store, actor=inspector, prediction_id=p, corrected_class="micro_crack")[0]
             for p in predictions[6:9]]
    assert novel[0].in_taxonomy is False
    with pytest.raises(ValidationError, match="not a classification class"):
        feedback.accept_feedback(store, actor=engineer, feedback_id=novel[0].id)
    wrong_inclusion = feedback.add_feedback(store, actor=inspector, prediction_id=predictions[4],
                                            corrected_class="none")[0]
    rejected, _ = feedback.reject_feedback(store, actor=engineer, feedback_id=wrong_inclusion.id, note="it is an inclusion")
    assert rejected.status == "rejected" and rejected.review_note == "it is an inclusion"

    report = feedback.gap_analysis(store, model="clf@1", min_cluster=2)
    kinds = [(f.kind, f.cls) for f in report.findings]
    assert kinds[0] == ("new_class", "micro_crack")  # ranked first: 3 items the model can never get right
    assert "not in the training taxonomy" in report.findings[0].message
    assert ("few_examples", "inclusion") in kinds  # 6 training images against a typical 40
    assert ("low_confidence_cluster", "crack") in kinds or ("low_confidence_cluster", "none") in kinds
    rows = {c["class"]: c for c in report.classes}
    assert rows["micro_crack"]["missed"] == 3 and rows["micro_crack"]["in_model"] is False
    assert rows["none"]["flagged_wrong"] == 1  # prediction 8 said "none"; the rejected item is ignored
    impacts = [f.impact for f in report.findings]
    assert impacts == sorted(impacts, reverse=True)
