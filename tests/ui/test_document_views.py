"""LABEL shows a document's text or a telemetry plot in place of the image (pytest-qt, offscreen),
and labels on those items are saved through the one write path by the same keys."""

from __future__ import annotations

import csv
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from tests.ui.test_keyboard_labeling import activate, press
from vital_desktop.core.users import SYSTEM_USER
from vital_desktop.demo.documents import DOCUMENT_LABEL_TYPE, generate_demo_documents
from vital_desktop.services import generate as generate_service
from vital_desktop.services import item_import
from vital_desktop.services import labels as label_service
from vital_desktop.ui.item_views import DocumentText, TelemetryPlot, facts_line

TEMPLATE = "Document Extraction - Compliance Reports"


def _documents(store, tmp_path: Path) -> dict:
    docs = generate_demo_documents(tmp_path / "docs", seed=5)
    item_import.import_documents(store, actor=SYSTEM_USER, name="Docs", folder=docs.folder)
    return docs.labels


def test_labeling_tool_shows_the_document_text_and_saves_by_keys(qtbot, window, store, tmp_path: Path) -> None:
    truth = _documents(store, tmp_path)
    window.go("canonical", sheet="Docs", label_type=DOCUMENT_LABEL_TYPE)
    tool = window.pages["canonical"]
    qtbot.waitUntil(lambda: tool.ready and tool.sheet is not None and tool.sheet.name == "Docs", timeout=10_000)
    view = tool.content_view
    qtbot.waitUntil(lambda: view.info is not None and view.info.item_ref == tool.item.item_ref, timeout=10_000)
    first = tool.item.item_ref
    assert tool.view_stack.currentWidget() is view and isinstance(view.current(), DocumentText)
    assert truth[first]["license_number"] in view.current().toPlainText()
    assert "page(s)" in view.facts.text() and "document_text" not in tool.context_label.text()
    activate(qtbot, window)
    view.setFocus()
    press(qtbot, window, Qt.Key.Key_1)  # a digit picks the first class while the text has the keyboard
    assert tool.form.value()["status"] == "compliant"
    press(qtbot, window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tool.item.item_ref != first and not tool.saving, timeout=10_000)
    stored = label_service.get_label(store, sheet="Docs", item_ref=first, label_type=DOCUMENT_LABEL_TYPE)
    assert stored is not None and stored.label_data["status"] == "compliant" and stored.version == 1
    qtbot.waitUntil(lambda: view.info is not None and view.info.item_ref == tool.item.item_ref, timeout=10_000)
    assert truth[tool.item.item_ref]["facility"] in view.current().toPlainText()
    assert QApplication.focusWidget() is view.current()
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)


def test_labeling_tool_plots_a_telemetry_series(qtbot, window, store, tmp_path: Path) -> None:
    path = tmp_path / "tel.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["detector_serial", "timestamp", "hv_voltage", "count_rate"])
        for serial in ("DET-1", "DET-2"):
            for i in range(40):
                writer.writerow([serial, f"2025-03-{1 + i % 28:02d}T{i // 28:02d}:00:00", 1000 - i, 1200 + 3 * i])
    item_import.import_telemetry(store, actor=SYSTEM_USER, name="Tel", path=path, group_by="detector_serial")
    window.go("canonical", sheet="Tel", label_type="maintenance")
    tool = window.pages["canonical"]
    qtbot.waitUntil(lambda: tool.ready and tool.sheet is not None and tool.sheet.name == "Tel", timeout=10_000)
    view = tool.content_view
    qtbot.waitUntil(lambda: view.info is not None, timeout=10_000)
    plot = view.current()
    assert isinstance(plot, TelemetryPlot) and plot.channels == ["hv_voltage", "count_rate"]
    curves = plot.curves()
    assert len(plot.plots) == 2 and len(curves) == 2 and len(curves[0].getData()[1]) == 40
    assert curves[0].getData()[1][-1] == 1000 - 27  # hv_voltage sorted by time: the latest is reading 27 (28 March)
    assert "40 readings" in view.facts.text()
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)


def test_mode_a_review_shows_the_document_beside_the_answer(qtbot, window, store, engineer, tmp_path: Path) -> None:
    truth = _documents(store, tmp_path)
    generate_service.generate_training_sheet(store, actor=engineer, sheet="Docs", template=TEMPLATE, name="doc-review",
                                             ai_mode="none")
    window.go("label", training_sheet="doc-review")
    page = window.pages["label"]
    qtbot.waitUntil(lambda: page.current is not None and page.pair is not None and not page.busy, timeout=10_000)
    view = page.content_view
    qtbot.waitUntil(lambda: view.info is not None and view.info.item_ref == page.pair.item_ref, timeout=10_000)
    assert page.view_stack.currentWidget() is view
    assert truth[page.pair.item_ref]["license_number"] in view.current().toPlainText()
    assert "document_text" not in page.sensor.text()
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)


def test_facts_line_names_pages_and_warnings() -> None:
    line = facts_line({"format": "pdf", "pages": 3, "chars": 1200, "warnings": ["no text layer on page(s) 2"]})
    assert line.startswith("PDF · 3 page(s) · 1,200 characters") and "1 warning(s): no text layer" in line


def test_wizard_imports_a_document_folder_and_data_shows_kind_pages_and_text(qtbot, window, tmp_path: Path) -> None:
    from tests.ui.conftest import settle

    docs = generate_demo_documents(tmp_path / "docs", seed=2)
    data = window.pages["data"]
    wizard = data.open_wizard()
    page = wizard.metadata_page
    page.kind_combo.setCurrentIndex(page.kind_combo.findData("document"))
    page.name_edit.setText("Reports")
    assert page.isComplete() and not page.folder_only.isEnabled()
    wizard.next()
    assert wizard.currentId() == wizard.ITEMS and not wizard.items_page.isComplete()
    assert not wizard.items_page.group_edit.isEnabled()  # grouping is for telemetry
    wizard.items_page.path_edit.setText(str(docs.folder))
    assert wizard.items_page.isComplete()
    wizard.next()  # the import runs in the background
    qtbot.waitUntil(lambda: wizard.import_page.done or wizard.import_page.failed, timeout=20_000)
    assert wizard.import_page.done, wizard.import_page.status.text()
    assert wizard.created_sheet == "Reports" and "8 items" in wizard.import_page.status.text()
    wizard.accept()
    settle(qtbot, window)
    assert data.current.name == "Reports" and data.current.item_kind == "document"
    assert data.detail.values["Item kind"].text().startswith("Documents")
    assert not data.rescan_button.isEnabled()  # rescans read image folders only
    name = sorted(docs.labels)[-1]  # a PDF
    data.select_item(name)
    qtbot.waitUntil(lambda: data.shown_item is not None and data.shown_item.item_ref == name, timeout=10_000)
    preview = data.item_preview.text()
    assert preview.startswith("PDF · 1 page(s)") and docs.labels[name]["license_number"] in preview
    settle(qtbot, window)
