"""The demo's compliance documents: a document sheet with canonical labels, and the shipped
Document Extraction template answering one of them with the real embedded GGUF."""

from __future__ import annotations

from pathlib import Path

import pytest

from vital_desktop.core.progress import Progress
from vital_desktop.demo.documents import DOCUMENT_LABEL_TYPE, DOCUMENT_SHEET, generate_demo_documents
from vital_desktop.services import documents, generate, labels, sheets, templates
from vital_desktop.store import open_store

TEMPLATE = "Document Extraction - Compliance Reports"


def test_generated_reports_hold_the_fields_their_labels_say(tmp_path: Path) -> None:
    docs = generate_demo_documents(tmp_path / "docs", seed=3)
    suffixes = sorted({Path(name).suffix for name in docs.labels})
    assert suffixes == [".md", ".pdf", ".txt"]
    assert generate_demo_documents(tmp_path / "again", seed=3).labels == docs.labels  # deterministic
    for name, label in docs.labels.items():
        text = documents.extract(docs.folder / name).text
        for field in ("license_number", "inspection_date", "nuclide", "facility"):
            assert label[field] in text, (name, field)
        assert f"{label['max_dose_rate_usv_h']} uSv/h" in text


def test_demo_site_has_the_document_sheet_with_labels_and_template(demo_home: Path) -> None:
    store = open_store(demo_home)
    try:
        info = sheets.get_sheet(store, DOCUMENT_SHEET)
        assert info.item_kind == "document" and info.item_count == 8
        found = labels.labels_for_sheet(store, sheet=DOCUMENT_SHEET, label_type=DOCUMENT_LABEL_TYPE)
        assert len(found) == 8
        template = templates.get_template(store, TEMPLATE)
        templates.check_against_columns(template, info.columns)
        from vital_desktop.services.demo_site import DEMO_HISTORY_SHEET

        history = sheets.get_sheet(store, DEMO_HISTORY_SHEET)
        assert history.item_kind == "telemetry" and history.item_count == 12
        item = sheets.list_items(store, DEMO_HISTORY_SHEET, limit=1)[0]
        assert item.metadata["points"] == 60 and "gain_drift_pct" in item.metadata["channels"]
        # the ground truth (failure_within_30d) is neither a channel nor in the model's summary
        assert "failure_within_30d" not in item.metadata["telemetry_summary"]
        assert "failure_within_30d" not in item.metadata["channels"]
        # the telemetry template reads the series' summary as its prompt
        rul = templates.get_template(store, "Remaining Useful Life - Detector History")
        templates.check_against_columns(rul, history.columns)
        user = generate.render_item(rul, item.item_ref, item.metadata, None)[-1]["content"]
        assert "60 readings from 2024-" in user and "gain_drift_pct: first" in user
        assert "failure_within_30d" not in user
        truth = labels.labels_for_sheet(store, sheet=DEMO_HISTORY_SHEET, label_type="maintenance")
        assert len(truth) == 12 and {x.label_data["action"] for x in truth} == {"none", "replace"}
    finally:
        store.close()


@pytest.mark.llm
@pytest.mark.slow
def test_the_demo_template_answers_a_demo_document_with_the_real_model(demo_home: Path) -> None:
    store = open_store(demo_home)
    try:
        template = templates.get_template(store, TEMPLATE)
        item = sheets.list_items(store, DOCUMENT_SHEET, limit=None)[-1]  # a PDF
        assert item.item_ref.endswith(".pdf")
        labeler = generate.LlmPrelabeler(store, template)
        [answer] = labeler.prelabel([generate.PrelabelRequest(item.item_ref, item.metadata, None)], Progress())
        assert answer.error is None and answer.answer is not None, answer.raw_output
        assert templates.first_error(template.output_schema, answer.answer) is None
        assert set(template.output_schema["required"]) <= set(answer.answer)
        from vital_desktop.services import llm_evidence

        assert not llm_evidence.is_image_template(template)  # a text template: never refused for image evidence
        # The prompt the model read carried the document's own text, not an image reference.
        rendered = generate.render_item(template, item.item_ref, item.metadata, None)
        user = rendered[-1]["content"]
        assert isinstance(user, str) and "Licence number: RSL-" in user and "image" not in user.lower()
    finally:
        store.close()
