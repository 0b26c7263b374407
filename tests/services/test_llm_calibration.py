"""Calibrating language-model confidences on evaluation-allowed labels, and bulk approval by them.

The runner is a stand-in with fixed token logits (the real model's logits are tested in
test_llm_answer); what is tested here is the fit, what it is fitted on, storage and use.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import snapshot_tables
from tests.services.test_templates_review import SPEC
from vital_desktop.core.errors import ValidationError
from vital_desktop.inference import llm_confidence
from vital_desktop.services import generate, labels, llm_answer, llm_calibration, review, templates
from vital_desktop.services.generate_prelabel import Prelabel

CLASSES = SPEC["output_schema"]["properties"]["defect_type"]["enum"]


class OverconfidentRunner:
    """Always says 'crack' with ~0.99 raw confidence: right on half the labelled items."""

    fields = {"defect_type": CLASSES}

    def __init__(self) -> None:
        self.asked: list[str] = []

    def answer(self, item_ref, data, image_path=None, *, classifier=None, cancel=None):
        self.asked.append(item_ref)
        logits = [-6.0] * len(CLASSES)
        logits[CLASSES.index("crack")] = -0.01
        score = llm_confidence.FieldScore("defect_type", "crack", tuple(CLASSES), tuple(logits))
        return llm_answer.Answer({"defect_type": "crack"}, True, {"defect_type": score.confidence()},
                                 {"defect_type": score.confidence()}, {}, {"defect_type": logits}, 100, 90, 8, 0.01)


@pytest.fixture
def site(small_site):
    store, engineer = small_site.store, small_site.user("engineer")
    templates.create_template(store, actor=engineer, spec={**SPEC, "few_shot": []})
    templates.publish_template(store, actor=engineer, ref="Crystal check@1.0.0")
    for i in range(8):
        labels.set_label(store, actor=engineer, sheet="Crystals", item_ref=f"INS-{i:04d}", label_type="classification",
                         label_data={"defect_type": "crack" if i % 2 else "none"})
    # An expert's label that must not be used for evaluation.
    labels.set_label(store, actor=engineer, sheet="Crystals", item_ref="INS-0008", label_type="classification",
                     label_data={"defect_type": "none"}, prohibited_uses=["evaluation"], usage_reason="held back")
    return small_site


def test_calibration_fits_a_temperature_on_evaluation_allowed_labels_only(site) -> None:
    store, engineer = site.store, site.user("engineer")
    runner = OverconfidentRunner()
    report, _ = llm_calibration.calibrate_template(store, actor=engineer, template="Crystal check", sheet="Crystals",
                                                   runner=runner)  # type: ignore[arg-type]
    assert "INS-0008" not in runner.asked and len(runner.asked) == 8
    assert report.skipped["not allowed for evaluation"] == 1
    (field,) = report.fields
    assert field.field == "defect_type" and field.labels == 8 and field.accuracy == 0.5
    # Sure of itself, right half the time: the fitted temperature softens it and the error falls.
    assert field.temperature > 1.5 and field.ece_after < field.ece_before
    info = templates.get_template(store, "Crystal check")
    assert llm_answer.calibration_temperatures(store, info.id) == {"defect_type": pytest.approx(field.temperature)}
    score = llm_confidence.FieldScore("defect_type", "crack", tuple(CLASSES),
                                      tuple(runner.answer("x", {}).raw_logprobs["defect_type"]))
    assert score.confidence(field.temperature) < score.confidence() - 0.2
    assert llm_calibration.calibrations(store, "Crystal check")[0]["labels"] == 8


def test_calibration_with_no_usable_labels_is_refused_and_writes_nothing(small_site) -> None:
    store, engineer = small_site.store, small_site.user("engineer")
    templates.create_template(store, actor=engineer, spec={**SPEC, "few_shot": []})
    before = snapshot_tables(store)
    with pytest.raises(ValidationError, match="no canonical labels of type 'classification' that allow evaluation"):
        llm_calibration.calibrate_template(store, actor=engineer, template="Crystal check", sheet="Crystals",
                                           runner=OverconfidentRunner())  # type: ignore[arg-type]
    assert snapshot_tables(store) == before


class FieldConfidencePrelabeler:
    """Language-model-like pairs: sure of the class, unsure of the severity on odd items."""

    def prelabel(self, requests, progress):
        out = []
        for r in requests:
            odd = int(r.item_ref.split("-")[1]) % 2
            fields = {"defect_type": 0.95, "severity": 0.3 if odd else 0.9}
            out.append(Prelabel({"defect_type": "crack", "severity": "minor"}, min(fields.values()), "llm",
                                field_confidence=fields))
        return out


def test_bulk_approval_can_use_one_fields_confidence(small_site) -> None:
    store, engineer, inspector = small_site.store, small_site.user("engineer"), small_site.user("inspector")
    templates.create_template(store, actor=engineer, spec={**SPEC, "few_shot": []})
    templates.publish_template(store, actor=engineer, ref="Crystal check@1.0.0")
    generate.generate_training_sheet(store, actor=engineer, sheet="Crystals", template="Crystal check", name="ts",
                                     ai_mode="llm", prelabeler=FieldConfidencePrelabeler())
    pairs = review.list_pairs(store, training_sheet="ts", limit=None)
    assert all(p.confidence in (0.3, 0.9) for p in pairs)
    by_pair = review.preview_bulk(store, actor=inspector, training_sheet="ts", action="approve", threshold=0.8)
    by_class = review.preview_bulk(store, actor=inspector, training_sheet="ts", action="approve", threshold=0.8,
                                   field="defect_type")
    by_severity = review.preview_bulk(store, actor=inspector, training_sheet="ts", action="approve", threshold=0.8,
                                      field="severity")
    assert (by_pair.count, by_class.count, by_severity.count) == (6, 12, 6)
    assert review.preview_bulk(store, actor=inspector, training_sheet="ts", action="approve", threshold=0.8,
                               field="no_such_field").count == 0
    with store.read() as s:
        stored = s.connection().exec_driver_sql(
            "SELECT field_confidence::VARCHAR FROM qa_pairs WHERE item_ref = 'INS-0001'").scalar()
    assert json.loads(stored) == {"defect_type": 0.95, "severity": 0.3}
